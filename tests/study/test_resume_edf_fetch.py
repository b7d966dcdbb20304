"""What the operator reads when a ``--resume`` after a lost EyeLink link fetches (or cannot fetch)
the interrupted run's EDF from the Host PC: a real emulated session loses its link at trial 2,
then a resume runs the rest of the session."""

from __future__ import annotations

import json

import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from study.trackers import TrackerLinkLost
from study.trackers.emulated_host import FAULTS_ENV
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def _config(root, **extra) -> SessionConfig:
    data = small_protocol_dict(method="staircase", trials=4, break_prob=0.0)
    data["tracker"].update(sampling_rate_hz=500)
    loaded = load_protocol(write_toml(data, root / "small.toml"))
    values = dict(
        loaded=loaded,
        data_dir=root / "data",
        participant="sim01",
        tracker="eyelink-emulated",
        observer="parametric",
        seed=4,
        simulated_clock=True,
    )
    values.update(extra)
    return SessionConfig(**values)


def _lost_then_resumed(root, *, resume_faults: dict):
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULTS_ENV, json.dumps({"link_lost_at_trial": 2}))
        with pytest.raises(TrackerLinkLost):
            run_session(_config(root), log=lines.append)
        patch.setenv(FAULTS_ENV, json.dumps(resume_faults))
        lines.clear()
        result = run_session(_config(root, resume=True), log=lines.append)
    sidecar = json.loads(result.paths.beh_json.read_text())
    return result, sidecar, lines


def test_a_resume_says_it_fetched_the_interrupted_runs_edf(virtual_x, tmp_path):
    result, sidecar, lines = _lost_then_resumed(tmp_path, resume_faults={})
    first = sidecar["runs"][0]
    assert result.completed and first["edf_fetched_by_run"] == 2
    assert (result.paths.eyetrack_dir / first["edf_file"]).is_file()
    assert f"{result.paths.session_dir}: fetched {first['edf_file']} from the Host PC" in lines
    assert not any("warning" in line for line in lines)


def test_a_resume_that_cannot_fetch_the_interrupted_runs_edf_warns_at_its_end(virtual_x, tmp_path):
    # The resume's first transfer (run 1's file) is cut by a link error; its own file comes over.
    result, sidecar, lines = _lost_then_resumed(tmp_path, resume_faults={"receive_codes": [-6]})
    first, second = sidecar["runs"]
    assert result.completed and "edf_file" not in first and second["edf_file"]
    host = f"{first['edf_name']}.EDF"
    (warning,) = [line for line in lines if "warning" in line]
    assert f"the eye-tracking file {host} of run 1 (" in warning
    assert "still only on the Host PC" in warning
    assert warning.endswith("--tracker eyelink-emulated --resume")
    assert lines.index(warning) > max(
        i for i, line in enumerate(lines) if line.startswith("  trial")
    )
