"""When two protocol files are the same protocol, and how they differ when they are not.

A protocol file's bytes change when a comment, a blank line, the key order or the line endings
(CRLF after a copy through Windows) change, none of which changes a trial. Its *settings* are the
parsed TOML tables as written, compared as canonical JSON: a resume accepts a file with the
session's settings, and the analysis counts sessions with the same settings as one protocol.
Values are compared as written, not as validated (``1`` and ``1.0``, or a default given
explicitly, count as different), so that a difference is never hidden.
"""

from __future__ import annotations

import hashlib
import json


def settings_sha256(data: dict) -> str:
    """SHA-256 hex of ``data`` (a parsed protocol TOML) as canonical JSON: sorted keys, no
    whitespace; TOML dates and times as their ISO text."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def settings_differences(old: dict, new: dict, *, limit: int = 4) -> list[str]:
    """The first ``limit`` differences between two protocol dicts (validated or as written), as
    ``"trials.per_level: 40 -> 60"`` lines in field order; lists of tables by index
    (``conditions[1].levels``)."""
    found: list[str] = []
    _walk(old, new, "", found, limit)
    return found


_ABSENT = object()


def _walk(old, new, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            child = f"{path}.{key}" if path else str(key)
            _walk(old.get(key, _ABSENT), new.get(key, _ABSENT), child, found, limit)
        return
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and any(isinstance(v, dict) for v in old)
    ):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(a, b, f"{path}[{i}]", found, limit)
        return
    if old != new or type(old) is not type(new):
        found.append(f"{path}: {_shown(old)} -> {_shown(new)}")


def _shown(value) -> str:
    if value is _ABSENT:
        return "(not set)"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
