"""Token layouts exactly as the Foveated Diffusion release builds them for its circle mask.

The release's LoRAs (:mod:`generator.release_lora`) were trained on these token sequences, so a
generator meant to reproduce the paper samples on :func:`release_circle_layout` and gives the
transformer :func:`release_ids`. Facts (public fork fahadsarfraz-tomtom/foveated_diffusion,
``src/masks/shapes.py`` ``create_foveation_mask`` and ``src/diffsynth_fov/pipeline.py``
``_prepare_latent_image_ids_foveation`` / ``_downsample_latents``):

- **Mask.** On the fine token grid (``H/16 x W/16``) coarsened by the factor ``f`` (2 or 4): the
  centre, given in ``[-0.5, 0.5]`` image units, is snapped to a coarse-grid line,
  ``cx = floor((x + 0.5) * w_f - 0.5) + 0.5`` (likewise ``cy``), in coarse-cell units where cell
  ``i`` has its centre at ``i``; a coarse cell is high resolution when its centre lies within
  ``r * sqrt(h_f^2 + w_f^2) / 2`` of that point (inclusive); each coarse cell is an ``f x f``
  block of fine tokens, all fine or one coarse token.
- **Order.** Blocks row-major; a fine block contributes its ``f^2`` tokens row-major, a coarse
  block one token (its top-left slot).
- **Positions.** Ids ``(t, h, w, l) = (0, row, col, 0)`` of each token's fine cell, the top-left
  cell of a coarse block; text ids ``(0, 0, 0, l)``. Inside the DiT (CRPA attention) coarse queries
  use a second RoPE table with ``h, w`` divided by ``f`` and attend only to the block top-left
  keys (every coarse token and the top-left token of each fine block).
- **Time and noise.** Every token gets the same timestep; the schedule's shift uses the
  full-resolution token count. Coarse-token noise is drawn independently on the coarse grid.

The kit's own ``circle`` mode (:mod:`generator.layout`) differs: it keeps a block fine when any
point of it lies inside the circle around the (unsnapped) gaze and orders tokens by level; its
token sets differ from the release's near the circle's edge.
"""

from __future__ import annotations

import math

import numpy as np

from generator.errors import FoveaError
from generator.geometry import StimulusGeometry
from generator.layout import LayoutSpec, TokenLayout


def release_coarse_mask(
    grid_h: int, grid_w: int, *, center: tuple[float, float], radius: float, factor: int
) -> np.ndarray:
    """(grid_h / f, grid_w / f) bool: which coarse cells are high resolution.

    Args:
        grid_h, grid_w: fine token grid (must divide by ``factor``).
        center: (x, y) in image units, ``[-0.5, 0.5]`` (0 = the image centre).
        radius: fraction of the half-diagonal.
        factor: periphery factor ``f`` (2 or 4).
    """
    if factor not in (2, 4):
        raise FoveaError(f"periphery factor must be 2 or 4, got {factor!r}")
    if grid_h % factor or grid_w % factor:
        raise FoveaError(f"token grid {grid_h}x{grid_w} does not divide into {factor}x{factor}")
    low_h, low_w = grid_h // factor, grid_w // factor
    cx = math.floor((center[0] + 0.5) * low_w - 0.5) + 0.5
    cy = math.floor((center[1] + 0.5) * low_h - 0.5) + 0.5
    radius_cells = radius * math.hypot(low_h, low_w) / 2.0
    y, x = np.meshgrid(np.arange(low_h), np.arange(low_w), indexing="ij")
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius_cells**2


def layout_from_coarse_mask(
    fine_blocks: np.ndarray, *, factor: int, token_px: int, gaze_px=None, spec=None
) -> TokenLayout:
    """A :class:`TokenLayout` in the release's token order from a coarse-cell mask
    (True = the block's ``f x f`` fine tokens, False = one level-``f`` token)."""
    low_h, low_w = fine_blocks.shape
    rows, cols, levels = [], [], []
    offsets = [(dy, dx) for dy in range(factor) for dx in range(factor)]
    for by in range(low_h):
        for bx in range(low_w):
            r0, c0 = by * factor, bx * factor
            if fine_blocks[by, bx]:
                rows += [r0 + dy for dy, _ in offsets]
                cols += [c0 + dx for _, dx in offsets]
                levels += [1] * len(offsets)
            else:
                rows.append(r0)
                cols.append(c0)
                levels.append(factor)
    as_int = lambda a: np.asarray(a, dtype=np.int64)  # noqa: E731
    return TokenLayout(
        low_h * factor,
        low_w * factor,
        token_px,
        as_int(rows),
        as_int(cols),
        as_int(levels),
        gaze_px,
        spec if spec is not None else LayoutSpec(mode="circle", periphery_factor=factor),
    )


def gaze_to_center(gaze_px: tuple[float, float], geometry: StimulusGeometry) -> tuple[float, float]:
    """Gaze in image pixels -> the release's mask centre in ``[-0.5, 0.5]`` image units."""
    return (
        float(gaze_px[0]) / geometry.image_width_px - 0.5,
        float(gaze_px[1]) / geometry.image_height_px - 0.5,
    )


def release_circle_layout(
    *, geometry: StimulusGeometry, gaze_px, spec: LayoutSpec, patch_px: int
) -> TokenLayout:
    """The release's circle layout for a gaze point (``spec``: ``circle_radius`` and
    ``periphery_factor``; ``patch_px``: image pixels per fine token, 16 for FLUX.2)."""
    if spec.mode != "circle":
        raise FoveaError(f"the release builds circle layouts only, got mode {spec.mode!r}")
    for size in (geometry.image_width_px, geometry.image_height_px):
        if size % patch_px:
            raise FoveaError(f"image size {size} px does not divide into {patch_px} px tokens")
    grid_h, grid_w = geometry.image_height_px // patch_px, geometry.image_width_px // patch_px
    mask = release_coarse_mask(
        grid_h,
        grid_w,
        center=gaze_to_center(gaze_px, geometry),
        radius=spec.circle_radius,
        factor=spec.periphery_factor,
    )
    gaze = (float(gaze_px[0]), float(gaze_px[1]))
    return layout_from_coarse_mask(
        mask, factor=spec.periphery_factor, token_px=patch_px, gaze_px=gaze, spec=spec
    )


def release_ids(layout: TokenLayout) -> np.ndarray:
    """(N, 4) float image ids ``(0, row, col, 0)``: each token's fine cell, a coarse token's
    block top-left (the release's convention; compare :func:`generator.denoiser.layout_ids`)."""
    ids = np.zeros((layout.num_tokens, 4))
    ids[:, 1] = layout.rows
    ids[:, 2] = layout.cols
    return ids


def release_attention_masks(layout: TokenLayout) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool ``high_res`` (level-1 tokens) and (N,) bool ``top_left`` (the keys coarse queries
    attend to: every coarse token and the top-left token of each fine block)."""
    factor = int(layout.levels.max())
    high_res = layout.levels == 1
    top_left = ~high_res | ((layout.rows % factor == 0) & (layout.cols % factor == 0))
    return high_res, top_left
