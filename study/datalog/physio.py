"""Gaze samples as a BIDS physio ``.tsv.gz`` (BEP020 eye-tracking columns), crash-safe.

The file is a sequence of complete gzip members, one per block (a trial, or a stretch between
trials), each written with one ``write`` + ``fsync``. Standard readers (``gzip``, ``zcat``,
``pandas``) read a multi-member file as one stream. A kill can only leave a torn last member;
``PhysioLog.reopen`` cuts it off, drops the samples from the first trial that ``beh.tsv`` does
not hold (it will be run again) and appends new members after the rest. ``close`` rewrites the
file as a single member (atomically): the BIDS validator reads no further than the first.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

from study.datalog.atomic import fsync_dir, write_atomic

PHYSIO_COLUMNS = ("timestamp", "x_coordinate", "y_coordinate", "valid", "trial", "phase")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


class PhysioLog:
    """Buffers gaze samples and writes them as durable gzip blocks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._buffer: list[str] = []
        self._file = open(path, "ab")
        self.n_samples = 0

    @classmethod
    def create(cls, path: Path) -> PhysioLog:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb"):
            pass
        fsync_dir(path.parent)
        return cls(path)

    @classmethod
    def reopen(cls, path: Path, *, last_trial: int) -> PhysioLog:
        """Reopen for appending after repairing the file (see module docstring): the samples up
        to the first one of a trial after ``last_trial`` are kept, as one gzip member."""
        if not path.exists():
            return cls.create(path)
        lines = _complete_lines(path.read_bytes(), last_trial=last_trial)
        _rewrite(path, lines)
        return cls(path)

    def add(
        self,
        *,
        time_s: float,
        x_deg: float,
        y_deg: float,
        valid: bool,
        trial: int | None,
        phase: str,
    ) -> None:
        """Buffer one sample (written at the next ``flush_block``)."""
        row = (time_s, x_deg if valid else None, y_deg if valid else None, valid, trial, phase)
        self._buffer.append("\t".join(_cell(v) for v in row))
        self.n_samples += 1

    def flush_block(self) -> None:
        """Write the buffered samples as one gzip member and fsync it."""
        if not self._buffer:
            return
        payload = ("\n".join(self._buffer) + "\n").encode("utf-8")
        self._buffer.clear()
        # mtime=0: identical data give identical bytes (reproducible files).
        self._file.write(gzip.compress(payload, compresslevel=6, mtime=0))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Write what is buffered and rewrite the file as one gzip member (the BIDS validator
        reads only the first member of a multi-member file)."""
        self.flush_block()
        self._file.close()
        data = self.path.read_bytes()
        if data:
            _rewrite(self.path, _complete_lines(data, last_trial=None))


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replace ``path`` atomically by ``lines`` as one gzip member (empty: an empty file)."""
    payload = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    write_atomic(path, gzip.compress(payload, compresslevel=6, mtime=0) if payload else b"")


def _complete_lines(data: bytes, *, last_trial: int | None) -> list[str]:
    """The sample lines of the complete members of ``data``, up to (not including) the first
    line of a trial after ``last_trial`` (None: all); a torn last member is dropped."""
    offset = 0
    kept: list[str] = []
    while offset < len(data):
        decoder = zlib.decompressobj(wbits=31)  # 31: gzip wrapper, one member
        try:
            text = decoder.decompress(data[offset:])
        except zlib.error:
            break
        if not decoder.eof:
            break  # torn member at the end
        offset = len(data) - len(decoder.unused_data)
        for line in text.decode("utf-8", errors="replace").splitlines():
            cells = line.split("\t")
            if len(cells) != len(PHYSIO_COLUMNS):
                continue
            if last_trial is not None and cells[4] != "n/a" and int(cells[4]) > last_trial:
                return kept
            kept.append(line)
    return kept


def physio_sidecar(
    *,
    task: str,
    display: dict,
    refresh_hz: float,
    tracker: str,
    recorded_eye: str,
    sampling_rate_hz: float,
    start_time_s: float,
    calibration_type: str,
    calibrations: list[dict],
) -> dict:
    """The BEP020 sidecar of the physio file (``PhysioType: eyetrack``).

    Args:
        task: the task label.
        display: the sidecar's display record (``width_cm``, ``height_cm``, ``width_px``, ...).
        refresh_hz: the display's refresh rate.
        tracker: the tracker kind (``eyelink``, ``eyelink-emulated``, ``dummy``, ``sim``).
        recorded_eye: the eye whose samples the file holds (``left`` or ``right``).
        sampling_rate_hz: the tracker's sampling rate (read back from it where it reports one).
        start_time_s: session-clock time of the recording's start.
        calibration_type: the calibration pattern.
        calibrations: each calibration's result (strict JSON).
    """
    errors = [c.get("avg_error_deg") for c in calibrations if c.get("avg_error_deg") is not None]
    worst = [c.get("max_error_deg") for c in calibrations if c.get("max_error_deg") is not None]
    data = {
        "PhysioType": "eyetrack",
        "TaskName": task,
        "SamplingFrequency": float(sampling_rate_hz),
        "SamplingFrequencyNote": "the tracker's rate; the file holds the newest sample at each "
        "displayed frame when it is new (irregular intervals: use the timestamp column; the EDF "
        "in sourcedata/ holds every sample for EyeLink sessions)",
        "StartTime": float(start_time_s),
        "Columns": list(PHYSIO_COLUMNS),
        "timestamp": {"Description": "sample time on the session clock", "Units": "s"},
        "x_coordinate": {
            "Description": "gaze x from the screen centre, positive right",
            "Units": "deg",
        },
        "y_coordinate": {
            "Description": "gaze y from the screen centre, positive up",
            "Units": "deg",
        },
        "valid": {
            "Description": "0 during blinks, track loss or a sample older than two frames",
            "Levels": {"0": "invalid", "1": "valid"},
        },
        "trial": {"Description": "beh.tsv trial number (n/a between trials)"},
        "phase": {
            "Description": "trial phase: iti, fixation, wait, interval1, isi, interval2, "
            "response, feedback, abort, or a screen (instructions, break, pause, goodbye)"
        },
        "Manufacturer": _MANUFACTURERS.get(tracker, "fovea-kit simulation"),
        "ManufacturersModelName": _MODELS.get(tracker, tracker),
        "RecordedEye": recorded_eye,
        "SampleCoordinateUnits": "deg",
        "SampleCoordinateSystem": "gaze-on-screen",
        "EnvironmentCoordinates": "center",
        "ScreenSize": [display["width_cm"] / 100.0, display["height_cm"] / 100.0],
        "ScreenResolution": [display["width_px"], display["height_px"]],
        "ScreenDistance": display["distance_cm"] / 100.0,
        "ScreenRefreshRate": refresh_hz,
        "CalibrationType": calibration_type,
        "CalibrationCount": len(calibrations),
        "Calibrations": calibrations,
    }
    if errors:
        data["AverageCalibrationError"] = errors[-1]
    if worst:
        data["MaximalCalibrationError"] = worst[-1]
    return data


_MANUFACTURERS = {
    "eyelink": "SR Research",
    "dummy": "SR Research",
    "eyelink-emulated": "fovea-kit pylink emulator",
}
_MODELS = {
    "eyelink": "EyeLink",
    "dummy": "EyeLink dummy mode (mouse)",
    "eyelink-emulated": "EyeLink (emulated, simulated participant)",
    "sim": "simulated participant",
}
