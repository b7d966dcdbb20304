"""Calibration and drift-check procedures on an EyeLink, with acceptance against the protocol.

SR Research's sequence, with the decisions the runner needs made explicit:

- Calibration: the Host PC's setup menu (``doTrackerSetup``) repeats until a validation meets the
  average and maximum error limits, or the operator accepts it anyway (``override``, logged), at
  most ``max_attempts`` times. Every setup's result is kept.
- Drift check: ``doDriftCorrect(x, y, draw=1, allow_setup=1)``. An Esc there takes the operator
  to the setup menu inside pylink (and it returns 27); the check is then repeated, never followed
  by a second ``doTrackerSetup`` (a validation there outside the limits is put to the operator,
  as in a calibration; not accepted, the check ends and asks for a recalibration). At most
  ``max_attempts`` calls; the offset is parsed from ``getCalibrationMessage()``
  (``drift_correction: <deg> <dx> <dy>``), and above the limit (or with no result) a
  recalibration is flagged.

Both stop recording for the procedure and the tracker restarts it afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from study.trackers.base import CalibrationResult, DriftCheckResult
from study.trackers.host_text import parse_drift_check, parse_validation

if TYPE_CHECKING:
    from study.trackers.eyelink import EyeLinkTracker

log = logging.getLogger(__name__)
ESC_KEY = 27


@dataclass(frozen=True)
class AcceptanceLimits:
    """When a calibration or drift check is good enough (degrees of visual angle).

    Attributes:
        avg_error_deg: largest accepted mean validation error.
        max_error_deg: largest accepted worst-point validation error.
        drift_offset_deg: largest accepted drift-check offset; above it, recalibrate.
    """

    avg_error_deg: float = 1.0
    max_error_deg: float = 2.0
    drift_offset_deg: float = 1.0

    @classmethod
    def from_settings(cls, settings) -> AcceptanceLimits:
        """From the protocol's ``TrackerSettings``: ``validation_max_avg_error_deg``; the optional
        ``validation_max_error_deg`` (default: 2 deg, at least twice the average limit) and
        ``drift_check_max_offset_deg`` (default 1 deg) when the schema has them."""
        avg = float(getattr(settings, "validation_max_avg_error_deg", cls.avg_error_deg))
        worst = getattr(settings, "validation_max_error_deg", None)
        drift = getattr(settings, "drift_check_max_offset_deg", None)
        return cls(
            avg_error_deg=avg,
            max_error_deg=float(worst) if worst is not None else max(2.0, 2.0 * avg),
            drift_offset_deg=float(drift) if drift is not None else cls.drift_offset_deg,
        )

    def validation_ok(self, avg_error_deg: float | None, max_error_deg: float | None) -> bool:
        return (
            avg_error_deg is not None
            and max_error_deg is not None
            and avg_error_deg <= self.avg_error_deg
            and max_error_deg <= self.max_error_deg
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def read_setup_result(tracker: EyeLinkTracker, *, attempt: int) -> CalibrationResult:
    """The result of the setup that just ended, judged against the limits (no override yet).
    Its eye is the validation's (the Host's text names it): ``eyeAvailable()`` tells the eye of
    the last recording block (-1 before the first), not one switched to in this setup."""
    summary = parse_validation(tracker.el.getCalibrationMessage())
    avg = summary.avg_error_deg if summary else None
    worst = summary.max_error_deg if summary else None
    link_eye = tracker.read_recorded_eye()
    return CalibrationResult(
        avg_error_deg=avg,
        max_error_deg=worst,
        time_s=float(tracker.clock()),
        accepted=tracker.limits.validation_ok(avg, worst),
        quality=summary.quality if summary else None,
        eye=(summary.eye if summary and summary.eye else None) or link_eye,
        attempts=attempt,
    )


def keep_setup_result(tracker: EyeLinkTracker, result: CalibrationResult) -> None:
    """Log a setup's result in the EDF and in ``tracker.calibrations``."""
    tracker.calibrations.append(result)
    tracker.message(
        f"FOVEA_CALIBRATION avg {_fmt(result.avg_error_deg)} max {_fmt(result.max_error_deg)} "
        f"accepted {int(result.accepted)} override {int(result.override)} "
        f"attempt {result.attempts}"
    )


def run_setup(tracker: EyeLinkTracker) -> CalibrationResult:
    """Setup until a validation is accepted (or the operator overrides); the last result.

    ``tracker.override_validation(result) -> bool``, when set, asks the operator about each
    validation outside the limits (or a setup left without one): True accepts it anyway
    (``override``), False runs the setup again, as often as the operator wants (the question
    may raise ``QuitRequested``). Without it (no one at the keyboard: simulated sessions) the
    setup runs at most ``tracker.max_setup_attempts`` times and the last result is returned,
    not accepted.
    """
    el = tracker.el
    attempt = 0
    while True:
        attempt += 1
        el.setOfflineMode()
        el.doTrackerSetup()
        result = read_setup_result(tracker, attempt=attempt)
        ask = tracker.override_validation
        if not result.accepted and ask is not None and ask(result):
            result = replace(result, accepted=True, override=True)
        keep_setup_result(tracker, result)
        if result.accepted or (ask is None and attempt >= tracker.max_setup_attempts):
            return result
        log.warning(
            "validation not accepted (avg %s, max %s deg; limits %.2f/%.2f): setup again",
            _fmt(result.avg_error_deg),
            _fmt(result.max_error_deg),
            tracker.limits.avg_error_deg,
            tracker.limits.max_error_deg,
        )


def run_drift_check(
    tracker: EyeLinkTracker, *, x_px: int, y_px: int, target_deg
) -> DriftCheckResult:
    """The drift check at window pixel ``(x_px, y_px)``, with capped retries."""
    el = tracker.el
    code = None
    attempts = 0
    while attempts < tracker.max_drift_attempts and tracker.is_connected():
        attempts += 1
        try:
            code = el.doDriftCorrect(x_px, y_px, 1, 1)
        except RuntimeError as error:  # a link hiccup: try again (SR's templates do the same)
            log.warning("drift check failed: %s", error)
            code = None
            continue
        if code != ESC_KEY:
            break
        # Esc: pylink ran the setup menu (allow_setup=1); keep that calibration, check again,
        # unless it validated outside the limits: then, as in calibrate(), the operator accepts
        # it anyway or the check ends asking for a recalibration (run_setup's question again).
        setup = read_setup_result(tracker, attempt=1)
        ask = tracker.override_validation
        outside = setup.avg_error_deg is not None and not setup.accepted
        if outside and ask is not None and ask(setup):
            setup = replace(setup, accepted=True, override=True)
        keep_setup_result(tracker, setup)
        if outside and not setup.accepted:
            break
    message = el.getCalibrationMessage() if code == 0 else ""
    summary = parse_drift_check(message)
    offset = summary.offset_deg if summary else None
    if code == 0 and summary is None:
        log.warning(
            "drift check accepted by the Host PC but its offset could not be read from "
            "getCalibrationMessage() (%r): no offset limit applied",
            message,
        )
    too_far = offset is not None and offset > tracker.limits.drift_offset_deg
    accepted = code == 0 and not too_far
    result = DriftCheckResult(
        time_s=float(tracker.clock()),
        target_deg=(float(target_deg[0]), float(target_deg[1])),
        offset_deg=offset,
        accepted=accepted,
        recalibrate=not accepted,
        attempts=attempts,
        message=message or "",
    )
    if accepted and tracker.apply_drift_correction:
        el.applyDriftCorrect()  # before recording restarts, as in SR's templates
    tracker.drift_checks.append(result)
    if tracker.is_connected():
        tracker.message(
            f"FOVEA_DRIFT_CHECK offset {_fmt(offset)} accepted {int(accepted)} "
            f"recalibrate {int(result.recalibrate)} attempts {attempts}"
        )
    return result
