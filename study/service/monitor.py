"""The process service's monitor thread: it sends queued jobs to the generator process one at
a time, takes results out of the image slot, pre-empts prefetches, and notices the process
exiting, freezing, hanging or raising something other than a ``FoveaError`` (a CUDA
out-of-memory...; then fails the running request's tickets with ``GeneratorCrashed`` and restarts
it, or gives up with ``ServiceUnavailable`` when ``RestartPolicy`` refuses; a restart whose
process fails to start counts as one more failure). A ``FoveaError`` (the
generator refused the request) fails the request with ``GenerationFailed`` and the process goes
on.

``MonitorLoop`` is part of ``ProcessGenerationService`` (``study.service.process``), whose lock,
queue, twin cache, child process, slot, counters and event log it uses; the window's thread never
runs any of it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from multiprocessing import connection as mp_connection

from study.service.cache import twin_key
from study.service.child import Child, exit_text, kill_child
from study.service.errors import GenerationFailed, GeneratorCrashed, ServiceUnavailable
from study.service.jobs import Job


class MonitorLoop:
    """The monitor thread's work (methods of ``ProcessGenerationService``)."""

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
                    self._on_failure(child, f"exited ({exit_text(child.process, wait=True)})")
                    continue
                self._on_message(child, message)
            elif child.process.sentinel in ready:
                self._on_failure(child, f"exited ({exit_text(child.process, wait=True)})")
                continue
            self._check_health(child)
            self._check_preempt(child)

    def _dispatch(self) -> None:
        with self._lock:
            if self._inflight is not None or self._child is None:
                return
            job = self._queue.take_next()  # jobs nobody waits for any more are dropped
            if job is None:
                return
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
            queued=len(self._queue),
        )

    def _on_message(self, child: Child, message) -> None:
        kind, job_id, fields = message
        if kind == "error" and not fields.get("user_error", False):
            self._on_generator_broke(child, job_id, fields)
            return
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
                    self._queue.add(job)  # pre-empted (or wanted again meanwhile): run later
                    self.counters["preempted"] += reason == "preempt"
                    event = ("preempt", {"job": job_id, "step": fields["step"]})
                else:
                    self._drop_twin_job(job)
                    event = ("aborted", {"job": job_id, "step": fields["step"]})
            else:  # the generator refused the request (a FoveaError): it fails, for good
                self._drop_twin_job(job)
                self.counters["failed"] += 1
                message_text = f"generation of {job.describe()} failed: {fields['message']}"
                for ticket in job.tickets:
                    ticket.started_s = fields["started_s"]
                    ticket._finish(None, GenerationFailed(message_text))
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

    def _on_generator_broke(self, child: Child, job_id: int, fields: dict) -> None:
        """The request raised something other than a ``FoveaError`` (a CUDA out-of-memory, a
        failing kernel): not the request's fault, and the process may be left in a bad state, so
        it is handled like a crash: the process is restarted (within ``RestartPolicy``) and the
        request's tickets fail with the retryable ``GeneratorCrashed`` (the trial is re-queued)."""
        with self._lock:
            job = self._inflight
            if job is None or job.job_id != job_id:
                return  # a job dropped by close()
        self.events.emit(
            "error",
            level=40,
            job=job_id,
            message=fields["message"],
            traceback=fields.get("traceback"),
        )
        self._on_failure(child, f"raised {fields['message']}")

    def _on_done(self, job: Job, fields: dict) -> None:
        image = self._slot.read()
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

    def _drop_twin_job(self, job: Job) -> None:
        if job.keep_twin:
            self._twins.drop(twin_key(job.request), job)

    def _check_health(self, child: Child) -> None:
        problem = child.health_problem(
            busy=self._inflight is not None,
            heartbeat_timeout_s=self.heartbeat_timeout_s,
            stall_timeout_s=self.stall_timeout_s,
        )
        if problem is not None:
            self._on_failure(child, problem, hang=True)

    def _check_preempt(self, child: Child) -> None:
        with self._lock:
            job = self._inflight
            if job is None or self._abort_reason is not None:
                return
            if self._queue.preempts(job):
                self._abort_reason = "preempt"
                child.abort_job.value = job.job_id

    def _on_failure(self, child: Child, what: str, *, hang: bool = False) -> None:
        """The process died or hangs: kill it, fail the in-flight tickets, schedule a restart."""
        kill_child(child)
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
                    self._queue.add(job)
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
        refusal = self._restarts.refusal()
        if refusal is not None:
            last = self._start_error
            self._give_up(refusal if last is None else f"{refusal}; the last restart: {last}")
            return
        self.counters["restarts"] += 1
        t0 = time.perf_counter()
        try:
            child = self._spawn(abort=lambda: self._state == "closed")
        except ServiceUnavailable as error:
            # A restart that fails to start (its process died while loading, or made no
            # progress) is one more failure: it is tried again while ``RestartPolicy`` allows.
            if self._state != "closed":
                self._start_error = str(error)
                self.events.emit(
                    "restart_failed",
                    level=40,
                    message=str(error),
                    restarts=self.counters["restarts"],
                )
            return
        self._start_error = None
        with self._lock:
            if self._state == "closed":
                kill_child(child)
                return
            self._child = child
            self._state = "ready"
        self.events.emit(
            "restart",
            level=30,
            pid=child.pid,
            restart_s=time.perf_counter() - t0,
            restarts=self.counters["restarts"],
            queued=len(self._queue),
        )

    def _give_up(self, reason: str) -> None:
        with self._lock:
            self._state = "broken"
            self._broken_reason = reason
            for job in self._queue.take_all():
                for ticket in job.tickets:
                    ticket._finish(
                        None, ServiceUnavailable(f"generation service stopped: {reason}")
                    )
            self._twins.clear_pending()
        self.events.emit("broken", level=50, reason=reason)
