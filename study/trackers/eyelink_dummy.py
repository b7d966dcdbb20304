"""pylink's dummy mode (``pylink.EyeLink(None)``) with the mouse as gaze: the EyeLink code path
for piloting without a tracker."""

from __future__ import annotations

from pathlib import Path

from study.trackers.base import CalibrationResult, DriftCheckResult, GazeSample
from study.trackers.eyelink import EyeLinkTracker


class DummyEyeLinkTracker(EyeLinkTracker):
    """pylink's dummy mode (``pylink.EyeLink(None)``) with the mouse as the gaze source.

    Commands and messages go through pylink exactly as with a tracker (nothing is stored: there is
    no EDF), calibration and drift checks are skipped, and ``sample()`` reports the PsychoPy
    mouse position in degrees, always valid.

    Args:
        show_cursor: show the mouse pointer in the window (helps whoever pilots the session).
    """

    name = "dummy"

    def __init__(self, *, show_cursor: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.show_cursor = show_cursor
        self.mouse = None

    def _connect(self):
        return self._pylink.EyeLink(None)

    def open(self, *, win, session_dir: Path, edf_name: str) -> None:
        super().open(win=win, session_dir=session_dir, edf_name=edf_name)
        from psychopy import event

        self.mouse = event.Mouse(win=win, visible=self.show_cursor)

    def _open_graphics(self) -> None:
        # No calibration in dummy mode, so no calibration graphics.
        pass

    def calibrate(self) -> CalibrationResult | None:
        """Nothing to calibrate in dummy mode: None."""
        self._require_open()
        self.message("FOVEA_CALIBRATION skipped (dummy mode)")
        return None

    def drift_check(self, *, x_deg: float, y_deg: float) -> DriftCheckResult:
        """Accepted without an offset (pylink's dummy mode cannot run a drift check)."""
        self._require_open()
        return DriftCheckResult(
            time_s=float(self.clock()),
            target_deg=(float(x_deg), float(y_deg)),
            offset_deg=None,
            accepted=True,
            recalibrate=False,
            attempts=0,
        )

    def drift_correct(self, *, x_deg: float, y_deg: float) -> bool:
        """Always accepted (pylink's dummy mode cannot run a drift check)."""
        return self.drift_check(x_deg=x_deg, y_deg=y_deg).accepted

    def is_recording(self) -> bool:
        """Our own state: pylink's dummy ``isRecording()`` is always 0."""
        return self.el is not None and self.recording

    def start_recording(self) -> None:
        self._require_open().startRecording(1, 1, 1, 1)
        self.recording = True

    def stop_recording(self) -> None:
        self._require_open().stopRecording()
        self.recording = False

    def sample(self) -> GazeSample | None:
        """The mouse position in degrees, at the current clock time."""
        self._require_open()
        from psychopy.tools.monitorunittools import convertToPix

        pos = self.mouse.getPos()
        x_pix, y_pix = convertToPix(
            vertices=[0.0, 0.0], pos=pos, units=self.win.units, win=self.win
        )
        x_deg, y_deg = self.mapper.centred_px_to_deg(float(x_pix), float(y_pix))
        return GazeSample(time_s=self.clock(), x_deg=x_deg, y_deg=y_deg, valid=True)

    def close(self, *, dest_dir: Path, local_name: str | None = None) -> Path | None:
        """Close the dummy connection; there is no EDF: None."""
        if self.el is None:
            return None
        try:
            if self.recording:
                self.stop_recording()
            self.el.closeDataFile()
        finally:
            self.el.close()
            self.el = None
        return None
