"""Gaze samples as a BIDS physio ``.tsv.gz`` (BEP020 eye-tracking columns), crash-safe.

The file is a sequence of complete gzip members, one per block (a trial, or a stretch between
trials), each written with one ``write`` + ``fsync``. Standard readers (``gzip``, ``zcat``,
``pandas``) read a multi-member file as one stream. A kill can only leave a torn last member;
``PhysioLog.reopen`` cuts it off, drops the samples from the first trial that ``beh.tsv`` does
not hold (it will be run again) and appends new members after the rest. A member damaged in
place (bit rot: a complete member follows it) costs only its own samples, and the file as found
is kept first. ``close`` rewrites the file as a single member (atomically): the BIDS validator
reads no further than the first.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from study.datalog.atomic import fsync_dir, open_atomic, write_atomic

_GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1, ID2 and CM = deflate: the start of every gzip member
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
        self.damaged_copy: Path | None = None  # set by ``reopen`` when it skipped damaged data

    @classmethod
    def create(cls, path: Path) -> PhysioLog:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb"):
            pass
        fsync_dir(path.parent)
        return cls(path)

    @classmethod
    def reopen(cls, path: Path, *, last_trial: int, backup_dir: Path | None = None) -> PhysioLog:
        """Reopen for appending after repairing the file (see module docstring): the samples up
        to the first one of a trial after ``last_trial`` are kept, as one gzip member.

        A damaged member *before* the end (bit rot, a bad sector; a kill only tears the last) is
        skipped and the members after it are kept; the file as found is first copied to
        ``backup_dir`` (default: beside it) and ``damaged_copy`` names the copy."""
        if not path.exists():
            return cls.create(path)
        data = path.read_bytes()
        copy = None

        def keep_a_copy_if_damaged(damaged: bool) -> None:
            nonlocal copy
            if damaged:
                folder = backup_dir if backup_dir is not None else path.parent
                folder.mkdir(parents=True, exist_ok=True)
                copy = folder / f"{path.name}.damaged-{len(data)}-bytes"
                write_atomic(copy, data)

        _rewrite(path, data, last_trial=last_trial, before_replacing=keep_a_copy_if_damaged)
        log = cls(path)
        log.damaged_copy = copy
        return log

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
            _rewrite(self.path, data, last_trial=None)


def _rewrite(path: Path, data: bytes, *, last_trial: int | None, before_replacing=None) -> None:
    """Replace ``path`` atomically by the sample lines of ``data``'s complete members up to (not
    including) the first line of a trial after ``last_trial`` (None: all), as one gzip member
    (no lines: an empty file). ``before_replacing(damaged)`` runs before the new file replaces
    the old, with whether a member damaged in place was skipped.

    Member by member, into a stream: a long session's samples are never all in memory at once
    (a 20-minute run at 1000 Hz is 1.2 million lines)."""
    with open_atomic(path) as out:
        # mtime=0, no file name: identical samples give identical bytes (reproducible files).
        packed = gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=6, mtime=0)
        written = False
        damaged = False
        for text in _members(data):
            if text is None:
                damaged = True
                continue
            kept, stop = _sample_lines(text, last_trial=last_trial)
            if kept:
                packed.write(kept)
                written = True
            if stop:
                break
        packed.close()  # writes the gzip trailer; ``out`` stays open
        if not written:
            out.seek(0)
            out.truncate()
        if before_replacing is not None:
            before_replacing(damaged)


def _sample_lines(text: bytes, *, last_trial: int | None) -> tuple[bytes, bool]:
    """The complete sample lines of one member's ``text`` (each ending in a newline) before the
    first line of a trial after ``last_trial``, and whether such a line ended them."""
    kept = []
    for line in text.decode("utf-8", errors="replace").splitlines():
        cells = line.split("\t")
        if len(cells) != len(PHYSIO_COLUMNS):
            continue
        if last_trial is not None and cells[4] != "n/a" and int(cells[4]) > last_trial:
            return "".join(kept).encode("utf-8"), True
        kept.append(line + "\n")
    return "".join(kept).encode("utf-8"), False


def _members(data: bytes) -> Iterator[bytes | None]:
    """The decompressed complete gzip members of ``data`` in order; None for a member damaged in
    place (one that does not decode, followed by one that does: decoding goes on from there). A
    member that does not decode with nothing complete after it is a torn last member (a kill
    mid-write) and ends the file."""
    offset = 0
    while offset < len(data):
        text, end = _member(data, offset)
        if text is None:
            offset = _next_member(data, offset + 1)
            if offset is None:
                return  # torn member at the end
            yield None
            continue
        offset = end
        yield text


_CHUNK = 1 << 16


def _member(data: bytes, offset: int) -> tuple[bytes | None, int]:
    """The decompressed gzip member at ``offset`` and the offset after it (None: it does not
    decode to its end). Fed in chunks through a memoryview: no copy of the rest of the file per
    member."""
    view = memoryview(data)
    decoder = zlib.decompressobj(wbits=31)  # 31: gzip wrapper, one member
    parts = []
    at = offset
    try:
        while not decoder.eof and at < len(data):
            chunk = view[at : at + _CHUNK]
            parts.append(decoder.decompress(chunk))
            at += len(chunk)
    except zlib.error:
        return None, offset
    if not decoder.eof:
        return None, offset
    return b"".join(parts), at - len(decoder.unused_data)


def _next_member(data: bytes, start: int) -> int | None:
    """The offset of the first complete gzip member at or after ``start`` (None: none)."""
    at = data.find(_GZIP_MAGIC, start)
    while at != -1:
        if _member(data, at)[0] is not None:
            return at
        at = data.find(_GZIP_MAGIC, at + 1)
    return None


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
