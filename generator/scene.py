"""Scenes: the low-resolution photograph the default model adds detail to.

A scene is the output image area-downsampled by the model's ``scene_factor`` (4: a 256 x 256
scene for a 1024 x 1024 image). The model sees it bicubic-upsampled back to the output size and
packed on the same token layout as the noise, so a level-k token carries the scene's k-times
downsampled patch. These two resampling rules are the one definition of "scene" that training,
generation and the quality benchmark share.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Scene:
    """One scene, ready for the generator.

    Attributes:
        pixels: (h, w, 3) uint8 at the scene size (output size / scene_factor).
        source: where it came from (``pool:<image id>``, a file path, ...) with the crop.
        original: (H, W, 3) uint8 photograph at the output size the scene was reduced from, when
            known (the "original photograph" reference of a trial); None otherwise.
    """

    pixels: np.ndarray
    source: str
    original: np.ndarray | None = None

    @property
    def sha256(self) -> str:
        """Content hash of the scene's pixels (shape included), hex."""
        return scene_hash(self.pixels)

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) in scene pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def record(self) -> dict:
        """JSON-able description for sidecars and manifests."""
        w, h = self.size_px
        return {"sha256": self.sha256, "source": self.source, "size_px": [w, h]}


def scene_hash(pixels: np.ndarray) -> str:
    """sha256 of a uint8 (h, w, 3) array together with its shape."""
    digest = hashlib.sha256(f"{pixels.shape[0]}x{pixels.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def downsample_to_scene(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 3, H/factor, W/factor), box filter (area mean), quantised
    to 8-bit levels as a stored scene would be."""
    scene = F.avg_pool2d(images, factor) if factor > 1 else images
    return quantise(scene)


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] values to the 256 levels of a uint8 image."""
    return torch.round((images.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def upsample_scene(scene: torch.Tensor, *, height: int, width: int) -> torch.Tensor:
    """(B, 3, h, w) -> (B, 3, height, width): bicubic, clamped to [-1, 1]."""
    up = F.interpolate(scene, size=(height, width), mode="bicubic", align_corners=False)
    return up.clamp(-1, 1)


def scene_tensor(scene: Scene) -> torch.Tensor:
    """A :class:`Scene`'s pixels as (1, 3, h, w) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(scene.pixels)).permute(2, 0, 1).float()
    return x[None] / 127.5 - 1.0
