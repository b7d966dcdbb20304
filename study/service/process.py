"""``ProcessGenerationService``: the generator in its own process, so the window never shares
the interpreter lock or its core with torch.

How it works. ``start()`` spawns the generator process (``multiprocessing`` *spawn* context),
which loads the model once, warms it up and reports ready. Requests wait in a queue here, in
this process; a monitor thread sends them to the generator one at a time (foveated requests
first, then twins someone waits for, then prefetched twins; first in, first out within each),
collects results from a shared-memory slot, and finishes tickets. The window's thread only
submits and polls: nothing it calls blocks on generation.

Robustness (``study.service.monitor``, ``study.service.child``): a generator process that exits,
freezes, hangs or raises something other than a ``FoveaError`` (a CUDA out-of-memory...) is
killed and restarted; the running request's tickets fail with
``GeneratorCrashed`` (``retryable``: the study re-queues the trial); after ``max_restarts``
restarts within ten minutes the service gives up (``ServiceUnavailable``). Every step is logged
and, with ``event_log``, written as JSON lines.

Speculation (``study.service.speculation``): ``submit_speculative`` starts generating at the
fixation target when it appears; ``resolve`` keeps that image when the measured gaze lies within
``tolerance_deg`` of the target, else cancels it and generates at the measured gaze.

Twins (``study.service.cache.TwinCache``): full-resolution twins do not depend on gaze; they are
cached by (seed, conditioning); ``prefetch_twin`` generates one ahead at the lowest priority
(pre-empted at the next sampler step when a foveated request arrives, and run again later). A
twin someone waits for is never pre-empted: the trial needs both images.

The queue and its priorities are ``study.service.jobs``; this module holds the service's
interface and lifecycle.

Deadlines: ``ticket.timings["deadline_missed"]`` (from ``resolve`` for speculative requests);
what a miss means is the study's decision.

Spawn. The generator process is a fresh interpreter that imports the parent's main module
again: scripts that start the service need the usual ``if __name__ == "__main__":`` guard (the
``fovea`` command has it).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

from protocol.geometry import geometry_record
from study.generation import GenerationRequest, GenerationResult
from study.service.cache import TwinCache, twin_key
from study.service.child import Child, ImageSlot, RestartPolicy, kill_child, spawn_child
from study.service.errors import GenerationCancelled, ServiceUnavailable
from study.service.events import EventLog
from study.service.jobs import JobQueue
from study.service.monitor import MonitorLoop
from study.service.speculation import SpeculativeRequests, gaze_distance_deg
from study.service.ticket import ServiceTicket
from study.service.worker import WorkerConfig

__all__ = ["ProcessGenerationService", "gaze_distance_deg"]

COUNTERS = ("submitted", "generated", "cache_hits", "cancelled", "preempted", "crashes")
# A request hangs after this many of the warm-up's slowest sampler steps without one (at least
# ``stall_timeout_s``): generous, since the warm-up's first calls also pay for allocation.
STALL_STEPS = 20
COUNTERS += ("restarts", "failed", "speculative_hits", "speculative_misses")


class ProcessGenerationService(SpeculativeRequests, MonitorLoop):
    """Generation in a separate process; implements ``study.generation.GenerationService``.

    Args:
        model, lora: model name or directory and a LoRA file merged into it at load, or None
            (``generator.loading.load_generator``).
        device: torch device of the generator process.
        geometry: ``generator.StimulusGeometry`` (fixes the image size of every request).
        num_steps: sampler steps, None for the model's default.
        conditionings: every class or prompt the session draws; the warm-up generates with
            the first and encodes them all (a prompt is encoded once, before any trial).
        dtype: model dtype name (None: float32).
        torch_threads: intra-op threads of the generator (default: CPU cores minus one, at least 1,
            so the window keeps a core).
        twin_cache_size: full-resolution twins kept (LRU).
        heartbeat_timeout_s: no heartbeat for this long: the process is frozen, restart it.
        stall_timeout_s: no sampler step for this long during a request: it hangs, restart it.
            ``start()`` raises it to ``STALL_STEPS`` times the slowest sampler step of the
            warm-up, so that a model whose one step takes minutes on this machine (a FLUX-sized
            one on a CPU) is not taken for a hung one.
        start_timeout_s: loading, and then each warm-up step, must finish within this
            (``study.service.child.spawn_child``).
        max_restarts: restarts allowed within ten minutes before the service gives up.
        event_log: JSON-lines event file (appended), or None.
        nice: niceness added to the generator process (default 10: when both want a core, the
            window's process wins; an idle window leaves the generator every free cycle).
        hash_weights: report ``weights_sha256`` in ``start()``'s info (reads every weight once;
            ``stimuli.check_stimulus_set`` compares it with a pre-generated set).
        scenes: scene-source spec of the session (``pool`` or a folder; None: ``pool``).
        reference: ``generated`` (``full`` requests are full-resolution twins) or ``original``
            (the photograph the seed's scene came from); ``study.service.images``.
        warm_full: warm up the full-resolution layout at start (see ``WorkerConfig``).
    """

    def __init__(
        self,
        *,
        model: str,
        device: str,
        geometry,
        num_steps: int | None,
        conditionings: tuple[int | str, ...] = (0,),
        dtype: str | None = None,
        torch_threads: int | None = None,
        twin_cache_size: int = 64,
        heartbeat_timeout_s: float = 10.0,
        stall_timeout_s: float = 120.0,
        start_timeout_s: float = 600.0,
        max_restarts: int = 3,
        event_log: str | Path | None = None,
        nice: int = 10,
        hash_weights: bool = False,
        scenes: str | None = None,
        reference: str = "generated",
        warm_full: bool = True,
        lora: str | None = None,
        decode: str = "full",
    ) -> None:
        self._geometry = geometry
        self._config = WorkerConfig(
            model=model,
            device=device,
            dtype=dtype,
            geometry=geometry_record(geometry),
            num_steps=num_steps,
            conditionings=tuple(conditionings),
            torch_threads=int(torch_threads or max(1, (os.cpu_count() or 2) - 1)),
            nice=int(nice),
            heartbeat_interval_s=min(0.25, heartbeat_timeout_s / 4),
            slot_name="",
            slot_shape=(geometry.image_height_px, geometry.image_width_px, 3),
            hash_weights=hash_weights,
            scenes=scenes,
            reference=reference,
            warm_full=warm_full,
            lora=lora,
            decode=decode,
        )
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.stall_timeout_s = float(stall_timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self.max_restarts = int(max_restarts)
        self.events = EventLog(event_log)
        self.info: dict = {}
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._queue = JobQueue()
        self._inflight = None  # the study.service.jobs.Job the process runs now
        self._abort_reason: str | None = None
        self._twins = TwinCache(twin_cache_size)
        self._child: Child | None = None
        self._slot: ImageSlot | None = None
        self._state = "new"  # new | ready | restarting | broken | closed
        self._broken_reason = ""
        self._start_error: str | None = None  # why the last restart failed to start
        self._restarts = RestartPolicy(max_restarts=max_restarts)
        self._monitor: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.counters = dict.fromkeys(COUNTERS, 0)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> dict:
        """Spawn the generator process, load and warm up the model; returns its description.

        Raises:
            ServiceUnavailable: the model failed to load (the generator's message) or the process
                died or timed out during start.
        """
        if self._state != "new":
            raise RuntimeError("start() was already called")
        h, w, _ = self._config.slot_shape
        self._slot = ImageSlot(self._config.slot_shape)
        self._config = dataclasses.replace(self._config, slot_name=self._slot.name)
        self.events.emit(
            "start",
            model=self._config.model,
            device=self._config.device,
            torch_threads=self._config.torch_threads,
            image_px=[w, h],
        )
        try:
            self._child = self._spawn(abort=None)
        except BaseException as error:
            self._state = "broken"
            self._broken_reason = str(error)
            self._release_slot()
            raise
        self.info = dict(self._child.info)
        slowest_step_s = float(self.info.get("warmup_step_s_max") or 0.0)
        self.stall_timeout_s = max(self.stall_timeout_s, STALL_STEPS * slowest_step_s)
        self.info.update(
            heartbeat_timeout_s=self.heartbeat_timeout_s, stall_timeout_s=self.stall_timeout_s
        )
        self._state = "ready"
        self._monitor = threading.Thread(
            target=self._monitor_loop, name="fovea-service", daemon=True
        )
        self._monitor.start()
        return dict(self.info)

    def close(self) -> None:
        """Stop the generator process; queued and running requests finish as cancelled."""
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
            jobs = self._queue.take_all() + ([self._inflight] if self._inflight else [])
            self._inflight = None
            for job in jobs:
                for ticket in job.tickets:
                    ticket._finish(None, GenerationCancelled("the generation service was closed"))
        self._wake()
        if self._monitor is not None:
            self._monitor.join(timeout=30)
        child, self._child = self._child, None
        if child is not None:
            try:
                child.conn.send(None)
            except (OSError, ValueError):
                pass
            child.process.join(timeout=5)
            kill_child(child)
        self._release_slot()
        self.events.emit("close", counters=dict(self.counters))
        self.events.close()
        fds, self._wake_w = (self._wake_r, self._wake_w), None
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def child_pid(self) -> int | None:
        """PID of the current generator process (None while restarting or closed)."""
        child = self._child
        return None if child is None or self._state != "ready" else child.pid

    @property
    def state(self) -> str:
        """``new``, ``ready``, ``restarting``, ``broken`` or ``closed``."""
        return self._state

    def wait_ready(self, timeout_s: float) -> bool:
        """Block until the generator process is up (after a restart); False on timeout."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self._state == "ready":
                return True
            if self._state in ("broken", "closed"):
                return False
            time.sleep(0.05)
        return self._state == "ready"

    # ------------------------------------------------------------------ requests
    def submit(self, request: GenerationRequest) -> ServiceTicket:
        """Queue a request; full-resolution twins come from the cache when there."""
        return self._submit(request, speculative=False)

    def prefetch_twin(self, *, seed: int, conditioning: int | str) -> None:
        """Generate a full-resolution twin ahead, at the lowest priority, into the cache."""
        from generator.layout import LayoutSpec

        key = (int(seed), conditioning)
        with self._lock:
            self._check_open()
            if self._twins.get(key) is not None or self._twins.pending(key) is not None:
                return
            request = GenerationRequest(
                kind="full",
                seed=int(seed),
                conditioning=conditioning,
                spec=LayoutSpec(mode="full"),
                gaze_px=None,
            )
            job = self._queue.new_job(request, tickets=[], keep_twin=True)
            self._twins.start(key, job)
            self._queue.add(job)
        self.events.emit("prefetch", job=job.job_id, seed=int(seed), conditioning=conditioning)
        self._wake()

    def cached_twin(self, *, seed: int, conditioning: int | str) -> GenerationResult | None:
        """The cached twin for (seed, conditioning), or None."""
        with self._lock:
            return self._twins.get((int(seed), conditioning))

    def stats(self) -> dict:
        """Counters (submitted, generated, cache hits, cancellations, crashes, restarts...)."""
        with self._lock:
            return {
                **self.counters,
                "queued": len(self._queue),
                "state": self._state,
                "twins_cached": len(self._twins),
            }

    # ------------------------------------------------------------------ internals: submit/cancel
    def _check_open(self) -> None:
        if self._state == "new":
            raise RuntimeError("start() the service first")
        if self._state in ("broken", "closed"):
            raise ServiceUnavailable(
                f"the generation service is {self._state}"
                + (f": {self._broken_reason}" if self._broken_reason else "")
            )

    def _submit(self, request: GenerationRequest, *, speculative: bool) -> ServiceTicket:
        if request.kind not in ("foveated", "full"):
            raise ValueError(f"request kind must be foveated or full, got {request.kind!r}")
        with self._lock:
            self._check_open()
            ticket = ServiceTicket(
                request, service=self, ticket_id=self._queue.next_id(), speculative=speculative
            )
            self.counters["submitted"] += 1
            if request.kind == "full":
                key = twin_key(request)
                cached = self._twins.get(key)
                if cached is not None:
                    ticket.cache_hit = True
                    ticket._finish(cached, None)
                    self.counters["cache_hits"] += 1
                    self.events.emit("cache_hit", ticket=ticket.ticket_id, seed=request.seed)
                    return ticket
                job = self._twins.pending(key)
                if job is not None:  # already queued or running (a prefetch): wait on it
                    job.tickets.append(ticket)
                    ticket._job = job
                    return ticket
                job = self._queue.new_job(request, tickets=[ticket], keep_twin=True)
                self._twins.start(key, job)
            else:
                job = self._queue.new_job(request, tickets=[ticket], keep_twin=False)
            ticket._job = job
            self._queue.add(job)
        self.events.emit(
            "submit",
            ticket=ticket.ticket_id,
            job=job.job_id,
            kind=request.kind,
            seed=request.seed,
            speculative=speculative,
            gaze_px=None if request.gaze_px is None else list(request.gaze_px),
        )
        self._wake()
        return ticket

    def _cancel(self, ticket: ServiceTicket, *, reason: str) -> None:
        with self._lock:
            if ticket.done():
                return
            job = ticket._job
            ticket.cancelled = True
            ticket._finish(
                None, GenerationCancelled(f"request {ticket.ticket_id} cancelled: {reason}")
            )
            self.counters["cancelled"] += 1
            if job is None:
                return
            if ticket in job.tickets:
                job.tickets.remove(ticket)
            where = "none"
            if not job.tickets and not job.keep_twin:
                if self._queue.discard(job):
                    where = "queued"
                elif job is self._inflight and self._child is not None:
                    self._abort_reason = "cancel"
                    self._child.abort_job.value = job.job_id
                    where = "running"
        self.events.emit(
            "cancel",
            ticket=ticket.ticket_id,
            job=job.job_id if job else None,
            reason=reason,
            dropped=where,
        )
        self._wake()

    def _wake(self) -> None:
        fd = self._wake_w
        if fd is None:  # closed (its number may belong to another file by now)
            return
        try:
            os.write(fd, b"x")
        except (BlockingIOError, OSError):
            pass

    # ------------------------------------------------------------------ internals: the process
    def _spawn(self, *, abort) -> Child:
        """Start a generator process and wait until it is ready (``abort()`` -> give up early)."""
        return spawn_child(
            self._ctx,
            self._config,
            start_timeout_s=self.start_timeout_s,
            events=self.events,
            abort=abort,
        )

    def _release_slot(self) -> None:
        if self._slot is not None:
            self._slot.release()
            self._slot = None
