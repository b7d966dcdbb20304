"""Foveated generation, stage by stage: layout -> noise tokens -> sampling -> unpack -> decode."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from generator.codecs import to_uint8_image
from generator.denoiser import Conditioning, FluxDenoiser
from generator.geometry import StimulusGeometry
from generator.layout import LayoutSpec, TokenLayout, build_layout
from generator.sampler import sample_euler
from generator.tokens import pack, unpack


class ConditionEncoder(Protocol):
    text_len: int

    def encode(self, condition, *, device, dtype) -> Conditioning: ...


@dataclass
class Generation:
    """One generated image and what it cost.

    Attributes:
        image: (H, W, 3) uint8.
        layout: the token layout it was sampled on.
        seconds: end to end, noise to image (decoding included).
        denoise_seconds: the transformer's sampling loop alone.
        step_seconds: per Euler step.
        sidecar: JSON-able record (layout summary, tokens, timings, model, seed, geometry).
    """

    image: np.ndarray
    layout: TokenLayout
    seconds: float
    denoise_seconds: float
    step_seconds: list[float]
    sidecar: dict = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.layout.num_tokens

    @property
    def tokens_full(self) -> int:
        return self.layout.num_tokens_full


class FoveatedGenerator:
    """A flow-matching transformer sampled on mixed-resolution token layouts.

    Args:
        denoiser: the transformer wrapper.
        encoder: turns a condition (class index or prompt) into :class:`Conditioning`.
        codec: data grid <-> image (pixel space or a VAE latent space).
        model_id: name recorded in sidecars.
        steps, shift, guidance_scale: sampler defaults.
    """

    def __init__(
        self,
        *,
        denoiser: FluxDenoiser,
        encoder: ConditionEncoder,
        codec,
        model_id: str,
        steps: int = 8,
        shift: float = 1.0,
        guidance_scale: float = 1.0,
    ):
        self.denoiser = denoiser
        self.encoder = encoder
        self.codec = codec
        self.model_id = model_id
        self.steps = steps
        self.shift = shift
        self.guidance_scale = guidance_scale

    @classmethod
    def load(cls, model: str = "default", *, device: str = "cpu", dtype: str | None = None):
        """A model by name (``default``, ``tiny``, ``bench-10m``, ``flux2-tiny``) or local directory."""
        from generator.loading import load_generator

        return load_generator(model, device=device, dtype=dtype)

    @property
    def token_px(self) -> int:
        """Image pixels per fine token side."""
        return self.codec.cells_per_token * self.codec.px_per_cell

    def layout(self, *, geometry: StimulusGeometry, gaze_px, spec: LayoutSpec) -> TokenLayout:
        return build_layout(geometry=geometry, gaze_px=gaze_px, spec=spec, patch_px=self.token_px)

    def noise_grid(self, layout: TokenLayout, *, seed: int) -> torch.Tensor:
        """(1, C, H, W) the seed's full-resolution noise (CPU, float32), whatever the layout."""
        p = self.codec.cells_per_token
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(
            1, self.codec.channels, layout.grid_h * p, layout.grid_w * p, generator=g
        )

    def noise_tokens(self, layout: TokenLayout, *, seed: int) -> torch.Tensor:
        """(1, N, D) unit-variance noise from one full-resolution draw per seed (CPU, float32)."""
        return pack(
            self.noise_grid(layout, seed=seed), layout, p=self.codec.cells_per_token, noise=True
        )

    def generate(
        self,
        *,
        seed: int,
        geometry: StimulusGeometry,
        gaze_px,
        spec: LayoutSpec,
        condition=None,
        steps: int | None = None,
        on_step: Callable[[int], None] | None = None,
        noise_grid: torch.Tensor | None = None,
    ) -> Generation:
        """Generate one image for a gaze point (``gaze_px=None`` with ``LayoutSpec(mode='full')``
        gives the full-resolution twin; the same seed gives the same content).

        ``noise_grid`` (1, C, H, W), for diagnostics, replaces the seed's full-resolution noise
        (the seed is still recorded)."""
        start = time.perf_counter()
        steps = self.steps if steps is None else int(steps)
        layout = self.layout(geometry=geometry, gaze_px=gaze_px, spec=spec)
        d = self.denoiser
        if noise_grid is None:
            noise = self.noise_tokens(layout, seed=seed)
        else:
            noise = pack(noise_grid.float().cpu(), layout, p=self.codec.cells_per_token, noise=True)
        noise = noise.to(d.device, d.dtype)
        cond = self.encoder.encode(condition, device=d.device, dtype=d.dtype)
        uncond = None
        if self.guidance_scale != 1.0:
            uncond = self.encoder.encode("", device=d.device, dtype=d.dtype)
        ids = d.positions(layout, text_len=cond.text.shape[1])
        denoise_start = time.perf_counter()
        result = sample_euler(
            d,
            noise,
            ids=ids,
            cond=cond,
            steps=steps,
            shift=self.shift,
            uncond=uncond,
            guidance_scale=self.guidance_scale,
            on_step=on_step,
        )
        denoise_seconds = time.perf_counter() - denoise_start
        grid = unpack(result.tokens.float(), layout, p=self.codec.cells_per_token)
        image = to_uint8_image(self.codec.decode(grid.to(d.device)))
        seconds = time.perf_counter() - start
        sidecar = {
            "model": self.model_id,
            "seed": int(seed),
            "condition": condition,
            "steps": steps,
            "shift": self.shift,
            "guidance_scale": self.guidance_scale,
            "device": str(d.device),
            "geometry": {
                "display": geometry.display.as_dict(),
                "image_size_px": [geometry.image_width_px, geometry.image_height_px],
                "image_origin_px": list(geometry.origin_px),
            },
            "layout": layout.summary(),
            "tokens": layout.num_tokens,
            "tokens_full": layout.num_tokens_full,
            "token_ratio": layout.token_ratio,
            "seconds": seconds,
            "denoise_seconds": denoise_seconds,
            "step_seconds": result.step_seconds,
        }
        return Generation(image, layout, seconds, denoise_seconds, result.step_seconds, sidecar)
