"""Scene sources on real image files: one file, a folder, the shipped pool; bad files refused.

Every test image is a real photograph (scikit-image's astronaut, 512 x 512, and Chelsea the cat,
451 x 300) written with PIL into ``tmp_path`` in the form under test.
"""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from generator.codecs import to_uint8_image
from generator.errors import FoveaError
from generator.scene import downsample_to_scene, scene_tensor
from generator.scene_crop import Crop, apply_crop
from generator.scene_sources import (
    PoolSource,
    SceneError,
    SceneFile,
    SceneFolder,
    _pool,
    load_scene_file,
    pool_scene,
    read_photo,
    scene_source,
)

SIZE = dict(width_px=128, height_px=128, factor=4)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    """451 wide x 300 high."""
    return skdata.chelsea()


def _save(pixels: np.ndarray, path, **options):
    Image.fromarray(pixels).save(path, **options)
    return path


def _crop_of(source: str) -> Crop:
    """The crop a scene's source string records."""
    match = re.search(r"#crop=(\d+),(\d+),(\d+)x(\d+)(,flip)?$", source)
    assert match, source
    left, top, width, height = (int(v) for v in match.groups()[:4])
    return Crop(left, top, width, height, flip=match.group(5) is not None)


def _png_16bit_rgb(pixels: np.ndarray, path):
    """A 16-bit-per-channel RGB PNG (PIL writes none): IHDR bit depth 16, colour type 2."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    h, w = pixels.shape[:2]
    deep = (pixels.astype(">u2") * 257).astype(">u2")
    rows = b"".join(b"\0" + deep[y].tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_file_scene_is_the_centre_crop_reduced(tmp_path):
    """Left, middle and right thirds of a 3:1 photo in red, green, blue: the square output's
    centre crop is the green middle; the scene is its area-downsampled version."""
    photo = np.zeros((200, 600, 3), np.uint8)
    photo[:, :200, 0], photo[:, 200:400, 1], photo[:, 400:, 2] = 200, 180, 160
    photo += np.random.default_rng(0).integers(0, 20, photo.shape, dtype=np.uint8)
    path = _save(photo, tmp_path / "thirds.png")
    scene = load_scene_file(path, **SIZE)
    assert scene.pixels.shape == (32, 32, 3) and scene.original.shape == (128, 128, 3)
    assert scene.source == f"{path.resolve()}#crop=200,0,200x200"  # the middle third
    mean = scene.original.reshape(-1, 3).mean(axis=0)
    assert mean[1] > 150 and mean[0] < 25 and mean[2] < 25
    # The scene is reduced from the float original: within one level of reducing the uint8 one.
    original = torch.from_numpy(scene.original).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert (scene_tensor(scene) - downsample_to_scene(original, 4)).abs().max() <= 1.01 / 127.5
    again = load_scene_file(path, **SIZE)
    assert again.sha256 == scene.sha256 and np.array_equal(again.original, scene.original)


def test_jpeg_and_non_square_outputs(tmp_path, cat):
    path = _save(cat, tmp_path / "cat.jpg", quality=95)
    scene = load_scene_file(path, width_px=256, height_px=192, factor=8)
    assert scene.pixels.shape == (24, 32, 3) and scene.original.shape == (192, 256, 3)
    assert scene.record()["size_px"] == [32, 24]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_honoured(tmp_path, cat, suffix):
    """Orientation 6 (rotate 90 degrees clockwise to display): the file stores the cat lying on
    its side, the scene shows it upright, as a photo stored upright does."""
    exif = Image.Exif()
    exif[0x0112] = 6
    lying = np.rot90(cat, k=1)  # what a camera held sideways stores
    tagged = _save(lying, tmp_path / f"tagged{suffix}", exif=exif, quality=95)
    upright = _save(cat, tmp_path / f"upright{suffix}", quality=95)
    assert read_photo(tagged).shape == cat.shape
    size = dict(width_px=192, height_px=128, factor=4)
    a, b = load_scene_file(tagged, **size).original, load_scene_file(upright, **size).original
    if suffix == ".png":
        assert np.array_equal(a, b)
    else:  # the same picture compressed in two orientations: JPEG blocks differ a little
        assert np.abs(a.astype(int) - b).mean() < 2.0
    lying_scene = load_scene_file(_save(lying, tmp_path / f"untagged{suffix}"), **size)
    assert np.abs(lying_scene.original.astype(int) - b).mean() > 20


def test_opaque_rgba_and_colour_palette_images_are_accepted(tmp_path, astronaut):
    rgba = Image.fromarray(astronaut).convert("RGBA")
    rgba.save(tmp_path / "opaque.png")
    Image.fromarray(astronaut).convert("P").save(tmp_path / "palette.png")
    for name in ("opaque.png", "palette.png"):
        assert load_scene_file(tmp_path / name, **SIZE).pixels.shape == (32, 32, 3)


def _truncated(kind):
    def write(tmp_path, photo):
        path = _save(photo, tmp_path / f"cut.{kind}")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return path

    return write


def _grey(mode, suffix="png"):
    def write(tmp_path, photo):
        path = tmp_path / f"grey-{mode}.{suffix}"
        Image.fromarray(photo).convert("L").convert(mode).save(path)
        return path

    return write


def _written(name, make):
    def write(tmp_path, photo):
        path = tmp_path / name
        make(photo, path)
        return path

    return write


def _transparent(photo, path):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba).save(path)


def _grey_rgb_jpeg(photo, path):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    Image.fromarray(np.dstack([grey] * 3)).save(path, quality=90)


BAD_FILES = [
    (_truncated("jpg"), "is truncated or corrupt (image file is truncated"),
    (_truncated("png"), "is truncated or corrupt"),
    (_written("notes.jpg", lambda p, path: path.write_text("not a picture")), "not a JPEG or PNG"),
    (_written("empty.png", lambda p, path: path.write_bytes(b"")), "is not a JPEG or PNG image"),
    (_written("anim.png", lambda p, path: Image.fromarray(p).save(path, "GIF")), "not a JPEG"),
    (_grey("L"), "is greyscale (mode L); scenes must be colour photographs"),
    (_grey("LA"), "is greyscale (mode LA)"),
    (_grey("1"), "is greyscale (mode 1)"),
    (_grey("L", "jpg"), "is greyscale (mode L)"),
    (_grey("P"), "is greyscale (no colour in it)"),
    (_written("grey-rgb.jpg", _grey_rgb_jpeg), "is greyscale (no colour in it)"),
    (
        _written(
            "deep-grey.png",
            lambda p, path: Image.fromarray(p[..., 1].astype(np.uint16) * 257).save(path),
        ),
        "has 16 bits per channel (mode I;16); save it as an 8-bit RGB JPEG or PNG",
    ),
    (_written("deep.png", _png_16bit_rgb), "has 16 bits per channel (mode RGB)"),
    (
        _written("print.jpg", lambda p, path: Image.fromarray(p).convert("CMYK").save(path)),
        "is CMYK (print colours); convert it to an RGB JPEG or PNG",
    ),
    (_written("cutout.png", _transparent), "has transparent pixels"),
    (
        _written("small.png", lambda p, path: Image.fromarray(p[:100, :150]).save(path)),
        "is 150x100 px, too small for a 128x128 px output (its centre crop at the output's "
        "aspect ratio is 100x100 px; at least 128x128 px is needed)",
    ),
]


@pytest.mark.parametrize("write, reason", BAD_FILES)
def test_bad_files_are_refused_naming_file_and_reason(tmp_path, cat, write, reason):
    path = write(tmp_path, cat)
    with pytest.raises(SceneError) as caught:
        load_scene_file(path, **SIZE)
    message = str(caught.value)
    assert message.startswith(f"scene file {path}: ") and reason in message, message
    assert "\n" not in message and isinstance(caught.value, FoveaError)


def test_missing_file_and_sizes_that_do_not_fit(tmp_path, cat):
    with pytest.raises(SceneError, match=r"scene file .*nope\.png: no such file"):
        load_scene_file(tmp_path / "nope.png", **SIZE)
    path = _save(cat, tmp_path / "cat.png")
    with pytest.raises(SceneError, match=r"cat\.png: a 120x128 px output does not divide into 16"):
        load_scene_file(path, width_px=120, height_px=128, factor=4)
    with pytest.raises(
        SceneError, match=r"cat\.png: a 128x128 px output has no whole 3x smaller scene \(42.67"
    ):
        load_scene_file(path, width_px=128, height_px=128, factor=3)


def test_folder_lists_images_and_picks_photo_and_crop_by_seed(tmp_path, astronaut, cat):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    _save(astronaut, folder / "astronaut.png")
    _save(cat, folder / "Chelsea.JPEG", quality=95)
    _save(cat, folder / "sub" / "nested.png")
    _save(cat, folder / "._Chelsea.jpg")  # a macOS resource fork's name; skipped
    (folder / "notes.txt").write_text("not a picture")
    source = SceneFolder(folder)
    assert [p.name for p in source.files] == ["Chelsea.JPEG", "astronaut.png"]
    source.check(width_px=256, height_px=256, factor=4)
    assert source.describe() == f"folder {folder.resolve()} (2 images)"

    size = dict(width_px=256, height_px=256, factor=4)
    scenes = [source.scene(seed=seed, **size) for seed in range(8)]
    assert {s.source.split("#")[0] for s in scenes} == {
        str((folder / n).resolve()) for n in ("Chelsea.JPEG", "astronaut.png")
    }
    assert len({s.sha256 for s in scenes}) == 8 and len({_crop_of(s.source) for s in scenes}) == 8
    again = source.scene(seed=5, **size)
    assert again.source == scenes[5].source and again.sha256 == scenes[5].sha256
    for scene in scenes:  # the recorded crop reproduces the original exactly
        photo = read_photo(scene.source.split("#")[0])
        image = torch.from_numpy(photo.copy()).permute(2, 0, 1)
        redone = apply_crop(image, _crop_of(scene.source), width_px=256, height_px=256)
        assert np.array_equal(scene.original, to_uint8_image(redone))
        assert scene.pixels.shape == (64, 64, 3)


def test_folder_check_lists_every_bad_file(tmp_path, cat):
    _save(cat, tmp_path / "good.png")
    _truncated("jpg")(tmp_path, cat)
    _grey("L")(tmp_path, cat)
    with pytest.raises(SceneError) as caught:
        SceneFolder(tmp_path).check(**SIZE)
    message = str(caught.value)
    assert message.startswith(f"scene folder {tmp_path}: 2 of 3 images are not usable scenes: ")
    assert "cut.jpg: is truncated or corrupt" in message
    assert "grey-L.png: is greyscale (mode L)" in message and "\n" not in message
    with pytest.raises(SceneError, match=r"good\.png: is 451x300 px, too small for a 512x512"):
        SceneFile(tmp_path / "good.png").check(width_px=512, height_px=512)


def test_empty_or_missing_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    with pytest.raises(SceneError, match=r"scene folder .*empty: no images in it \(looked for"):
        SceneFolder(tmp_path / "empty").check(**SIZE)
    with pytest.raises(SceneError, match=r"scene folder .*empty: no images in it"):
        SceneFolder(tmp_path / "empty").scene(seed=0, **SIZE)
    with pytest.raises(SceneError, match=r"scene folder .*gone: no such folder"):
        SceneFolder(tmp_path / "gone").check(**SIZE)


def test_scene_source_resolves_pool_folder_and_file(tmp_path, cat):
    path = _save(cat, tmp_path / "cat.png")
    assert isinstance(scene_source(None), PoolSource)
    assert isinstance(scene_source("pool"), PoolSource)
    assert isinstance(scene_source(str(tmp_path)), SceneFolder)
    single = scene_source(path)
    assert isinstance(single, SceneFile) and single.describe() == f"file {path.resolve()}"
    single.check(**SIZE)
    first, other = single.scene(seed=0, **SIZE), single.scene(seed=99, **SIZE)
    assert first.sha256 == other.sha256 and first.source.startswith(f"{path.resolve()}#crop=")
    with pytest.raises(SceneError, match=r"scene source '.*nothing\.jpg': no such file or folder"):
        scene_source(tmp_path / "nothing.jpg")


def test_pool_scene_records_the_crop():
    scene = pool_scene(seed=3, width_px=256, height_px=192, factor=4)
    match = re.fullmatch(r"pool:(.+)#crop=.*", scene.source)
    assert match, scene.source
    bank = _pool("heldout")
    image = bank.images[[e["id"] for e in bank.entries].index(match.group(1))]
    redone = apply_crop(image, _crop_of(scene.source), width_px=256, height_px=192)
    assert np.array_equal(scene.original, to_uint8_image(redone))
    pool = PoolSource()
    assert pool.scene(seed=3, width_px=256, height_px=192, factor=4).sha256 == scene.sha256
    assert pool.describe().startswith("pool (heldout photos of ")
    with pytest.raises(SceneError, match="does not divide into 16 px tokens"):
        pool.check(width_px=250, height_px=256)


def _profile_with_red_and_green_swapped() -> bytes:
    """An RGB ICC profile (lcms' sRGB with its red and green primaries' tags exchanged): a file
    tagged with it stores a colour's green in its red channel, as a colour-managed viewer shows."""
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", icc[128:132])
    entries = {}
    for i in range(count):
        signature, offset, size = struct.unpack(">4sII", icc[132 + 12 * i : 144 + 12 * i])
        entries[signature] = (132 + 12 * i, offset, size)
    (red_at, *red), (green_at, *green) = entries[b"rXYZ"], entries[b"gXYZ"]
    struct.pack_into(">4sII", icc, red_at, b"rXYZ", *green)
    struct.pack_into(">4sII", icc, green_at, b"gXYZ", *red)
    return bytes(icc)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_embedded_colour_profile_is_converted_to_srgb(tmp_path, astronaut, suffix):
    """A photograph with an ICC profile (Display P3 from a phone, Adobe RGB from a camera) was
    read as sRGB, its colours shifted in the scene; it is converted to sRGB, and a file tagged
    sRGB reads as the untagged one (scene hashes of such files stay as they were)."""
    from PIL import ImageCms

    swapped = astronaut[..., [1, 0, 2]]
    tagged = _save(
        swapped, tmp_path / f"p3{suffix}", icc_profile=_profile_with_red_and_green_swapped()
    )
    plain = _save(astronaut, tmp_path / f"plain{suffix}")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert np.array_equal(
        read_photo(_save(astronaut, tmp_path / f"s{suffix}", icc_profile=srgb)), read_photo(plain)
    )
    difference = np.abs(read_photo(tagged).astype(int) - read_photo(plain))
    assert difference.mean() < (1.0 if suffix == ".png" else 3.0)
    bad = _save(astronaut, tmp_path / f"bad{suffix}", icc_profile=b"not a profile" * 20)
    with pytest.raises(SceneError, match=r"bad\S* has an unreadable colour profile"):
        read_photo(bad)


def test_a_very_large_photograph_reads_without_a_dos_attack_warning(tmp_path, cat, monkeypatch):
    """A photograph of 89-179 MP (medium format, stitched) printed Pillow's 'DecompressionBombWarning:
    ... could be decompression bomb DOS attack' twice before the image: it reads quietly (scene
    and mask backdrop alike); past Pillow's hard limit it is still refused in one line. Pillow's
    limit is lowered here so a small photograph stands for a large one."""
    import warnings

    from generator.backdrop import read_backdrop

    path = _save(cat, tmp_path / "cat.png")  # 451 x 300 = 135,300 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # warns above 100k, refuses above 200k
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        load_scene_file(path, **SIZE)
        read_backdrop(path, width_px=64, height_px=64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(SceneError, match="is too large to decode safely"):
        load_scene_file(path, **SIZE)
    with pytest.raises(FoveaError, match="exceeds limit"):
        read_backdrop(path, width_px=64, height_px=64)
