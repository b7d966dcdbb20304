"""The picture ``fovea mask --image`` draws a token layout over, read as ``fovea generate --scene``
reads a photograph: upright by its EXIF orientation, its largest centre crop at the image's aspect
ratio resized to the image size, so gaze pixels fall on the same content in both. Any picture
Pillow opens is accepted (greyscale and 16-bit ones too: only a backdrop); no torch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from generator.errors import FoveaError
from generator.scene_crop import pick_crop

_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # 16-bit and float greyscale


def read_backdrop(path: str | Path, *, width_px: int, height_px: int) -> np.ndarray:
    """The picture at ``path`` as (height_px, width_px, 3) uint8: upright, centre-cropped to the
    output's aspect ratio, resized. FoveaError (one line naming the file) when it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # from 89 MP; the hard limit (179 MP) stays
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            im.load()
            upright = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise FoveaError(f"cannot read image {str(path)!r}: {error}") from None
    if upright.mode in _DEEP_MODES:  # convert("RGB") would clip 16-bit values to white
        values = np.asarray(upright, dtype=np.float64)
        top = 1.0 if upright.mode == "F" else 65535.0
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        upright = Image.fromarray(grey)
    w, h = upright.size
    crop = pick_crop(h, w, width_px=width_px, height_px=height_px)  # the largest centre crop
    box = (crop.left, crop.top, crop.left + crop.width, crop.top + crop.height)
    picture = upright.convert("RGB").resize(
        (width_px, height_px), Image.Resampling.LANCZOS, box=box
    )
    return np.asarray(picture)
