"""Cross-resolution attention (the release's CRPA) on diffusers' FLUX.2 transformer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generator.crpa import CrpaState, crpa_attention, enable_crpa
from generator.denoiser import Conditioning, FluxDenoiser
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.release_layout import release_circle_layout
from generator.tiny import build_tiny_transformer

GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
TEXT_LEN = 3


def _release_layout():
    spec = LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=2)
    return release_circle_layout(geometry=GEOMETRY, gaze_px=(40.0, 60.0), spec=spec, patch_px=16)


def _inputs(layout, dim, joint, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(1, layout.num_tokens, dim, generator=g)
    text = torch.randn(1, TEXT_LEN, joint, generator=g)
    return tokens, Conditioning(text=text)


def _forward(denoiser, layout, tokens, cond):
    ids = denoiser.positions(layout, text_len=TEXT_LEN)
    return denoiser(tokens, ids=ids, t=torch.full((1,), 0.7), cond=cond)


def test_full_layout_is_plain_attention():
    layout = build_layout(
        geometry=GEOMETRY, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
    )
    plain = FluxDenoiser(build_tiny_transformer("flux2-tiny"), position_ids="release")
    crpa_model = build_tiny_transformer("flux2-tiny")
    crpa = FluxDenoiser(crpa_model, position_ids="release", crpa=enable_crpa(crpa_model))
    tokens, cond = _inputs(layout, 768, 64)
    torch.testing.assert_close(
        _forward(crpa, layout, tokens, cond), _forward(plain, layout, tokens, cond)
    )


def _masked_reference(q, k, v, layout, pos_embed, img_ids, txt_ids):
    """The same rule by another route: per level, a boolean attention mask over all keys."""
    from diffusers.models.embeddings import apply_rotary_emb

    levels = np.concatenate([np.ones(TEXT_LEN, int), layout.levels])
    rows = np.concatenate([np.zeros(TEXT_LEN, int), layout.rows])
    cols = np.concatenate([np.zeros(TEXT_LEN, int), layout.cols])
    is_text = np.arange(len(levels)) < TEXT_LEN
    out = torch.zeros_like(q)
    for level in np.unique(layout.levels):
        ids = img_ids.clone()
        ids[:, 1:3] /= float(level)
        rope = pos_embed(torch.cat([txt_ids, ids]))
        allowed = is_text | (levels >= level) | ((rows % level == 0) & (cols % level == 0))
        if level == 1:
            allowed[:] = True
        query_rows = (levels == level) & (~is_text if level > 1 else np.ones_like(is_text))
        qr = apply_rotary_emb(q, rope, sequence_dim=1).transpose(1, 2)
        kr = apply_rotary_emb(k, rope, sequence_dim=1).transpose(1, 2)
        mask = torch.from_numpy(np.broadcast_to(allowed, (len(levels), len(levels))).copy())
        o = F.scaled_dot_product_attention(qr, kr, v.transpose(1, 2), attn_mask=mask)
        sel = torch.from_numpy(query_rows)
        out[:, sel] = o.transpose(1, 2)[:, sel]
    return out


@pytest.mark.parametrize("kind", ["release-circle", "acuity"])
def test_grouped_attention_matches_masked_reference(kind):
    if kind == "release-circle":
        layout = _release_layout()
    else:
        spec = LayoutSpec(mode="acuity", strength=4.0)
        layout = build_layout(geometry=GEOMETRY, gaze_px=(30.0, 30.0), spec=spec, patch_px=8)
    assert len(layout.level_counts()) >= 2
    model = build_tiny_transformer("flux2-tiny")
    state = CrpaState(pos_embed=model.pos_embed)
    denoiser = FluxDenoiser(model, position_ids="release", crpa=state)
    ids = denoiser.positions(layout, text_len=TEXT_LEN)
    g = torch.Generator().manual_seed(3)
    s = TEXT_LEN + layout.num_tokens
    q, k, v = (torch.randn(1, s, 2, 32, generator=g) for _ in range(3))
    ours = crpa_attention(q, k, v, state)
    ref = _masked_reference(q, k, v, layout, model.pos_embed, ids.img_ids, ids.txt_ids)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_coarse_queries_ignore_non_top_left_fine_keys():
    layout = _release_layout()
    model = build_tiny_transformer("flux2-tiny")
    state = CrpaState(pos_embed=model.pos_embed)
    denoiser = FluxDenoiser(model, position_ids="release", crpa=state)
    denoiser.positions(layout, text_len=TEXT_LEN)
    g = torch.Generator().manual_seed(4)
    s = TEXT_LEN + layout.num_tokens
    q, k, v = (torch.randn(1, s, 2, 32, generator=g) for _ in range(3))
    hidden = np.concatenate(
        [np.zeros(TEXT_LEN, bool), (layout.levels == 1) & ((layout.rows % 2 + layout.cols % 2) > 0)]
    )
    k2, v2 = k.clone(), v.clone()
    k2[:, hidden] += 5.0
    v2[:, hidden] -= 3.0
    coarse = torch.from_numpy(np.concatenate([np.zeros(TEXT_LEN, bool), layout.levels == 2]))
    a, b = crpa_attention(q, k, v, state), crpa_attention(q, k2, v2, state)
    torch.testing.assert_close(a[:, coarse], b[:, coarse])
    assert not torch.allclose(a[:, ~coarse], b[:, ~coarse])
