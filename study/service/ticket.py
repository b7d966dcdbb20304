"""``ServiceTicket``: a ``GenerationTicket`` with per-request timings, real cancellation and the
speculation record."""

from __future__ import annotations

from study.generation import GenerationRequest, GenerationTicket


class ServiceTicket(GenerationTicket):
    """Handle of one request to ``ProcessGenerationService``; poll ``done()`` each frame.

    All times are ``time.perf_counter`` seconds (CLOCK_MONOTONIC on Linux, the same clock in the
    generator process).

    Attributes:
        ticket_id: running number within the service.
        speculative: submitted through ``submit_speculative``.
        dispatched_s: sent to the generator process.
        started_s: the generator began sampling.
        generated_s: the image was decoded in the generator process.
        received_s: the image was copied out of shared memory in this process.
        resolved_s: ``resolve`` was called (the gaze settled), or submit time for plain requests.
        cache_hit: a full-resolution twin served from the service's cache.
        reused_speculative: after ``resolve``: the speculative image was kept (True) or replaced.
        gaze_error_deg: after ``resolve``: angle between the speculated and the measured gaze.
        replaces: the speculative ticket this one replaced (a regeneration at the measured gaze).
    """

    def __init__(
        self, request: GenerationRequest, *, service, ticket_id: int, speculative: bool = False
    ):
        super().__init__(request, speculative=speculative)
        self._service = service
        self._job = None
        self.ticket_id = ticket_id
        self.dispatched_s: float | None = None
        self.started_s: float | None = None
        self.generated_s: float | None = None
        self.received_s: float | None = None
        self.gaze_error_deg: float | None = None
        self.replaces: ServiceTicket | None = None
        self.attempts = 0

    def cancel(self) -> None:
        """Cancel: the ticket finishes at once with ``GenerationCancelled``. A queued foveated
        request is dropped, a running one aborted at the next sampler step. A twin (``full``)
        goes on generating into the service's cache (it is wanted again when the trial is
        re-queued). No effect once done."""
        if self.done():
            return
        self.cancelled = True
        self._service._cancel(self, reason="cancelled by the caller")

    @property
    def timings(self) -> dict:
        """JSON-able per-request timings in seconds (None where a stage did not happen).

        ``GenerationTicket.timings`` and: ``queue_wait_s``: submit to sampling start (queue and
        dispatch); ``generation_s``: sampling and decoding; ``transfer_s``: decoded image to
        image in this process.
        """

        def span(a, b):
            return None if a is None or b is None else max(0.0, b - a)

        return {
            "ticket_id": self.ticket_id,
            **super().timings,
            "gaze_error_deg": self.gaze_error_deg,
            "attempts": self.attempts,
            "queue_wait_s": span(self.submitted_s, self.started_s),
            "generation_s": span(self.started_s, self.generated_s),
            "transfer_s": span(self.generated_s, self.received_s),
        }

    def _finish(self, result, error) -> None:
        # Finishing happens under the service lock; a second finish (a late result of a
        # cancelled request) is ignored so that a ticket's outcome never changes.
        if self.done():
            return
        super()._finish(result, error)
