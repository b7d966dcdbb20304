"""The detail stage (generator.models.detail): its training degradations look like the
transformer's (blur, token steps, speckle), it changes only the fine tokens' pixels, a foveated
image and its full-resolution twin get the same detail where both have fine tokens, its noise is
the seed's own, its weights round-trip, and a tiny training run lowers its loss and resumes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.data.images import load_bank, random_crops
from generator.errors import FoveaError
from generator.evaluation.detail_metrics import octave_power_ratio, seam_ratio
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.models.default import DefaultModel, ModelConfig
from generator.models.detail import (
    DetailConfig,
    DetailNet,
    add_detail,
    degrade,
    detail_loss,
    detail_noise,
    fine_pixels,
    sample_times,
)
from generator.models.weights_io import build_generator, load_detail, save_detail
from generator.scene import Scene
from generator.training.config import TrainConfig
from generator.training.train import train

REPO = Path(__file__).resolve().parents[2]
PACK = str(REPO / "generator" / "data" / "photos-1024.npz")
SMALL = DetailConfig(channels=8, blocks=2, steps=2)


def _net(config: DetailConfig = SMALL, seed: int = 0) -> DetailNet:
    """A net whose zero-initialised output layer has random values, so that it acts."""
    torch.manual_seed(seed)
    net = DetailNet(config).eval()
    with torch.no_grad():
        net.out.weight.normal_(0, 0.05)
    return net


def _layout(px: int, mode: str):
    geometry = StimulusGeometry(display=default_display(), image_width_px=px, image_height_px=px)
    gaze = None if mode == "full" else (px * 0.4, px * 0.55)
    return build_layout(geometry=geometry, gaze_px=gaze, spec=LayoutSpec(mode=mode), patch_px=16)


def test_fine_pixels_are_the_level_one_tokens():
    full, fov = _layout(256, "full"), _layout(256, "acuity")
    assert fine_pixels(full).all()
    where = fine_pixels(fov)
    fine = fov.levels == 1
    assert 0 < fine.sum() < fov.num_tokens
    assert where.sum() == fine.sum() * 16 * 16
    for r, c, k in zip(fov.rows, fov.cols, fov.levels, strict=True):
        assert where[r * 16 : (r + k) * 16, c * 16 : (c + k) * 16].all() == (k == 1)


def test_detail_changes_only_the_given_pixels_and_matches_the_twin_there():
    print("seed 0")
    torch.manual_seed(0)
    net = _net(dataclasses.replace(SMALL, blocks=DetailConfig().blocks))  # the shipped reach
    image = torch.rand(1, 3, 256, 256) * 2 - 1
    noise = detail_noise(0, height=256, width=256)
    where = fine_pixels(_layout(256, "acuity"))
    fov = add_detail(net, image, where=where, noise=noise)
    twin = add_detail(net, image, where=np.ones_like(where), noise=noise)
    inside = torch.from_numpy(where)
    assert torch.equal(fov[..., ~inside], image[..., ~inside])
    assert (fov[..., inside] - image[..., inside]).abs().mean() > 1e-3
    # The fovea sees the same pixels within the net's reach in both: the same detail.
    torch.testing.assert_close(fov[..., inside], twin[..., inside], atol=1e-5, rtol=0)
    assert torch.equal(add_detail(net, image, where=~np.ones_like(where), noise=noise), image)


def test_detail_noise_is_the_seeds_own_stream():
    a, b = detail_noise(3, height=32, width=48), detail_noise(3, height=32, width=48)
    assert torch.equal(a, b) and a.shape == (1, 3, 32, 48)
    assert not torch.equal(a, detail_noise(4, height=32, width=48))
    transformer = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(a, transformer)


def test_detail_weights_round_trip(tmp_path):
    net = _net()
    save_detail(net, tmp_path / "d.safetensors", dtype=torch.float32)
    loaded = load_detail(tmp_path / "d.safetensors")
    assert loaded.config == SMALL
    z, cond, t = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32), torch.tensor([0.5])
    torch.testing.assert_close(net(z, cond, t), loaded(z, cond, t))
    with pytest.raises(FoveaError, match="not found"):
        load_detail(tmp_path / "missing.safetensors")


def test_the_generator_adds_detail_where_tokens_carry_it():
    torch.manual_seed(0)
    model = DefaultModel(
        ModelConfig(heads=1, head_dim=32, single_blocks=1, rope_axes=(8, 12, 12), steps=2)
    ).eval()
    plain = build_generator(model, model_id="t")
    detailed = build_generator(model, model_id="t", detail=_net())
    geometry = StimulusGeometry(display=default_display(), image_width_px=512, image_height_px=512)
    pixels = (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)
    scene = Scene(pixels=pixels, source="test")
    kw = dict(seed=1, geometry=geometry, gaze_px=(200.0, 280.0), scene=scene)
    a = plain.generate(spec=LayoutSpec(mode="acuity"), **kw)
    b = detailed.generate(spec=LayoutSpec(mode="acuity"), **kw)
    fine = fine_pixels(a.layout)
    assert (a.layout.levels > 1).any() and fine.any()
    assert np.array_equal(a.image[~fine], b.image[~fine])  # coarse tokens: as they were
    assert not np.array_equal(a.image[fine], b.image[fine])


def test_level_two_tokens_get_the_detail_at_their_resolution():
    from generator.models.detail import add_layout_detail
    from generator.tokens import pack, unpack

    net = _net()
    layout = _layout(512, "acuity")
    image = torch.rand(1, 3, 512, 512) * 2 - 1
    noise = detail_noise(2, height=512, width=512)
    fine = torch.from_numpy(fine_pixels(layout))
    reach = torch.from_numpy(fine_pixels(layout, max_level=2))
    out = add_layout_detail(net, image, layout, noise=noise, max_level=2)
    full = add_detail(net, image, where=reach.numpy(), noise=noise)
    reduced = unpack(pack(full, layout, p=16), layout, p=16)
    mid = reach & ~fine
    assert torch.equal(out[..., fine], full[..., fine])
    assert torch.equal(out[..., mid], reduced[..., mid])
    assert torch.equal(out[..., ~reach], image[..., ~reach])


def _photos(count: int, px: int, seed: int) -> torch.Tensor:
    bank = load_bank(source=Path(PACK), split="train")
    g = torch.Generator().manual_seed(seed)
    return random_crops(bank, count=count, crop_px=px, generator=g, max_zoom_out=1.0)[0]


def _pixels(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) float64 in 0..255, not rounded (8-bit rounding alone
    puts power into the top octave of a flat crop)."""
    return ((x.permute(1, 2, 0).double() + 1) * 127.5).numpy()


def test_degraded_photos_look_like_the_transformers_images():
    print("seed 4")
    x = _photos(4, 128, seed=4)
    blur_only = dataclasses.replace(
        SMALL, offset_std=(0.0, 0.0), speckle_fraction=(0.0, 0.0), blur_px=(1.0, 1.0)
    )
    blurred = degrade(x, blur_only, generator=torch.Generator().manual_seed(4))
    for a, b in zip(x, blurred, strict=True):
        power = octave_power_ratio(_pixels(b), _pixels(a), scene_factor=4)
        assert power["0.25-0.5"] < 0.15 < power["0.125-0.25"] < 0.8  # as the transformer's
    flat = torch.zeros(2, 3, 128, 128)
    steps = dataclasses.replace(blur_only, offset_std=(0.02, 0.02))
    stepped = degrade(flat, steps, generator=torch.Generator().manual_seed(4))
    assert seam_ratio(_pixels(stepped[0])) > 3  # steps at token borders, gentle ramps inside
    speckled = dataclasses.replace(blur_only, speckle_fraction=(0.5, 0.5))
    out = degrade(flat, speckled, generator=torch.Generator().manual_seed(4))
    per_token = out.abs().reshape(2, 3, 8, 16, 8, 16).mean(dim=(1, 3, 5))
    assert 0.2 < (per_token > 0.001).float().mean() < 0.8  # about half the tokens
    again = degrade(flat, speckled, generator=torch.Generator().manual_seed(4))
    assert torch.equal(out, again)


def test_sample_times_run_from_noise_to_data_warped_towards_low_noise():
    times = sample_times(dataclasses.replace(SMALL, steps=4, shift=0.4))
    assert times[0] == 1.0 and times[-1] == 0.0 and np.all(np.diff(times) < 0)
    assert times[2] < 0.5  # half the steps below the middle of the path


def _held_loss(net: DetailNet) -> float:
    x = _photos(16, 64, seed=9)
    with torch.no_grad():
        return float(detail_loss(net, x, generator=torch.Generator().manual_seed(9)))


def test_a_tiny_detail_run_lowers_its_loss_and_resumes(tmp_path):
    print("seed 7")
    cfg = dict(
        stage="detail",
        data=PACK,
        out=str(tmp_path / "d"),
        crop_px=[64],
        batch_size=8,
        steps=150,
        lr=3e-3,
        warmup_steps=5,
        ema_decay=0.9,
        model={"channels": 8, "blocks": 1},
        progress=False,
        seed=7,
    )
    torch.manual_seed(0)
    before = _held_loss(DetailNet(DetailConfig(channels=8, blocks=1)))
    log = train(TrainConfig(**cfg))
    after = _held_loss(load_detail(tmp_path / "d" / "detail.safetensors"))
    print(f"held-batch noise loss untrained {before:.4f}, after 150 steps {after:.4f}")
    assert after < 0.9 * before and log["steps"] == 150
    resumed = train(TrainConfig(**{**cfg, "steps": 160}), resume=True)
    assert resumed["steps"] == 160
    assert len(json.loads((tmp_path / "d" / "losses.json").read_text())["total"]) == 160


def test_export_adds_the_detail_stage_and_keeps_the_shipped_model(tmp_path):
    import shutil

    from generator.models.weights_io import DETAIL_FILE, LORA_FILE, WEIGHTS_DIR
    from generator.training.export import export_weights

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    (weights / DETAIL_FILE).unlink(missing_ok=True)
    lora_before = (weights / LORA_FILE).read_bytes()
    run = dict(
        stage="detail",
        data=PACK,
        out=str(tmp_path / "d"),
        crop_px=[32],
        batch_size=2,
        steps=3,
        model={"channels": 4, "blocks": 1},
        progress=False,
    )
    train(TrainConfig(**run))
    record = export_weights(
        base_dir=None,
        foveated_dir=None,
        out_dir=weights,
        detail_dir=tmp_path / "d",
        detail_sampler={"steps": 2, "shift": 4.0},
    )
    assert (weights / LORA_FILE).read_bytes() == lora_before  # the shipped adapter is kept
    assert record["foveated"] and record["detail"]["steps"] == 3
    loaded = load_detail(weights / DETAIL_FILE)
    assert (loaded.config.steps, loaded.config.shift, loaded.config.channels) == (2, 4.0, 4)
    card = (weights / "MODEL_CARD.md").read_text()
    assert "Detail stage" in card and "2 Euler steps, shift 4" in card
    assert "fovea train detail --out runs/detail" in card
    assert "--detail runs/detail --detail-steps 2 --detail-shift 4" in card
    assert (weights / "default-detail-loss.png").is_file()


def test_the_shipped_model_generates_in_bfloat16():
    """``--dtype bfloat16`` (``[stimulus] dtype``) with the default model stopped in the detail
    stage (its FiLM's float32 time embedding fed to bfloat16 weights: 'mat1 and mat2 must have
    the same dtype'); the image is now the float32 one to bfloat16 rounding."""
    from generator.loading import load_generator

    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    kw = dict(seed=0, geometry=geometry, gaze_px=(40.0, 60.0), spec=LayoutSpec())
    half = load_generator("default", dtype="bfloat16").generate(**kw)
    full = load_generator("default").generate(**kw)
    assert set(half.layout.level_counts()) == {1, 2}  # detail and periphery stages both ran
    difference = np.abs(half.image.astype(int) - full.image)
    assert difference.mean() < 1.0 and difference.max() <= 8
