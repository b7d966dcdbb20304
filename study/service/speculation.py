"""Speculative start: keep the image started at the fixation target, or regenerate it.

The fixation target's position is known before the eyes get there, so generation can start at
the target when it appears (``submit_speculative``). Once fixation is acquired the gaze is
measured and ``resolve`` keeps the speculative image when the measured gaze lies within
``tolerance_deg`` of the target (the exact angle between the two lines of sight, from the display
geometry); otherwise the speculation is cancelled and the image made at the measured gaze.
``SpeculativeRequests`` is that part of ``ProcessGenerationService``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from study.generation import GenerationRequest
from study.service.ticket import ServiceTicket


def gaze_distance_deg(geometry, a_px: tuple[float, float], b_px: tuple[float, float]) -> float:
    """Exact angle (deg) between the lines of sight to two image points (``resolve``'s metric)."""
    value = float(
        geometry.eccentricity_deg(float(a_px[0]), float(a_px[1]), (float(b_px[0]), float(b_px[1])))
    )
    return value if math.isfinite(value) else math.inf


@dataclass(frozen=True)
class SpeculationVerdict:
    """Whether a speculative image stands for the measured gaze.

    Attributes:
        keep: use the speculative image.
        gaze_error_deg: angle between the speculated target and the measured gaze.
        failed: the speculative request had already failed (always replaced).
    """

    keep: bool
    gaze_error_deg: float
    failed: bool


def judge_speculation(
    geometry, ticket, *, gaze_px: tuple[float, float], tolerance_deg: float
) -> SpeculationVerdict:
    """The verdict for speculative ``ticket`` (its ``request.gaze_px`` is the target) at the
    measured ``gaze_px`` (image pixels)."""
    target = ticket.request.gaze_px
    error_deg = float(
        geometry.eccentricity_deg(
            float(gaze_px[0]), float(gaze_px[1]), (float(target[0]), float(target[1]))
        )
    )
    failed = ticket.done() and ticket._error is not None
    return SpeculationVerdict(
        keep=error_deg <= tolerance_deg and not failed, gaze_error_deg=error_deg, failed=failed
    )


class SpeculativeRequests:
    """``submit_speculative`` and ``resolve`` (methods of ``ProcessGenerationService``, whose
    ``_submit``, ``_cancel``, geometry, counters and event log they use)."""

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
        verdict = judge_speculation(
            self._geometry, ticket, gaze_px=gaze_px, tolerance_deg=tolerance_deg
        )
        ticket.resolved_s = time.perf_counter()
        ticket.gaze_error_deg = error_deg = verdict.gaze_error_deg
        failed = verdict.failed
        if verdict.keep:
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
        measured = (float(gaze_px[0]), float(gaze_px[1]))
        fresh = self._submit(
            dataclasses.replace(ticket.request, gaze_px=measured), speculative=False
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
