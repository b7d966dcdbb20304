"""The data a session writes pass the official BIDS validator with no error: a short simulated
session (sim tracker), and an emulated EyeLink session with a forced recalibration, a lost link
and a resume. The eye-tracking files follow BEP020 and every JSON file is strict."""

from __future__ import annotations

import json

import pytest

from protocol import load_protocol
from protocol.session_data import read_rows
from study.session import SessionConfig, run_session
from study.trackers import TrackerLinkLost
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.bids_validation import errors, strict_json, validate
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display
RATE_HZ = 500


def _config(root, tracker: str, *, break_prob: float = 0.0) -> dict:
    data = small_protocol_dict(method="staircase", trials=4, break_prob=break_prob)
    data["tracker"].update(drift_correct_every_n_trials=2, sampling_rate_hz=RATE_HZ)
    return dict(
        loaded=load_protocol(write_toml(data, root / "small.toml")),
        data_dir=root / "data",
        participant="v01",
        session="1",
        tracker=tracker,
        observer="parametric",
        seed=7,
        simulated_clock=True,
        quiet=True,
    )


@pytest.fixture(scope="module")
def sim_dataset(virtual_x, tmp_path_factory):
    root = tmp_path_factory.mktemp("bids_sim")
    # Fixation breaks: aborted rows (n/a answers, an abort_reason) are checked against Levels.
    result = run_session(SessionConfig(**_config(root, "sim", break_prob=0.3)))
    assert result.completed
    rows = read_rows(result.paths.beh_tsv)
    assert any(r["abort_reason"] == "fixation_break" for r in rows)
    return result


@pytest.fixture(scope="module")
def eyelink_dataset(virtual_x, tmp_path_factory):
    """Run 1 with a 1.6 deg drift check (recalibration) and the link lost at trial 4; run 2."""
    root = tmp_path_factory.mktemp("bids_eyelink")
    config = _config(root, "eyelink-emulated")
    faults = {"drift_offsets_deg": [1.6], "link_lost_at_trial": 4}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULTS_ENV, json.dumps(faults))
        with pytest.raises(TrackerLinkLost):
            run_session(SessionConfig(**config))
    result = run_session(SessionConfig(**config, resume=True))
    assert result.completed
    return result


@pytest.mark.parametrize("dataset", ["sim_dataset", "eyelink_dataset"])
def test_the_official_validator_finds_no_error(dataset, request):
    result = request.getfixturevalue(dataset)
    report = validate(result.paths.data_dir)
    assert errors(report) == []
    assert report["summary"]["subjects"] == ["v01"]
    # participants.tsv lists the participant once (the emulated session ran twice)
    participants = result.paths.data_dir / "participants.tsv"
    assert participants.read_text() == "participant_id\nsub-v01\n"
    # What the kit can know is there: the data root's README and the events sidecar's task and
    # instructions (the authors and licence are the lab's to add).
    warned = {(i.get("code"), i.get("subCode")) for i in report["issues"]["issues"]}
    assert ("README_FILE_MISSING", None) not in warned
    # Every beh.tsv column is described where BIDS looks: a top-level key of the sidecar.
    undefined = {sub for code, sub in warned if code == "TSV_ADDITIONAL_COLUMNS_UNDEFINED"}
    assert not undefined, sorted(undefined)
    beh = {
        i.get("subCode")
        for i in report["issues"]["issues"]
        if i.get("code") == "SIDECAR_KEY_RECOMMENDED" and "_beh.tsv" in str(i.get("location"))
    }
    assert "Instructions" not in beh, beh
    events = {
        i.get("subCode")
        for i in report["issues"]["issues"]
        if i.get("code") == "SIDECAR_KEY_RECOMMENDED" and "_events.tsv" in str(i.get("location"))
    }
    assert not events & {"TaskName", "TaskDescription", "Instructions"}, events


@pytest.mark.parametrize("dataset", ["sim_dataset", "eyelink_dataset"])
def test_eye_tracking_files_follow_bep020_and_json_is_strict(dataset, request):
    paths = request.getfixturevalue(dataset).paths
    for path in paths.data_dir.rglob("*.json"):
        strict_json(path)
    physio = strict_json(paths.physio_json)
    assert paths.physio_tsv_gz.name.endswith("_recording-eye1_physio.tsv.gz")
    assert physio["PhysioType"] == "eyetrack" and physio["RecordedEye"] == "right"
    assert physio["SamplingFrequency"] == RATE_HZ  # the tracker's rate, not the display's
    assert physio["Columns"][:3] == ["timestamp", "x_coordinate", "y_coordinate"]
    assert all(column in physio for column in physio["Columns"])
    events = strict_json(paths.events_json)
    assert set(events["StimulusPresentation"]) >= {
        "ScreenDistance",
        "ScreenOrigin",
        "ScreenResolution",
        "ScreenSize",
    }
