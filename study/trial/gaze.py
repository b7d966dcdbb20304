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
        allow_invalid: bool = False,
    ) -> None:
        self.x, self.y = x_deg, y_deg
        self.tolerance = tolerance_deg
        self.max_invalid_s = max_invalid_s
        self.break_min_s = break_min_s
        self.sample_period_s = sample_period_s
        self.allow_invalid = allow_invalid
        self.invalid_seen = False
        self._invalid_since: float | None = None
        self._outside_since: float | None = None

    def inside(self, sample) -> bool:
        return bool(
            sample is not None
            and sample.valid
            and math.hypot(sample.x_deg - self.x, sample.y_deg - self.y) <= self.tolerance
        )

    def reset(self) -> None:
        self.invalid_seen = False
        self._invalid_since = self._outside_since = None

    def broken(self, *, t: float, sample) -> bool:
        """True when this frame's sample ends the fixation."""
        if sample is None or not sample.valid:
            self.invalid_seen = True
            if self.allow_invalid:
                return False
            if self._invalid_since is None:
                self._invalid_since = t
            return t - self._invalid_since > self.max_invalid_s
        self._invalid_since = None
        if self.inside(sample):
            self._outside_since = None
            return False
        if self._outside_since is None:
            self._outside_since = t
        return t - self._outside_since + self.sample_period_s >= self.break_min_s


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
