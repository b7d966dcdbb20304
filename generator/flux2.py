"""FLUX.2 ([klein], [dev]) from a local diffusers pipeline directory: VAE codec, prompts, schedule.

What diffusers' ``Flux2KleinPipeline`` does, and how the kit maps it:

- **Latents.** ``AutoencoderKLFlux2`` encodes RGB to 32 channels at 1/8 resolution. The pipeline
  patchifies 2x2 (channel order ``c * 4 + dy * 2 + dx``, 128 channels at 1/16), normalises with the
  VAE's batch-norm statistics (``(z - bn.running_mean) / sqrt(bn.running_var + batch_norm_eps)``,
  one pair per patchified channel) and packs row-major (transformer ``patch_size = 1``). The kit's
  data grid is the *normalised* 32-channel latent at 1/8 (:class:`Flux2VaeCodec`), so
  :func:`generator.tokens.patchify` with ``p = 2`` gives exactly the pipeline's packed tokens.
- **Text.** A Qwen3 causal LM ([klein]; [dev]: Mistral 3); the hidden states of three layers
  (the pipeline's ``encode_prompt`` default: 9, 18, 27 for [klein], 10, 20, 30 for [dev]) are
  stacked per token (``joint_attention_dim = 3 * hidden``), the prompt wrapped in the chat
  template and padded to 512 tokens. Text ids are ``(0, 0, 0, l)``. Prompts are encoded once per session and cached.
- **Schedule.** Sigmas ``linspace(1, 1/steps, steps)`` then 0, warped by the exponential time shift
  with ``mu`` from the pipeline's ``compute_empirical_mu(image_seq_len, steps)``; the kit's sampler
  uses the equivalent rational warp with ``shift = exp(mu)`` (fixed at load for the default size).
- **Guidance.** Distilled [klein] (``is_distilled``): 4 steps, no CFG. Base: 50 steps, CFG 4.0
  with the empty prompt as the negative.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from generator.denoiser import FluxDenoiser
from generator.errors import FoveaError
from generator.model_directory import FLUX2_PIPELINES
from generator.prompts import PromptEncoder
from generator.tokens import patchify, unpatchify

DEFAULT_SIZE_PX = 1024


class Flux2VaeCodec:
    """``AutoencoderKLFlux2`` latents, batch-norm normalised as the FLUX.2 transformer sees them.

    The grid is (B, 32, H/8, W/8); 2 cells per token side; 8 image pixels per cell (the VAE's
    downsampling, ``2 ** (blocks - 1)``: 2 for the tiny test VAE).
    """

    cells_per_token = 2

    def __init__(self, vae: torch.nn.Module):
        self.vae = vae
        self.px_per_cell = 2 ** (len(vae.config.block_out_channels) - 1)

    @property
    def channels(self) -> int:
        return int(self.vae.config.latent_channels)

    def _stats(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 4C, 1, 1) mean and std of the patchified latents (float32)."""
        bn = self.vae.bn
        mean = bn.running_mean.float().view(1, -1, 1, 1)
        std = torch.sqrt(bn.running_var.float().view(1, -1, 1, 1) + self.vae.config.batch_norm_eps)
        return mean.to(device), std.to(device)

    def normalise(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw VAE latents (B, C, h, w) -> the transformer's grid (same shape, float32)."""
        return self._apply(latents.float(), inverse=False)

    def denormalise(self, grid: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalise`."""
        return self._apply(grid.float(), inverse=True)

    def _apply(self, x: torch.Tensor, *, inverse: bool) -> torch.Tensor:
        b, c, hh, ww = x.shape
        mean, std = self._stats(x.device)
        # (B, C, h, w) -> (B, 4C, h/2, w/2) channel-major like the pipeline's _patchify_latents.
        packed = patchify(x, 2).transpose(1, 2).reshape(b, c * 4, hh // 2, ww // 2)
        packed = packed * std + mean if inverse else (packed - mean) / std
        tokens = packed.reshape(b, c * 4, -1).transpose(1, 2)
        return unpatchify(tokens, hh // 2, ww // 2, 2)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/8, W/8) normalised grid (the posterior's mode)."""
        x = images.to(self.vae.device, self.vae.dtype)
        return self.normalise(self.vae.encode(x).latent_dist.mode())

    @torch.no_grad()
    def decode(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) normalised grid -> (B, 3, 8h, 8w) RGB in about [-1, 1] (float32)."""
        return self.decode_latents(self.to_latents(grid))

    def to_latents(self, grid: torch.Tensor) -> torch.Tensor:
        """The normalised grid -> raw VAE latents (where 2x2 pooling means a coarser latent; the
        batch-norm statistics differ between the four cells of a patch, so pool raw latents)."""
        return self.denormalise(grid.to(self.vae.device))

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, C, h, w) -> (B, 3, 8h, 8w) RGB (float32)."""
        return self.vae.decode(latents.to(self.vae.dtype), return_dict=False)[0].float()


class Flux2PromptEncoder(PromptEncoder):
    """Qwen3 prompt embeddings as the FLUX.2 pipeline builds them (no pooled embedding), cached
    per prompt (:class:`generator.prompts.PromptEncoder`).

    Args:
        pipe: a diffusers ``Flux2KleinPipeline`` (its ``encode_prompt`` does the chat template,
            padding and layer stacking).
        max_sequence_length: text tokens (512 in the pipeline).
        guidance: embedded-guidance value for guidance-distilled transformers, else None.
    """

    def _encode_prompt(self, prompt: str, device) -> tuple[torch.Tensor, None]:
        text, _ = self.pipe.encode_prompt(
            prompt=prompt,
            device=device,
            max_sequence_length=self.text_len,
            text_encoder_out_layers=self.layers(),
        )
        return text, None

    def layers(self) -> tuple[int, ...]:
        """The hidden-state layers stacked per token: the pipeline's own (:func:`text_layers`:
        (9, 18, 27) for [klein]'s Qwen3, (10, 20, 30) for [dev]'s Mistral), or spread evenly over
        a smaller encoder (tiny test configs) so that ``3 * hidden`` still matches the
        transformer."""
        layers = text_layers(self.pipe)
        n = int(self.pipe.text_encoder.config.get_text_config().num_hidden_layers)
        if n >= max(layers):
            return layers
        return tuple(max(1, round(n * (i + 1) / 3)) for i in range(3))


def text_layers(pipe) -> tuple[int, ...]:
    """The text encoder layers ``pipe``'s ``encode_prompt`` stacks by default (its signature is
    the one definition: FLUX.2 [klein] and [dev] differ)."""
    import inspect

    method = type(pipe).encode_prompt  # the class's, also while an instance wraps its own
    default = inspect.signature(method).parameters["text_encoder_out_layers"].default
    return tuple(int(layer) for layer in default)


def empirical_mu(image_seq_len: int, steps: int) -> float:
    """The FLUX.2 pipeline's schedule shift ``mu`` for a token count and step count (its published
    piecewise-linear fit: beyond 4300 tokens linear in the tokens alone)."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    if image_seq_len > 4300:
        return float(a2 * image_seq_len + b2)
    m_200 = a2 * image_seq_len + b2
    m_10 = a1 * image_seq_len + b1
    slope = (m_200 - m_10) / 190.0
    return float(slope * steps + (m_200 - 200.0 * slope))


def schedule_shift(scheduler_config: dict, *, steps: int, size_px: int = DEFAULT_SIZE_PX) -> float:
    """The sampler's ``shift`` for a FLUX.2 scheduler config: ``exp(mu)`` with dynamic shifting
    (for a ``size_px`` square at 16 px per token), else the config's static ``shift``."""
    if scheduler_config.get("use_dynamic_shifting", False):
        tokens = (size_px // 16) ** 2
        return math.exp(empirical_mu(tokens, steps))
    return float(scheduler_config.get("shift", 1.0))


def load_flux2_pipeline(path: Path, *, device: str, dtype: torch.dtype):
    """A :class:`generator.pipeline.FoveatedGenerator` for a FLUX.2 pipeline directory, loaded
    with the pipeline class its ``model_index.json`` names (one of ``FLUX2_PIPELINES``: [klein]
    and [dev] encode prompts differently)."""
    import diffusers

    from generator.pipeline import FoveatedGenerator

    index = json.loads((path / "model_index.json").read_text())
    if index.get("_class_name") not in FLUX2_PIPELINES:
        raise FoveaError(
            f"{path}/model_index.json names {index.get('_class_name')!r}, not one of "
            f"{', '.join(FLUX2_PIPELINES)}"
        )
    pipeline_class = getattr(diffusers, index["_class_name"])
    try:
        pipe = pipeline_class.from_pretrained(path, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise FoveaError(f"could not load the FLUX.2 pipeline in {path}: {error}") from None
    pipe.to(device, silence_dtype_warnings=True)  # float16 runs on the CPU (slowly)
    transformer = pipe.transformer
    distilled = bool(index.get("is_distilled", False))
    steps = 4 if distilled else 50
    guidance = 4.0 if transformer.config.guidance_embeds else None
    scheduler_config = dict(pipe.scheduler.config)
    return FoveatedGenerator(
        denoiser=FluxDenoiser(transformer),
        encoder=Flux2PromptEncoder(pipe, guidance=guidance),
        codec=Flux2VaeCodec(pipe.vae),
        model_id=str(path),
        steps=steps,
        shift=schedule_shift(scheduler_config, steps=steps),
        guidance_scale=1.0 if distilled or guidance is not None else 4.0,
    )
