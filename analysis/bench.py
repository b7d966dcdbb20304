"""``fovea bench report``: time the whole report on a simulated study, write JSON records.

The data set (simulated with ``analysis.simulate_data``, not timed) has the study's layout and
columns; the timed part is ``build_report`` exactly as ``fovea report`` runs it, bootstrap,
Bayesian fits, group models and figures included.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from generator.atomic import write_atomic


def run_report_benchmark(
    *,
    participants: int = 20,
    conditions: int = 4,
    trials: int = 200,
    n_boot: int = 1000,
    procedure: str = "constant",
    repeats: int = 1,
    workers: int | None = None,
    seed: int = 0,
    keep_dir: str | Path | None = None,
    progress: bool = False,
) -> list[dict]:
    """Simulate a study and time the report ``repeats`` times (``progress``: what it is doing,
    and the report's own progress, on stderr).

    Returns:
        One record per repeat: seconds, participants, conditions, trials_per_condition, n_boot,
        procedure, workers, cpu_count, load_average_1min (before the run), timings_s (phases).
    """
    from analysis.fits import FitSettings
    from analysis.jobs import default_workers
    from analysis.report import ReportConfig, build_report
    from analysis.simulate_data import simulate_dataset

    spec = _study_spec(participants, conditions, trials, procedure=procedure, seed=seed)
    say = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    records = []
    with tempfile.TemporaryDirectory(prefix="fovea-bench-report-") as tmp:
        root = Path(keep_dir) if keep_dir else Path(tmp)
        data = root / "data"
        say(f"simulating {participants} participants x {conditions} conditions x {trials} trials")
        simulate_dataset(out_dir=data, spec=spec)
        for r in range(repeats):
            say(f"report {r + 1} of {repeats} (timed)")
            out = root / f"report{r + 1}"
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            config = ReportConfig(
                fit=FitSettings(n_boot=n_boot, seed=seed), progress=progress, workers=workers
            )
            t0 = time.perf_counter()
            result = build_report(data_dir=data, out_dir=out, config=config)
            seconds = time.perf_counter() - t0
            records.append(
                {
                    "benchmark": "report",
                    "seconds": round(seconds, 3),
                    "participants": participants,
                    "conditions": conditions,
                    "trials_per_condition": trials,
                    "n_boot": n_boot,
                    "procedure": procedure,
                    "bayes": True,
                    "workers": workers or default_workers(),
                    "cpu_count": os.cpu_count(),
                    "load_average_1min": load,
                    "timings_s": result.summary.get("timings_s", {}),
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                }
            )
    if not keep_dir:
        say("(the simulated data and reports are removed: --keep DIR keeps them)")
    return records


#: The simulated conditions' true thresholds and fixations (deg), cycled when more are asked for.
_THRESHOLDS = [1.0, 1.4, 0.7, 2.0, 1.2, 0.9, 1.6, 0.8]
_FIXATIONS_DEG = [
    (0.0, 0.0),
    (8.0, 0.0),
    (-8.0, 0.0),
    (0.0, 6.0),
    (0.0, -6.0),
    (4.0, 0.0),
    (-4.0, 0.0),
    (0.0, 3.0),
]


def _study_spec(participants: int, conditions: int, trials: int, *, procedure: str, seed: int):
    """The simulated study's ``SimulationSpec``."""
    from analysis.simulate_data import SimCondition, SimulationSpec

    conds = tuple(
        SimCondition(
            name=f"cond{i + 1}", threshold=_THRESHOLDS[i % 8], fixation_deg=_FIXATIONS_DEG[i % 8]
        )
        for i in range(conditions)
    )
    return SimulationSpec(
        participants=participants,
        conditions=conds,
        trials_per_condition=trials,
        procedure=procedure,
        seed=seed,
    )  # type: ignore[arg-type]


def write_records(records: list[dict], path: str | Path) -> None:
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(records, indent=2) + "\n")
