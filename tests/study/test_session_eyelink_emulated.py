"""A whole simulated session through the EyeLink tracker's real code path (``eyelink-emulated``):
drift checks every two trials, a drift check above the limit that forces a recalibration, a link
lost at trial 6 that stops the session, and a resume that completes it."""

from __future__ import annotations

import json
import shutil

import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from study.trackers import TrackerLinkLost
from study.trackers.edf_text import read_edf_text
from study.trackers.emulated import HOST_DIR_NAME
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display
RATE_HZ = 500


def _local_edfs(data_dir):
    """The EDF copies the session received (anywhere under the data root, not the Host's)."""
    return sorted(
        p
        for p in data_dir.rglob("*")
        if p.suffix.lower() == ".edf" and HOST_DIR_NAME not in p.parts
    )


@pytest.fixture(scope="module")
def sessions(virtual_x, tmp_path_factory):
    """Run 1 (faults: a 1.6 deg drift check, the link lost at trial 6), then the resume."""
    root = tmp_path_factory.mktemp("emulated")
    data = small_protocol_dict(method="staircase", trials=6, break_prob=0.0)
    data["tracker"].update(drift_correct_every_n_trials=2, sampling_rate_hz=RATE_HZ)
    loaded = load_protocol(write_toml(data, root / "small.toml"))
    config = dict(
        loaded=loaded,
        data_dir=root / "data",
        participant="em01",
        session="1",
        tracker="eyelink-emulated",
        observer="parametric",
        seed=5,
        simulated_clock=True,
        quiet=True,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            FAULTS_ENV, json.dumps({"drift_offsets_deg": [0.3, 1.6], "link_lost_at_trial": 6})
        )
        with pytest.raises(TrackerLinkLost) as lost:
            run_session(SessionConfig(**config))
    eyetrack = next((root / "data").rglob("eyetrack"))
    host_after_run1 = root / "host_after_run1"
    shutil.copytree(eyetrack / HOST_DIR_NAME, host_after_run1)
    local_after_run1 = _local_edfs(root / "data")
    resumed = run_session(SessionConfig(**config, resume=True))
    return {
        "lost": lost.value,
        "eyetrack": eyetrack,
        "data": root / "data",
        "host_after_run1": host_after_run1,
        "local_after_run1": local_after_run1,
        "resumed": resumed,
    }


def test_link_loss_stops_the_session_and_the_resume_completes_it(sessions):
    assert "stays on the Host PC" in str(sessions["lost"])
    # The operator is given the command that continues (same tracker, data folder, ...), as
    # after a failed transfer; it said only "continue with --resume".
    assert str(sessions["lost"]).endswith(
        f"--data {sessions['data']} --session 1 --observer parametric "
        "--tracker eyelink-emulated --resume"
    )
    assert sessions["local_after_run1"] == []  # nothing could be received over a lost link
    resumed = sessions["resumed"]
    assert resumed.completed and resumed.n_responses == 6


def test_the_interrupted_run_is_on_the_host_with_every_trial_and_no_gap(sessions):
    (host_file,) = sessions["host_after_run1"].glob("*.EDF")
    edf = read_edf_text(host_file)
    assert edf.texts("TRIALID") == [f"TRIALID {n}" for n in range(1, 7)]
    # Drift checks in trials 3 and 5 (after TRIALID, as SR's templates do); the second (1.6 deg)
    # forced a recalibration.
    assert len(edf.texts("DRIFTCORRECT")) == 2
    assert [t.split()[6] for t in edf.texts("FOVEA_DRIFT_CHECK")] == ["0", "1"]  # recalibrate
    assert len(edf.texts("!CAL VALIDATION")) == 2
    times = edf.sample_times()
    period_ms = 1000.0 / RATE_HZ
    assert all(b - a == period_ms for a, b in zip(times, times[1:], strict=False))
    # Samples right up to the link loss at trial 6 (the recording restarted after each check).
    assert times[-1] >= edf.message_time("TRIALID 6") - period_ms
    for n in (3, 4, 5):
        start = edf.message_time(f"TRIALID {n}")
        assert edf.sample_times(start, start + 200.0), f"no samples after TRIALID {n}"


def test_the_resume_fetches_the_interrupted_runs_edf_and_receives_its_own(sessions):
    local = _local_edfs(sessions["data"])
    assert [p.name.split("_")[2] for p in local] == ["run-1", "run-2"]
    assert all(p.parent.parts[-4:-1] == ("sourcedata", "sub-em01", "ses-1") for p in local)
    run1, run2 = (read_edf_text(p) for p in local)
    assert run1.texts("TRIALID") == [f"TRIALID {n}" for n in range(1, 7)]  # fetched on resume
    assert run2.texts("TRIAL_RESULT") and set(run2.texts("TRIAL_RESULT")) <= {
        "TRIAL_RESULT 0",
        "TRIAL_RESULT 1",
    }
    sidecar = json.loads(sessions["resumed"].paths.beh_json.read_text())
    first, second = sidecar["runs"]
    assert first["edf_file"] == local[0].name and first["edf_fetched_by_run"] == 2
    assert second["edf_file"] == local[1].name
    assert first["edf_name"] != second["edf_name"]


def test_each_run_keeps_its_own_host_edf(sessions):
    host_files = sorted(p.name for p in (sessions["eyetrack"] / HOST_DIR_NAME).glob("*.EDF"))
    assert len(host_files) == 2
