"""EDF file names: the EyeLink Host PC stores files under DOS-style names."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from generator.errors import FoveaError

EDF_NAME_MAX_CHARS = 8
_EDF_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


def validate_edf_name(name: str) -> str:
    """Check an EDF file name (without extension) for the EyeLink Host PC.

    Args:
        name: 1-8 characters, letters, digits or underscore (e.g. ``"fv0001"``).

    Returns:
        The name unchanged.

    Raises:
        FoveaError: naming the value and the rule it breaks.
    """
    if not isinstance(name, str) or not name:
        raise FoveaError(f"EDF file name {name!r} is empty; give 1-8 letters, digits or '_'")
    if name.lower().endswith(".edf"):
        raise FoveaError(
            f"EDF file name {name!r} includes the extension; give the name without '.edf' "
            f"(1-8 letters, digits or '_')"
        )
    if len(name) > EDF_NAME_MAX_CHARS:
        raise FoveaError(
            f"EDF file name {name!r} has {len(name)} characters; the EyeLink Host PC allows at "
            f"most {EDF_NAME_MAX_CHARS} (letters, digits or '_')"
        )
    if not _EDF_NAME_RE.match(name):
        bad = sorted({c for c in name if not re.match(r"[A-Za-z0-9_]", c)})
        raise FoveaError(
            f"EDF file name {name!r} contains {''.join(bad)!r}; only letters, digits and '_' "
            f"are allowed (at most {EDF_NAME_MAX_CHARS} characters)"
        )
    return name


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_RUN_CHARS = 2  # base 36: runs 1-1295


def _base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


def host_edf_name(prefix: str, *, session_key: str, run: int) -> str:
    """A Host PC file name (no extension) unique per session and run, within the 8-character rule.

    ``prefix`` (the protocol's ``edf_prefix``, 1-4 characters) + a base-36 hash of
    ``session_key`` (e.g. ``"sub-01/ses-1"``) filling the middle + the run number in base 36 (two
    characters). The same session and run give the same name (a resumed run can find its file on
    the Host PC); every run of a session gets its own, so a resume never overwrites the EDF of an
    earlier run.

    Args:
        prefix: 1-4 letters, digits or '_'.
        session_key: identifies the session (participant and session labels).
        run: 1-based run number of the session (1-1295).

    Raises:
        FoveaError: for a bad prefix or a run out of range.
    """
    validate_edf_name(prefix)
    n_hash = EDF_NAME_MAX_CHARS - _RUN_CHARS - len(prefix)
    if n_hash < 2:
        raise FoveaError(f"EDF prefix {prefix!r} is longer than 4 characters")
    if not 1 <= int(run) < 36**_RUN_CHARS:
        raise FoveaError(f"run {run} is outside 1-{36**_RUN_CHARS - 1} for an EDF name")
    digest = zlib.crc32(session_key.encode("utf-8"))
    name = prefix + _base36(digest, n_hash) + _base36(int(run), _RUN_CHARS)
    return validate_edf_name(name)


def local_edf_name(*, participant: str, session: str, run: int, host_name: str) -> str:
    """The local copy's file name: participant, session, run and the Host PC name, e.g.
    ``sub-01_ses-1_run-2_fvab1c02.edf``."""
    return f"sub-{participant}_ses-{session}_run-{int(run)}_{validate_edf_name(host_name)}.edf"


def unused_path(path: Path) -> Path:
    """``path`` when nothing is there yet, else the first free ``<stem>_2<suffix>``, ``_3``, ...
    (an existing EDF is never overwritten)."""
    path = Path(path)
    if not path.exists():
        return path
    for index in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}_{index}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise FoveaError(f"no free file name next to {path}")
