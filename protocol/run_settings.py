"""How a protocol runs: procedure, timing, fixation control, real-time generation, breaks,
texts, feedback and simulated participants (the protocol's remaining tables)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from protocol.strict import StrictTable


class QuestPlusSettings(StrictTable):
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


class StaircaseSettings(StrictTable):
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


class ConstantSettings(StrictTable):
    """Method of constant stimuli.

    Attributes:
        repeats: presentations of each level of each condition.
        n_levels: log-spaced levels over [level_min, level_max] when a condition gives none.
    """

    repeats: int = Field(default=10, ge=1, le=1000)
    n_levels: int = Field(default=5, ge=1, le=50)


class ProcedureSettings(StrictTable):
    """How levels are chosen.

    Attributes:
        method: ``questplus``, ``staircase`` or ``constant``.
        trials_per_condition: adaptive methods: responded trials per condition (split evenly over
            a condition's staircases). Constant stimuli: levels x repeats.
        max_attempts: presentations of one trial plan at most: an aborted trial (fixation
            break, dropped frame...) comes back later (another track's trial first when there
            is one), with its interval order drawn again; after this many it is given up
            (``given_up`` = 1 in its last row) and the track goes on with a new stimulus.
        max_aborts_in_a_row: aborted trials in a row (any reason but a stopped recording) after
            which the session asks the operator: recalibrate, go on or end the session; a
            simulated session, with no one at the keyboard, stops there (its settings make the
            task impossible: a fixation break on every trial, a generator slower than the
            deadline). Without it such a session never ends.
        order: ``interleaved``: each trial's condition drawn at random among the unfinished
            ones; ``blocked``: one condition after another (a condition's staircases still
            interleave), in the condition order (``[breaks] every_n_trials`` equal to
            ``trials_per_condition`` puts a break between condition blocks).
        counterbalance: the condition order: ``none`` (the protocol's) or ``latin_square`` (row
            ``(participant number - 1) mod n`` of a balanced Latin square; the number is the
            participant label's digits; recorded in the sidecar's ``counterbalancing``).
    """

    method: Literal["questplus", "staircase", "constant"] = "questplus"
    trials_per_condition: int = Field(default=40, ge=1, le=10000)
    max_attempts: int = Field(default=5, ge=1, le=100)
    max_aborts_in_a_row: int = Field(default=10, ge=1, le=1000)
    order: Literal["interleaved", "blocked"] = "interleaved"
    counterbalance: Literal["none", "latin_square"] = "none"
    questplus: QuestPlusSettings = Field(default_factory=QuestPlusSettings)
    staircase: StaircaseSettings = Field(default_factory=StaircaseSettings)
    constant: ConstantSettings = Field(default_factory=ConstantSettings)

    @model_validator(mode="after")
    def _staircases_get_trials(self) -> ProcedureSettings:
        n = self.staircase.n_staircases
        if self.method == "staircase" and self.trials_per_condition < n:
            raise ValueError(
                f"trials_per_condition ({self.trials_per_condition}) is split over "
                f"staircase.n_staircases ({n}) staircases: give at least {n} trials or fewer "
                "staircases"
            )
        return self


def frames_for(seconds: float, *, flip_s: float) -> int:
    """Flips of ``flip_s`` each (a frame period, times ``speed`` in simulated sessions) that show
    ``seconds`` (at least one when seconds > 0): how the session counts every display's frames,
    and how ``fovea check`` reports them."""
    if seconds <= 0:
        return 0
    return max(1, round(seconds / flip_s))


class TimingSettings(StrictTable):
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
        requeue_dropped_frames: a trial with a dropped frame (``study.trial.frame_drops``)
            during interval 1, the mask, the ISI or interval 2 is aborted before the answer and
            re-queued (``abort_reason = dropped_frame``); real-clock sessions only (simulated
            ones count drops but do not re-queue).
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
    requeue_dropped_frames: bool = True

    @model_validator(mode="after")
    def _order(self) -> TimingSettings:
        if self.mask_duration_s > self.isi_s:
            raise ValueError("mask_duration_s must not exceed isi_s")
        if self.gaze_average_s > self.fixation_hold_s:
            raise ValueError("gaze_average_s must not exceed fixation_hold_s")
        return self


# The smallest fixation window from the generation on: about an EyeLink's accuracy
# (``FixationSettings.interval_window_deg``).
MIN_INTERVAL_WINDOW_DEG = 0.5


class FixationSettings(StrictTable):
    """Fixation control.

    Attributes:
        tolerance_deg: radius around the target the gaze must stay within while it is held;
            from the generation on, the radius around the measured gaze (where the image's
            full-resolution region is centred) unless the condition has a ``padding_deg``
            (``interval_window_deg``).
        max_invalid_s: longest run of invalid samples (blink, loss) tolerated before it counts
            as a fixation break (while waiting for the images any blink is allowed; a fresh
            hold of ``refixation_hold_s`` then comes before the onset).
        break_min_s: the gaze must stay outside the window this long (consecutive samples, each
            lasting one frame) to be a fixation break: one noisy sample is not (60 Hz: two frames).
        blink_edge_s: samples this close to a blink belong to it (the eyelid's artifact saccade
            as it closes and opens): outside samples this long after a blink are not counted,
            an outside run that a blink ends is not a break, and so a break is decided this much
            later (``study.trial.gaze.GazeMonitor``).
        refixation_hold_s: the hold after a blink while waiting for the images.
        mark_size_deg: fixation mark diameter.
        show_during_stimulus: keep the mark on during the intervals.
    """

    tolerance_deg: float = Field(default=1.5, gt=0, le=20)
    max_invalid_s: float = Field(default=0.3, ge=0, le=5)
    break_min_s: float = Field(default=0.02, ge=0, le=1)
    blink_edge_s: float = Field(default=0.1, ge=0, le=1)
    refixation_hold_s: float = Field(default=0.2, ge=0, le=10)
    mark_size_deg: float = Field(default=0.4, gt=0, le=5)
    show_during_stimulus: bool = True

    def interval_window_deg(self, padding_deg: float) -> float:
        """Radius of the fixation window from the generation to the end of interval 2, centred on the
        measured gaze (``study.trial.fixation``): a condition's ``padding_deg`` (the
        full-acuity margin for tracker error: a gaze inside it sees the image as generated),
        at least ``MIN_INTERVAL_WINDOW_DEG`` and at most ``tolerance_deg``; without padding,
        ``tolerance_deg``."""
        if padding_deg <= 0:
            return self.tolerance_deg
        return min(self.tolerance_deg, max(MIN_INTERVAL_WINDOW_DEG, padding_deg))


class GenerationSettings(StrictTable):
    """Real-time generation.

    Attributes:
        deadline_s: request-to-result limit for the foveated image.
        on_deadline_miss: ``requeue`` the trial, or use a ``cached`` stimulus generated earlier
            for the same seed, conditioning and layout at a gaze within
            ``cache_gaze_tolerance_deg`` of both the fixation target and the trial's measured
            gaze (re-queued when there is none).
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
        twin_cache_size: full-resolution twins kept in memory (they do not depend on gaze); at
            least 1: the next trial's twin is generated ahead into this cache, and waits there.
        cache_gaze_tolerance_deg: see ``on_deadline_miss``.
    """

    deadline_s: float = Field(default=10.0, gt=0, le=3600)
    on_deadline_miss: Literal["requeue", "cached"] = "requeue"
    max_deadline_misses: int = Field(default=3, ge=1, le=100)
    service: Literal["process", "thread"] = "process"
    speculative: bool = True
    speculation_tolerance_deg: float = Field(default=0.5, gt=0, le=10)
    twin_cache_size: int = Field(default=64, ge=1, le=10000)
    cache_gaze_tolerance_deg: float = Field(default=0.5, gt=0, le=10)

    @field_validator("twin_cache_size", mode="before")
    @classmethod
    def _twin_cache_size(cls, value):
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 1:
            raise ValueError(
                f"must be at least 1 (got {value!r}): the next trial's full-resolution twin is "
                "generated ahead into this cache and waits there for its trial; without room "
                "every prefetched twin would be thrown away and generated again"
            )
        return value


class BreakSettings(StrictTable):
    """Rest breaks.

    Attributes:
        every_n_trials: a break after this many responded trials (0 = none).
        min_duration_s: the break screen cannot be dismissed before this.
    """

    every_n_trials: int = Field(default=50, ge=0)
    min_duration_s: float = Field(default=0.0, ge=0, le=3600)


class PracticeSettings(StrictTable):
    """A practice block before the main trials, and an example of the difference.

    Practice trials run at easy levels, are logged with ``block = practice`` and are excluded
    from the fits. A practice block is ``trials`` responded trials (conditions in turn, in the
    session's condition order); it is repeated until its proportion correct reaches
    ``criterion`` or ``max_blocks`` blocks have run.

    Attributes:
        trials: responded trials per practice block (0 = no practice).
        levels: practice levels, used in turn (empty: each condition's ``level_max``, the
            easiest); each must lie in every condition's level range.
        criterion: proportion correct that ends the practice.
        max_blocks: practice blocks at most (the first included); the main trials follow
            either way (the sidecar's ``practice.passed`` says whether the criterion was met).
        example: before the first trial of a new session, show a foveated image beside its
            full-resolution twin at the largest (easiest) practice level, or the condition's
            ``level_max`` without practice levels, with ``instructions.example_text``.
        feedback: whether practice trials show feedback (a green or red fixation mark); unset:
            as ``[feedback] enabled`` says for every trial. ``true`` lets a participant learn
            what to look for in practice when the main trials run without feedback.
    """

    trials: int = Field(default=0, ge=0, le=500)
    levels: list[float] = Field(default_factory=list)
    criterion: float = Field(default=0.75, gt=0, le=1)
    max_blocks: int = Field(default=3, ge=1, le=20)
    example: bool = False
    feedback: bool | None = None

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if any(not (math.isfinite(v) and v > 0) for v in value):
            raise ValueError("practice levels must be positive numbers")
        return value


def _check_fields(text: str, allowed: tuple[str, ...], what: str) -> str:
    """``text`` formats with the ``allowed`` fields only (a typo fails at load, not mid-session)."""
    try:
        text.format(**dict.fromkeys(allowed, 1))
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"{what}: only the fields {', '.join('{' + a + '}' for a in allowed)} may be used "
            f"({error!r})"
        ) from None
    return text


class InstructionSettings(StrictTable):
    """Texts shown to the participant: every text the participant's display shows, so a lab can
    give them in the participant's language (the experimenter's screens: the validation
    question, a lost tracker link, stay in English).

    Fields in braces are filled in: ``break_text`` {done}, {total} (main-block responses),
    {block}, {blocks} (break blocks: every ``breaks.every_n_trials`` responses);
    ``goodbye`` {duration} (the session's length, e.g. ``12 min 5 s``); ``practice_intro``
    {trials}; ``practice_again`` and ``practice_done`` {correct}, {trials}.
    """

    welcome: str = Field(
        default="You will see two images, one after the other. One of them is slightly "
        "different.\n\nKeep your eyes on the fixation mark the whole time.\n\nAfter the second "
        "image, press 1 (or LEFT) if the FIRST image was different, 2 (or RIGHT) if the SECOND "
        "was.\n\nPress SPACE to start.",
        min_length=1,
    )
    response_prompt: str = Field(default="Which image was different?  1 / 2", min_length=1)
    break_text: str = Field(
        default="Block {block} of {blocks} done - take a break.\n\n{done} of {total} trials "
        "done.\n\nPress SPACE to continue.",
        min_length=1,
    )
    goodbye: str = Field(
        default="Thank you! The session is complete.\n\nIt took {duration}.", min_length=1
    )
    example_text: str = Field(
        default="An example: the LEFT image is the different one (sharp only around the ring, where "
        "the eyes rest), the RIGHT one the original.\n"
        "In the experiment they come one after the other, and the difference is often smaller."
        "\n\nPress SPACE to continue.",
        min_length=1,
    )
    practice_intro: str = Field(
        default="First some practice trials ({trials}), with easy differences.\n\n"
        "Press SPACE to start.",
        min_length=1,
    )
    practice_again: str = Field(
        default="{correct} of {trials} practice answers were right. Let's practise once more."
        "\n\nPress SPACE to continue.",
        min_length=1,
    )
    practice_done: str = Field(
        default="Practice done ({correct} of {trials} right). The experiment starts now.\n\n"
        "Press SPACE to start.",
        min_length=1,
    )
    escape_confirm: str = Field(
        default="Quit the session?\n\nY = quit (data are saved)      N = continue", min_length=1
    )
    welcome_back: str = Field(
        default="Welcome back: the session continues where it stopped.", min_length=1
    )
    example_wait: str = Field(default="Preparing an example...", min_length=1)
    fixation_break: str = Field(default="Please keep your eyes on the mark.", min_length=1)
    no_response: str = Field(
        default="No answer in time.\n\nPlease answer with 1 (or LEFT) or 2 (or RIGHT).",
        min_length=1,
    )
    please_wait: str = Field(default="One moment...", min_length=1)
    pause: str = Field(default="Paused.\n\nPress SPACE to continue.", min_length=1)
    wait_for_experimenter: str = Field(default="Please wait for the experimenter.", min_length=1)
    saving: str = Field(default="Saving the eye-tracking data...\n\nPlease wait.", min_length=1)

    def abort_text(self, reason: str) -> str:
        """The screen after a trial aborted for ``reason`` (``beh.tsv`` ``abort_reason``)."""
        if reason == "fixation_break":
            return self.fixation_break
        if reason == "no_response":
            return self.no_response
        return self.please_wait

    @model_validator(mode="after")
    def _fields(self) -> InstructionSettings:
        _check_fields(self.break_text, ("done", "total", "block", "blocks"), "break_text")
        _check_fields(self.goodbye, ("duration",), "goodbye")
        _check_fields(self.practice_intro, ("trials",), "practice_intro")
        for name in ("practice_again", "practice_done"):
            _check_fields(getattr(self, name), ("correct", "trials"), name)
        return self


class FeedbackSettings(StrictTable):
    """Trial feedback: a light green (correct) or dark red (wrong) fixation mark (practice trials:
    ``[practice] feedback`` when set)."""

    enabled: bool = True


class SimulationSettings(StrictTable):
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
