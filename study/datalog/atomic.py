"""Crash-safe file writes of session data: ``generator.atomic``'s (re-exported here), strict JSON
and the clean-up of temporaries a killed write left."""

from __future__ import annotations

import json
from pathlib import Path

from generator.atomic import fsync_dir, open_atomic, write_atomic
from protocol.json_values import strict_json

__all__ = [
    "fsync_dir",
    "open_atomic",
    "remove_stale_temporaries",
    "write_atomic",
    "write_json_atomic",
]


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
