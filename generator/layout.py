"""Mixed-resolution token layouts: which square, quadtree-aligned block of the token grid is
represented by one token at which level (block side in fine tokens: 1, 2, 4, 8, 16).

Two modes build layouts, plus the trivial one:

- ``acuity``: a block may be coarse at level ``k`` only where ``k``-times coarser sampling cannot
  carry frequencies the eye resolves at the block's point nearest to the gaze, i.e. where
  ``cutoff(ecc_nearest) <= ppd / (2 k)`` (the Nyquist limit of the coarse sampling, using the
  display's smallest pixels-per-degree, at its centre: conservative).
- ``circle``: the paper's binary mask (Chao et al. 2026): full resolution for blocks reaching
  inside a circle around the gaze (radius a fraction of the image half-diagonal), one periphery
  level (2 or 4) elsewhere.
- ``full``: every token at level 1 (the plain full-resolution grid).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from generator.acuity import AcuityKind, AcuityModel
from generator.errors import FoveaError
from generator.geometry import StimulusGeometry

LayoutMode = Literal["acuity", "circle", "full"]
LEVELS = (1, 2, 4, 8, 16)
# The paper's circle (Chao et al. 2026): radius 0.33 of the image half-diagonal.
DEFAULT_CIRCLE_RADIUS = 0.33


@dataclass(frozen=True)
class LayoutSpec:
    """What layout to build; the study's conditions map onto these fields.

    Attributes:
        mode: ``acuity``, ``circle`` or ``full``.
        strength: acuity mode: eccentricity scale (1 nominal, < 1 conservative, > 1 aggressive).
        acuity: acuity model name (``linear`` MAR or ``geisler_perry``).
        padding_deg: acuity mode: extra full-acuity radius for eye-tracker error, degrees.
        max_level: coarsest level allowed (power of two, 1 to 16).
        circle_radius: circle mode: radius as a fraction of the image half-diagonal.
        periphery_factor: circle mode: level outside the circle (2 or 4).
    """

    mode: LayoutMode = "acuity"
    strength: float = 1.0
    acuity: AcuityKind = "linear"
    padding_deg: float = 0.0
    max_level: int = 8
    circle_radius: float = DEFAULT_CIRCLE_RADIUS
    periphery_factor: int = 2

    def __post_init__(self) -> None:
        if self.mode not in ("acuity", "circle", "full"):
            raise FoveaError(f"layout mode must be acuity, circle or full, got {self.mode!r}")
        if not (math.isfinite(self.strength) and self.strength >= 0):
            raise FoveaError(f"foveation strength must be >= 0, got {self.strength!r}")
        if not (math.isfinite(self.padding_deg) and self.padding_deg >= 0):
            raise FoveaError(f"fovea padding must be >= 0 deg, got {self.padding_deg!r}")
        if self.max_level not in LEVELS:
            raise FoveaError(f"max_level must be one of {LEVELS}, got {self.max_level!r}")
        if not (math.isfinite(self.circle_radius) and self.circle_radius > 0):
            raise FoveaError(f"circle radius must be > 0, got {self.circle_radius!r}")
        if self.periphery_factor not in (2, 4):
            raise FoveaError(f"periphery factor must be 2 or 4, got {self.periphery_factor!r}")
        AcuityModel(kind=self.acuity)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TokenLayout:
    """A partition of the ``grid_h x grid_w`` fine token grid into square blocks, one token each.

    Tokens are ordered by level, then row-major by block; the all-level-1 layout is therefore
    ordered exactly like the plain full-resolution grid.

    Attributes:
        grid_h, grid_w: fine token grid size.
        token_px: image pixels per fine token side.
        rows, cols: (N,) int, top-left fine-grid cell of each token's block.
        levels: (N,) int, block side in fine tokens (1, 2, 4, 8, 16).
        gaze_px: gaze in image pixels the layout was built for (None for ``full``).
        spec: the spec the layout was built from.
    """

    grid_h: int
    grid_w: int
    token_px: int
    rows: np.ndarray
    cols: np.ndarray
    levels: np.ndarray
    gaze_px: tuple[float, float] | None = None
    spec: LayoutSpec = field(default_factory=LayoutSpec)

    @property
    def num_tokens(self) -> int:
        return int(self.levels.shape[0])

    @property
    def num_tokens_full(self) -> int:
        return self.grid_h * self.grid_w

    @property
    def token_ratio(self) -> float:
        return self.num_tokens / self.num_tokens_full

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) float (row, col): block centres in fine-grid units (fine token i sits at i)."""
        half = (self.levels - 1) / 2.0
        return np.stack([self.rows + half, self.cols + half], axis=1).astype(np.float64)

    def level_counts(self) -> dict[int, int]:
        values, counts = np.unique(self.levels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def level_map(self) -> np.ndarray:
        """(grid_h, grid_w) int: the level of the block covering each fine cell."""
        out = np.zeros((self.grid_h, self.grid_w), dtype=np.int64)
        for r, c, k in zip(self.rows, self.cols, self.levels, strict=True):
            out[r : r + k, c : c + k] = k
        return out

    def summary(self) -> dict:
        """JSON-able description: counts per level, ratio, grid and spec."""
        return {
            "mode": self.spec.mode,
            "spec": self.spec.as_dict(),
            "gaze_px": None if self.gaze_px is None else [float(v) for v in self.gaze_px],
            "grid": [self.grid_h, self.grid_w],
            "token_px": self.token_px,
            "tokens": self.num_tokens,
            "tokens_full": self.num_tokens_full,
            "token_ratio": self.token_ratio,
            "tokens_per_level": {str(k): v for k, v in self.level_counts().items()},
        }


def build_layout(
    *,
    geometry: StimulusGeometry,
    gaze_px: tuple[float, float] | None,
    spec: LayoutSpec,
    patch_px: int,
) -> TokenLayout:
    """Build the token layout of an image for a gaze point.

    Args:
        geometry: the image on its display.
        gaze_px: gaze in image pixels (may lie outside the image, but on the display); ignored
            for ``full`` mode.
        spec: layout parameters.
        patch_px: image pixels per fine token side; must divide the image size.

    Returns:
        The layout; its token count and ratio say what the gaze saves.
    """
    if not (isinstance(patch_px, int) and patch_px > 0):
        raise FoveaError(f"token size must be a positive integer of pixels, got {patch_px!r}")
    for name, size in (("width", geometry.image_width_px), ("height", geometry.image_height_px)):
        if size % patch_px:
            raise FoveaError(
                f"image {name} {size} px does not divide into {patch_px} px tokens; "
                f"use a multiple of {patch_px}"
            )
    grid_h, grid_w = geometry.image_height_px // patch_px, geometry.image_width_px // patch_px
    if spec.mode == "full" or gaze_px is None:
        if spec.mode != "full":
            raise FoveaError(f"a {spec.mode} layout needs a gaze point")
        rows, cols = np.divmod(np.arange(grid_h * grid_w), grid_w)
        return TokenLayout(grid_h, grid_w, patch_px, rows, cols, np.ones_like(rows), None, spec)
    gaze = (float(gaze_px[0]), float(gaze_px[1]))
    geometry.check_gaze(gaze)
    if spec.mode == "acuity":
        min_ecc = _acuity_min_eccentricities(geometry, spec)
    else:
        min_ecc = None
    top = spec.periphery_factor if spec.mode == "circle" else spec.max_level
    rows, cols, levels = _quadtree(geometry, gaze, spec, patch_px, grid_h, grid_w, top, min_ecc)
    order = np.lexsort((cols, rows, levels))
    return TokenLayout(
        grid_h, grid_w, patch_px, rows[order], cols[order], levels[order], gaze, spec
    )


def _acuity_min_eccentricities(geometry: StimulusGeometry, spec: LayoutSpec) -> dict[int, float]:
    """Eccentricity (deg) beyond which level k is invisible, for each level k >= 2."""
    model = AcuityModel(kind=spec.acuity)
    ppd = geometry.display.pixels_per_degree
    return {
        k: model.eccentricity_for_cutoff(
            ppd / (2 * k), strength=spec.strength, padding_deg=spec.padding_deg
        )
        for k in LEVELS[1:]
    }


def _nearest_eccentricity_deg(geometry, gaze, rows, cols, size, patch_px) -> np.ndarray:
    """Eccentricity of each block's point nearest to the gaze (image px rectangle clamp)."""
    x0, y0 = cols * patch_px, rows * patch_px
    side = size * patch_px
    nx = np.clip(gaze[0], x0, x0 + side)
    ny = np.clip(gaze[1], y0, y0 + side)
    return geometry.eccentricity_deg(nx, ny, gaze)


def _quadtree(geometry, gaze, spec, patch_px, grid_h, grid_w, top, min_ecc):
    """Split blocks top-down until each is allowed at its level (level 1 always is).

    A grid that the top level does not divide (a 720 px image: 45 tokens a side) starts from the
    top-level blocks that cover it; a block that reaches past the grid's edge splits like one the
    eye would see, so only the edge's strip is finer than the rest of the periphery."""
    rr, cc = np.meshgrid(np.arange(0, grid_h, top), np.arange(0, grid_w, top), indexing="ij")
    rows, cols = rr.ravel(), cc.ravel()
    out_r, out_c, out_k = [], [], []
    radius_px = (
        spec.circle_radius * math.hypot(geometry.image_width_px, geometry.image_height_px) / 2
    )
    level = top
    while level > 1 and rows.size:
        if min_ecc is not None:
            ok = (
                _nearest_eccentricity_deg(geometry, gaze, rows, cols, level, patch_px)
                >= min_ecc[level]
            )
        else:
            ok = _nearest_distance_px(gaze, rows, cols, level, patch_px) >= radius_px
        ok &= (rows + level <= grid_h) & (cols + level <= grid_w)
        out_r.append(rows[ok])
        out_c.append(cols[ok])
        out_k.append(np.full(int(ok.sum()), level))
        # The circle has two levels only: a periphery block that reaches the circle goes fine.
        child = 1 if min_ecc is None else level // 2
        split_r, split_c = rows[~ok], cols[~ok]
        offsets = np.arange(0, level, child)
        dr, dc = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
        rows = (split_r[:, None] + dr[None, :]).ravel()
        cols = (split_c[:, None] + dc[None, :]).ravel()
        level = child
    inside = (rows < grid_h) & (cols < grid_w)
    rows, cols = rows[inside], cols[inside]
    out_r.append(rows)
    out_c.append(cols)
    out_k.append(np.full(rows.size, level))
    return (
        np.concatenate(out_r).astype(np.int64),
        np.concatenate(out_c).astype(np.int64),
        np.concatenate(out_k).astype(np.int64),
    )


def _nearest_distance_px(gaze, rows, cols, size, patch_px) -> np.ndarray:
    x0, y0 = cols * patch_px, rows * patch_px
    side = size * patch_px
    dx = np.clip(gaze[0], x0, x0 + side) - gaze[0]
    dy = np.clip(gaze[1], y0, y0 + side) - gaze[1]
    return np.hypot(dx, dy)


def _multiples_around(px: int, block: int, largest: float) -> list[int]:
    """The multiples of ``block`` just below and above ``px``, those up to ``largest``."""
    return [m for m in (px // block * block, (px // block + 1) * block) if 0 < m <= largest]


def fine_edge_strip_note(
    width_px: int, height_px: int, *, patch_px: int, display_px: tuple[int, int] | None = None
) -> str:
    """A note ("" when none) for an image with an odd number of tokens on a side: the coarse
    blocks that reach its right (bottom) edge split down to a strip of full-resolution tokens
    one token wide (``_quadtree``), a sharp line through the periphery that also costs tokens.
    Multiples of 8 tokens (the acuity layout's default coarsest level) leave no partial block;
    the note suggests the nearest, leaving out one larger than ``display_px`` (width, height)."""
    tokens = {"right": width_px // patch_px, "bottom": height_px // patch_px}
    # Below 8 tokens a side the image holds no coarsest block to split: nothing to note.
    edges = [edge for edge, n in tokens.items() if n % 2 and n > 8]
    if not edges:
        return ""
    block = 8 * patch_px
    sides = ((width_px, tokens["right"]), (height_px, tokens["bottom"]))

    def largest(px: int) -> float:  # shown 1:1, a side fits the screen's (both when equal)
        if display_px is None:
            return math.inf
        return min(
            d for side, d in zip((width_px, height_px), display_px, strict=True) if side == px
        )

    odd = sorted({px for px, n in sides if n % 2 and n > 8})
    nearest = "; ".join(
        f"{px} px: " + " or ".join(str(m) for m in _multiples_around(px, block, largest(px)))
        for px in odd
    )
    return (
        f"the {width_px}x{height_px} px image is {tokens['right']}x{tokens['bottom']} tokens of "
        f"{patch_px} px, an odd count, so its {' and '.join(edges)} "
        f"{'edges keep strips' if len(edges) > 1 else 'edge keeps a strip'} of full-resolution "
        "tokens, a sharp line through the periphery; "
        f"a multiple of {block} px has none ({nearest})"
    )
