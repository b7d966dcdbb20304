"""The per-session timing report (``..._timing.json`` beside ``beh.tsv``).

Frame intervals and dropped frames (PsychoPy's ``recordFrameIntervals``, during trials), the
gaze-sample-to-flip latency (flip time minus the newest sample's time, every frame), the
fixation-to-stimulus latency (fixation acquired to the first interval's onset, per trial), and the
generation latency distribution with deadline misses (from ``beh.tsv``, the whole session). A
resumed session adds one entry to ``runs``; generation figures always cover every logged trial.
On a virtual display (Xvfb) there is no vsync: frame figures there say nothing about a lab
display, and the report says so.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np

from protocol.session_data import MISSING_TOKENS
from study.datalog.atomic import write_json_atomic
from study.trial.frame_drops import DROP_COLUMNS


def distribution(values, *, scale: float = 1.0) -> dict:
    """count, mean, sd, median, p05, p95, max of ``values * scale`` (None entries skipped)."""
    v = np.asarray([x for x in values if x is not None], dtype=float) * scale
    if v.size == 0:
        return {"count": 0}
    return {
        "count": int(v.size),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "median": float(np.median(v)),
        "p05": float(np.percentile(v, 5)),
        "p95": float(np.percentile(v, 95)),
        "max": float(v.max()),
    }


def _float(text: str) -> float | None:
    return None if text in ("n/a", "") else float(text)


class TimingCollector:
    """Collects one run's frame timing and writes the session's report.

    Args:
        refresh_hz: nominal refresh rate (dropped frame: interval > 1.5 periods).
        simulated: simulated clock (frame figures are real flips on a virtual display).
        speed: simulated frame periods per flip.
    """

    def __init__(self, *, refresh_hz: float, simulated: bool, speed: int) -> None:
        self.refresh_hz = refresh_hz
        self.simulated = simulated
        self.speed = speed
        self.frame_intervals_s: list[float] = []
        self.fixation_to_onset_s: list[float] = []
        self.run_id = _dt.datetime.now(_dt.UTC).isoformat()

    def add_trial(self, outcome) -> None:
        """Add a ``study.trial.TrialOutcome``'s flip intervals and fixation-to-onset latency."""
        self.frame_intervals_s.extend(outcome.frame_intervals_s)
        if outcome.fixation_to_onset_s is not None:
            self.fixation_to_onset_s.append(outcome.fixation_to_onset_s)

    def run_summary(self, presenter) -> dict:
        period = 1.0 / self.refresh_hz
        intervals = np.asarray(self.frame_intervals_s, dtype=float)
        dropped = int(np.sum(intervals > 1.5 * period)) if intervals.size else 0
        return {
            "run_id": self.run_id,
            "simulated_clock": self.simulated,
            "frames_per_flip": self.speed,
            "frames": int(presenter.stats.frames),
            "frame_interval_ms": distribution(intervals, scale=1000.0),
            "dropped_frames": dropped,
            "dropped_fraction": dropped / intervals.size if intervals.size else None,
            "gaze_to_flip_ms": distribution(presenter.stats.gaze_to_flip_s, scale=1000.0),
            # Fixation acquired (gaze measured) to the first interval's first flip, session clock
            # (a simulated clock follows real time while the trial waits for its images).
            "fixation_to_onset_ms": distribution(self.fixation_to_onset_s, scale=1000.0),
        }

    def write(
        self, *, path: Path, rows: list[dict[str, str]], presenter, run_record: dict | None
    ) -> dict:
        """(Re)write the report: previous runs kept, this run's entry replaced (``presenter``
        None: a run that showed no frame adds none), generation statistics recomputed from
        ``rows``."""
        report: dict = {}
        if path.exists():
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                report = {}
        runs = [r for r in report.get("runs", []) if r.get("run_id") != self.run_id]
        if presenter is not None:
            summary = self.run_summary(presenter)
            if run_record is not None:
                summary["status"] = run_record.get("status")
            runs.append(summary)
        gen = [_float(r["gen_latency_s"]) for r in rows if r["deadline_missed"] == "0"]
        twin = [_float(r["twin_latency_s"]) for r in rows]
        g2f = [_float(r["gaze_to_flip_median_s"]) for r in rows]
        misses = sum(r["deadline_missed"] == "1" for r in rows)
        report = {
            "refresh_hz": self.refresh_hz,
            "virtual_display_note": (
                "simulated session on a virtual display: frame intervals are real flips without "
                "vsync and do not predict a lab display's timing"
                if self.simulated
                else None
            ),
            "trials": len(rows),
            "generation_latency_s": distribution(gen),
            "twin_latency_s": distribution([t for t in twin if t]),
            "deadline_misses": int(misses),
            "deadline_miss_fraction": misses / len(rows) if rows else None,
            "cached_stimuli": int(sum(r["cached_stimulus"] == "1" for r in rows)),
            "fixation_breaks": int(sum(r["fixation_break"] == "1" for r in rows)),
            "dropped_frames_in_trials": int(
                sum(
                    int(r["dropped_frames"]) for r in rows if r["dropped_frames"] not in ("n/a", "")
                )
            ),
            "dropped_frames_by_phase": {
                column: int(
                    sum(
                        int(r[column]) for r in rows if r.get(column) not in (*MISSING_TOKENS, None)
                    )
                )
                for column in DROP_COLUMNS.values()
            },
            "trials_requeued_for_dropped_frames": int(
                sum(r.get("abort_reason") == "dropped_frame" for r in rows)
            ),
            "trial_gaze_to_flip_median_ms": distribution(g2f, scale=1000.0),
            "runs": runs,
        }
        write_json_atomic(path, report)
        return report
