"""Foveated decode: the VAE decodes the periphery at the resolution its tokens carry.

A full decode runs the VAE over every latent cell, although a foveated layout's coarse tokens carry
``k``-times less detail. Here the image is made in two VAE passes:

1. **Periphery**: the whole latent grid (raw latents: the codec's ``to_latents``) is area-pooled by
   the layout's finest coarse level ``s`` and decoded at ``1/s`` size, then bicubic-upsampled to
   the full size. Cost: ``1/s^2`` of a full decode.
2. **Fovea**: the bounding box of the level-1 tokens, widened by ``margin_tokens`` on each side for
   the VAE's context (its convolutions and its mid-block attention see the crop only), is decoded
   at full resolution and pasted over the periphery, weight 1 inside the box and falling linearly
   to 0 across the margin (no seam).

For a circle of radius 0.33 at 1024² with a 1/2× periphery the two passes cover about half the
pixels of a full decode. The release's "merge" decode (``decode_mode merge``) also blends a
low-resolution decode with a high-resolution one by the mask, but its high-resolution pass decodes
the whole image; this one decodes only the fovea's box. Pixel-space codecs decode trivially; the
module still works for them (its output then matches the input inside the box exactly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from generator.layout import TokenLayout

DEFAULT_MARGIN_TOKENS = 4
"""Fine tokens of VAE context around the fovea's box (64 px at 16 px per token). The VAE's group
norms and mid-block attention see only the crop, so the fovea is close to, not equal to, a full
decode; a wider margin brings it closer (tiny random VAE: mean error 0.016 at 8 tokens)."""


@dataclass(frozen=True)
class FoveaBox:
    """Token-grid boxes (row0, row1, col0, col1), end-exclusive: ``inner`` holds every level-1
    token, ``outer`` adds the margin (clipped to the grid)."""

    inner: tuple[int, int, int, int]
    outer: tuple[int, int, int, int]


def fovea_box(
    layout: TokenLayout, *, margin_tokens: int = DEFAULT_MARGIN_TOKENS
) -> FoveaBox | None:
    """The level-1 tokens' bounding box and its widened crop; None without level-1 tokens."""
    fine = layout.levels == 1
    if not fine.any():
        return None
    r0, r1 = int(layout.rows[fine].min()), int(layout.rows[fine].max()) + 1
    c0, c1 = int(layout.cols[fine].min()), int(layout.cols[fine].max()) + 1
    m = int(margin_tokens)
    outer = (max(0, r0 - m), min(layout.grid_h, r1 + m), max(0, c0 - m), min(layout.grid_w, c1 + m))
    return FoveaBox(inner=(r0, r1, c0, c1), outer=outer)


def periphery_level(layout: TokenLayout) -> int:
    """The finest coarse level in the layout (1 if every token is fine)."""
    coarse = layout.levels[layout.levels > 1]
    return int(coarse.min()) if coarse.size else 1


def _feather(box: FoveaBox, token_px: int, device) -> torch.Tensor:
    """(H_crop, W_crop) weights: 1 inside ``inner``, linear to 0 at ``outer``'s open sides."""
    (r0, r1, c0, c1), (o_r0, o_r1, o_c0, o_c1) = box.inner, box.outer

    def ramp(lo_in, hi_in, lo_out, hi_out):
        px = torch.arange((hi_out - lo_out) * token_px, device=device, dtype=torch.float32) + 0.5
        start, end = (lo_in - lo_out) * token_px, (hi_in - lo_out) * token_px
        total = (hi_out - lo_out) * token_px
        up = torch.ones_like(px) if start == 0 else (px / start).clamp(max=1.0)
        down = (
            torch.ones_like(px) if end == total else ((total - px) / (total - end)).clamp(max=1.0)
        )
        return torch.minimum(up, down)

    return ramp(r0, r1, o_r0, o_r1)[:, None] * ramp(c0, c1, o_c0, o_c1)[None, :]


@torch.no_grad()
def foveated_decode(
    codec,
    grid: torch.Tensor,
    layout: TokenLayout,
    *,
    margin_tokens: int = DEFAULT_MARGIN_TOKENS,
    fovea: bool = True,
) -> torch.Tensor:
    """Decode a full-resolution data grid (``unpack``'s output) the foveated way.

    Args:
        codec: the model's codec (``to_latents``, ``decode_latents``, ``cells_per_token``,
            ``px_per_cell``).
        grid: (B, C, grid_h * p, grid_w * p) normalised data grid.
        layout: the layout the grid was sampled on.
        margin_tokens: fine tokens of context around the fovea's box.
        fovea: False skips the fovea pass (the periphery pass alone, for comparisons).

    Returns:
        (B, 3, H, W) RGB, float32 (H = grid_h * token_px).
    """
    level = periphery_level(layout)
    latents = codec.to_latents(grid)
    if level == 1 or decoded_area_ratio(layout, margin_tokens=margin_tokens) >= 1.0:
        return codec.decode_latents(latents)  # a full decode is no dearer
    p, token_px = codec.cells_per_token, codec.cells_per_token * codec.px_per_cell
    size = (layout.grid_h * token_px, layout.grid_w * token_px)
    low = codec.decode_latents(F.avg_pool2d(latents, level))
    image = F.interpolate(low, size=size, mode="bicubic", align_corners=False)
    box = fovea_box(layout, margin_tokens=margin_tokens)
    if box is None or not fovea:
        return image
    r0, r1, c0, c1 = box.outer
    crop = codec.decode_latents(latents[:, :, r0 * p : r1 * p, c0 * p : c1 * p])
    weight = _feather(box, token_px, image.device)
    y0, y1, x0, x1 = r0 * token_px, r1 * token_px, c0 * token_px, c1 * token_px
    region = image[:, :, y0:y1, x0:x1]
    image[:, :, y0:y1, x0:x1] = region + weight * (crop.to(image.device) - region)
    return image


def decoded_area_ratio(layout: TokenLayout, *, margin_tokens: int = DEFAULT_MARGIN_TOKENS) -> float:
    """Latent cells the foveated decode runs the VAE over, as a fraction of a full decode (1 when
    the fovea's box is so large that :func:`foveated_decode` decodes in full instead)."""
    level = periphery_level(layout)
    if level == 1:
        return 1.0
    box = fovea_box(layout, margin_tokens=margin_tokens)
    fovea = 0 if box is None else (box.outer[1] - box.outer[0]) * (box.outer[3] - box.outer[2])
    return min(1.0, 1.0 / level**2 + fovea / layout.num_tokens_full)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    if isinstance(out, torch.Tensor) and out.is_cuda:
        torch.cuda.synchronize(out.device)
    return out, time.perf_counter() - start


@torch.no_grad()
def stage_seconds(
    generator, layout: TokenLayout, *, seed: int = 0, condition=None, steps: int | None = None
) -> dict:
    """One generation on ``layout`` timed stage by stage (prompt models; the default model's
    scene refiner is not run): ``encode`` (conditioning as each image of a session gets it: the
    prompt from the session's cache), ``encode_first`` (the prompt's first, uncached encode, paid
    once per prompt and session; None for encoders without a cache), ``denoise`` (the sampler),
    ``decode_full`` and ``decode_foveated``, seconds; and each stage's share of the total with
    the foveated decode. ``steps``: the sampler's steps (default: the model's own)."""
    from generator.tokens import unpack

    d = generator.denoiser
    steps = generator.steps if steps is None else steps
    encode = lambda: generator.encoder.encode(condition, device=d.device, dtype=d.dtype)  # noqa: E731
    first_s = None
    if hasattr(generator.encoder, "clear_cache"):
        generator.encoder.clear_cache()
        _, first_s = _timed(encode)
    cond, encode_s = _timed(encode)
    noise = generator.noise_tokens(layout, seed=seed).to(d.device, d.dtype)
    ids = d.positions(layout, text_len=cond.text.shape[1])
    result, denoise_s = _timed(
        lambda: generator.sample_tokens(noise, ids=ids, cond=cond, steps=steps).tokens
    )
    grid = unpack(result.float(), layout, p=generator.codec.cells_per_token).to(d.device)
    _, full_s = _timed(lambda: generator.codec.decode(grid))
    _, fov_s = _timed(lambda: foveated_decode(generator.codec, grid, layout))
    total = encode_s + denoise_s + fov_s
    return {
        "encode_seconds": encode_s,
        "encode_first_seconds": first_s,
        "denoise_seconds": denoise_s,
        "decode_full_seconds": full_s,
        "decode_foveated_seconds": fov_s,
        "encode_share": encode_s / total,
        "denoise_share": denoise_s / total,
        "decode_share": fov_s / total,
        "decoded_area_ratio": decoded_area_ratio(layout),
    }


def _fovea_diff(image: torch.Tensor, reference: torch.Tensor, layout) -> torch.Tensor:
    token_px = image.shape[-1] // layout.grid_w
    fine = layout.level_map() == 1
    mask = np.kron(fine, np.ones((token_px, token_px), dtype=bool))
    return (image - reference).abs()[:, :, torch.from_numpy(mask)]


def max_abs_error_in_fovea(image: torch.Tensor, reference: torch.Tensor, layout) -> float:
    """Largest absolute difference over the level-1 tokens' pixels (B, 3, H, W images)."""
    diff = _fovea_diff(image, reference, layout)
    return float(diff.max()) if diff.numel() else 0.0


def mean_abs_error_in_fovea(image: torch.Tensor, reference: torch.Tensor, layout) -> float:
    """Mean absolute difference over the level-1 tokens' pixels (B, 3, H, W images)."""
    diff = _fovea_diff(image, reference, layout)
    return float(diff.mean()) if diff.numel() else 0.0
