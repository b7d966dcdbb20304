"""Prompt encoders: text conditioning from a diffusers pipeline's encoders, cached per prompt."""

from __future__ import annotations

import torch


class PromptEncoder:
    """Text conditioning through a diffusers FLUX.1 pipeline's CLIP + T5 encoders; each prompt is
    encoded once per session and cached. Subclasses change :meth:`_encode_prompt` only
    (:class:`generator.flux2.Flux2PromptEncoder`)."""

    def __init__(self, pipe, *, max_sequence_length: int = 512, guidance: float | None = None):
        self.pipe = pipe
        self.text_len = max_sequence_length
        self.guidance = guidance
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def _encode_prompt(self, prompt: str, device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(text embeddings, pooled embedding or None) from the pipeline's encoders."""
        text, pooled, _ = self.pipe.encode_prompt(
            prompt=prompt, prompt_2=None, device=device, max_sequence_length=self.text_len
        )
        return text, pooled

    def clear_cache(self) -> None:
        """Forget every cached prompt (benchmarks time a first encode with it)."""
        self._cache.clear()

    @torch.no_grad()
    def encode(self, condition, *, device, dtype):
        from generator.denoiser import Conditioning

        prompt = "" if condition is None else str(condition)
        if prompt not in self._cache:
            text, pooled = self._encode_prompt(prompt, device)
            self._cache[prompt] = (text.detach(), None if pooled is None else pooled.detach())
        text, pooled = self._cache[prompt]
        guidance = None
        if self.guidance is not None:
            guidance = torch.full((1,), self.guidance, device=device, dtype=torch.float32)
        return Conditioning(
            text=text.to(device, dtype),
            pooled=None if pooled is None else pooled.to(device, dtype),
            guidance=guidance,
        )
