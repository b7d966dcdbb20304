"""A report of a data set still being collected: a session a run is recording now (it holds
the session's lock) is named as such on the page, in the sessions table and in summary.json,
not as a session stopped by a kill that ``--resume`` would continue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from analysis.fits import FitSettings
from analysis.report import ReportConfig, build_report
from analysis.simulate_data import SimulationSpec, simulate_dataset
from study.datalog import SessionPaths

REPO = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys; from pathlib import Path; from study.datalog import SessionLock; "
    "lock = SessionLock(Path(sys.argv[1]), what='session').acquire(); "
    "print('held', flush=True); sys.stdin.read()"
)


def _unfinished(data: Path, participant: str) -> None:
    """The sidecar of a session whose run has not ended: completed false, its last run without
    an end status (as ``fovea run`` leaves it while trials go on)."""
    sidecar = next((data / f"sub-{participant}").rglob("*_beh.json"))
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    record["completed"] = False
    record["runs"] = [{"run": 1, "started_utc": "2026-11-28T10:00:00Z", "first_trial": 1}]
    sidecar.write_text(json.dumps(record), encoding="utf-8")


def test_a_session_being_recorded_makes_the_report_provisional(tmp_path):
    data = tmp_path / "data"
    simulate_dataset(out_dir=data, spec=SimulationSpec(participants=3, trials_per_condition=30))
    _unfinished(data, "02")
    lock = SessionPaths(data, "02", "1", "fovea2afc").lock_file
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    run = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout.readline().strip() == "held"
        report = build_report(data_dir=data, out_dir=tmp_path / "live", config=config)
    finally:
        run.communicate("")
    html = report.html.read_text(encoding="utf-8")
    line = "Data still being collected: sub-02 ses-1 is being recorded now. This report is"
    assert line in html and html.index(line) < html.index('<section id="answer">')  # on top
    assert report.summary["counts"]["sessions_being_recorded"] == ["sub-02 ses-1"]
    sessions = (tmp_path / "live" / "tables" / "sessions.csv").read_text(encoding="utf-8")
    assert "no (being recorded now)" in sessions
    notes = " ".join(report.summary["warnings"])
    assert "being recorded now (a run of this session holds its lock)" in notes
    assert "as after a kill" not in notes

    # The run has ended (killed: the lock is let go, the sidecar unfinished): no longer live.
    report = build_report(data_dir=data, out_dir=tmp_path / "after", config=config)
    assert "still being collected" not in report.html.read_text(encoding="utf-8")
    assert report.summary["counts"]["sessions_being_recorded"] == []
    assert "as after a kill" in " ".join(report.summary["warnings"])
