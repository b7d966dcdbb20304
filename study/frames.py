"""Flip timing: pacing a window without vsync, and statistics of flip intervals.

On a lab display ``win.flip()`` waits for the vertical blank, which paces the frame loop. Under
Xvfb there is no vsync and a flip returns at once; a ``FrameTimer`` given to the ``Presenter``
then paces the flips itself (sleep, then a short spin to the frame deadline) and records each
flip's ``time.perf_counter`` with the trial phase it belongs to. A frame counts as dropped when
its interval exceeds 1.5 nominal periods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

DROPPED_FRAME_PERIODS = 1.5  # an interval longer than this many periods is a dropped frame


@dataclass
class FrameIntervalStats:
    """Flip intervals of a stretch of frames.

    Attributes:
        frames: number of intervals.
        dropped_frames: intervals longer than 1.5 nominal periods.
        interval_median_s, interval_p95_s, interval_max_s, interval_sd_s: interval statistics.
    """

    frames: int
    dropped_frames: int
    interval_median_s: float | None
    interval_p95_s: float | None
    interval_max_s: float | None
    interval_sd_s: float | None

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": v for k, v in self.__dict__.items()}


def frame_stats(intervals_s, *, period_s: float) -> FrameIntervalStats:
    """Statistics of flip intervals (seconds) against the nominal ``period_s``."""
    x = np.asarray(list(intervals_s), dtype=float)
    if x.size == 0:
        return FrameIntervalStats(0, 0, None, None, None, None)
    return FrameIntervalStats(
        frames=int(x.size),
        dropped_frames=int(np.sum(x > DROPPED_FRAME_PERIODS * period_s)),
        interval_median_s=float(np.median(x)),
        interval_p95_s=float(np.percentile(x, 95)),
        interval_max_s=float(x.max()),
        interval_sd_s=float(x.std()),
    )


@dataclass
class FrameTimer:
    """Paces flips to ``refresh_hz`` and logs (time, phase) per flip.

    Call ``wait()`` right before ``win.flip()`` and ``flipped(phase)`` right after.

    Args:
        refresh_hz: the nominal frame rate.
        pace: sleep to the frame deadline (Xvfb, or windows with ``waitBlanking=False``); False
            when the display's vsync paces the flips (the log is kept either way).
    """

    refresh_hz: float = 60.0
    pace: bool = True
    times_s: list[float] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.period_s = 1.0 / self.refresh_hz
        self._next_s: float | None = None

    def wait(self) -> None:
        """Sleep (then spin) until the next frame deadline."""
        if self.pace and self._next_s is not None:
            delay = self._next_s - time.perf_counter()
            if delay > 0.002:
                time.sleep(delay - 0.0015)
            while time.perf_counter() < self._next_s:
                pass

    def flipped(self, phase: str) -> float:
        """Record a flip that just happened; returns its ``perf_counter`` time."""
        now = time.perf_counter()
        if self._next_s is None or now - self._next_s > 0.5 * self.period_s:
            self._next_s = now + self.period_s  # late: restart the cadence, do not burst
        else:
            self._next_s += self.period_s
        self.times_s.append(now)
        self.phases.append(phase)
        return now

    def mark(self) -> int:
        """Index of the next flip (to take statistics from here on)."""
        return len(self.times_s)

    def intervals(
        self, *, start: int = 0, stop: int | None = None, phases: set[str] | None = None
    ) -> list[float]:
        """Intervals ending at flips ``start..stop`` (optionally only flips in ``phases``)."""
        t = self.times_s
        stop = len(t) if stop is None else stop
        return [
            t[i] - t[i - 1]
            for i in range(max(1, start), stop)
            if phases is None or self.phases[i] in phases
        ]

    def stats(
        self, *, start: int = 0, stop: int | None = None, phases: set[str] | None = None
    ) -> FrameIntervalStats:
        return frame_stats(
            self.intervals(start=start, stop=stop, phases=phases), period_s=self.period_s
        )
