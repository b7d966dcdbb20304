"""The EyeLink Host PC's calibration, validation and drift-check texts: written by the pylink
emulator, parsed by the EyeLink tracker.

The Host PC reports results as text, both in the EDF (``MSG`` lines) and through
``EyeLink.getCalibrationMessage()``:

- ``!CAL CALIBRATION HV9 R RIGHT   GOOD``
- ``!CAL VALIDATION HV9 R RIGHT GOOD ERROR 0.42 avg. 0.91 max  OFFSET 0.11 deg. 2.1,-3.4 pix.``
- ``DRIFTCORRECT R RIGHT at 960,540  OFFSET 0.23 deg.  5.1,-2.0 pix.`` (the EDF's line)

After a drift check, ``getCalibrationMessage()`` does not repeat the EDF's ``DRIFTCORRECT`` line:
SR Research's API reference for ``eyelink_cal_message`` shows ``drift_correction: 0.11 -1.00
-4.00`` (offset in degrees, then x and y in pixels); ``parse_drift_check`` reads both.

Errors and offsets are in degrees of visual angle, positions in the tracker's screen pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
# "... ERROR 0.35 avg. 0.72 max ..." in the Host PC's validation summary.
_VALIDATION_RE = re.compile(rf"({_NUMBER})\s*avg\.?\s*({_NUMBER})\s*max", re.I)
_QUALITY_RE = re.compile(r"\b(GOOD|FAIR|POOR|FAILED)\b")
_EYE_RE = re.compile(r"\b(LEFT|RIGHT)\b")
_DRIFT_RE = re.compile(
    rf"DRIFTCORRECT\s+\S+\s+(LEFT|RIGHT)\s+at\s+({_NUMBER}),\s*({_NUMBER})\s+"
    rf"OFFSET\s+({_NUMBER})\s+deg\.?\s+({_NUMBER}),\s*({_NUMBER})\s+pix",
    re.I,
)
# getCalibrationMessage() after a drift check: "drift_correction: 0.11 -1.00 -4.00".
_DRIFT_MESSAGE_RE = re.compile(
    rf"drift_correction:\s*({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})", re.I
)


def eye_mode(eye: str) -> str:
    """``R``, ``L`` or ``LR`` for ``right``, ``left`` or ``binocular``."""
    return {"right": "R", "left": "L", "binocular": "LR"}[eye]


def validation_quality(avg_error_deg: float, max_error_deg: float) -> str:
    """The Host PC's rating of a validation (SR Research's FAQ "What determines whether a
    validation is GOOD, FAIR or POOR?"): GOOD (avg < 1.0, max < 1.5 deg), FAIR (avg < 1.5,
    max < 2.0 deg), else POOR. SR suggests aiming for avg < 0.5 and max < 1.0 deg in healthy
    adults: the protocol's limits, not this rating, decide acceptance."""
    if avg_error_deg < 1.0 and max_error_deg < 1.5:
        return "GOOD"
    if avg_error_deg < 1.5 and max_error_deg < 2.0:
        return "FAIR"
    return "POOR"


def calibration_text(*, calibration_type: str, eye: str, good: bool = True) -> str:
    """``!CAL CALIBRATION <type> <mode> <EYE>   GOOD|FAILED`` (``eye``: left/right)."""
    rating = "GOOD" if good else "FAILED"
    return f"!CAL CALIBRATION {calibration_type} {eye_mode(eye)} {eye.upper()}   {rating}"


def validation_text(
    *,
    calibration_type: str,
    eye: str,
    avg_error_deg: float,
    max_error_deg: float,
    offset_deg: float,
    offset_px: tuple[float, float],
) -> str:
    """The validation summary line (``!CAL VALIDATION ...``) for one eye (left/right)."""
    quality = validation_quality(avg_error_deg, max_error_deg)
    return (
        f"!CAL VALIDATION {calibration_type} {eye_mode(eye)} {eye.upper()} {quality} "
        f"ERROR {avg_error_deg:.2f} avg. {max_error_deg:.2f} max  "
        f"OFFSET {offset_deg:.2f} deg. {offset_px[0]:.1f},{offset_px[1]:.1f} pix."
    )


def drift_check_text(
    *, eye: str, target_px: tuple[int, int], offset_deg: float, offset_px: tuple[float, float]
) -> str:
    """``DRIFTCORRECT R RIGHT at 960,540  OFFSET 0.23 deg.  5.1,-2.0 pix.``"""
    return (
        f"DRIFTCORRECT {eye_mode(eye)} {eye.upper()} at {target_px[0]},{target_px[1]}  "
        f"OFFSET {offset_deg:.2f} deg.  {offset_px[0]:.1f},{offset_px[1]:.1f} pix."
    )


def drift_correction_message(*, offset_deg: float, offset_px: tuple[float, float]) -> str:
    """What ``getCalibrationMessage()`` returns after a drift check:
    ``drift_correction: 0.11 -1.00 -4.00`` (degrees, then pixels)."""
    return f"drift_correction: {offset_deg:.2f} {offset_px[0]:.2f} {offset_px[1]:.2f}"


@dataclass(frozen=True)
class ValidationSummary:
    """A parsed validation line: errors in degrees, the Host's rating and the eye (or None)."""

    avg_error_deg: float
    max_error_deg: float
    quality: str | None
    eye: str | None


def parse_validation(text: str | None) -> ValidationSummary | None:
    """The validation summary in ``text`` (with or without the ``!CAL`` prefix), or None."""
    match = _VALIDATION_RE.search(text or "")
    if match is None:
        return None
    quality = _QUALITY_RE.search(text)
    eye = _EYE_RE.search(text)
    return ValidationSummary(
        avg_error_deg=float(match.group(1)),
        max_error_deg=float(match.group(2)),
        quality=quality.group(1).upper() if quality else None,
        eye=eye.group(1).lower() if eye else None,
    )


def parse_validation_message(text: str | None) -> tuple[float, float] | None:
    """``(avg_error_deg, max_error_deg)`` from the Host PC's validation message, or None."""
    summary = parse_validation(text)
    return None if summary is None else (summary.avg_error_deg, summary.max_error_deg)


@dataclass(frozen=True)
class DriftCheckSummary:
    """A parsed drift-check result: offset (deg and px); the eye and the target (px) when the
    text is the EDF's ``DRIFTCORRECT`` line (None from ``drift_correction: ...``)."""

    eye: str | None
    target_px: tuple[float, float] | None
    offset_deg: float
    offset_px: tuple[float, float]


def parse_drift_check(text: str | None) -> DriftCheckSummary | None:
    """The drift-check result in ``text`` (``getCalibrationMessage()``'s ``drift_correction:
    <deg> <dx> <dy>`` or the EDF's ``DRIFTCORRECT`` line), or None (no NaN for a missing
    result)."""
    short = _DRIFT_MESSAGE_RE.search(text or "")
    if short is not None:
        offset, dx, dy = (float(value) for value in short.groups())
        return DriftCheckSummary(eye=None, target_px=None, offset_deg=offset, offset_px=(dx, dy))
    match = _DRIFT_RE.search(text or "")
    if match is None:
        return None
    eye, tx, ty, offset, dx, dy = match.groups()
    return DriftCheckSummary(
        eye=eye.lower(),
        target_px=(float(tx), float(ty)),
        offset_deg=float(offset),
        offset_px=(float(dx), float(dy)),
    )
