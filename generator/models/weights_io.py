"""The default model's weights: where the shipped files are, saving and loading them, merging the
foveated post-training LoRA, and the shipped model as a :class:`FoveatedGenerator`.

Weights ship as safetensors files in ``generator/models/weights/``: the base model (trained on
full-resolution tokens), a LoRA adapter from foveated post-training, merged at load time so
inference pays nothing for it, the detail stage (:mod:`generator.models.detail`) and the periphery
stage (:mod:`generator.models.periphery`), each used when its file is there. ``variant="base"``
loads the base model without the LoRA (and without the periphery stage): the naive baseline. The
model's config travels in the safetensors metadata (``config``; the stages' in ``detail_config``
and ``periphery_config``), the LoRA's alpha / rank in ``lora_scale``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from generator.errors import FoveaError, safetensors_errors
from generator.models.default import DefaultModel, ModelConfig, SceneDenoiser, SceneEncoder
from generator.models.detail import DetailConfig, DetailNet
from generator.models.periphery import PeripheryConfig, PeripheryNet

WEIGHTS_DIR = Path(__file__).parent / "weights"
BASE_FILE = "default-base.safetensors"
LORA_FILE = "default-foveated-lora.safetensors"
DETAIL_FILE = "default-detail.safetensors"
PERIPHERY_FILE = "default-periphery.safetensors"
CARD_FILE = "default.json"
Variant = Literal["foveated", "base"]


def save_weights(model: DefaultModel, path: Path, *, dtype=torch.float16, metadata=None) -> None:
    """Save the model's state dict as safetensors (fp16 by default: half the bytes)."""
    _save_state(model, path, {"config": model.config_.as_dict()}, dtype=dtype, metadata=metadata)


def save_detail(net: DetailNet, path: Path, *, dtype=torch.float16, metadata=None) -> None:
    """Save the detail stage's state dict as safetensors, its config in the metadata."""
    _save_state(net, path, {"detail_config": net.config.as_dict()}, dtype=dtype, metadata=metadata)


def save_periphery(net: PeripheryNet, path: Path, *, dtype=torch.float16, metadata=None) -> None:
    """Save the periphery stage's state dict as safetensors, its config in the metadata."""
    config = {"periphery_config": net.config.as_dict()}
    _save_state(net, path, config, dtype=dtype, metadata=metadata)


def _save_state(net: torch.nn.Module, path: Path, configs: dict, *, dtype, metadata) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    meta = {k: json.dumps(v) for k, v in configs.items()}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)


def load_detail(path: Path, *, device: str = "cpu", dtype=torch.float32) -> DetailNet:
    """A :class:`DetailNet` from a file written by :func:`save_detail`."""
    net = _load_stage(path, "detail", DetailConfig, DetailNet)
    return _inference(net, device, dtype)


def load_periphery(path: Path, *, device: str = "cpu", dtype=torch.float32) -> PeripheryNet:
    """A :class:`PeripheryNet` from a file written by :func:`save_periphery`."""
    net = _load_stage(path, "periphery", PeripheryConfig, PeripheryNet)
    return _inference(net, device, dtype)


def _inference(net: torch.nn.Module, device: str, dtype) -> torch.nn.Module:
    """A conv stage ready to run: on ``device`` in ``dtype``, channels-last weights (its inputs
    are made channels-last too), eval mode, no gradients."""
    net = net.to(device, dtype).to(memory_format=torch.channels_last)
    return net.eval().requires_grad_(False)


def _load_stage(path: Path, what: str, config_cls, net_cls):
    """A conv stage (``what``: detail or periphery) from a file written by ``save_<what>``, its
    config in the metadata's ``<what>_config``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FoveaError(f"{what} weights {path} not found")
    with safetensors_errors(path, f"{what} weights"):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        key = f"{what}_config"
        if key not in meta:
            raise FoveaError(f"{path} has no {key!r} metadata; it was not written by save_{what}")
        net = net_cls(config_cls.from_dict(json.loads(meta[key])))
        state = {k: v.float() for k, v in load_file(str(path)).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FoveaError(
            f"{path} does not match the {what} net: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    return net


def load_model(
    path: Path, *, lora: Path | None = None, device: str = "cpu", dtype=torch.float32
) -> DefaultModel:
    """Build a :class:`DefaultModel` from a safetensors file (config in its metadata), merging an
    optional LoRA file (its ``lora_scale`` metadata gives alpha / rank)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FoveaError(f"model weights {path} not found")
    with safetensors_errors(path, "model weights"):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise FoveaError(f"{path} has no 'config' metadata; it was not written by save_weights")
        model = DefaultModel(ModelConfig.from_dict(json.loads(meta["config"])))
        state = {k: v.float() for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FoveaError(
            f"{path} does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    if lora is not None:
        merge_lora(model, lora)
    # Inference only: parameters that require grad break FlopCounterMode under no_grad.
    return model.to(device, dtype).eval().requires_grad_(False)


def merge_lora(model: DefaultModel, lora: Path) -> None:
    """Add a saved LoRA adapter's low-rank updates into the model's weights, in place.

    Keys are peft's ``transformer.<module>.lora_A/B.weight`` (the model's transformer); the
    merge itself is :func:`generator.release_lora.merge_lora`, scaled by the file's
    ``lora_scale`` metadata (alpha / rank)."""
    from safetensors import safe_open

    from generator.release_lora import load_lora_file
    from generator.release_lora import merge_lora as merge_into

    with safetensors_errors(lora, "post-training LoRA"):
        with safe_open(str(lora), framework="pt") as f:
            meta = f.metadata() or {}
        weights = load_lora_file(lora)
    merge_into(model.transformer, weights, scale=float(meta.get("lora_scale", "1.0")))


@dataclass
class DefaultWeights:
    """Where the default model's files are; ``exists`` says whether they are installed."""

    directory: Path = field(default_factory=lambda: WEIGHTS_DIR)

    @property
    def base(self) -> Path:
        return self.directory / BASE_FILE

    @property
    def lora(self) -> Path:
        return self.directory / LORA_FILE

    @property
    def detail(self) -> Path:
        return self.directory / DETAIL_FILE

    @property
    def periphery(self) -> Path:
        return self.directory / PERIPHERY_FILE

    @property
    def exists(self) -> bool:
        return self.base.is_file()


def build_generator(
    model: DefaultModel,
    *,
    model_id: str,
    steps: int | None = None,
    detail: DetailNet | None = None,
    periphery: PeripheryNet | None = None,
):
    """Wrap a :class:`DefaultModel` (and its optional detail and periphery stages) in the
    project's :class:`FoveatedGenerator`."""
    from generator.codecs import PixelCodec
    from generator.pipeline import FoveatedGenerator

    cfg = model.config_
    return FoveatedGenerator(
        # 0.05: training's x -> v clamp (generator.training.config TrainConfig.t_min).
        denoiser=SceneDenoiser(model, x_pred_t_min=0.05),
        encoder=SceneEncoder(model, detail=detail, periphery=periphery),
        codec=PixelCodec(cells_per_token=cfg.patch_px),
        model_id=model_id,
        steps=cfg.steps if steps is None else steps,
        shift=cfg.shift,
        sampler=cfg.sampler,
    )


def load_default_generator(
    *,
    device: str = "cpu",
    dtype=torch.float32,
    variant: Variant = "foveated",
    weights_dir: Path | None = None,
    periphery: bool = True,
):
    """The shipped default model as a :class:`FoveatedGenerator` (no network).

    Args:
        variant: ``foveated`` (base + merged post-training LoRA and the periphery stage, the
            default) or ``base`` (the naive baseline: the base model run on mixed-resolution
            tokens as is, with the detail stage but no periphery stage).
        weights_dir: folder with the weights (defaults to the package's ``weights/``).
        periphery: False leaves the periphery stage out even where its file is there: coarse
            tokens keep only what they carry (model id ``default-foveated-tokens-only``).
    """
    files = DefaultWeights(Path(weights_dir) if weights_dir else WEIGHTS_DIR)
    if not files.exists and weights_dir is not None:  # a folder the user named (--weights)
        raise FoveaError(
            f"{str(weights_dir)!r} holds no default model ({files.base.name} is missing): give "
            "a folder `fovea train export --out` wrote, or a copy of the shipped weights folder"
        )
    if not files.exists:
        raise FoveaError(
            f"the default model's weights are missing ({files.base}); train them with "
            "`fovea train base` or use --model tiny"
        )
    lora = None
    if variant == "foveated":
        if not files.lora.is_file():
            raise FoveaError(f"post-training LoRA {files.lora} is missing; use variant 'base'")
        lora = files.lora
    elif variant != "base":
        raise FoveaError(f"default model variant must be 'foveated' or 'base', got {variant!r}")
    model = load_model(files.base, lora=lora, device=device, dtype=dtype)
    detail = stage = None
    if files.detail.is_file():
        detail = load_detail(files.detail, device=device, dtype=dtype)
    # The periphery stage is foveated post-training of the detail stage: the naive baseline
    # (variant "base") has none.
    if detail is not None and variant == "foveated" and periphery and files.periphery.is_file():
        stage = load_periphery(files.periphery, device=device, dtype=dtype)
    model_id = f"default-{variant}" + ("" if periphery or variant == "base" else "-tokens-only")
    return build_generator(model, model_id=model_id, detail=detail, periphery=stage)
