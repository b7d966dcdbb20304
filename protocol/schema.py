"""The protocol schema: every table of a ``protocols/*.toml`` file as a pydantic model.

A protocol is validated completely before any window opens (``protocol.load_protocol``).
Unknown keys are errors (a typo must not silently fall back to a default). The tables live in
``protocol.stimulus_settings`` (display, stimulus, conditions), ``protocol.run_settings``
(procedure, timing, fixation, generation, breaks, practice, texts, feedback, simulation) and
``protocol.tracker_settings``; this module puts them together and checks them against each other.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from generator.levels import LEVEL_DOMAINS
from protocol.models import MODEL_PRESETS, PRESET_TOKEN_PX
from protocol.run_settings import (
    BreakSettings,
    ConstantSettings,
    FeedbackSettings,
    FixationSettings,
    GenerationSettings,
    InstructionSettings,
    PracticeSettings,
    ProcedureSettings,
    QuestPlusSettings,
    SimulationSettings,
    StaircaseSettings,
    TimingSettings,
)
from protocol.stimulus_settings import (
    Condition,
    DisplaySettings,
    LevelVariable,
    Reference,
    StimulusSettings,
)
from protocol.strict import StrictTable
from protocol.tracker_settings import TrackerSettings

__all__ = [
    "BreakSettings",
    "Condition",
    "ConstantSettings",
    "DisplaySettings",
    "FeedbackSettings",
    "FixationSettings",
    "GenerationSettings",
    "InstructionSettings",
    "LevelVariable",
    "PracticeSettings",
    "ProcedureSettings",
    "Protocol",
    "QuestPlusSettings",
    "Reference",
    "SimulationSettings",
    "StaircaseSettings",
    "StimulusSettings",
    "TimingSettings",
    "TrackerSettings",
]


class Protocol(StrictTable):
    """A complete experiment protocol (one TOML file)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    task: str = Field(default="fovea2afc", pattern=r"^[A-Za-z0-9]{1,32}$")
    description: str = ""
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)
    stimulus: StimulusSettings = Field(default_factory=StimulusSettings)
    conditions: list[Condition] = Field(min_length=1)
    procedure: ProcedureSettings = Field(default_factory=ProcedureSettings)
    timing: TimingSettings = Field(default_factory=TimingSettings)
    fixation: FixationSettings = Field(default_factory=FixationSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    breaks: BreakSettings = Field(default_factory=BreakSettings)
    practice: PracticeSettings = Field(default_factory=PracticeSettings)
    instructions: InstructionSettings = Field(default_factory=InstructionSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)

    @model_validator(mode="after")
    def _cross_checks(self) -> Protocol:
        names = [c.name for c in self.conditions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"condition names must be unique, repeated: {', '.join(duplicates)}")
        unknown = sorted(set(self.simulation.thresholds) - set(names))
        if unknown:
            raise ValueError(
                f"simulation.thresholds names unknown conditions: {', '.join(unknown)}"
            )
        for condition in self.conditions:
            values = LEVEL_DOMAINS[condition.level_variable].values
            if values is not None and self.procedure.method == "staircase":
                raise ValueError(
                    f"condition {condition.name!r}: {condition.level_variable} levels are "
                    f"discrete ({', '.join(f'{v:g}' for v in values)}); use procedure method "
                    "constant or questplus"
                )
        if self.procedure.method == "staircase":
            for condition in self.conditions:
                _check_steps(condition, self.procedure.staircase)
        self._check_practice_levels()
        self._check_image_fits()
        half_w, half_h = self._screen_half_deg()
        for condition in self.conditions:
            x, y = condition.fixation_deg
            if abs(x) > half_w or abs(y) > half_h:
                raise ValueError(
                    f"condition {condition.name!r}: fixation_deg ({x:g}, {y:g}) lies off the "
                    f"screen (+-{half_w:.1f} x +-{half_h:.1f} deg)"
                )
        return self

    def _check_image_fits(self) -> None:
        """The image is shown 1:1 at the screen centre: it must fit the display's pixels."""
        stimulus, display = self.stimulus, self.display
        for side, size, (wider, screen) in (
            ("width", stimulus.image_width_px, ("wider", display.width_px)),
            ("height", stimulus.image_height_px, ("taller", display.height_px)),
        ):
            if size > screen:
                most = screen
                if stimulus.model in MODEL_PRESETS:
                    most = screen // PRESET_TOKEN_PX * PRESET_TOKEN_PX
                raise ValueError(
                    f"field stimulus.image_{side}_px: {size} px is {wider} than the display "
                    f"(display.{side}_px = {screen}): the image is shown 1:1, one pixel per "
                    f"screen pixel; give at most {most}"
                )

    def _check_practice_levels(self) -> None:
        """Every level the practice (and its example pair) shows each condition has a layout:
        ``[practice] levels`` lie in every condition's range and are levels of its variable,
        and without them each condition's ``level_max`` is one (a discrete variable's range
        ends need not be levels: ``Condition._check_levels``)."""
        practice = self.practice
        for level in practice.levels:
            outside = [c.name for c in self.conditions if not c.level_min <= level <= c.level_max]
            if outside:
                raise ValueError(
                    f"field practice.levels: {level:g} lies outside the level range of "
                    f"condition(s) {', '.join(outside)}: give practice levels inside every "
                    "condition's level_min..level_max"
                )
            for c in self.conditions:
                domain = LEVEL_DOMAINS[c.level_variable]
                if not domain.testable(level):
                    raise ValueError(
                        f"field practice.levels: {level:g} is not a {c.level_variable} level of "
                        f"condition {c.name} ({domain.describe()}): give practice levels every "
                        "condition can show"
                    )
        if practice.levels or not (practice.trials or practice.example):
            return
        for i, c in enumerate(self.conditions):
            domain = LEVEL_DOMAINS[c.level_variable]
            if not domain.testable(c.level_max):
                raise ValueError(
                    f"field conditions[{i}](name={c.name}).level_max: {c.level_max:g} is where "
                    f"the practice runs, but {c.level_variable} levels are {domain.describe()}: "
                    f"set level_max = {' or '.join(f'{v:g}' for v in domain.values or ())}, "
                    "or give [practice] levels"
                )

    def _screen_half_deg(self) -> tuple[float, float]:
        d = self.display
        return (
            math.degrees(math.atan(d.width_cm / 2 / d.distance_cm)),
            math.degrees(math.atan(d.height_cm / 2 / d.distance_cm)),
        )

    def shows_feedback(self, *, practice: bool) -> bool:
        """Whether a trial ends with feedback: practice trials as ``[practice] feedback`` says
        when set, every other trial as ``[feedback] enabled``."""
        if practice and self.practice.feedback is not None:
            return self.practice.feedback
        return self.feedback.enabled

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise KeyError(name)


def _check_steps(condition: Condition, staircase: StaircaseSettings) -> None:
    """A staircase must be able to move through the condition's level range: a first step as
    wide as the range only jumps between its ends, one below 1/``_MAX_STEPS_ACROSS`` of it
    never gets far from the start (steps are log10 units on a log scale, level units on a
    linear one)."""
    log = staircase.step_scale == "log"
    span = (
        math.log10(condition.level_max / condition.level_min)
        if log
        else condition.level_max - condition.level_min
    )
    step = staircase.step_sizes[0]
    unit = "log10 units" if log else "level units"
    where = (
        f"condition {condition.name!r}: the first staircase step ({step:g} {unit}) against the "
        f"level range {condition.level_min:g}..{condition.level_max:g} ({span:.3g} {unit})"
    )
    if step >= span:
        problem = "spans all of it: the staircase would only jump between its ends"
    elif step < span / _MAX_STEPS_ACROSS:
        problem = f"takes over {_MAX_STEPS_ACROSS} steps to cross it: the staircase would stay near its start"
    else:
        return
    raise ValueError(
        f"{where} {problem}; fix procedure.staircase.step_sizes (step_scale = "
        f"{staircase.step_scale!r}: {unit})"
    )


# A staircase's first step crosses the level range in at most this many steps.
_MAX_STEPS_ACROSS = 100
