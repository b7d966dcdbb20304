"""Crash-safe file writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from protocol.json_values import strict_json


def fsync_dir(path: Path) -> None:
    """Make a directory entry change (create, rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) so that ``path`` holds either the old or the
    new content, never a torn file: a temporary file beside it, fsynced, renamed over ``path``,
    then the folder fsynced."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    binary = isinstance(content, bytes)
    with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


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
