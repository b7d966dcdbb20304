"""The process generation service with the real tiny generator: results and timings, twin cache,
speculation, cancellation, the window's frame rate while generating, and recovery from a killed
or frozen generator process.

One service (128 px images, 50 sampler steps so that a request lasts long enough to be killed or
cancelled mid-way) is shared by the module; its start and each restart cost a model load.
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from generator import LayoutSpec, StimulusGeometry, default_display
from study.generation import GenerationRequest
from study.service import (
    GenerationCancelled,
    GeneratorCrashed,
    ProcessGenerationService,
    ServiceUnavailable,
)

SIZE = 128
GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=SIZE, image_height_px=SIZE)
CENTRE = (SIZE / 2, SIZE / 2)


def foveated(seed: int, gaze=CENTRE) -> GenerationRequest:
    return GenerationRequest(
        kind="foveated",
        seed=seed,
        conditioning=0,
        spec=LayoutSpec(mode="acuity", strength=2.0),
        gaze_px=gaze,
        deadline_s=30.0,
    )


def full(seed: int) -> GenerationRequest:
    return GenerationRequest(
        kind="full", seed=seed, conditioning=0, spec=LayoutSpec(mode="full"), gaze_px=None
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    log = tmp_path_factory.mktemp("service") / "events.jsonl"
    svc = ProcessGenerationService(
        model="tiny",
        device="cpu",
        geometry=GEOMETRY,
        num_steps=50,
        heartbeat_timeout_s=3.0,
        event_log=log,
        twin_cache_size=8,
    )
    info = svc.start()
    print("service info:", info)
    svc.log_path = log
    yield svc
    svc.close()


def events(svc) -> list[dict]:
    return [json.loads(line) for line in svc.log_path.read_text().splitlines()]


def wait_dispatched(ticket, timeout_s: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while ticket.dispatched_s is None:
        assert time.perf_counter() < deadline, "request was never dispatched"
        time.sleep(0.005)


def test_results_timings_and_the_twin_cache(service):
    print("seeds 1, 2")
    ticket = service.submit(foveated(1))
    assert ticket.wait(60)
    result = ticket.result()
    assert result.image.shape == (SIZE, SIZE, 3) and result.image.dtype == np.uint8
    assert result.tokens < result.tokens_full == (SIZE // 16) ** 2
    t = ticket.timings
    print("timings:", t)
    assert t["generation_s"] > 0 and t["queue_wait_s"] >= 0 and t["transfer_s"] >= 0
    assert t["latency_s"] == pytest.approx(
        t["queue_wait_s"] + t["generation_s"] + t["transfer_s"], abs=0.05
    )
    assert t["deadline_missed"] is False
    assert result.sidecar["service"]["pid"] == service.child_pid

    twin = service.submit(full(2))
    assert twin.wait(60) and not twin.cache_hit
    again = service.submit(full(2))
    assert again.done() and again.cache_hit  # finished at submit: no generation
    assert np.array_equal(again.result().image, twin.result().image)
    service.prefetch_twin(seed=3, conditioning=0)
    joined = service.submit(full(3))  # waits on the prefetch instead of generating twice
    assert joined.wait(60) and not joined.cache_hit
    assert service.cached_twin(seed=3, conditioning=0) is joined.result()


def test_speculation_is_kept_within_tolerance_and_replaced_outside(service):
    print("seeds 11, 12")
    spec = service.submit_speculative(foveated(11, gaze=CENTRE))
    kept = service.resolve(spec, gaze_px=(CENTRE[0] + 2, CENTRE[1]), tolerance_deg=0.5)
    assert kept is spec and kept.reused_speculative
    assert 0 < kept.gaze_error_deg < 0.1  # 2 px at ~45 px/deg
    assert kept.wait(60) and kept.result().sidecar["layout"]["gaze_px"] == list(CENTRE)
    assert kept.latency_from_resolve_s <= kept.latency_s

    spec = service.submit_speculative(foveated(12, gaze=CENTRE))
    measured = (CENTRE[0] + 60.0, CENTRE[1])  # ~1.3 deg off target
    fresh = service.resolve(spec, gaze_px=measured, tolerance_deg=0.5)
    assert fresh is not spec and fresh.replaces is spec and fresh.reused_speculative is False
    assert fresh.gaze_error_deg > 1.0
    assert fresh.wait(60) and fresh.result().sidecar["layout"]["gaze_px"] == list(measured)
    assert spec.done()  # cancelled (or finished before the gaze was measured)


def test_cancellation_drops_queued_and_aborts_running_requests(service):
    print("seeds 31, 32, 33")
    before = service.stats()["generated"]
    running = service.submit(foveated(31))
    queued = service.submit(foveated(32))
    after = service.submit(foveated(33))
    wait_dispatched(running)
    time.sleep(0.05)
    queued.cancel()
    assert queued.done()
    with pytest.raises(GenerationCancelled):
        queued.result()
    cancelled_at = time.perf_counter()
    running.cancel()
    assert running.done() and running.cancelled
    with pytest.raises(GenerationCancelled):
        running.result()
    assert after.wait(60)
    after.result()
    # The running request was aborted at a sampler step, not run to its end: the next one
    # started well before a whole generation (measured by `after` itself) could have passed.
    assert after.started_s - cancelled_at < 0.5 * after.timings["generation_s"] + 0.1
    assert service.stats()["generated"] == before + 1
    assert any(e["event"] == "aborted" for e in events(service))


def test_frame_loop_keeps_its_rate_while_generating(service, virtual_x):
    """Flip intervals with and without generation (Xvfb has no vsync: the loop paces itself)."""
    from psychopy import logging as pp_logging
    from psychopy import visual

    from study.frames import FrameTimer

    pp_logging.console.setLevel(pp_logging.ERROR)
    win = visual.Window(
        size=(400, 300),
        units="pix",
        fullscr=False,
        waitBlanking=False,
        checkTiming=False,
        color=(0, 0, 0),
    )
    try:
        dot = visual.Circle(win, radius=6, fillColor=(1, 1, 1), lineColor=None)
        loop = FrameTimer(refresh_hz=60.0)

        def flip(phase: str) -> None:
            loop.wait()
            win.flip()
            loop.flipped(phase)

        for _ in range(10):
            flip("warmup")
        start = loop.mark()
        for _ in range(90):
            dot.draw()
            flip("idle")
        idle = loop.stats(start=start + 1)
        start = loop.mark()
        ticket, finished, seed = service.submit(foveated(40)), 0, 40
        generation_s = float("inf")
        frames = 0
        # At least 90 frames, and on until a generation has finished (a loaded machine, or the
        # generator's nice level, can stretch one beyond 1.5 s); at most a minute.
        while frames < 90 or (finished == 0 and frames < 3600):
            frames += 1
            if ticket.done():  # keep the generator busy all the time
                ticket.result()
                generation_s = min(generation_s, ticket.timings["generation_s"])
                finished += 1
                seed += 1
                ticket = service.submit(foveated(seed) if seed % 2 else full(seed))
            dot.draw()
            flip("generating")
        busy = loop.stats(start=start + 1)
        ticket.wait(60)
    finally:
        win.close()
    print(
        "idle:", idle, "\ngenerating:", busy, f"\n{finished} generations finished during the loop"
    )
    assert finished >= 1
    period = loop.period_s
    report = f"idle {idle}, generating {busy}"
    assert idle.interval_median_s == pytest.approx(period, rel=0.25), report
    assert busy.interval_median_s == pytest.approx(period, rel=0.25), report
    # Generous: a shared, loaded CI machine drops frames anyway. A loop that waited for the
    # generator would stall for whole generations (each request here lasts many frames).
    assert busy.interval_max_s < 0.75 * generation_s, (
        f"{report}; one generation {generation_s:.3f} s"
    )
    assert busy.dropped_frames / busy.frames <= idle.dropped_frames / idle.frames + 0.35, report


def test_a_killed_generator_fails_the_ticket_and_the_service_recovers(service):
    print("seeds 51, 52, 53")
    pid = service.child_pid
    victim = service.submit(full(51))
    waiting = service.submit(foveated(52))
    wait_dispatched(victim)
    time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    assert victim.wait(30)
    with pytest.raises(GeneratorCrashed, match="killed by SIGKILL") as info:
        victim.result()
    assert info.value.retryable and "re-queue the trial" in str(info.value)
    assert service.wait_ready(300), service.stats()
    assert service.child_pid not in (None, pid)
    assert waiting.wait(60) and waiting.result().image.shape == (SIZE, SIZE, 3)  # queued: kept
    again = service.submit(full(53))
    assert again.wait(60) and again.result().tokens == (SIZE // 16) ** 2
    kinds = [e["event"] for e in events(service)]
    assert "crash" in kinds and "restart" in kinds
    assert service.stats()["restarts"] == 1


@pytest.mark.slow
def test_a_frozen_generator_is_detected_by_its_heartbeat(service):
    print("seed 61")
    pid = service.child_pid
    victim = service.submit(foveated(61))
    wait_dispatched(victim)
    os.kill(pid, signal.SIGSTOP)  # frozen: alive, but no heartbeat and no progress
    assert victim.wait(service.heartbeat_timeout_s + 20)
    with pytest.raises(GeneratorCrashed, match="stopped responding"):
        victim.result()
    assert service.wait_ready(300)
    assert service.submit(foveated(62)).wait(60)
    assert any(e["event"] == "hang" for e in events(service))


def test_the_stall_timeout_covers_the_slowest_warm_up_step(service):
    """A model whose step takes minutes here would otherwise be restarted as hung on every
    request: the stall timeout grows with the warm-up's slowest sampler step."""
    from study.service.process import STALL_STEPS

    slowest_step_s = service.info["warmup_step_s_max"]
    assert slowest_step_s > 0
    assert service.info["stall_timeout_s"] == max(120.0, STALL_STEPS * slowest_step_s)
    assert service.stall_timeout_s == service.info["stall_timeout_s"]


def test_a_closed_service_refuses_requests():
    svc = ProcessGenerationService(model="tiny", device="cpu", geometry=GEOMETRY, num_steps=1)
    with pytest.raises(RuntimeError, match="start"):
        svc.submit(foveated(1))
    svc.close()
    with pytest.raises(ServiceUnavailable, match="closed"):
        svc.submit(foveated(1))


def test_a_start_without_progress_fails_naming_its_stage():
    """The start timeout counts from the last sign of progress (the model loaded, a warm-up
    step), so a large model's long warm-up is not cut short; a 0.2 s limit fails while the
    model loads, and says so."""
    quick = ProcessGenerationService(
        model="tiny", device="cpu", geometry=GEOMETRY, num_steps=2, start_timeout_s=0.2
    )
    with pytest.raises(ServiceUnavailable, match="no progress for .* while loading the model"):
        quick.start()
    quick.close()


def test_an_event_log_on_a_full_disk_does_not_stop_the_service(caplog):
    """An event log that could not be written (a full disk; /dev/full here) stopped the
    service's start with an OSError traceback, and mid-session raised from the thread that
    watches the generator, stopping it without a word: the next trial waited for a result
    that thread would never hand over, then gave up saying the generator hangs. The log is
    given up with one warning and the service goes on."""
    import logging

    print("seed 61")
    svc = ProcessGenerationService(
        model="tiny", device="cpu", geometry=GEOMETRY, num_steps=2, event_log="/dev/full"
    )
    with caplog.at_level(logging.WARNING, logger="study.service"):
        svc.start()
        try:
            ticket = svc.submit(foveated(61))
            assert ticket.wait(120) and ticket.result().image.shape == (SIZE, SIZE, 3)
        finally:
            svc.close()
    warnings = [r.getMessage() for r in caplog.records if "event log" in r.getMessage()]
    assert len(warnings) == 1 and "/dev/full could not be written" in warnings[0], warnings
    assert svc.events.write_error
