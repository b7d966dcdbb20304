"""Faults in a whole emulated EyeLink session (``eyelink-emulated``), each through the runner's
real code path: the Host PC stops recording mid-trial, a validation fails before one passes, the
operator switches the eye, the participant is slow to fixate (capped fixation timeouts, then a
recalibration); and the Data Viewer messages and images of every trial."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from study.trackers.edf_text import read_edf_text
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def _run(
    root,
    *,
    faults: dict,
    tracker: dict | None = None,
    timing: dict | None = None,
    console: list | None = None,
):
    """``console``: a list to collect the session's console lines (quiet without it)."""
    data = small_protocol_dict(method="staircase", trials=4, break_prob=0.0)
    data["tracker"].update(sampling_rate_hz=500, **(tracker or {}))
    data["timing"].update(timing or {})
    loaded = load_protocol(write_toml(data, root / "small.toml"))
    config = SessionConfig(
        loaded=loaded,
        data_dir=root / "data",
        participant="f01",
        tracker="eyelink-emulated",
        observer="parametric",
        seed=9,
        simulated_clock=True,
        quiet=console is None,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULTS_ENV, json.dumps(faults))
        result = run_session(config, log=print if console is None else console.append)
    assert result.completed
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    sidecar = json.loads(result.paths.beh_json.read_text())
    (edf_path,) = result.paths.eyetrack_dir.glob("*.edf")
    return result, rows, sidecar, read_edf_text(edf_path)


@pytest.fixture(scope="module")
def stopped(virtual_x, tmp_path_factory):
    """The Host stops recording right after TRIALID 2; the first validation fails (1.5 deg)."""
    return _run(
        tmp_path_factory.mktemp("stopped"),
        faults={"recording_stops_at_trial": 2, "validations": [[1.5, 3.0], [0.3, 0.6]]},
    )


def test_a_trial_whose_recording_stopped_is_aborted_requeued_and_recording_restarts(stopped):
    _, rows, _, edf = stopped
    second = rows[rows["trial"] == 2].iloc[0]
    assert second["abort_reason"] == "recording_stopped" and pd.isna(second["correct"])
    assert (rows["correct"].notna()).sum() == 4  # the session still completed its responses
    # Recording restarted after the stop: a new block, with samples in every later trial.
    assert len(edf.blocks) >= 2
    for trial in rows["trial"].iloc[2:]:
        start = edf.message_time(f"TRIALID {trial}")
        assert edf.sample_times(start, start + 200.0), f"no samples in trial {trial}"


def test_a_failed_validation_is_repeated_and_both_are_in_the_sidecar(stopped):
    _, _, sidecar, edf = stopped
    calibrations = sidecar["calibration"]
    assert [c["accepted"] for c in calibrations] == [False, True]
    assert calibrations[0]["avg_error_deg"] == 1.5 and calibrations[1]["run"] == 1
    assert len(edf.texts("FOVEA_CALIBRATION")) == 2


def test_every_trial_has_its_data_viewer_messages_and_images(stopped):
    result, rows, _, edf = stopped
    assert edf.texts("TRIALID") == [f"TRIALID {t}" for t in rows["trial"]]
    assert len(edf.texts("TRIAL_RESULT")) == len(rows)
    for name in ("condition", "level", "interval_foveated", "response", "correct", "rt_s"):
        assert len(edf.texts(f"!V TRIAL_VAR {name} ")) == len(rows), name
    shown = rows[rows["onset_s"].notna()]
    assert len(edf.texts("SYNCTIME")) == len(shown) == len(edf.texts("!V IAREA ELLIPSE"))
    assert len(edf.texts("!V IMGLOAD CENTER")) == 2 * len(shown)
    for trial in shown["trial"]:
        for kind in ("foveated", "full"):
            assert (result.paths.images_dir / f"trial-{trial:04d}_{kind}.png").exists()
    # The onset in beh.tsv (session clock) + the clock offset = SYNCTIME in tracker time.
    offset_ms = float(edf.texts("FOVEA_CLOCK_OFFSET_MS")[-1].split()[1])
    last = shown.iloc[-1]
    sync_ms = [t for t, text in edf.messages if text == "SYNCTIME"][-1]
    assert last["onset_s"] * 1000.0 + offset_ms == pytest.approx(sync_ms, abs=1.0)


def test_physio_holds_only_new_samples_and_no_trial_gap_after_a_stop(stopped):
    result, rows, _, _ = stopped
    with gzip.open(result.paths.physio_tsv_gz, "rt") as f:
        gaze = pd.read_csv(f, sep="\t", header=None, na_values="n/a")
    times = gaze[0].to_numpy()
    assert (times[1:] > times[:-1]).all()  # a repeated sample is never logged twice
    assert set(rows["trial"]) <= set(gaze[4].dropna().astype(int))


def test_the_operator_switching_eye_is_what_the_physio_sidecar_says(virtual_x, tmp_path):
    result, _, sidecar, _ = _run(tmp_path, faults={"switch_eye_at_setup": 1})
    physio = json.loads(result.paths.physio_json.read_text())
    assert sidecar["runs"][-1]["tracker"]["recorded_eye"] == "left"
    assert physio["RecordedEye"] == "left"


def test_fixation_timeouts_are_capped_then_a_recalibration(virtual_x, tmp_path):
    """The participant needs ~2 s to reach the first target; a timeout every 0.6 s (hold
    0.3 s), at most two in a row: the first brings a drift check, the second a recalibration
    instead of another check; the console says both (seed 9)."""
    console = []
    print("seed 9")
    _, _, sidecar, edf = _run(
        tmp_path,
        faults={},
        tracker={"sim_saccade_latency_s": 2.0, "max_fixation_timeouts": 2},
        timing={"fixation_timeout_s": 0.6},
        console=console,
    )
    trial_1 = [line for line in console if "trial 1" in line and "trial    1" not in line]
    assert trial_1[0].startswith("  drift check in trial 1: offset ")
    assert (
        trial_1.count("  trial 1: no fixation in 2 timeouts of 0.6 s in a row: recalibration") == 1
    )
    texts = [text for _, text in edf.messages]
    first, second = texts.index("FIXATION_TIMEOUT 1"), texts.index("FIXATION_TIMEOUT 2")
    assert [t.split()[0] for t in texts[first + 1 : second] if t[:5] in ("DRIFT", "FOVEA")] == [
        "DRIFTCORRECT",
        "FOVEA_DRIFT_CHECK",
        "FOVEA_CLOCK_OFFSET_MS",
    ]
    after = [t for t in texts[second + 1 :] if t.startswith(("DRIFTCORRECT", "FOVEA_CALIB"))]
    assert after[0].startswith("FOVEA_CALIBRATION")  # a recalibration, not a third check
    assert len(sidecar["calibration"]) == 2  # the session's first and the capped timeouts'


def test_the_protocols_limits_drive_calibration_and_drift_check_acceptance():
    from protocol import TrackerSettings
    from study.trackers.eyelink_setup import AcceptanceLimits

    settings = TrackerSettings(
        validation_max_avg_error_deg=0.5,
        validation_max_error_deg=1.2,
        drift_check_max_offset_deg=0.7,
    )
    limits = AcceptanceLimits.from_settings(settings)
    assert (limits.avg_error_deg, limits.max_error_deg, limits.drift_offset_deg) == (0.5, 1.2, 0.7)
    assert limits.validation_ok(0.4, 1.1) and not limits.validation_ok(0.4, 1.3)
    defaults = TrackerSettings()
    assert (defaults.validation_max_error_deg, defaults.drift_check_max_offset_deg) == (2.0, 1.0)


@pytest.mark.parametrize(
    ("message", "tracker"),
    [("RESPONSE", None), ("TRIAL_ABORTED", {"sim_fixation_break_prob": 0.6})],
    ids=["feedback", "abort_screen"],
)
def test_a_recording_stopped_on_the_feedback_or_abort_screen_keeps_the_outcome(
    virtual_x, tmp_path, message, tracker
):
    """The Host stops recording right after the first response (its feedback is shown next) or
    the first abort (its notice is shown next): that trial keeps its outcome, the session
    restarts the recording and completes (seed 9)."""
    _, rows, _, edf = _run(
        tmp_path, faults={"recording_stops_after_message": message}, tracker=tracker
    )
    assert "recording_stopped" not in set(rows["abort_reason"].dropna())
    if message == "RESPONSE":
        first = rows.iloc[0]
        assert pd.isna(first["abort_reason"]) and first["correct"] in (0, 1)
    else:
        aborted = rows[rows["abort_reason"].notna()]
        assert len(aborted) and aborted.iloc[0]["abort_reason"] == "fixation_break"
    assert len(edf.blocks) >= 2  # recording restarted after the stop
    stop_ms = [t for t, text in edf.messages if text.startswith(message)][0]
    later = [t for t, text in edf.messages if text.startswith("TRIALID") and t > stop_ms]
    assert later, "no trial after the stop"
    for start in later:
        assert edf.sample_times(start, start + 200.0), f"no samples after TRIALID at {start}"
