"""The foveated LoRA adapter: which modules it wraps, and its file format (safetensors with the
rank and scale in the metadata, keys prefixed ``transformer.``, as the generator loads it)."""

from __future__ import annotations

from pathlib import Path

LORA_TARGETS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "add_q_proj",
    "add_k_proj",
    "add_v_proj",
    "to_add_out",
    "proj_mlp",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
    "linear",
    "x_embedder",
)


def add_lora(model, *, rank: int, alpha: float) -> None:
    """Freeze ``model`` and give its transformer a fresh trainable peft adapter."""
    from peft import LoraConfig

    for p in model.parameters():
        p.requires_grad_(False)
    model.transformer.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=alpha,
            init_lora_weights="gaussian",
            target_modules=list(LORA_TARGETS),
        )
    )


def load_lora(model, path: Path, *, rank: int) -> None:
    """Copy a saved adapter (``save_lora``'s format) into the model's fresh peft adapter."""
    from peft import set_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import load_file

    from generator.errors import FoveaError, safetensors_errors

    with safetensors_errors(path, "--init-lora"):
        with safe_open(str(path), framework="pt") as f:
            saved_rank = int((f.metadata() or {}).get("rank", rank))
        if saved_rank != rank:
            raise FoveaError(f"--init-lora {path} has rank {saved_rank}, --lora-rank is {rank}")
        state = {k.removeprefix("transformer."): v.float() for k, v in load_file(str(path)).items()}
    result = set_peft_model_state_dict(model.transformer, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise FoveaError(f"--init-lora {path} does not fit this model: {unexpected[:3]} ...")


def save_lora(model, path: Path, *, rank: int, alpha: float, meta: dict) -> None:
    """Write the adapter of ``model.transformer`` (float32) with its rank, scale and ``meta``."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = get_peft_model_state_dict(model.transformer)
    state = {f"transformer.{k}": v.detach().cpu().float().contiguous() for k, v in state.items()}
    metadata = {"lora_scale": str(alpha / rank), "rank": str(rank)}
    metadata.update({k: str(v) for k, v in meta.items()})
    save_file(state, str(path), metadata=metadata)
