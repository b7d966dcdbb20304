"""The renoise sampler (generator.sampler.sample_renoise) and why the default model uses it."""

import pytest
import torch
import torch.nn.functional as F

from generator import LayoutSpec, StimulusGeometry, default_display, load_generator
from generator.denoiser import Conditioning
from generator.errors import FoveaError
from generator.pipeline import FoveatedGenerator
from generator.sampler import sample_renoise, shifted_timesteps, step_seed
from generator.scene_sources import scene_from_original

SPECKLE_MAX = 0.08  # p99.9 of |luma high-pass|; Euler gave 0.14-0.27 on the scene below


class _Oracle:
    """An x-prediction denoiser that always knows the answer ``x0``: v = (x - x0) / t."""

    def __init__(self, x0: torch.Tensor):
        self.x0 = x0
        self.times: list[float] = []

    def __call__(self, x, *, ids, t, cond):
        self.times.append(float(t[0]))
        return (x - self.x0) / t[:, None, None]


def test_renoise_returns_the_clean_estimate_and_draws_fresh_noise_between_steps():
    x0 = torch.randn(1, 5, 12, generator=torch.Generator().manual_seed(0))
    oracle, drawn = _Oracle(x0), []

    def fresh(i):
        drawn.append(i)
        return torch.randn(1, 5, 12, generator=torch.Generator().manual_seed(100 + i))

    noise = torch.randn(1, 5, 12, generator=torch.Generator().manual_seed(1))
    cond = Conditioning(text=torch.zeros(1, 1, 1))
    out = sample_renoise(oracle, noise, ids=None, cond=cond, steps=4, fresh_noise=fresh, shift=0.5)
    torch.testing.assert_close(out.tokens, x0)
    assert out.sampler == "renoise" and len(out.step_seconds) == 4
    assert drawn == [0, 1, 2]
    assert oracle.times == pytest.approx(shifted_timesteps(4, shift=0.5)[:-1].tolist())


def test_step_seeds_are_fixed_and_distinct():
    seeds = {step_seed(s, i) for s in range(20) for i in range(8)}
    assert len(seeds) == 160 and step_seed(3, 1) == step_seed(3, 1)
    assert all(0 <= s < 2**63 for s in seeds)


def test_an_unknown_sampler_is_refused():
    gen = load_generator("tiny")
    with pytest.raises(FoveaError, match="sampler must be one of"):
        FoveatedGenerator(
            denoiser=gen.denoiser,
            encoder=gen.encoder,
            codec=gen.codec,
            model_id="x",
            sampler="ddim",
        )


def _high_pass(image) -> torch.Tensor:
    """|luma - its 5x5 box mean| in [-1, 1] units, per pixel."""
    y = torch.as_tensor(image).float().mean(-1)[None, None] / 127.5
    box = F.avg_pool2d(F.pad(y, (2, 2, 2, 2), mode="replicate"), 5, 1)
    return (y - box)[0, 0].abs()


@pytest.mark.slow
def test_the_default_models_twin_of_a_smooth_scene_has_no_speckled_tokens():
    """A smooth colour gradient (seeds 0, 1): under Euler the start noise that the x-prediction
    passes through grew into speckled tokens (bright and dark dots in flat sky); renoise keeps
    the image's finest detail as small as the detail stage draws it."""
    gen = load_generator("default")
    assert gen.sampler == "renoise"
    side = 256
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=side, image_height_px=side
    )
    yy, xx = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    original = torch.stack([0.2 + 0.3 * xx, 0.5 + 0.2 * yy, 0.7 - 0.2 * xx])[None] * 2 - 1
    scene = scene_from_original(original, factor=gen.scene_factor, source="gradient")
    for seed in (0, 1):
        print(f"seed {seed}")
        run = dict(seed=seed, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"))
        image = gen.generate(scene=scene, **run).image
        speckle = float(_high_pass(image).quantile(0.999))
        assert speckle < SPECKLE_MAX, speckle
        assert (gen.generate(scene=scene, **run).image == image).all()
