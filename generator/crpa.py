"""Cross-resolution phase-aligned (CRPA) attention for diffusers' FLUX.2 transformer.

The Foveated Diffusion release trains its LoRAs with this attention (``src/diffsynth_fov/dit.py``
in the public fork fahadsarfraz-tomtom/foveated_diffusion), so their LoRAs see it at inference:

- a full-resolution (level-1) query, and every text query, attends to all keys with the
  ordinary rotary embedding of the ids;
- a coarse (level-``f``) query uses a second rotary table, computed from the ids with the two
  spatial axes divided by ``f``, and attends only to the keys on the coarse grid: text, every
  coarse token and the top-left token of each fine ``f x f`` block (with the same divided table).

The release has two levels. Here every level ``k`` of a layout forms one group (queries of level
``k``; keys: text, tokens of level ``>= k`` and the ``k``-aligned top-left tokens of finer blocks;
table ids divided by ``k``), which is exactly the release's rule for a two-level layout and its
natural extension to the kit's multi-level acuity layouts (whether the release's LoRAs carry over
to those is a measurement for real weights).

Use: :func:`enable_crpa` swaps the processors of a ``Flux2Transformer2DModel`` and returns the
shared :class:`CrpaState`; :class:`generator.denoiser.FluxDenoiser` with ``crpa=`` fills it per
layout (:meth:`CrpaState.prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from generator.layout import TokenLayout


@dataclass
class _Group:
    """One query level: query and key indices into the (text + image) sequence and its rope
    table's rows for those queries and keys (gathered once per layout, not per attention call)."""

    queries: torch.Tensor
    keys: torch.Tensor | None  # None: all keys
    q_rope: tuple[torch.Tensor, torch.Tensor]  # (cos, sin) rows of the queries
    k_rope: tuple[torch.Tensor, torch.Tensor]  # (cos, sin) rows of the keys


@dataclass
class CrpaState:
    """Per-layout groups, filled by :meth:`prepare`; empty means plain attention."""

    pos_embed: torch.nn.Module
    groups: list[_Group] = field(default_factory=list)

    def prepare(self, layout: TokenLayout, img_ids: torch.Tensor, txt_ids: torch.Tensor) -> None:
        """Groups for ``layout`` with image ids (N, 4) and text ids (L, 4) (float, on device)."""
        self.groups = []
        levels = layout.levels
        if (levels == 1).all():
            return  # one level: CRPA is plain attention
        device, text_len = img_ids.device, txt_ids.shape[0]
        index = lambda mask: torch.from_numpy(  # noqa: E731
            np.concatenate([np.ones(text_len, bool), mask]).nonzero()[0]
        ).to(device)
        for k in np.unique(levels):
            k = int(k)
            ids = img_ids.clone()
            ids[:, 1:3] = ids[:, 1:3] / k
            cos, sin = self.pos_embed(torch.cat([txt_ids, ids]))
            queries = index(levels == k)[text_len:] if k > 1 else index(levels == 1)
            aligned = (layout.rows % k == 0) & (layout.cols % k == 0)
            keys = None if k == 1 else index((levels >= k) | aligned)
            k_rope = (cos, sin) if keys is None else (cos[keys], sin[keys])
            self.groups.append(
                _Group(
                    queries=queries,
                    keys=keys,
                    q_rope=(cos[queries], sin[queries]),
                    k_rope=k_rope,
                )
            )


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding on (B, S, H, D) with (S, D) tables (pairs interleaved, as FLUX.2)."""
    from diffusers.models.embeddings import apply_rotary_emb

    return apply_rotary_emb(x, (cos, sin), sequence_dim=1)


def crpa_attention(q, k, v, state: CrpaState) -> torch.Tensor:
    """(B, S, H, D) q, k, v before rope -> (B, S, H, D) attention output, group by group."""
    out = torch.empty_like(q)
    for g in state.groups:
        keys = k if g.keys is None else k[:, g.keys]
        values = v if g.keys is None else v[:, g.keys]
        q_g = _rope(q[:, g.queries], *g.q_rope)
        k_g = _rope(keys, *g.k_rope)
        o = F.scaled_dot_product_attention(
            q_g.transpose(1, 2), k_g.transpose(1, 2), values.transpose(1, 2)
        )
        out[:, g.queries] = o.transpose(1, 2).to(out.dtype)
    return out


def _attend(q, k, v, image_rotary_emb, state: CrpaState) -> torch.Tensor:
    if not state.groups:
        if image_rotary_emb is not None:
            q, k = _rope(q, *image_rotary_emb), _rope(k, *image_rotary_emb)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return o.transpose(1, 2)
    return crpa_attention(q, k, v, state)


class CrpaAttnProcessor:
    """For ``Flux2Attention`` (double-stream blocks: text and image streams, text first)."""

    def __init__(self, state: CrpaState):
        self.state = state

    def __call__(
        self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
        image_rotary_emb=None,
    ):  # fmt: skip
        from diffusers.models.transformers.transformer_flux2 import _get_qkv_projections

        q, k, v, eq, ek, ev = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        heads = lambda x: x.unflatten(-1, (-1, attn.head_dim))  # noqa: E731
        q, k, v = attn.norm_q(heads(q)), attn.norm_k(heads(k)), heads(v)
        if attn.added_kv_proj_dim is not None:
            eq, ek = attn.norm_added_q(heads(eq)), attn.norm_added_k(heads(ek))
            q, k, v = torch.cat([eq, q], 1), torch.cat([ek, k], 1), torch.cat([heads(ev), v], 1)
        out = _attend(q, k, v, image_rotary_emb, self.state).flatten(2, 3).to(q.dtype)
        if encoder_hidden_states is None:
            return attn.to_out[1](attn.to_out[0](out))
        text_len = encoder_hidden_states.shape[1]
        text_out, out = out[:, :text_len], out[:, text_len:]
        return attn.to_out[1](attn.to_out[0](out)), attn.to_add_out(text_out)


class CrpaParallelSelfAttnProcessor:
    """For ``Flux2ParallelSelfAttention`` (single-stream blocks: fused QKV + MLP)."""

    def __init__(self, state: CrpaState):
        self.state = state

    def __call__(self, attn, hidden_states, attention_mask=None, image_rotary_emb=None):
        projected = attn.to_qkv_mlp_proj(hidden_states)
        qkv, mlp = torch.split(
            projected, [3 * attn.inner_dim, projected.shape[-1] - 3 * attn.inner_dim], -1
        )
        heads = lambda x: x.unflatten(-1, (-1, attn.head_dim))  # noqa: E731
        q, k, v = (heads(x) for x in qkv.chunk(3, dim=-1))
        q, k = attn.norm_q(q), attn.norm_k(k)
        out = _attend(q, k, v, image_rotary_emb, self.state).flatten(2, 3).to(q.dtype)
        return attn.to_out(torch.cat([out, attn.mlp_act_fn(mlp)], dim=-1))


def enable_crpa(transformer: torch.nn.Module) -> CrpaState:
    """Swap a ``Flux2Transformer2DModel``'s attention processors for CRPA ones; returns the state
    they share (empty: plain attention, so full-resolution layouts run as before)."""
    state = CrpaState(pos_embed=transformer.pos_embed)
    for block in transformer.transformer_blocks:
        block.attn.set_processor(CrpaAttnProcessor(state))
    for block in transformer.single_transformer_blocks:
        block.attn.set_processor(CrpaParallelSelfAttnProcessor(state))
    return state
