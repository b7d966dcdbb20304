"""The tracker interface every gaze source implements (EyeLink, EyeLink dummy mode, simulated).

Coordinates: degrees of visual angle from the screen centre, x to the right, y up. Times: seconds on
the clock the tracker was made with (``make_tracker(clock=...)``), so simulated sessions can run on a
fast simulated clock. Everything a tracker reports for the data files (``CalibrationResult``,
``DriftCheckResult``) converts to strict JSON: a missing number is None (JSON null), never NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from generator.errors import FoveaError

TrackerKind = Literal["eyelink", "dummy", "sim", "eyelink-emulated"]

# SR Research's trial result codes (pylink.TRIAL_OK, REPEAT_TRIAL, TRIAL_ERROR): Data Viewer reads
# ``TRIAL_RESULT <int>``.
TRIAL_OK = 0
REPEAT_TRIAL = 1
TRIAL_ERROR = -1


class TrackerLinkLost(FoveaError):
    """The link to the eye tracker is down: the session cannot go on until it is back.

    Raised by the procedures that need the tracker (calibration, drift check, starting to
    record); samples meanwhile come back invalid. Everything up to the last completed trial is
    on disk; the run ends (a screen tells the operator), and ``--resume`` continues.
    """


def trial_result_code(label: str) -> int:
    """The ``TRIAL_RESULT`` code for the runner's outcome label.

    ``"response"`` (a completed trial) -> 0 (TRIAL_OK); ``"aborted"`` (an exception ended it) ->
    -1 (TRIAL_ERROR); anything else (a fixation break, a late image: the trial is re-queued) -> 1
    (REPEAT_TRIAL).
    """
    if label in ("response", "ok"):
        return TRIAL_OK
    if label == "aborted":
        return TRIAL_ERROR
    return REPEAT_TRIAL


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing or not finite (strict JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class GazeSample:
    """One gaze sample.

    Attributes:
        time_s: sample time in seconds on the tracker's clock.
        x_deg: horizontal gaze, degrees from the screen centre (positive right).
        y_deg: vertical gaze, degrees from the screen centre (positive up).
        valid: False during blinks or track loss (x/y are then NaN), and for an EyeLink sample
            older than two display frames (the link has stalled or recording has stopped).
        is_new: False when the tracker has no newer sample than the one it returned last time
            (the same sample again: not to be logged twice).
    """

    time_s: float
    x_deg: float
    y_deg: float
    valid: bool
    is_new: bool = True


@dataclass(frozen=True)
class CalibrationResult:
    """Outcome of a calibration + validation (one tracker setup, or the last of several).

    Attributes:
        avg_error_deg: mean validation error, degrees; None when no validation ran.
        max_error_deg: worst validation point error, degrees; None when no validation ran.
        time_s: when the calibration finished, on the tracker's clock.
        accepted: the validation met the limits, or the operator accepted it (``override``).
        override: the operator accepted a validation outside the limits.
        quality: the Host PC's rating (``GOOD``, ``FAIR``, ``POOR``) when it reported one.
        eye: the eye the tracker records after this setup (``left``, ``right``, ``binocular``).
        attempts: setups run until this result (1 for the first).
    """

    avg_error_deg: float | None
    max_error_deg: float | None
    time_s: float
    accepted: bool = True
    override: bool = False
    quality: str | None = None
    eye: str | None = None
    attempts: int = 1

    def to_json(self) -> dict:
        """A strict-JSON dict (None for missing numbers)."""
        out = asdict(self)
        out["avg_error_deg"] = finite_or_none(self.avg_error_deg)
        out["max_error_deg"] = finite_or_none(self.max_error_deg)
        return out


@dataclass(frozen=True)
class DriftCheckResult:
    """Outcome of a drift check.

    Attributes:
        time_s: when it finished, on the tracker's clock.
        target_deg: the target, degrees from the screen centre.
        offset_deg: the Host PC's measured gaze offset from the target, degrees; None when the
            check gave no result (aborted, link lost, dummy mode).
        accepted: the check succeeded and its offset is within the limit.
        recalibrate: a recalibration is needed (offset above the limit, no result after the
            capped number of attempts, or a validation outside the limits, not accepted, in the
            setup menu entered from the check).
        attempts: doDriftCorrect calls made (an Esc to the setup menu counts as one).
        message: ``getCalibrationMessage()`` after the check (``drift_correction: <deg> <dx> <dy>``).
    """

    time_s: float
    target_deg: tuple[float, float]
    offset_deg: float | None
    accepted: bool
    recalibrate: bool
    attempts: int = 1
    message: str = ""

    def to_json(self) -> dict:
        """A strict-JSON dict (None for missing numbers)."""
        out = asdict(self)
        out["target_deg"] = [float(v) for v in self.target_deg]
        out["offset_deg"] = finite_or_none(self.offset_deg)
        return out


@runtime_checkable
class Tracker(Protocol):
    """What the study runner needs from a gaze source. All methods are keyword-only."""

    name: str  # "eyelink" | "dummy" | "sim" | "eyelink-emulated"

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

    def is_connected(self) -> bool:
        """The link to the tracker is alive (always True for trackers without one)."""

    def is_recording(self) -> bool:
        """The tracker is recording now (False after a link loss or an abort on the Host PC)."""

    def message(self, text: str) -> None:
        """Write a time-stamped message into the tracker's data file.

        A message starting with ``STIMULUS_ONSET`` marks the first stimulus interval's onset:
        the simulated participant times its planned fixation breaks from it.
        """

    def trial_start(self, *, trial: int, variables: dict) -> None:
        """Mark a trial's start: ``TRIALID`` and one ``!V TRIAL_VAR`` per variable."""

    def trial_end(self, *, result: str, variables: dict | None = None) -> None:
        """Mark a trial's end: ``!V TRIAL_VAR`` for ``variables`` known only now (response,
        correct, rt), then ``TRIAL_RESULT <code>`` (``trial_result_code``)."""

    def sample(self) -> GazeSample | None:
        """The newest gaze sample, or None when none is available yet."""

    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        """Where the display asks the eye to look (drives the simulated participant)."""

    def close(self, *, dest_dir: Path) -> Path | None:
        """Stop, close the data file and transfer the EDF into ``dest_dir``; its path or None."""
