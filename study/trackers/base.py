"""The tracker interface every gaze source implements (EyeLink, EyeLink dummy mode, simulated).

Coordinates: degrees of visual angle from the screen centre, x to the right, y up. Times: seconds on
the clock the tracker was made with (``make_tracker(clock=...)``), so simulated sessions can run on a
fast simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

TrackerKind = Literal["eyelink", "dummy", "sim"]


@dataclass(frozen=True)
class GazeSample:
    """One gaze sample.

    Attributes:
        time_s: sample time in seconds on the tracker's clock.
        x_deg: horizontal gaze, degrees from the screen centre (positive right).
        y_deg: vertical gaze, degrees from the screen centre (positive up).
        valid: False during blinks or track loss (x/y are then NaN).
    """

    time_s: float
    x_deg: float
    y_deg: float
    valid: bool


@dataclass(frozen=True)
class CalibrationResult:
    """Outcome of a calibration + validation.

    Attributes:
        avg_error_deg: mean validation error, degrees.
        max_error_deg: worst validation point error, degrees.
        time_s: when the calibration finished, on the tracker's clock.
    """

    avg_error_deg: float
    max_error_deg: float
    time_s: float


@runtime_checkable
class Tracker(Protocol):
    """What the study runner needs from a gaze source. All methods are keyword-only."""

    name: str  # "eyelink" | "dummy" | "sim"

    def open(self, *, win: Any, session_dir: Path, edf_name: str) -> None:
        """Connect, open the EDF file (EyeLink/dummy) and configure the tracker for ``win``."""

    def calibrate(self) -> CalibrationResult | None:
        """Run calibration + validation; None when there is nothing to calibrate or it was skipped."""

    def drift_correct(self, *, x_deg: float, y_deg: float) -> bool:
        """Drift-check/correct at a target position; True when accepted."""

    def start_recording(self) -> None:
        """Start sample/event recording."""

    def stop_recording(self) -> None:
        """Stop recording."""

    def message(self, text: str) -> None:
        """Write a time-stamped message into the tracker's data file.

        A message starting with ``STIMULUS_ONSET`` marks the first stimulus interval's onset:
        the simulated participant times its planned fixation breaks from it.
        """

    def trial_start(self, *, trial: int, variables: dict) -> None:
        """Mark a trial's start: ``TRIALID`` and one ``!V TRIAL_VAR`` per variable."""

    def trial_end(self, *, result: str) -> None:
        """Mark a trial's end: ``TRIAL_RESULT``."""

    def sample(self) -> GazeSample | None:
        """The newest gaze sample, or None when none is available yet."""

    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        """Where the display asks the eye to look (drives the simulated participant)."""

    def close(self, *, dest_dir: Path) -> Path | None:
        """Stop, close the data file and transfer the EDF into ``dest_dir``; its path or None."""
