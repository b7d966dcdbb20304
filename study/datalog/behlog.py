"""``beh.tsv``: one row per presented trial, appended and fsynced before the next trial starts.

The format (columns, ``n/a``, cell text, the reader) is ``protocol.session_data``'s; this module
makes the writing durable. The header is written once at creation. A crash can leave at
most a partial last line (a torn write); reopening for ``--resume`` cuts it off, so every complete
row is a trial that ended, and none is duplicated; a file without a complete row is written anew;
a file with an older version's header (columns are only added at the end) is rewritten with this
version's, its rows unchanged and ``n/a`` in the new columns.
"""

from __future__ import annotations

import os
from pathlib import Path

from generator.atomic import write_atomic
from generator.errors import FoveaError
from protocol.session_data import COLUMNS, format_row, header_line, older_header, read_rows
from study.datalog.atomic import fsync_dir


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
                f.write(header_line())
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
        trial may have no file, an empty one, a torn header (a power cut while it was written)
        or an older version's header: with no complete row there is nothing to keep, and it
        starts afresh."""
        if not path.exists():
            return cls.create(path)
        data = path.read_bytes()
        if data[: data.rfind(b"\n") + 1].count(b"\n") < 2:  # at most a header: no trial
            path.unlink()
            return cls.create(path)
        rows = read_rows(path, repair=True)
        if older_header(path):  # a kit update since the session started: its rows, new columns
            text = header_line() + "".join(
                "\t".join(row[c] for c in COLUMNS) + "\n" for row in rows
            )
            write_atomic(path, text.encode("utf-8"))
        return cls(path, rows)

    def append(self, row: dict) -> None:
        """Write one trial and make it durable (flush + fsync) before returning."""
        cells = format_row(row)
        self._file.write("\t".join(cells) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows.append(dict(zip(COLUMNS, cells, strict=True)))

    def close(self) -> None:
        self._file.close()
