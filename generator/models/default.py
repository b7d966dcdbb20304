"""The embedded default model: architecture, class conditioning, weights I/O and loading.

A diffusers ``FluxTransformer2DModel`` with a small config works directly in pixel space: each
fine token is a 16 x 16 RGB patch (``in_channels = 768``), and the network predicts the clean
patch (x-prediction, "Back to Basics: Let Denoising Generative Models Denoise", Li & He 2025),
which :class:`generator.denoiser.FluxDenoiser` turns into the sampler's velocity. Conditioning is a
learned class embedding fed as one "text" token (``encoder_hidden_states``) and as the pooled
projection; the extra last class is the unconditional (null) class.

Weights ship as two safetensors files in ``generator/models/weights/``: the base model (trained on
full-resolution tokens) and a LoRA adapter from foveated post-training, merged at load time so
inference pays nothing for it. ``variant="base"`` loads the base model alone: the naive baseline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch

from generator.data.sources import CLASSES
from generator.denoiser import Conditioning
from generator.errors import FoveaError

WEIGHTS_DIR = Path(__file__).parent / "weights"
BASE_FILE = "default-base.safetensors"
LORA_FILE = "default-foveated-lora.safetensors"
CARD_FILE = "default.json"
Variant = Literal["foveated", "base"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the default model (stored beside the weights).

    Attributes:
        patch_px: pixels per fine token side.
        heads, head_dim: attention heads and their width (hidden = heads * head_dim).
        double_blocks, single_blocks: Flux double-stream and single-stream blocks.
        joint_dim, pooled_dim: widths of the class "text" token and pooled vector.
        classes: class names; index ``len(classes)`` is the unconditional class.
        rope_axes: rotary dims for (log2 level, row, col); they sum to head_dim.
        steps, shift: default sampler settings.
    """

    patch_px: int = 16
    heads: int = 4
    head_dim: int = 64
    double_blocks: int = 1
    single_blocks: int = 6
    joint_dim: int = 64
    pooled_dim: int = 64
    classes: tuple[str, ...] = CLASSES
    rope_axes: tuple[int, int, int] = (8, 28, 28)
    steps: int = 10
    shift: float = 1.0

    @property
    def in_channels(self) -> int:
        return 3 * self.patch_px**2

    @property
    def null_class(self) -> int:
        return len(self.classes)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("classes", "rope_axes"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class DefaultModel(torch.nn.Module):
    """Transformer + class embedding tables.

    ``forward`` takes tokens (B, N, 768), ids (N, 3), t (B,) in [0, 1] (1 = noise) and class ids
    (B,), and returns the predicted clean tokens (B, N, 768).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        from diffusers import FluxTransformer2DModel

        self.config_ = config
        self.transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=config.in_channels,
            num_layers=config.double_blocks,
            num_single_layers=config.single_blocks,
            attention_head_dim=config.head_dim,
            num_attention_heads=config.heads,
            joint_attention_dim=config.joint_dim,
            pooled_projection_dim=config.pooled_dim,
            axes_dims_rope=config.rope_axes,
        )
        n = config.null_class + 1
        self.class_text = torch.nn.Parameter(torch.randn(n, 1, config.joint_dim) * 0.5)
        self.class_pooled = torch.nn.Parameter(torch.randn(n, config.pooled_dim) * 0.5)

    def forward(self, tokens, *, img_ids, txt_ids, t, class_ids):
        return self.transformer(
            hidden_states=tokens,
            encoder_hidden_states=self.class_text[class_ids],
            pooled_projections=self.class_pooled[class_ids],
            timestep=t,
            img_ids=img_ids,
            txt_ids=txt_ids,
            return_dict=False,
        )[0]


class ClassEncoder:
    """Condition -> :class:`Conditioning` from the model's learned class tables.

    A condition is a class index, a class name, or None / "" (unconditional).
    """

    text_len = 1

    def __init__(self, model: DefaultModel):
        self.model = model
        self.config = model.config_

    def class_index(self, condition) -> int:
        names = self.config.classes
        if condition is None or condition == "":
            return self.config.null_class
        if isinstance(condition, bool):
            raise FoveaError(f"condition must be a class index or name, got {condition!r}")
        if isinstance(condition, int) or (isinstance(condition, str) and condition.isdigit()):
            index = int(condition)
            if not 0 <= index < len(names):
                raise FoveaError(
                    f"class index {index} out of range: the default model has classes "
                    f"0..{len(names) - 1} ({', '.join(names)})"
                )
            return index
        if condition in names:
            return names.index(condition)
        raise FoveaError(f"unknown class {condition!r}; the default model knows {', '.join(names)}")

    @torch.no_grad()
    def encode(self, condition, *, device, dtype) -> Conditioning:
        i = self.class_index(condition)
        return Conditioning(
            text=self.model.class_text[i : i + 1].to(device, dtype),
            pooled=self.model.class_pooled[i : i + 1].to(device, dtype),
        )


def lora_deltas(lora_state: dict[str, torch.Tensor], *, scale: float) -> dict[str, torch.Tensor]:
    """peft LoRA tensors -> ``{base weight name: scale * B @ A}``.

    Keys look like ``<prefix>.<module>.lora_A.weight`` (peft's ``get_peft_model_state_dict``);
    the prefix ``base_model.model.`` is removed if present.
    """
    deltas = {}
    for key, a in lora_state.items():
        if ".lora_A." not in key:
            continue
        b = lora_state[key.replace(".lora_A.", ".lora_B.")]
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        deltas[f"{module}.weight"] = scale * (b.float() @ a.float())
    return deltas


def save_weights(model: DefaultModel, path: Path, *, dtype=torch.float16, metadata=None) -> None:
    """Save the model's state dict as safetensors (fp16 by default: half the bytes)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(model.config_.as_dict())}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)


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
    """Add a saved LoRA adapter's low-rank updates into the model's weights, in place."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(lora), framework="pt") as f:
        meta = f.metadata() or {}
    scale = float(meta.get("lora_scale", "1.0"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, delta in lora_deltas(load_file(str(lora)), scale=scale).items():
            if name not in params:
                raise FoveaError(f"LoRA {lora} updates {name!r}, which the model does not have")
            params[name] += delta.to(params[name].dtype)


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
    def exists(self) -> bool:
        return self.base.is_file()


def build_generator(model: DefaultModel, *, model_id: str, steps: int | None = None):
    """Wrap a :class:`DefaultModel` in the project's :class:`FoveatedGenerator`."""
    from generator.codecs import PixelCodec
    from generator.denoiser import FluxDenoiser
    from generator.pipeline import FoveatedGenerator

    cfg = model.config_
    return FoveatedGenerator(
        # 0.05: training's x -> v clamp (generator.training.config TrainConfig.t_min).
        denoiser=FluxDenoiser(model.transformer, prediction="x", x_pred_t_min=0.05),
        encoder=ClassEncoder(model),
        codec=PixelCodec(cells_per_token=cfg.patch_px),
        model_id=model_id,
        steps=cfg.steps if steps is None else steps,
        shift=cfg.shift,
    )


def load_default_generator(
    *,
    device: str = "cpu",
    dtype=torch.float32,
    variant: Variant = "foveated",
    weights_dir: Path | None = None,
):
    """The shipped default model as a :class:`FoveatedGenerator` (no network).

    Args:
        variant: ``foveated`` (base + merged post-training LoRA, the default) or ``base`` (the
            naive baseline: the base model run on mixed-resolution tokens as is).
        weights_dir: folder with the weights (defaults to the package's ``weights/``).
    """
    files = DefaultWeights(Path(weights_dir) if weights_dir else WEIGHTS_DIR)
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
    return build_generator(model, model_id=f"default-{variant}")
