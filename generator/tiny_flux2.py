"""A tiny random FLUX.2 [klein] pipeline directory, in the layout ``save_pretrained`` writes.

For tests, the CPU dry run of the GPU timing script, and anyone checking that a directory loads:
transformer, ``AutoencoderKLFlux2`` (random batch-norm statistics, so the normalisation is
exercised), a 3-layer Qwen3 text encoder, a character-level tokenizer with a chat template, and the
scheduler with dynamic shifting. Weights are seeded; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_LATENT_CHANNELS = 4
TINY_TEXT_HIDDEN = 16


def tiny_tokenizer():
    """A character-level ``Qwen2TokenizerFast`` with a chat template (no network)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    vocab = {"<|endoftext|>": 0, "<|im_end|>": 1, "[UNK]": 2}
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789 \n<>|/_.,'-":
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    out = Qwen2TokenizerFast(
        tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>", unk_token="[UNK]"
    )
    out.chat_template = _CHAT_TEMPLATE
    return out


def tiny_flux2_components(*, seed: int = 0, distilled: bool = True) -> dict:
    """The pipeline's components with seeded random weights (``is_distilled`` as given)."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4 * TINY_LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * TINY_TEXT_HIDDEN,
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    )
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=TINY_LATENT_CHANNELS,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
    )
    with torch.no_grad():  # non-trivial statistics, so a wrong normalisation shows
        vae.bn.running_mean.normal_(0.0, 0.5)
        vae.bn.running_var.uniform_(0.5, 2.0)
    config = Qwen3Config(
        vocab_size=64,
        hidden_size=TINY_TEXT_HIDDEN,
        intermediate_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,
    )
    text_encoder = Qwen3ForCausalLM(config)
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, shift=3.0
    )
    return dict(
        transformer=transformer.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tiny_tokenizer(),
        scheduler=scheduler,
        is_distilled=distilled,
    )


def save_tiny_flux2_pipeline(path: str | Path, *, seed: int = 0, distilled: bool = True) -> Path:
    """Write a tiny ``Flux2KleinPipeline`` to ``path`` (model_index.json and one folder per
    component); returns the path. Note: the tiny VAE downsamples 2x, not 8x (two blocks)."""
    from diffusers import Flux2KleinPipeline

    path = Path(path)
    pipe = Flux2KleinPipeline(**tiny_flux2_components(seed=seed, distilled=distilled))
    pipe.save_pretrained(path)
    return path
