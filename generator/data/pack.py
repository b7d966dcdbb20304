"""Pack the training images into one compact ``.npz`` to carry to a GPU machine.

Whole images (JPEG-encoded, shorter side at most ``max_side_px``) are packed rather than fixed
crops, so the GPU job still draws fresh random crops at every scale each step; ~40 images fit in
a few MB. The manifest (ids, licences, hashes, splits) travels inside the file.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from generator.atomic import open_atomic
from generator.data.fetch import load_manifest
from generator.errors import FoveaError

MAX_PACK_BYTES = 50 * 1024 * 1024


def pack_images(
    *,
    cache_dir: Path,
    out: Path,
    splits: tuple[str, ...] = ("train", "heldout"),
    max_side_px: int = 768,
    jpeg_quality: int = 90,
) -> dict:
    """Write ``out`` (.npz): ``manifest`` (JSON bytes) and ``img_<i>`` (JPEG bytes) per image.

    Returns:
        Summary dict: path, images, bytes.
    """
    from PIL import Image

    from generator.data.pixels import read_rgb

    out = Path(out)
    if out.suffix != ".npz" or out.is_dir():  # the trainers' --data tells a pack by its .npz
        raise FoveaError(
            f"--out {out} must name a .npz file (training's --data takes a path ending in .npz "
            f"as a pack, anything else as a cache folder), e.g. {out.with_suffix('.npz')}"
            if not out.is_dir()
            else f"--out {out} is a folder; give a file in it, e.g. {out / 'photos.npz'}"
        )
    manifest = load_manifest(cache_dir)
    entries = [e for e in manifest["images"] if e["split"] in splits]
    if not entries:
        raise FoveaError(
            f"{Path(cache_dir) / 'manifest.json'} lists no {' or '.join(splits)} images to pack"
        )
    arrays = {}
    for i, entry in enumerate(entries):
        path = Path(cache_dir) / entry["cached_file"]
        with read_rgb(path, name=f"{path} (in manifest.json)") as im:
            short = min(im.size)
            if short > max_side_px:
                s = max_side_px / short
                im = im.resize(
                    (round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.LANCZOS
                )
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=jpeg_quality)
            arrays[f"img_{i}"] = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    packed = dict(
        manifest, images=entries, packed_max_side_px=max_side_px, jpeg_quality=jpeg_quality
    )
    arrays["manifest"] = np.frombuffer(json.dumps(packed).encode(), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(out) as f:  # np.savez to a path would add ".npz" to the temporary's name
        np.savez(f, **arrays)
        size = f.tell()
        if size > MAX_PACK_BYTES:  # refused before it replaces the previous pack
            raise FoveaError(
                f"packed file {out} would be {size / 1e6:.1f} MB, over the "
                f"{MAX_PACK_BYTES / 2**20:.0f} MB limit; lower max_side_px ({out} is unchanged)"
            )
    return {"path": str(out), "images": len(entries), "bytes": size}
