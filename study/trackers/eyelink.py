"""SR Research EyeLink through ``sr-research-pylink``, and its dummy mode with the mouse as gaze.

Follows SR Research's recommended PsychoPy sequence: connect, open the EDF on the Host PC, go
offline, configure (sample/event filters, sampling rate, eye, calibration type, screen geometry),
hand the calibration graphics to pylink (``openGraphicsEx`` with our PsychoPy display), then per
trial ``TRIALID`` / ``!V TRIAL_VAR`` / ``TRIAL_RESULT`` messages, and at the end close the EDF and
transfer it to the display PC.

pylink is imported when a tracker is built, not when this module is imported (it prints a banner
and loads native libraries).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
from pathlib import Path

from generator.errors import FoveaError
from generator.geometry import DisplayGeometry
from study.trackers.base import CalibrationResult, GazeSample
from study.trackers.edf import validate_edf_name
from study.trackers.screen import WindowMapper, mapper_for_window

log = logging.getLogger(__name__)

# pylink.MISSING_DATA: the gaze value the tracker sends while the eye is lost (blink, track loss).
_MISSING = -32768.0
# "... ERROR 0.35 avg. 0.72 max ..." in the Host PC's validation summary.
_VALIDATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*avg\.?\s*([0-9]+(?:\.[0-9]+)?)\s*max", re.I)


def import_pylink():
    """Import pylink without its import-time banner on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pylink
    return pylink


def parse_validation_message(text: str) -> tuple[float, float] | None:
    """``(avg_error_deg, max_error_deg)`` from the Host PC's validation message, or None."""
    match = _VALIDATION_RE.search(text or "")
    if match is None:
        return None
    return float(match.group(1)), float(match.group(2))


def _sanitize_token(text: str) -> str:
    # Data Viewer splits TRIAL_VAR on whitespace: the variable name must be one token.
    return re.sub(r"\s+", "_", str(text).strip()) or "_"


def _format_value(value) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return " ".join(str(value).split()) or "."


def gaze_from_link_sample(raw, *, eye: str, mapper: WindowMapper, time_s: float) -> GazeSample:
    """Convert a ``pylink.Sample`` (gaze in window pixels) into a GazeSample in degrees.

    Args:
        raw: the link sample (``EyeLink.getNewestSample()``).
        eye: ``"left"`` or ``"right"``: the recorded eye, used when the sample has both.
        mapper: window pixels <-> degrees.
        time_s: the sample's time on the session clock.

    Returns:
        ``valid=False`` (NaN position) while the eye is lost: gaze at pylink's MISSING_DATA,
        pupil area 0 (blink) or a position far off the screen.
    """
    if eye == "right" and raw.isRightSample():
        data = raw.getRightEye()
    elif eye == "left" and raw.isLeftSample():
        data = raw.getLeftEye()
    else:
        data = raw.getRightEye() if raw.isRightSample() else raw.getLeftEye()
    invalid = GazeSample(time_s=time_s, x_deg=math.nan, y_deg=math.nan, valid=False)
    if data is None:
        return invalid
    x_px, y_px = data.getGaze()
    pupil = data.getPupilSize()
    limit_x, limit_y = 10 * mapper.window_width_px, 10 * mapper.window_height_px
    if (
        x_px is None
        or y_px is None
        or not (math.isfinite(x_px) and math.isfinite(y_px))
        or x_px <= _MISSING + 1
        or y_px <= _MISSING + 1
        or abs(x_px) > limit_x
        or abs(y_px) > limit_y
        or (pupil is not None and pupil <= 0)
    ):
        return invalid
    x_deg, y_deg = mapper.window_px_to_deg(x_px, y_px)
    return GazeSample(time_s=time_s, x_deg=x_deg, y_deg=y_deg, valid=True)


class EyeLinkTracker:
    """An EyeLink connected over the link (``settings.host_ip``).

    Args:
        settings: the protocol's ``TrackerSettings`` (``sampling_rate_hz``, ``eye``,
            ``calibration_type``, ``host_ip``).
        clock: callable returning seconds; sample times are converted onto it.
        display: physical display geometry for px <-> deg; None derives it from the window's
            PsychoPy monitor.
        apply_drift_correction: apply the offset measured at each drift check (EyeLink 1000 Plus
            and later only *check* drift unless told to apply it); off by default, as in SR
            Research's templates: a failed check should lead to recalibration instead.
        beeps: play calibration beeps.
    """

    name = "eyelink"

    def __init__(
        self,
        *,
        settings,
        clock,
        display: DisplayGeometry | None = None,
        apply_drift_correction: bool = False,
        beeps: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.display = display
        self.apply_drift_correction = apply_drift_correction
        self.beeps = beeps
        self.messages: list[tuple[float, str]] = []  # (clock time, text), also for dummy mode
        self.commands: list[str] = []  # every Host PC command sent, for the session log
        self.el = None  # pylink.EyeLink once open
        self.graphics = None  # PsychoPyCalibrationDisplay once open
        self.mapper: WindowMapper | None = None
        self.edf_name: str | None = None
        self.win = None
        self.recording = False
        self._pylink = None

    # ------------------------------------------------------------------ connection
    def _connect(self):
        try:
            return self._pylink.EyeLink(self.settings.host_ip)
        except RuntimeError as error:
            raise FoveaError(
                f"cannot connect to the EyeLink at host_ip {self.settings.host_ip!r} ({error}); "
                f"check the cable and the Host PC, or pilot with --tracker dummy"
            ) from error

    def _require_open(self):
        if self.el is None:
            raise RuntimeError(f"{self.name} tracker used before open()")
        return self.el

    def _command(self, text: str) -> None:
        self._require_open().sendCommand(text)
        self.commands.append(text)

    def open(self, *, win, session_dir: Path, edf_name: str) -> None:
        """Connect, open ``<edf_name>.EDF`` on the Host PC and configure the tracker for ``win``."""
        validate_edf_name(edf_name)
        self._pylink = import_pylink()
        self.win = win
        self.mapper = mapper_for_window(win, self.display)
        self.edf_name = edf_name
        self.session_dir = Path(session_dir)
        self.el = self._connect()
        try:
            if self.el.openDataFile(f"{edf_name}.EDF") != 0:
                raise FoveaError(
                    f"the EyeLink could not open EDF file {edf_name}.EDF on the Host PC"
                )
            self._command("add_file_preamble_text 'fovea-kit gaze-contingent 2AFC'")
            self.el.setOfflineMode()
            self._configure()
            self._open_graphics()
        except BaseException:
            self.el.close()
            self.el = None
            raise

    def _tracker_major_version(self) -> int:
        try:
            return int(self.el.getTrackerVersionString().split()[-1].split(".")[0])
        except (AttributeError, IndexError, ValueError, RuntimeError):
            return 0

    def _configure(self) -> None:
        s = self.settings
        version = self._tracker_major_version()
        htarget = ",HTARGET" if version > 3 else ""  # head target sticker (EyeLink 1000 Plus on)
        self._command("file_event_filter = LEFT,RIGHT,FIXATION,SACCADE,BLINK,MESSAGE,BUTTON,INPUT")
        self._command(
            f"file_sample_data = LEFT,RIGHT,GAZE,HREF,RAW,AREA,GAZERES,BUTTON,STATUS,INPUT{htarget}"
        )
        self._command(
            "link_event_filter = LEFT,RIGHT,FIXATION,SACCADE,BLINK,BUTTON,FIXUPDATE,INPUT"
        )
        self._command(f"link_sample_data = LEFT,RIGHT,GAZE,GAZERES,AREA,STATUS,INPUT{htarget}")
        self._command(f"sample_rate = {int(s.sampling_rate_hz)}")
        self._command("binocular_enabled = NO")
        self._command(f"active_eye = {s.eye.upper()}")
        self._command(f"calibration_type = {s.calibration_type}")
        self._command("button_function 5 'accept_target_fixation'")
        width_px, height_px = self.mapper.window_width_px, self.mapper.window_height_px
        self._command(f"screen_pixel_coords = 0 0 {width_px - 1} {height_px - 1}")
        # DISPLAY_COORDS in the EDF lets Data Viewer draw the trials in the right space.
        self.message(f"DISPLAY_COORDS 0 0 {width_px - 1} {height_px - 1}")
        d = self.mapper.display
        half_w_mm = width_px * d.cm_per_px[0] * 5.0  # cm -> mm, half width
        half_h_mm = height_px * d.cm_per_px[1] * 5.0
        self._command(
            f"screen_phys_coords = {-half_w_mm:.1f} {half_h_mm:.1f} {half_w_mm:.1f} {-half_h_mm:.1f}"
        )
        self._command(f"screen_distance = {d.distance_cm * 10:.0f}")
        self.message(f"FOVEA_TRACKER eye {s.eye.upper()} rate {int(s.sampling_rate_hz)}")

    def _open_graphics(self) -> None:
        from study.graphics.calibration import PsychoPyCalibrationDisplay

        ppd = self.mapper.display.pixels_per_degree
        self.graphics = PsychoPyCalibrationDisplay(
            win=self.win,
            target_outer_px=max(12.0, 0.7 * ppd),  # ~0.7 deg disc, ~0.15 deg hole
            target_inner_px=max(4.0, 0.15 * ppd),
            beeps=self.beeps,
        )
        self._pylink.closeGraphics()  # a display left over from an unclosed tracker
        self._pylink.openGraphicsEx(self.graphics)

    # ------------------------------------------------------------------ calibration
    def calibrate(self) -> CalibrationResult | None:
        """Enter the Host PC's setup menu (C: calibrate, V: validate, Esc: return).

        Returns:
            The last validation's average and maximum error, NaN when the Host PC reported
            none (calibration accepted without validation).
        """
        el = self._require_open()
        if self.recording:
            self.stop_recording()
        el.setOfflineMode()
        el.doTrackerSetup()
        parsed = parse_validation_message(el.getCalibrationMessage())
        avg, worst = parsed if parsed is not None else (math.nan, math.nan)
        result = CalibrationResult(avg_error_deg=avg, max_error_deg=worst, time_s=self.clock())
        self.message(f"FOVEA_CALIBRATION avg {avg:.2f} max {worst:.2f}")
        return result

    def drift_correct(self, *, x_deg: float, y_deg: float) -> bool:
        """Drift check at a target (degrees); Esc there opens setup for a recalibration.

        Returns:
            True when the participant's fixation on the target was accepted.
        """
        el = self._require_open()
        if self.recording:
            self.stop_recording()
        x_px, y_px = self.mapper.deg_to_window_px(x_deg, y_deg)
        for _ in range(5):  # each Esc means recalibrate, then check again
            error = el.doDriftCorrect(int(round(x_px)), int(round(y_px)), 1, 1)
            if error != self._pylink.ESC_KEY:
                break
            el.doTrackerSetup()
        accepted = error == 0
        if accepted and self.apply_drift_correction:
            el.applyDriftCorrect()
        return accepted

    # ------------------------------------------------------------------ recording
    def start_recording(self) -> None:
        el = self._require_open()
        el.setOfflineMode()
        error = el.startRecording(1, 1, 1, 1)  # samples + events to file and link
        if error:
            raise FoveaError(f"the EyeLink refused to start recording (error {error})")
        # The link needs a moment before samples arrive (SR Research's recommendation).
        self._pylink.pumpDelay(100)
        self.recording = True

    def stop_recording(self) -> None:
        el = self._require_open()
        self._pylink.pumpDelay(100)  # catch the last samples in the EDF
        el.stopRecording()
        self.recording = False

    # ------------------------------------------------------------------ messages
    def message(self, text: str) -> None:
        """Write a time-stamped message into the EDF (and keep it in ``self.messages``)."""
        el = self._require_open()
        el.sendMessage(text)
        self.messages.append((self.clock(), text))

    def trial_start(self, *, trial: int, variables: dict) -> None:
        """``TRIALID <trial>`` and one ``!V TRIAL_VAR <name> <value>`` per variable."""
        self._command(f"record_status_message 'trial {int(trial)}'")
        self.message(f"TRIALID {int(trial)}")
        for key, value in variables.items():
            self.message(f"!V TRIAL_VAR {_sanitize_token(key)} {_format_value(value)}")

    def trial_end(self, *, result: str) -> None:
        """``TRIAL_RESULT <result>``."""
        self.message(f"TRIAL_RESULT {_format_value(result)}")

    # ------------------------------------------------------------------ gaze
    def _sample_age_s(self, sample) -> float:
        # Tracker clock (ms) -> age of the sample, to place it on our clock.
        age_ms = self.el.trackerTime() - sample.getTime()
        return max(0.0, age_ms / 1000.0) if math.isfinite(age_ms) else 0.0

    def sample(self) -> GazeSample | None:
        """The newest link sample of the recorded eye, in degrees; None before any arrives."""
        el = self._require_open()
        raw = el.getNewestSample()
        if raw is None:
            return None
        time_s = self.clock() - self._sample_age_s(raw)
        return gaze_from_link_sample(raw, eye=self.settings.eye, mapper=self.mapper, time_s=time_s)

    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        """Nothing to do: a real eye finds the target by itself."""

    # ------------------------------------------------------------------ closing
    def close(self, *, dest_dir: Path) -> Path | None:
        """Stop recording, close the EDF and copy it to ``dest_dir/<edf_name>.EDF``.

        Returns:
            The local EDF path, or None when the transfer failed (logged; the file stays on the
            Host PC under the same name).
        """
        if self.el is None:
            return None
        el, pylink = self.el, self._pylink
        try:
            if self.recording:
                self.stop_recording()
            el.setOfflineMode()
            self._command("clear_screen 0")
            pylink.msecDelay(500)
            el.closeDataFile()
            return self._receive_edf(Path(dest_dir))
        finally:
            el.close()
            pylink.closeGraphics()
            self.el = None

    def _receive_edf(self, dest_dir: Path) -> Path | None:
        dest_dir.mkdir(parents=True, exist_ok=True)
        local = dest_dir / f"{self.edf_name}.EDF"
        try:
            size = self.el.receiveDataFile(f"{self.edf_name}.EDF", str(local))
        except RuntimeError as error:
            log.error("EDF transfer of %s.EDF failed: %s", self.edf_name, error)
            return None
        if not local.exists() or (isinstance(size, int) and size < 0):
            log.error(
                "EDF transfer of %s.EDF failed (code %s); it stays on the Host PC",
                self.edf_name,
                size,
            )
            return None
        return local


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

    def drift_correct(self, *, x_deg: float, y_deg: float) -> bool:
        """Always accepted (pylink's dummy mode cannot run a drift check)."""
        self._require_open()
        return True

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

    def close(self, *, dest_dir: Path) -> Path | None:
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
