"""SR Research EyeLink through ``sr-research-pylink``, and its dummy mode with the mouse as gaze.

Follows SR Research's recommended PsychoPy sequence: connect, open the EDF on the Host PC, go
offline, configure (sample/event filters, sampling rate, eye, calibration type, screen geometry),
hand the calibration graphics to pylink (``openGraphicsEx`` with our PsychoPy display), then per
trial ``TRIALID`` / ``!V TRIAL_VAR`` / ``TRIAL_RESULT <code>`` messages, and at the end SR's
terminate sequence (each step on its own, so a lost link still saves what it can).

Calibrations and drift checks stop recording for the Host's procedure and restart it afterwards
(``study.trackers.eyelink_setup`` has the procedures and their acceptance limits). Samples go
through ``study.trackers.link_samples.SampleGate`` (not new / too old).

pylink is imported when a tracker is opened, not when this module is imported (it prints a banner
and loads native libraries); ``pylink_module`` replaces it (the emulator).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from generator.errors import FoveaError
from generator.geometry import DisplayGeometry
from study.trackers.base import (
    CalibrationResult,
    DriftCheckResult,
    GazeSample,
    TrackerLinkLost,
    trial_result_code,
)
from study.trackers.edf import validate_edf_name
from study.trackers.eyelink_close import TerminateMixin
from study.trackers.eyelink_config import (
    clock_offset_ms,
    read_recorded_eye,
    read_sampling_rate,
    send_configuration,
)
from study.trackers.eyelink_setup import AcceptanceLimits, run_drift_check, run_setup
from study.trackers.host_text import parse_validation_message
from study.trackers.link_samples import (
    SampleGate,
    gaze_from_link_sample,
    import_pylink,
)
from study.trackers.screen import WindowMapper, mapper_for_window

__all__ = [
    "DummyEyeLinkTracker",
    "EyeLinkTracker",
    "gaze_from_link_sample",
    "import_pylink",
    "parse_validation_message",
]

log = logging.getLogger(__name__)


def _sanitize_token(text: str) -> str:
    # Data Viewer splits TRIAL_VAR on whitespace: the variable name must be one token.
    return re.sub(r"\s+", "_", str(text).strip()) or "_"


def _format_value(value) -> str:
    # "." is Data Viewer's missing value (never NaN or None).
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "."
    if isinstance(value, float):
        return f"{value:.6g}"
    return " ".join(str(value).split()) or "."


class EyeLinkTracker(TerminateMixin):
    """An EyeLink connected over the link (``settings.host_ip``).

    Args:
        settings: the protocol's ``TrackerSettings`` (``sampling_rate_hz``, ``eye``,
            ``calibration_type``, ``host_ip``, ``validation_max_avg_error_deg``).
        clock: callable returning seconds; sample times are converted onto it.
        display: physical display geometry for px <-> deg; None derives it from the window's
            PsychoPy monitor.
        apply_drift_correction: apply the offset measured at each drift check (EyeLink 1000 Plus
            and later only *check* drift unless told to apply it); off by default, as in SR
            Research's templates: a failed check should lead to recalibration instead.
        beeps: play calibration beeps.
        limits: validation and drift-check acceptance; None reads them from ``settings``.
        refresh_hz: the display's refresh rate: a sample older than two frames is invalid.
        max_setup_attempts: setups per ``calibrate`` before giving up (result not accepted)
            when no operator is asked (``override_validation`` None).
        max_drift_attempts: ``doDriftCorrect`` calls per drift check.
        recalibrate_after_failed_drift_check: ``drift_correct`` runs ``calibrate`` itself when
            the check asks for it (``drift_check`` only flags it).
        pylink_module: the ``pylink`` module to use (None: import the real one).

    Attributes the runner reads: ``calibrations`` and ``drift_checks`` (every result, in order),
    ``recorded_eye``, ``sampling_rate_hz`` (None when the Host refused the requested rate and
    reported none), ``refused_commands``, ``close_steps``, ``local_edf``; ``override_validation``
    (set by the session when someone is at the keyboard: ``study.operator.validation_question``
    asks the operator to accept a validation outside the limits or to calibrate again).
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
        limits: AcceptanceLimits | None = None,
        refresh_hz: float = 60.0,
        max_setup_attempts: int = 3,
        max_drift_attempts: int = 3,
        recalibrate_after_failed_drift_check: bool = True,
        pylink_module=None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.display = display
        self.apply_drift_correction = apply_drift_correction
        self.beeps = beeps
        self.limits = limits or AcceptanceLimits.from_settings(settings)
        self.max_setup_attempts = int(max_setup_attempts)
        self.max_drift_attempts = int(max_drift_attempts)
        self.recalibrate_after_failed_drift_check = recalibrate_after_failed_drift_check
        self.gate = SampleGate(max_age_s=2.0 / float(refresh_hz))
        self.messages: list[tuple[float, str]] = []  # (clock time, text), also for dummy mode
        self.commands: list[str] = []  # every Host PC command sent, for the session log
        self.refused_commands: list[str] = []
        self.calibrations: list[CalibrationResult] = []
        self.drift_checks: list[DriftCheckResult] = []
        self.override_validation: Callable[[CalibrationResult], bool] | None = None
        self.recorded_eye: str | None = None
        self.sampling_rate_hz: float | None = None
        self.el = None  # pylink.EyeLink once open
        self.graphics = None  # PsychoPyCalibrationDisplay once open
        self.mapper: WindowMapper | None = None
        self.edf_name: str | None = None
        self.win = None
        self.recording = False
        self._pylink = pylink_module

    # ------------------------------------------------------------------ connection
    def _connect(self):
        try:
            return self._pylink.EyeLink(self.settings.host_ip)
        except RuntimeError as error:
            raise FoveaError(
                f"cannot connect to the EyeLink at host_ip {self.settings.host_ip!r} ({error}); "
                "check the cable and the Host PC (the same command then continues this "
                "session), or pilot with --tracker dummy under another --session or --data (this "
                "session keeps the EyeLink)"
            ) from error

    def _require_open(self):
        if self.el is None:
            raise RuntimeError(f"{self.name} tracker used before open()")
        return self.el

    def _require_link(self):
        """The open connection; TrackerLinkLost when the link is down."""
        el = self._require_open()
        if not self.is_connected():
            self.recording = False
            raise TrackerLinkLost(
                f"the link to the EyeLink is lost ({self.edf_name}.EDF stays on the Host PC); "
                f"reconnect the cable or restart the Host PC, then resume the session"
            )
        return el

    def _command(self, text: str) -> int:
        """Send a Host PC command; the reply code (0: done). A command the Host refuses (non-zero
        reply over a live link) is logged and kept in ``refused_commands``; a link error does
        not raise (the procedures that need the link raise TrackerLinkLost)."""
        el = self._require_open()
        try:
            code = el.sendCommand(text)
        except RuntimeError as error:
            log.error("command %r not sent: %s", text, error)
            code = -1
        self.commands.append(text)
        code = code if isinstance(code, int) else 0
        if code != 0 and self.is_connected():
            self.refused_commands.append(text)
            log.warning("the EyeLink refused %r (code %s)", text, code)
        return code

    def open(self, *, win, session_dir: Path, edf_name: str) -> None:
        """Connect, open ``<edf_name>.EDF`` on the Host PC and configure the tracker for ``win``.

        ``edf_name`` (1-8 characters) should be unique per run (``edf.host_edf_name``): the Host
        PC replaces a file of the same name.
        """
        validate_edf_name(edf_name)
        if self._pylink is None:
            self._pylink = import_pylink()
        self.win = win
        self.mapper = mapper_for_window(win, self.display)
        self.edf_name = edf_name
        self.session_dir = Path(session_dir)
        self.el = self._connect()
        try:
            try:
                code = self.el.openDataFile(f"{edf_name}.EDF")
            except RuntimeError as error:
                code = error
            if code != 0:
                raise FoveaError(
                    f"the EyeLink could not open EDF file {edf_name}.EDF on the Host PC ({code})"
                )
            self._command("add_file_preamble_text 'fovea-kit gaze-contingent 2AFC'")
            self.el.setOfflineMode()
            self._configure()
            self._open_graphics()
            self.read_recorded_eye()
        except BaseException:
            self.el.close()
            self.el = None
            raise

    def is_connected(self) -> bool:
        """The link is alive (``isConnected()`` non-zero; dummy mode counts as connected)."""
        if self.el is None:
            return False
        try:
            return self.el.isConnected() != 0
        except RuntimeError:
            return False

    def is_recording(self) -> bool:
        """Recording now: started by us and ``isRecording()`` is TRIAL_OK (0) on the Host."""
        if self.el is None or not self.recording:
            return False
        try:
            return self.el.isRecording() == self._pylink.TRIAL_OK
        except RuntimeError:
            return False

    def read_recorded_eye(self) -> str | None:
        """The eye the tracker records now (``eyeAvailable()``): ``left``, ``right``,
        ``binocular`` or None; a change and a mismatch with the protocol go into the EDF."""
        return read_recorded_eye(self)

    def _configure(self) -> None:
        send_configuration(self)

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
        """The Host PC's setup menu (C: calibrate, V: validate, Esc: return) until a validation
        meets ``limits`` or the operator accepts one (``override_validation``; without it, at
        most ``max_setup_attempts`` times); recording, when on, restarts afterwards.

        Returns:
            The last setup's result (``accepted`` False when none was accepted); its errors are
            None when no validation ran.
        """
        self._require_link()
        was_recording = self.recording
        if was_recording:
            self.stop_recording()
        try:
            with self._frame_intervals_paused():
                result = run_setup(self)
        except RuntimeError as error:
            self._require_link()  # the link went during setup: TrackerLinkLost
            raise FoveaError(f"the EyeLink setup failed ({error})") from None
        if was_recording:
            self.start_recording()
        return result

    def drift_check(self, *, x_deg: float, y_deg: float) -> DriftCheckResult:
        """A drift check at a target (degrees); recording, when on, restarts afterwards.

        Returns:
            The result: offset (None without one), ``accepted``, ``recalibrate``.
        """
        self._require_link()
        was_recording = self.recording
        if was_recording:
            self.stop_recording()
        x_px, y_px = self.mapper.deg_to_window_px(x_deg, y_deg)
        graphics = getattr(self, "graphics", None)
        if graphics is not None:  # no setup key help flashed before the drift-check target
            graphics.help_on_setup = False
        try:
            with self._frame_intervals_paused():
                result = run_drift_check(
                    self, x_px=int(round(x_px)), y_px=int(round(y_px)), target_deg=(x_deg, y_deg)
                )
        finally:
            if graphics is not None:
                graphics.help_on_setup = True
        if was_recording:
            self.start_recording()  # TrackerLinkLost when the link went during the check
        return result

    @contextmanager
    def _frame_intervals_paused(self) -> Iterator[None]:
        """No frame intervals recorded while the Host PC's setup or a drift check draws into the
        window (a trial's drift check or recalibration would count its seconds as dropped
        frames); PsychoPy skips the first interval after recording is turned back on."""
        win = getattr(self, "win", None)
        paused = bool(getattr(win, "recordFrameIntervals", False))
        if paused:
            win.recordFrameIntervals = False
        try:
            yield
        finally:
            if paused:
                win.recordFrameIntervals = True

    def drift_correct(self, *, x_deg: float, y_deg: float) -> bool:
        """``drift_check``, then (``recalibrate_after_failed_drift_check``) a recalibration when
        it asks for one.

        Returns:
            True when the check was accepted, or the recalibration after it was.
        """
        result = self.drift_check(x_deg=x_deg, y_deg=y_deg)
        if result.accepted:
            return True
        if not self.recalibrate_after_failed_drift_check:
            return False
        calibration = self.calibrate()
        return bool(calibration is not None and calibration.accepted)

    # ------------------------------------------------------------------ recording
    def start_recording(self) -> None:
        """Start recording (samples and events to the EDF and the link).

        Raises:
            TrackerLinkLost: the link is down.
            FoveaError: the tracker refused to record.
        """
        el = self._require_link()
        try:
            el.setOfflineMode()
            error = el.startRecording(1, 1, 1, 1)  # samples + events to file and link
        except RuntimeError as link_error:
            self._require_link()  # a lost link says so; another error is reported as such
            raise FoveaError(f"the EyeLink could not start recording ({link_error})") from None
        if error:
            raise FoveaError(f"the EyeLink refused to start recording (error {error})")
        # The link needs a moment before samples arrive (SR Research's recommendation).
        self._pylink.pumpDelay(100)
        self.recording = True
        self.read_recorded_eye()
        read_sampling_rate(self)
        offset = clock_offset_ms(self)
        if offset is not None:  # ties the session clock (physio, beh.tsv) to the EDF's time
            self.message(f"FOVEA_CLOCK_OFFSET_MS {offset:.3f}")

    def stop_recording(self) -> None:
        """Stop recording; a link error is logged, not raised (the runner checks
        ``is_connected``), so what follows (closing the EDF) still runs."""
        el = self._require_open()
        self._pylink.pumpDelay(100)  # catch the last samples in the EDF
        try:
            el.stopRecording()
        except RuntimeError as error:
            log.info("stopRecording failed: %s", error)  # the runner's link check reports it
        self.recording = False

    # ------------------------------------------------------------------ messages
    def message(self, text: str) -> None:
        """Write a time-stamped message into the EDF (and keep it in ``self.messages``)."""
        el = self._require_open()
        try:
            el.sendMessage(text)
        except RuntimeError as error:  # a lost link: the message is kept here, not in the EDF
            log.error("message %r not sent: %s", text, error)
        self.messages.append((self.clock(), text))

    def trial_start(self, *, trial: int, variables: dict) -> None:
        """``TRIALID <trial>`` and one ``!V TRIAL_VAR <name> <value>`` per variable."""
        self._command(f"record_status_message 'trial {int(trial)}'")
        self.message(f"TRIALID {int(trial)}")
        for key, value in variables.items():
            self.message(f"!V TRIAL_VAR {_sanitize_token(key)} {_format_value(value)}")

    def trial_end(self, *, result: str, variables: dict | None = None) -> None:
        """``!V TRIAL_VAR`` for each of ``variables`` (response, correct, rt, ...: known only at
        the end), ``!V TRIAL_VAR outcome <result>`` and ``TRIAL_RESULT <code>`` (SR's integer
        code: 0 completed, 1 re-queued, -1 error); Data Viewer reads the variables only before
        ``TRIAL_RESULT``."""
        for key, value in (variables or {}).items():
            self.message(f"!V TRIAL_VAR {_sanitize_token(key)} {_format_value(value)}")
        self.message(f"!V TRIAL_VAR outcome {_format_value(result)}")
        self.message(f"TRIAL_RESULT {trial_result_code(result)}")

    # ------------------------------------------------------------------ gaze
    def sample(self) -> GazeSample | None:
        """The newest link sample of the recorded eye, in degrees; None before any arrives;
        ``is_new=False`` when it is the same as last time, invalid when older than two
        frames. A link error reading it gives an invalid, not-new sample (during a trial the
        presenter's link check then raises TrackerLinkLost when the link is down)."""
        el = self._require_open()
        try:
            raw = el.getNewestSample()
            tracker_now_ms = el.trackerTime()
        except RuntimeError as error:
            log.debug("no link sample this frame: %s", error)
            return GazeSample(
                time_s=self.clock(), x_deg=math.nan, y_deg=math.nan, valid=False, is_new=False
            )
        eye = self.recorded_eye if self.recorded_eye in ("left", "right") else self.settings.eye
        return self.gate.accept(
            raw, tracker_now_ms=tracker_now_ms, now_s=self.clock(), eye=eye, mapper=self.mapper
        )

    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        """Nothing to do: a real eye finds the target by itself."""


from study.trackers.eyelink_dummy import DummyEyeLinkTracker  # noqa: E402 - subclass of the above
