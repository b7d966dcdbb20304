"""Mixed-resolution tokens from full-resolution data, and back.

Data are grids ``(B, C, H, W)`` with ``H = grid_h * p`` and ``W = grid_w * p`` for ``p`` data
cells per fine token (pixels for a pixel-space model, latent cells for a latent model). A level-k
token holds the ``p x p`` patch of the ``k``-times area-downsampled grid covering its block, so
every token has ``D = C * p * p`` values, flattened channel-major like diffusers' Flux packing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from generator.layout import TokenLayout


def patchify(grid: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, h*p, w*p) -> (B, h*w, C*p*p), row-major over the h x w patches."""
    b, c, hh, ww = grid.shape
    h, w = hh // p, ww // p
    x = grid.reshape(b, c, h, p, w, p).permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, p, p)
    return x.reshape(b, h * w, c * p * p)


def unpatchify(tokens: torch.Tensor, h: int, w: int, p: int) -> torch.Tensor:
    """(B, h*w, C*p*p) -> (B, C, h*p, w*p); inverse of :func:`patchify`."""
    b, _, d = tokens.shape
    c = d // (p * p)
    x = tokens.reshape(b, h, w, c, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, C, h, p, w, p)
    return x.reshape(b, c, h * p, w * p)


def _level_index(layout: TokenLayout, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Token indices of ``level`` in the layout and their flat index on the level's grid."""
    sel = np.flatnonzero(layout.levels == level)
    grid_w = layout.grid_w // level
    flat = (layout.rows[sel] // level) * grid_w + layout.cols[sel] // level
    return sel, flat


def pack(grid: torch.Tensor, layout: TokenLayout, *, p: int, noise: bool = False) -> torch.Tensor:
    """Full-resolution data -> the layout's tokens.

    Args:
        grid: (B, C, grid_h*p, grid_w*p) data (or noise).
        layout: token layout.
        p: data cells per fine token side.
        noise: if True, multiply level-k block means by k so that unit-variance white noise stays
            unit-variance in every token (a mean of k*k iid values has variance 1/k^2).

    Returns:
        (B, N, C*p*p) tokens in layout order.
    """
    b, c = grid.shape[:2]
    out = grid.new_empty(b, layout.num_tokens, c * p * p)
    for level in np.unique(layout.levels):
        level = int(level)
        sel, flat = _level_index(layout, level)
        pooled = F.avg_pool2d(grid, level) if level > 1 else grid  # (B, C, H/k, W/k)
        # The whole level-k blocks only, when k does not divide the grid (edge tokens are finer).
        pooled = pooled[..., : layout.grid_h // level * p, : layout.grid_w // level * p]
        if noise and level > 1:
            pooled = pooled * level
        out[:, torch.from_numpy(sel)] = patchify(pooled, p)[:, torch.from_numpy(flat)]
    return out


def unpack(tokens: torch.Tensor, layout: TokenLayout, *, p: int) -> torch.Tensor:
    """The layout's tokens -> full-resolution data, without seams.

    Level-1 tokens are reproduced exactly. Coarser regions are upsampled 2x at a time
    (bilinear), each step reading the next finer level's data across block borders, so detail
    fades continuously into the periphery instead of stepping at block edges.

    Args:
        tokens: (B, N, C*p*p) in layout order.
        layout: token layout.
        p: data cells per fine token side.

    Returns:
        (B, C, grid_h*p, grid_w*p).
    """
    b, _, d = tokens.shape
    top = int(layout.levels.max())
    canvases: dict[int, torch.Tensor] = {}
    known: dict[int, torch.Tensor] = {}  # per level: (h_k, w_k) bool, cell holds data
    level = 1
    while level <= top:
        h, w = layout.grid_h // level, layout.grid_w // level
        flat_tokens = tokens.new_zeros(b, h * w, d)
        mask = torch.zeros(h * w, dtype=torch.bool)
        sel, flat = _level_index(layout, level)
        if sel.size:
            flat_t = torch.from_numpy(flat)
            flat_tokens[:, flat_t] = tokens[:, torch.from_numpy(sel)]
            mask[flat_t] = True
        canvas = unpatchify(flat_tokens, h, w, p)
        mask = mask.reshape(h, w).to(tokens.device)
        if level > 1:  # cells subdivided into finer blocks: average the finer canvas
            finer = known[level // 2]
            subdivided = F.avg_pool2d(finer[None, None].float(), 2)[0, 0] == 1.0
            pooled = F.avg_pool2d(canvases[level // 2], 2)[..., : h * p, : w * p]
            canvas = torch.where(_cells(subdivided, p), pooled, canvas)
            mask = mask | subdivided
        canvases[level], known[level] = canvas, mask
        level *= 2
    out = canvases[top]
    level = top // 2
    while level >= 1:
        up = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False)
        # A grid this level's blocks do not divide has a last row or column that no coarser
        # block covers (finer tokens hold it): pad the upsampled canvas to this level's size.
        missing_h = canvases[level].shape[-2] - up.shape[-2]
        missing_w = canvases[level].shape[-1] - up.shape[-1]
        if missing_h or missing_w:
            up = F.pad(up, (0, missing_w, 0, missing_h), mode="replicate")
        out = torch.where(_cells(known[level], p), canvases[level], up)
        level //= 2
    return out


def _cells(mask: torch.Tensor, p: int) -> torch.Tensor:
    """(h, w) bool per token cell -> (h*p, w*p) bool per data cell."""
    return mask.repeat_interleave(p, 0).repeat_interleave(p, 1)
