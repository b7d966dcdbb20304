"""``ThreadGenerationService``: the generator in a worker thread of the window's process.

Quicker to start than the process service (for tests and small models); torch releases the
interpreter lock inside its kernels, so the window keeps flipping. Requests run one at a time:
foveated ones first (a participant is waiting), then twins someone waits for, then prefetched
twins; first in, first out within each. Twins are cached (``study.service.cache.TwinCache``).
It does not speculate: the worker cannot abort a running generation. Nothing restarts the
generator: any generation error fails its request (``GenerationFailed``) and the session stops
(resumable); the process service restarts a crashed generator instead.
"""

from __future__ import annotations

import os
import queue
import threading
import time

from generator.errors import FoveaError
from study.generation import GenerationRequest, GenerationTicket
from study.service.cache import TwinCache, twin_key
from study.service.errors import GenerationCancelled, GenerationFailed


def generation_failed(request: GenerationRequest, error: BaseException) -> GenerationFailed:
    """The generator's exception as the error the trial expects (``GenerationFailed``, one line:
    the study stops the session with it instead of a traceback), like the process service's."""
    what = f"request ({request.kind}, seed {request.seed}, conditioning {request.conditioning!r})"
    text = str(error) if isinstance(error, FoveaError) else f"{type(error).__name__}: {error}"
    failed = GenerationFailed(f"generation of {what} failed: {text}")
    failed.__cause__ = error
    return failed


# Queue priorities: close() skips prefetches nobody waits for.
_FOVEATED, _TWIN, _STOP, _PREFETCH = 0, 1, 2, 3


class ThreadGenerationService:
    """Runs ``FoveatedGenerator`` in one worker thread; implements ``GenerationService``.

    Args:
        model: model name or directory (``generator.loading.load_generator``).
        device: torch device.
        geometry: ``generator.StimulusGeometry`` of the stimulus on the display.
        num_steps: sampler steps, None for the model's default.
        conditionings: every class or prompt the session draws; the warm-up generates with
            the first and encodes them all (a prompt is encoded once, before any trial).
        torch_threads: intra-op threads for the worker (leave a core for the window).
        twin_cache_size: full-resolution twins kept (LRU; the protocol's ``twin_cache_size``).
        hash_weights: report ``weights_sha256`` in ``start()``'s info (``--stimulus-set``).
        scenes: scene-source spec (``pool`` or a folder; None: ``pool``), scene models only.
        reference: ``generated`` (twins) or ``original`` (photographs) for ``full`` requests.
        warm_full: warm up with a full-resolution generation (else a foveated one, when twins
            come from a stimulus set or are originals).
        lora: a LoRA file merged into ``model`` at load (``[stimulus] lora``), or None.
        decode: how foveated images are decoded (``[stimulus] decode``).
    """

    def __init__(
        self,
        *,
        model: str,
        device: str,
        geometry,
        num_steps: int | None,
        conditionings: tuple[int | str, ...] = (0,),
        torch_threads: int | None = None,
        twin_cache_size: int = 64,
        hash_weights: bool = False,
        scenes: str | None = None,
        reference: str = "generated",
        warm_full: bool = True,
        lora: str | None = None,
        decode: str = "full",
        dtype: str | None = None,
    ) -> None:
        self._hash_weights = hash_weights
        self._warm_full = warm_full
        self._scenes = scenes
        self._reference = reference
        self._model = model
        self._lora = lora
        self._decode = decode
        self._dtype = dtype
        self._device = device
        self._geometry = geometry
        self._num_steps = num_steps
        self._torch_threads = torch_threads
        self._conditionings = tuple(conditionings)
        self._queue: queue.PriorityQueue[tuple[int, int, GenerationTicket | None]] = (
            queue.PriorityQueue()
        )
        self._lock = threading.Lock()
        self._twins = TwinCache(twin_cache_size)
        # Tickets of later requests for a twin already being made: each caller has its own
        # (its latency counts from its request; cancelling it leaves the others waiting).
        self._joined: dict[tuple, list[GenerationTicket]] = {}
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._images = None  # study.service.images.TrialImages, made by start()
        self._conditions_encoded = 0

    def start(self) -> dict:
        """Load and warm up the generator, start the worker; returns the service's description."""
        import torch

        from generator import load_generator
        from generator.pipeline import sampler_name
        from study.service.images import TrialImages

        threads = self._torch_threads or max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        generator = load_generator(
            self._model,
            device=self._device,
            dtype=self._dtype,
            lora=self._lora,
            decode=self._decode,
        )
        self._images = TrialImages(
            generator=generator,
            geometry=self._geometry,
            scenes=self._scenes,
            reference=self._reference,
            steps=self._num_steps,
        )
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._warm_up()
        warm_s = time.perf_counter() - t0
        self._thread = threading.Thread(target=self._run, name="fovea-generation", daemon=True)
        self._thread.start()
        info = {
            "service": "thread",
            "model": self._model,
            "model_id": getattr(generator, "model_id", self._model),
            "lora": self._lora,
            "decode": self._decode,
            "sampler": sampler_name(generator),
            "dtype": generator.dtype_name,
            "static_shapes_error": generator.static_shapes_error,
            "device": self._device,
            "token_px": int(generator.token_px),
            "torch_threads": threads,
            "load_s": load_s,
            "warmup_s": warm_s,
            "conditions_encoded": self._conditions_encoded,
            "scene_factor": generator.scene_factor,
            "reference": self._reference,
        }
        if self._hash_weights:
            from generator.weights_hash import weights_sha256

            info["weights_sha256"] = weights_sha256(generator)
        return info

    def _warm_up(self) -> None:
        # First calls allocate and pick kernels; keep that out of trial latencies.
        from generator import LayoutSpec

        g = self._geometry
        centre = (g.image_width_px / 2, g.image_height_px / 2)
        self._images.make(
            GenerationRequest(
                kind="foveated",
                seed=0,
                conditioning=self._conditionings[0],
                spec=LayoutSpec(mode="full") if self._warm_full else LayoutSpec(mode="acuity"),
                gaze_px=None if self._warm_full else centre,
            )
        )
        generator = self._images.generator
        self._conditions_encoded = generator.prepare_conditions(self._conditionings)
        generator.prepare_static_shapes(g, condition=self._conditionings[0])

    def submit(self, request: GenerationRequest) -> GenerationTicket:
        """Queue a request. A twin comes from the cache when there; a twin already being
        generated (a prefetch) is not generated twice: the ticket returned finishes with it."""
        if self._thread is None:
            raise RuntimeError("start() the service first")
        if request.kind != "full":
            return self._enqueue(request, _FOVEATED)
        key = twin_key(request)
        with self._lock:
            cached = self._twins.get(key)
            if cached is not None:
                ticket = GenerationTicket(request)
                ticket.cache_hit = True
                ticket._finish(cached, None)
                return ticket
            if self._twins.pending(key) is not None:
                joined = GenerationTicket(request)
                self._joined.setdefault(key, []).append(joined)
                return joined
            ticket = self._enqueue(request, _TWIN)
            self._twins.start(key, ticket)
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

    def prefetch_twin(self, *, seed: int, conditioning: int | str) -> None:
        """Generate a twin ahead, after every request someone waits for, into the cache."""
        from generator import LayoutSpec

        request = GenerationRequest(
            kind="full",
            seed=int(seed),
            conditioning=conditioning,
            spec=LayoutSpec(mode="full"),
            gaze_px=None,
        )
        key = twin_key(request)
        with self._lock:
            if self._twins.get(key) is not None or self._twins.pending(key) is not None:
                return
            self._twins.start(key, self._enqueue(request, _PREFETCH))

    def close(self) -> None:
        if self._thread is not None:
            self._enqueue(None, _STOP)
            self._thread.join(timeout=60)
            self._thread = None

    def _enqueue(self, request: GenerationRequest | None, priority: int) -> GenerationTicket | None:
        ticket = None if request is None else GenerationTicket(request)
        self._sequence += 1
        self._queue.put((priority, self._sequence, ticket))
        return ticket

    def _run(self) -> None:
        while True:
            _, _, ticket = self._queue.get()
            if ticket is None:
                return
            result, error = None, GenerationCancelled("the request was cancelled")
            if not ticket.cancelled or self._joined_waiting(ticket.request):
                try:
                    result, error = self._images.make(ticket.request), None
                except BaseException as caught:  # noqa: BLE001 - handed to the frame loop
                    error = generation_failed(ticket.request, caught)
            joined = []
            if ticket.request.kind == "full":
                with self._lock:
                    key = twin_key(ticket.request)
                    if result is not None:
                        self._twins.finish(key, result)
                    else:
                        self._twins.drop(key, ticket)
                    joined = self._joined.pop(key, [])
            ticket._finish(result, error)
            for other in joined:
                other._finish(result, error)

    def _joined_waiting(self, request: GenerationRequest) -> bool:
        """Another caller waits for this twin (its first ticket may be cancelled)."""
        if request.kind != "full":
            return False
        with self._lock:
            return any(not t.cancelled for t in self._joined.get(twin_key(request), []))
