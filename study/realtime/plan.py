"""The realtime bench's configuration, its seeded trial plan, and the protocol its trials run."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generator.precision import DEFAULT_DTYPE

MODES = ("speculative", "plain")
# Fixation targets, deg from the screen centre (x right, y up): one protocol condition each.
TARGETS_DEG = (
    (0.0, 0.0),
    (3.0, 0.0),
    (-3.0, 0.0),
    (0.0, 2.5),
    (0.0, -2.5),
    (2.0, 2.0),
    (-2.0, -2.0),
)
FIXATION_TOLERANCE_DEG = 2.0  # holds off-target landings (up to ~1.3 deg + scatter)
BENCH_CLASSES = (0, 1, 2, 3)  # class models (the presets)
BENCH_PROMPTS = (  # prompt models (a FLUX pipeline directory)
    "a mountain lake at dawn",
    "a street market in the rain",
    "a forest path in autumn",
    "a harbour with fishing boats",
)


@dataclass(frozen=True)
class BenchConfig:
    """Bench parameters.

    Attributes:
        trials: trials per mode (a few above the 20 shown trials that steady a p95, for
            aborted ones).
        image_px: square image side (a multiple of the model's token size).
        model, device, steps: generator (``steps`` None: the model's default).
        decode: how foveated images are decoded (``[stimulus] decode``; latent models).
        dtype: the model's number format (``[stimulus] dtype``; ``bfloat16`` for FLUX models on
            a GPU).
        tolerance_deg: speculation tolerance (``[generation] speculation_tolerance_deg``).
        off_target_prob: share of trials where the eyes land off the target by
            ``off_target_deg`` (beyond the tolerance): the speculation is wasted there.
        off_target_deg: (min, max) landing error of those trials.
        landing_sd_deg: per-axis landing scatter of the other trials.
        saccade_latency_s: mean time from target onset to the saccade; the simulated participant
            varies it by about 20 % from trial to trial, keyed by the plan.
        fixation_hold_s: hold before fixation counts as acquired.
        stimulus_s, isi_s: each of the two intervals, and the blank between them.
        response_s: the feedback after the simulated answer.
        iti_s: inter-trial blank.
        refresh_hz: frame rate of the loop.
        baseline_s: seconds of flipping with no generation (frame-interval baseline).
        seed: random seed of targets, landing points and the simulated participant.
        window_px: window size, enlarged to hold the whole image (``window_size``).
        nice: niceness added to the generator process.
        quiet_intervals: prefetch the next twin once the second interval has ended (the
            intervals run with an idle generator) instead of before the first (as sessions do).
    """

    trials: int = 24
    image_px: int = 512
    model: str = "tiny"
    device: str = "cpu"
    steps: int | None = None
    decode: str = "full"
    dtype: str = DEFAULT_DTYPE
    tolerance_deg: float = 0.5
    off_target_prob: float = 0.25
    off_target_deg: tuple[float, float] = (0.8, 1.3)
    landing_sd_deg: float = 0.15
    saccade_latency_s: float = 0.2
    fixation_hold_s: float = 0.3
    stimulus_s: float = 0.5
    isi_s: float = 0.25
    response_s: float = 0.5
    iti_s: float = 0.3
    refresh_hz: float = 60.0
    baseline_s: float = 3.0
    seed: int = 0
    window_px: tuple[int, int] = (800, 600)
    nice: int = 10
    quiet_intervals: bool = True


def window_size(config: BenchConfig) -> tuple[int, int]:
    """The bench window's size: ``window_px``, enlarged to hold the whole ``image_px`` image (a
    larger image was drawn cut off by the window, so its frames cost less than on a screen that
    shows it whole)."""
    w, h = config.window_px
    return max(int(w), config.image_px), max(int(h), config.image_px)


@dataclass
class BenchTrial:
    """One planned trial (shared by both modes); degrees from the screen centre."""

    seed: int
    conditioning: int | str
    target_deg: tuple[float, float]
    landing_deg: tuple[float, float]
    off_target: bool


def bench_conditionings(config: BenchConfig) -> tuple[int, ...] | tuple[str, ...]:
    """What the trials draw from: prompts for a FLUX pipeline directory (a prompt model), the
    classes of the presets otherwise."""
    from protocol.stimulus_settings import is_pipeline_directory

    return BENCH_PROMPTS if is_pipeline_directory(config.model) else BENCH_CLASSES


def plan_trials(config: BenchConfig) -> list[BenchTrial]:
    """The seeded trial sequence (shared by both modes)."""
    rng = np.random.default_rng(config.seed)
    conditionings = bench_conditionings(config)
    plans = []
    for i in range(config.trials):
        tx, ty = TARGETS_DEG[int(rng.integers(len(TARGETS_DEG)))]
        off = bool(rng.random() < config.off_target_prob)
        if off:
            r = rng.uniform(*config.off_target_deg)
            a = rng.uniform(0, 2 * math.pi)
            dx, dy = r * math.cos(a), r * math.sin(a)
        else:
            dx, dy = rng.normal(0.0, config.landing_sd_deg, size=2)
        plans.append(
            BenchTrial(
                seed=1000 + i,
                conditioning=conditionings[i % len(conditionings)],
                target_deg=(tx, ty),
                landing_deg=(tx + float(dx), ty + float(dy)),
                off_target=off,
            )
        )
    return plans


def bench_protocol(config: BenchConfig, *, speculative: bool):
    """The protocol the bench's trials run: one condition per target, the default display at
    ``refresh_hz``, the simulated tracker without fixation breaks, the process service."""
    from protocol.load import validate_protocol

    hold_s = config.fixation_hold_s
    return validate_protocol(
        {
            "name": "realtime_bench",
            "description": "fovea bench realtime",
            "display": {"refresh_hz": config.refresh_hz, "fullscreen": False},
            "tracker": {
                "kind": "sim",
                "sim_fixation_break_prob": 0.0,
                "sim_saccade_latency_s": config.saccade_latency_s,
            },
            "stimulus": {
                "model": config.model,
                "device": config.device,
                "image_width_px": config.image_px,
                "image_height_px": config.image_px,
                "num_steps": config.steps,
                "decode": config.decode,
                "dtype": config.dtype,
                **_conditioning_fields(bench_conditionings(config)),
                "seed_start": 1000,
                "seed_count": max(1, config.trials),
            },
            "conditions": [
                {"name": f"target{i}", "fixation_deg": list(t), "levels": [1.0]}
                for i, t in enumerate(TARGETS_DEG)
            ],
            "procedure": {"method": "constant", "constant": {"repeats": 1}},
            "timing": {
                "fixation_hold_s": hold_s,
                "gaze_average_s": min(0.1, hold_s),
                "stimulus_duration_s": config.stimulus_s,
                "isi_s": config.isi_s,
                "mask_duration_s": 0.0,
                "feedback_duration_s": config.response_s,
                "iti_s": config.iti_s,
            },
            "fixation": {"tolerance_deg": FIXATION_TOLERANCE_DEG},
            "generation": {
                "service": "process",
                "speculative": speculative,
                "speculation_tolerance_deg": config.tolerance_deg,
                "deadline_s": 600.0,  # the bench measures latency; nothing is re-queued
            },
            "feedback": {"enabled": True},
        },
        source="fovea bench realtime",
    )


def _conditioning_fields(conditionings) -> dict:
    """The ``[stimulus]`` fields naming what the trials draw from."""
    if isinstance(conditionings[0], str):
        return {"prompts": list(conditionings)}
    return {"classes": list(conditionings)}


def abba_order(n_trials: int) -> list[tuple[int, str]]:
    """(trial index, mode) pairs: speculative-plain, plain-speculative, ..."""
    order = []
    for i in range(n_trials):
        pair = MODES if i % 2 == 0 else MODES[::-1]
        order.extend((i, mode) for mode in pair)
    return order


class LandingParticipant:
    """The simulated tracker, its eyes sent to the bench's landing point instead of the target.

    Args:
        tracker: a ``study.trackers.sim.SimulatedTracker``.
    """

    def __init__(self, tracker) -> None:
        self._tracker = tracker
        self.landing_deg: tuple[float, float] | None = None  # the current trial's landing point
        self.plan_trial: int | None = None  # the current plan's number (1, 2, ...)

    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        if self.landing_deg is not None:
            x_deg, y_deg = self.landing_deg
        self._tracker.set_target(x_deg=x_deg, y_deg=y_deg)

    def rest(self, *, x_deg: float, y_deg: float) -> None:
        """Look at (x_deg, y_deg), whatever the landing point (between trials)."""
        self._tracker.set_target(x_deg=x_deg, y_deg=y_deg)

    def trial_start(self, *, trial: int, variables: dict) -> None:
        """The participant's random streams are keyed by the plan, not by the trial's place in
        the run: both modes' trials of one plan see the same saccade latency, landing error,
        drift and microsaccades."""
        plan_trial = trial if self.plan_trial is None else self.plan_trial
        self._tracker.trial_start(trial=plan_trial, variables=variables)

    def __getattr__(self, name: str):
        return getattr(self._tracker, name)
