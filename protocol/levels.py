"""What a condition's ``level`` means for the generator: level -> ``LayoutSpec``."""

from __future__ import annotations

from protocol.schema import Condition


def layout_spec(*, condition: Condition, level: float):
    """The generator layout for ``condition`` at ``level`` (larger = more degradation).

    Args:
        condition: the protocol condition.
        level: strength (acuity), 1 - radius (radius_shrink) or periphery factor.

    Returns:
        ``generator.LayoutSpec``.
    """
    from generator.layout import LayoutSpec

    if condition.level_variable == "strength":
        return LayoutSpec(
            mode="acuity",
            strength=float(level),
            acuity=condition.acuity,
            padding_deg=condition.padding_deg,
            max_level=condition.max_level,
        )
    if condition.level_variable == "radius_shrink":
        return LayoutSpec(
            mode="circle",
            circle_radius=1.0 - float(level),
            periphery_factor=condition.periphery_factor,
        )
    return LayoutSpec(
        mode="circle", circle_radius=condition.circle_radius, periphery_factor=int(round(level))
    )


def condition_summary(condition: Condition) -> dict:
    """JSON-able description for the session sidecar's ``conditions`` table."""
    return condition.model_dump(mode="json")
