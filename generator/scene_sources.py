"""Where scenes come from: the project's held-out photo pool (picked by seed).

A scene is made from a photograph at the output's size: a crop of the photograph (zoom, position
and flip picked by the seed) resized to the output size is the *original*; its area-downsampled
version is the scene.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from generator.scene import Scene, downsample_to_scene


@functools.lru_cache(maxsize=2)
def _pool(split: str):
    from generator.data.images import DEFAULT_PACK, load_bank

    return load_bank(source=DEFAULT_PACK, split=split)


def crop_to_original(
    image: torch.Tensor, *, width_px: int, height_px: int, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """(3, H, W) uint8 -> (1, 3, height_px, width_px) float in [-1, 1]: a crop at the output's
    aspect ratio, resized with an anti-aliased filter. ``rng`` picks zoom (up to 2x into the
    largest crop), position and a horizontal flip; without it, the largest centre crop."""
    h, w = image.shape[1:]
    aspect = width_px / height_px
    crop_w, crop_h = (w, w / aspect) if w / h < aspect else (h * aspect, h)
    zoom, fy, fx, flip = 1.0, 0.5, 0.5, False
    if rng is not None:
        # Never zoom in past native resolution (the original would be an upsampled blur).
        max_zoom = max(1.0, min(2.0, crop_h / height_px))
        zoom = math.exp(rng.uniform(0.0, math.log(max_zoom)))
        fy, fx, flip = rng.uniform(), rng.uniform(), bool(rng.uniform() < 0.5)
    crop_w, crop_h = int(round(crop_w / zoom)), int(round(crop_h / zoom))
    top, left = int(fy * (h - crop_h)), int(fx * (w - crop_w))
    patch = image[:, top : top + crop_h, left : left + crop_w].float()[None] / 127.5 - 1.0
    out = F.interpolate(
        patch, size=(height_px, width_px), mode="bilinear", antialias=True, align_corners=False
    ).clamp(-1, 1)
    return out.flip(-1) if flip else out


def scene_from_original(original: torch.Tensor, *, factor: int, source: str) -> Scene:
    """(1, 3, H, W) in [-1, 1] -> a :class:`Scene` keeping the original as uint8."""
    from generator.codecs import to_uint8_image

    scene = downsample_to_scene(original, factor)
    return Scene(
        pixels=to_uint8_image(scene), source=source, original=to_uint8_image(original)
    )


def pool_scene(*, seed: int, width_px: int, height_px: int, factor: int, split="heldout") -> Scene:
    """The seed's scene from the shipped photo pool's held-out split."""
    bank = _pool(split)
    rng = np.random.default_rng([int(seed), 7_000_003])
    index = int(rng.integers(len(bank)))
    original = crop_to_original(bank.images[index], width_px=width_px, height_px=height_px, rng=rng)
    return scene_from_original(original, factor=factor, source=f"pool:{bank.entries[index]['id']}")
