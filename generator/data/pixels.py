"""Training photographs as 8-bit RGB, from any file PIL reads: grey, palette and alpha images
converted, 16-bit grey scaled (PIL's own conversion clips it to white), and a file that is not a
whole image (cut short, another format, missing) a one-line error naming it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from generator.errors import FoveaError


def read_rgb(source: bytes | Path, *, name: str):
    """The image in ``source`` (a file or its bytes) as an 8-bit RGB PIL image; ``name`` is
    what the error calls it (a file and where it is listed)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return to_rgb8(im)
    except FileNotFoundError:
        raise FoveaError(f"{name}: no such file") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's ways of saying 'not an image'
        raise FoveaError(f"{name} is not a readable image ({error})") from None


def to_rgb8(im):
    """``im`` as 8-bit RGB: 16- and 32-bit integer grey (``I;16*``, ``I``) scaled from 0-65535
    to 0-255, whatever ``convert`` does with the rest (grey, palette, alpha, CMYK)."""
    from PIL import Image

    if im.mode.startswith("I"):
        grey = np.asarray(im, dtype=np.float64) / 257.0
        im = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    return im.convert("RGB")
