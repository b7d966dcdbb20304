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


def session_summary(beh_tsv: Path, beh_json: Path, eyetrack_dir: Path | None = None) -> list[str]:
    """Console lines summarising the session of ``beh_tsv`` (empty when it has no trials);
    ``eyetrack_dir``: the session's ``sourcedata/.../eyetrack`` folder (an EyeLink session's
    EDF copies are listed from it)."""
    rows = read_rows(beh_tsv) if beh_tsv.exists() else []
    if not rows:
        return []
    main = [r for r in rows if r.get("block") != "practice"]
    answered = [r for r in main if r["correct"] not in MISSING_TOKENS]
    # An aborted trial runs again unless it was its last attempt (given up: the track goes on
    # with a new stimulus).
    given_up = sum(r.get("given_up") == "1" for r in main)
    again = Counter(
        "aborted" if r["abort_reason"] in MISSING_TOKENS else r["abort_reason"]
        for r in main
        if r["correct"] in MISSING_TOKENS and r.get("given_up") != "1"
    )
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
    if eyetrack_dir is not None:
        lines.extend("  " + line for line in edf_lines(beh_json, eyetrack_dir))
    return lines


def edf_lines(beh_json: Path, eyetrack_dir: Path) -> list[str]:
    """An EyeLink session's eye-tracking files, as they are on disk: each run's local copy with
    its size, and the Host PC files not copied yet (``--resume`` fetches them)."""
    from study.session_tracker import EDF_KINDS, runs_missing_edf

    try:
        sidecar = json.loads(beh_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(sidecar, dict) or sidecar.get("tracker") not in EDF_KINDS:
        return []
    copied = []
    for run in sidecar.get("runs") or []:
        local = eyetrack_dir / str(run.get("edf_file") or "")
        if run.get("edf_file"):
            size = f"{local.stat().st_size / 1000:.0f} kB" if local.is_file() else "MISSING"
            copied.append(f"{local.name} ({size})")
    lines = [f"eye-tracking files in {eyetrack_dir}: " + (", ".join(copied) or "none")]
    on_host = [f"{r['edf_name']}.EDF (run {r.get('run', '?')})" for r in runs_missing_edf(sidecar)]
    if on_host:
        lines.append(
            "not copied, still only on the Host PC: "
            + ", ".join(on_host)
            + "; do not delete them there: --resume fetches them"
        )
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
    """The last calibration's validation errors; a validation outside the limits is counted
    apart from the calibrations (each repeated setup records one), and a last one not accepted,
    or accepted by the operator outside the limits, is said."""
    try:
        records = json.loads(beh_json.read_text(encoding="utf-8")).get("calibration") or []
    except (OSError, ValueError, AttributeError):
        return ""
    measured = [c for c in records if isinstance(c, dict) and c.get("avg_error_deg") is not None]
    if not measured:
        return ""
    last = measured[-1]
    accepted = [c for c in measured if c.get("accepted", True)]
    refused = len(measured) - len(accepted)
    if not last.get("accepted", True):
        verdict = ", NOT accepted (outside the validation limits)"
    elif last.get("override"):
        verdict = ", accepted by the operator outside the validation limits"
    else:
        verdict = ""
    return (
        f"last calibration: mean error {float(last['avg_error_deg']):.2f} deg, max "
        f"{float(last.get('max_error_deg') or float('nan')):.2f} deg{verdict} ({len(accepted)} in "
        "the session"
        + (f"; {refused} validation(s) outside the limits not accepted" if refused else "")
        + ")"
    )
