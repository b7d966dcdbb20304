"""What one trial's phases share (``TrialState``), what a trial produces (``TrialOutcome``), and
its random numbers (``trial_rng``)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from study.generation import GenerationResult
from study.procedures import TrialPlan
from study.trial.gaze import GazeMonitor


@dataclass
class TrialOutcome:
    """What a trial produced.

    Attributes:
        row: the ``beh.tsv`` row (``protocol.session_data``).
        requeue: the trial was aborted and its plan goes back into the queue.
        correct: the answer was right (None when aborted).
        frame_intervals_s: PsychoPy's flip intervals during the trial, seconds.
        fixation_acquired_s: session-clock time the fixation hold completed (the gaze was
            measured), None if it never did; ``row["onset_s"] - fixation_acquired_s`` is the
            fixation-to-stimulus latency.
        generation_timings: the foveated request's ticket timings (``GenerationTicket.timings``),
            None when none was made.
        recording_stopped: the tracker was no longer recording when the trial ended (stopped
            during the trial, or during its feedback or abort screen): the session restarts it.
    """

    row: dict
    requeue: bool
    correct: bool | None
    frame_intervals_s: list[float] = field(default_factory=list)
    fixation_acquired_s: float | None = None
    generation_timings: dict | None = None
    recording_stopped: bool = False

    @property
    def fixation_to_onset_s(self) -> float | None:
        """Fixation acquired to first-interval onset (session clock), None when not shown."""
        onset = self.row.get("onset_s")
        if onset is None or self.fixation_acquired_s is None:
            return None
        return float(onset) - self.fixation_acquired_s


def trial_rng(*, session_seed: int, plan: TrialPlan, purpose: str) -> np.random.Generator:
    """A generator fixed by the session seed, the plan's track and position and a purpose.

    Keying on the plan (not the trial number) gives a plan the same answer whether it runs first
    time or after re-queues or a resume.
    """
    key = [
        session_seed,
        zlib.crc32(plan.track.encode()),
        plan.track_index,
        zlib.crc32(purpose.encode()),
    ]
    return np.random.default_rng(key)


class TrialAborted(Exception):
    """A phase ended the trial; ``reason`` is the row's ``abort_reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TrialState:
    """The state one trial's phases share."""

    plan: TrialPlan
    row: dict
    spec: object  # generator.LayoutSpec of the foveated image
    fixation_deg: tuple[float, float]
    twin: GenerationResult | None = None
    twin_ticket: object = None
    speculation: object = None  # ticket started at the fixation target, or None
    foveated_ticket: object = None
    foveated: GenerationResult | None = None
    gaze_deg: tuple[float, float] | None = None  # measured at the end of the hold
    # The gaze the shown foveated image was made for when not the measured one: the fixation
    # target for a kept speculation, where it was made for a stand-in (deg).
    image_gaze_deg: tuple[float, float] | None = None
    monitor: GazeMonitor | None = None  # fixation check from the hold on
    seen_deg: list[tuple[float, float]] = field(default_factory=list)  # gaze while shown
    fixation_acquired_s: float | None = None
    shown: bool = False  # the first interval's image was on the screen
    intervals_before: int = 0  # len(win.frameIntervals) when the trial started
