"""What a simulated study is: its conditions, observers and procedure (``SimulationSpec``), and
the parametric observer's psychometric function (the study's ``ParametricObserver``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import special

from generator.errors import FoveaError
from protocol.geometry import display_record
from protocol.schema import DisplaySettings

C_WIDTH = 2.0 * float(special.ndtri(0.95))  # psignifit: width spans S = 0.05 .. 0.95


def _default_display() -> dict:
    """The sidecar display table of the protocol schema's default display."""
    return display_record(DisplaySettings())


@dataclass(frozen=True, kw_only=True)
class SimCondition:
    """One condition of the simulated protocol.

    Attributes:
        name: condition name.
        threshold: group (geometric-mean) threshold, level units.
        layout_mode, level_variable, fixation_deg: as in a protocol's ``[[conditions]]``.
        level_min, level_max: QUEST+ range; constant stimuli use ``levels`` or 7 log-spaced
            levels over this range.
        levels: explicit constant-stimuli levels.
    """

    name: str
    threshold: float
    layout_mode: str = "acuity"
    level_variable: str = "strength"
    fixation_deg: tuple[float, float] = (0.0, 0.0)
    level_min: float = 0.1
    level_max: float = 8.0
    levels: tuple[float, ...] = ()


def _default_conditions() -> tuple[SimCondition, ...]:
    return (
        SimCondition(name="acuity_centre", threshold=1.5),
        SimCondition(name="acuity_right8", threshold=1.0, fixation_deg=(8.0, 0.0)),
    )


@dataclass(frozen=True, kw_only=True)
class SimulationSpec:
    """A simulated study.

    Attributes:
        participants: number of (parametric) participants, labelled 01, 02, ...
        conditions: the conditions.
        trials_per_condition: responded trials per participant and condition.
        procedure: ``constant`` (constant stimuli) or ``questplus`` (the study's QUEST+).
        width_log10: psychometric width (5-95 % span) on log10 level.
        lapse: lapse rate.
        between_sd_log10: SD of participants' log10 thresholds around the group's.
        fixation_break_rate: share of presentations aborted by a fixation break (re-presented).
        deadline_miss_rate: share of trials whose generation missed the deadline (cached image).
        rt_median_s: median response time.
        calibration_error_deg: mean validation error of the calibrations.
        perceptual_participants: extra sessions by a model observer (observer=perceptual) whose
            thresholds are ``perceptual_threshold_factor`` times the group's.
        perceptual_threshold_factor: see above.
        incomplete: participant labels whose session stops after 60 % of its trials.
        overrides: participant label -> field overrides (``fixation_break_rate``,
            ``calibration_error_deg``, ``lapse``, ``deadline_miss_rate``) for QC scenarios.
        protocol_name, task: labels.
        display: the display table of the sidecar.
        image_size_px, patch_px: stimulus geometry.
        n_levels, n_thresholds, widths_log10, lapse_rates: QUEST+ settings (schema defaults).
        seed: everything random derives from it.
    """

    participants: int = 6
    conditions: tuple[SimCondition, ...] = field(default_factory=_default_conditions)
    trials_per_condition: int = 100
    procedure: Literal["constant", "questplus"] = "constant"
    width_log10: float = 0.6
    lapse: float = 0.02
    between_sd_log10: float = 0.1
    fixation_break_rate: float = 0.04
    deadline_miss_rate: float = 0.02
    rt_median_s: float = 0.7
    calibration_error_deg: float = 0.4
    perceptual_participants: int = 0
    perceptual_threshold_factor: float = 1.3
    incomplete: tuple[str, ...] = ()
    overrides: dict[str, dict] = field(default_factory=dict)
    protocol_name: str = "sim_2afc"
    task: str = "fovea2afc"
    display: dict = field(default_factory=_default_display)
    image_size_px: tuple[int, int] = (1024, 1024)
    patch_px: int = 16
    n_levels: int = 25
    n_thresholds: int = 25
    widths_log10: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    lapse_rates: tuple[float, ...] = (0.0, 0.02, 0.05)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.procedure not in ("constant", "questplus"):
            raise FoveaError(f"procedure must be constant or questplus, got {self.procedure!r}")
        if self.participants < 0 or self.trials_per_condition < 1:
            raise FoveaError("participants must be >= 0 and trials_per_condition >= 1")
        names = [c.name for c in self.conditions]
        if not names or len(set(names)) != len(names):
            raise FoveaError(f"conditions must be a non-empty list of unique names, got {names}")


def p_correct_parametric(level, *, threshold: float, width_log10: float, lapse: float):
    """The study's ParametricObserver: 0.5 + (0.5 - lapse) * Phi(c (log10 l - log10 m) / width)."""
    level = np.asarray(level, dtype=float)
    with np.errstate(divide="ignore"):
        z = C_WIDTH * (np.log10(level) - math.log10(threshold)) / width_log10
    return 0.5 + (0.5 - lapse) * special.ndtr(z)


def constant_levels(cond: SimCondition) -> np.ndarray:
    if cond.levels:
        return np.asarray(cond.levels, dtype=float)
    return np.geomspace(cond.level_min, cond.level_max, 7)
