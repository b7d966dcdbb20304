"""The pylink emulator keeps to pylink: names, return codes, the 8-character rule, the newest
sample, recording into the emulated EDF, the Host's message formats."""

from __future__ import annotations

import pytest

from generator.geometry import default_display
from study.trackers.edf_text import read_edf_text
from study.trackers.emulated_host import EmulatedHost, FaultScript
from study.trackers.eyelink import import_pylink
from study.trackers.host_text import parse_drift_check, parse_validation, validation_quality
from study.trackers.pylink_emulator import (
    ABORT_EXPT,
    TRIAL_ERROR,
    TRIAL_OK,
    EmulatedEyeLink,
    make_pylink_module,
)
from study.trackers.screen import WindowMapper
from study.trackers.sim import SimulatedTracker
from tests.study.eyelink_emulation import FRAME_S, SteppedClock, open_tracker, settings


def _emulator(tmp_path, faults=None, rate_hz=500.0):
    clock = SteppedClock()
    participant = SimulatedTracker(settings=settings(), seed=1, clock=clock)
    mapper = WindowMapper(display=default_display(), window_width_px=800, window_height_px=600)
    host = EmulatedHost(tmp_path / "host", sampling_rate_hz=rate_hz)
    el = EmulatedEyeLink(
        "100.1.1.1",
        host=host,
        clock=clock,
        gaze=participant.gaze_at,
        mapper=mapper,
        faults=faults or FaultScript(),
    )
    return el, clock, host


def test_dummy_mode_answers_like_real_pylink():
    """pylink.EyeLink(None) and the emulator's dummy mode give the same answers."""
    pylink = import_pylink()
    real = pylink.EyeLink(None)
    fake = make_pylink_module(lambda address: EmulatedEyeLink(address, clock=lambda: 0.0)).EyeLink(
        None
    )
    try:
        for name in (
            "isConnected",
            "getDummyMode",
            "isRecording",
            "eyeAvailable",
            "getNewestSample",
            "trackerTime",
            "getCalibrationMessage",
            "getCalibrationResult",
            "getSampleRate",  # 250 in pylink's dummy mode (the emulator said 0)
            "getTrackerVersion",
            "getTrackerVersionString",
        ):
            assert getattr(fake, name)() == getattr(real, name)(), name
        assert fake.sendCommand("sample_rate = 1000") == real.sendCommand("sample_rate = 1000")
        for bad in ("toolongname.EDF", "ab-c.EDF"):
            with pytest.raises(RuntimeError):
                real.openDataFile(bad)
            with pytest.raises(RuntimeError):
                fake.openDataFile(bad)
        assert fake.openDataFile("test.EDF") == real.openDataFile("test.EDF") == 0
        for target in (real, fake):
            with pytest.raises(RuntimeError, match="tracker mode"):
                target.doDriftCorrect(100, 100, 1, 1)
    finally:
        real.close()
        fake.close()
    assert fake.isConnected() == real.isConnected() == 0


@pytest.mark.parametrize(
    "name", ["toolongname.EDF", "sub01ses1.EDF", "a-b.EDF", "x y.EDF", "f.txt"]
)
def test_open_data_file_enforces_the_8_character_rule(tmp_path, name):
    el, _, host = _emulator(tmp_path)
    with pytest.raises(RuntimeError):
        el.openDataFile(name)
    assert host.files() == []
    assert el.openDataFile("fv_0001.EDF") == 0
    assert host.files() == ["FV_0001.EDF"]


def test_newest_sample_is_the_same_object_until_a_new_one_arrives(tmp_path):
    el, clock, _ = _emulator(tmp_path)
    assert el.getNewestSample() is None  # nothing recorded yet
    el.openDataFile("t1.EDF")
    el.startRecording(1, 1, 1, 1)
    clock.advance(FRAME_S)
    first = el.getNewestSample()
    assert first is not None and first.isRightSample() and not first.isLeftSample()
    assert el.getNewestSample() is first  # no time passed: the same sample
    clock.advance(0.01)
    second = el.getNewestSample()
    assert second.getTime() == pytest.approx(first.getTime() + 10.0)  # 500 Hz: 5 samples later
    el.stopRecording()
    clock.advance(1.0)
    assert el.getNewestSample() is second  # recording stopped: the old sample again
    assert el.isRecording() == TRIAL_ERROR


def test_recording_writes_every_sample_and_message_to_the_emulated_edf(tmp_path):
    el, clock, host = _emulator(tmp_path)
    el.openDataFile("t2.EDF")
    el.sendMessage("BEFORE_RECORDING")
    el.startRecording(1, 1, 1, 1)
    assert el.isRecording() == TRIAL_OK
    for _ in range(32):
        clock.advance(FRAME_S)
        el.getNewestSample()
    el.sendMessage("HALF_A_SECOND")
    el.stopRecording()
    el.closeDataFile()
    local = tmp_path / "copy.EDF"
    size = el.receiveDataFile("t2.EDF", str(local))
    assert size == local.stat().st_size > 0
    edf = read_edf_text(local)
    assert edf.texts() == ["BEFORE_RECORDING", "!MODE RECORD CR 500 2 1 R", "HALF_A_SECOND"]
    assert edf.rates_hz == [500.0] and edf.eyes == ["RIGHT"]
    times = edf.sample_times()
    assert len(times) == 250  # 0.5 s at 500 Hz: the first sample after the start command
    assert all(b - a == 2.0 for a, b in zip(times, times[1:], strict=False))
    assert edf.blocks == [(times[0], times[-1])]


def test_receiving_an_open_or_missing_file_fails(tmp_path):
    el, _, _ = _emulator(tmp_path)
    el.openDataFile("open1.EDF")
    with pytest.raises(RuntimeError, match="still open"):
        el.receiveDataFile("open1.EDF", str(tmp_path / "x.EDF"))
    with pytest.raises(RuntimeError, match="no file"):
        el.receiveDataFile("other.EDF", str(tmp_path / "y.EDF"))


def test_link_loss_ends_the_block_and_returns_abort_codes(tmp_path):
    el, clock, host = _emulator(tmp_path, FaultScript(link_lost_at_s=0.25))
    el.openDataFile("lost.EDF")
    el.startRecording(1, 1, 1, 1)
    for _ in range(32):
        clock.advance(FRAME_S)
        el.getNewestSample()
    assert el.isConnected() == 0
    assert el.isRecording() == ABORT_EXPT
    assert el.sendMessage("LOST") != 0
    # sendCommand too raises (pylink: "If there is any problem sending the command, a runtime
    # exception is raised"); it returned a refusal code, which a real link never does.
    for call in (el.stopRecording, el.closeDataFile, el.setOfflineMode, el.sendCommand):
        with pytest.raises(RuntimeError, match="link"):
            call() if call != el.sendCommand else call("clear_screen 0")
    edf = read_edf_text(host.path("lost"))
    assert edf.blocks[0][1] == pytest.approx(el.epoch_ms + 250.0)  # the Host ended the block
    assert edf.sample_times()[-1] == pytest.approx(el.epoch_ms + 250.0)


def test_calibration_and_drift_check_texts_parse_back(tmp_path):
    el, _, host = _emulator(
        tmp_path, FaultScript(validations=[(1.2, 1.8)], drift_offsets_deg=[0.8])
    )
    el.openDataFile("cal.EDF")
    el.doTrackerSetup()
    summary = parse_validation(el.getCalibrationMessage())
    assert (summary.avg_error_deg, summary.max_error_deg) == (1.2, 1.8)
    assert summary.quality == "FAIR" and summary.eye == "right"
    assert el.getCalibrationResult() == 0
    assert el.doDriftCorrect(400, 300, 1, 1) == 0
    drift = parse_drift_check(el.getCalibrationMessage())
    assert drift.offset_deg == 0.8 and drift.target_px is None
    el.closeDataFile()
    line = next(m for _, m in read_edf_text(host.path("cal")).messages if "DRIFTCORRECT" in m)
    in_edf = parse_drift_check(line)
    assert in_edf.target_px == (400.0, 300.0)
    assert in_edf.offset_px == pytest.approx(drift.offset_px, abs=0.06)


def test_validation_ratings_follow_sr_research(tmp_path):
    """SR's FAQ: GOOD below 1.0 avg and 1.5 max, FAIR below 1.5 avg and 2.0 max, else POOR
    (the emulator called 0.62/1.31 FAIR and 1.2/1.9 POOR); getCalibrationResult 1 for POOR."""
    assert validation_quality(0.62, 1.31) == "GOOD"
    assert validation_quality(1.2, 1.9) == "FAIR"
    assert validation_quality(1.4, 2.9) == validation_quality(1.6, 1.0) == "POOR"
    el, _, _ = _emulator(tmp_path, FaultScript(validations=[(1.2, 1.9), (1.6, 2.2)]))
    el.doTrackerSetup()
    assert "FAIR" in el.getCalibrationMessage() and el.getCalibrationResult() == 0
    el.doTrackerSetup()
    assert "POOR" in el.getCalibrationMessage() and el.getCalibrationResult() == 1


def test_the_drift_check_message_in_sr_research_form_flags_a_recalibration(tmp_path):
    """After a drift check pylink's getCalibrationMessage() gives ``drift_correction: 1.70
    -60.00 20.00`` (SR's API reference for eyelink_cal_message), not the EDF's DRIFTCORRECT
    line: the tracker read no offset from it and accepted a 1.7 deg check (limit 1 deg)."""
    assert parse_drift_check("drift_correction: 1.70 -60.00 20.00").offset_deg == 1.7
    tracker, _ = open_tracker(tmp_path, faults=FaultScript(drift_offsets_deg=[1.7]))
    assert tracker.emulator.getCalibrationMessage() == ""
    result = tracker.drift_check(x_deg=0.0, y_deg=0.0)
    assert tracker.emulator.getCalibrationMessage().startswith("drift_correction: 1.70 ")
    assert result.offset_deg == 1.7 and result.recalibrate and not result.accepted


def test_refused_command_returns_a_nonzero_code_and_changes_nothing(tmp_path):
    el, _, host = _emulator(tmp_path, FaultScript(refused_commands=("sample_rate",)))
    assert el.sendCommand("sample_rate = 1000") != 0
    assert el.commandResult() != 0
    assert host.sampling_rate_hz == 500.0
    assert el.sendCommand("active_eye = LEFT") == 0
    assert el.eyeAvailable() == -1  # no recording block yet: no eye data
    el.startRecording(1, 1, 1, 1)
    assert el.eyeAvailable() == 0  # left
