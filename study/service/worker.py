"""The generator process: load once, warm up, then generate one request at a time.

Runs as the target of a ``multiprocessing`` *spawn* process (a fresh interpreter: no torch
state, threads or locks inherited from the window's process). It talks to the parent over one
duplex pipe and three shared doubles/integers:

- ``heartbeat``: ``perf_counter`` written every ``heartbeat_interval_s`` by a thread; a stale
  value means the process is frozen (stopped, stuck holding the interpreter lock, swapped out).
- ``progress``: ``perf_counter`` at the start of each request and after each sampler step (also
  after loading and after each warm-up step); a stale value during a request means the
  generation hangs, during the start that the start hangs.
- ``abort_job``: the parent writes a job id here to abort that job at the next sampler step
  (cancellation, or pre-emption of a prefetch by a foveated request).

Images go back through one shared-memory slot (H x W x 3 uint8) owned by the parent; the pipe
carries only small messages: ``("ready", info)``, ``("failed", message)``, and per job
``("done" | "aborted" | "error", job_id, fields)``; a finished job's ``fields["result"]`` is its
``GenerationResult`` with ``image=None``. An ``error``'s ``fields["user_error"]`` says whether the
generator refused the request (a ``FoveaError``: the request is wrong, the parent fails it) or
something else broke (a CUDA out-of-memory, any other exception: the parent restarts this
process, as after a crash).

SIGINT is ignored: a Ctrl-C reaches the whole process group, and the parent shuts this process
down itself.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the child needs, in plain types: unpickling it imports nothing heavy, so the
    thread settings below are in place before torch loads.

    Attributes:
        model, device, dtype, lora: ``generator.loading.load_generator`` arguments.
        geometry: ``protocol.geometry.geometry_record`` of the stimulus geometry.
        num_steps: sampler steps (None: the model's default).
        conditionings: every class or prompt the session draws; the warm-up generates with
            the first and encodes them all (a prompt is encoded once, before any trial).
        torch_threads: intra-op threads (the window keeps the remaining core(s)).
        nice: added to the process's scheduling niceness (0: unchanged).
        heartbeat_interval_s: heartbeat period.
        slot_name: shared-memory block for images; slot_shape: (H, W, 3).
        hash_weights: compute the weights' SHA-256 at start (``stimuli.fingerprint``).
        scenes: scene-source spec of the session (``pool`` or a folder; None: ``pool``).
        reference: ``generated`` (a ``full`` request is the full-resolution twin) or
            ``original`` (the photograph the seed's scene came from).
        warm_full: warm up the full-resolution layout too (False when twins come from a
            stimulus set or are originals: a full generation at start would be wasted).
    """

    model: str
    device: str
    dtype: str | None
    geometry: dict
    num_steps: int | None
    conditionings: tuple[int | str, ...]
    torch_threads: int
    nice: int
    heartbeat_interval_s: float
    slot_name: str
    slot_shape: tuple[int, int, int]
    hash_weights: bool = False
    scenes: str | None = None
    reference: str = "generated"
    warm_full: bool = True
    lora: str | None = None
    decode: str = "full"


class _Aborted(Exception):
    pass


def worker_main(config: WorkerConfig, conn, heartbeat, progress, abort_job) -> None:
    """Child process entry point (see the module docstring)."""
    # Ctrl-C in the terminal signals the whole foreground process group, this process too: the
    # window's process decides what a Ctrl-C means and shuts this one down (``close``), so a
    # KeyboardInterrupt here would only kill it mid-request and be taken for a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(config.torch_threads)
    parent = os.getppid()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            heartbeat.value = time.perf_counter()
            if os.getppid() != parent:  # the window's process died: do not linger
                os._exit(3)
            stop.wait(config.heartbeat_interval_s)

    heartbeat.value = time.perf_counter()
    threading.Thread(target=beat, name="fovea-heartbeat", daemon=True).start()
    if config.nice:
        try:
            os.nice(config.nice)
        except OSError:
            pass
    try:
        state = _load(config, progress)
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("failed", _describe(error)))
        return
    conn.send(("ready", state.info))
    try:
        _serve(state, conn, progress, abort_job)
    finally:
        stop.set()
        state.close()


@dataclass
class _State:
    images: object  # study.service.images.TrialImages
    slot: object
    image: object  # numpy view on the slot
    info: dict

    def close(self) -> None:
        self.image = None
        self.slot.close()


def _load(config: WorkerConfig, progress) -> _State:
    from multiprocessing import shared_memory

    import numpy as np
    import torch

    from generator import LayoutSpec, load_generator
    from generator.pipeline import sampler_name
    from protocol.geometry import geometry_from_record
    from study.service.images import TrialImages

    torch.set_num_threads(config.torch_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (only possible once per process)
        pass
    geometry = geometry_from_record(config.geometry)
    t0 = time.perf_counter()
    generator = load_generator(
        config.model,
        device=config.device,
        dtype=config.dtype,
        lora=config.lora,
        decode=config.decode,
    )
    load_s = time.perf_counter() - t0
    progress.value = time.perf_counter()
    images = TrialImages(
        generator=generator,
        geometry=geometry,
        scenes=config.scenes,
        reference=config.reference,
        steps=config.num_steps,
    )
    # Warm-up: first calls allocate and choose kernels; both layout code paths are exercised so
    # that neither the twin nor the first foveated trial pays for it.
    t0 = time.perf_counter()
    centre = (geometry.image_width_px / 2, geometry.image_height_px / 2)
    warmups = [(LayoutSpec(mode="acuity"), centre)]
    if config.warm_full:
        warmups.insert(0, (LayoutSpec(mode="full"), None))
    slowest_step_s = 0.0
    for spec, gaze in warmups:
        warm = generator.generate(
            seed=0,
            geometry=geometry,
            gaze_px=gaze,
            spec=spec,
            condition=config.conditionings[0],
            steps=config.num_steps,
            scene=images.scene(0),
            on_step=lambda step: setattr(progress, "value", time.perf_counter()),
        )
        slowest_step_s = max([slowest_step_s, *warm.step_seconds])
    conditions_encoded = generator.prepare_conditions(config.conditionings)
    generator.prepare_static_shapes(geometry, condition=config.conditionings[0])
    warmup_s = time.perf_counter() - t0
    slot = shared_memory.SharedMemory(name=config.slot_name)
    image = np.ndarray(config.slot_shape, dtype=np.uint8, buffer=slot.buf)
    info = {
        "service": "process",
        "pid": os.getpid(),
        "model": config.model,
        "model_id": getattr(generator, "model_id", config.model),
        "lora": config.lora,
        "decode": config.decode,
        "sampler": sampler_name(generator),
        "dtype": generator.dtype_name,
        "static_shapes_error": generator.static_shapes_error,
        "device": config.device,
        "token_px": int(generator.token_px),
        "steps": int(config.num_steps or generator.steps),
        "torch_threads": torch.get_num_threads(),
        "load_s": load_s,
        "warmup_s": warmup_s,
        "warmup_step_s_max": slowest_step_s,
        "conditions_encoded": conditions_encoded,
        "scene_factor": generator.scene_factor,
        "reference": config.reference,
    }
    if config.hash_weights:
        from generator.weights_hash import weights_sha256

        t0 = time.perf_counter()
        info["weights_sha256"] = weights_sha256(generator)
        info["hash_s"] = time.perf_counter() - t0
    return _State(images, slot, image, info)


def _serve(state: _State, conn, progress, abort_job) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        _, job_id, request = message
        started_s = time.perf_counter()
        progress.value = started_s

        def on_step(step: int, job_id=job_id) -> None:
            progress.value = time.perf_counter()
            if abort_job.value == job_id:
                raise _Aborted(step)

        try:
            if abort_job.value == job_id:
                raise _Aborted(-1)
            out = state.images.make(request, on_step=on_step)
            generated_s = time.perf_counter()
            if out.image.shape != state.image.shape:
                raise RuntimeError(
                    f"generator returned a {out.image.shape} image, the service expects "
                    f"{state.image.shape}"
                )
            state.image[...] = out.image
            conn.send(
                (
                    "done",
                    job_id,
                    {
                        "started_s": started_s,
                        "generated_s": generated_s,
                        "written_s": time.perf_counter(),
                        # The result without its pixels (they are in the slot).
                        "result": dataclasses.replace(out, image=None),
                    },
                )
            )
        except _Aborted as aborted:
            conn.send(("aborted", job_id, {"started_s": started_s, "step": aborted.args[0]}))
        except Exception as error:  # noqa: BLE001 - the request fails, the process goes on
            from generator.errors import FoveaError

            conn.send(
                (
                    "error",
                    job_id,
                    {
                        "started_s": started_s,
                        "message": _describe(error),
                        "user_error": isinstance(error, FoveaError),
                        "traceback": traceback.format_exc(limit=8),
                    },
                )
            )


def _describe(error: BaseException) -> str:
    from generator.errors import FoveaError

    if isinstance(error, FoveaError):
        return str(error)
    return f"{type(error).__name__}: {error}"
