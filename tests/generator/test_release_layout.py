"""The release's circle-mask token construction, re-derived independently on small grids.

The reference below is written from the facts listed in generator/release_layout.py (mask rule,
block-major order, top-left ids), by a different route: a per-fine-cell rule with exact fractions,
then a reshape of the full id grid into blocks (as a tensor implementation would do it)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.release_layout import (
    release_attention_masks,
    release_circle_layout,
    release_coarse_mask,
    release_ids,
)
from generator.tokens import pack, unpack


def _reference(grid_h, grid_w, center, radius, f):
    """(ids (N, 4), high_res (N,), top_left (N,)) from the release's formulas."""
    low_h, low_w = grid_h // f, grid_w // f
    # Snapped centre, in coarse cells (cell i centred at i): floor(u * n - 1/2) + 1/2.
    snap = lambda u, n: Fraction(int(np.floor((u + 0.5) * n - 0.5))) + Fraction(1, 2)  # noqa: E731
    cx, cy = snap(center[0], low_w), snap(center[1], low_h)
    r2 = (radius * np.hypot(low_h, low_w) / 2.0) ** 2
    fine_cell = np.zeros((grid_h, grid_w), dtype=bool)
    for r in range(grid_h):
        for c in range(grid_w):
            by, bx = r // f, c // f
            d2 = float((bx - cx) ** 2 + (by - cy) ** 2)
            fine_cell[r, c] = d2 <= r2
    # Full id grid (0, h, w, 0), viewed as blocks (h_d, w_d, f*f, 4).
    hh, ww = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    ids = np.stack([np.zeros_like(hh), hh, ww, np.zeros_like(hh)], axis=-1)
    blocks = ids.reshape(low_h, f, low_w, f, 4).transpose(0, 2, 1, 3, 4).reshape(-1, f * f, 4)
    fine_block = fine_cell.reshape(low_h, f, low_w, f).transpose(0, 2, 1, 3).reshape(-1, f * f)
    keep = np.ones_like(fine_block)
    keep[~fine_block.any(axis=1), 1:] = False  # a coarse block keeps its top-left slot
    within = np.tile(np.arange(f * f), (low_h * low_w, 1))
    hr = np.repeat(fine_block.any(axis=1)[:, None], f * f, axis=1)
    top_left = (within == 0) | ~hr
    return blocks[keep].astype(float), hr[keep], top_left[keep]


CASES = [
    (8, 8, (0.0, 0.0), 0.33, 2),
    (8, 8, (0.2, -0.1), 0.33, 2),
    (16, 12, (-0.3, 0.25), 0.5, 2),
    (16, 16, (0.1, 0.3), 0.2, 4),
    (12, 16, (0.0, 0.0), 0.45, 4),
    (8, 8, (0.0, 0.0), 2.0, 2),  # everything fine
    (8, 8, (0.45, 0.45), 0.01, 2),  # one block fine at most
]


@pytest.mark.parametrize("grid_h,grid_w,center,radius,f", CASES)
def test_tokens_match_the_release(grid_h, grid_w, center, radius, f):
    token_px = 16
    geometry = StimulusGeometry(
        display=default_display(),
        image_width_px=grid_w * token_px,
        image_height_px=grid_h * token_px,
    )
    gaze = (
        (center[0] + 0.5) * geometry.image_width_px,
        (center[1] + 0.5) * geometry.image_height_px,
    )
    spec = LayoutSpec(mode="circle", circle_radius=radius, periphery_factor=f)
    layout = release_circle_layout(geometry=geometry, gaze_px=gaze, spec=spec, patch_px=token_px)
    ids, high_res, top_left = _reference(grid_h, grid_w, center, radius, f)
    assert layout.num_tokens == len(ids)
    np.testing.assert_array_equal(release_ids(layout), ids)
    ours_hr, ours_tl = release_attention_masks(layout)
    np.testing.assert_array_equal(ours_hr, high_res)
    if not high_res.all():
        np.testing.assert_array_equal(ours_tl, top_left)
    # Every fine cell is covered exactly once.
    assert int((layout.levels**2).sum()) == grid_h * grid_w


def test_release_layout_packs_and_unpacks():
    """The kit's pack/unpack work on release-ordered layouts (they look tokens up by level)."""
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    spec = LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=2)
    layout = release_circle_layout(geometry=geometry, gaze_px=(64, 64), spec=spec, patch_px=16)
    grid = torch_randn(1, 3, 16, 16)
    tokens = pack(grid, layout, p=2)
    out = unpack(tokens, layout, p=2)
    fine = layout.level_map().repeat(2, 0).repeat(2, 1) == 1
    np.testing.assert_allclose(out[0][:, fine].numpy(), grid[0][:, fine].numpy(), atol=1e-6)


def test_mask_rejects_bad_factor_and_grid():
    from generator.errors import FoveaError

    with pytest.raises(FoveaError):
        release_coarse_mask(8, 8, center=(0, 0), radius=0.3, factor=3)
    with pytest.raises(FoveaError):
        release_coarse_mask(6, 8, center=(0, 0), radius=0.3, factor=4)


def torch_randn(*shape):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def test_flux_denoiser_gives_release_ids():
    from generator.denoiser import FluxDenoiser
    from generator.tiny import build_tiny_transformer

    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    spec = LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=2)
    layout = release_circle_layout(geometry=geometry, gaze_px=(40, 70), spec=spec, patch_px=16)
    denoiser = FluxDenoiser(build_tiny_transformer("flux2-tiny"), position_ids="release")
    ids = denoiser.positions(layout, text_len=3)
    np.testing.assert_array_equal(ids.img_ids.numpy(), release_ids(layout))
    np.testing.assert_array_equal(ids.txt_ids[:, 3].numpy(), [0, 1, 2])
