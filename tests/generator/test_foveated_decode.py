"""Foveated decode: the fovea matches a full decode; the periphery costs 1/s^2 of one."""

from __future__ import annotations

import pytest
import torch

from generator.codecs import PixelCodec
from generator.flux2 import Flux2VaeCodec
from generator.foveated_decode import (
    decoded_area_ratio,
    fovea_box,
    foveated_decode,
    max_abs_error_in_fovea,
    mean_abs_error_in_fovea,
    stage_seconds,
)
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.tiny_flux2 import tiny_flux2_components


def _layout(size_px, token_px, spec, gaze):
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size_px, image_height_px=size_px
    )
    return build_layout(geometry=geometry, gaze_px=gaze, spec=spec, patch_px=token_px)


@pytest.fixture(scope="module")
def codec():
    return Flux2VaeCodec(tiny_flux2_components()["vae"])


def test_pixel_codec_fovea_is_exact():
    codec = PixelCodec(cells_per_token=4)
    layout = _layout(128, 4, LayoutSpec(mode="circle", periphery_factor=2), (40.0, 70.0))
    grid = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = foveated_decode(codec, grid, layout)
    assert out.shape == grid.shape
    assert max_abs_error_in_fovea(out, grid, layout) < 1e-5
    assert (out - grid).abs().max() > 0.01  # the periphery is coarser


@pytest.mark.parametrize(
    "spec", [LayoutSpec(mode="circle", periphery_factor=2), LayoutSpec(mode="acuity", strength=4.0)]
)
def test_vae_fovea_matches_full_decode(codec, spec):
    layout = _layout(128, codec.cells_per_token * codec.px_per_cell, spec, (50.0, 60.0))
    assert 1 in layout.level_counts() and len(layout.level_counts()) > 1
    # A smooth latent, as a trained model's latents are (white noise is all high frequency).
    g = torch.Generator().manual_seed(1)
    small = torch.randn(1, codec.channels, 16, 16, generator=g)
    grid = torch.nn.functional.interpolate(small, size=(64, 64), mode="bicubic")
    full = codec.decode(grid)
    fov = foveated_decode(codec, grid, layout, margin_tokens=4)
    assert fov.shape == full.shape
    # The VAE's group norms and mid-block attention see the crop only, so the fovea is close to,
    # not equal to, the full decode; it must be far closer than the periphery pass alone.
    low_only = foveated_decode(codec, grid, layout, margin_tokens=0, fovea=False)
    fovea_error = mean_abs_error_in_fovea(fov, full, layout)
    assert fovea_error < 0.25 * mean_abs_error_in_fovea(low_only, full, layout)
    assert fovea_error < 0.15 * float(full.std())
    assert decoded_area_ratio(layout) < 1.0


def test_all_fine_layout_decodes_fully(codec):
    layout = _layout(64, 4, LayoutSpec(mode="full"), None)
    grid = torch.randn(1, codec.channels, 32, 32, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(foveated_decode(codec, grid, layout), codec.decode(grid))
    assert fovea_box(layout) is not None and decoded_area_ratio(layout) == 1.0


def test_stage_split_reports_shares():
    from generator.denoiser import FluxDenoiser
    from generator.pipeline import FoveatedGenerator
    from generator.tiny import TINY_PRESETS, ClassTableEncoder, build_tiny_transformer

    preset = TINY_PRESETS["flux2-tiny"]
    generator = FoveatedGenerator(
        denoiser=FluxDenoiser(build_tiny_transformer("flux2-tiny")),
        encoder=ClassTableEncoder(preset),
        codec=PixelCodec(cells_per_token=preset.patch_px),
        model_id="flux2-tiny",
        steps=2,
    )
    layout = _layout(128, 16, LayoutSpec(mode="circle", periphery_factor=2), (64.0, 64.0))
    split = stage_seconds(generator, layout)
    shares = split["encode_share"] + split["denoise_share"] + split["decode_share"]
    assert shares == pytest.approx(1.0)
    assert split["denoise_seconds"] > 0
    assert split["encode_first_seconds"] is None  # a class table has no prompt cache


def test_stage_seconds_times_the_first_encode_apart(tmp_path):
    """A prompt model's split gives the cached encode a session pays per image and the first,
    uncached one (paid once per prompt), and samples as the generator does (static shapes on)."""
    from generator.loading import load_generator
    from generator.tiny_flux2 import save_tiny_flux2_pipeline

    generator = load_generator(str(save_tiny_flux2_pipeline(tmp_path / "k")), static_shapes=True)
    calls = []
    original = generator.encoder.pipe.encode_prompt
    generator.encoder.pipe.encode_prompt = lambda *a, **k: calls.append(1) or original(*a, **k)
    generator.encoder.encode("a cat", device="cpu", dtype=torch.float32)  # cached before
    layout = _layout(64, 4, LayoutSpec(mode="circle", periphery_factor=2), (32.0, 32.0))
    split = stage_seconds(generator, layout, condition="a cat")
    assert len(calls) == 2  # the warm cache was cleared: one uncached encode, then a cache hit
    assert split["encode_first_seconds"] > 0 and split["encode_seconds"] > 0
