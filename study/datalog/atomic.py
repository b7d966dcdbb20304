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


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so that ``path`` holds either the old or the new content, never a torn file.

    Writes a temporary file beside it, fsyncs it, renames it over ``path`` and fsyncs the folder.
    Strict JSON: a NaN or infinite number is written as null (strict parsers and the BIDS
    validator reject bare ``NaN``).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    text = json.dumps(strict_json(data), indent=2, sort_keys=False, allow_nan=False)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
