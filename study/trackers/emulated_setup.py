"""The emulated EyeLink's setup procedures: calibration/validation (``doTrackerSetup``) and
drift checks (``doDriftCorrect``), with their results in the Host PC's text formats
(``study.trackers.host_text``) and the faults of the ``FaultScript``.

Mixed into ``EmulatedEyeLink``; uses its ``host``, ``mapper``, ``faults`` state, ``_rng``,
``_call``, ``_recording``, ``_stop_block``, ``_writer`` and ``_host_ms``.
"""

from __future__ import annotations

import math

from study.trackers import host_text

ESC_KEY, NO_REPLY = 27, 1000
_OTHER_EYE = {"left": "right", "right": "left"}


class EmulatedSetupMixin:
    """``doTrackerSetup``, ``doDriftCorrect``, ``applyDriftCorrect``, ``getCalibrationMessage``,
    ``getCalibrationResult`` of the emulated ``EyeLink`` (pylink's names)."""

    def _host_message(self, text: str) -> None:
        """A line the Host writes into its own file (its clock: never a scripted failure)."""
        if self._writer is not None:
            self._writer.message(self._host_ms(), text)

    def doTrackerSetup(self, width=None, height=None) -> None:  # noqa: N802
        """The setup menu: calibrate and validate (scripted), then back to offline mode."""
        if self.dummy:
            return
        self._call("doTrackerSetup")
        if self._recording:
            self._stop_block()
        self._setups += 1
        if self.faults.switch_eye_at_setup == self._setups:
            self.host.eye = _OTHER_EYE[self.host.eye]
        scripted = self._validations.pop(0) if self._validations else self._good_validation()
        eye = self.host.eye
        self._host_message(host_text.calibration_text(calibration_type="HV9", eye=eye))
        if scripted is None:  # the operator left without validating
            self._cal_message, self._cal_result = "", ESC_KEY
            return
        avg, worst = scripted
        offset = 0.5 * avg
        text = host_text.validation_text(
            calibration_type="HV9",
            eye=eye,
            avg_error_deg=avg,
            max_error_deg=worst,
            offset_deg=offset,
            offset_px=self._offset_px(offset),
        )
        self._host_message(text)
        self._cal_message = text
        self._cal_result = 1 if host_text.validation_quality(avg, worst) == "POOR" else 0

    def _good_validation(self) -> tuple[float, float]:
        avg = float(self._rng.uniform(0.25, 0.45))
        return round(avg, 2), round(avg * float(self._rng.uniform(1.6, 2.0)), 2)

    def _offset_px(self, offset_deg: float) -> tuple[float, float]:
        angle = float(self._rng.uniform(0.0, 2.0 * math.pi))
        ppd = self.mapper.display.pixels_per_degree
        return offset_deg * ppd * math.cos(angle), offset_deg * ppd * math.sin(angle)

    def doDriftCorrect(self, x: int, y: int, draw: int, allow_setup: int) -> int:  # noqa: N802
        if self.dummy:
            raise RuntimeError("doDriftCorrect: Invalid tracker mode (dummy connection)")
        self._call("doDriftCorrect")
        if self._recording:
            self._stop_block()
        self._drift_checks += 1
        if self._drift_escapes > 0:
            self._drift_escapes -= 1
            if allow_setup:
                self.doTrackerSetup()
            return ESC_KEY
        offset = (
            self._drift_offsets.pop(0)
            if self._drift_offsets
            else round(float(self._rng.uniform(0.1, 0.45)), 2)
        )
        offset_px = self._offset_px(offset)
        text = host_text.drift_check_text(
            eye=self.host.eye, target_px=(int(x), int(y)), offset_deg=offset, offset_px=offset_px
        )
        self._host_message(text)  # the EDF's line; the message is SR's shorter form
        message = host_text.drift_correction_message(offset_deg=offset, offset_px=offset_px)
        self._cal_message, self._cal_result = message, 0
        return 0

    def applyDriftCorrect(self) -> int:  # noqa: N802
        if not self.dummy:
            self._call("applyDriftCorrect")
        return 0

    def getCalibrationMessage(self) -> str:  # noqa: N802
        return self._cal_message

    def getCalibrationResult(self) -> int:  # noqa: N802
        return self._cal_result
