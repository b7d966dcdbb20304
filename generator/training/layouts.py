"""Random token layouts for foveated post-training: gaze, strength and mode drawn per micro-batch.

A training crop is treated as an image shown centred at native resolution on the default display,
so its layouts are exactly those the generator would build for an image of that size.
"""

from __future__ import annotations

import math

import numpy as np

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, TokenLayout, build_layout

# Mode mix: mostly acuity layouts, some of the paper's circle, some full grids so that
# post-training keeps full-resolution behaviour.
MODE_PROBS = {"acuity": 0.6, "circle": 0.25, "full": 0.15}


def random_layout(
    *,
    rng: np.random.Generator,
    image_px: int,
    patch_px: int,
    strength_range=(0.25, 4.0),
    mode_probs: dict[str, float] | None = None,
) -> TokenLayout:
    """One random layout of a square ``image_px`` image.

    Args:
        rng: numpy generator (the only randomness).
        image_px: image side in pixels.
        patch_px: pixels per fine token.
        strength_range: acuity strength drawn log-uniformly in this range.
        mode_probs: relative weight of each mode (default ``MODE_PROBS``; missing modes: 0).
    """
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=image_px, image_height_px=image_px
    )
    weights = np.array([(mode_probs or MODE_PROBS).get(m, 0.0) for m in MODE_PROBS], float)
    mode = rng.choice(list(MODE_PROBS), p=weights / weights.sum())
    if mode == "full":
        return build_layout(
            geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=patch_px
        )
    if mode == "acuity":
        lo, hi = strength_range
        strength = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        spec = LayoutSpec(mode="acuity", strength=strength, max_level=8)
        gaze = rng.uniform(0.0, image_px, size=2)
    else:  # the paper's training distribution: centre in [-0.3, 0.3]^2, r in [0.2, 0.5]
        spec = LayoutSpec(
            mode="circle",
            circle_radius=float(rng.uniform(0.2, 0.5)),
            periphery_factor=int(rng.choice([2, 4])),
        )
        gaze = image_px / 2 * (1 + rng.uniform(-0.3, 0.3, size=2))
    return build_layout(
        geometry=geometry, gaze_px=(float(gaze[0]), float(gaze[1])), spec=spec, patch_px=patch_px
    )


def full_layout(*, image_px: int, patch_px: int) -> TokenLayout:
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=image_px, image_height_px=image_px
    )
    return build_layout(
        geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=patch_px
    )
