"""``ProcessGenerationService``: the generator in its own process, so the window never shares
the interpreter lock or its core with torch.

How it works. ``start()`` spawns the generator process (``multiprocessing`` *spawn* context),
which loads the model once, warms it up and reports ready. Requests wait in a queue here, in
this process; a monitor thread sends them to the generator one at a time (foveated requests
first, then twins someone waits for, then prefetched twins; first in, first out within each),
collects results from a shared-memory slot, and finishes tickets. The window's thread only
submits and polls: nothing it calls blocks on generation.

Robustness. The monitor notices the generator process exiting (killed, crashed), freezing (no
heartbeat for ``heartbeat_timeout_s``) or hanging in a request (no sampler step for
``stall_timeout_s``). It then kills it, fails the in-flight request's tickets with
``GeneratorCrashed`` (``retryable``: the study re-queues the trial), starts a new process and
goes on with the queued requests. More than ``max_restarts`` restarts within ten minutes and the
service gives up (``ServiceUnavailable``). Every step is logged (logger ``study.service``) and,
with ``event_log``, written as JSON lines.

Speculation. The fixation target's position is known before the eyes get there:
``submit_speculative`` starts generating at the target when it appears; ``resolve`` is called
with the measured gaze once fixation is acquired and keeps the speculative image when the gaze
lies within ``tolerance_deg`` of the target (the exact angle between the two lines of sight, from
the display geometry), else cancels it and generates at the measured gaze.

Twins. Full-resolution twins do not depend on gaze: they are cached (LRU) by (seed,
conditioning); ``prefetch_twin`` generates one ahead at the lowest priority (pre-empted at the
next sampler step when a foveated request arrives, and run again later). A twin someone waits
for is never pre-empted: the trial needs both images, so pre-empting it would only waste work.

Deadlines. ``request.deadline_s`` is recorded (``ticket.timings["deadline_missed"]``, counted
from ``resolve`` for speculative requests); what a miss means is the study's decision.

Spawn. The generator process is a fresh interpreter that imports the parent's main module
again: scripts that start the service need the usual ``if __name__ == "__main__":`` guard (the
``fovea`` command has it).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from multiprocessing import connection as mp_connection
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from study.generation import GenerationRequest, GenerationResult
from study.service.cache import TwinCache, twin_key
from study.service.errors import (
    GenerationCancelled,
    GenerationFailed,
    GeneratorCrashed,
    ServiceUnavailable,
)
from study.service.events import EventLog
from study.service.ticket import ServiceTicket
from study.service.worker import WorkerConfig, worker_main

_RESTART_WINDOW_S = 600.0


@dataclasses.dataclass(eq=False)
class _Job:
    """One generation the process will run; several tickets may wait on one twin."""

    job_id: int
    request: GenerationRequest
    tickets: list[ServiceTicket]
    keep_twin: bool
    seq: int
    attempts: int = 0

    @property
    def priority(self) -> int:
        if self.request.kind == "foveated":
            return 0
        return 1 if self.tickets else 2

    def describe(self) -> str:
        r = self.request
        where = "" if r.gaze_px is None else f" at gaze ({r.gaze_px[0]:.1f}, {r.gaze_px[1]:.1f}) px"
        return f"request {self.job_id} ({r.kind}, seed {r.seed}, conditioning {r.conditioning!r}{where})"


@dataclasses.dataclass(eq=False)
class _Child:
    process: mp.Process
    conn: object
    heartbeat: object
    progress: object
    abort_job: object
    started_s: float
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.process.pid


class ProcessGenerationService:
    """Generation in a separate process; implements ``study.generation.GenerationService``.

    Args:
        model: model name or directory (``FoveatedGenerator.load``).
        device: torch device of the generator process.
        geometry: ``generator.StimulusGeometry`` (fixes the image size of every request).
        num_steps: sampler steps, None for the model's default.
        warmup_conditioning: class or prompt for the warm-up generations.
        dtype: model dtype name (None: float32).
        torch_threads: intra-op threads of the generator (default: CPU cores minus one, at least 1,
            so the window keeps a core).
        twin_cache_size: full-resolution twins kept (LRU).
        heartbeat_timeout_s: no heartbeat for this long: the process is frozen, restart it.
        stall_timeout_s: no sampler step for this long during a request: it hangs, restart it.
        start_timeout_s: loading and warm-up must finish within this.
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
        warmup_conditioning: int | str = 0,
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
    ) -> None:
        self._geometry = geometry
        self._config = WorkerConfig(
            model=model,
            device=device,
            dtype=dtype,
            geometry={
                "display": geometry.display.as_dict(),
                "image_width_px": geometry.image_width_px,
                "image_height_px": geometry.image_height_px,
                "left_px": geometry.left_px,
                "top_px": geometry.top_px,
            },
            num_steps=num_steps,
            warmup_conditioning=warmup_conditioning,
            torch_threads=int(torch_threads or max(1, (os.cpu_count() or 2) - 1)),
            nice=int(nice),
            heartbeat_interval_s=min(0.25, heartbeat_timeout_s / 4),
            slot_name="",
            slot_shape=(geometry.image_height_px, geometry.image_width_px, 3),
            hash_weights=hash_weights,
            scenes=scenes,
            reference=reference,
            warm_full=warm_full,
        )
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.stall_timeout_s = float(stall_timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self.max_restarts = int(max_restarts)
        self.events = EventLog(event_log)
        self.info: dict = {}
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._pending: list[_Job] = []
        self._inflight: _Job | None = None
        self._abort_reason: str | None = None
        self._twins = TwinCache(twin_cache_size)
        self._child: _Child | None = None
        self._slot: shared_memory.SharedMemory | None = None
        self._state = "new"  # new | ready | restarting | broken | closed
        self._broken_reason = ""
        self._background_paused = False
        self._restart_times: deque[float] = deque()
        self._next_id = 0
        self._monitor: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.counters = {
            "submitted": 0,
            "generated": 0,
            "cache_hits": 0,
            "cancelled": 0,
            "preempted": 0,
            "crashes": 0,
            "restarts": 0,
            "failed": 0,
            "speculative_hits": 0,
            "speculative_misses": 0,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> dict:
        """Spawn the generator process, load and warm up the model; returns its description.

        Raises:
            ServiceUnavailable: the model failed to load (the generator's message) or the process
                died or timed out during start.
        """
        if self._state != "new":
            raise RuntimeError("start() was already called")
        h, w, c = self._config.slot_shape
        self._slot = shared_memory.SharedMemory(create=True, size=h * w * c)
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
            jobs = list(self._pending) + ([self._inflight] if self._inflight else [])
            self._pending.clear()
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
            self._kill(child)
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

    def submit_speculative(self, request: GenerationRequest) -> ServiceTicket:
        """Start a foveated generation at the fixation target before the eyes arrive there.

        ``request.gaze_px`` is the target in image pixels; call ``resolve`` with the measured
        gaze once fixation is acquired.
        """
        if request.kind != "foveated":
            raise ValueError("only foveated requests are speculative (twins do not depend on gaze)")
        return self._submit(request, speculative=True)

    def resolve(
        self, ticket: ServiceTicket, *, gaze_px: tuple[float, float], tolerance_deg: float
    ) -> ServiceTicket:
        """Keep the speculative generation or replace it, now that the gaze is measured.

        Args:
            ticket: from ``submit_speculative``.
            gaze_px: measured gaze, image pixels.
            tolerance_deg: largest angle between the speculated and the measured gaze for which
                the speculative image is used (choose it within the fovea the layout keeps at
                full resolution, e.g. the condition's padding plus tracker accuracy).

        Returns:
            ``ticket`` itself (``reused_speculative`` True) or a new ticket generating at
            ``gaze_px`` (``reused_speculative`` False, ``replaces`` = the speculative ticket, which
            is cancelled). A failed speculative ticket is always replaced.
        """
        if not ticket.speculative:
            raise ValueError("resolve() takes a ticket from submit_speculative()")
        now = time.perf_counter()
        target = ticket.request.gaze_px
        gx, gy = float(gaze_px[0]), float(gaze_px[1])
        error_deg = float(
            self._geometry.eccentricity_deg(gx, gy, (float(target[0]), float(target[1])))
        )
        ticket.resolved_s = now
        ticket.gaze_error_deg = error_deg
        failed = ticket.done() and ticket._error is not None
        if error_deg <= tolerance_deg and not failed:
            ticket.reused_speculative = True
            with self._lock:
                self.counters["speculative_hits"] += 1
            self.events.emit(
                "speculation",
                ticket=ticket.ticket_id,
                reused=True,
                gaze_error_deg=error_deg,
                ready=ticket.done(),
            )
            return ticket
        with self._lock:
            self.counters["speculative_misses"] += 1
        if not ticket.done():
            self._cancel(ticket, reason="the measured gaze missed the speculated target")
        fresh = self._submit(
            dataclasses.replace(ticket.request, gaze_px=(gx, gy)), speculative=False
        )
        fresh.reused_speculative = False
        fresh.gaze_error_deg = error_deg
        fresh.replaces = ticket
        ticket.reused_speculative = False
        self.events.emit(
            "speculation",
            ticket=ticket.ticket_id,
            reused=False,
            replaced_by=fresh.ticket_id,
            gaze_error_deg=error_deg,
            tolerance_deg=tolerance_deg,
            failed=failed,
        )
        return fresh

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
            job = self._new_job(request, tickets=[], keep_twin=True)
            self._twins.start(key, job)
            self._pending.append(job)
        self.events.emit("prefetch", job=job.job_id, seed=int(seed), conditioning=conditioning)
        self._wake()

    def pause_background(self, paused: bool = True) -> None:
        """Hold prefetched twins (nobody waits for them) while ``paused``.

        For the stretches where every frame must be on time (the stimulus intervals): a running
        prefetch is pre-empted at its next sampler step and queued prefetches wait until
        ``pause_background(False)``. Requests someone waits for run as usual.
        """
        with self._lock:
            self._background_paused = bool(paused)
        self.events.emit("background", paused=bool(paused), level=10)
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
                "queued": len(self._pending),
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

    def _new_job(self, request, *, tickets, keep_twin) -> _Job:
        self._next_id += 1
        return _Job(self._next_id, request, tickets, keep_twin, seq=self._next_id)

    def _submit(self, request: GenerationRequest, *, speculative: bool) -> ServiceTicket:
        if request.kind not in ("foveated", "full"):
            raise ValueError(f"request kind must be foveated or full, got {request.kind!r}")
        with self._lock:
            self._check_open()
            self._next_id += 1
            ticket = ServiceTicket(
                request, service=self, ticket_id=self._next_id, speculative=speculative
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
                job = self._new_job(request, tickets=[ticket], keep_twin=True)
                self._twins.start(key, job)
            else:
                job = self._new_job(request, tickets=[ticket], keep_twin=False)
            ticket._job = job
            self._pending.append(job)
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
                if job in self._pending:
                    self._pending.remove(job)
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
    def _spawn(self, *, abort) -> _Child:
        """Start a generator process and wait until it is ready (``abort()`` -> give up early)."""
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        heartbeat = self._ctx.Value("d", time.perf_counter(), lock=False)
        progress = self._ctx.Value("d", time.perf_counter(), lock=False)
        abort_job = self._ctx.Value("q", 0, lock=False)
        process = self._ctx.Process(
            target=worker_main,
            args=(self._config, child_conn, heartbeat, progress, abort_job),
            name="fovea-generator",
            daemon=True,
        )
        t0 = time.perf_counter()
        process.start()
        child_conn.close()
        child = _Child(process, parent_conn, heartbeat, progress, abort_job, started_s=t0)
        self.events.emit("spawn", pid=process.pid)
        deadline = t0 + self.start_timeout_s
        while True:
            if abort is not None and abort():
                self._kill(child)
                raise ServiceUnavailable("the generation service was closed during start")
            ready = mp_connection.wait([parent_conn, process.sentinel], timeout=0.2)
            if parent_conn in ready:
                try:
                    kind, payload = parent_conn.recv()
                except (EOFError, OSError):
                    kind, payload = "died", None
                if kind == "ready":
                    child.info = payload
                    self.events.emit("ready", start_s=time.perf_counter() - t0, **payload)
                    return child
                self._kill(child)
                if kind == "failed":
                    raise ServiceUnavailable(f"the generator could not start: {payload}")
                raise ServiceUnavailable(
                    f"the generator process exited during start ({_exit_text(process)})"
                )
            if process.sentinel in ready:
                self._kill(child)
                raise ServiceUnavailable(
                    f"the generator process exited during start ({_exit_text(process)})"
                )
            if time.perf_counter() > deadline:
                self._kill(child)
                raise ServiceUnavailable(
                    f"the generator did not get ready within {self.start_timeout_s:g} s "
                    "(raise start_timeout_s for large models)"
                )

    def _kill(self, child: _Child) -> None:
        if child.process.is_alive():
            child.process.kill()
        child.process.join(timeout=10)
        try:
            child.conn.close()
        except OSError:
            pass

    def _release_slot(self) -> None:
        if self._slot is not None:
            try:
                self._slot.close()
                self._slot.unlink()
            except FileNotFoundError:
                pass
            self._slot = None

    # ------------------------------------------------------------------ internals: monitor thread
    def _monitor_loop(self) -> None:
        while self._state != "closed":
            if self._state == "restarting":
                self._restart()
                continue
            if self._state != "ready":
                break
            self._dispatch()
            child = self._child
            try:
                ready = mp_connection.wait(
                    [child.conn, child.process.sentinel, self._wake_r], timeout=0.1
                )
            except (OSError, ValueError):
                ready = []
            if self._state == "closed":
                break
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            if child.conn in ready:
                try:
                    message = child.conn.recv()
                except (EOFError, OSError):
                    self._on_failure(child, f"exited ({_exit_text(child.process, wait=True)})")
                    continue
                self._on_message(child, message)
            elif child.process.sentinel in ready:
                self._on_failure(child, f"exited ({_exit_text(child.process, wait=True)})")
                continue
            self._check_health(child)
            self._check_preempt(child)

    def _dispatch(self) -> None:
        with self._lock:
            if self._inflight is not None or not self._pending or self._child is None:
                return
            # Jobs nobody waits for any more (all tickets cancelled) are dropped here.
            self._pending = [j for j in self._pending if j.tickets or j.keep_twin]
            if not self._pending:
                return
            ready = [j for j in self._pending if not (self._background_paused and j.priority == 2)]
            if not ready:
                return
            job = min(ready, key=lambda j: (j.priority, j.seq))
            self._pending.remove(job)
            job.attempts += 1
            self._inflight = job
            self._abort_reason = None
            child = self._child
            child.abort_job.value = 0
            child.progress.value = time.perf_counter()
            now = time.perf_counter()
            for ticket in job.tickets:
                ticket.dispatched_s = now
                ticket.attempts = job.attempts
        try:
            child.conn.send(("job", job.job_id, job.request))
        except (OSError, ValueError):
            self._on_failure(child, "closed its pipe")
            return
        self.events.emit(
            "dispatch",
            job=job.job_id,
            priority=job.priority,
            attempt=job.attempts,
            queued=len(self._pending),
        )

    def _on_message(self, child: _Child, message) -> None:
        kind, job_id, fields = message
        with self._lock:
            job = self._inflight
            if job is None or job.job_id != job_id:
                return  # a job dropped by close()
            self._inflight = None
            reason, self._abort_reason = self._abort_reason, None
            child.abort_job.value = 0
            if kind == "done":
                self._on_done(job, fields)
            elif kind == "aborted":
                for ticket in job.tickets:
                    ticket.started_s = fields["started_s"]
                if reason == "preempt" or job.tickets or job.keep_twin:
                    self._pending.append(job)  # pre-empted (or wanted again meanwhile): run later
                    self.counters["preempted"] += reason == "preempt"
                    event = ("preempt", {"job": job_id, "step": fields["step"]})
                else:
                    self._drop_twin_job(job)
                    event = ("aborted", {"job": job_id, "step": fields["step"]})
            else:
                self._drop_twin_job(job)
                self.counters["failed"] += 1
                error_cls = GenerationFailed
                message_text = f"generation of {job.describe()} failed: {fields['message']}"
                for ticket in job.tickets:
                    ticket.started_s = fields["started_s"]
                    ticket._finish(None, error_cls(message_text))
                event = (
                    "error",
                    {
                        "job": job_id,
                        "message": fields["message"],
                        "traceback": fields.get("traceback"),
                    },
                )
        if kind == "done":
            return
        name, data = event
        self.events.emit(name, **data)

    def _on_done(self, job: _Job, fields: dict) -> None:
        assert self._slot is not None
        image = np.ndarray(self._config.slot_shape, dtype=np.uint8, buffer=self._slot.buf).copy()
        received_s = time.perf_counter()
        self.counters["generated"] += 1
        sidecar = dict(fields["result"].sidecar)
        sidecar["service"] = {
            "job": job.job_id,
            "attempts": job.attempts,
            "pid": self._child.pid if self._child else None,
            "generation_s": fields["generated_s"] - fields["started_s"],
            "transfer_s": received_s - fields["generated_s"],
        }
        result = dataclasses.replace(fields["result"], image=image, sidecar=sidecar)
        if job.keep_twin:
            self._twins.finish(twin_key(job.request), result)
        for ticket in job.tickets:
            ticket.started_s = fields["started_s"]
            ticket.generated_s = fields["generated_s"]
            ticket.received_s = received_s
            ticket._finish(result, None)
        timings = [t.timings for t in job.tickets]
        self.events.emit(
            "done",
            job=job.job_id,
            kind=job.request.kind,
            seed=job.request.seed,
            tokens=result.tokens,
            generation_s=fields["generated_s"] - fields["started_s"],
            transfer_s=received_s - fields["generated_s"],
            tickets=timings,
        )

    def _drop_twin_job(self, job: _Job) -> None:
        if job.keep_twin:
            self._twins.drop(twin_key(job.request), job)

    def _check_health(self, child: _Child) -> None:
        now = time.perf_counter()
        silent_s = now - child.heartbeat.value
        if silent_s > self.heartbeat_timeout_s:
            self._on_failure(
                child, f"stopped responding (no heartbeat for {silent_s:.1f} s)", hang=True
            )
            return
        if self._inflight is not None:
            idle_s = now - child.progress.value
            if idle_s > self.stall_timeout_s:
                self._on_failure(child, f"hangs (no sampler step for {idle_s:.1f} s)", hang=True)

    def _check_preempt(self, child: _Child) -> None:
        with self._lock:
            job = self._inflight
            if job is None or self._abort_reason is not None or job.priority < 2:
                return
            if self._background_paused or any(j.priority == 0 for j in self._pending):
                self._abort_reason = "preempt"
                child.abort_job.value = job.job_id

    def _on_failure(self, child: _Child, what: str, *, hang: bool = False) -> None:
        """The process died or hangs: kill it, fail the in-flight tickets, schedule a restart."""
        self._kill(child)
        with self._lock:
            if self._state == "closed":
                return
            job, self._inflight = self._inflight, None
            self._abort_reason = None
            self._child = None
            self.counters["crashes"] += 1
            doing = f"while generating {job.describe()}" if job else "while idle"
            message = (
                f"the generator process (pid {child.pid}) {what} {doing}; the service is "
                "restarting it; re-queue the trial"
            )
            if job is not None:
                for ticket in job.tickets:
                    ticket._finish(None, GeneratorCrashed(message))
                job.tickets.clear()
                # A prefetch may be retried once; twice fatal means it is the cause: drop it.
                if job.keep_twin and job.attempts < 2:
                    self._pending.append(job)
                else:
                    self._drop_twin_job(job)
            self._state = "restarting"
        self.events.emit(
            "hang" if hang else "crash",
            level=40,
            pid=child.pid,
            message=message,
            job=job.job_id if job else None,
            exitcode=child.process.exitcode,
        )

    def _restart(self) -> None:
        now = time.perf_counter()
        while self._restart_times and now - self._restart_times[0] > _RESTART_WINDOW_S:
            self._restart_times.popleft()
        if len(self._restart_times) >= self.max_restarts:
            self._give_up(
                f"the generator process failed {len(self._restart_times) + 1} times within "
                f"{_RESTART_WINDOW_S / 60:g} minutes"
            )
            return
        self._restart_times.append(now)
        self.counters["restarts"] += 1
        t0 = time.perf_counter()
        try:
            child = self._spawn(abort=lambda: self._state == "closed")
        except ServiceUnavailable as error:
            if self._state != "closed":
                self._give_up(str(error))
            return
        with self._lock:
            if self._state == "closed":
                self._kill(child)
                return
            self._child = child
            self._state = "ready"
        self.events.emit(
            "restart",
            level=30,
            pid=child.pid,
            restart_s=time.perf_counter() - t0,
            restarts=self.counters["restarts"],
            queued=len(self._pending),
        )

    def _give_up(self, reason: str) -> None:
        with self._lock:
            self._state = "broken"
            self._broken_reason = reason
            jobs, self._pending = self._pending, []
            for job in jobs:
                for ticket in job.tickets:
                    ticket._finish(
                        None, ServiceUnavailable(f"generation service stopped: {reason}")
                    )
            self._twins.clear_pending()
        self.events.emit("broken", level=50, reason=reason)


def _exit_text(process, *, wait: bool = False) -> str:
    if wait:
        process.join(timeout=2)
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit status {code}"


def gaze_distance_deg(geometry, a_px: tuple[float, float], b_px: tuple[float, float]) -> float:
    """Exact angle (deg) between the lines of sight to two image points (``resolve``'s metric)."""
    value = float(
        geometry.eccentricity_deg(float(a_px[0]), float(a_px[1]), (float(b_px[0]), float(b_px[1])))
    )
    return value if math.isfinite(value) else math.inf
