"""Denoisers: a transformer over (tokens, per-token positions and levels, timestep, conditioning).

Positions reach the transformer through its rotary position ids: a token's block centre in
fine-grid units (fractional for coarse blocks) on the spatial axes, and ``log2(level)`` on the
axis the Flux models reserve for time/frames (0 for a full-resolution image), so the model can tell
a level-4 token from a fine one at the same place. The all-level-1 layout gives exactly the ids of
the plain full-resolution grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from generator.layout import TokenLayout

Prediction = Literal["velocity", "x"]


@dataclass
class Conditioning:
    """What the transformer is conditioned on.

    Attributes:
        text: (B, L, joint_dim) encoder hidden states (text or class tokens).
        pooled: (B, pooled_dim) pooled projection (FLUX.1 only; None for FLUX.2).
        guidance: (B,) distilled-guidance value for guidance-embedded models, else None.
        scene: scene inputs of a scene-conditioned model for the current layout
            (:class:`generator.models.default.SceneInputs`), else None.
    """

    text: torch.Tensor
    pooled: torch.Tensor | None = None
    guidance: torch.Tensor | None = None
    scene: object | None = None


@dataclass(frozen=True)
class TokenPositions:
    """Per-token rotary ids for one layout, on the model's device.

    Attributes:
        img_ids: (N, axes) float image ids.
        txt_ids: (L, axes) float text ids.
    """

    img_ids: torch.Tensor
    txt_ids: torch.Tensor


class Denoiser(Protocol):
    """Predicts the flow-matching velocity ``noise - data`` for tokens at time ``t`` (1 = noise)."""

    def positions(self, layout: TokenLayout, *, text_len: int) -> TokenPositions: ...

    def __call__(
        self, tokens: torch.Tensor, *, ids: TokenPositions, t: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        """Args: tokens (B, N, D); t (B,) in [0, 1]. Returns the velocity (B, N, D)."""
        ...


def velocity_from_x(
    tokens: torch.Tensor, x_hat: torch.Tensor, t: torch.Tensor, *, t_min: float
) -> torch.Tensor:
    """An x-prediction as the sampler's velocity: ``x_t = (1 - t) x + t noise`` gives
    ``v = noise - x = (x_t - x) / t``, with ``t`` clamped to ``t_min`` (dividing by a tiny t blows
    up the last step). tokens, x_hat: (B, N, D); t: (B,)."""
    t_b = t.clamp_min(t_min).to(tokens.dtype)[:, None, None]
    return (tokens - x_hat) / t_b


def layout_ids(layout: TokenLayout) -> np.ndarray:
    """(N, 3) float: (log2 level, row, col) for each token."""
    return np.concatenate([np.log2(layout.levels)[:, None], layout.positions], axis=1)


class FluxDenoiser:
    """diffusers ``FluxTransformer2DModel`` (3-axis ids) or ``Flux2Transformer2DModel`` (4-axis).

    Args:
        transformer: the diffusers model.
        prediction: what the network outputs: ``velocity`` (FLUX convention) or ``x`` (the clean
            tokens, x-prediction in the spirit of "Back to Basics", converted to a velocity).
        x_pred_t_min: x-prediction only: the smallest t the velocity ``(x_t - x) / t`` divides
            by; match the clamp used in training (dividing by a tiny t blows up the last step).
        position_ids: ``kit`` (block centre, ``log2(level)`` on the first axis) or ``release``
            (the Foveated Diffusion release's FLUX.2 ids: the block's top-left cell, first axis 0;
            :func:`generator.release_layout.release_ids`), for the release's LoRAs.
        crpa: the state of the release's cross-resolution attention, when the transformer's
            processors were swapped (:func:`generator.crpa.enable_crpa`); filled per layout by
            :meth:`positions`.
    """

    def __init__(
        self,
        transformer: torch.nn.Module,
        *,
        prediction: Prediction = "velocity",
        x_pred_t_min: float = 1e-3,
        position_ids: Literal["kit", "release"] = "kit",
        crpa=None,
    ):
        self.transformer = transformer
        self.position_ids = position_ids
        self.crpa = crpa
        self.prediction = prediction
        self.x_pred_t_min = x_pred_t_min
        self.axes = len(transformer.config.axes_dims_rope)
        self.uses_pooled = hasattr(transformer.config, "pooled_projection_dim")

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def positions(self, layout: TokenLayout, *, text_len: int) -> TokenPositions:
        if self.position_ids == "release":
            from generator.release_layout import release_ids

            img = release_ids(layout)[:, : self.axes]
        else:
            ids = layout_ids(layout)
            img = np.zeros((ids.shape[0], self.axes))
            img[:, :3] = ids
        txt = np.zeros((text_len, self.axes))
        if self.axes == 4:  # FLUX.2 numbers text tokens on its last axis
            txt[:, 3] = np.arange(text_len)
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        out = TokenPositions(img_ids=as_tensor(img), txt_ids=as_tensor(txt))
        if self.crpa is not None:
            self.crpa.prepare(layout, out.img_ids, out.txt_ids)
        return out

    def __call__(
        self,
        tokens: torch.Tensor,
        *,
        ids: TokenPositions,
        t: torch.Tensor,
        cond: Conditioning,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The velocity for ``tokens`` (B, N, D) at times ``t`` (B,). ``attention_mask``: a
        (B, L + N) bool key mask over the joint (text, then image) sequence, passed to every
        attention processor (:mod:`generator.static_sampler` masks padding with it)."""
        kwargs = {}
        if attention_mask is not None:
            kwargs["joint_attention_kwargs"] = {"attention_mask": attention_mask}
        if self.uses_pooled:
            kwargs["pooled_projections"] = cond.pooled
        out = self.transformer(
            hidden_states=tokens,
            encoder_hidden_states=cond.text,
            timestep=t,
            img_ids=ids.img_ids,
            txt_ids=ids.txt_ids,
            guidance=cond.guidance,
            return_dict=False,
            **kwargs,
        )[0]
        if self.prediction == "velocity":
            return out
        return velocity_from_x(tokens, out, t, t_min=self.x_pred_t_min)
