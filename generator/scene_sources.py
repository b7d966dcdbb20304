"""Where scenes come from: the shipped photo pool, a folder of photographs, or one image file.

A scene is made from a photograph at the output's size: a crop of the photograph at the output's
aspect ratio (:mod:`generator.scene_crop`), resized to the output size, is the *original*; its
area-downsampled version (:func:`generator.scene.downsample_to_scene`) is the scene. Sources:

- the pool (:class:`PoolSource`): the held-out photos of the shipped pack, photo, zoom, position
  and flip picked by the seed;
- a folder (:class:`SceneFolder`): every ``*.jpg``/``*.jpeg``/``*.png`` in it (not recursive,
  hidden files skipped), photo, zoom, position and flip picked by the seed;
- one file (:class:`SceneFile`): its largest centre crop, the same scene for every seed.

Photographs are read with PIL, EXIF orientation applied, converted to sRGB from an embedded ICC
colour profile (:mod:`generator.colour_profile`). Anything that would not give a faithful
colour scene is refused with a :class:`SceneError` naming the file and the reason: unreadable or
truncated files, greyscale, 16 bits per channel, CMYK, transparency, and images smaller than the
output. A scene's ``source`` says exactly where it came from: ``pool:<id>#crop=...``,
``<file>#crop=...`` (folder) or ``<file>`` (a single file: always its largest centre crop), where
``crop=LEFT,TOP,WxH[,flip]`` is the box in the upright photograph's pixels that was resized to the
output size (and mirrored when ``flip``).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from generator.colour_profile import ProfileError, to_srgb
from generator.errors import FoveaError
from generator.scene import Scene, downsample_to_scene
from generator.scene_crop import apply_crop, largest_crop, pick_crop

# Output pixels per fine token side of every model here (16 px pixel tokens, or 8x VAE + 2x2).
TOKEN_PX = 16
SUFFIXES = (".jpg", ".jpeg", ".png")
_FORMATS = ("JPEG", "PNG")  # camera MPO files open through the JPEG plugin
_GREY_SPREAD = 2  # an RGB image whose channels never differ by more than this has no colour
_MAX_LISTED = 10  # bad files named in one folder error


class SceneError(FoveaError):
    """A scene file, folder or size that cannot give a scene (one line: the file and why)."""


class _Refused(Exception):
    """Why a file is not a usable photograph (the reason only; callers add the file)."""


class SceneSource(Protocol):
    """Anything that gives a scene per seed."""

    def scene(self, *, seed: int, width_px: int, height_px: int, factor: int) -> Scene: ...

    def check(self, *, width_px: int, height_px: int, factor: int | None = None) -> None: ...

    def describe(self) -> str: ...


def scene_from_original(original: torch.Tensor, *, factor: int, source: str) -> Scene:
    """(1, 3, H, W) in [-1, 1] -> a :class:`Scene` keeping the original as uint8."""
    from generator.codecs import to_uint8_image

    scene = downsample_to_scene(original, factor)
    return Scene(pixels=to_uint8_image(scene), source=source, original=to_uint8_image(original))


def check_scene_size(
    *, width_px: int, height_px: int, factor: int | None, token_px: int = TOKEN_PX
) -> None:
    """Refuse an output size that gives no whole tokens or no whole scene (``factor`` None: the
    model's scene factor is not known yet, only the token size is checked)."""
    size = f"a {width_px}x{height_px} px output"
    for value in (width_px, height_px):
        if not (isinstance(value, int) and value > 0):
            raise SceneError(f"{size}: image sizes must be positive whole pixels")
    if width_px % token_px or height_px % token_px:
        raise SceneError(
            f"{size} does not divide into {token_px} px tokens; use a multiple of {token_px}"
        )
    if factor is None:
        return
    if not (isinstance(factor, int) and factor > 0):
        raise SceneError(f"scene factor must be a positive integer, got {factor!r}")
    if width_px % factor or height_px % factor:
        raise SceneError(
            f"{size} has no whole {factor}x smaller scene "
            f"({width_px / factor:.4g}x{height_px / factor:.4g} px); use a multiple of {factor}"
        )


def _check_large_enough(h: int, w: int, *, width_px: int, height_px: int) -> None:
    crop_w, crop_h = largest_crop(h, w, width_px=width_px, height_px=height_px)
    crop_w, crop_h = int(round(crop_w)), int(round(crop_h))
    if crop_w < width_px or crop_h < height_px:
        raise _Refused(
            f"is {w}x{h} px, too small for a {width_px}x{height_px} px output (its centre crop "
            f"at the output's aspect ratio is {crop_w}x{crop_h} px; at least "
            f"{width_px}x{height_px} px is needed)"
        )


def _read(path: Path) -> np.ndarray:
    """The photograph as (H, W, 3) uint8, upright; raises :class:`_Refused` with the reason."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.exists():
        raise _Refused("no such file")
    if not path.is_file():
        raise _Refused("is not a file")
    try:
        with warnings.catch_warnings():
            # Pillow warns of a "decompression bomb DOS attack" from 89 MP: a medium-format or
            # stitched photograph. Its hard limit (179 MP, DecompressionBombError) stays.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path, formats=_FORMATS)
    except UnidentifiedImageError:
        raise _Refused("is not a JPEG or PNG image") from None
    except Image.DecompressionBombError as error:
        raise _Refused(f"is too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise _Refused(f"cannot be read ({error})") from None
    with im:
        # A 16-bit colour PNG opens as "RGB" with a ";16" raw mode; greyscale ones as "I;16"/"I".
        deep = im.mode.startswith(("I", "F")) or any(";16" in str(t.args) for t in im.tile)
        try:
            im.load()  # the full decode: truncation shows here, not at open()
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise _Refused(f"is truncated or corrupt ({error})") from None
        if deep:
            raise _Refused(
                f"has 16 bits per channel (mode {im.mode}); save it as an 8-bit RGB JPEG or PNG"
            )
        if im.mode == "CMYK":
            raise _Refused("is CMYK (print colours); convert it to an RGB JPEG or PNG")
        if im.mode in ("L", "LA", "1"):
            raise _Refused(f"is greyscale (mode {im.mode}); scenes must be colour photographs")
        if im.mode not in ("RGB", "RGBA", "P", "PA"):
            raise _Refused(f"has colour mode {im.mode}; an RGB JPEG or PNG is needed")
        try:
            upright = ImageOps.exif_transpose(im)
        except (OSError, SyntaxError, ValueError, KeyError, TypeError) as error:
            raise _Refused(f"has unreadable EXIF orientation ({error})") from None
    if upright.mode in ("RGBA", "PA") or "transparency" in upright.info:
        alpha = np.asarray(upright.convert("RGBA"))[..., 3]
        if alpha.min() < 255:
            raise _Refused("has transparent pixels; a scene must be an opaque photograph")
    try:
        rgb = to_srgb(upright.convert("RGB"), upright.info.get("icc_profile"))
    except ProfileError as error:
        raise _Refused(f"has an unreadable colour profile ({error})") from None
    pixels = np.array(rgb)  # writable, for torch.from_numpy
    if int((pixels.max(axis=2) - pixels.min(axis=2)).max()) <= _GREY_SPREAD:
        raise _Refused("is greyscale (no colour in it); scenes must be colour photographs")
    return pixels


def read_photo(path: str | Path, *, width_px: int | None = None, height_px: int | None = None):
    """A photograph file as (H, W, 3) uint8, EXIF orientation applied, fully decoded.

    With ``width_px``/``height_px``, also refuse a photograph too small for that output.
    Raises :class:`SceneError` (``scene file <path>: <reason>``) for anything unusable.
    """
    path = Path(path)
    try:
        pixels = _read(path)
        if width_px is not None and height_px is not None:
            _check_large_enough(*pixels.shape[:2], width_px=width_px, height_px=height_px)
    except _Refused as reason:
        raise SceneError(f"scene file {path}: {reason}") from None
    return pixels


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 array -> (3, H, W) uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)


def load_scene_file(
    path: str | Path, *, width_px: int, height_px: int, factor: int, token_px: int = TOKEN_PX
) -> Scene:
    """One image file (JPEG or PNG) as the scene of a width_px x height_px output.

    The file's largest centre crop at the output's aspect ratio, resized to the output size, is
    the ``original`` (H, W, 3) uint8; the scene is that reduced ``factor`` times,
    (height_px / factor, width_px / factor, 3) uint8. ``source`` is the resolved path and
    the crop (``<path>#crop=LEFT,TOP,WxH``).
    Raises :class:`SceneError` naming the file and the reason.
    """
    path = Path(path)
    try:
        check_scene_size(width_px=width_px, height_px=height_px, factor=factor, token_px=token_px)
    except SceneError as error:
        raise SceneError(f"scene file {path}: {error}") from None
    pixels = read_photo(path, width_px=width_px, height_px=height_px)
    crop = pick_crop(*pixels.shape[:2], width_px=width_px, height_px=height_px, rng=None)
    original = apply_crop(_as_tensor(pixels), crop, width_px=width_px, height_px=height_px)
    source = f"{path.resolve()}#{crop.describe()}"
    return scene_from_original(original, factor=factor, source=source)


@functools.lru_cache(maxsize=2)
def _pool(split: str):
    from generator.data.images import DEFAULT_PACK, load_bank

    return load_bank(source=DEFAULT_PACK, split=split)


def pool_scene(*, seed: int, width_px: int, height_px: int, factor: int, split="heldout") -> Scene:
    """The seed's scene from the shipped photo pool's held-out split
    (source ``pool:<image id>#crop=...``)."""
    bank = _pool(split)
    rng = np.random.default_rng([int(seed), 7_000_003])
    index = int(rng.integers(len(bank)))
    image = bank.images[index]
    crop = pick_crop(*image.shape[1:], width_px=width_px, height_px=height_px, rng=rng)
    original = apply_crop(image, crop, width_px=width_px, height_px=height_px)
    source = f"pool:{bank.entries[index]['id']}#{crop.describe()}"
    return scene_from_original(original, factor=factor, source=source)


class PoolSource:
    """The shipped photo pool's held-out photographs, picked and cropped by the seed."""

    def __init__(self, *, split: str = "heldout"):
        self.split = split

    def scene(self, *, seed: int, width_px: int, height_px: int, factor: int) -> Scene:
        check_scene_size(width_px=width_px, height_px=height_px, factor=factor)
        return pool_scene(
            seed=seed, width_px=width_px, height_px=height_px, factor=factor, split=self.split
        )

    def check(self, *, width_px: int, height_px: int, factor: int | None = None) -> None:
        check_scene_size(width_px=width_px, height_px=height_px, factor=factor)
        if not len(_pool(self.split)):
            raise SceneError(f"the shipped photo pool has no {self.split!r} photographs")

    def describe(self) -> str:
        from generator.data.images import DEFAULT_PACK

        return f"pool ({self.split} photos of {DEFAULT_PACK.name})"


class SceneFile:
    """One image file: its largest centre crop is the scene for every seed."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._scenes: dict[tuple[int, int, int], Scene] = {}

    def scene(self, *, seed: int, width_px: int, height_px: int, factor: int) -> Scene:
        key = (width_px, height_px, factor)
        if key not in self._scenes:
            self._scenes[key] = load_scene_file(
                self.path, width_px=width_px, height_px=height_px, factor=factor
            )
        return self._scenes[key]

    def check(self, *, width_px: int, height_px: int, factor: int | None = None) -> None:
        try:
            check_scene_size(width_px=width_px, height_px=height_px, factor=factor)
        except SceneError as error:
            raise SceneError(f"scene file {self.path}: {error}") from None
        read_photo(self.path, width_px=width_px, height_px=height_px)

    def describe(self) -> str:
        return f"file {self.path.resolve()}"


class SceneFolder:
    """A folder of photographs (``*.jpg``, ``*.jpeg``, ``*.png``, any case; not recursive; hidden
    files such as macOS ``._*`` skipped); the seed picks the photo and its crop, zoom and flip."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def files(self) -> list[Path]:
        """The folder's image files, sorted by name (empty when the folder is missing)."""
        if not self.path.is_dir():
            return []
        return sorted(
            p
            for p in self.path.iterdir()
            if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file()
        )

    def _files_or_error(self) -> list[Path]:
        if not self.path.is_dir():
            raise SceneError(f"scene folder {self.path}: no such folder")
        files = self.files
        if not files:
            raise SceneError(
                f"scene folder {self.path}: no images in it (looked for "
                f"{', '.join('*' + s for s in SUFFIXES)}, any case, not in subfolders)"
            )
        return files

    def check(self, *, width_px: int, height_px: int, factor: int | None = None) -> None:
        """Decode every file; raise one :class:`SceneError` listing each bad file and why."""
        try:
            check_scene_size(width_px=width_px, height_px=height_px, factor=factor)
        except SceneError as error:
            raise SceneError(f"scene folder {self.path}: {error}") from None
        files = self._files_or_error()
        bad = []
        for path in files:
            try:
                pixels = _read(path)
                _check_large_enough(*pixels.shape[:2], width_px=width_px, height_px=height_px)
            except _Refused as reason:
                bad.append(f"{path.name}: {reason}")
        if bad:
            listed = "; ".join(bad[:_MAX_LISTED])
            more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
            raise SceneError(
                f"scene folder {self.path}: {len(bad)} of {len(files)} images are not usable "
                f"scenes: {listed}{more}"
            )

    def scene(self, *, seed: int, width_px: int, height_px: int, factor: int) -> Scene:
        """The seed's photo and crop (source ``<resolved file>#crop=...``)."""
        try:
            check_scene_size(width_px=width_px, height_px=height_px, factor=factor)
        except SceneError as error:
            raise SceneError(f"scene folder {self.path}: {error}") from None
        files = self._files_or_error()
        rng = np.random.default_rng([int(seed), 7_000_019])
        path = files[int(rng.integers(len(files)))]
        pixels = read_photo(path, width_px=width_px, height_px=height_px)
        crop = pick_crop(*pixels.shape[:2], width_px=width_px, height_px=height_px, rng=rng)
        original = apply_crop(_as_tensor(pixels), crop, width_px=width_px, height_px=height_px)
        source = f"{path.resolve()}#{crop.describe()}"
        return scene_from_original(original, factor=factor, source=source)

    def describe(self) -> str:
        return f"folder {self.path.resolve()} ({len(self.files)} images)"


def scene_source(spec: str | Path | None) -> SceneSource:
    """``None`` or ``"pool"``: the shipped pool; an existing folder: :class:`SceneFolder`; an
    existing file: :class:`SceneFile`. Anything else raises :class:`SceneError`."""
    if spec is None or (isinstance(spec, str) and spec == "pool"):
        return PoolSource()
    path = Path(spec)
    if path.is_dir():
        return SceneFolder(path)
    if path.is_file():
        return SceneFile(path)
    raise SceneError(
        f"scene source {str(spec)!r}: no such file or folder (give an image file, a folder of "
        "images, or 'pool')"
    )
