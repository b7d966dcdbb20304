"""The protocol schema: every table of a ``protocols/*.toml`` file as a pydantic model.

A protocol is validated completely before any window opens (``protocol.load_protocol``).
Unknown keys are errors (a typo must not silently fall back to a default).

Level variables (``[[conditions]] level_variable``), larger always meaning more degradation, are
defined with their layouts in ``generator.levels``: ``strength`` (acuity mode), ``radius_shrink``
and ``periphery_factor`` (circle mode; only explicit ``levels`` work for ``periphery_factor``:
constant stimuli or QUEST+ over those levels). The default display and circle radius are the
generator's (``generator.geometry.default_display``, ``generator.layout.DEFAULT_CIRCLE_RADIUS``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from generator.geometry import default_display
from generator.layout import DEFAULT_CIRCLE_RADIUS
from generator.levels import LEVEL_VARIABLES_BY_MODE, LevelVariable
from protocol.tracker_settings import TrackerSettings

# What a trial's foveated image is compared with: the full-resolution twin or the photograph.
Reference = Literal["generated", "original"]
_DEFAULT_DISPLAY = default_display()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DisplaySettings(_Strict):
    """The participant's screen.

    Attributes:
        width_px, height_px: resolution.
        width_cm, height_cm: visible area.
        distance_cm: eye to screen centre.
        refresh_hz: nominal refresh rate; durations are counted in frames of this rate.
        screen: PsychoPy screen index.
        fullscreen: open a full-screen window (``fovea run``); simulations are always windowed.
        background_gray: background luminance as a fraction of white (0..1).
    """

    width_px: int = Field(default=_DEFAULT_DISPLAY.width_px, ge=320, le=16384)
    height_px: int = Field(default=_DEFAULT_DISPLAY.height_px, ge=240, le=16384)
    width_cm: float = Field(default=_DEFAULT_DISPLAY.width_cm, gt=0, le=1000)
    height_cm: float = Field(default=_DEFAULT_DISPLAY.height_cm, gt=0, le=1000)
    distance_cm: float = Field(default=_DEFAULT_DISPLAY.distance_cm, gt=0, le=1000)
    refresh_hz: float = Field(default=60.0, ge=30, le=1000)
    screen: int = Field(default=0, ge=0)
    fullscreen: bool = True
    background_gray: float = Field(default=0.5, ge=0, le=1)

    def geometry(self):
        """The generator's ``DisplayGeometry`` for this screen."""
        from generator.geometry import DisplayGeometry

        return DisplayGeometry(
            width_px=self.width_px,
            height_px=self.height_px,
            width_cm=self.width_cm,
            height_cm=self.height_cm,
            distance_cm=self.distance_cm,
        )


class StimulusSettings(_Strict):
    """What is generated.

    Attributes:
        model: generator model: ``tiny``, a named model or a local directory.
        device: torch device for generation.
        image_width_px, image_height_px: stimulus size, shown 1:1 at the screen centre.
        classes: class labels (class-conditional models); one is drawn per trial.
        prompts: text prompts (text-conditional models); one is drawn per trial.
        seeds: explicit generation seeds; or ``seed_start`` + ``seed_count`` consecutive seeds.
        num_steps: sampler steps (None = the model's default).
        scenes: where a scene-conditioned model's scenes come from: ``pool`` (the project's
            held-out photographs; crop, zoom and flip picked by the seed) or a folder of the
            lab's photographs (JPEG/PNG; a relative path is relative to the protocol file). One
            scene per trial, picked by the trial's seed (``fovea run|simulate --scenes DIR``
            overrides). Prompt and class models take no scenes.
        reference: what the foveated image is compared with: ``generated`` (the full-resolution
            generation of the same scene and seed: does foveation show?) or ``original`` (the
            photograph the scene came from: foveated generation against reality; scene models
            only).
    """

    model: str = Field(default="tiny", min_length=1)
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    image_width_px: int = Field(default=512, ge=32, le=4096)
    image_height_px: int = Field(default=512, ge=32, le=4096)
    classes: list[int] = Field(default_factory=lambda: [0])
    prompts: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=list)
    seed_start: int = Field(default=1000, ge=0)
    seed_count: int = Field(default=100, ge=1, le=1_000_000)
    num_steps: int | None = Field(default=None, ge=1, le=1000)
    scenes: str = Field(default="pool", min_length=1)
    reference: Reference = "generated"

    @field_validator("seeds", "classes")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if any(v < 0 for v in value):
            raise ValueError("values must be >= 0")
        return value

    @field_validator("prompts")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("prompts must not be empty strings")
        return value

    @model_validator(mode="after")
    def _one_conditioning(self) -> StimulusSettings:
        if self.prompts and self.classes != [0]:
            raise ValueError("give either classes or prompts, not both")
        if not self.prompts and not self.classes:
            raise ValueError("classes must list at least one class label (or give prompts)")
        if self.reference == "original" and self.prompts:
            raise ValueError(
                "reference 'original' compares with the photograph a scene came from; prompt "
                "models take no scenes (use reference 'generated')"
            )
        return self

    def seed_pool(self) -> list[int]:
        """The seeds trials draw from."""
        return (
            list(self.seeds)
            if self.seeds
            else list(range(self.seed_start, self.seed_start + self.seed_count))
        )

    def conditionings(self) -> list[int | str]:
        """The class labels or prompts trials draw from."""
        return list(self.prompts) if self.prompts else list(self.classes)


class Condition(_Strict):
    """One experimental condition: a layout mode, a fixation location and a level range.

    Attributes:
        name: identifier written to ``beh.tsv`` (letters, digits, ``_``, ``-``).
        layout_mode: ``acuity`` or ``circle``.
        fixation_deg: fixation target (x, y) in degrees from the screen centre (x right, y up).
        level_variable: what ``level`` means (see the module docstring).
        level_min, level_max: range of the adaptive procedures.
        start_level: staircases' start (default: the geometric mean of the range).
        levels: explicit levels (constant stimuli; QUEST+ stimulus domain when given).
        padding_deg: acuity mode: extra full-acuity radius for tracker error.
        acuity: acuity model (``linear`` or ``geisler_perry``).
        max_level: coarsest token level of acuity layouts.
        circle_radius: circle mode with ``periphery_factor`` levels: the fixed radius.
        periphery_factor: circle mode with ``radius_shrink`` levels: the fixed factor.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    layout_mode: Literal["acuity", "circle"] = "acuity"
    fixation_deg: tuple[float, float] = (0.0, 0.0)
    level_variable: LevelVariable = "strength"
    level_min: float = Field(default=0.1, gt=0)
    level_max: float = Field(default=4.0, gt=0)
    start_level: float | None = Field(default=None, gt=0)
    levels: list[float] = Field(default_factory=list)
    padding_deg: float = Field(default=0.0, ge=0, le=30)
    acuity: Literal["linear", "geisler_perry"] = "linear"
    max_level: Literal[1, 2, 4, 8, 16] = 8
    circle_radius: float = Field(default=DEFAULT_CIRCLE_RADIUS, gt=0, le=1.5)
    periphery_factor: Literal[2, 4] = 2

    @field_validator("fixation_deg")
    @classmethod
    def _finite_fixation(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(math.isfinite(v) and abs(v) <= 60 for v in value):
            raise ValueError("fixation_deg must be two finite numbers within +-60 deg")
        return value

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if any(not (math.isfinite(v) and v > 0) for v in value):
            raise ValueError("levels must be positive numbers")
        if len(set(value)) != len(value):
            raise ValueError("levels must not repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        allowed = LEVEL_VARIABLES_BY_MODE[self.layout_mode]
        if self.level_variable not in allowed:
            raise ValueError(
                f"level_variable {self.level_variable!r} does not apply to layout_mode "
                f"{self.layout_mode!r}; use {' or '.join(allowed)}"
            )
        if self.level_min >= self.level_max:
            raise ValueError(
                f"level_min ({self.level_min}) must be below level_max ({self.level_max})"
            )
        if (
            self.start_level is not None
            and not self.level_min <= self.start_level <= self.level_max
        ):
            raise ValueError("start_level must lie within [level_min, level_max]")
        if self.level_variable == "radius_shrink":
            if self.level_max >= 1 or any(v >= 1 for v in self.levels):
                raise ValueError("radius_shrink levels must be < 1 (radius = 1 - level > 0)")
        if self.level_variable == "periphery_factor":
            if not self.levels:
                raise ValueError("periphery_factor needs explicit levels (2 and/or 4)")
            if any(v not in (2, 4) for v in self.levels):
                raise ValueError("periphery_factor levels must be 2 or 4")
        return self


class QuestPlusSettings(_Strict):
    """QUEST+ (Watson 2017, through ``questplus``): a cumulative normal on log10(level).

    Attributes:
        n_levels: stimulus grid size (log-spaced over [level_min, level_max]) unless the
            condition lists ``levels``.
        n_thresholds: threshold grid size over the same range.
        widths_log10: psychometric-function SD grid, log10 units.
        lapse_rates: lapse-rate grid.
    """

    n_levels: int = Field(default=25, ge=2, le=200)
    n_thresholds: int = Field(default=25, ge=2, le=200)
    widths_log10: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2, 0.4], min_length=1)
    lapse_rates: list[float] = Field(default_factory=lambda: [0.0, 0.02, 0.05], min_length=1)

    @field_validator("widths_log10")
    @classmethod
    def _widths(cls, value: list[float]) -> list[float]:
        if any(not (math.isfinite(w) and w > 0) for w in value):
            raise ValueError("widths must be > 0")
        return value

    @field_validator("lapse_rates")
    @classmethod
    def _lapses(cls, value: list[float]) -> list[float]:
        if any(not 0 <= lapse < 0.5 for lapse in value):
            raise ValueError("lapse rates must lie in [0, 0.5)")
        return value


class StaircaseSettings(_Strict):
    """Interleaved n-down-1-up staircases (per condition).

    Attributes:
        n_staircases: staircases per condition; their starts spread over the range (first at
            ``start_level``, others alternately above and below).
        n_down: correct answers in a row that make the task harder (level down).
        n_up: wrong answers in a row that make it easier (level up).
        step_scale: ``log``: steps are log10 units; ``linear``: level units.
        step_sizes: step per number of reversals so far (the last one repeats).
        start_spread_log10: distance between start points, log10 units (log scale) or level
            units (linear).
    """

    n_staircases: int = Field(default=2, ge=1, le=8)
    n_down: int = Field(default=2, ge=1, le=5)
    n_up: int = Field(default=1, ge=1, le=5)
    step_scale: Literal["log", "linear"] = "log"
    step_sizes: list[float] = Field(default_factory=lambda: [0.2, 0.1, 0.05], min_length=1)
    start_spread_log10: float = Field(default=0.3, ge=0)

    @field_validator("step_sizes")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(not (math.isfinite(v) and v > 0) for v in value):
            raise ValueError("step_sizes must be positive numbers")
        return value


class ConstantSettings(_Strict):
    """Method of constant stimuli.

    Attributes:
        repeats: presentations of each level of each condition.
        n_levels: log-spaced levels over [level_min, level_max] when a condition gives none.
    """

    repeats: int = Field(default=10, ge=1, le=1000)
    n_levels: int = Field(default=5, ge=1, le=50)


class ProcedureSettings(_Strict):
    """How levels are chosen.

    Attributes:
        method: ``questplus``, ``staircase`` or ``constant``.
        trials_per_condition: adaptive methods: responded trials per condition (split evenly over
            a condition's staircases). Constant stimuli: levels x repeats.
    """

    method: Literal["questplus", "staircase", "constant"] = "questplus"
    trials_per_condition: int = Field(default=40, ge=1, le=10000)
    questplus: QuestPlusSettings = Field(default_factory=QuestPlusSettings)
    staircase: StaircaseSettings = Field(default_factory=StaircaseSettings)
    constant: ConstantSettings = Field(default_factory=ConstantSettings)


class TimingSettings(_Strict):
    """Trial timing, seconds (rounded to whole frames of ``display.refresh_hz``).

    Attributes:
        fixation_hold_s: gaze must stay in the tolerance this long before generation starts.
        fixation_timeout_s: no fixation by then: drift check (EyeLink) and retry.
        gaze_average_s: the gaze used for generation is the mean over this final part of the hold.
        stimulus_duration_s: each of the two intervals.
        isi_s: inter-stimulus interval (the mask is shown at its start).
        mask_duration_s: noise mask after the first interval (<= isi_s; 0 = none).
        response_window_s: time allowed for the answer (0 = unlimited); a late trial is re-queued.
        feedback_duration_s: feedback display (when feedback is on).
        iti_s: blank between trials.
    """

    fixation_hold_s: float = Field(default=0.5, ge=0, le=10)
    fixation_timeout_s: float = Field(default=5.0, gt=0, le=120)
    gaze_average_s: float = Field(default=0.1, ge=0, le=10)
    stimulus_duration_s: float = Field(default=1.0, gt=0, le=30)
    isi_s: float = Field(default=0.5, ge=0, le=30)
    mask_duration_s: float = Field(default=0.2, ge=0, le=30)
    response_window_s: float = Field(default=0.0, ge=0, le=600)
    feedback_duration_s: float = Field(default=0.4, ge=0, le=10)
    iti_s: float = Field(default=0.3, ge=0, le=30)

    @model_validator(mode="after")
    def _order(self) -> TimingSettings:
        if self.mask_duration_s > self.isi_s:
            raise ValueError("mask_duration_s must not exceed isi_s")
        if self.gaze_average_s > self.fixation_hold_s:
            raise ValueError("gaze_average_s must not exceed fixation_hold_s")
        return self


class FixationSettings(_Strict):
    """Fixation control.

    Attributes:
        tolerance_deg: radius around the target the gaze must stay within.
        max_invalid_s: longest run of invalid samples (blink, loss) tolerated before it counts
            as a fixation break.
        mark_size_deg: fixation mark diameter.
        show_during_stimulus: keep the mark on during the intervals.
    """

    tolerance_deg: float = Field(default=1.5, gt=0, le=20)
    max_invalid_s: float = Field(default=0.3, ge=0, le=5)
    mark_size_deg: float = Field(default=0.4, gt=0, le=5)
    show_during_stimulus: bool = True


class GenerationSettings(_Strict):
    """Real-time generation.

    Attributes:
        deadline_s: request-to-result limit for the foveated image.
        on_deadline_miss: ``requeue`` the trial, or use a ``cached`` stimulus generated earlier
            for the same seed, conditioning and layout at a gaze within
            ``cache_gaze_tolerance_deg`` of the fixation target (re-queued when there is none).
        max_deadline_misses: a trial presented for this many times (re-queues of any kind
            count) waits for its image when it misses the deadline, and is shown late (flagged
            ``deadline_missed``): a slow generator cannot stall a session.
        service: where generation runs: ``process`` (its own process, so torch never competes
            with the window for the interpreter lock; restarted if it crashes or hangs) or
            ``thread`` (a worker thread of the window's process: quicker to start, for tests).
        speculative: start generating at the fixation target as soon as it appears, and keep
            that image when the measured gaze settles within ``speculation_tolerance_deg`` of
            the target (``process`` service only).
        speculation_tolerance_deg: see ``speculative``.
        twin_cache_size: full-resolution twins kept in memory (they do not depend on gaze).
        cache_gaze_tolerance_deg: see ``on_deadline_miss``.
    """

    deadline_s: float = Field(default=10.0, gt=0, le=3600)
    on_deadline_miss: Literal["requeue", "cached"] = "requeue"
    max_deadline_misses: int = Field(default=3, ge=1, le=100)
    service: Literal["process", "thread"] = "process"
    speculative: bool = True
    speculation_tolerance_deg: float = Field(default=0.5, gt=0, le=10)
    twin_cache_size: int = Field(default=64, ge=0, le=10000)
    cache_gaze_tolerance_deg: float = Field(default=0.5, gt=0, le=10)


class BreakSettings(_Strict):
    """Rest breaks.

    Attributes:
        every_n_trials: a break after this many responded trials (0 = none).
        min_duration_s: the break screen cannot be dismissed before this.
    """

    every_n_trials: int = Field(default=50, ge=0)
    min_duration_s: float = Field(default=0.0, ge=0, le=3600)


class InstructionSettings(_Strict):
    """Texts shown to the participant."""

    welcome: str = Field(
        default="You will see two images, one after the other. One of them is slightly "
        "different.\n\nKeep your eyes on the fixation mark the whole time.\n\nAfter the second "
        "image, press 1 (or LEFT) if the FIRST image was different, 2 (or RIGHT) if the SECOND "
        "was.\n\nPress SPACE to start.",
        min_length=1,
    )
    response_prompt: str = Field(default="Which image was different?  1 / 2", min_length=1)
    break_text: str = Field(
        default="Take a short break.\n\n{done} of {total} trials done.\n\nPress SPACE to continue.",
        min_length=1,
    )
    goodbye: str = Field(default="Thank you! The session is complete.", min_length=1)
    escape_confirm: str = Field(
        default="Quit the session?\n\nY = quit (data are saved)      N = continue", min_length=1
    )


class FeedbackSettings(_Strict):
    """Trial feedback: a green (correct) or red (wrong) fixation mark."""

    enabled: bool = True


class SimulationSettings(_Strict):
    """Simulated participants (``fovea simulate``).

    The parametric observer answers correctly with
    ``P = 0.5 + (0.5 - lapse) * S(level)``, S a cumulative normal whose 0.5 point is
    ``threshold`` and whose 5 %..95 % span is ``width`` (psignifit's parametrisation), on
    log10(level) when ``log_scale`` (``width`` then in log10 units).

    Attributes:
        threshold: default threshold, level units.
        thresholds: per-condition thresholds (condition name -> level).
        width: 5..95 % span of S.
        log_scale: S acts on log10(level).
        lapse: lapse rate.
        rt_median_s: median simulated response time.
        perceptual_lapse: lapse rate of the perceptual (FovVideoVDP) observer.
        speed: simulated time per drawn frame, in frames (1 = every frame drawn).
    """

    threshold: float = Field(default=1.0, gt=0)
    thresholds: dict[str, float] = Field(default_factory=dict)
    width: float = Field(default=0.6, gt=0)
    log_scale: bool = True
    lapse: float = Field(default=0.02, ge=0, lt=0.5)
    rt_median_s: float = Field(default=0.7, gt=0, le=10)
    perceptual_lapse: float = Field(default=0.02, ge=0, lt=0.5)
    speed: int = Field(default=4, ge=1, le=60)

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not (math.isfinite(v) and v > 0) for v in value.values()):
            raise ValueError("thresholds must be positive numbers")
        return value


class Protocol(_Strict):
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
            if (
                condition.level_variable == "periphery_factor"
                and self.procedure.method == "staircase"
            ):
                raise ValueError(
                    f"condition {condition.name!r}: periphery_factor levels are discrete (2, 4); "
                    "use procedure method constant or questplus"
                )
        if self.stimulus.image_width_px > self.display.width_px or (
            self.stimulus.image_height_px > self.display.height_px
        ):
            raise ValueError(
                f"stimulus {self.stimulus.image_width_px}x{self.stimulus.image_height_px} px does "
                f"not fit the {self.display.width_px}x{self.display.height_px} px display"
            )
        half_w, half_h = self._screen_half_deg()
        for condition in self.conditions:
            x, y = condition.fixation_deg
            if abs(x) > half_w or abs(y) > half_h:
                raise ValueError(
                    f"condition {condition.name!r}: fixation_deg ({x:g}, {y:g}) lies off the "
                    f"screen (+-{half_w:.1f} x +-{half_h:.1f} deg)"
                )
        return self

    def _screen_half_deg(self) -> tuple[float, float]:
        d = self.display
        return (
            math.degrees(math.atan(d.width_cm / 2 / d.distance_cm)),
            math.degrees(math.atan(d.height_cm / 2 / d.distance_cm)),
        )

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise KeyError(name)
