"""The kit's version, as ``fovea --version``, the session's sidecar, a stimulus set's manifest and
the analysis's summary record it: the installed ``fovea-kit`` version and, when the code runs from
a git checkout, its commit (``0.1.0+g884abef``; ``.dirty`` when tracked files were changed since),
so that a session's data name the code that made them."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


@cache
def software_version() -> str:
    """``VERSION[+gCOMMIT[.dirty]]``; ``"unknown"`` for the version when the kit is not installed."""
    try:
        from importlib.metadata import version

        installed = version("fovea-kit")
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        installed = "unknown"
    commit = git_revision(CHECKOUT)
    return installed if commit is None else f"{installed}+{commit}"


def git_revision(checkout: Path) -> str | None:
    """``gCOMMIT`` (short hash), with ``.dirty`` when tracked files differ from it; None when
    ``checkout`` is not a git work tree or git is not installed."""
    if not (checkout / ".git").exists():
        return None
    try:
        commit = _git(checkout, "rev-parse", "--short=7", "HEAD")
        changed = _git(checkout, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"g{commit}" + (".dirty" if changed else "")


def _git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()
