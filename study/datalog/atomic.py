"""Crash-safe file writes."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from protocol.json_values import strict_json


def fsync_dir(path: Path) -> None:
    """Make a directory entry change (create, rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into, so that ``path`` holds either the old
    or the new content, never a torn file: a temporary file beside it, fsynced and renamed over
    ``path`` when the block ends, then the folder fsynced; removed instead when the block raises."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the write's own error is the one to report
            tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) atomically (``open_atomic``)."""
    with open_atomic(path) as f:
        f.write(content if isinstance(content, bytes) else content.encode("utf-8"))


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON atomically (``write_atomic``).

    Strict JSON: a NaN or infinite number is written as null (strict parsers and the BIDS
    validator reject bare ``NaN``).
    """
    text = json.dumps(strict_json(data), indent=2, sort_keys=False, allow_nan=False)
    write_atomic(path, text + "\n")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files ``write_atomic`` leaves in ``folder`` when killed mid-write
    (``.<name>.tmp-<pid>``; never read); call it only while no other writer can be running
    (the session's lock held). Returns the removed paths."""
    removed = []
    for path in sorted(folder.glob(".*.tmp-*")) if folder.is_dir() else []:
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed
