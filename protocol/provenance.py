"""The kit's version, as the session's sidecar and the analysis's summary record it."""

from __future__ import annotations


def software_version() -> str:
    """The installed ``fovea-kit`` version, or ``"unknown"`` when run from a checkout that is not installed."""
    try:
        from importlib.metadata import version

        return version("fovea-kit")
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        return "unknown"
