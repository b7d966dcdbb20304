"""A strict stand-in for ``pylink``: the ``EyeLink`` class with the real names and semantics,
driven by a simulated participant, so the EyeLink tracker's own code runs without a tracker.

What it holds to (from SR Research's pylink API and the behaviour of pylink's dummy mode):

- ``EyeLink(None)`` is dummy mode: ``isConnected() == -1``, no samples, ``doDriftCorrect`` raises
  ``RuntimeError("Invalid tracker mode")``, ``trackerTime()`` is meaningless (4294967295.0).
- ``openDataFile`` enforces the 8-character rule (letters, digits, '_') and raises RuntimeError
  otherwise; ``receiveDataFile`` copies a closed Host file to a local path and returns its size
  in bytes (0 when cancelled, a negative code for an error: ``FaultScript.receive_codes``); a
  file still open cannot be received. Like pylink's (its docstring: "Transfers data to an
  unused name, by default, unless pylink.REPLACE_FILE ..."), it never replaces a local file:
  the copy then goes to ``<stem>_2<suffix>``, ``_3``, ... (pylink's own scheme may differ).
- ``eyeAvailable()`` is -1 until a recording block has started, then that block's eye.
- ``startRecording(1, 1, 1, 1)`` writes every sample of the participant's gaze on the Host's
  sampling grid into the data file until ``stopRecording`` / ``setOfflineMode``; messages go
  into the file whenever it is open; ``isRecording()`` returns 0 (TRIAL_OK) while recording,
  ABORT_EXPT after a link loss, TRIAL_ERROR otherwise.
- ``getNewestSample()`` returns None before the first sample and afterwards the newest one,
  which is the SAME object again when no new sample has arrived (recording stopped, link lost);
  it and ``trackerTime()`` raise RuntimeError only when ``FaultScript.failing_calls`` says so.
- ``doTrackerSetup`` writes ``!CAL CALIBRATION`` / ``!CAL VALIDATION`` lines,
  ``doDriftCorrect`` a ``DRIFTCORRECT`` line (``study.trackers.host_text``); both set
  ``getCalibrationMessage``/``getCalibrationResult`` (after a drift check the message is SR's
  ``drift_correction: <deg> <dx> <dy>``, not the EDF's line). ``doDriftCorrect(..., allow_setup=1)``
  with the operator's Esc runs the setup menu itself and returns 27.
- Faults come from a ``FaultScript`` (``study.trackers.emulated_host``).

The data file is an ASC-like text file (``study.trackers.edf_text``).
"""

from __future__ import annotations

import math
import shutil
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

from study.trackers.base import GazeSample
from study.trackers.edf_text import EdfTextWriter
from study.trackers.emulated_host import (
    MISSING_DATA,
    EmulatedEyeData,
    EmulatedHost,
    EmulatedSample,
    FaultScript,
    check_host_file_name,
)
from study.trackers.emulated_setup import ESC_KEY, NO_REPLY, EmulatedSetupMixin
from study.trackers.screen import WindowMapper

TRIAL_OK, REPEAT_TRIAL, SKIP_TRIAL, ABORT_EXPT, TRIAL_ERROR = 0, 1, 2, 3, -1
ENTER_KEY, TERMINATE_KEY = 13, 0x7FFF
COMMAND_REFUSED = -1  # sendCommand's code for a command the Host PC rejects
DUMMY_TRACKER_TIME_MS = 4294967295.0


class EmulatedEyeLink(EmulatedSetupMixin):
    """``pylink.EyeLink`` against an emulated Host PC (pylink's method names, hence camelCase).

    Args:
        host_ip: None for dummy mode, else any address (the emulator does not use it).
        host: the Host PC (its disk and settings); required unless dummy.
        clock: session clock in seconds; tracker time is ``epoch_ms + 1000 * clock()``.
        gaze: the participant: ``gaze(time_s) -> GazeSample`` in degrees (called with
            increasing times).
        mapper: degrees <-> the display's window pixels (the tracker's screen coordinates);
            None for a link that only transfers files (``startRecording`` then refuses).
        faults: what goes wrong.
        seed: seeds the default validation errors and drift-check offsets.
        epoch_ms: tracker time at clock 0 (the tracker's clock is not the session's).
    """

    def __init__(
        self,
        host_ip: str | None,
        *,
        host: EmulatedHost | None = None,
        clock: Callable[[], float],
        gaze: Callable[[float], GazeSample] | None = None,
        mapper: WindowMapper | None = None,
        faults: FaultScript | None = None,
        seed: int = 0,
        epoch_ms: float = 2_000_000.0,
    ) -> None:
        self.dummy = host_ip is None
        if not self.dummy and (host is None or gaze is None):
            raise ValueError("an emulated tracker needs host and gaze")
        self.host, self.clock, self.gaze, self.mapper = host, clock, gaze, mapper
        self.faults = faults or FaultScript()
        if not self.dummy and self.faults.host_unreachable:
            raise RuntimeError(f"Could not connect to tracker at {host_ip}")
        self._rng = np.random.default_rng([int(seed), 0xE1])
        self.epoch_ms = float(epoch_ms)
        self.commands: list[tuple[str, int]] = []  # (command, result code)
        self._connected = True
        self._link_lost = False
        self._writer: EdfTextWriter | None = None
        self._recording = False
        self._next_index = 0  # next grid sample to record
        self._newest: EmulatedSample | None = None
        self._link_eye: str | None = None  # the eye of the last recording block's link data
        self._setups = 0
        self._drift_checks = 0
        self._validations = list(self.faults.validations)
        self._drift_offsets = list(self.faults.drift_offsets_deg)
        self._drift_escapes = int(self.faults.drift_escapes)
        self._failing = dict(self.faults.failing_calls)
        self._receive_codes = list(self.faults.receive_codes)
        self._cal_message = ""
        self._cal_result = NO_REPLY
        self._last_command_result = 0
        self._stopped_after_message = False  # FaultScript.recording_stops_after_message, once

    # ------------------------------------------------------------------ time and faults
    def _now_s(self) -> float:
        return float(self.clock())

    def trackerTime(self) -> float:  # noqa: N802 - pylink's names from here on
        if self.dummy:
            return DUMMY_TRACKER_TIME_MS
        self._scripted_failure("trackerTime")
        return self.epoch_ms + 1000.0 * self._now_s()

    getCurrentTime = trackerTime  # noqa: N815

    def _host_ms(self) -> float:
        """The Host's time now for its own file lines (never a scripted failure)."""
        return self.epoch_ms + 1000.0 * self._now_s()

    def _rate(self) -> float:
        return self.host.sampling_rate_hz

    def _index_time_ms(self, index: int) -> float:
        return self.epoch_ms + 1000.0 * index / self._rate()

    def fail_next(self, name: str, times: int = 1) -> None:
        """Script ``times`` more failures of the call ``name`` from now on (as
        ``FaultScript.failing_calls`` does from the connection's start)."""
        self._failing[name] = self._failing.get(name, 0) + int(times)

    def _scripted_failure(self, name: str) -> None:
        """A ``FaultScript.failing_calls`` failure of ``name`` (RuntimeError), if one is due."""
        if self._failing.get(name, 0) > 0:
            self._failing[name] -= 1
            raise RuntimeError(f"{name}: link error (scripted)")

    def _call(self, name: str) -> None:
        """Before each link call: time-scheduled link loss, then the scripted failures."""
        if self.dummy:
            return
        lost_at = self.faults.link_lost_at_s
        if not self._link_lost and lost_at is not None and self._now_s() >= lost_at:
            self._lose_link(lost_at)
        if self._link_lost or not self._connected:
            raise RuntimeError(f"{name}: link to the tracker lost")
        self._scripted_failure(name)
        self._record_until(self._now_s())

    def _lose_link(self, at_s: float) -> None:
        """The link drops: the Host ends the block at ``at_s`` and closes its data file."""
        self._record_until(at_s)
        if self._recording and self._writer is not None:
            self._writer.end_block(self.epoch_ms + 1000.0 * at_s)
        self._recording = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._link_lost = True

    # ------------------------------------------------------------------ connection
    def isConnected(self) -> int:  # noqa: N802
        """1 when connected, -1 in dummy mode, 0 once closed or lost."""
        if self.dummy:
            return -1 if self._connected else 0
        if not self._link_lost and self._connected:
            try:
                self._call("isConnected")
            except RuntimeError:
                pass
        return 1 if self._connected and not self._link_lost else 0

    def getDummyMode(self) -> bool:  # noqa: N802
        return self.dummy

    def close(self) -> int:
        if self._writer is not None:  # the Host closes a file left open when the link ends
            self._record_until(self._now_s())
            if self._recording:
                self._writer.end_block(self._host_ms())
            self._writer.close()
            self._writer = None
        self._recording = False
        self._connected = False
        return 0

    def getTrackerVersion(self) -> int:  # noqa: N802
        return 0 if self.dummy else 3

    def getTrackerVersionString(self) -> str:  # noqa: N802
        return "" if self.dummy else "EYELINK CL 5.50"

    def eyeAvailable(self) -> int:  # noqa: N802
        """The eye of the link data: 0 left, 1 right, 2 binocular (dummy mode reports 2); -1
        before any recording block has sent data (SR's ``eyelink_eye_available``: valid only
        once a block has started or a sample was read). Between blocks it is the last block's
        eye, not a switch made in the setup menu since."""
        if self.dummy:
            return 2
        return -1 if self._link_eye is None else {"left": 0, "right": 1}[self._link_eye]

    def getSampleRate(self) -> float:  # noqa: N802
        return 250 if self.dummy else self._rate()  # pylink 2.2's dummy mode answers 250

    # ------------------------------------------------------------------ commands and messages
    def sendCommand(self, text: str) -> int:  # noqa: N802
        """The Host's result code (0: done; non-zero: refused). pylink's docstring: "If there
        is any problem sending the command, a runtime exception is raised" (a lost link)."""
        if self.dummy:
            return 0
        self._call("sendCommand")
        code = COMMAND_REFUSED if text.strip().startswith(self.faults.refused_commands) else 0
        if code == 0:
            self._apply_command(text)
        self.commands.append((text, code))
        self._last_command_result = code
        return code

    def _apply_command(self, text: str) -> None:
        name, _, value = (part.strip() for part in text.partition("="))
        if name == "sample_rate":
            self.host.sampling_rate_hz = float(value)
        elif name == "active_eye":
            self.host.eye = value.lower()

    def commandResult(self) -> int:  # noqa: N802
        return self._last_command_result

    def sendMessage(self, text: str) -> int:  # noqa: N802
        if self.dummy:
            return 0
        try:
            self._call("sendMessage")
        except RuntimeError:
            return TRIAL_ERROR
        if self._writer is not None:
            self._writer.message(self._host_ms(), text)
        trial = self.faults.link_lost_at_trial
        if trial is not None and text.strip() == f"TRIALID {trial}":
            self._lose_link(self._now_s())
        stop = self.faults.recording_stops_at_trial
        if stop is not None and text.strip() == f"TRIALID {stop}" and self._recording:
            self._stop_block()
        prefix = self.faults.recording_stops_after_message
        if prefix is not None and not self._stopped_after_message and self._recording:
            if text.strip().startswith(prefix):
                self._stop_block()
                self._stopped_after_message = True
        return 0

    # ------------------------------------------------------------------ data file
    def openDataFile(self, name: str) -> int:  # noqa: N802
        if self.dummy:
            check_host_file_name(name)
            return 0
        self._call("openDataFile")
        path = self.host.path(name)
        if self._writer is not None:
            self._writer.close()
        self._writer = EdfTextWriter(
            path, header=[f"EMULATED EDF {path.name} (fovea pylink emulator; ASC-like text)"]
        )
        return 0

    def closeDataFile(self) -> int:  # noqa: N802
        if self.dummy:
            return 0
        self._call("closeDataFile")
        if self._recording:
            self._stop_block()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return 0

    def receiveDataFile(self, src: str, dest: str) -> int:  # noqa: N802
        if self.dummy:
            return 0
        self._call("receiveDataFile")
        source = self.host.path(src)
        if self._writer is not None and self._writer.path == source:
            raise RuntimeError(f"receiveDataFile: {source.name} is still open on the Host PC")
        if not source.exists():
            raise RuntimeError(f"receiveDataFile: no file {source.name} on the Host PC")
        target = Path(dest) if dest else Path(source.name)
        if target.is_dir():
            target = target / source.name
        target = _unused_local_name(target)
        if self._receive_codes:  # scripted: cancelled (0) or an error (< 0) half-way
            data = source.read_bytes()
            target.write_bytes(data[: len(data) // 2])
            return int(self._receive_codes.pop(0))
        shutil.copyfile(source, target)
        return target.stat().st_size

    # ------------------------------------------------------------------ recording
    def setOfflineMode(self) -> None:  # noqa: N802
        if self.dummy:
            return
        self._call("setOfflineMode")
        if self._recording:
            self._stop_block()

    def startRecording(self, file_samples, file_events, link_samples, link_events) -> int:  # noqa: N802
        if self.dummy:
            return 0
        self._call("startRecording")
        if self.mapper is None:
            raise RuntimeError("startRecording: this link was opened only to transfer files")
        if self._recording:
            self._stop_block()
        eye = self.host.eye
        # The first sample comes after the command (never one a previous block already has).
        self._next_index = math.floor(self._now_s() * self._rate() + 1e-9) + 1
        if self._writer is not None:
            rate = int(self._rate())
            self._writer.message(self._host_ms(), f"!MODE RECORD CR {rate} 2 1 {eye[0].upper()}")
            first_ms = self._index_time_ms(self._next_index)
            self._writer.start_block(first_ms, eye=eye.upper(), rate_hz=self._rate())
        self._recording = True
        self._link_eye = eye  # startRecording returns once the block's link data arrives
        return 0

    def stopRecording(self) -> None:  # noqa: N802
        if self.dummy:
            return
        self._call("stopRecording")
        if self._recording:
            self._stop_block()

    def _stop_block(self) -> None:
        self._record_until(self._now_s())
        if self._writer is not None:
            self._writer.end_block(self._host_ms())
        self._recording = False

    def isRecording(self) -> int:  # noqa: N802
        if self.dummy:
            return TRIAL_OK
        try:
            self._call("isRecording")
        except RuntimeError:
            return ABORT_EXPT
        return TRIAL_OK if self._recording else TRIAL_ERROR

    def _record_until(self, until_s: float) -> None:
        """Take every grid sample up to ``until_s`` into the file and the link."""
        if not self._recording:
            return
        rate, eye = self._rate(), self.host.eye
        last = math.floor(until_s * rate + 1e-9)
        for index in range(self._next_index, last + 1):
            t_s = index / rate
            gaze = self.gaze(t_s)
            gaze_px = self.mapper.deg_to_window_px(gaze.x_deg, gaze.y_deg) if gaze.valid else None
            time_ms = self._index_time_ms(index)
            if self._writer is not None:
                self._writer.sample(time_ms, gaze_px, 1000.0)
            self._newest = EmulatedSample(time_ms, eye, EmulatedEyeData(gaze_px, 1000.0))
        self._next_index = max(self._next_index, last + 1)

    def getNewestSample(self):  # noqa: N802
        """The newest link sample; the same one again when nothing new arrived; None before any.
        A scripted failure (``failing_calls``) raises RuntimeError; a lost link does not."""
        if not self.dummy and not self._link_lost:
            self._scripted_failure("getNewestSample")
            try:
                self._call("getNewestSample")
            except RuntimeError:
                pass
        return self._newest


def _unused_local_name(path: Path) -> Path:
    """``path``, or the first free ``<stem>_2<suffix>``, ``_3``, ...: pylink's receiveDataFile
    writes to an unused name unless told to replace (``pylink.REPLACE_FILE``)."""
    index = 1
    candidate = path
    while candidate.exists():
        index += 1
        candidate = path.with_name(f"{path.stem}_{index}{path.suffix}")
    return candidate


def make_pylink_module(connect: Callable[[str | None], EmulatedEyeLink], *, clock=None):
    """A ``pylink``-like module whose ``EyeLink(address)`` is ``connect(address)``.

    ``pumpDelay``/``msecDelay`` advance ``clock`` when it can be advanced (a simulated clock)
    and return at once otherwise; the graphics hooks do nothing (no calibration display).
    """
    module = types.ModuleType("pylink_emulated")
    state: dict = {"tracker": None}

    def eyelink(address=None):
        state["tracker"] = connect(address)
        return state["tracker"]

    def delay(ms: float) -> None:
        if clock is not None and hasattr(clock, "advance"):
            clock.advance(float(ms) / 1000.0)

    module.EyeLink = eyelink
    module.getEYELINK = lambda: state["tracker"]
    module.pumpDelay = delay
    module.msecDelay = delay
    module.openGraphicsEx = lambda display: None
    module.closeGraphics = lambda: None
    module.MISSING_DATA = MISSING_DATA
    for name, value in dict(
        TRIAL_OK=TRIAL_OK,
        REPEAT_TRIAL=REPEAT_TRIAL,
        SKIP_TRIAL=SKIP_TRIAL,
        ABORT_EXPT=ABORT_EXPT,
        TRIAL_ERROR=TRIAL_ERROR,
        ESC_KEY=ESC_KEY,
        ENTER_KEY=ENTER_KEY,
        TERMINATE_KEY=TERMINATE_KEY,
        NO_REPLY=NO_REPLY,
    ).items():
        setattr(module, name, value)
    return module
