"""``fovea simulate --tracker eyelink-emulated`` from the command line: a run whose link is lost
(faults from ``$FOVEA_EYELINK_FAULTS``) stops with exit status 1 and a --resume hint, and
``--resume`` completes the session with one EDF per run under ``sourcedata/``."""

from __future__ import annotations

import json
import logging

import pytest

from fovea_cli.main import main
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def test_simulate_with_the_emulated_eyelink_stops_on_a_lost_link_and_resumes(
    virtual_x, tmp_path, monkeypatch, capsys
):
    data = small_protocol_dict(method="staircase", trials=4, break_prob=0.0)
    data["tracker"].update(drift_correct_every_n_trials=2, sampling_rate_hz=500)
    protocol = write_toml(data, tmp_path / "small.toml")
    argv = [
        "simulate",
        str(protocol),
        "--data",
        str(tmp_path / "data"),
        "--tracker",
        "eyelink-emulated",
        "--quiet",
    ]
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"link_lost_at_trial": 3}))
    assert main(argv) == 1
    told = capsys.readouterr()
    print(told.out, told.err)
    assert "--resume" in told.out
    # One message says the link was lost and the EDF stays on the Host PC (it was said three
    # times, with two log records of the close sequence: five lines for one event).
    assert (told.out + told.err).count("stays on the Host PC") == 1
    monkeypatch.delenv(FAULTS_ENV)
    assert main([*argv, "--resume"]) == 0
    edfs = sorted((tmp_path / "data" / "sourcedata").rglob("*.edf"))
    assert [p.name.split("_")[2] for p in edfs] == ["run-1", "run-2"]
    sidecar = json.loads(next((tmp_path / "data").rglob("*_beh.json")).read_text())
    assert sidecar["completed"] and sidecar["tracker"] == "eyelink-emulated"


def test_simulate_refuses_a_mistyped_fault_before_any_session_starts(tmp_path, monkeypatch, capsys):
    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "small.toml")
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"link_lost_at_trail": 3}))
    argv = ["simulate", str(protocol), "--data", str(tmp_path / "data")]
    assert main([*argv, "--tracker", "eyelink-emulated"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: ${FAULTS_ENV}: unknown fault") and err.count("\n") == 1
    assert not (tmp_path / "data").exists()  # no window opened, no session created


def test_a_cancelled_edf_transfer_is_told_once_with_the_fetch_command(
    virtual_x, tmp_path, monkeypatch, capsys, caplog
):
    """The console said 'stays on the Host PC' twice for one cancelled transfer: a log record
    of the transfer, then the warning that names the file and the command that fetches it.
    (Without a logging setup, Python prints records of WARNING and above on stderr; under
    pytest they go to caplog instead.)"""
    data = small_protocol_dict(method="staircase", trials=2, break_prob=0.0)
    data["tracker"].update(sampling_rate_hz=500)
    protocol = write_toml(data, tmp_path / "small.toml")
    argv = ["simulate", str(protocol), "--data", str(tmp_path / "data")]
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"receive_codes": [0]}))
    assert main([*argv, "--tracker", "eyelink-emulated", "--quiet"]) == 0
    told = capsys.readouterr()
    printed = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    console = "\n".join([told.out, told.err, *printed])
    assert console.count("stays on the Host PC") == 1
    assert "cancelled (code 0)" in console and "--resume" in console
