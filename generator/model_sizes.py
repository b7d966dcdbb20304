"""Transformer configurations of the published models' sizes, for timing with random weights.

Keyword arguments of diffusers' ``FluxTransformer2DModel`` (FLUX.1-schnell, 12 B) and
``Flux2Transformer2DModel`` (FLUX.2 [klein] 4B), read from the released checkpoints' configs.
The GPU timing scripts under ``benchmarks/`` build models from them; nothing here loads weights.
"""

from __future__ import annotations

#: FLUX.1-schnell: 19 double + 38 single blocks, 24 heads x 128, T5 width 4096, CLIP pooled 768.
FLUX1_SCHNELL_SIZED: dict = dict(
    patch_size=1,
    in_channels=64,
    num_layers=19,
    num_single_layers=38,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=False,
    axes_dims_rope=(16, 56, 56),
)

#: FLUX.2 [klein] 4B: 5 double + 20 single blocks, 24 heads x 128, Qwen3 width 7680 (3 layers).
FLUX2_KLEIN_4B_SIZED: dict = dict(
    patch_size=1,
    in_channels=128,
    num_layers=5,
    num_single_layers=20,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=7680,
    guidance_embeds=False,
    axes_dims_rope=(32, 32, 32, 32),
)
