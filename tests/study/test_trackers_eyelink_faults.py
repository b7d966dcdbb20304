"""The EyeLink tracker's own code through the pylink emulator: recording across drift checks and
calibrations, sample freshness, calibration acceptance, drift-check limits and retries, the
recorded eye, refused commands, link loss, the terminate sequence and the EDF files."""

from __future__ import annotations

import json
import math

import pytest

from generator.errors import FoveaError
from study.trackers import Tracker, TrackerLinkLost, make_tracker
from study.trackers.edf import host_edf_name, local_edf_name
from study.trackers.edf_text import read_edf_text
from study.trackers.emulated import EmulatedEyeLinkTracker
from study.trackers.emulated_host import FAULTS_ENV, FaultScript
from tests.study.eyelink_emulation import (
    RATE_HZ,
    open_tracker,
    run_frames,
    run_trial,
    settings,
)

PERIOD_MS = 1000.0 / RATE_HZ


def _gaps_ms(times):
    return [b - a for a, b in zip(times, times[1:], strict=False) if b - a != PERIOD_MS]


def test_make_tracker_builds_the_emulated_eyelink(tmp_path):
    tracker = make_tracker("eyelink-emulated", settings=settings(), seed=0, clock=lambda: 0.0)
    assert isinstance(tracker, EmulatedEyeLinkTracker) and tracker.name == "eyelink-emulated"
    assert isinstance(tracker, Tracker)  # has every method of the interface


def test_recording_start_logs_the_session_to_tracker_clock_offset(tmp_path):
    tracker, clock = open_tracker(tmp_path)
    clock.advance(1.25)
    tracker.start_recording()
    (text,) = [t for _, t in tracker.messages if t.startswith("FOVEA_CLOCK_OFFSET_MS")]
    assert float(text.split()[1]) == tracker.emulator.epoch_ms  # tracker ms = session ms + offset


def test_recording_continues_after_drift_checks_and_calibrations(tmp_path):
    tracker, clock = open_tracker(tmp_path)
    assert tracker.calibrate().accepted
    tracker.start_recording()
    for trial in range(1, 5):
        if trial > 1:
            assert tracker.drift_correct(x_deg=0.0, y_deg=0.0)
            assert tracker.is_recording()  # restarted after the check
        if trial == 3:
            assert tracker.calibrate().accepted
            assert tracker.is_recording()  # restarted after the recalibration
        samples = run_trial(tracker, clock, trial)
        assert all(s.valid and s.is_new for s in samples), trial
    edf_path = tracker.close(dest_dir=tmp_path / "local")
    edf = read_edf_text(edf_path)
    starts = [edf.message_time(f"TRIALID {n}") for n in range(1, 5)]
    ends = starts[1:] + [edf.blocks[-1][1]]
    for n, (start, end) in enumerate(zip(starts, ends, strict=True), start=1):
        assert len(edf.sample_times(start, end)) >= 60 * RATE_HZ / 64, f"trial {n}"
    # One block per recording start, back to back: no sample missing around the checks.
    assert len(edf.blocks) == 1 + 3 + 1
    assert _gaps_ms(edf.sample_times()) == []
    assert len(edf.texts("DRIFTCORRECT")) == 3 and len(edf.texts("!CAL VALIDATION")) == 2


def test_a_stale_sample_is_not_new_and_an_old_one_is_invalid(tmp_path):
    tracker, clock = open_tracker(tmp_path, refresh_hz=64.0)
    tracker.calibrate()
    tracker.start_recording()
    fresh = run_frames(tracker, clock, 4)[-1]
    assert fresh.valid and fresh.is_new
    again = tracker.sample()  # no time passed: the same link sample
    assert not again.is_new and (again.x_deg, again.time_s) == (fresh.x_deg, fresh.time_s)
    tracker.el.stopRecording()  # the Host stops (e.g. the operator's abort menu)
    assert not tracker.is_recording()
    one_frame, _, three_frames = run_frames(tracker, clock, 3)
    assert one_frame.valid and not one_frame.is_new  # a frame old: the same gaze, not logged
    assert not three_frames.valid and math.isnan(three_frames.x_deg)  # > 2 frames: no gaze
    assert three_frames.time_s == clock()


def test_failed_validation_repeats_setup_until_accepted(tmp_path):
    faults = FaultScript(validations=[(1.4, 2.9), None, (0.35, 0.7)])
    tracker, _ = open_tracker(tmp_path, faults=faults)
    result = tracker.calibrate()
    assert result.accepted and not result.override and result.attempts == 3
    assert [c.accepted for c in tracker.calibrations] == [False, False, True]
    assert tracker.calibrations[1].avg_error_deg is None  # left without validating
    assert tracker.calibrations[0].quality == "POOR"


def test_validation_outside_the_limits_needs_the_operator(tmp_path):
    faults = FaultScript(validations=[(1.2, 1.9)] * 3)
    tracker, _ = open_tracker(tmp_path, faults=faults)
    assert not tracker.calibrate().accepted  # capped: three setups, none accepted
    assert len(tracker.calibrations) == 3
    asked = []
    tracker.override_validation = lambda result: asked.append(result) or True
    tracker.faults.validations[:] = []
    tracker.emulator._validations = [(1.2, 1.9)]
    result = tracker.calibrate()
    assert result.accepted and result.override and len(asked) == 1
    assert "override 1" in tracker.messages[-1][1]


def test_with_an_operator_the_setup_repeats_until_they_accept_not_a_fixed_count(tmp_path):
    """The operator asked for setups again three times (more than ``max_setup_attempts``),
    then accepted a validation outside the limits: four setups, the last an override."""
    faults = FaultScript(validations=[(1.4, 2.9)] * 4)
    tracker, _ = open_tracker(tmp_path, faults=faults)
    answers = [False, False, False, True]
    tracker.override_validation = lambda result: answers.pop(0)
    result = tracker.calibrate()
    assert result.accepted and result.override and result.attempts == 4
    assert [c.override for c in tracker.calibrations] == [False, False, False, True]


def test_no_frame_intervals_are_recorded_during_setup_or_a_drift_check(tmp_path):
    """A trial's drift check or recalibration is not counted as dropped frames: the window's
    frame-interval recording is off while the Host PC runs them, and back on afterwards."""
    tracker, _ = open_tracker(tmp_path)
    tracker.win.recordFrameIntervals = True
    seen = []
    emulator = tracker.emulator
    setup, drift = emulator.doTrackerSetup, emulator.doDriftCorrect
    emulator.doTrackerSetup = lambda *a: seen.append(tracker.win.recordFrameIntervals) or setup(*a)
    emulator.doDriftCorrect = lambda *a: seen.append(tracker.win.recordFrameIntervals) or drift(*a)
    tracker.calibrate()
    tracker.drift_check(x_deg=0.0, y_deg=0.0)
    assert seen == [False, False] and tracker.win.recordFrameIntervals


def test_protocol_limit_decides_acceptance(tmp_path):
    strict = settings(validation_max_avg_error_deg=0.3)
    tracker, _ = open_tracker(
        tmp_path, faults=FaultScript(validations=[(0.4, 0.8)] * 3), tracker_settings=strict
    )
    assert tracker.limits.avg_error_deg == 0.3
    assert not tracker.calibrate().accepted


def test_drift_check_above_the_limit_forces_a_recalibration(tmp_path):
    faults = FaultScript(drift_offsets_deg=[0.4, 1.7])
    tracker, clock = open_tracker(tmp_path, faults=faults)
    tracker.calibrate()
    tracker.start_recording()
    run_trial(tracker, clock, 1)
    first = tracker.drift_check(x_deg=0.0, y_deg=0.0)
    assert first.accepted and not first.recalibrate and first.offset_deg == 0.4
    n_calibrations = len(tracker.calibrations)
    assert tracker.drift_correct(x_deg=0.0, y_deg=0.0)  # 1.7 deg: recalibrated, then accepted
    second = tracker.drift_checks[-1]
    assert second.recalibrate and not second.accepted and second.offset_deg == 1.7
    assert len(tracker.calibrations) == n_calibrations + 1
    assert tracker.is_recording()


def test_escape_at_a_drift_check_runs_setup_once_then_checks_again(tmp_path):
    tracker, clock = open_tracker(tmp_path, faults=FaultScript(drift_escapes=1))
    tracker.calibrate()
    setups_before = tracker.emulator._setups
    result = tracker.drift_check(x_deg=2.0, y_deg=-1.0)
    assert result.accepted and result.attempts == 2
    # pylink ran the setup inside doDriftCorrect; the tracker ran no second doTrackerSetup.
    assert tracker.emulator._setups == setups_before + 1
    assert len(tracker.calibrations) == 2


def test_a_poor_validation_in_the_setup_entered_from_a_drift_check_is_not_passed_over(tmp_path):
    """Esc at a drift check, then a validation outside the limits in pylink's setup menu: the
    check went on and the session ran on that calibration, no operator asked. Now the operator
    is asked as after calibrate() (accept: override, the check repeats); without one (or when
    they want it again) the check ends asking for a recalibration."""
    faults = FaultScript(validations=[(0.3, 0.6), (1.6, 2.5)], drift_escapes=1)
    tracker, _ = open_tracker(tmp_path / "alone", faults=faults)
    tracker.calibrate()
    result = tracker.drift_check(x_deg=0.0, y_deg=0.0)
    assert not result.accepted and result.recalibrate and result.attempts == 1
    assert [c.accepted for c in tracker.calibrations] == [True, False]

    faults = FaultScript(validations=[(0.3, 0.6), (1.6, 2.5)], drift_escapes=1)
    tracker, _ = open_tracker(tmp_path / "operator", faults=faults)
    tracker.calibrate()
    asked = []
    tracker.override_validation = lambda setup: asked.append(setup) or True
    result = tracker.drift_check(x_deg=0.0, y_deg=0.0)
    assert result.accepted and result.attempts == 2
    assert [c.avg_error_deg for c in asked] == [1.6]
    assert tracker.calibrations[-1].override and "override 1" in tracker.messages[-2][1]


def test_an_applied_drift_correction_comes_before_recording_restarts(tmp_path):
    tracker, clock = open_tracker(tmp_path, apply_drift_correction=True)
    tracker.start_recording()
    run_frames(tracker, clock, 4)
    calls = []
    apply = tracker.emulator.applyDriftCorrect
    tracker.emulator.applyDriftCorrect = lambda: (
        calls.append(tracker.emulator.isRecording()) or apply()
    )
    assert tracker.drift_correct(x_deg=0.0, y_deg=0.0)
    assert calls == [-1]  # applied while offline (TRIAL_ERROR: not recording)
    assert tracker.is_recording()


def test_drift_check_retries_are_capped(tmp_path):
    tracker, _ = open_tracker(tmp_path, faults=FaultScript(drift_escapes=50))
    result = tracker.drift_check(x_deg=0.0, y_deg=0.0)
    assert result.attempts == tracker.max_drift_attempts == 3
    assert not result.accepted and result.recalibrate and result.offset_deg is None


def test_operator_switching_eye_is_read_back_and_followed(tmp_path):
    """eyeAvailable() is -1 before the first recording block and the last block's eye between
    blocks (SR's eyelink_eye_available): a calibration's eye comes from its validation text
    (it was null for the first calibration, and the old eye after a switch in the setup)."""
    tracker, clock = open_tracker(tmp_path, faults=FaultScript(switch_eye_at_setup=2))
    tracker.calibrate()
    assert tracker.emulator.eyeAvailable() == -1 and tracker.recorded_eye is None
    assert tracker.calibrations[0].eye == "right"
    tracker.start_recording()
    assert tracker.recorded_eye == "right"
    tracker.calibrate()  # the operator switches to the left eye in this setup
    assert tracker.recorded_eye == "left" and tracker.calibrations[-1].eye == "left"
    texts = [text for _, text in tracker.messages]
    assert "FOVEA_EYE LEFT" in texts and "FOVEA_EYE_MISMATCH protocol RIGHT" in texts
    samples = run_frames(tracker, clock, 8)
    assert all(s.valid for s in samples)  # gaze read from the eye actually recorded
    tracker.close(dest_dir=tmp_path / "local")
    assert read_edf_text(tracker.local_edf).eyes[-1] == "LEFT"


def test_refused_sample_rate_is_flagged_and_the_real_rate_read_back(tmp_path):
    faults = FaultScript(refused_commands=("sample_rate",))
    tracker, clock = open_tracker(
        tmp_path, faults=faults, tracker_settings=settings(sampling_rate_hz=1000)
    )
    assert tracker.refused_commands == ["sample_rate = 1000"]
    assert tracker.sampling_rate_hz is None
    tracker.start_recording()
    assert tracker.sampling_rate_hz == 500.0  # the Host's own rate
    run_frames(tracker, clock, 4)
    tracker.close(dest_dir=tmp_path / "local")
    edf = read_edf_text(tracker.local_edf)
    assert edf.rates_hz == [500.0]
    assert "FOVEA_WARNING sample_rate 1000 refused by the Host PC" in edf.texts()


def test_link_loss_mid_trial_keeps_the_host_file_for_the_resume(tmp_path):
    faults = FaultScript(link_lost_at_trial=2)
    tracker, clock = open_tracker(tmp_path, faults=faults, edf_name="fvrun01")
    tracker.calibrate()
    tracker.start_recording()
    run_trial(tracker, clock, 1)
    tracker.trial_start(trial=2, variables={})
    assert not tracker.is_connected() and not tracker.is_recording()
    samples = run_frames(tracker, clock, 4)
    assert not samples[-1].valid  # frozen link: no gaze
    assert tracker.close(dest_dir=tmp_path / "local") is None
    assert tracker.close_steps == {"isConnected": "failed: link down", "close": "ok"}
    # The resumed session reconnects (same Host PC), opens its own run's file, and first
    # fetches the interrupted run's file, which holds everything up to trial 2.
    resumed, clock2 = open_tracker(
        tmp_path, edf_name="fvrun02", host_dir=tmp_path / "host", clock=clock
    )
    fetched = resumed.fetch_host_file("fvrun01", dest=tmp_path / "local" / "run1.edf")
    edf = read_edf_text(fetched)
    assert edf.texts("TRIALID") == ["TRIALID 1", "TRIALID 2"]
    assert _gaps_ms(edf.sample_times()) == []
    assert resumed.host.files() == ["FVRUN01.EDF", "FVRUN02.EDF"]
    resumed.close(dest_dir=tmp_path / "local")


def test_link_loss_at_a_time_while_recording(tmp_path):
    tracker, clock = open_tracker(tmp_path, faults=FaultScript(link_lost_at_s=0.5))
    tracker.start_recording()
    run_frames(tracker, clock, 64)
    assert not tracker.is_connected()
    tracker.stop_recording()  # logged, not raised: the session's cleanup goes on
    assert tracker.close(dest_dir=tmp_path / "local") is None


def test_a_failing_stop_recording_still_closes_and_receives_the_edf(tmp_path):
    tracker, clock = open_tracker(tmp_path, faults=FaultScript(failing_calls={"stopRecording": 1}))
    tracker.start_recording()
    run_frames(tracker, clock, 16)
    local = tracker.close(dest_dir=tmp_path / "local")
    assert local is not None and local.exists()
    assert tracker.close_steps["stopRecording"].startswith("failed")
    for step in ("setOfflineMode", "closeDataFile", "receiveDataFile", "close"):
        assert tracker.close_steps[step] == "ok", step
    assert len(read_edf_text(local).samples) > 0


def test_existing_local_edf_is_never_overwritten(tmp_path):
    name = local_edf_name(participant="01", session="1", run=1, host_name="fvab0001")
    (tmp_path / "local").mkdir()
    existing = tmp_path / "local" / name
    existing.write_text("an earlier copy")
    tracker, clock = open_tracker(tmp_path, edf_name="fvab0001")
    tracker.start_recording()
    run_frames(tracker, clock, 4)
    local = tracker.close(dest_dir=tmp_path / "local", local_name=name)
    assert local.name == "sub-01_ses-1_run-1_fvab0001_2.edf"
    assert existing.read_text() == "an earlier copy"


def test_host_edf_names_are_unique_per_run_and_within_8_characters():
    names = {host_edf_name("fv", session_key="sub-01/ses-1", run=run) for run in range(1, 40)}
    assert len(names) == 39 and all(len(n) == 8 for n in names)
    assert host_edf_name("fv", session_key="sub-01/ses-1", run=2) == host_edf_name(
        "fv", session_key="sub-01/ses-1", run=2
    )
    assert host_edf_name("fv", session_key="sub-02/ses-1", run=2) != host_edf_name(
        "fv", session_key="sub-01/ses-1", run=2
    )
    assert len(host_edf_name("abcd", session_key="x", run=1295)) == 8
    with pytest.raises(FoveaError):
        host_edf_name("toolong", session_key="x", run=1)
    with pytest.raises(FoveaError):
        host_edf_name("fv", session_key="x", run=0)


def test_tracker_rejects_a_bad_edf_name_before_connecting(tmp_path):
    with pytest.raises(FoveaError, match="at most 8"):
        open_tracker(tmp_path, edf_name="session_0001")


def test_report_is_strict_json_even_without_results(tmp_path):
    faults = FaultScript(validations=[None], drift_escapes=50, link_lost_at_s=1.0)
    tracker, clock = open_tracker(tmp_path, faults=faults, max_setup_attempts=1)
    tracker.calibrate()
    tracker.drift_check(x_deg=0.0, y_deg=0.0)
    tracker.start_recording()
    run_frames(tracker, clock, 80)
    tracker.close(dest_dir=tmp_path / "local")
    text = json.dumps(tracker.report(), allow_nan=False)  # raises on NaN
    report = json.loads(text)
    assert report["calibrations"][0]["avg_error_deg"] is None
    assert report["drift_checks"][0]["offset_deg"] is None
    assert report["local_edf"] is None and report["edf_host_name"] == "fv0001"


def test_trial_messages_carry_result_codes_and_data_viewer_missing_values(tmp_path):
    tracker, clock = open_tracker(tmp_path)
    tracker.start_recording()
    tracker.trial_start(trial=7, variables={"rt s": float("nan"), "gaze": None, "level": 0.25})
    tracker.trial_end(result="fixation_break")
    tracker.trial_start(trial=8, variables={})
    tracker.trial_end(result="response", variables={"response": 2, "correct": 1, "rt": 0.5125})
    tracker.close(dest_dir=tmp_path / "local")
    texts = read_edf_text(tracker.local_edf).texts()
    start = texts.index("TRIALID 7")
    assert texts[start + 1 : start + 12] == [
        "!V TRIAL_VAR rt_s .",
        "!V TRIAL_VAR gaze .",
        "!V TRIAL_VAR level 0.25",
        "!V TRIAL_VAR outcome fixation_break",
        "TRIAL_RESULT 1",
        "TRIALID 8",
        "!V TRIAL_VAR response 2",
        "!V TRIAL_VAR correct 1",
        "!V TRIAL_VAR rt 0.5125",
        "!V TRIAL_VAR outcome response",
        "TRIAL_RESULT 0",
    ]


def test_procedures_that_need_the_link_raise_tracker_link_lost(tmp_path):
    tracker, clock = open_tracker(tmp_path, faults=FaultScript(link_lost_at_trial=1))
    tracker.start_recording()
    tracker.trial_start(trial=1, variables={})
    for procedure in (
        lambda: tracker.drift_correct(x_deg=0.0, y_deg=0.0),
        tracker.calibrate,
        tracker.start_recording,
    ):
        with pytest.raises(TrackerLinkLost, match="fv0001.EDF stays on the Host PC"):
            procedure()
    tracker.trial_end(result="aborted")  # messages to a lost link do not raise
    tracker.close(dest_dir=tmp_path / "local")


def test_fault_script_from_json_and_environment(tmp_path, monkeypatch):
    text = '{"link_lost_at_trial": 5, "validations": [[1.2, 2.5], null], "refused_commands": ["x"]}'
    script = FaultScript.from_json(text)
    assert script.link_lost_at_trial == 5 and script.validations == [(1.2, 2.5), None]
    assert script.refused_commands == ("x",)
    with pytest.raises(ValueError, match="unknown fault"):
        FaultScript.from_json('{"link_lost": 1}')
    path = tmp_path / "faults.json"
    path.write_bytes(b'\xef\xbb\xbf{"drift_escapes": 2}')  # saved by Notepad: a BOM
    monkeypatch.setenv(FAULTS_ENV, str(path))
    tracker = make_tracker("eyelink-emulated", settings=settings(), seed=0, clock=lambda: 0.0)
    assert tracker.faults.drift_escapes == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"link_lost_at_trail": 3}', "did you mean link_lost_at_trial"),
        ('{"link_lost_at_trial": 3', "not valid JSON"),
        ('{"validations": [1]}', "wrong shape"),
        ("no-such-faults.json", "cannot read no-such-faults.json"),
    ],
)
def test_a_mistake_in_the_fault_variable_is_one_error_line(value, message, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, value)
    with pytest.raises(FoveaError, match=message) as raised:
        FaultScript.from_environment()
    assert str(raised.value).startswith(f"${FAULTS_ENV}: ") and "\n" not in str(raised.value)


def test_link_lost_during_setup_raises_tracker_link_lost(tmp_path):
    tracker, _ = open_tracker(tmp_path, faults=FaultScript(failing_calls={"doTrackerSetup": 1}))
    with pytest.raises(FoveaError, match="setup failed"):
        tracker.calibrate()  # a link error with the link still up
    tracker.faults.failing_calls.clear()
    tracker.emulator.faults.link_lost_at_s = 0.0
    with pytest.raises(TrackerLinkLost):
        tracker.calibrate()
    assert tracker.refused_commands == []  # commands over a lost link are not "refused"
    tracker.trial_start(trial=1, variables={})  # messages and commands do not raise
