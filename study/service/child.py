"""The generator process seen from the service: spawning it, its health, killing it, the restart
policy, and the shared-memory slot its images come through.

The process runs ``study.service.worker.worker_main`` (a *spawn* context: a fresh interpreter).
It is healthy while its heartbeat is fresh (``heartbeat_timeout_s``) and, during a request, its
sampler makes progress (``stall_timeout_s``). More than ``max_restarts`` restarts within
``RESTART_WINDOW_S`` and the service gives up.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections import deque
from multiprocessing import connection as mp_connection
from multiprocessing import shared_memory

import numpy as np

from study.service.errors import ServiceUnavailable
from study.service.worker import WorkerConfig, worker_main

RESTART_WINDOW_S = 600.0


@dataclasses.dataclass(eq=False)
class Child:
    """A running generator process and its channels.

    Attributes:
        process: the ``multiprocessing.Process``.
        conn: this end of the duplex pipe.
        heartbeat, progress: shared doubles (``perf_counter`` of the last heartbeat / sampler
            step); abort_job: shared integer (a job id to abort at the next step).
        started_s: when it was spawned; info: its ``ready`` record.
    """

    process: object
    conn: object
    heartbeat: object
    progress: object
    abort_job: object
    started_s: float
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def health_problem(
        self, *, busy: bool, heartbeat_timeout_s: float, stall_timeout_s: float
    ) -> str | None:
        """What is wrong (frozen, or a request that hangs), or None when healthy."""
        now = time.perf_counter()
        silent_s = now - self.heartbeat.value
        if silent_s > heartbeat_timeout_s:
            return f"stopped responding (no heartbeat for {silent_s:.1f} s)"
        idle_s = now - self.progress.value
        if busy and idle_s > stall_timeout_s:
            return f"hangs (no sampler step for {idle_s:.1f} s)"
        return None


#: How long a generator process that failed to start may take to exit on its own.
_FAILED_EXIT_S = 10.0


def spawn_child(ctx, config: WorkerConfig, *, start_timeout_s: float, events, abort=None) -> Child:
    """Start a generator process and wait until it is ready.

    Args:
        ctx: the ``multiprocessing`` spawn context.
        config: what the process loads.
        start_timeout_s: the start fails after this long without progress: loading must
            finish within it, and then each warm-up step (a large model on a slow machine
            may take many times this to get ready, as long as its steps keep coming).
        events: the service's ``EventLog``.
        abort: callable; True gives up early (the service was closed).

    Raises:
        ServiceUnavailable: the model failed to load, the process died, or it timed out.
    """
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    heartbeat = ctx.Value("d", time.perf_counter(), lock=False)
    progress = ctx.Value("d", time.perf_counter(), lock=False)
    abort_job = ctx.Value("q", 0, lock=False)
    process = ctx.Process(
        target=worker_main,
        args=(config, child_conn, heartbeat, progress, abort_job),
        name="fovea-generator",
        daemon=True,
    )
    t0 = time.perf_counter()
    process.start()
    child_conn.close()
    child = Child(process, parent_conn, heartbeat, progress, abort_job, started_s=t0)
    events.emit("spawn", pid=process.pid)
    while True:
        if abort is not None and abort():
            kill_child(child)
            raise ServiceUnavailable("the generation service was closed during start")
        ready = mp_connection.wait([parent_conn, process.sentinel], timeout=0.2)
        if parent_conn in ready:
            try:
                kind, payload = parent_conn.recv()
            except (EOFError, OSError):
                kind, payload = "died", None
            if kind == "ready":
                child.info = payload
                events.emit("ready", start_s=time.perf_counter() - t0, **payload)
                return child
            if kind == "failed":
                # It returns after saying so: let it exit, releasing what it registered with
                # multiprocessing's resource tracker (a killed one left "leaked semaphore
                # objects" printed after the error: tqdm's lock in the loading bars).
                process.join(timeout=_FAILED_EXIT_S)
                kill_child(child)
                raise ServiceUnavailable(f"the generator could not start: {payload}")
            kill_child(child)
            raise ServiceUnavailable(
                f"the generator process exited during start ({exit_text(process)})"
            )
        if process.sentinel in ready:
            kill_child(child)
            raise ServiceUnavailable(
                f"the generator process exited during start ({exit_text(process)})"
            )
        silent_s = time.perf_counter() - max(t0, progress.value)
        if silent_s > start_timeout_s:
            kill_child(child)
            stage = "loading the model" if progress.value <= t0 else "warming up"
            raise ServiceUnavailable(
                f"the generator made no progress for {silent_s:.0f} s while {stage} "
                f"(started {time.perf_counter() - t0:.0f} s ago)"
            )


def kill_child(child: Child) -> None:
    """Kill the process (if alive), reap it and close the pipe."""
    if child.process.is_alive():
        child.process.kill()
    child.process.join(timeout=10)
    try:
        child.conn.close()
    except OSError:
        pass


def exit_text(process, *, wait: bool = False) -> str:
    """How the process ended: ``exit status N``, ``killed by SIGKILL``, or ``still running``."""
    if wait:
        process.join(timeout=2)
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit status {code}"


class RestartPolicy:
    """At most ``max_restarts`` restarts within ``window_s`` seconds.

    Args:
        max_restarts: restarts allowed within the window.
        window_s: the sliding window.
    """

    def __init__(self, *, max_restarts: int, window_s: float = RESTART_WINDOW_S) -> None:
        self.max_restarts = int(max_restarts)
        self.window_s = float(window_s)
        self._times: deque[float] = deque()

    def refusal(self) -> str | None:
        """Why another restart is not allowed now, or None (then it is counted)."""
        now = time.perf_counter()
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return (
                f"the generator process failed {len(self._times) + 1} times within "
                f"{self.window_s / 60:g} minutes"
            )
        self._times.append(now)
        return None


class ImageSlot:
    """The shared-memory block one image at a time comes back through (H x W x 3 uint8).

    Args:
        shape: (H, W, 3).
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self._memory: shared_memory.SharedMemory | None = shared_memory.SharedMemory(
            create=True, size=int(np.prod(shape))
        )
        self.name = self._memory.name

    def read(self) -> np.ndarray:
        """A copy of the image in the slot."""
        assert self._memory is not None
        return np.ndarray(self.shape, dtype=np.uint8, buffer=self._memory.buf).copy()

    def release(self) -> None:
        if self._memory is not None:
            try:
                self._memory.close()
                self._memory.unlink()
            except FileNotFoundError:
                pass
            self._memory = None
