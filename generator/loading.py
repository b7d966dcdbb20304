"""Model loading: built-in presets by name, real checkpoints from a local directory (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from generator.codecs import PixelCodec, VaeCodec
from generator.denoiser import FluxDenoiser
from generator.errors import FoveaError, safetensors_errors
from generator.model_directory import missing_components
from generator.pipeline import FoveatedGenerator
from generator.precision import DEFAULT_DTYPE, DTYPES
from generator.prompts import PromptEncoder

_DTYPES = {name: getattr(torch, name) for name in DTYPES}
#: The embedded default model's presets: name -> whether its periphery stage runs (without it,
#: coarse tokens keep only the detail they carry: foveation as the tokens alone give it).
DEFAULT_PRESETS = {"default": True, "default-tokens-only": False}


def load_generator(
    model: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    lora: str | Path | None = None,
    lora_scale: float = 1.0,
    token_rules: str | None = None,
    decode: str = "full",
    static_shapes: bool | None = None,
) -> FoveatedGenerator:
    """Load ``model``: a preset name (``default``, ``default-tokens-only``: the default model
    without its periphery stage, ``tiny``, ``bench-10m``, ``flux2-tiny``) or a
    local diffusers pipeline directory, FLUX.1 (``FluxPipeline``) or FLUX.2
    (``Flux2KleinPipeline``), told apart by ``model_index.json``'s ``_class_name``.

    ``lora``: a LoRA file merged into the transformer at load (the Foveated Diffusion release's
    DiffSynth format, or peft/diffusers keys; :mod:`generator.release_lora`), scaled by
    ``lora_scale``.

    ``token_rules``: ``kit`` (the kit's layouts and ids) or ``release`` (the release's circle rule,
    token order, ids and cross-resolution attention: :mod:`generator.release_generator`); by
    default ``release`` with a LoRA, else ``kit`` (:func:`generator.token_rules.default_token_rules`,
    which what is counted without generating follows too).

    ``decode``: ``full`` or ``foveated`` (:mod:`generator.decoding`).
    ``static_shapes``: bucketed token counts and CUDA graphs (:mod:`generator.static_sampler`);
    by default on for prompt models with the kit's token rules on a CUDA device."""
    from generator.token_rules import check_token_rules, default_token_rules

    rules = check_token_rules(token_rules or default_token_rules(lora=lora is not None))
    torch_dtype = _parse_dtype(dtype)
    if lora is not None:  # read (and refused) before the model loads
        from generator.release_lora import merge_lora, read_lora_file

        lora_weights = read_lora_file(lora)
    generator = _load_model(model, device=device, torch_dtype=torch_dtype)
    if lora is not None:
        merge_lora(generator.denoiser.transformer, lora_weights, scale=lora_scale)
        generator.model_id = f"{generator.model_id} + LoRA {Path(lora).name}"
    if rules == "release":
        from generator.release_generator import with_release_conventions

        generator = with_release_conventions(generator)
    generator.decode = decode
    if static_shapes is None:
        static_shapes = (
            generator.denoiser.device.type == "cuda" and generator.static_shapes_refusal() is None
        )
    generator.use_static_shapes(static_shapes)
    return generator


def _load_model(model: str, *, device: str, torch_dtype: torch.dtype) -> FoveatedGenerator:
    check_device(device)
    from generator.tiny import TINY_PRESETS

    if model in TINY_PRESETS:
        return _load_tiny(model, device=device, dtype=torch_dtype)
    if model in DEFAULT_PRESETS:
        return _load_default(device=device, dtype=torch_dtype, periphery=DEFAULT_PRESETS[model])
    path = Path(model)
    if not path.is_dir():
        names = ", ".join([*DEFAULT_PRESETS, *TINY_PRESETS])
        raise FoveaError(f"unknown model {model!r}: not a preset ({names}) nor a local directory")
    if (path / "model_index.json").is_file():
        return _load_flux_pipeline(path, device=device, dtype=torch_dtype)
    raise FoveaError(
        f"model directory {str(path)!r} has no model_index.json (a diffusers FLUX pipeline "
        "saved with save_pretrained is expected)"
    )


def _parse_dtype(dtype: str | None) -> torch.dtype:
    if dtype is None:
        dtype = DEFAULT_DTYPE
    if dtype not in _DTYPES:
        raise FoveaError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def check_device(device: str) -> None:
    """FoveaError unless ``device`` names a torch device that this machine has."""
    try:
        torch.device(device)
    except RuntimeError as error:
        raise FoveaError(f"device {device!r} is not valid: {error}") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        if torch.version.cuda is None:  # a CPU build: no driver can help
            raise FoveaError(
                f"device {device!r} requested but this torch ({torch.__version__}) is a CPU "
                "build: install a CUDA build of torch on the GPU machine (README, GPU labs)"
            )
        raise FoveaError(
            f"device {device!r} requested but this torch ({torch.__version__}, CUDA "
            f"{torch.version.cuda}) finds no CUDA GPU: check the driver (nvidia-smi)"
        )


def _load_tiny(name: str, *, device: str, dtype: torch.dtype) -> FoveatedGenerator:
    from generator.tiny import TINY_PRESETS, ClassTableEncoder, build_tiny_transformer

    preset = TINY_PRESETS[name]
    transformer = build_tiny_transformer(name).to(device)
    if dtype != torch.float32:
        transformer = transformer.to(dtype)
    return FoveatedGenerator(
        denoiser=FluxDenoiser(transformer),
        encoder=ClassTableEncoder(preset),
        # A pixel codec: one data cell per image pixel, so cells per token = the token's pixels.
        codec=PixelCodec(cells_per_token=preset.patch_px),
        model_id=f"{name} (random weights)",
        steps=4,
    )


def _load_default(*, device: str, dtype: torch.dtype, periphery: bool) -> FoveatedGenerator:
    from generator.models.weights_io import load_default_generator

    return load_default_generator(device=device, dtype=dtype, periphery=periphery)


def _load_flux_pipeline(path: Path, *, device: str, dtype: torch.dtype) -> FoveatedGenerator:
    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except ValueError as error:  # not JSON, or not UTF-8 text at all
        raise FoveaError(f"{path / 'model_index.json'} is not valid JSON: {error}") from None
    if not isinstance(index, dict):
        raise FoveaError(
            f"{path / 'model_index.json'} holds a JSON {type(index).__name__}, not the object "
            "(component names and classes) that save_pretrained writes"
        )
    from generator.flux2 import FLUX2_PIPELINES, load_flux2_pipeline

    check_components(path, index)
    check_weight_files(path)
    if index.get("_class_name") in FLUX2_PIPELINES:
        return load_flux2_pipeline(path, device=device, dtype=dtype)
    if index.get("_class_name") != "FluxPipeline":
        raise FoveaError(
            f"{path}/model_index.json names {index.get('_class_name')!r}; FluxPipeline and "
            f"{' and '.join(FLUX2_PIPELINES)} directories load here"
        )
    FluxPipeline = _import_flux_pipeline()
    try:
        pipe = FluxPipeline.from_pretrained(path, dtype=dtype, local_files_only=True)
    except (OSError, ValueError) as error:
        raise FoveaError(f"could not load the FLUX pipeline in {path}: {error}") from None
    pipe.to(device, silence_dtype_warnings=True)  # float16 runs on the CPU (slowly)
    transformer = pipe.transformer
    guidance = 3.5 if transformer.config.guidance_embeds else None
    return FoveatedGenerator(
        denoiser=FluxDenoiser(transformer),
        encoder=PromptEncoder(pipe, guidance=guidance),
        codec=VaeCodec(pipe.vae),
        model_id=str(path),
        steps=4 if not transformer.config.guidance_embeds else 28,
        shift=3.0,
    )


def _import_flux_pipeline():
    """diffusers' ``FluxPipeline``. Importing it made transformers print, on every FLUX.1 load
    without torchvision, that ``CLIPImageProcessor`` and ``SiglipImageProcessor`` (parts of
    FLUX.1's IP-adapter, which the kit never loads) 'require torchvision' and to install it: the
    kit needs no torchvision, and a pip install of it can replace the lab's torch build."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        from diffusers import FluxPipeline
    finally:
        transformers_logging.set_verbosity(verbosity)
    return FluxPipeline


def check_components(path: Path, index: dict) -> None:
    """FoveaError naming every component folder that ``model_index.json`` lists but ``path``
    lacks (``generator.model_directory.missing_components``)."""
    why = missing_components(path, index)
    if why:
        raise FoveaError(why)


def check_weight_files(path: Path) -> None:
    """FoveaError naming the file when a weights file of the pipeline directory ``path`` cannot
    be read (cut short by a copy that stopped, empty, another format). Only the headers are read;
    diffusers would otherwise stop in safetensors' own error, a traceback without the file."""
    from safetensors import safe_open

    for file in sorted(path.rglob("*.safetensors")):
        with safetensors_errors(file, f"model directory {path}:"), safe_open(file, "pt"):
            pass
