"""Crash-safe file writes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


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


def strict_json(value):
    """``value`` with numpy scalars and arrays as Python values, paths as text and every
    non-finite float as None."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    return strict_json(_jsonable(value))


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
