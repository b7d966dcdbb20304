"""Between the data grid the transformer's tokens live on and RGB images.

A codec says how many channels the data grid has, how many data cells one fine token spans
(``cells_per_token``) and how many image pixels one data cell spans (``px_per_cell``), encodes
an image in [-1, 1] to the grid (image-to-image starts there) and decodes the grid back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PixelCodec:
    """Pixel space: the grid *is* the image (RGB in [-1, 1])."""

    cells_per_token: int
    channels: int = 3
    px_per_cell: int = 1

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> the same grid (identity)."""
        return images

    def decode(self, grid: torch.Tensor) -> torch.Tensor:
        return grid

    def to_latents(self, grid: torch.Tensor) -> torch.Tensor:
        """The grid in the space where pooling is meaningful (identity here)."""
        return grid

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


@dataclass
class VaeCodec:
    """A diffusers ``AutoencoderKL`` latent space (FLUX.1: 16 channels, 8 px per cell, 2x2 tokens)."""

    vae: torch.nn.Module
    cells_per_token: int = 2
    px_per_cell: int = 8

    @property
    def channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/8, W/8) float32 grid, normalised as the transformer
        sees latents: ``(mean - shift_factor) * scaling_factor`` (the posterior's mean, so the
        same image always gives the same grid; :meth:`decode` inverts the normalisation)."""
        cfg = self.vae.config
        x = images.to(self.vae.device, self.vae.dtype)
        latents = self.vae.encode(x, return_dict=False)[0].mode()
        return ((latents.float() - (cfg.shift_factor or 0.0)) * cfg.scaling_factor).float()

    @torch.no_grad()
    def decode(self, grid: torch.Tensor) -> torch.Tensor:
        return self.decode_latents(self.to_latents(grid))

    def to_latents(self, grid: torch.Tensor) -> torch.Tensor:
        """The normalised grid -> raw VAE latents (per-channel affine, so pooling commutes)."""
        cfg = self.vae.config
        return grid / cfg.scaling_factor + (cfg.shift_factor or 0.0)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, C, h, w) -> (B, 3, 8h, 8w) RGB (float32)."""
        x = latents.to(self.vae.device, self.vae.dtype)
        return self.vae.decode(x, return_dict=False)[0].float()


def to_uint8_image(grid: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    x = ((grid[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()
