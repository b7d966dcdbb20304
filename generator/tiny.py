"""Random-weight Flux-style transformers in pixel space, for tests and the CPU benchmark.

Named presets (DiT-style registry). Weights are drawn from a fixed seed, so every process builds
the same model; class conditioning comes from a fixed random table of "text" tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import Flux2Transformer2DModel, FluxTransformer2DModel

from generator.denoiser import Conditioning


@dataclass(frozen=True)
class TinyPreset:
    """A small transformer over ``patch_px``-pixel RGB tokens (in_channels = 3 * patch_px**2)."""

    family: str  # "flux" | "flux2"
    heads: int
    head_dim: int
    double_blocks: int
    single_blocks: int
    patch_px: int = 16
    text_len: int = 8
    joint_dim: int = 64
    pooled_dim: int = 32
    classes: int = 16


TINY_PRESETS = {
    # 2 heads x 32: fast enough for unit tests.
    "tiny": TinyPreset("flux", heads=2, head_dim=32, double_blocks=1, single_blocks=1),
    "flux2-tiny": TinyPreset("flux2", heads=2, head_dim=32, double_blocks=1, single_blocks=1),
    # About 10 M parameters (hidden 256): the CPU benchmark model.
    "bench-10m": TinyPreset("flux", heads=4, head_dim=64, double_blocks=2, single_blocks=4),
}


def _rope_axes(preset: TinyPreset) -> tuple[int, ...]:
    if preset.family == "flux":  # (level, row, col); each axis even, summing to head_dim
        rest = (preset.head_dim - 8) // 2
        return (8, rest, rest)
    quarter = preset.head_dim // 4
    return (quarter,) * 4


def build_tiny_transformer(name: str, *, seed: int = 0) -> torch.nn.Module:
    """The preset's transformer with seeded random weights (zero-initialised layers included)."""
    preset = TINY_PRESETS[name]
    torch.manual_seed(seed)
    common = dict(
        patch_size=1,
        in_channels=3 * preset.patch_px**2,
        num_layers=preset.double_blocks,
        num_single_layers=preset.single_blocks,
        attention_head_dim=preset.head_dim,
        num_attention_heads=preset.heads,
        joint_attention_dim=preset.joint_dim,
        axes_dims_rope=_rope_axes(preset),
    )
    if preset.family == "flux":
        model = FluxTransformer2DModel(pooled_projection_dim=preset.pooled_dim, **common)
    else:
        model = Flux2Transformer2DModel(guidance_embeds=False, **common)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim >= 2 and not parameter.any():
                parameter.normal_(0.0, 0.02, generator=generator)
    return model.eval()


class ClassTableEncoder:
    """Conditioning from a fixed random table: condition ``c`` (int, or any string hashed to one)."""

    def __init__(self, preset: TinyPreset, *, seed: int = 0):
        g = torch.Generator().manual_seed(seed + 2)
        self.text = torch.randn(preset.classes, preset.text_len, preset.joint_dim, generator=g)
        self.pooled = torch.randn(preset.classes, preset.pooled_dim, generator=g)
        self.uses_pooled = preset.family == "flux"
        self.text_len = preset.text_len

    def encode(self, condition, *, device, dtype) -> Conditioning:
        index = _class_index(condition, len(self.text))
        pooled = self.pooled[index : index + 1].to(device, dtype) if self.uses_pooled else None
        return Conditioning(text=self.text[index : index + 1].to(device, dtype), pooled=pooled)


def _class_index(condition, classes: int) -> int:
    if condition is None:
        return 0
    if isinstance(condition, int):
        return condition % classes
    import zlib

    return zlib.crc32(str(condition).encode()) % classes
