"""The console lines of a real emulated EyeLink session's drift checks: the operator reads each
check's offset, and that one above the protocol's limit brought a recalibration (the status
line's validation changes; nothing else said why)."""

from __future__ import annotations

import json

import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def test_each_drift_check_is_on_the_console_with_its_offset_and_outcome(
    virtual_x, tmp_path, monkeypatch
):
    data = small_protocol_dict(method="staircase", trials=6, break_prob=0.0)
    data["tracker"].update(sampling_rate_hz=500, drift_correct_every_n_trials=2)
    config = SessionConfig(
        loaded=load_protocol(write_toml(data, tmp_path / "small.toml")),
        data_dir=tmp_path / "data",
        participant="sim01",
        tracker="eyelink-emulated",
        observer="parametric",
        seed=4,
        simulated_clock=True,
    )
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"drift_offsets_deg": [0.3, 1.6]}))
    lines: list[str] = []
    result = run_session(config, log=lines.append)

    sidecar = json.loads(result.paths.beh_json.read_text())
    checks = sidecar["runs"][-1]["tracker"]["drift_checks"]
    assert [c["offset_deg"] for c in checks] == [0.3, 1.6]
    assert len(sidecar["calibration"]) == 2  # the second check recalibrated
    drift = [line for line in lines if "drift check" in line]
    assert drift == [
        "  drift check in trial 3: offset 0.30 deg, accepted",
        "  drift check in trial 5: offset 1.60 deg, above the 1.00 deg limit: recalibration",
    ]
    # Each comes before its trial's status line, which shows the new validation.
    status = [line for line in lines if line.startswith("  trial    5")]
    assert lines.index(drift[1]) + 1 == lines.index(status[0])
    assert f"last validation {sidecar['calibration'][-1]['avg_error_deg']:.2f} deg" in status[0]
