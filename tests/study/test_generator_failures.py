"""A generator that fails for good mid-session (it raises, the process service gives up, it
hangs): the session stops with one line saying what happened and that ``--resume`` continues,
every logged trial is kept, the exit status is non-zero, and the resume completes the session.

Faults are injected in this process: ``TrialImages.make`` (the thread service's generator)
raises or blocks, or a wrapper service refuses requests as the process service does once it
has given up restarting its generator."""

from __future__ import annotations

import json
import threading

import pytest

from fovea_cli.main import main
from protocol import load_protocol
from protocol.geometry import stimulus_geometry
from protocol.session_data import read_rows
from study.datalog import SessionPaths
from study.service.errors import ServiceUnavailable
from study.service.images import TrialImages
from study.service.start import start_service
from study.session import run_session
from study.session_window import GenerationStopped
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

pytestmark = pytest.mark.display
FAIL_AFTER = 3  # trials' foveated images made before the fault


def _protocol(tmp_path, **generation):
    data = small_protocol_dict(trials=4)
    data["generation"].update(speculative=False, **generation)
    return write_toml(data, tmp_path / "p.toml")


def _paths(data_dir) -> SessionPaths:
    return SessionPaths(data_dir=data_dir, participant="sim01", session="1", task="fovea2afc")


def _fault(monkeypatch, action):
    """``TrialImages.make`` runs ``action()`` instead of the trial's foveated image once
    ``FAIL_AFTER`` have been made (warm-ups, with no gaze, do not count)."""
    make = TrialImages.make
    made = {"n": 0}

    def faulty(self, request, **kw):
        if request.kind == "foveated" and request.gaze_px is not None:
            made["n"] += 1
            if made["n"] > FAIL_AFTER:
                action()
        return make(self, request, **kw)

    monkeypatch.setattr(TrialImages, "make", faulty)


def _oom():
    raise RuntimeError("CUDA out of memory (injected)")


def _last_run(paths: SessionPaths) -> dict:
    return json.loads(paths.beh_json.read_text(encoding="utf-8"))["runs"][-1]


def test_a_generator_that_raises_stops_the_session_with_one_line_and_resume_completes(
    virtual_x, tmp_path, monkeypatch, capsys
):
    protocol, data = _protocol(tmp_path), tmp_path / "data"
    args = ["simulate", str(protocol), "--participants", "1", "--data", str(data), "--quiet"]
    with monkeypatch.context() as patch:
        _fault(patch, _oom)
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "generator failed" in lines[0] and "CUDA out of memory" in lines[0]
    assert "--resume" in lines[0]
    paths = _paths(data)
    logged = read_rows(paths.beh_tsv)
    assert len(logged) == FAIL_AFTER  # every trial before the fault is kept
    assert _last_run(paths)["status"].startswith("stopped: the generator failed")
    assert not json.loads(paths.beh_json.read_text(encoding="utf-8")).get("completed")

    assert main([*args, "--resume"]) == 0
    rows = read_rows(paths.beh_tsv)
    assert rows[: len(logged)] == logged
    assert json.loads(paths.beh_json.read_text(encoding="utf-8"))["completed"]
    assert _last_run(paths)["first_trial"] == FAIL_AFTER + 1


class _GivesUp:
    """A started service that refuses requests after ``n`` submits, as the process service does
    once it has given up restarting its generator (``ServiceUnavailable``)."""

    def __init__(self, service, n: int) -> None:
        self._service, self._left = service, n
        self.info = service.info

    def submit(self, request):
        self._left -= 1
        if self._left < 0:
            raise ServiceUnavailable(
                "the generation service is broken: the generator process failed 4 times "
                "within 10 minutes"
            )
        return self._service.submit(request)

    def __getattr__(self, name):
        return getattr(self._service, name)


def _service(protocol_path):
    protocol = load_protocol(protocol_path).protocol
    geometry = stimulus_geometry(protocol)
    return start_service(protocol, geometry=geometry, scenes="pool", log=lambda *a: None)


def test_a_service_that_gave_up_stops_the_session_resumably(virtual_x, tmp_path):
    protocol = _protocol(tmp_path)
    service = _service(protocol)
    try:
        with pytest.raises(GenerationStopped, match="failed 4 times.*--resume"):
            run_session(
                simulated_session(protocol, tmp_path / "data"), service=_GivesUp(service, 5)
            )
    finally:
        service.close()
    paths = _paths(tmp_path / "data")
    assert read_rows(paths.beh_tsv)  # the trials before it are kept
    assert "failed 4 times" in _last_run(paths)["status"]


def test_a_hung_generator_stops_the_session_instead_of_freezing_the_screen(
    virtual_x, tmp_path, monkeypatch
):
    import study.trial.fixation as fixation

    monkeypatch.setattr(fixation, "GIVE_UP_MIN_S", 1.0)
    # Every image misses the deadline and is shown late: only the hang stops a trial.
    protocol = _protocol(tmp_path, deadline_s=0.01, max_deadline_misses=1)
    release = threading.Event()
    _fault(monkeypatch, lambda: release.wait(60))
    service = _service(protocol)
    try:
        with pytest.raises(GenerationStopped, match="not ready 1 s after.*hangs.*--resume"):
            run_session(simulated_session(protocol, tmp_path / "data"), service=service)
    finally:
        release.set()
        service.close()
    paths = _paths(tmp_path / "data")
    assert len(read_rows(paths.beh_tsv)) == FAIL_AFTER
    assert "hangs" in _last_run(paths)["status"]
