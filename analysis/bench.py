"""``fovea bench report``: time the whole report on a simulated study, write JSON records.

The data set (simulated with ``analysis.simulate_data``, not timed) has the study's layout and
columns; the timed part is ``build_report`` exactly as ``fovea report`` runs it, bootstrap,
Bayesian fits, group models and figures included.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path


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
    """Simulate a study and time the report ``repeats`` times.

    Returns:
        One record per repeat: seconds, participants, conditions, trials_per_condition, n_boot,
        procedure, workers, cpu_count, load_average_1min (before the run), timings_s (phases).
    """
    from analysis.fits import FitSettings
    from analysis.jobs import default_workers
    from analysis.report import ReportConfig, build_report
    from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset

    thresholds = [1.0, 1.4, 0.7, 2.0, 1.2, 0.9, 1.6, 0.8]
    fixations = [
        (0.0, 0.0),
        (8.0, 0.0),
        (-8.0, 0.0),
        (0.0, 6.0),
        (0.0, -6.0),
        (4.0, 0.0),
        (-4.0, 0.0),
        (0.0, 3.0),
    ]
    conds = tuple(
        SimCondition(
            name=f"cond{i + 1}", threshold=thresholds[i % 8], fixation_deg=fixations[i % 8]
        )
        for i in range(conditions)
    )
    spec = SimulationSpec(
        participants=participants,
        conditions=conds,
        trials_per_condition=trials,
        procedure=procedure,
        seed=seed,
    )  # type: ignore[arg-type]
    records = []
    with tempfile.TemporaryDirectory(prefix="fovea-bench-report-") as tmp:
        root = Path(keep_dir) if keep_dir else Path(tmp)
        data = root / "data"
        simulate_dataset(out_dir=data, spec=spec)
        for r in range(repeats):
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
    return records


def write_records(records: list[dict], path: str | Path) -> None:
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
