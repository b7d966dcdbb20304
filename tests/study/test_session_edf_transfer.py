"""A whole emulated EyeLink session (``eyelink-emulated``) whose final EDF transfer is cancelled
(``receiveDataFile`` returns 0): the sidecar does not record the file, the operator is told which
file stays on the Host PC and the command that fetches it (also with ``--quiet``), and ``--resume`` of the completed
session fetches it over a transfer-only link (a failed fetch says so and the next one gets it).
The transfer runs behind a neutral "saving" screen, and a window that cannot draw it any more
does not stop the transfer."""

from __future__ import annotations

import json

import pytest

from protocol import load_protocol
from protocol.run_settings import InstructionSettings
from study.presenter import Presenter
from study.session import SessionConfig, run_session
from study.trackers.emulated import HOST_DIR_NAME
from study.trackers.emulated_host import FAULTS_ENV
from study.trackers.pylink_emulator import EmulatedEyeLink
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def _config(root, **extra) -> SessionConfig:
    data = small_protocol_dict(method="staircase", trials=2, break_prob=0.0)
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


def _local_edfs(eyetrack):
    return sorted(p.name for p in eyetrack.iterdir() if p.is_file() and ".edf" in p.name.lower())


def _run(config, *, faults: dict | None, patch: pytest.MonkeyPatch):
    lines: list[str] = []
    if faults is None:
        patch.delenv(FAULTS_ENV, raising=False)
    else:
        patch.setenv(FAULTS_ENV, json.dumps(faults))
    result = run_session(config, log=lines.append)
    sidecar = json.loads(result.paths.beh_json.read_text())
    return result, sidecar, lines


@pytest.fixture(scope="module")
def cancelled(virtual_x, tmp_path_factory):
    """Run 1 (its transfer cancelled, and the first link samples failing); then three
    ``--resume``s: the fetch fails, the fetch works, nothing left to fetch."""
    root = tmp_path_factory.mktemp("cancelled")
    shots = root / "shots"
    config = _config(root, screenshots_dir=shots, quiet=True)  # the warning still shows
    seen: list[bool] = []  # at each transfer: was the saving screen drawn already?
    receive = EmulatedEyeLink.receiveDataFile

    def watched(self, src, dest):
        seen.append((shots / "saving.png").exists())
        return receive(self, src, dest)

    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EmulatedEyeLink, "receiveDataFile", watched)
        faults = {"receive_codes": [0], "failing_calls": {"getNewestSample": 2}}
        out["run"] = _run(config, faults=faults, patch=patch)
        eyetrack = out["run"][0].paths.eyetrack_dir
        out["local_after_run"] = _local_edfs(eyetrack)
        out["seen"] = list(seen)
        resume = _config(root, resume=True)
        out["failed_fetch"] = _run(
            resume, faults={"failing_calls": {"receiveDataFile": 1}}, patch=patch
        )
        out["local_after_failed_fetch"] = _local_edfs(eyetrack)
        out["fetch"] = _run(resume, faults=None, patch=patch)
        out["nothing_left"] = _run(resume, faults=None, patch=patch)
    out["eyetrack"] = eyetrack
    return out


def test_a_cancelled_final_transfer_is_not_recorded_and_the_operator_is_told(cancelled):
    result, sidecar, lines = cancelled["run"]
    assert result.completed and result.status == "completed"  # link-sample errors: no crash
    (run,) = sidecar["runs"]
    assert "edf_file" not in run
    assert run["tracker"]["close_steps"]["receiveDataFile"] == "failed: cancelled (code 0)"
    assert cancelled["local_after_run"] == []  # no cut copy, no .part
    host = f"{run['edf_name']}.EDF"
    assert (cancelled["eyetrack"] / HOST_DIR_NAME / host.upper()).exists()
    (warning,) = [line for line in lines if host in line]
    assert "of run 1 was not received" in warning and "stays on the Host PC" in warning
    assert "fovea simulate" in warning and "--participants 1" in warning
    assert warning.endswith("--tracker eyelink-emulated --resume")


def test_the_transfer_runs_behind_the_saving_screen(cancelled):
    assert cancelled["seen"] == [True]


def test_a_resume_of_the_completed_session_that_cannot_fetch_says_so(cancelled):
    result, sidecar, lines = cancelled["failed_fetch"]
    assert result.completed and result.status.startswith("already complete; 1 eye-tracking")
    (run,) = sidecar["runs"]
    assert "edf_file" not in run and "scripted" in run["edf_fetch_error"]
    assert cancelled["local_after_failed_fetch"] == []
    assert any("still only on the Host PC" in line and "--resume" in line for line in lines)


def test_a_resume_of_the_completed_session_fetches_the_missing_edf(cancelled):
    result, sidecar, lines = cancelled["fetch"]
    assert result.completed and result.status == "already complete"
    (run,) = sidecar["runs"]  # no new run: no window, no new Host file
    assert run["edf_file"] == run["edf_local_name"] and run["edf_fetched_utc"]
    assert "edf_fetch_error" not in run and "edf_fetched_by_run" not in run
    host = cancelled["eyetrack"] / HOST_DIR_NAME / f"{run['edf_name']}.EDF".upper()
    local = cancelled["eyetrack"] / run["edf_file"]
    assert local.read_bytes() == host.read_bytes()
    assert len(list(host.parent.glob("*.EDF"))) == 1
    assert any(f"fetched {run['edf_name']}.EDF" in line for line in lines)
    result, sidecar, lines = cancelled["nothing_left"]
    assert result.status == "already complete" and not any("fetch" in line for line in lines)


def test_a_window_that_cannot_draw_the_saving_screen_does_not_stop_the_transfer(
    virtual_x, tmp_path, monkeypatch
):
    draw_text = Presenter.draw_text

    def broken(self, text, **kw):
        if text == InstructionSettings().saving:
            raise RuntimeError("the window is gone (injected)")
        return draw_text(self, text, **kw)

    monkeypatch.setattr(Presenter, "draw_text", broken)
    result, sidecar, lines = _run(_config(tmp_path), faults={}, patch=monkeypatch)
    assert result.completed
    (run,) = sidecar["runs"]
    assert run["edf_file"] == run["edf_local_name"]
    assert (result.paths.eyetrack_dir / run["edf_file"]).stat().st_size > 0
    assert any("the saving screen failed" in line for line in lines)
