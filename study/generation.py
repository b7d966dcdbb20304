"""Generation requests that never block the window's frame loop.

The study submits a ``GenerationRequest`` and polls its ``GenerationTicket`` once per frame. This
module's ``ThreadGenerationService`` runs the generator in a worker thread of the window's process
(torch releases the interpreter lock inside its kernels). A separate-process service (issue 6:
speculative start, crash recovery) plugs in by implementing ``GenerationService`` and being
returned by ``make_generation_service``; the study needs nothing else.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
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

    def close(self) -> None: ...


class ThreadGenerationService:
    """Runs ``FoveatedGenerator`` in one worker thread, first-in first-out.

    Args:
        model: model name or directory (``FoveatedGenerator.load``).
        device: torch device.
        geometry: ``generator.StimulusGeometry`` of the stimulus on the display.
        num_steps: sampler steps, None for the model's default.
        torch_threads: intra-op threads for the worker (leave a core for the window).
        hash_weights: report ``weights_sha256`` in ``start()``'s info (``--stimulus-set``).
        scenes: scene-source spec (``pool`` or a folder; None: ``pool``), scene models only.
        reference: ``generated`` (twins) or ``original`` (photographs) for ``full`` requests.
        warm_full: warm up with a full-resolution generation (else a foveated one, when twins
            come from a stimulus set or are originals).
    """

    def __init__(
        self,
        *,
        model: str,
        device: str,
        geometry,
        num_steps: int | None,
        warmup_conditioning: int | str = 0,
        torch_threads: int | None = None,
        hash_weights: bool = False,
        scenes: str | None = None,
        reference: str = "generated",
        warm_full: bool = True,
    ) -> None:
        self._hash_weights = hash_weights
        self._warm_full = warm_full
        self._scenes = scenes
        self._reference = reference
        self._model = model
        self._device = device
        self._geometry = geometry
        self._num_steps = num_steps
        self._torch_threads = torch_threads
        self._warmup_conditioning = warmup_conditioning
        # Foveated requests (a participant is waiting) go before twins; FIFO within a kind.
        self._queue: queue.PriorityQueue[tuple[int, int, GenerationTicket | None]] = (
            queue.PriorityQueue()
        )
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._images = None  # study.service.images.TrialImages, made by start()

    def start(self) -> dict:
        import os

        import torch

        from generator import FoveatedGenerator, LayoutSpec
        from study.service.images import TrialImages

        threads = self._torch_threads or max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        generator = FoveatedGenerator.load(self._model, device=self._device)
        self._images = TrialImages(
            generator=generator,
            geometry=self._geometry,
            scenes=self._scenes,
            reference=self._reference,
            steps=self._num_steps,
        )
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        # Warm-up: first calls allocate and pick kernels; keep that out of trial latencies.
        g = self._geometry
        centre = (g.image_width_px / 2, g.image_height_px / 2)
        self._images.make(
            GenerationRequest(
                kind="foveated",
                seed=0,
                conditioning=self._warmup_conditioning,
                spec=LayoutSpec(mode="full") if self._warm_full else LayoutSpec(mode="acuity"),
                gaze_px=None if self._warm_full else centre,
            )
        )
        warm_s = time.perf_counter() - t0
        self._thread = threading.Thread(target=self._run, name="fovea-generation", daemon=True)
        self._thread.start()
        info = {
            "service": "thread",
            "model": self._model,
            "model_id": getattr(generator, "model_id", self._model),
            "device": self._device,
            "token_px": int(generator.token_px),
            "torch_threads": threads,
            "load_s": load_s,
            "warmup_s": warm_s,
            "scene_factor": generator.scene_factor,
            "reference": self._reference,
        }
        if self._hash_weights:
            from stimuli.fingerprint import weights_sha256

            info["weights_sha256"] = weights_sha256(generator)
        return info

    def submit(self, request: GenerationRequest) -> GenerationTicket:
        if self._thread is None:
            raise RuntimeError("start() the service first")
        ticket = GenerationTicket(request)
        self._sequence += 1
        self._queue.put((0 if request.kind == "foveated" else 1, self._sequence, ticket))
        return ticket

    def submit_speculative(self, request: GenerationRequest) -> None:
        """No speculation here: the worker thread cannot abort a running generation, so a missed
        speculation would hold up the request at the measured gaze by a whole generation.
        Returns None (the trial submits at the measured gaze)."""
        return None

    def resolve(
        self, ticket: GenerationTicket, *, gaze_px: tuple[float, float], tolerance_deg: float
    ) -> GenerationTicket:
        """Never needed: ``submit_speculative`` makes no tickets."""
        raise ValueError(
            "resolve() takes a ticket from submit_speculative(); this service makes none"
        )

    def close(self) -> None:
        if self._thread is not None:
            self._sequence += 1
            self._queue.put((2, self._sequence, None))
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        while True:
            _, _, ticket = self._queue.get()
            if ticket is None:
                return
            if ticket.cancelled:
                ticket._finish(None, RuntimeError("cancelled"))
                continue
            try:
                ticket._finish(self._images.make(ticket.request), None)
            except BaseException as error:  # noqa: BLE001 - handed to the frame loop
                ticket._finish(None, error)


def make_generation_service(
    *,
    kind: Literal["process", "thread"],
    model: str,
    device: str,
    geometry,
    num_steps: int | None,
    warmup_conditioning: int | str = 0,
    hash_weights: bool = False,
    scenes: str | None = None,
    reference: str = "generated",
    warm_full: bool = True,
) -> GenerationService:
    """The generation backend a protocol asks for (``[generation] service``); ``hash_weights``
    adds the weights' SHA-256 to ``start()``'s info (to compare with a stimulus set's);
    ``scenes``, ``reference`` and ``warm_full`` as in ``ThreadGenerationService``."""
    common = dict(
        model=model,
        device=device,
        geometry=geometry,
        num_steps=num_steps,
        warmup_conditioning=warmup_conditioning,
        hash_weights=hash_weights,
        scenes=scenes,
        reference=reference,
        warm_full=warm_full,
    )
    if kind == "process":
        from study.service import ProcessGenerationService

        return ProcessGenerationService(**common)
    if kind == "thread":
        return ThreadGenerationService(**common)
    raise ValueError(f"unknown generation service {kind!r}")


def protocol_generation_service(
    protocol, *, geometry, scenes: str, stimulus_set: bool = False
) -> GenerationService:
    """The (not yet started) service a session of ``protocol`` uses, with scene-source spec
    ``scenes`` (``protocol.scenes.scenes_spec``); ``stimulus_set``: twins come from a
    pre-generated set (its weights are compared with the running generator's)."""
    return make_generation_service(
        kind=protocol.generation.service,
        model=protocol.stimulus.model,
        device=protocol.stimulus.device,
        geometry=geometry,
        num_steps=protocol.stimulus.num_steps,
        warmup_conditioning=protocol.stimulus.conditionings()[0],
        hash_weights=stimulus_set,
        scenes=scenes,
        reference=protocol.stimulus.reference,
        warm_full=not stimulus_set and protocol.stimulus.reference == "generated",
    )


class LruCache:
    """A small least-recently-used map (twins and deadline-miss fallbacks)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict = OrderedDict()

    def get(self, key):
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key, value) -> None:
        if self.capacity <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
