"""Values as strict JSON: the one conversion the session's files and the analysis's files share."""

from __future__ import annotations

import math
from pathlib import Path


def strict_json(value):
    """``value`` with numpy scalars and arrays as Python values, paths as text and every
    non-finite float as None (strict parsers and the BIDS validator reject bare ``NaN``).

    Dicts (keys as text), lists and tuples (as lists) are converted item by item; any other type
    raises ``TypeError``.
    """
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    return strict_json(_plain(value))


def _plain(value):
    """A numpy scalar or array, or a path, as a plain Python value."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
