"""Photographs with an embedded ICC colour profile (Display P3 from phones, Adobe RGB from
cameras) converted to sRGB, the colour space the model was trained in and the generated PNGs are
shown in: read as sRGB, their colours would be shifted (desaturated, or worse)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Every 17th level of each channel (16^3 colours): enough to see whether a profile moves colours.
_PROBE_LEVELS = np.arange(0, 256, 17, dtype=np.uint8)


class ProfileError(ValueError):
    """The embedded profile cannot be read or applied (the reason only)."""


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """``image`` (mode RGB) in sRGB: converted from ``icc``, the ICC profile its file embeds,
    when that profile moves any colour by more than rounding (an sRGB profile, or none, leaves it
    as it is, so scenes of sRGB files keep their content hashes). Raises :class:`ProfileError`."""
    if not icc:
        return image
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        transform = ImageCms.buildTransform(
            source, ImageCms.createProfile("sRGB"), "RGB", "RGB", ImageCms.Intent.PERCEPTUAL
        )
        probe = Image.fromarray(_probe())
        moved = np.abs(np.asarray(transform.apply(probe), dtype=int) - _probe()).max()
        if moved <= 1:
            return image
        return transform.apply(image)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as error:
        raise ProfileError(str(error)) from None


def _probe() -> np.ndarray:
    """(16, 256, 3) uint8: every combination of the probe levels."""
    r, g, b = np.meshgrid(_PROBE_LEVELS, _PROBE_LEVELS, _PROBE_LEVELS, indexing="ij")
    return np.stack([r, g, b], axis=-1).reshape(16, 256, 3)
