"""The process service when its generator raises or gets a Ctrl-C, with the real tiny generator
in a generator process whose ``TrialImages.make`` raises for chosen seeds
(``tests/study/service_faults.py``): an exception that is not a ``FoveaError`` (a CUDA
out-of-memory) restarts the process like a crash, within the restart limit, and fails the request
with the retryable ``GeneratorCrashed``; a ``FoveaError`` fails the request for good and the
process goes on; SIGINT (Ctrl-C reaches the whole process group) leaves the process serving.

The tests share one service and run in order: the last one uses up its restarts."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from study.service import (
    GenerationFailed,
    GeneratorCrashed,
    ProcessGenerationService,
    ServiceUnavailable,
)
from tests.study import service_faults
from tests.study.test_service import GEOMETRY, SIZE, foveated, full, wait_dispatched


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("study.service.child.worker_main", service_faults.worker_main)
        patch.setenv(service_faults.MARKER_ENV, str(folder / "oom-raised"))
        svc = ProcessGenerationService(
            model="tiny",
            device="cpu",
            geometry=GEOMETRY,
            num_steps=50,
            heartbeat_timeout_s=5.0,
            event_log=folder / "events.jsonl",
            max_restarts=2,
        )
        svc.start()
        svc.log_path = folder / "events.jsonl"
        yield svc
        svc.close()


def events(svc, name: str) -> list[dict]:
    lines = svc.log_path.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


def test_a_runtime_error_restarts_the_generator_and_the_retry_succeeds(service):
    pid = service.child_pid
    ticket = service.submit(foveated(service_faults.OOM_ONCE_SEED))
    assert ticket.wait(60)
    with pytest.raises(GeneratorCrashed, match="raised RuntimeError: CUDA out of memory") as info:
        ticket.result()
    assert info.value.retryable and "re-queue the trial" in str(info.value)
    assert service.wait_ready(300), service.stats()
    assert service.child_pid not in (None, pid)
    assert service.stats()["restarts"] == 1 and service.stats()["failed"] == 0
    # the re-queued trial's request: the new process generates it
    again = service.submit(foveated(service_faults.OOM_ONCE_SEED))
    assert again.wait(60) and again.result().image.shape == (SIZE, SIZE, 3)
    crash = events(service, "crash")[-1]
    assert "CUDA out of memory" in crash["message"] and crash["pid"] == pid
    assert "Traceback" in events(service, "error")[-1]["traceback"]


def test_a_fovea_error_fails_the_request_and_the_process_goes_on(service):
    pid, restarts = service.child_pid, service.stats()["restarts"]
    ticket = service.submit(foveated(service_faults.REFUSED_SEED))
    assert ticket.wait(60)
    with pytest.raises(GenerationFailed, match="outside the image") as info:
        ticket.result()
    assert not info.value.retryable
    assert service.child_pid == pid and service.stats()["restarts"] == restarts
    assert service.submit(foveated(1)).wait(60)


def test_ctrl_c_does_not_reach_the_generator(service):
    """SIGINT to the generator process, busy and idle: it goes on serving, no crash."""
    pid, crashes = service.child_pid, service.stats()["crashes"]
    busy = service.submit(full(21))
    wait_dispatched(busy)
    os.kill(pid, signal.SIGINT)
    assert busy.wait(60) and busy.result().image.shape == (SIZE, SIZE, 3)
    os.kill(pid, signal.SIGINT)  # idle
    time.sleep(0.3)
    assert service.submit(foveated(22)).wait(60)
    assert service.child_pid == pid and service.stats()["crashes"] == crashes


def test_runtime_errors_beyond_the_restart_limit_stop_the_service(service):
    """max_restarts = 2, one used: the next error restarts the process, the one after gives up
    (``ServiceUnavailable``), as after crashes."""

    def fails_as_crashed():
        ticket = service.submit(foveated(service_faults.OOM_SEED))
        assert ticket.wait(60)
        with pytest.raises(GeneratorCrashed):
            ticket.result()

    fails_as_crashed()
    assert service.wait_ready(300) and service.stats()["restarts"] == 2
    fails_as_crashed()
    deadline = time.perf_counter() + 30
    while service.state != "broken" and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert service.state == "broken" and service.stats()["restarts"] == 2
    with pytest.raises(ServiceUnavailable, match="failed 3 times"):
        service.submit(foveated(1))


def test_a_restart_that_dies_while_starting_is_tried_again(tmp_path, monkeypatch):
    """The generator killed, and its replacement dying while it loads: the service gave up at
    once ('the generator process exited during start'), a session stopping after one restart
    where the documentation promises up to max_restarts. A restart that fails to start counts
    as one more failure and is tried again within the limit; the service then serves."""
    monkeypatch.setattr("study.service.child.worker_main", service_faults.worker_main)
    marker = tmp_path / "die-while-starting"
    monkeypatch.setenv(service_faults.START_FAIL_ENV, str(marker))
    svc = ProcessGenerationService(
        model="tiny",
        device="cpu",
        geometry=GEOMETRY,
        num_steps=2,
        event_log=tmp_path / "events.jsonl",
        max_restarts=3,
    )
    svc.start()
    svc.log_path = tmp_path / "events.jsonl"
    try:
        marker.touch()  # the next generator process dies before it is ready
        os.kill(svc.child_pid, signal.SIGKILL)
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline and svc.state != "broken":
            if svc.state == "ready" and svc.stats()["restarts"] == 2:
                break
            time.sleep(0.05)
        assert svc.state == "ready" and svc.stats()["restarts"] == 2 and not marker.exists()
        (failed,) = events(svc, "restart_failed")
        assert "exited during start (exit status 7)" in failed["message"]
        ticket = svc.submit(foveated(1))
        assert ticket.wait(60) and ticket.result().image.shape == (SIZE, SIZE, 3)
    finally:
        svc.close()
