"""Running the official BIDS validator (``bids-validator-deno``, the ``test`` extra) on a data
folder, for the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def validator_command() -> str:
    """The validator's executable (beside this Python, or on PATH); skips the test without it."""
    beside = Path(sys.executable).parent / "bids-validator-deno"
    if beside.exists():
        return str(beside)
    found = shutil.which("bids-validator-deno")
    if found is None:
        pytest.skip("bids-validator-deno is not installed (pip install -e '.[test]')")
    return found


def validate(data_dir: Path) -> dict:
    """The validator's JSON report of ``data_dir`` (``--format json``)."""
    result = subprocess.run(
        [validator_command(), str(data_dir), "--format", "json", "--no-color"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if not result.stdout.strip():
        raise AssertionError(
            f"the validator wrote no report (rc {result.returncode}): {result.stderr}"
        )
    return json.loads(result.stdout)


def errors(report: dict) -> list[str]:
    """The report's errors as ``CODE location: message`` lines."""
    return [
        f"{issue.get('code')} {issue.get('location')}: {issue.get('issueMessage', '')[:200]}"
        for issue in report["issues"]["issues"]
        if issue.get("severity") == "error"
    ]


def strict_json(path: Path):
    """Parse ``path`` refusing NaN and Infinity (what strict parsers do)."""

    def refuse(constant: str):
        raise ValueError(f"{path}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
