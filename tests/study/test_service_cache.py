"""The twin cache every generation service keeps (one cache, sized by the protocol), and the
thread service's use of it with the real tiny generator."""

from __future__ import annotations

import pytest

from generator import LayoutSpec, StimulusGeometry, default_display
from study.generation import GenerationRequest
from study.service.cache import LruCache, TwinCache, twin_key

SIZE = 64


def full(seed: int) -> GenerationRequest:
    return GenerationRequest(
        kind="full", seed=seed, conditioning=0, spec=LayoutSpec(mode="full"), gaze_px=None
    )


def test_lru_cache_drops_the_least_recently_used():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
    empty = LruCache(0)
    empty.put("a", 1)
    assert empty.get("a") is None


def test_twin_cache_tracks_pending_work_and_keeps_finished_twins():
    cache = TwinCache(capacity=1)
    key = twin_key(full(3))
    assert key == (3, 0)
    job, other = object(), object()
    cache.start(key, job)
    assert cache.pending(key) is job and cache.get(key) is None
    cache.drop(key, other)  # not the job generating it: kept
    assert cache.pending(key) is job
    cache.finish(key, "twin")
    assert cache.get(key) == "twin" and cache.pending(key) is None and len(cache) == 1
    cache.start((4, 0), job)
    cache.drop((4, 0), job)
    assert cache.pending((4, 0)) is None
    cache.finish((4, 0), "second")
    assert cache.get(key) is None and cache.get((4, 0)) == "second"  # capacity 1


@pytest.fixture(scope="module")
def thread_service():
    from study.service.thread import ThreadGenerationService

    geometry = StimulusGeometry(
        display=default_display(), image_width_px=SIZE, image_height_px=SIZE
    )
    service = ThreadGenerationService(
        model="tiny",
        device="cpu",
        geometry=geometry,
        num_steps=2,
        torch_threads=1,
        twin_cache_size=4,
    )
    service.start()
    yield service
    service.close()


def test_thread_service_serves_twins_from_its_cache(thread_service):
    print("seeds 1, 2")
    first = thread_service.submit(full(1))
    assert first.wait(60) and not first.cache_hit
    again = thread_service.submit(full(1))
    assert again.done() and again.cache_hit
    assert again.result() is first.result()
    thread_service.prefetch_twin(seed=2, conditioning=0)
    joined = thread_service.submit(full(2))  # the prefetch's ticket: not generated twice
    assert joined.wait(60) and not joined.cache_hit
    assert thread_service.submit(full(2)).cache_hit


def test_a_twin_asked_for_while_it_is_made_gets_its_own_ticket(thread_service, monkeypatch):
    """A twin requested while its prefetch was still queued got the prefetch's own ticket: its
    latency (the row's twin_latency_s) counted from the prefetch, before the trial asked, and
    one caller cancelling it cancelled it for every caller. Each request now has its own ticket,
    finished with the one generation."""
    import threading
    import time

    print("seeds 7, 8, 9")
    release = threading.Event()
    make = thread_service._images.make

    def held(request, **kw):  # the real generator, held on seed 7 until released
        if request.seed == 7:
            release.wait(60)
        return make(request, **kw)

    monkeypatch.setattr(thread_service._images, "make", held)
    blocker = thread_service.submit(full(7))  # the worker waits in it
    thread_service.prefetch_twin(seed=8, conditioning=0)  # queued behind it
    asked_s = time.perf_counter()
    first, second = thread_service.submit(full(8)), thread_service.submit(full(8))
    assert first is not second and not first.done()
    assert first.submitted_s >= asked_s  # its latency counts from the request
    first.cancel()
    wanted = thread_service.submit(full(9))
    also = thread_service.submit(full(9))
    wanted.cancel()  # the other caller still waits for twin 9
    release.set()
    assert blocker.wait(60) and second.wait(60) and also.wait(60)
    assert second.result().image.shape == (SIZE, SIZE, 3)
    assert also.result().image.shape == (SIZE, SIZE, 3)
    assert thread_service.submit(full(8)).result() is second.result()
    assert thread_service.submit(full(9)).cache_hit


def test_thread_service_does_not_speculate(thread_service):
    request = GenerationRequest(
        kind="foveated",
        seed=5,
        conditioning=0,
        spec=LayoutSpec(mode="acuity"),
        gaze_px=(SIZE / 2, SIZE / 2),
    )
    assert thread_service.submit_speculative(request) is None
    with pytest.raises(ValueError, match="submit_speculative"):
        thread_service.resolve(thread_service.submit(request), gaze_px=(1.0, 1.0), tolerance_deg=1)
