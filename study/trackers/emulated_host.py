"""The emulated EyeLink's Host PC side: its disk and settings, the faults a test can script, and
the link samples it sends.

``EmulatedHost`` outlives a connection (a resumed session reconnects to the same Host PC and finds
its earlier files); ``FaultScript`` says what goes wrong and when; ``EmulatedSample`` has the
methods of ``pylink.Sample`` that a gaze-contingent display uses.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from generator.errors import FoveaError

# A FaultScript as JSON (or the path of a JSON file) for `fovea simulate --tracker
# eyelink-emulated`, e.g. '{"link_lost_at_trial": 5, "drift_offsets_deg": [0.3, 1.6]}'.
FAULTS_ENV = "FOVEA_EYELINK_FAULTS"
# pylink.MISSING_DATA: the gaze value sent while the eye is lost.
MISSING_DATA = -32768.0
_HOST_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,8}$")


def check_host_file_name(file_name: str) -> str:
    """The upper-case stem of a Host PC file name (``NAME`` or ``NAME.EDF``).

    Raises:
        RuntimeError: more than 8 characters, or a character other than a letter, digit or '_'
            (pylink's ``openDataFile`` raises RuntimeError for these too).
    """
    stem, dot, extension = str(file_name).partition(".")
    if dot and extension.lower() != "edf":
        raise RuntimeError(f"Invalid file extension in {file_name!r}: only .EDF is allowed")
    if len(stem) > 8:
        raise RuntimeError("The EDF file name cannot exceed eight characters.")
    if not _HOST_NAME_RE.match(stem):
        raise RuntimeError(
            f"Invalid character in {file_name!r}. The EDF file name can only include ASCII "
            f"letters, numbers, and the underscore character."
        )
    return stem.upper()


@dataclass
class FaultScript:
    """What goes wrong during an emulated session (all optional; the default is a clean run).

    Attributes:
        host_unreachable: the Host PC does not answer: opening the link raises RuntimeError, as
            ``pylink.EyeLink(host_ip)`` does when the cable is out or the Host PC is off.
        link_lost_at_s: the link drops at this session-clock time (noticed at the first call at
            or after it); the Host PC ends the recording block and closes the data file then.
        link_lost_at_trial: the link drops right after the runner sends ``TRIALID <n>``.
        recording_stops_at_trial: the Host PC ends the recording right after ``TRIALID <n>``
            (the operator aborted it there); the link stays up.
        recording_stops_after_message: the Host PC ends the recording right after the first
            message that starts with this text (``RESPONSE``: during the trial's feedback;
            ``TRIAL_ABORTED``: during its abort screen); the link stays up.
        refused_commands: command prefixes the Host PC refuses (``sendCommand`` returns a
            non-zero code), e.g. ``("sample_rate",)``.
        switch_eye_at_setup: during this setup (1-based count of ``doTrackerSetup`` calls,
            counting those entered from a drift check), the operator switches the tracked eye.
        validations: per setup, the validation ``(avg_error_deg, max_error_deg)``, or None when
            the operator leaves setup without validating; later setups validate well.
        drift_offsets_deg: per drift check, the measured offset; later checks measure 0.1-0.45.
        drift_escapes: the first n drift checks end with the operator's Esc (with
            ``allow_setup=1`` pylink then runs the setup menu before returning 27).
        failing_calls: EyeLink method name -> how many of its next calls raise RuntimeError
            (a transient link error that does not drop the connection); ``getNewestSample``
            and ``trackerTime`` included.
        receive_codes: per ``receiveDataFile`` call of a connection, the code it returns
            instead of the file's size: 0 (the transfer was cancelled) or SR's negative error
            codes (-1 ... -6, e.g. -6: the link was terminated); half the file reaches the
            local path. Later calls transfer normally.
    """

    host_unreachable: bool = False
    link_lost_at_s: float | None = None
    link_lost_at_trial: int | None = None
    recording_stops_at_trial: int | None = None
    recording_stops_after_message: str | None = None
    refused_commands: tuple[str, ...] = ()
    switch_eye_at_setup: int | None = None
    validations: list[tuple[float, float] | None] = field(default_factory=list)
    drift_offsets_deg: list[float] = field(default_factory=list)
    drift_escapes: int = 0
    failing_calls: dict[str, int] = field(default_factory=dict)
    receive_codes: list[int] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> FaultScript:
        """A script from JSON (an object with the attribute names above).

        Raises:
            ValueError: for an unknown name or a value of the wrong shape.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError('not a JSON object (e.g. {"link_lost_at_trial": 5})')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"unknown fault(s) {unknown}; {hint}known: {sorted(known)}")
        if "refused_commands" in data:
            data["refused_commands"] = tuple(data["refused_commands"])
        if "validations" in data:
            data["validations"] = [None if v is None else tuple(v) for v in data["validations"]]
        return cls(**data)

    @classmethod
    def from_environment(cls) -> FaultScript:
        """The script in ``$FOVEA_EYELINK_FAULTS`` (JSON text or a JSON file), else a clean run.

        Raises:
            FoveaError: a file that cannot be read, text that is not JSON, an unknown fault name
                or a value of the wrong shape (one line naming the variable).
        """
        value = os.environ.get(FAULTS_ENV, "").strip()
        if not value:
            return cls()
        try:
            text = value if value.startswith("{") else Path(value).read_text("utf-8-sig")
        except OSError as error:
            raise FoveaError(
                f"${FAULTS_ENV}: cannot read {value} ({error.strerror or error}); give JSON text "
                "or the path of a JSON file"
            ) from error
        try:
            return cls.from_json(text)
        except ValueError as error:
            raise FoveaError(f"${FAULTS_ENV}: {error}") from error
        except TypeError as error:
            raise FoveaError(f"${FAULTS_ENV}: a value of the wrong shape ({error})") from error


class EmulatedHost:
    """The Host PC: a folder holding its data files, and the settings it keeps between links.

    Args:
        directory: where the Host PC's files live (created).
        sampling_rate_hz: the rate set on the Host before any ``sample_rate`` command.
        eye: the tracked eye before any ``active_eye`` command (``left``/``right``).
    """

    def __init__(self, directory: Path, *, sampling_rate_hz: float = 500.0, eye: str = "right"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sampling_rate_hz = float(sampling_rate_hz)
        self.eye = eye

    def path(self, file_name: str) -> Path:
        """The Host's path of ``file_name`` (``NAME`` or ``NAME.EDF``, case-insensitive).

        Raises:
            RuntimeError: for a name that breaks the 8-character rule (as pylink does).
        """
        return self.directory / f"{check_host_file_name(file_name)}.EDF"

    def files(self) -> list[str]:
        """The data files on the Host PC."""
        return sorted(p.name for p in self.directory.glob("*.EDF"))


class EmulatedEyeData:
    """One eye of a link sample (``pylink`` sample data): gaze in screen pixels, pupil area."""

    def __init__(self, gaze_px: tuple[float, float] | None, pupil: float) -> None:
        self._gaze = gaze_px if gaze_px is not None else (MISSING_DATA, MISSING_DATA)
        self._pupil = pupil if gaze_px is not None else 0.0

    def getGaze(self) -> tuple[float, float]:  # noqa: N802 - pylink's name
        return self._gaze

    def getPupilSize(self) -> float:  # noqa: N802
        return self._pupil


class EmulatedSample:
    """A monocular link sample with ``pylink.Sample``'s methods (time in tracker ms)."""

    def __init__(self, time_ms: float, eye: str, data: EmulatedEyeData) -> None:
        self._time_ms = float(time_ms)
        self._eye = eye
        self._data = data

    def getTime(self) -> float:  # noqa: N802
        return self._time_ms

    def isRightSample(self) -> bool:  # noqa: N802
        return self._eye == "right"

    def isLeftSample(self) -> bool:  # noqa: N802
        return self._eye == "left"

    def isBinocular(self) -> bool:  # noqa: N802
        return False

    def getRightEye(self) -> EmulatedEyeData | None:  # noqa: N802
        return self._data if self._eye == "right" else None

    def getLeftEye(self) -> EmulatedEyeData | None:  # noqa: N802
        return self._data if self._eye == "left" else None
