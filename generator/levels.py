"""What a study level means for the generator: level variable + level -> ``LayoutSpec``.

The one definition of the mapping; the protocol (``protocol.levels.layout_spec``), the stimulus
sets and the analysis' token savings (``analysis.tokens``) all call ``layout_spec_for_level``.
Larger levels always mean more degradation:

- ``strength`` (acuity mode): ``LayoutSpec(strength=level)`` with the condition's acuity model,
  padding and coarsest level;
- ``radius_shrink`` (circle mode): the full-resolution circle's radius is ``1 - level`` of the
  image half-diagonal (level 0.67 is the paper's r = 0.33); the periphery factor is fixed;
- ``periphery_factor`` (circle mode): the periphery is ``level`` times coarser (2 or 4); the
  radius is fixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from generator.errors import FoveaError
from generator.layout import DEFAULT_CIRCLE_RADIUS, LayoutSpec

LevelVariable = Literal["strength", "radius_shrink", "periphery_factor"]
LEVEL_VARIABLES: tuple[str, ...] = ("strength", "radius_shrink", "periphery_factor")
# Which level variables apply to which layout mode.
LEVEL_VARIABLES_BY_MODE: dict[str, tuple[str, ...]] = {
    "acuity": ("strength",),
    "circle": ("radius_shrink", "periphery_factor"),
}

#: What a level of each variable measures, for axis labels ("" = a plain number, no unit).
LEVEL_UNITS: dict[str, str] = {
    "strength": "",
    "radius_shrink": "1 - radius / half-diagonal",
    "periphery_factor": "times coarser periphery",
}


def level_axis_label(level_variable: str) -> str:
    """An axis label for levels of ``level_variable``: its name, with its unit in brackets when it
    has one (``radius_shrink (1 - radius / half-diagonal)``); ``level`` for an unknown one."""
    if level_variable not in LEVEL_UNITS:
        return "level"
    unit = LEVEL_UNITS[level_variable]
    return f"{level_variable} ({unit})" if unit else level_variable


@dataclass(frozen=True)
class LevelDomain:
    """The levels of a level variable that have a layout: ``low`` to ``high`` (level units), as
    the protocol schema allows them (``protocol.stimulus_settings.Condition``).

    Attributes:
        variable: the level variable.
        low, high: the possible levels' ends (``high`` may be ``math.inf``).
        why: what limits them, for the report's methods text.
        low_open, high_open: the end itself is not a possible level (strength > 0,
            0 < radius_shrink < 1).
        values: a discrete variable's only levels with a layout, the only ones a protocol may
            test (periphery factor 2 or 4; a threshold between them interpolates two tested
            layouts); None: every level in the domain.
    """

    variable: str
    low: float
    high: float
    why: str
    low_open: bool = False
    high_open: bool = False
    values: tuple[float, ...] | None = None

    def contains(self, level: float) -> bool:
        """Whether ``level`` is a possible level (open ends excluded)."""
        above = level > self.low if self.low_open else level >= self.low
        below = level < self.high if self.high_open else level <= self.high
        return bool(above and below)

    def testable(self, level: float) -> bool:
        """Whether a protocol may test ``level``: a possible level, and one of ``values`` for a
        discrete variable (``protocol.stimulus_settings.Condition`` validates by it)."""
        return self.contains(level) and (self.values is None or level in self.values)

    def describe(self) -> str:
        """The testable levels in words: ``> 0 and < 1``, ``> 0``, ``2 or 4``."""
        if self.values is not None:
            return " or ".join(f"{v:g}" for v in self.values)
        ends = [f"{'>' if self.low_open else '>='} {self.low:g}"]
        if math.isfinite(self.high):
            ends.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(ends)

    def clip(self, lo: float, hi: float) -> tuple[float, float, list[str]]:
        """An interval cut to the domain's ends, and which ends were cut (``"lower"``,
        ``"upper"``: the interval ran beyond them; an open end is the interval's limit)."""
        cut = [end for end, out in (("lower", lo < self.low), ("upper", hi > self.high)) if out]
        return max(lo, self.low), min(hi, self.high), cut


#: Level variables whose levels are limited (``layout_spec_for_level``): the one definition of
#: the levels a protocol may give (``protocol.stimulus_settings.Condition`` validates by it:
#: levels > 0; radius_shrink < 1) and the analysis' ends of a threshold's interval:
#: radius_shrink 1 leaves a full-resolution circle of radius 0, and beyond it no layout exists;
#: a periphery factor is 2 or 4 (a threshold between them interpolates two tested layouts;
#: beyond them there is none).
LEVEL_DOMAINS: dict[str, LevelDomain] = {
    "strength": LevelDomain("strength", 0.0, math.inf, "strength > 0", low_open=True),
    "radius_shrink": LevelDomain(
        "radius_shrink",
        0.0,
        1.0,
        "the circle's radius, 1 - level of the half-diagonal, is > 0, and levels are > 0",
        low_open=True,
        high_open=True,
    ),
    "periphery_factor": LevelDomain(
        "periphery_factor",
        2.0,
        4.0,
        "the periphery is 2 or 4 times coarser, no other factor",
        values=(2.0, 4.0),
    ),
}


def layout_spec_for_level(
    *,
    level_variable: str,
    level: float,
    acuity: str = "linear",
    padding_deg: float = 0.0,
    max_level: int = 8,
    circle_radius: float = DEFAULT_CIRCLE_RADIUS,
    periphery_factor: int = 2,
) -> LayoutSpec:
    """The layout at ``level`` of ``level_variable``.

    Args:
        level_variable: ``strength``, ``radius_shrink`` or ``periphery_factor``.
        level: the level (strength; 1 - radius as a fraction of the half-diagonal; or the
            periphery factor, rounded to 2 or 4).
        acuity, padding_deg, max_level: the acuity layout's model, extra full-acuity radius
            (degrees) and coarsest level (``strength`` only).
        circle_radius: fixed radius, fraction of the half-diagonal (``periphery_factor`` only).
        periphery_factor: fixed periphery factor (``radius_shrink`` only).

    Raises:
        FoveaError: an unknown level variable, or a level without a valid layout.
    """
    if level_variable == "strength":
        return LayoutSpec(
            mode="acuity",
            strength=float(level),
            acuity=acuity,
            padding_deg=float(padding_deg),
            max_level=int(max_level),
        )
    if level_variable == "radius_shrink":
        return LayoutSpec(
            mode="circle",
            circle_radius=1.0 - float(level),
            periphery_factor=int(periphery_factor),
        )
    if level_variable == "periphery_factor":
        return LayoutSpec(
            mode="circle",
            circle_radius=float(circle_radius),
            periphery_factor=int(round(float(level))),
        )
    raise FoveaError(
        f"level_variable {level_variable!r} is not one of {', '.join(LEVEL_VARIABLES)}"
    )
