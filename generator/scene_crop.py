"""Crops of a photograph at an output's aspect ratio: the largest one, one picked by a seed's
random generator (zoom, position, flip), and the crop resized to the output size. The crop
geometry needs no torch (``fovea mask --image`` uses it); only resizing imports it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Crop:
    """A box in a photograph's pixels (after EXIF rotation), resized to the output size.

    Attributes:
        left, top, width, height: the box in photograph pixels.
        flip: mirrored left-right after resizing.
    """

    left: int
    top: int
    width: int
    height: int
    flip: bool = False

    def describe(self) -> str:
        """``crop=LEFT,TOP,WxH`` and ``,flip`` when mirrored (the form used in scene sources)."""
        flip = ",flip" if self.flip else ""
        return f"crop={self.left},{self.top},{self.width}x{self.height}{flip}"


def largest_crop(h: int, w: int, *, width_px: int, height_px: int) -> tuple[float, float]:
    """(width, height) of the largest box at the output's aspect ratio inside an h x w photo."""
    aspect = width_px / height_px
    return (w, w / aspect) if w / h < aspect else (h * aspect, h)


def pick_crop(
    h: int, w: int, *, width_px: int, height_px: int, rng: np.random.Generator | None = None
) -> Crop:
    """The crop of an h x w photograph for a width_px x height_px output. ``rng`` picks zoom (up
    to 2x into the largest crop, never past the photograph's native resolution), position and a
    horizontal flip; without it, the largest centre crop."""
    crop_w, crop_h = largest_crop(h, w, width_px=width_px, height_px=height_px)
    zoom, fy, fx, flip = 1.0, 0.5, 0.5, False
    if rng is not None:
        # Never zoom in past native resolution (the original would be an upsampled blur).
        max_zoom = max(1.0, min(2.0, crop_h / height_px))
        zoom = math.exp(rng.uniform(0.0, math.log(max_zoom)))
        fy, fx, flip = rng.uniform(), rng.uniform(), bool(rng.uniform() < 0.5)
    crop_w, crop_h = int(round(crop_w / zoom)), int(round(crop_h / zoom))
    top, left = int(fy * (h - crop_h)), int(fx * (w - crop_w))
    return Crop(left=left, top=top, width=crop_w, height=crop_h, flip=flip)


def apply_crop(image: torch.Tensor, crop: Crop, *, width_px: int, height_px: int) -> torch.Tensor:
    """(3, H, W) uint8 -> (1, 3, height_px, width_px) float in [-1, 1]: the crop resized with an
    anti-aliased filter (and mirrored when ``crop.flip``)."""
    import torch.nn.functional as F  # here, so the crop geometry above needs no torch

    box = image[:, crop.top : crop.top + crop.height, crop.left : crop.left + crop.width]
    patch = box.float()[None] / 127.5 - 1.0
    out = F.interpolate(
        patch, size=(height_px, width_px), mode="bilinear", antialias=True, align_corners=False
    ).clamp(-1, 1)
    return out.flip(-1) if crop.flip else out


def crop_to_original(
    image: torch.Tensor, *, width_px: int, height_px: int, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """(3, H, W) uint8 -> (1, 3, height_px, width_px) float in [-1, 1]: a crop at the output's
    aspect ratio, resized with an anti-aliased filter. ``rng`` picks zoom (up to 2x into the
    largest crop), position and a horizontal flip; without it, the largest centre crop."""
    h, w = image.shape[1:]
    crop = pick_crop(h, w, width_px=width_px, height_px=height_px, rng=rng)
    return apply_crop(image, crop, width_px=width_px, height_px=height_px)
