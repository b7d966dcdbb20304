"""The summary an experimenter reads when a session ends (``study.session_summary``), from the
session's own files."""

from __future__ import annotations

import json

from protocol.session_data import new_row, write_beh_tsv
from study.session_summary import session_summary


def _row(trial: int, condition: str, level: float, correct, **extra) -> dict:
    values = dict(
        participant="01",
        session="1",
        trial=trial,
        condition=condition,
        level=level,
        correct=correct,
        block="main",
        gen_latency_s=0.4 + 0.01 * trial,
        deadline_missed=0,
        dropped_frames=0,
    )
    values.update(extra)
    return new_row(**values)


def test_the_summary_counts_answers_reruns_accuracy_speed_frames_and_calibration(tmp_path):
    rows = [
        _row(1, "a", 2.0, None, block="practice"),
        _row(2, "a", 2.0, 1),
        _row(3, "b", 4.0, None, abort_reason="fixation_break", fixation_break=1),
        _row(4, "b", 4.0, 0, dropped_frames=2),
        _row(5, "a", 1.5, 0, deadline_missed=1, cached_stimulus=1, gen_latency_s=1.2),
        _row(6, "b", 3.0, 1),
        _row(7, "a", 1.2, None, abort_reason="deadline"),
        _row(8, "a", 1.1, 1),
        _row(9, "b", 3.0, None, gen_latency_s=None),  # no reason recorded
    ]
    beh = tmp_path / "sub-01_ses-1_task-t_beh.tsv"
    write_beh_tsv(beh, rows)
    sidecar = tmp_path / "sub-01_ses-1_task-t_beh.json"
    calibration = [
        {"avg_error_deg": 0.9, "max_error_deg": 1.9},
        {"avg_error_deg": 0.41, "max_error_deg": 0.88},
    ]
    sidecar.write_text(json.dumps({"calibration": calibration}), encoding="utf-8")

    lines = session_summary(beh, sidecar)

    assert lines[0] == (
        "summary: 5 main trials answered, 1 practice; 3 ran again (fixation_break 1, deadline 1, "
        "aborted 1)"
    )
    assert lines[1] == "  a: 3 answered, 67 % correct, last level 1.1"
    assert lines[2] == "  b: 2 answered, 50 % correct, last level 3"
    assert lines[3].startswith("  generation: median 0.46 s, 95th percentile 0.98 s;")
    assert lines[3].endswith("deadline missed 1 time(s), stand-in shown 1 time(s)")
    assert lines[4] == "  dropped frames: 2 in 1 trial(s)"
    assert lines[5] == "  last calibration: mean error 0.41 deg, max 0.88 deg (2 in the session)"


def test_validations_outside_the_limits_are_not_counted_as_calibrations(tmp_path):
    """Each setup repeated after a validation outside the limits records one (as an emulated
    EyeLink session with two poor validations wrote them): the summary said '3 in the session'
    for one calibration, and showed a last validation that was not accepted, or that the
    operator accepted outside the limits, as if it were a good one."""
    beh = tmp_path / "sub-01_ses-1_task-t_beh.tsv"
    write_beh_tsv(beh, [_row(1, "a", 2.0, 1)])
    sidecar = tmp_path / "sub-01_ses-1_task-t_beh.json"

    def line(*records) -> str:
        sidecar.write_text(json.dumps({"calibration": list(records)}), encoding="utf-8")
        return session_summary(beh, sidecar)[-1]

    poor = {"avg_error_deg": 2.5, "max_error_deg": 4.0, "accepted": False, "override": False}
    poorer = {"avg_error_deg": 1.8, "max_error_deg": 3.0, "accepted": False, "override": False}
    good = {"avg_error_deg": 0.37, "max_error_deg": 0.63, "accepted": True, "override": False}
    assert line(poor, poorer, good) == (
        "  last calibration: mean error 0.37 deg, max 0.63 deg (1 in the session; "
        "2 validation(s) outside the limits not accepted)"
    )
    assert line(good, poor) == (
        "  last calibration: mean error 2.50 deg, max 4.00 deg, NOT accepted (outside the "
        "validation limits) (1 in the session; 1 validation(s) outside the limits not accepted)"
    )
    assert line(good, dict(poor, accepted=True, override=True)) == (
        "  last calibration: mean error 2.50 deg, max 4.00 deg, accepted by the operator outside "
        "the validation limits (2 in the session)"
    )


def test_a_session_without_trials_has_no_summary(tmp_path):
    assert session_summary(tmp_path / "missing_beh.tsv", tmp_path / "missing_beh.json") == []


def test_an_eyelink_sessions_summary_lists_its_edf_copies_and_the_files_left_on_the_host(
    virtual_x, tmp_path, monkeypatch
):
    """A real emulated EyeLink session whose final transfer is cancelled (the Host PC keeps
    the file), then its ``--resume``, which fetches it: the summary says what is on disk."""
    from protocol import load_protocol
    from study.session import SessionConfig, run_session
    from study.trackers.emulated_host import FAULTS_ENV
    from tests.study.conftest import small_protocol_dict, write_toml

    data = small_protocol_dict(method="staircase", trials=2, break_prob=0.0)
    data["tracker"].update(sampling_rate_hz=500)
    loaded = load_protocol(write_toml(data, tmp_path / "small.toml"))

    def run(**extra):
        config = SessionConfig(
            loaded=loaded,
            data_dir=tmp_path / "data",
            participant="sim01",
            tracker="eyelink-emulated",
            observer="parametric",
            seed=4,
            simulated_clock=True,
            quiet=True,
            **extra,
        )
        p = run_session(config, log=lambda line: None).paths
        return p, session_summary(p.beh_tsv, p.beh_json, p.eyetrack_dir)

    monkeypatch.setenv(FAULTS_ENV, json.dumps({"receive_codes": [0]}))
    paths, lines = run()
    host = json.loads(paths.beh_json.read_text())["runs"][0]["edf_name"]
    assert lines[-2] == f"  eye-tracking files in {paths.eyetrack_dir}: none"
    assert lines[-1] == (
        f"  not copied, still only on the Host PC: {host}.EDF (run 1); do not delete them "
        "there: --resume fetches them"
    )
    monkeypatch.setenv(FAULTS_ENV, "{}")
    paths, lines = run(resume=True)
    (local,) = paths.eyetrack_dir.glob("*.edf")
    kb = local.stat().st_size / 1000
    assert kb > 1
    assert lines[-1] == f"  eye-tracking files in {paths.eyetrack_dir}: {local.name} ({kb:.0f} kB)"


def test_fovea_simulate_prints_each_sessions_summary_without_an_eye_tracking_line(
    virtual_x, tmp_path, capsys
):
    """``fovea simulate`` (not --quiet) prints what ``fovea run`` prints when a session ends,
    per participant; a simulated tracker writes no EDF, so there is no eye-tracking line."""
    from fovea_cli.main import main
    from tests.study.conftest import small_protocol_dict, write_toml

    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "small.toml")
    assert main(["simulate", str(protocol), "--data", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    print(out)
    (beh_tsv,) = (tmp_path / "data").rglob("*_beh.tsv")
    expected = session_summary(beh_tsv, beh_tsv.with_suffix(".json"))
    assert expected[0].startswith("summary: 2 main trials answered")
    assert "\n".join(f"sim01: {line}" for line in expected) + "\n" in out
    assert not any("eye-tracking" in line for line in out.splitlines())


def test_a_trial_given_up_is_not_counted_as_run_again(tmp_path):
    """A practice session with max_attempts 2 (simulate, seed 6): trial 7 was the plan's last
    attempt and was given up (the track went on with a new stimulus), yet the summary said
    '3 ran again (fixation_break 3); 1 given up', counting it in both."""
    rows = [
        _row(1, "a", 0.1, None, abort_reason="fixation_break", attempt=1),
        _row(2, "a", 0.1, None, abort_reason="fixation_break", attempt=2, given_up=1),
        _row(3, "a", 0.1, 0),
        _row(4, "a", 8.0, None, abort_reason="fixation_break", attempt=1),
        _row(5, "a", 8.0, 1, attempt=2),
    ]
    beh = tmp_path / "sub-01_ses-1_task-t_beh.tsv"
    write_beh_tsv(beh, rows)
    lines = session_summary(beh, tmp_path / "sub-01_ses-1_task-t_beh.json")
    assert lines[0] == (
        "summary: 2 main trials answered; 2 ran again (fixation_break 2); "
        "1 given up after too many attempts"
    )
