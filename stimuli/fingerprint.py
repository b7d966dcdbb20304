"""What identifies a generator for a stimulus set: its weights' hash and sampler settings.

Two generators with the same fingerprint produce the same image for the same (seed,
conditioning, layout, gaze, geometry) on the same kind of device; the stimulus cache keys on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from generator.weights_hash import weights_sha256
from stimuli.store import sha256_file

__all__ = ["ModelFingerprint", "fingerprint", "weights_sha256"]


@dataclass(frozen=True)
class ModelFingerprint:
    """Identity of a loaded generator.

    Attributes:
        model: the name or directory it was loaded from.
        model_id: the generator's own name (``FoveatedGenerator.model_id``), a pipeline
            directory named by its folder's name, not its path (part of every image's key: a
            set built, resumed or sharded on machines that hold the directory at other paths
            keeps one key per image; the weights' hash tells directories apart).
        weights_sha256: SHA-256 over every weight tensor (name, dtype, shape, bytes) the
            generator samples with (``generator.weights_hash``).
        steps, shift, guidance_scale: sampler settings used.
        token_px: image pixels per fine token side.
        device_type: ``cpu``, ``cuda``, ``mps`` (results differ numerically across kinds).
        dtype: weight dtype name.
        lora_sha256: SHA-256 of the LoRA file merged into the model (``[stimulus] lora``; it also
            changes ``weights_sha256`` and, with the release's token rules, the layouts), or
            None: left out of ``as_dict()``, so sets built without a LoRA keep their keys.
        decode: how foveated images were decoded (``[stimulus] decode``); left out of
            ``as_dict()`` when ``full``, so older sets keep their keys.
        sampler: ``euler`` or ``renoise`` (``generator.sampler``); left out of ``as_dict()``
            when ``euler``, so older sets keep their keys.
    """

    model: str
    model_id: str
    weights_sha256: str
    steps: int
    shift: float
    guidance_scale: float
    token_px: int
    device_type: str
    dtype: str
    lora_sha256: str | None = None
    decode: str = "full"
    sampler: str = "euler"

    def as_dict(self) -> dict:
        record = asdict(self)
        if record["lora_sha256"] is None:
            del record["lora_sha256"]
        if record["decode"] == "full":
            del record["decode"]
        if record["sampler"] == "euler":
            del record["sampler"]
        return record


def fingerprint(
    generator, *, model: str, steps: int | None, lora: str | None = None
) -> ModelFingerprint:
    """The fingerprint of ``generator`` (a ``FoveatedGenerator``) sampled with ``steps``, with
    the LoRA file ``lora`` merged into it (None: none)."""
    d = generator.denoiser
    return ModelFingerprint(
        model=str(model),
        model_id=_location_free(str(generator.model_id), model=str(model)),
        weights_sha256=weights_sha256(generator),
        steps=int(steps or generator.steps),
        shift=float(generator.shift),
        guidance_scale=float(generator.guidance_scale),
        token_px=int(generator.token_px),
        device_type=str(d.device.type) if hasattr(d, "device") else "cpu",
        dtype=str(d.dtype).removeprefix("torch.") if hasattr(d, "dtype") else "float32",
        lora_sha256=None if lora is None else sha256_file(Path(lora)),
        decode=str(getattr(generator, "decode", "full")),
        sampler=str(getattr(generator, "sampler", "euler")),
    )


def _location_free(model_id: str, *, model: str) -> str:
    """``model_id`` with the path of pipeline directory ``model`` replaced by its name."""
    from protocol.stimulus_settings import is_pipeline_directory

    if not is_pipeline_directory(model):
        return model_id
    return model_id.replace(str(Path(model)), Path(model).name)


def keep_recorded_model_id(record: dict, recorded: list[dict]) -> dict:
    """Fingerprint ``record`` (``as_dict()``) with the ``model_id`` of a record in ``recorded``
    (the set folder's manifests' ``model``) that differs from it only in where the model lay:
    sets built when a directory's ``model_id`` was its path keep their keys, so their rebuild
    or resumed build reuses their images."""
    where = ("model", "model_id")
    for old in recorded:
        same = {k: v for k, v in old.items() if k not in where} == {
            k: v for k, v in record.items() if k not in where
        }
        if same and isinstance(old.get("model_id"), str):
            return dict(record, model_id=old["model_id"])
    return record
