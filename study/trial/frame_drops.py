"""Dropped frames per trial phase, from PsychoPy's frame intervals.

``win.frameIntervals`` (recorded during trials) holds the time between consecutive flips; the
``Presenter`` notes which screen each interval kept up (``Presenter.interval_phases``). An
interval above ``win.refreshThreshold`` (1.5 nominal periods, ``study.frames``) is a dropped
frame: that screen stayed up at least one frame too long. A drop while the stimulus is shown or
between the two images (interval 1, mask, ISI, interval 2) changes what the participant saw, so
such a trial is aborted before the answer and re-queued (``abort_reason = dropped_frame``).
"""

from __future__ import annotations

from protocol.session_data import DROP_PHASES, STIMULUS_DROP_PHASES, drop_column

#: Presenter phase -> the phase its drops are counted for (the mark before onset: fixation).
COUNTED_PHASES = {
    "fixation": "fixation",
    "wait": "fixation",
    "refixation": "fixation",
    "interval1": "interval1",
    "mask": "mask",
    "isi": "isi",
    "interval2": "interval2",
}
#: beh.tsv column of each counted phase.
DROP_COLUMNS = {phase: drop_column(phase) for phase in DROP_PHASES}
#: A drop in these phases re-queues the trial.
STIMULUS_PHASES = STIMULUS_DROP_PHASES


def phase_drops(intervals_s, phases, *, threshold_s: float) -> dict[str, int]:
    """Dropped frames per counted phase (``DROP_COLUMNS``' keys).

    Args:
        intervals_s: flip intervals, seconds (a slice of ``win.frameIntervals``).
        phases: the phase each interval kept on screen (the same slice of
            ``Presenter.interval_phases``).
        threshold_s: an interval above this is a dropped frame.
    """
    counts = dict.fromkeys(DROP_COLUMNS, 0)
    for interval, phase in zip(intervals_s, phases, strict=False):
        counted = COUNTED_PHASES.get(phase)
        if counted is not None and interval > threshold_s:
            counts[counted] += 1
    return counts


def stimulus_drops(counts: dict[str, int]) -> int:
    """Drops that re-queue a trial (interval 1, mask, ISI, interval 2)."""
    return sum(counts[phase] for phase in STIMULUS_PHASES)
