"""The few lines an experimenter reads when a session ends, before the participant leaves: how
many trials were answered and why others ran again, accuracy and where each condition's levels
ended, how fast the images came and whether frames were dropped, the last calibration.

Read from the session's files (``beh.tsv`` and its sidecar), so a resumed session's summary covers
all its runs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from protocol.session_data import MISSING_TOKENS, read_rows


def session_summary(beh_tsv: Path, beh_json: Path) -> list[str]:
    """Console lines summarising the session of ``beh_tsv`` (empty when it has no trials)."""
    rows = read_rows(beh_tsv) if beh_tsv.exists() else []
    if not rows:
        return []
    main = [r for r in rows if r.get("block") != "practice"]
    answered = [r for r in main if r["correct"] not in MISSING_TOKENS]
    again = Counter(
        "aborted" if r["abort_reason"] in MISSING_TOKENS else r["abort_reason"]
        for r in main
        if r["correct"] in MISSING_TOKENS
    )
    given_up = sum(r.get("given_up") == "1" for r in main)
    lines = [
        f"summary: {len(answered)} main trials answered"
        + (f", {len(rows) - len(main)} practice" if len(rows) > len(main) else "")
        + (
            f"; {sum(again.values())} ran again ("
            + ", ".join(f"{reason} {n}" for reason, n in again.most_common())
            + ")"
            if again
            else ""
        )
        + (f"; {given_up} given up after too many attempts" if given_up else "")
    ]
    for condition in dict.fromkeys(r["condition"] for r in answered):
        of = [r for r in answered if r["condition"] == condition]
        correct = np.mean([r["correct"] == "1" for r in of])
        lines.append(
            f"  {condition}: {len(of)} answered, {100 * correct:.0f} % correct, last level "
            f"{float(of[-1]['level']):.3g}"
        )
    lines.append("  " + _generation(main))
    lines.append("  " + _frames(main))
    calibration = _calibration(beh_json)
    if calibration:
        lines.append("  " + calibration)
    return lines


def _numbers(rows: list[dict], column: str) -> np.ndarray:
    values = [r.get(column, "") for r in rows]
    return np.array([float(v) for v in values if v not in MISSING_TOKENS], dtype=float)


def _generation(rows: list[dict]) -> str:
    latency = _numbers(rows, "gen_latency_s")
    missed = int(_numbers(rows, "deadline_missed").sum())
    stand_ins = int(_numbers(rows, "cached_stimulus").sum())
    if not latency.size:
        return "generation: no foveated image timed"
    return (
        f"generation: median {np.median(latency):.2f} s, "
        f"95th percentile {np.percentile(latency, 95):.2f} s; deadline missed {missed} time(s)"
        + (f", stand-in shown {stand_ins} time(s)" if stand_ins else "")
    )


def _frames(rows: list[dict]) -> str:
    dropped = _numbers(rows, "dropped_frames")
    trials = int((dropped > 0).sum())
    return f"dropped frames: {int(dropped.sum())} in {trials} trial(s)"


def _calibration(beh_json: Path) -> str:
    try:
        records = json.loads(beh_json.read_text(encoding="utf-8")).get("calibration") or []
    except (OSError, ValueError, AttributeError):
        return ""
    accepted = [c for c in records if isinstance(c, dict) and c.get("avg_error_deg") is not None]
    if not accepted:
        return ""
    last = accepted[-1]
    return (
        f"last calibration: mean error {float(last['avg_error_deg']):.2f} deg, max "
        f"{float(last.get('max_error_deg') or float('nan')):.2f} deg ({len(accepted)} in the "
        "session)"
    )
