"""The Foveated Diffusion release's LoRA files -> peft/diffusers keys, merged into a transformer.

Facts from the release (Chao et al. 2026; read in the public fork fahadsarfraz-tomtom/
foveated_diffusion, ``configs/train_lora.sh``, ``src/inference/pipeline_loader.py``,
``src/diffsynth_fov/pipeline.py``):

- trained with DiffSynth-Studio on FLUX.2 [klein] base 4B (``--lora_base_model dit``,
  ``--lora_rank 32``, ``--remove_prefix_in_ckpt "pipe.dit."``), targets ``to_q, to_k, to_v,
  to_out.0, add_q_proj, add_k_proj, add_v_proj, to_add_out, linear_in, linear_out,
  to_qkv_mlp_proj`` (attention, feed-forward and the fused single-block projection);
- the DiT's module names are diffusers' ``Flux2Transformer2DModel`` names
  (``transformer_blocks.N.attn.to_q``, ``single_transformer_blocks.N.attn.to_qkv_mlp_proj``, ...);
- files are safetensors with keys ``<module>.lora_A[.default].weight`` (rank x in) and
  ``<module>.lora_B[.default].weight`` (out x rank), published as ``image/fov_random``,
  ``fov_saliency``, ``fov_bbox`` (and ``no_fov``) in ``bchao1/foveated-diffusion``;
- loaded with DiffSynth's ``pipe.load_lora(pipe.dit, path)`` (alpha 1): the update is
  ``W += alpha * B @ A`` with no ``alpha / rank`` factor (peft trained it with ``lora_alpha = rank``,
  i.e. scale 1, so the two agree).

Here keys may also carry a ``diffusion_model.``, ``pipe.dit.``, ``dit.`` or ``transformer.`` prefix,
and a per-module ``.alpha`` (kohya style: scale ``alpha / rank``) is honoured when present.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generator.errors import FoveaError, safetensors_errors

_PREFIXES = ("diffusion_model.", "pipe.dit.", "dit.", "transformer.", "base_model.model.")


def _module_name(key: str) -> tuple[str, str] | None:
    """``<module>.lora_A[.adapter].weight`` -> (module, "A"/"B"/"alpha"); None for other keys."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    parts = key.split(".")
    for which in ("lora_A", "lora_B", "lora_down", "lora_up"):
        if which in parts:
            i = parts.index(which)
            side = "A" if which in ("lora_A", "lora_down") else "B"
            return ".".join(parts[:i]), side
    if parts[-1] == "alpha":
        return ".".join(parts[:-1]), "alpha"
    return None


def lora_pairs(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Group a LoRA state dict by target module: ``{module: {"A": .., "B": .., ["alpha": ..]}}``.

    Raises FoveaError for keys that are not LoRA weights or modules missing A or B."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        parsed = _module_name(key)
        if parsed is None:
            raise FoveaError(f"LoRA key {key!r} is neither lora_A/lora_B nor alpha")
        module, side = parsed
        grouped.setdefault(module, {})[side] = value
    for module, parts in grouped.items():
        if "A" not in parts or "B" not in parts:
            raise FoveaError(f"LoRA module {module!r} lacks its lora_A or lora_B weight")
        a, b = parts["A"], parts["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise FoveaError(
                f"LoRA module {module!r}: lora_A is {tuple(a.shape)} and lora_B "
                f"{tuple(b.shape)}; B @ A needs A's rows (the rank) to equal B's columns"
            )
    return grouped


def to_peft_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The release's keys as diffusers' ``load_lora_adapter`` expects them:
    ``<module>.lora_A.weight`` / ``<module>.lora_B.weight`` (alpha folded into B)."""
    out = {}
    for module, parts in lora_pairs(state_dict).items():
        out[f"{module}.lora_A.weight"] = parts["A"]
        out[f"{module}.lora_B.weight"] = parts["B"] * _alpha_scale(parts)
    return out


def _alpha_scale(parts: dict[str, torch.Tensor]) -> float:
    if "alpha" not in parts:
        return 1.0
    return float(parts["alpha"]) / parts["A"].shape[0]


@torch.no_grad()
def merge_lora(
    transformer: torch.nn.Module, state_dict: dict[str, torch.Tensor], *, scale: float = 1.0
) -> int:
    """Add ``scale * B @ A`` to each target ``nn.Linear`` weight in place; returns modules merged.

    Raises FoveaError if a module is missing or the shapes disagree (a LoRA for another model),
    before any weight changes: a refused LoRA leaves the transformer as it was."""
    modules = dict(transformer.named_modules())
    pairs = lora_pairs(state_dict)
    for module, parts in pairs.items():
        layer = modules.get(module)
        if not isinstance(layer, torch.nn.Linear):
            raise FoveaError(
                f"LoRA targets {module!r}, which this {type(transformer).__name__} does not have "
                "(no Linear of that name): a LoRA for another model?"
            )
        a, b = parts["A"].float(), parts["B"].float()
        if a.shape[1] != layer.in_features or b.shape[0] != layer.out_features:
            raise FoveaError(
                f"LoRA for {module!r} is {b.shape[0]}x{a.shape[1]}, the layer is "
                f"{layer.out_features}x{layer.in_features} (a LoRA for another model size?)"
            )
    for module, parts in pairs.items():
        layer, a, b = modules[module], parts["A"].float(), parts["B"].float()
        delta = (b.to(layer.weight.device) @ a.to(layer.weight.device)) * (
            scale * _alpha_scale(parts)
        )
        layer.weight.add_(delta.to(layer.weight.dtype))
    return len(pairs)


def load_lora_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A LoRA state dict from a ``.safetensors`` (or torch ``.pt``/``.bin``) file."""
    path = Path(path)
    if not path.is_file():
        raise FoveaError(f"LoRA file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        with safetensors_errors(path, "LoRA file"):
            return load_file(str(path))
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FoveaError(f"LoRA file {path} is not a readable torch file ({first})") from None
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise FoveaError(f"LoRA file {path} holds no state dict of tensors")
    return state


def read_lora_file(path: str | Path) -> dict[str, torch.Tensor]:
    """:func:`load_lora_file`, its keys checked (:func:`lora_pairs`): everything about a LoRA
    that does not need the model, so a bad file is refused before a model loads for minutes."""
    state = load_lora_file(path)
    if not state:
        raise FoveaError(f"LoRA file {path} holds no weights")
    lora_pairs(state)
    return state
