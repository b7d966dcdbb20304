import numpy as np
import pytest
import torch

from generator import (
    FluxDenoiser,
    FoveatedGenerator,
    LayoutSpec,
    StimulusGeometry,
    build_layout,
    default_display,
    load_generator,
)
from generator.denoiser import Conditioning
from generator.sampler import sample_euler, shifted_timesteps
from generator.tokens import patchify, unpatchify

GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=256, image_height_px=256)


def _plain_full_grid(generator: FoveatedGenerator, *, seed: int, steps: int) -> torch.Tensor:
    """Full-resolution sampling written without layouts: patchify, meshgrid ids, Euler, unpatchify."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.randn(1, 3, 256, 256, generator=g)
    x = patchify(grid, 16)
    rr, cc = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    img_ids = torch.stack([torch.zeros(256), rr.ravel(), cc.ravel()], dim=1)
    cond = generator.encoder.encode(None, device="cpu", dtype=torch.float32)
    txt_ids = torch.zeros(cond.text.shape[1], 3)
    times = shifted_timesteps(steps, shift=generator.shift)
    model = generator.denoiser.transformer
    with torch.no_grad():
        for i in range(steps):
            v = model(
                hidden_states=x,
                encoder_hidden_states=cond.text,
                pooled_projections=cond.pooled,
                timestep=times[i].expand(1),
                img_ids=img_ids,
                txt_ids=txt_ids,
                return_dict=False,
            )[0]
            x = x + (times[i + 1] - times[i]) * v
    return unpatchify(x, 16, 16, 16)


def test_full_layout_equals_plain_full_grid_path():
    generator = load_generator("tiny")
    out = generator.generate(seed=3, geometry=GEOMETRY, gaze_px=None, spec=LayoutSpec(mode="full"))
    plain = _plain_full_grid(generator, seed=3, steps=generator.steps)
    expected = (
        ((plain[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    )
    # Compare before quantisation too, through the pipeline's own stages.
    layout = build_layout(
        geometry=GEOMETRY, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
    )
    d = generator.denoiser
    cond = generator.encoder.encode(None, device="cpu", dtype=torch.float32)
    tokens = sample_euler(
        d,
        generator.noise_tokens(layout, seed=3),
        ids=d.positions(layout, text_len=cond.text.shape[1]),
        cond=cond,
        steps=generator.steps,
        shift=generator.shift,
    ).tokens
    from generator.tokens import unpack

    assert (unpack(tokens, layout, p=16) - plain).abs().max().item() <= 1e-5
    assert np.abs(out.image.astype(int) - expected.astype(int)).max() <= 1


def test_same_seed_same_image_and_sidecar_records_the_run():
    generator = load_generator("tiny")
    kwargs = dict(seed=5, geometry=GEOMETRY, gaze_px=(100.0, 140.0), spec=LayoutSpec(strength=1.0))
    a, b = generator.generate(**kwargs), generator.generate(**kwargs)
    assert np.array_equal(a.image, b.image)
    assert a.image.shape == (256, 256, 3) and a.image.dtype == np.uint8
    assert a.tokens < a.tokens_full
    side = a.sidecar
    assert (
        side["seed"] == 5
        and side["tokens"] == a.tokens
        and len(side["step_seconds"]) == generator.steps
    )
    assert side["geometry"]["display"]["distance_cm"] == 60.0


def test_denoiser_is_permutation_equivariant_and_position_sensitive():
    generator = load_generator("tiny")
    layout = build_layout(
        geometry=GEOMETRY, gaze_px=(128.0, 128.0), spec=LayoutSpec(strength=2.0), patch_px=16
    )
    d = generator.denoiser
    cond = generator.encoder.encode(1, device="cpu", dtype=torch.float32)
    ids = d.positions(layout, text_len=cond.text.shape[1])
    x = generator.noise_tokens(layout, seed=1)
    t = torch.full((1,), 0.7)
    out = d(x, ids=ids, t=t, cond=cond)
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(0))
    from generator.denoiser import TokenPositions

    permuted = d(x[:, perm], ids=TokenPositions(ids.img_ids[perm], ids.txt_ids), t=t, cond=cond)
    torch.testing.assert_close(permuted, out[:, perm], rtol=1e-4, atol=1e-5)
    shifted = d(
        x,
        ids=TokenPositions(ids.img_ids + torch.tensor([0.0, 0.5, 0.0]), ids.txt_ids),
        t=t,
        cond=cond,
    )
    assert (shifted - out).abs().max() > 1e-4


def test_flux2_transformer_and_guidance_run():
    generator = load_generator("flux2-tiny")
    out = generator.generate(seed=1, geometry=GEOMETRY, gaze_px=(60.0, 60.0), spec=LayoutSpec())
    assert out.image.shape == (256, 256, 3)
    assert generator.denoiser.positions(out.layout, text_len=8).img_ids.shape[1] == 4
    tiny = load_generator("tiny")
    tiny.guidance_scale = 3.0
    guided = tiny.generate(
        seed=1, geometry=GEOMETRY, gaze_px=(60.0, 60.0), spec=LayoutSpec(), condition=2
    )
    tiny.guidance_scale = 1.0
    plain = tiny.generate(
        seed=1, geometry=GEOMETRY, gaze_px=(60.0, 60.0), spec=LayoutSpec(), condition=2
    )
    assert not np.array_equal(guided.image, plain.image)


def test_x_prediction_converts_to_velocity():
    class Echo(torch.nn.Module):
        config = type("C", (), {"axes_dims_rope": (8, 12, 12)})()

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, hidden_states, **kwargs):
            return (torch.zeros_like(hidden_states),)  # predicts clean data x = 0

    d = FluxDenoiser(Echo(), prediction="x")
    x_t = torch.randn(1, 5, 4)
    ids = None
    v = d(
        x_t,
        ids=type("I", (), {"img_ids": None, "txt_ids": None})() if ids is None else ids,
        t=torch.tensor([0.5]),
        cond=Conditioning(text=torch.zeros(1, 1, 1)),
    )
    torch.testing.assert_close(v, x_t / 0.5)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_timesteps_run_from_noise_to_data(shift):
    t = shifted_timesteps(8, shift=shift)
    assert t[0] == 1.0 and t[-1] == 0.0 and bool((t[1:] < t[:-1]).all())
