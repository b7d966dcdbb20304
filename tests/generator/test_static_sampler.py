"""Static-shape sampling: bucketed token counts with masked padding give the eager sampler's tokens.

The CUDA graph capture itself needs a GPU (benchmarks/device/realtime_flux2.py runs it); here the
same static-buffer loop runs eagerly, and the real-size transformers' forward with the padding mask
is checked for what a capture forbids (host tensors, data-dependent ops) on the meta device.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from generator.crpa import enable_crpa
from generator.denoiser import Conditioning, FluxDenoiser, TokenPositions
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.model_sizes import FLUX1_SCHNELL_SIZED, FLUX2_KLEIN_4B_SIZED
from generator.sampler import sample_euler
from generator.static_sampler import StaticSampler, bucket_size, key_mask, warm_up_counts
from generator.tiny import TINY_PRESETS, ClassTableEncoder, build_tiny_transformer

SEED = 0
GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=256, image_height_px=256)
GAZES = ((128.0, 128.0), (40.0, 60.0), (230.0, 200.0))


def _model(name):
    denoiser = FluxDenoiser(build_tiny_transformer(name, seed=SEED))
    cond = ClassTableEncoder(TINY_PRESETS[name], seed=SEED).encode(
        3, device="cpu", dtype=torch.float32
    )
    return denoiser, cond


def _noise(layout, dim, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, layout.num_tokens, dim, generator=g)


def test_bucket_size_and_mask():
    assert [bucket_size(n, bucket_tokens=128) for n in (1, 128, 129, 4096)] == [128, 128, 256, 4096]
    with pytest.raises(ValueError):
        bucket_size(0)
    mask = key_mask(text_len=3, num_tokens=5, bucket=8, device="cpu")
    assert mask.tolist() == [[True] * 8 + [False] * 3]


@pytest.mark.parametrize("name", ["tiny", "flux2-tiny"])
def test_padded_buckets_match_eager_sampling(name):
    """Three gazes (three token counts, two sharing a bucket) and the full layout, one sampler:
    each result equals the eager sampler's on the unpadded layout (seed printed on failure)."""
    denoiser, cond = _model(name)
    sampler = StaticSampler(denoiser, bucket_tokens=32)
    specs = [(g, LayoutSpec(mode="acuity", strength=1.0)) for g in GAZES]
    specs.append((None, LayoutSpec(mode="full")))
    dim = denoiser.transformer.config.in_channels
    seen = set()
    for i, (gaze, spec) in enumerate(specs):
        layout = build_layout(geometry=GEOMETRY, gaze_px=gaze, spec=spec, patch_px=16)
        noise = _noise(layout, dim, SEED + i)
        ids = denoiser.positions(layout, text_len=cond.text.shape[1])
        eager = sample_euler(denoiser, noise, ids=ids, cond=cond, steps=3, shift=3.0).tokens
        result = sampler.sample(noise, ids=ids, cond=cond, steps=3, shift=3.0)
        static = result.tokens
        assert len(result.step_seconds) == 3
        assert result.sampler == "static"  # on the CPU: no graphs
        assert static.shape == eager.shape
        err = (static - eager).abs().max().item()
        assert err < 1e-4, f"seed {SEED + i}, {layout.num_tokens} tokens: max error {err}"
        seen.add(bucket_size(layout.num_tokens, bucket_tokens=32))
    assert {bucket for bucket, _ in sampler._buckets} == seen and len(seen) >= 2
    assert sampler.captured == []  # no graphs on the CPU


def test_padding_changes_nothing():
    """The padded rows' content does not reach the real tokens: a leftover from a bigger layout
    in the same bucket, or zeros, give the same output."""
    denoiser, cond = _model("flux2-tiny")
    layout = build_layout(
        geometry=GEOMETRY,
        gaze_px=GAZES[1],
        spec=LayoutSpec(mode="acuity", strength=1.0),
        patch_px=16,
    )
    dim = denoiser.transformer.config.in_channels
    noise = _noise(layout, dim, SEED)
    ids = denoiser.positions(layout, text_len=cond.text.shape[1])
    bucket = bucket_size(layout.num_tokens, bucket_tokens=64)
    assert bucket > layout.num_tokens
    padded = torch.cat([noise, 5.0 * torch.randn(1, bucket - layout.num_tokens, dim)], dim=1)
    pad_ids = torch.cat(
        [ids.img_ids, torch.full((bucket - layout.num_tokens, ids.img_ids.shape[1]), 7.0)]
    )
    t = torch.full((1,), 0.6)
    mask = key_mask(
        text_len=cond.text.shape[1], num_tokens=layout.num_tokens, bucket=bucket, device="cpu"
    )
    plain = denoiser(noise, ids=ids, t=t, cond=cond)
    masked = denoiser(
        padded,
        ids=type(ids)(img_ids=pad_ids, txt_ids=ids.txt_ids),
        t=t,
        cond=cond,
        attention_mask=mask,
    )[:, : layout.num_tokens]
    assert (plain - masked).abs().max().item() < 1e-5


def test_refuses_crpa_graphs_on_cpu_and_a_changed_prompt_shape():
    denoiser, cond = _model("flux2-tiny")
    denoiser.crpa = enable_crpa(denoiser.transformer)
    with pytest.raises(ValueError, match="CRPA"):
        StaticSampler(denoiser)
    denoiser, cond = _model("tiny")
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        StaticSampler(denoiser, graphs=True)
    sampler = StaticSampler(denoiser)
    layout = build_layout(
        geometry=GEOMETRY, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
    )
    noise = _noise(layout, denoiser.transformer.config.in_channels, SEED)
    ids = denoiser.positions(layout, text_len=cond.text.shape[1])
    sampler.sample(noise, ids=ids, cond=cond, steps=1)
    longer = Conditioning(text=torch.cat([cond.text, cond.text], dim=1), pooled=cond.pooled)
    with pytest.raises(ValueError, match="changed shape"):
        sampler.sample(noise, ids=ids, cond=longer, steps=1)


def test_on_step_aborts_between_steps():
    """The service's speculative start aborts through on_step; a raise stops the loop there."""
    denoiser, cond = _model("tiny")
    sampler = StaticSampler(denoiser)
    layout = build_layout(
        geometry=GEOMETRY, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
    )
    noise = _noise(layout, denoiser.transformer.config.in_channels, SEED)
    ids = denoiser.positions(layout, text_len=cond.text.shape[1])
    seen = []

    def on_step(i):
        seen.append(i)
        if i == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sampler.sample(noise, ids=ids, cond=cond, steps=4, on_step=on_step)
    assert seen == [0, 1]


class _CaptureRules(TorchDispatchMode):
    """Records what a CUDA graph capture forbids, on meta tensors: an op that makes a tensor off
    the device (a host tensor copied in at replay would be stale) or one that needs the data
    (``.item()``, ``nonzero``: a host sync; these raise on meta)."""

    def __init__(self):
        super().__init__()
        self.problems = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        try:
            out = func(*args, **(kwargs or {}))
        except Exception as exc:  # noqa: BLE001 - recorded, then re-raised
            self.problems.append(f"{func}: {exc}")
            raise
        for o in out if isinstance(out, tuple | list) else [out]:
            if isinstance(o, torch.Tensor) and o.device.type != "meta":
                self.problems.append(f"{func} made a {o.device} tensor")
        return out


@pytest.mark.parametrize(
    "family, config, joint, pooled",
    [("flux2", FLUX2_KLEIN_4B_SIZED, 7680, None), ("flux", FLUX1_SCHNELL_SIZED, 4096, 768)],
)
def test_real_size_masked_forward_is_capturable(family, config, joint, pooled):
    """The klein-4B-sized and FLUX.1-schnell-sized transformers, built on the meta device (no
    memory), run one masked padded forward without host tensors or data-dependent ops."""
    from diffusers import Flux2Transformer2DModel, FluxTransformer2DModel

    cls = Flux2Transformer2DModel if family == "flux2" else FluxTransformer2DModel
    n, bucket, text_len = 300, 384, 512
    with torch.device("meta"):
        denoiser = FluxDenoiser(cls(**config).to(torch.bfloat16))
        tokens = torch.zeros(1, bucket, config["in_channels"], dtype=torch.bfloat16)
        text = torch.zeros(1, text_len, joint, dtype=torch.bfloat16)
        pooled_t = None if pooled is None else torch.zeros(1, pooled, dtype=torch.bfloat16)
        axes = len(config["axes_dims_rope"])
        positions = TokenPositions(
            img_ids=torch.zeros(bucket, axes), txt_ids=torch.zeros(text_len, axes)
        )
        mask = key_mask(text_len=text_len, num_tokens=n, bucket=bucket, device="meta")
        t = torch.ones(1)
    rules = _CaptureRules()
    with torch.no_grad(), rules:
        out = denoiser(
            tokens,
            ids=positions,
            t=t,
            cond=Conditioning(text=text, pooled=pooled_t),
            attention_mask=mask,
        )
    assert out.shape == tokens.shape and out.device.type == "meta"
    assert rules.problems == []


def test_warm_up_prepares_the_masked_and_exact_buckets():
    """Counts below a bucket prepare its masked variant; a count that fills it the unmasked one."""
    denoiser, cond = _model("tiny")
    sampler = StaticSampler(denoiser, bucket_tokens=32)
    layout = build_layout(
        geometry=GEOMETRY, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
    )
    noise = _noise(layout, denoiser.transformer.config.in_channels, SEED)
    ids = denoiser.positions(layout, text_len=cond.text.shape[1])
    sampler.warm_up([31, 63, 256], like=noise, ids=ids, cond=cond)
    assert sorted(sampler._buckets) == [(32, True), (64, True), (256, False)]
    with pytest.raises(ValueError, match="outside"):
        sampler.warm_up([257], like=noise, ids=ids, cond=cond)
    # every bucket a 1024-px image at 16 px per token (4096 tokens) can use: 32 masked + exact
    counts = warm_up_counts(4096, bucket_tokens=128)
    assert counts[:2] == [127, 255] and counts[-2:] == [4095, 4096] and len(counts) == 33
    assert warm_up_counts(100, bucket_tokens=128) == [100]


def test_a_failed_capture_turns_static_shapes_off(caplog):
    """A capture that fails (here: graphs forced on without CUDA, so the capture's first CUDA call
    fails) turns static shapes off with a logged warning, records why, and the image is the
    eager sampler's; a session's warm-up (prepare_static_shapes) survives it the same way."""
    import numpy as np

    from generator.loading import load_generator

    run = dict(seed=SEED, geometry=GEOMETRY, gaze_px=GAZES[1], spec=LayoutSpec(mode="acuity"))
    eager = load_generator("tiny", static_shapes=False).generate(condition=3, **run)
    generator = load_generator("tiny", static_shapes=True)
    generator.static.graphs = True  # as on a GPU
    with caplog.at_level("WARNING", logger="generator.pipeline"):
        result = generator.generate(condition=3, **run)
    assert generator.static is None and "CUDA graph failed" in generator.static_shapes_error
    assert "sampling eagerly" in caplog.text
    assert result.sidecar["sampler"] == "eager"
    assert np.array_equal(result.image, eager.image), f"seed {SEED}"
    generator.use_static_shapes(True)
    assert generator.static_shapes_error is None
    generator.static.graphs = True
    assert generator.prepare_static_shapes(GEOMETRY, condition=3) == 0
    assert generator.static is None and generator.static_shapes_error
