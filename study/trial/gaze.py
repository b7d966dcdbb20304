"""The trial's gaze checks: holding fixation before generation, and staying there after.

Positions are degrees from the screen centre (x right, y up); times are session-clock seconds.
"""

from __future__ import annotations

import math

import numpy as np


class GazeMonitor:
    """Per-frame fixation check around a centre (the target, or the gaze the image was made at).

    A fixation break is the gaze outside ``tolerance_deg`` for at least ``break_min_s``: the
    consecutive outside samples, each counted as lasting ``sample_period_s`` (the gaze is read
    once per frame: at 60 Hz and 20 ms, two frames in a row), so one noisy sample is not a
    break. Invalid samples (blinks, loss) are tolerated for ``max_invalid_s`` in a row, or
    always with ``allow_invalid`` (the wait for the images: the trial then asks for a fresh
    hold before the onset). ``invalid_seen``: an invalid sample came since the last ``reset``.

    Blinks come with artifacts: the eyelid moves the pupil's image as it closes and opens, so
    the EyeLink reports a saccade around every blink (SR Research: "blinks are always embedded
    in saccades"). Samples within ``blink_edge_s`` of a blink belong to it: outside samples up
    to ``blink_edge_s`` after a blink are not counted, and an outside run that a blink ends is
    not a break. So a run is decided ``blink_edge_s`` late: a break once it has lasted
    ``break_min_s + blink_edge_s`` with valid samples, or when the gaze comes back inside after
    ``break_min_s`` or more; ``ends_broken`` decides a run still open when the check ends.
    """

    def __init__(
        self,
        *,
        x_deg: float,
        y_deg: float,
        tolerance_deg: float,
        max_invalid_s: float,
        break_min_s: float = 0.0,
        sample_period_s: float = 0.0,
        blink_edge_s: float = 0.0,
        allow_invalid: bool = False,
    ) -> None:
        self.x, self.y = x_deg, y_deg
        self.tolerance = tolerance_deg
        self.max_invalid_s = max_invalid_s
        self.break_min_s = break_min_s
        self.sample_period_s = sample_period_s
        self.blink_edge_s = blink_edge_s
        self.allow_invalid = allow_invalid
        self.invalid_seen = False
        self._invalid_since: float | None = None
        self._last_invalid: float | None = None
        self._outside: tuple[float, float] | None = None  # the open outside run: (first, last)

    def inside(self, sample) -> bool:
        return bool(
            sample is not None
            and sample.valid
            and math.hypot(sample.x_deg - self.x, sample.y_deg - self.y) <= self.tolerance
        )

    def reset(self) -> None:
        self.invalid_seen = False
        self._invalid_since = self._last_invalid = self._outside = None

    def _run_s(self) -> float:
        """How long the open outside run has lasted (0 without one)."""
        if self._outside is None:
            return 0.0
        first, last = self._outside
        return last - first + self.sample_period_s

    def broken(self, *, t: float, sample) -> bool:
        """True when this frame's sample ends the fixation."""
        if sample is None or not sample.valid:
            self.invalid_seen = True
            self._last_invalid = t
            self._outside = None  # the run a blink ends was the eyelid closing
            if self.allow_invalid:
                return False
            if self._invalid_since is None:
                self._invalid_since = t
            return t - self._invalid_since > self.max_invalid_s
        self._invalid_since = None
        if self.inside(sample):
            came_back_after_break = self.ends_broken()  # the run it ends was long enough
            self._outside = None
            return came_back_after_break
        if self._last_invalid is not None and t - self._last_invalid <= self.blink_edge_s:
            return False  # the eyelid opening after a blink
        first = t if self._outside is None else self._outside[0]
        self._outside = (first, t)
        return self._run_s() >= self.break_min_s + self.blink_edge_s

    def ends_broken(self) -> bool:
        """When the check ends: the open outside run has lasted ``break_min_s`` (no blink came
        to explain it)."""
        return self._outside is not None and self._run_s() >= self.break_min_s


class FixationHold:
    """The samples of an uninterrupted hold inside the tolerance.

    Args:
        monitor: the target and tolerance.
        hold_s: how long the gaze must stay inside.
    """

    def __init__(self, *, monitor: GazeMonitor, hold_s: float) -> None:
        self.monitor = monitor
        self.hold_s = hold_s
        self.samples: list[tuple[float, float, float]] = []  # (t, x_deg, y_deg)

    def reset(self) -> None:
        self.samples = []

    def add(self, *, t: float, sample) -> bool:
        """Add this frame's sample; True once the hold is complete."""
        if not self.monitor.inside(sample):
            self.samples = []
            return False
        self.samples.append((t, sample.x_deg, sample.y_deg))
        return t - self.samples[0][0] >= self.hold_s

    @property
    def end_s(self) -> float:
        """Time of the hold's last sample (when fixation was acquired)."""
        return self.samples[-1][0]

    def mean_gaze_deg(self, average_s: float) -> tuple[float, float]:
        """Mean gaze over the hold's final ``average_s`` seconds (at least its last sample)."""
        t_end = self.end_s
        recent = [(x, y) for (t, x, y) in self.samples if t >= t_end - average_s] or [
            self.samples[-1][1:]
        ]
        return float(np.mean([g[0] for g in recent])), float(np.mean([g[1] for g in recent]))
