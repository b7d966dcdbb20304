"""The periphery stage (generator.models.periphery): it changes only the pixels of coarse tokens,
follows the layout's levels, round-trips its weights; the shipped pipeline
makes its training pairs (resumably, refusing changed settings), a tiny run on them lowers its
loss and resumes, and an export adds it to a copy of the shipped weights, which then generates
with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.errors import FoveaError
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.models.detail import detail_noise
from generator.models.periphery import (
    PeripheryConfig,
    PeripheryNet,
    add_periphery_detail,
    level_pixels,
    periphery_loss,
)
from generator.models.weights_io import load_periphery, save_periphery
from generator.training.config import TrainConfig
from generator.training.periphery_pairs import (
    PairSettings,
    build_pairs,
    load_pairs,
    pair_crops,
)
from generator.training.train import train

REPO = Path(__file__).resolve().parents[2]
PACK = str(REPO / "generator" / "data" / "photos-1024.npz")
SMALL = PeripheryConfig(channels=8, blocks=1)


def _layout(px: int = 256, strength: float = 1.0):
    geometry = StimulusGeometry(display=default_display(), image_width_px=px, image_height_px=px)
    spec = LayoutSpec(mode="acuity", strength=strength)
    return build_layout(geometry=geometry, gaze_px=(px * 0.3, px * 0.6), spec=spec, patch_px=16)


def _random_net(seed: int = 0) -> PeripheryNet:
    torch.manual_seed(seed)
    net = PeripheryNet(SMALL)
    torch.nn.init.normal_(net.out.weight, std=0.05)  # the shipped init changes nothing
    return net.eval()


def test_level_maps_follow_the_layout():
    layout = _layout()
    cells = layout.level_map()
    assert set(np.unique(cells)) == set(np.unique(layout.levels))
    assert (cells == 0).sum() == 0  # every cell is covered by one token
    pixels = level_pixels(layout)
    assert pixels.shape == (layout.grid_h * 16, layout.grid_w * 16)
    for r, c, k in zip(layout.rows[:20], layout.cols[:20], layout.levels[:20], strict=True):
        block = pixels[r * 16 : (r + k) * 16, c * 16 : (c + k) * 16]
        assert (block == k).all()


def test_an_untrained_stage_changes_nothing():
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    levels = torch.full((1, 1, 64, 64), 4.0)
    with torch.no_grad():
        out = PeripheryNet(SMALL)(torch.randn(1, 3, 64, 64), image, levels)
    assert torch.equal(out, image)


def test_only_coarse_token_pixels_change():
    print("seed 0")
    layout = _layout()
    h, w = layout.grid_h * 16, layout.grid_w * 16
    refined = torch.rand(1, 3, h, w) * 2 - 1
    fovea = (refined + 0.1).clamp(-1, 1)  # stands for the detail stage's output
    out = add_periphery_detail(
        _random_net(), refined, layout, noise=detail_noise(0, height=h, width=w), fovea=fovea
    )
    coarse = torch.from_numpy(level_pixels(layout) >= 2)
    assert torch.equal(out[..., ~coarse], fovea[..., ~coarse])
    assert (out[..., coarse] - refined[..., coarse]).abs().mean() > 1e-3
    full = build_layout(
        geometry=StimulusGeometry(display=default_display(), image_width_px=w, image_height_px=h),
        gaze_px=None,
        spec=LayoutSpec(mode="full"),
        patch_px=16,
    )
    assert add_periphery_detail(_random_net(), refined, full, noise=refined, fovea=fovea) is fovea


def test_the_seam_penalty_is_the_benchmarks_seam_ratio_at_any_crop_origin():
    from generator.evaluation.detail_metrics import seam_ratio
    from generator.models.periphery import seam_excess

    print("seed 0")
    image = (np.random.default_rng(0).random((70, 90, 3)) * 255).astype(np.uint8)
    image[:, 15::16] //= 2  # steps at the token borders
    image[31::16, :] //= 2
    for r, c in ((0, 0), (5, 3), (16, 9)):
        crop = np.ascontiguousarray(image[r:, c:])
        shifted = (torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5) - 1
        excess = float(seam_excess(shifted, torch.tensor([[r, c]]), token_px=16))
        if (r, c) == (0, 0):
            assert excess == pytest.approx(seam_ratio(image) - 1, abs=1e-4)
        assert excess > 0.05


def test_weights_round_trip(tmp_path):
    net = _random_net(3)
    save_periphery(net, tmp_path / "p.safetensors", dtype=torch.float32)
    back = load_periphery(tmp_path / "p.safetensors")
    assert back.config == net.config
    for a, b in zip(net.state_dict().values(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(FoveaError, match="not found"):
        load_periphery(tmp_path / "missing.safetensors")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    """Two twins x two foveated images at 256 px from the shipped model."""
    out = tmp_path_factory.mktemp("pairs")
    build_pairs(PairSettings(count=2, per_twin=2, resolution=256, seed=5), out, progress=False)
    return out


def test_pairs_are_the_shipped_pipelines_twins_and_refined_foveated_images(pairs_dir):
    files = sorted(pairs_dir.glob("pair_*.npz"))
    assert [f.name for f in files] == ["pair_000.npz", "pair_001.npz"]
    with np.load(files[0]) as d:
        assert d["twin"].shape == (256, 256, 3) and d["twin"].dtype == np.uint8
        assert d["foveated"].shape == (2, 256, 256, 3)
        assert d["levels"].shape == (2, 16, 16) and d["levels"].max() >= 2
        assert str(d["source"]).startswith("train:")  # never a held-out photograph
        assert int(d["seed"]) == 500_000
    record = json.loads((pairs_dir / "pairs.json").read_text())
    assert record["model"] == "default-foveated" and record["count"] == 2
    stamp = files[0].stat().st_mtime_ns
    build_pairs(PairSettings(count=2, per_twin=2, resolution=256, seed=5), pairs_dir)
    assert files[0].stat().st_mtime_ns == stamp  # resumed: nothing made again
    with pytest.raises(FoveaError, match="other settings"):
        build_pairs(PairSettings(count=2, per_twin=3, resolution=256, seed=5), pairs_dir)


def test_pair_crops_have_the_shapes_and_ranges_the_loss_takes(pairs_dir):
    pairs = load_pairs(pairs_dir)
    assert len(pairs) == 2
    noise, image, levels, twin, origin = pair_crops(
        pairs, count=6, crop_px=64, rng=np.random.default_rng(0)
    )
    assert noise.shape == image.shape == twin.shape == (6, 3, 64, 64)
    assert levels.shape == (6, 1, 64, 64) and (levels >= 1).all()
    assert image.min() >= -1 and image.max() <= 1
    r, c = (int(v) for v in origin[0])  # the crop sits at its origin in its pair's images
    assert any(torch.equal(n[:, r : r + 64, c : c + 64].float(), noise[0]) for n in pairs.noises)
    with pytest.raises(FoveaError, match="no periphery pairs"):
        load_pairs(pairs_dir / "nothing-here")


def test_a_tiny_periphery_run_lowers_its_loss_resumes_and_exports(pairs_dir, tmp_path):
    from generator.models.weights_io import (
        LORA_FILE,
        PERIPHERY_FILE,
        WEIGHTS_DIR,
        load_default_generator,
    )
    from generator.training.export import export_weights

    print("seed 3")
    cfg = dict(
        stage="periphery",
        data=str(pairs_dir),
        out=str(tmp_path / "p"),
        crop_px=[64],
        batch_size=8,
        steps=120,
        lr=3e-3,
        warmup_steps=5,
        ema_decay=0.9,
        model={"channels": 8, "blocks": 1},
        progress=False,
        seed=3,
    )
    *held, _ = pair_crops(
        load_pairs(pairs_dir), count=16, crop_px=64, rng=np.random.default_rng(99)
    )
    with torch.no_grad():
        before = float(periphery_loss(PeripheryNet(PeripheryConfig(channels=8, blocks=1)), *held))
    log = train(TrainConfig(**cfg))
    net = load_periphery(tmp_path / "p" / "periphery.safetensors")
    with torch.no_grad():
        after = float(periphery_loss(net, *held))
    print(f"held-batch loss untrained {before:.4f}, after 120 steps {after:.4f}")
    assert after < 0.95 * before and log["steps"] == 120
    resumed = train(TrainConfig(**{**cfg, "steps": 125}), resume=True)
    assert resumed["steps"] == 125

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    (weights / PERIPHERY_FILE).unlink(missing_ok=True)
    lora_before = (weights / LORA_FILE).read_bytes()
    record = export_weights(
        base_dir=None, foveated_dir=None, out_dir=weights, periphery_dir=tmp_path / "p"
    )
    assert (weights / LORA_FILE).read_bytes() == lora_before
    assert record["periphery"]["pairs"]["count"] == 2 and record["detail"]
    card = (weights / "MODEL_CARD.md").read_text()
    assert "Periphery stage" in card and "2 twins x 2 foveated images at 256 px" in card
    assert "fovea train pairs --out runs/pairs --count 2 --per-twin 2 --seed 5" in card
    assert "fovea train periphery --out runs/periphery --data runs/pairs" in card

    with_stage = load_default_generator(weights_dir=weights)
    without = load_default_generator()
    if (WEIGHTS_DIR / PERIPHERY_FILE).is_file():
        without.encoder.periphery = None
    assert with_stage.encoder.periphery is not None
    geometry = StimulusGeometry(display=default_display(), image_width_px=256, image_height_px=256)
    spec = LayoutSpec(mode="acuity", strength=1.0)
    a = with_stage.generate(seed=1, geometry=geometry, gaze_px=(128, 128), spec=spec)
    b = without.generate(seed=1, geometry=geometry, gaze_px=(128, 128), spec=spec)
    coarse = level_pixels(a.layout) >= 2
    assert np.array_equal(a.image[~coarse], b.image[~coarse])
    assert not np.array_equal(a.image[coarse], b.image[coarse])


def test_the_tokens_only_preset_is_the_default_model_without_its_periphery_stage():
    from generator.loading import load_generator

    default, tokens_only = load_generator("default"), load_generator("default-tokens-only")
    assert default.encoder.periphery is not None and default.model_id == "default-foveated"
    assert tokens_only.encoder.periphery is None
    assert tokens_only.model_id == "default-foveated-tokens-only"
    assert tokens_only.encoder.detail is not None  # the fovea still gets its detail


def test_crops_larger_than_the_pairs_are_a_one_line_error(tmp_path, capsys):
    """Periphery training on pairs made at --resolution 128 with the default --crop-px 256
    failed after loading them with numpy's 'ValueError: high <= 0' traceback. Now it is one
    line naming the pairs' size; crops that fit train."""
    from generator.training.train import main as train_main

    print("seed 0")
    rng = np.random.default_rng(0)
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    np.savez(
        pairs / "pair_000.npz",
        twin=(rng.random((128, 128, 3)) * 255).astype(np.uint8),
        seed=0,
        source="train:x",
        foveated=(rng.random((1, 128, 128, 3)) * 255).astype(np.uint8),
        levels=np.full((1, 8, 8), 2, np.uint8),
        strength=np.array([1.0]),
        gaze_px=np.array([[64.0, 64.0]]),
    )
    argv = ["periphery", "--data", str(pairs), "--batch-size", "2", "--steps", "1", "--no-progress"]
    argv += ["--model-json", '{"channels": 8, "blocks": 1}']
    assert train_main([*argv, "--out", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err
    assert "--crop-px 256 is larger than the pairs" in err and "128 px" in err
    assert "Traceback" not in err
    assert train_main([*argv, "--out", str(tmp_path / "fits"), "--crop-px", "64", "128"]) == 0
