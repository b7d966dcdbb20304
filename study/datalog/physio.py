"""Gaze samples as a BIDS physio ``.tsv.gz`` (BEP020 eye-tracking columns), crash-safe.

The file is a sequence of complete gzip members, one per block (a trial, or a stretch between
trials), each written with one ``write`` + ``fsync``. Standard readers (``gzip``, ``zcat``,
``pandas``) read a multi-member file as one stream. A kill can only leave a torn last member;
``PhysioLog.reopen`` cuts it off, drops blocks of trials that ``beh.tsv`` does not hold (their
trial will be run again) and appends new members after the rest.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

from study.datalog.atomic import fsync_dir

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
        """Reopen for appending after repairing the file (see module docstring)."""
        if not path.exists():
            return cls.create(path)
        keep = _complete_prefix(path.read_bytes(), last_trial=last_trial)
        if keep != path.stat().st_size:
            with open(path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
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
        self.flush_block()
        self._file.close()


def _complete_prefix(data: bytes, *, last_trial: int) -> int:
    """Byte length of the leading complete members that hold no trial after ``last_trial``."""
    offset = 0
    keep = 0
    while offset < len(data):
        decoder = zlib.decompressobj(wbits=31)  # 31: gzip wrapper, one member
        try:
            text = decoder.decompress(data[offset:])
        except zlib.error:
            break
        if not decoder.eof:
            break  # torn member at the end
        end = len(data) - len(decoder.unused_data)
        trials = set()
        for line in text.decode("utf-8", errors="replace").splitlines():
            cells = line.split("\t")
            if len(cells) == len(PHYSIO_COLUMNS) and cells[4] != "n/a":
                trials.add(int(cells[4]))
        if trials and max(trials) > last_trial:
            break
        keep = offset = end
    return keep


def physio_sidecar(
    *,
    display: dict,
    refresh_hz: float,
    tracker: str,
    eye: str,
    start_time_s: float,
    calibration_type: str,
    calibrations: list[dict],
) -> dict:
    """BEP020 sidecar for the physio file."""
    return {
        "SamplingFrequency": refresh_hz,
        "SamplingFrequencyNote": "one sample per displayed frame: the tracker's newest sample "
        "at each flip (the EDF holds the full-rate record for EyeLink sessions)",
        "StartTime": start_time_s,
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
            "Description": "0 during blinks or track loss",
            "Levels": {"0": "invalid", "1": "valid"},
        },
        "trial": {"Description": "beh.tsv trial number (n/a between trials)"},
        "phase": {
            "Description": "trial phase: fixation, wait, interval1, isi, interval2, response, feedback, other"
        },
        "Manufacturer": "SR Research"
        if tracker in ("eyelink", "dummy")
        else "fovea-kit simulation",
        "ManufacturersModelName": {
            "eyelink": "EyeLink",
            "dummy": "EyeLink dummy mode (mouse)",
            "sim": "simulated participant",
        }.get(tracker, tracker),
        "RecordedEye": eye,
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
