"""Fetch the training photographs into a cache folder and write their manifest.

``apt-get download`` + ``dpkg -x`` (no install, no root needed for extraction) for the Debian
wallpaper packages in :mod:`generator.data.sources`, plus the photographs that ship inside the
scikit-image wheel. Every image is re-encoded once into ``CACHE/images/<id>.png`` with its shorter
side at most ``max_side_px`` (decoding 5120x2880 PNGs for every crop would dominate training),
and listed in ``CACHE/manifest.json`` with source package + version, original file, licence (from
the package's DEP-5 copyright file), sha256 of the original and of the cached file, size and
split. Manifests of version 1 also gave each image a ``class_name`` / ``class_id`` (the retired
texture model's labels) and listed ``classes``; readers ignore those fields.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from generator.atomic import open_atomic, write_atomic
from generator.data.sources import PACKAGE_SOURCES, SKIMAGE_SOURCES
from generator.errors import FoveaError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
# Images whose id hashes into this fraction are held out for evaluation. Hashing the id (not the
# bytes) keeps the split fixed across package versions and machines.
HELD_OUT_FRACTION = 0.15


def default_cache_dir() -> Path:
    """``$FOVEA_DATA`` if set, else ``~/.cache/fovea/images``."""
    env = os.environ.get("FOVEA_DATA")
    return Path(env) if env else Path.home() / ".cache" / "fovea" / "images"


def split_for(image_id: str) -> str:
    """The fixed split of an image id: ``"train"`` or ``"heldout"``."""
    h = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16)
    return "heldout" if h / 0xFFFFFFFF < HELD_OUT_FRACTION else "train"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def licence_for(copyright_text: str, file_path: str) -> str:
    """The ``License:`` short name that a DEP-5 copyright file gives a file.

    DEP-5 patterns name paths in the *source* tree, which differ from the installed paths, so a
    pattern matches when its trailing components match the file's trailing components or its
    file-name part (other than ``*``) matches the file name; as in DEP-5, the last matching
    stanza wins. Non-DEP-5 files yield ``"see copyright file"``.

    Args:
        copyright_text: contents of ``usr/share/doc/<pkg>/copyright``.
        file_path: installed path of the file (any prefix).
    """
    parts = Path(file_path).parts
    found = None
    for stanza in copyright_text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if "Files" not in fields or "License" not in fields:
            continue
        for pattern in fields["Files"].split():
            pparts = Path(pattern).parts
            tail = "/".join(parts[-len(pparts) :])
            base = Path(pattern).name
            by_name = base != "*" and fnmatch.fnmatch(parts[-1], base)  # source dirs differ
            if (pattern == "*" or fnmatch.fnmatch(tail, pattern) or by_name) and not (
                pattern.startswith("debian/")
            ):
                found = fields["License"].split()[0]
    return found or "see copyright file"


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise FoveaError(
            f"`{' '.join(cmd)}` failed with status {proc.returncode} in {cwd}: "
            f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}"
        )


def _fetch_package(package: str, debs_dir: Path, extract_root: Path) -> tuple[Path, str]:
    """Download (if not cached) and extract one package; returns (extraction dir, version)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise FoveaError(
            f"fetching package {package!r} needs apt-get and dpkg (a Debian/Ubuntu system); "
            "copy a prepared cache folder or a packed .npz instead"
        )
    debs = sorted(debs_dir.glob(f"{package}_*.deb"))
    if not debs:
        _run(["apt-get", "download", package], cwd=debs_dir)
        debs = sorted(debs_dir.glob(f"{package}_*.deb"))
    if not debs:
        raise FoveaError(f"apt-get download {package} produced no .deb in {debs_dir}")
    deb = debs[-1]
    version = deb.name.split("_")[1].replace("%3a", ":")
    target = extract_root / package
    if not (target / "usr").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        _run(["dpkg", "-x", str(deb), str(target)], cwd=debs_dir)
    return target, version


def _store(image, out_path: Path, max_side_px: int) -> tuple[int, int]:
    """Save a PIL image as RGB PNG with its shorter side at most ``max_side_px``, atomically (a
    fetch stopped mid-write leaves no partial image that the next fetch would take as cached)."""
    from PIL import Image

    from generator.data.pixels import to_rgb8

    image = to_rgb8(image)
    size = _cached_size(image.size, max_side_px)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    with open_atomic(out_path) as f:
        image.save(f, format="PNG", optimize=False, compress_level=6)
    return image.size


def _cached_size(size: tuple[int, int], max_side_px: int) -> tuple[int, int]:
    """(width, height) of an image of ``size`` once cached: shorter side at most ``max_side_px``."""
    short = min(size)
    if short <= max_side_px:
        return size
    scale = max_side_px / short
    return round(size[0] * scale), round(size[1] * scale)


def fetch_images(
    *,
    cache_dir: Path,
    max_side_px: int = 1024,
    include_packages: bool = True,
    progress: bool = True,
) -> dict:
    """Fetch every source into ``cache_dir`` and write ``manifest.json``; idempotent.

    Args:
        cache_dir: cache folder (created).
        max_side_px: the shorter side of each cached image is downscaled to at most this.
        include_packages: False fetches only scikit-image's bundled photographs (offline).
        progress: print one line per source.

    Returns:
        The manifest dict (also written to ``cache_dir/manifest.json``).
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the 5640x3172 wallpapers trip PIL's bomb guard
    cache_dir = Path(cache_dir)
    debs_dir, extract_root, images_dir = (
        cache_dir / "debs",
        cache_dir / "extract",
        cache_dir / "images",
    )
    for d in (debs_dir, extract_root, images_dir):
        d.mkdir(parents=True, exist_ok=True)
    cache = _ImageCache(images_dir, max_side_px)
    entries = []
    if include_packages:
        for src in PACKAGE_SOURCES:
            found, version = _package_entries(src, cache, debs_dir, extract_root)
            entries += found
            if progress:
                print(f"{src.package} {version}: {len(found)} images")
    entries += _skimage_entries(cache, progress=progress)
    manifest = {
        "version": MANIFEST_VERSION,
        "max_side_px": max_side_px,
        "held_out_fraction": HELD_OUT_FRACTION,
        "images": sorted(entries, key=lambda e: e["id"]),
    }
    write_atomic(cache_dir / MANIFEST_NAME, json.dumps(manifest, indent=1))
    return manifest


class _ImageCache:
    """The cached images (``images/<id>.png``, shorter side at most ``max_side_px``)."""

    def __init__(self, images_dir: Path, max_side_px: int) -> None:
        self.images_dir = images_dir
        self.max_side_px = max_side_px

    def entry(self, image_id, source, package, version, file, licence, original, opener) -> dict:
        """The manifest entry of one image, cached first (``opener()`` gives the PIL image) unless
        it already is; ``original`` is the file whose sha256 is recorded."""
        from PIL import Image

        out = self.images_dir / f"{image_id}.png"
        cached = None
        if out.exists():
            with Image.open(out) as im:
                cached = im.size
        if cached is None or cached != self._size_of(opener):  # new, or cached at another size
            _store(opener(), out, self.max_side_px)
        with Image.open(out) as im:
            width, height = im.size
        return {
            "id": image_id,
            "source": source,
            "package": package,
            "version": version,
            "file": file,
            "licence": licence,
            "sha256": _sha256(original),
            "cached_file": f"images/{image_id}.png",
            "cached_sha256": _sha256(out),
            "width_px": width,
            "height_px": height,
            "split": split_for(image_id),
        }

    def _size_of(self, opener) -> tuple[int, int]:
        """The size the original (``opener()``, only its header read) is cached at now (a cache
        made with another --max-side-px holds its images at another size)."""
        with opener() as im:
            return _cached_size(im.size, self.max_side_px)


def _package_entries(src, cache: _ImageCache, debs_dir: Path, extract_root: Path):
    """(entries, package version) of one Debian package's photographs."""
    from PIL import Image

    root, version = _fetch_package(src.package, debs_dir, extract_root)
    copyright_file = root / "usr/share/doc" / src.package / "copyright"
    text = copyright_file.read_text(errors="replace") if copyright_file.exists() else ""
    entries = []
    for pattern in src.files:
        matches = sorted(glob.glob(str(root / pattern)))
        if not matches:
            continue
        # Plasma ships several resolutions of one wallpaper: keep the largest landscape one.
        path = Path(max(matches, key=lambda m: _pixels(m)))
        rel = str(path.relative_to(root))
        stem = rel.split("/contents/")[0].split("/")[-1] if "/contents/" in rel else path.stem
        image_id = f"{src.package}--{stem}".replace(" ", "_")
        entries.append(
            cache.entry(
                image_id,
                "debian",
                src.package,
                version,
                rel,
                licence_for(text, rel),
                path,
                lambda p=path: Image.open(p),
            )
        )
    return entries, version


def _skimage_entries(cache: _ImageCache, *, progress: bool) -> list[dict]:
    """Entries of scikit-image's bundled photographs (no network)."""
    import skimage
    from PIL import Image

    data_dir = Path(skimage.__file__).parent / "data"
    entries = []
    for name, (file, licence) in SKIMAGE_SOURCES.items():
        path = data_dir / file
        if not path.exists():
            continue
        entries.append(
            cache.entry(
                f"skimage--{name}",
                "scikit-image",
                "scikit-image",
                skimage.__version__,
                f"skimage/data/{file}",
                licence,
                path,
                lambda p=path: Image.open(p),
            )
        )
    if progress:
        print(f"scikit-image {skimage.__version__}: {len(entries)} images")
    return entries


def _pixels(path: str) -> int:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return w * h if w >= h else 0  # prefer landscape variants (portrait ones are phone crops)


def load_manifest(cache_dir: Path) -> dict:
    """Read ``cache_dir/manifest.json``; FoveaError naming the command that creates it."""
    path = Path(cache_dir) / MANIFEST_NAME
    if not path.exists():
        raise FoveaError(
            f"no image manifest at {path}; run `fovea data images --cache {cache_dir}`"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FoveaError(f"image manifest {path} is not valid JSON: {error}") from None
    return checked_manifest(manifest, path, fields=MANIFEST_FIELDS)


#: The fields every image of a cache folder's manifest has (a pack's drop ``cached_file``).
MANIFEST_FIELDS = ("id", "split", "cached_file")


def checked_manifest(manifest, path: Path, *, fields: tuple[str, ...]) -> dict:
    """``manifest`` if it is an object whose ``images`` list holds objects with ``fields`` (a
    hand-made or truncated one otherwise stopped the readers with a KeyError traceback)."""
    images = manifest.get("images") if isinstance(manifest, dict) else None
    if not isinstance(images, list):
        raise FoveaError(f"image manifest {path} must be a JSON object with an 'images' list")
    for i, entry in enumerate(images):
        missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise FoveaError(
                f"image manifest {path}: image {i} has no {', '.join(missing)} (each image needs "
                f"{', '.join(fields)}; `fovea data images` writes them)"
            )
        if entry["split"] not in ("train", "heldout"):
            raise FoveaError(
                f"image manifest {path}: image {entry['id']!r} has split {entry['split']!r}, "
                "not 'train' or 'heldout'"
            )
    return manifest
