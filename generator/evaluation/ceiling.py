"""What any foveated generator of a given base model can reach, as opposed to what ours reaches.

A foveated generation sees, in a level-k region, only the k x k block means of the seed's noise;
the full-resolution reference also sees the noise inside the blocks. Two scores bound the
benchmark's JOD from above (both against the full-resolution image of the seed):

- ``oracle``: the reference itself, reduced to the layout's tokens (block means) and unpacked
  like a generation. Only resolution is lost: the perceptual model's verdict on the layout.
- ``ceiling``: the base model's full-resolution image of *other* noise with the same block means
  (the within-block noise resampled), reduced the same way. A foveated generator knows nothing
  that tells these two noises apart, so this is (one draw of) the best it can do: content the base
  model makes from within-block noise is a coin toss for it.

If ``ceiling`` is far below ``oracle``, more post-training cannot close the gap: the base model
itself must make its coarse content from coarse noise.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from generator.layout import TokenLayout
from generator.tokens import pack, unpack


def level_map(layout: TokenLayout, *, cells_per_token: int) -> torch.Tensor:
    """(H, W) int: each data cell's block level (1 = fine) under ``layout``."""
    cells = torch.from_numpy(layout.level_map())
    return cells.repeat_interleave(cells_per_token, 0).repeat_interleave(cells_per_token, 1)


def block_means(grid: torch.Tensor, level: int) -> torch.Tensor:
    """(B, C, H, W) -> the same shape, each ``level`` x ``level`` block replaced by its mean."""
    if level == 1:
        return grid
    pooled = F.avg_pool2d(grid, level)
    out = pooled.repeat_interleave(level, 2).repeat_interleave(level, 3)
    # A last row or column of cells that no whole block covers keeps its own values.
    rows, cols = out.shape[-2:]
    return torch.cat([torch.cat([out, grid[..., :rows, cols:]], 3), grid[..., rows:, :]], 2)


def resample_within_blocks(
    noise: torch.Tensor, layout: TokenLayout, *, cells_per_token: int, seed: int
) -> torch.Tensor:
    """``noise`` (1, C, H, W) with the same block means under ``layout`` and fresh within-block
    noise (from ``seed``); fine regions keep their noise exactly. Still unit-variance white."""
    fresh = torch.randn(noise.shape, generator=torch.Generator().manual_seed(int(seed)))
    levels = level_map(layout, cells_per_token=cells_per_token)
    out = noise.clone()
    for k in torch.unique(levels).tolist():
        if k == 1:
            continue
        mixed = block_means(noise, k) + fresh - block_means(fresh, k)
        out = torch.where(levels == k, mixed, out)
    return out


def reduce_to_layout(image: np.ndarray, layout: TokenLayout, *, cells_per_token: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same image as the layout's tokens would show it (pack, unpack)."""
    grid = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    tokens = pack(grid, layout, p=cells_per_token)
    out = unpack(tokens, layout, p=cells_per_token)[0].permute(1, 2, 0)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()
