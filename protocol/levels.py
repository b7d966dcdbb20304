"""What a condition's ``level`` means for the generator: level -> ``LayoutSpec``.

The mapping itself is the generator's (``generator.levels.layout_spec_for_level``); this module
feeds it a protocol condition.
"""

from __future__ import annotations

import math

from generator.levels import layout_spec_for_level
from protocol.schema import Condition


def layout_spec(*, condition: Condition, level: float):
    """The generator layout for ``condition`` at ``level`` (larger = more degradation).

    Args:
        condition: the protocol condition.
        level: strength (acuity), 1 - radius (radius_shrink) or periphery factor.

    Returns:
        ``generator.LayoutSpec``.
    """
    return layout_spec_for_level(
        level_variable=condition.level_variable,
        level=level,
        acuity=condition.acuity,
        padding_deg=condition.padding_deg,
        max_level=condition.max_level,
        circle_radius=condition.circle_radius,
        periphery_factor=condition.periphery_factor,
    )


def protocol_token_rules(protocol) -> str:
    """The token rules the study generates ``protocol``'s stimuli with
    (``generator.token_rules.default_token_rules``: the release's with ``[stimulus] lora``, else
    the kit's; the generation services do not override the default)."""
    from generator.token_rules import default_token_rules

    return default_token_rules(lora=protocol.stimulus.lora is not None)


def condition_layout(
    condition: Condition, level: float, geometry, *, token_px: int, token_rules: str
):
    """``condition``'s token layout at ``level`` with the gaze on its fixation target, as the
    generator builds it under ``token_rules`` (``protocol_token_rules``; ``geometry``:
    ``protocol.geometry.stimulus_geometry``; ``token_px``: pixels per fine token)."""
    from generator.token_rules import token_rules_layout

    spec = layout_spec(condition=condition, level=level)
    gaze = tuple(float(v) for v in geometry.deg_to_image_px(*condition.fixation_deg))
    return token_rules_layout(
        token_rules,
        geometry=geometry,
        gaze_px=None if spec.mode == "full" else gaze,
        spec=spec,
        patch_px=token_px,
    )


def full_resolution_radius_deg(layout, geometry) -> float:
    """How far from the layout's gaze every token is a full-resolution one: the eccentricity
    (deg) of the nearest point of any coarser token (``inf`` when there is none). ``layout``: a
    ``generator.TokenLayout`` built for a gaze (``condition_layout``); ``geometry``: its
    ``StimulusGeometry``."""
    import numpy as np

    coarse = layout.levels > 1
    if not coarse.any():
        return math.inf
    token_px = layout.token_px
    x0, y0 = layout.cols[coarse] * token_px, layout.rows[coarse] * token_px
    side = layout.levels[coarse] * token_px
    gx, gy = (float(v) for v in layout.gaze_px)
    nearest_x, nearest_y = np.clip(gx, x0, x0 + side), np.clip(gy, y0, y0 + side)
    return float(np.min(geometry.eccentricity_deg(nearest_x, nearest_y, (gx, gy))))


def start_level(condition: Condition, procedure) -> float:
    """Where ``condition``'s staircases start (``procedure``: the protocol's ``[procedure]``):
    its ``start_level``, else the middle of its range on the staircases' step scale (geometric
    for log steps, arithmetic for linear). Other procedures: ``start_level`` or the geometric
    middle (where a preview shows the range's middle)."""
    if condition.start_level is not None:
        return float(condition.start_level)
    low, high = float(condition.level_min), float(condition.level_max)
    if procedure.method == "staircase" and procedure.staircase.step_scale != "log":
        return 0.5 * (low + high)
    return math.sqrt(low * high)


def condition_summary(condition: Condition) -> dict:
    """JSON-able description for the session sidecar's ``conditions`` table."""
    return condition.model_dump(mode="json")
