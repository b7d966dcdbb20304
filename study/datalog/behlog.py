"""``beh.tsv``: one row per presented trial, appended and fsynced before the next trial starts.

The header is written once at creation; column order is fixed (``COLUMNS``). A crash can leave at
most a partial last line (a torn write); reopening for ``--resume`` cuts it off, so every complete
row is a trial that ended, and none is duplicated.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from generator.errors import FoveaError
from study.datalog.atomic import fsync_dir

PINNED_COLUMNS = (
    "participant",
    "session",
    "trial",
    "condition",
    "level",
    "interval_foveated",
    "response",
    "correct",
    "rt_s",
    "fixation_break",
    "gaze_x_deg",
    "gaze_y_deg",
    "seed",
    "tokens",
    "gen_latency_s",
    "onset_s",
)
OPTIONAL_COLUMNS = (
    "tokens_full",
    "deadline_missed",
    "cached_stimulus",
    "dropped_frames",
    "fixation_x_deg",
    "fixation_y_deg",
    "observer",
    "p_correct_model",
)
EXTRA_COLUMNS = (
    "track",  # the procedure track (condition, or condition/sN for staircases)
    "attempt",  # 1 + times this plan was re-queued before
    "abort_reason",  # fixation_break | deadline | no_response | generator_crash | n/a
    "level_variable",  # strength | radius_shrink | periphery_factor
    "conditioning",  # class label or prompt
    "token_ratio",
    "twin_latency_s",  # full-resolution twin's request-to-result latency (may be cached: 0)
    "gaze_to_flip_median_s",  # per-trial median gaze-sample-to-flip latency
    "speculation_kept",  # 1: the image started at the target was used; 0: regenerated at the gaze
    "scene",  # sha256 of the trial's scene (scene models; n/a for prompt and class models)
    "reference",  # generated (the full-resolution twin) | original (the scene's photograph)
)
COLUMNS = PINNED_COLUMNS + OPTIONAL_COLUMNS + EXTRA_COLUMNS
MISSING = "n/a"


def format_value(value) -> str:
    """TSV cell text: ``n/a`` for None/NaN, 1/0 for bools, shortest round-trip repr for floats."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return MISSING if math.isnan(value) else repr(value)
    text = str(value)
    # Tabs and newlines would break the table; prompts are the only free text.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


class BehaviourLog:
    """Appends trials to a session's ``beh.tsv``.

    Use ``BehaviourLog.create`` for a new session (refuses an existing file) or
    ``BehaviourLog.reopen`` to resume.
    """

    def __init__(self, path: Path, rows: list[dict[str, str]]) -> None:
        self.path = path
        self.rows = rows  # rows on disk as text (read at reopen + appended since)
        self._file = open(path, "a", encoding="utf-8", newline="")

    @classmethod
    def create(cls, path: Path) -> BehaviourLog:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "x": never overwrite an existing session's data.
            with open(path, "x", encoding="utf-8", newline="") as f:
                f.write("\t".join(COLUMNS) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except FileExistsError:
            raise FoveaError(
                f"{path} already exists; resume it with --resume or choose another --session"
            ) from None
        fsync_dir(path.parent)
        return cls(path, [])

    @classmethod
    def reopen(cls, path: Path) -> BehaviourLog:
        """Reopen to append (repairing a torn last line); a session killed before its first
        trial may have no file, or an empty one: it starts afresh."""
        if not path.exists():
            return cls.create(path)
        if path.stat().st_size == 0:
            path.unlink()
            return cls.create(path)
        rows = read_rows(path, repair=True)
        return cls(path, rows)

    def append(self, row: dict) -> None:
        """Write one trial and make it durable (flush + fsync) before returning."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown beh.tsv columns: {sorted(unknown)}")
        cells = [format_value(row.get(c)) for c in COLUMNS]
        self._file.write("\t".join(cells) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows.append(dict(zip(COLUMNS, cells, strict=True)))

    def close(self) -> None:
        self._file.close()


def read_rows(path: Path, *, repair: bool = False) -> list[dict[str, str]]:
    """Read ``beh.tsv`` rows as text.

    Args:
        path: the file.
        repair: cut off a torn last line (no newline) left by a crash.

    Raises:
        FoveaError: the header is not this version's column list.
    """
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if repair:
            with open(path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
        data = data[:cut]
    lines = data.decode("utf-8").split("\n")
    header = lines[0].split("\t") if lines and lines[0] else []
    if tuple(header) != COLUMNS:
        raise FoveaError(
            f"{path}: header does not match this version's beh.tsv columns; cannot resume it "
            "(start a new session)"
        )
    return [dict(zip(COLUMNS, line.split("\t"), strict=True)) for line in lines[1:] if line]
