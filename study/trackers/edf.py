"""EDF file names: the EyeLink Host PC stores files under DOS-style names."""

from __future__ import annotations

import re

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
