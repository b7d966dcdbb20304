"""``fovea run --close``: a killed session that will not be resumed gets its end records without
a window, so the data folder is valid BIDS; ``--resume`` still continues it afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from study.session_finish import CLOSED_STATUS
from tests.study.bids_validation import errors, validate
from tests.study.conftest import small_protocol_dict, write_toml
from tests.study.test_resume import SEED, _count_rows, _rows, _simulate

pytestmark = [pytest.mark.display, pytest.mark.slow]


def _fovea(*args: str, env) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fovea_cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_a_closed_killed_session_is_valid_bids_and_still_resumes(virtual_x, tmp_path):
    protocol = write_toml(small_protocol_dict(trials=8), tmp_path / "p.toml")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    data = tmp_path / "data"
    print("seed", SEED, "kill after 3 rows")
    process = subprocess.Popen(
        _simulate(protocol, data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while _count_rows(data) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the session ended before it could be killed"
    killed = len(_rows(data))
    # What the validator crashed on: a gaze file without its events file.
    assert not list(data.glob("sub-*/ses-*/beh/*_events.tsv"))

    closed = _fovea(
        "run", str(protocol), "--participant", "sim01", "--data", str(data), "--close", env=env
    )
    assert closed.returncode == 0, closed.stderr[-2000:]
    assert "closed incomplete" in closed.stdout
    assert errors(validate(data)) == []
    (sidecar_path,) = data.glob("sub-*/ses-*/beh/*_beh.json")
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["completed"] is False and sidecar["runs"][-1]["status"] == CLOSED_STATUS
    (events,) = data.glob("sub-*/ses-*/beh/*_events.tsv")
    assert events.read_text().count("\n") - 1 == 2 * killed  # both intervals of each trial

    resumed = subprocess.run(
        _simulate(protocol, data, "--resume"), env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = _rows(data)
    assert rows["trial"].tolist() == list(range(1, len(rows) + 1)) and len(rows) > killed
    assert json.loads(sidecar_path.read_text())["completed"] is True
    assert errors(validate(data)) == []
