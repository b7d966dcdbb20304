"""Making and starting the generation service a protocol asks for: the one place sessions,
``fovea simulate`` and ``fovea bench realtime`` get their generator from."""

from __future__ import annotations

from typing import Literal

from study.generation import GenerationService


def make_generation_service(
    *,
    kind: Literal["process", "thread"],
    model: str,
    device: str,
    geometry,
    num_steps: int | None,
    conditionings: tuple[int | str, ...] = (0,),
    twin_cache_size: int = 64,
    hash_weights: bool = False,
    scenes: str | None = None,
    reference: str = "generated",
    warm_full: bool = True,
    lora: str | None = None,
    decode: str = "full",
    dtype: str | None = None,
    **process_options,
) -> GenerationService:
    """A (not yet started) generation service of ``kind`` (``[generation] service``).

    ``lora``: a LoRA file merged into ``model`` at load (``[stimulus] lora``); ``decode``: how
    foveated images are decoded (``[stimulus] decode``, :mod:`generator.decoding`); ``dtype``:
    the model's number format (``[stimulus] dtype``, :mod:`generator.precision`; None: its
    default).
    ``hash_weights`` adds the weights' SHA-256 to ``start()``'s info (to compare with a stimulus
    set's); ``conditionings``, ``twin_cache_size``, ``scenes``, ``reference`` and ``warm_full``
    as in ``study.service.thread.ThreadGenerationService``; ``process_options`` go to
    ``ProcessGenerationService`` only (``event_log``, ``nice``, timeouts).
    """
    common = dict(
        model=model,
        device=device,
        geometry=geometry,
        num_steps=num_steps,
        conditionings=conditionings,
        twin_cache_size=twin_cache_size,
        hash_weights=hash_weights,
        scenes=scenes,
        reference=reference,
        warm_full=warm_full,
        lora=lora,
        decode=decode,
        dtype=dtype,
    )
    if kind == "process":
        from study.service.process import ProcessGenerationService

        return ProcessGenerationService(**common, **process_options)
    if kind == "thread":
        from study.service.thread import ThreadGenerationService

        return ThreadGenerationService(**common)
    raise ValueError(f"unknown generation service {kind!r}")


def protocol_generation_service(
    protocol, *, geometry, scenes: str | None, stimulus_set: bool = False, **process_options
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
        conditionings=tuple(protocol.stimulus.conditionings()),
        twin_cache_size=protocol.generation.twin_cache_size,
        hash_weights=stimulus_set,
        scenes=scenes,
        reference=protocol.stimulus.reference,
        warm_full=not stimulus_set and protocol.stimulus.reference == "generated",
        lora=protocol.stimulus.lora,
        decode=protocol.stimulus.decode,
        dtype=protocol.stimulus.dtype,
        **process_options,
    )


def start_service(
    protocol,
    *,
    geometry,
    scenes: str | None,
    stimulus_set: bool = False,
    log=print,
    **process_options,
) -> GenerationService:
    """Make and start the service of ``protocol``; its start record is ``service.info``.

    Args:
        protocol: the validated ``protocol.schema.Protocol``.
        geometry: ``generator.StimulusGeometry`` of the stimulus.
        scenes: scene-source spec (``protocol.scenes.scenes_spec``).
        stimulus_set: twins come from a pre-generated set (see ``protocol_generation_service``).
        log: progress printer.
        process_options: ``ProcessGenerationService`` options (``event_log``, ``nice``, ...).

    Raises:
        ServiceUnavailable, FoveaError: the generator could not start (the service is closed).
    """
    service = protocol_generation_service(
        protocol, geometry=geometry, scenes=scenes, stimulus_set=stimulus_set, **process_options
    )
    log(f"loading generator {protocol.stimulus.model!r} on {protocol.stimulus.device} ...")
    try:
        service.info = service.start()
    except BaseException:
        service.close()
        raise
    return service
