"""The contract between the trial and a generation service: requests that never block the
window's frame loop.

The study submits a ``GenerationRequest`` and polls its ``GenerationTicket`` once per frame; a
finished ticket holds a ``GenerationResult``. ``GenerationService`` lists everything the trial
calls. The services live in ``study.service``: ``ProcessGenerationService`` (the generator in its
own process: speculative start, crash recovery) and ``ThreadGenerationService`` (a worker thread
of the window's process, for tests and small models).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np


@dataclass(frozen=True)
class GenerationRequest:
    """One image to generate.

    Attributes:
        kind: ``foveated`` (at ``gaze_px`` with ``spec``) or ``full`` (the reference the foveated
            image is compared with; gaze ignored): the full-resolution twin, or the original
            photograph of the seed's scene when the service runs with ``reference="original"``.
        seed: generation seed; the foveated image and its twin share it.
        conditioning: class label or prompt.
        spec: ``generator.LayoutSpec`` (``mode='full'`` for the twin).
        gaze_px: gaze in image pixels (x right, y down from the top-left); None for the twin.
        deadline_s: request-to-result budget in seconds, or None.
    """

    kind: Literal["foveated", "full"]
    seed: int
    conditioning: int | str
    spec: object
    gaze_px: tuple[float, float] | None
    deadline_s: float | None = None


@dataclass
class GenerationResult:
    """A finished generation.

    Attributes:
        image: (H, W, 3) uint8.
        tokens, tokens_full: token counts of the layout and of the full grid.
        token_ratio: tokens / tokens_full.
        seconds: generator time (``Generation.seconds``).
        sidecar: the generator's JSON-able record.
    """

    image: np.ndarray
    tokens: int
    tokens_full: int
    token_ratio: float
    seconds: float
    sidecar: dict = field(default_factory=dict)


class GenerationTicket:
    """Handle of a submitted request; poll ``done()`` each frame.

    Times use ``time.perf_counter`` (real seconds, also in simulated sessions: generation is
    real work).
    """

    def __init__(self, request: GenerationRequest, *, speculative: bool = False) -> None:
        self.request = request
        self.submitted_s = time.perf_counter()
        self.finished_s: float | None = None
        self._event = threading.Event()
        self._result: GenerationResult | None = None
        self._error: BaseException | None = None
        self.cancelled = False
        self.speculative = speculative
        # When the gaze the image is made for was known: at submit, or for a speculative ticket
        # when ``resolve`` kept it (the trial's deadline counts from here).
        self.resolved_s: float | None = None if speculative else self.submitted_s
        self.reused_speculative: bool | None = None  # set by ``resolve``
        self.cache_hit = False  # a twin served from the service's cache at submit

    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block up to ``timeout_s``; True when done (for simulated sessions and shutdown)."""
        return self._event.wait(timeout_s)

    def cancel(self) -> None:
        """Ask the service to skip the request if it has not started."""
        self.cancelled = True

    @property
    def latency_s(self) -> float | None:
        """Submit-to-result latency, None while pending."""
        return None if self.finished_s is None else self.finished_s - self.submitted_s

    def elapsed_s(self) -> float:
        return (self.finished_s or time.perf_counter()) - self.submitted_s

    @property
    def latency_from_resolve_s(self) -> float | None:
        """Gaze-settled-to-result latency (speculation hides the rest); None while pending."""
        if self.finished_s is None:
            return None
        start = self.resolved_s if self.resolved_s is not None else self.submitted_s
        return max(0.0, self.finished_s - start)

    @property
    def timings(self) -> dict:
        """JSON-able record of the request: kind, seed, speculation, cache hit, ``latency_s``
        (submit to result), ``latency_from_resolve_s`` (gaze settled to result) and
        ``deadline_missed`` (None where not known yet or without a deadline)."""
        deadline_s = self.request.deadline_s
        from_resolve_s = self.latency_from_resolve_s
        return {
            "kind": self.request.kind,
            "seed": self.request.seed,
            "speculative": self.speculative,
            "reused_speculative": self.reused_speculative,
            "cache_hit": self.cache_hit,
            "latency_s": self.latency_s,
            "latency_from_resolve_s": from_resolve_s,
            "deadline_missed": (
                None
                if deadline_s is None or from_resolve_s is None
                else bool(from_resolve_s > deadline_s)
            ),
        }

    def result(self) -> GenerationResult:
        """The result; raises the worker's exception if generation failed."""
        if not self.done():
            raise RuntimeError("generation not finished")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _finish(self, result: GenerationResult | None, error: BaseException | None) -> None:
        self._result, self._error = result, error
        self.finished_s = time.perf_counter()
        self._event.set()


class GenerationService(Protocol):
    """Everything the trial calls on a generator backend."""

    def start(self) -> dict:
        """Load and warm up; returns a JSON-able description (model, device, warm-up seconds)."""

    def submit(self, request: GenerationRequest) -> GenerationTicket:
        """Queue a request (a ``full`` one is served from the service's twin cache when there)."""

    def submit_speculative(self, request: GenerationRequest) -> GenerationTicket | None:
        """Start a foveated request at the fixation target (``request.gaze_px``) before the eyes
        arrive; None when this service does not speculate (then submit at the measured gaze)."""

    def resolve(
        self, ticket: GenerationTicket, *, gaze_px: tuple[float, float], tolerance_deg: float
    ) -> GenerationTicket:
        """Keep a speculative ticket when the measured gaze (image px) lies within
        ``tolerance_deg`` of its target, else cancel it and return a ticket at ``gaze_px``."""

    def prefetch_twin(self, *, seed: int, conditioning: int | str) -> None:
        """Generate a full-resolution twin ahead, after requests someone waits for, into the
        service's twin cache (a later ``submit`` of it is a cache hit or waits on it)."""

    def close(self) -> None: ...
