"""A session whose starts all failed before the first trial (the EyeLink Host PC unreachable, a
refused virtual display) is continued by the same command without ``--resume``, with the
resume's checks and a console note; its failed starts stay in the sidecar's runs. A session with
a logged trial is still refused without ``--resume``."""

from __future__ import annotations

import dataclasses
import json

import pytest

from generator.errors import FoveaError
from protocol.session_data import header_line, read_rows
from study.datalog import SessionPaths
from study.session import has_logged_trials, run_session
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml


def _paths(tmp_path) -> SessionPaths:
    return SessionPaths(
        data_dir=tmp_path / "data", participant="sim01", session="1", task="fovea2afc"
    )


def _eyelink_config(tmp_path, **data_changes):
    data = small_protocol_dict(trials=2)
    data["tracker"]["sampling_rate_hz"] = 500
    data.update(data_changes)
    protocol = write_toml(data, tmp_path / "p.toml")
    return simulated_session(protocol, tmp_path / "data", tracker="eyelink-emulated")


def _fail_to_connect(config, monkeypatch) -> SessionPaths:
    """Run ``config`` with the emulated Host PC unreachable; returns the session's paths."""
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"host_unreachable": True}))
    with pytest.raises(FoveaError, match="cannot connect to the EyeLink"):
        run_session(config)
    monkeypatch.delenv(FAULTS_ENV)
    paths = SessionPaths(
        data_dir=config.data_dir,
        participant=config.participant,
        session=config.session,
        task=config.loaded.protocol.task,
    )
    assert paths.beh_tsv.read_text() == header_line()  # the folder is there, without a trial
    return paths


@pytest.mark.display
def test_a_session_that_failed_to_connect_is_continued_by_the_same_command(
    virtual_x, tmp_path, monkeypatch
):
    config = _eyelink_config(tmp_path)
    paths = _fail_to_connect(config, monkeypatch)
    lines: list[str] = []
    result = run_session(config, log=lines.append)  # the same config: no resume
    assert result.completed
    (note,) = [line for line in lines if "has no logged trial" in line]
    assert "1 earlier start(s) ended before the first trial" in note
    assert "no --resume needed" in note
    rows = read_rows(paths.beh_tsv)
    assert [r["trial"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    sidecar = json.loads(paths.beh_json.read_text())
    failed, ran = sidecar["runs"]
    assert failed["first_trial"] == ran["first_trial"] == 1
    assert failed["status"].startswith("stopped before the first trial: cannot connect")
    assert ran["status"] == "completed"
    assert "(last: stopped before the first trial: cannot connect to the EyeLink" in note
    assert ran.get("edf_file") and sidecar["completed"]
    # The failed start opened no file on the Host PC: nothing is said to be left there.
    assert "edf_fetch_error" not in failed and not failed.get("edf_file")
    # Now it has trials: the same command is refused as before, before anything is written.
    with pytest.raises(
        FoveaError,
        match="already exists; it is complete: for this participant's next session give --session 2",
    ):
        run_session(config)


@pytest.mark.display
def test_the_connection_error_sends_a_dummy_pilot_to_another_session(
    virtual_x, tmp_path, monkeypatch
):
    """The error said 'or pilot with --tracker dummy', but the session it had just made refuses
    another tracker ('ran with tracker eyelink ...; resume it with the same'): the experimenter
    who followed it was refused. It now sends the pilot to another --session or --data."""
    config = _eyelink_config(tmp_path)
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"host_unreachable": True}))
    with pytest.raises(FoveaError) as refused:
        run_session(config)
    assert str(refused.value).endswith(
        "check the cable and the Host PC (the same command then continues this session), or "
        "pilot with --tracker dummy under another --session or --data (this session keeps the "
        "EyeLink)"
    )
    with pytest.raises(FoveaError, match="ran with tracker eyelink-emulated"):
        run_session(dataclasses.replace(config, tracker="sim"))


@pytest.mark.display
def test_the_continued_session_gets_the_resumes_checks(virtual_x, tmp_path, monkeypatch):
    config = _eyelink_config(tmp_path)
    paths = _fail_to_connect(config, monkeypatch)
    before = paths.beh_json.read_text()
    with pytest.raises(FoveaError, match="differs from the session's seed.*no logged trial yet"):
        run_session(dataclasses.replace(config, seed=4))
    with pytest.raises(FoveaError, match="ran with tracker eyelink-emulated.*no logged trial yet"):
        run_session(dataclasses.replace(config, tracker="sim"))
    edited = _eyelink_config(tmp_path, name="edited")  # the same file, another setting
    with pytest.raises(FoveaError, match="settings changed: name.*no logged trial yet"):
        run_session(edited)
    assert paths.beh_json.read_text() == before  # refused before anything was written


def test_only_a_session_with_a_sidecar_and_no_complete_row_counts_as_without_trials(tmp_path):
    paths = _paths(tmp_path)
    paths.beh_dir.mkdir(parents=True)
    paths.beh_tsv.write_text(header_line())
    assert has_logged_trials(paths)  # no sidecar: not a session fovea can continue
    paths.beh_json.write_text("{}")
    assert not has_logged_trials(paths)
    paths.beh_tsv.write_text(header_line() + "1\ttorn")  # a crash mid-write: no complete row
    assert not has_logged_trials(paths)
    paths.beh_tsv.write_text("")
    assert not has_logged_trials(paths)
    paths.beh_tsv.unlink()
    assert not has_logged_trials(paths)  # killed between the sidecar and the trial log
    paths.beh_tsv.write_text("trial\tsomething else\n")
    assert has_logged_trials(paths)  # unreadable: the usual refusal


@pytest.mark.display
def test_fovea_run_refused_a_virtual_display_then_the_same_command_gets_that_refusal_again(
    virtual_x, tmp_path, capsys
):
    from fovea_cli.main import main

    data = small_protocol_dict(method="constant", trials=1)
    data["conditions"][0].update(fixation_deg=[0.0, 0.0], levels=[2.0])
    data["procedure"]["constant"] = {"repeats": 1}
    protocol = write_toml(data, tmp_path / "check.toml")
    args = ["run", str(protocol), "--participant", "01", "--data", str(tmp_path / "data")]
    args += ["--tracker", "dummy", "--windowed"]
    assert main(args) == 2
    assert "virtual display" in capsys.readouterr().err
    assert main(args) == 2  # not "already exists": the display is what is refused again
    out, err = capsys.readouterr()
    assert "virtual display" in err and "already exists" not in err
    assert "has no logged trial" in out and "(last: refused: this is a virtual display" in out
    (beh,) = (tmp_path / "data").rglob("*_beh.tsv")
    sidecar = json.loads(beh.with_suffix(".json").read_text())
    assert [r["status"][:8] for r in sidecar["runs"]] == ["refused:", "refused:"]


@pytest.mark.display
def test_fovea_simulate_continues_a_session_without_a_logged_trial(
    virtual_x, tmp_path, monkeypatch
):
    """``fovea simulate`` follows the same rule as ``fovea run``: the same command continues a
    participant whose session stopped before its first trial (it refused: 'already exists')."""
    from study.simulate import simulate

    data = small_protocol_dict(trials=2)
    data["tracker"]["sampling_rate_hz"] = 500
    protocol = write_toml(data, tmp_path / "p.toml")
    args = dict(participants=1, data_dir=tmp_path / "data", quiet=True)
    args.update(tracker="eyelink-emulated", seed=3)
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"host_unreachable": True}))
    with pytest.raises(FoveaError, match="cannot connect to the EyeLink"):
        simulate(protocol=protocol, **args)
    monkeypatch.delenv(FAULTS_ENV)
    (result,) = simulate(protocol=protocol, **args)  # the same command, no --resume
    assert result.completed and result.n_rows >= 2
    with pytest.raises(FoveaError, match="already exists"):  # now it has trials
        simulate(protocol=protocol, **args)
