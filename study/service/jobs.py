"""The process service's queue: jobs the generator process will run, in priority order.

Priorities: foveated requests first (a participant is waiting), then twins someone waits for,
then prefetched twins nobody waits for yet; first in, first out within each. A running prefetch
is pre-empted when a foveated request arrives.
Not thread-safe: the service calls it under its own lock.
"""

from __future__ import annotations

import dataclasses

from study.generation import GenerationRequest

FOVEATED, WAITED_FOR, PREFETCH = 0, 1, 2


@dataclasses.dataclass(eq=False)
class Job:
    """One generation the process will run; several tickets may wait on one twin.

    Attributes:
        job_id: running number (also the request's order).
        request: what to generate.
        tickets: the ``ServiceTicket`` objects waiting for it (none: a prefetch).
        keep_twin: a twin: its result goes into the twin cache.
        attempts: times it was sent to the generator process.
    """

    job_id: int
    request: GenerationRequest
    tickets: list
    keep_twin: bool
    attempts: int = 0

    @property
    def priority(self) -> int:
        if self.request.kind == "foveated":
            return FOVEATED
        return WAITED_FOR if self.tickets else PREFETCH

    @property
    def wanted(self) -> bool:
        """Someone waits for it, or it fills the twin cache."""
        return bool(self.tickets) or self.keep_twin

    def describe(self) -> str:
        r = self.request
        where = "" if r.gaze_px is None else f" at gaze ({r.gaze_px[0]:.1f}, {r.gaze_px[1]:.1f}) px"
        return f"request {self.job_id} ({r.kind}, seed {r.seed}, conditioning {r.conditioning!r}{where})"


class JobQueue:
    """Jobs waiting for the generator process."""

    def __init__(self) -> None:
        self.pending: list[Job] = []
        self._next_id = 0

    def next_id(self) -> int:
        """A new running number (jobs and tickets share the sequence)."""
        self._next_id += 1
        return self._next_id

    def new_job(self, request: GenerationRequest, *, tickets: list, keep_twin: bool) -> Job:
        return Job(self.next_id(), request, tickets, keep_twin)

    def add(self, job: Job) -> None:
        self.pending.append(job)

    def discard(self, job: Job) -> bool:
        """Remove ``job`` if queued; True when it was."""
        if job in self.pending:
            self.pending.remove(job)
            return True
        return False

    def take_next(self) -> Job | None:
        """The job to run now (jobs nobody wants any more are dropped), or None."""
        self.pending = [j for j in self.pending if j.wanted]
        if not self.pending:
            return None
        job = min(self.pending, key=lambda j: (j.priority, j.job_id))
        self.pending.remove(job)
        return job

    def preempts(self, running: Job) -> bool:
        """True when the running prefetch should make way for a waiting foveated request."""
        return running.priority == PREFETCH and any(j.priority == FOVEATED for j in self.pending)

    def take_all(self) -> list[Job]:
        jobs, self.pending = self.pending, []
        return jobs

    def __len__(self) -> int:
        return len(self.pending)
