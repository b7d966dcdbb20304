"""`fovea bench quality`: natural-detail metrics on analytic inputs and held-out photographs, the
bounds (generator.evaluation.ceiling), the targets, and one small run with tiny scene models."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.errors import FoveaError
from generator.evaluation.ceiling import (
    block_means,
    level_map,
    reduce_to_layout,
    resample_within_blocks,
)
from generator.evaluation.detail_metrics import (
    octave_bands_cpp,
    octave_power_ratio,
    scene_psnr_db,
    seam_ratio,
    to_scene_size,
)
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.tokens import pack
from tests.generator.forward_hooks import module_forwards

SEED = 1234


def _layout(px: int = 256, strength: float = 1.0):
    geometry = StimulusGeometry(display=default_display(), image_width_px=px, image_height_px=px)
    return build_layout(
        geometry=geometry,
        gaze_px=(px * 0.3, px * 0.4),
        spec=LayoutSpec(mode="acuity", strength=strength),
        patch_px=16,
    )


def test_level_map_covers_every_cell_with_its_blocks_level():
    layout = _layout()
    levels = level_map(layout, cells_per_token=16)
    assert levels.shape == (256, 256)
    assert int(levels.min()) == 1 and int(levels.max()) == int(layout.levels.max())
    # Cell counts per level match the tokens' block areas.
    for k in np.unique(layout.levels):
        area = int((layout.levels == k).sum()) * (16 * int(k)) ** 2
        assert int((levels == int(k)).sum()) == area


def test_resampling_keeps_the_tokens_noise_and_changes_the_rest():
    print(f"seed {SEED}")
    layout = _layout()
    noise = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(SEED))
    other = resample_within_blocks(noise, layout, cells_per_token=16, seed=SEED + 1)
    # What a foveated generation sees is identical ...
    torch.testing.assert_close(
        pack(other, layout, p=16, noise=True), pack(noise, layout, p=16, noise=True)
    )
    # ... fine regions keep their noise exactly, coarse ones get new within-block noise ...
    levels = level_map(layout, cells_per_token=16)
    fine = (levels == 1).expand_as(noise)
    assert torch.equal(other[fine], noise[fine])
    coarse = ~fine
    assert (other[coarse] - noise[coarse]).abs().mean() > 0.5
    # ... and the result is still unit-variance white noise.
    assert abs(float(other.std()) - 1.0) < 0.05
    assert abs(float(block_means(other, 2).std()) - 0.5) < 0.05


def test_reducing_an_image_to_the_full_layout_changes_nothing():
    rng = np.random.default_rng(SEED)
    image = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    full = build_layout(geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16)
    assert np.array_equal(reduce_to_layout(image, full, cells_per_token=16), image)
    reduced = reduce_to_layout(image, _layout(128, 2.0), cells_per_token=16)
    assert reduced.shape == image.shape and not np.array_equal(reduced, image)


def _grey(values: np.ndarray) -> np.ndarray:
    """(H, W) values 0..255 -> (H, W, 3) uint8 grey image."""
    return np.repeat(np.asarray(values).round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_seam_ratio_of_tiles_with_known_steps_and_of_a_smooth_ramp():
    idx = np.arange(64)
    steps = idx + 20 * (idx // 16)  # slope 1 inside tokens, +20 at each 16 px border
    tiles = _grey(steps[:, None] + steps[None, :])
    # Border gradient 1 + 20, mid-token gradient 1, in both axes.
    assert seam_ratio(tiles, token_px=16) == pytest.approx(21.0)
    ramp = _grey(2 * idx[None, :] + idx[:, None] + np.zeros((64, 64)))
    assert seam_ratio(ramp, token_px=16) == pytest.approx(1.0)
    # Steps every 8 px sit at borders and mid-token offsets alike: no seams.
    eighths = idx + 20 * (idx // 8)
    assert seam_ratio(_grey(eighths[:, None] + 0 * idx[None, :]), token_px=16) == pytest.approx(1.0)


def test_octave_bands_start_at_the_scenes_nyquist():
    assert octave_bands_cpp(4) == [(0.125, 0.25), (0.25, 0.5)]
    assert octave_bands_cpp(8) == [(0.0625, 0.125), (0.125, 0.25), (0.25, 0.5)]
    with pytest.raises(FoveaError):
        octave_bands_cpp(1)


def test_power_ratio_of_an_image_with_itself_is_one_and_of_a_blur_falls_in_high_octaves():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(SEED)
    noise = gaussian_filter(rng.normal(128, 40, size=(128, 128)), 0.7)
    image = _grey(noise)
    same = octave_power_ratio(image, image, scene_factor=4)
    assert list(same) == ["0.125-0.25", "0.25-0.5"]
    assert all(v == pytest.approx(1.0) for v in same.values())
    blurred = _grey(gaussian_filter(noise, 2.0))
    ratio = octave_power_ratio(blurred, image, scene_factor=4)
    assert ratio["0.25-0.5"] < ratio["0.125-0.25"] < 0.5
    with pytest.raises(FoveaError):
        octave_power_ratio(image[:64], image, scene_factor=4)


def test_scene_psnr_of_an_exact_upsample_is_infinite_and_of_a_bicubic_one_high():
    rng = np.random.default_rng(SEED)
    scene = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    nearest = np.repeat(np.repeat(scene, 4, axis=0), 4, axis=1)
    assert np.array_equal(to_scene_size(nearest, scene_factor=4), scene)
    assert scene_psnr_db(nearest, scene) == float("inf")
    # A smooth scene, bicubic-upsampled the way the model sees it: close to itself.
    from generator.evaluation.quality_scenes import bicubic_image
    from generator.scene import Scene

    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.stack([100 + 60 * np.sin(xx / 5), 120 + 50 * np.cos(yy / 6), 90 + xx + yy], axis=2)
    smooth = smooth.round().astype(np.uint8)
    up = bicubic_image(Scene(pixels=smooth, source="test"), width_px=128, height_px=128)
    assert scene_psnr_db(up, smooth) > 40
    with pytest.raises(FoveaError):
        scene_psnr_db(nearest[:, :60], scene)


def test_heldout_photographs_and_their_bicubic_scenes_have_no_seams_and_bicubic_no_detail():
    from generator.evaluation.quality_scenes import bicubic_image, heldout_scenes

    scenes = heldout_scenes(count=3, width_px=256, height_px=256, factor=4)
    assert len({b.scene.sha256 for b in scenes}) == 3  # three different photographs
    assert [b.index for b in scenes] == [0, 1, 2]
    for bench in scenes:
        assert bench.scene.pixels.shape == (64, 64, 3)
        assert bench.scene.source.startswith(f"heldout:{bench.image_id}#crop=")
        assert not bench.original_upsampled  # the pack's photographs are >= 1024 px tall
        bicubic = bicubic_image(bench.scene, width_px=256, height_px=256)
        for image in (bench.scene.original, bicubic):
            assert 0.85 < seam_ratio(image) < 1.15
        power = octave_power_ratio(bicubic, bench.scene.original, scene_factor=4)
        assert power["0.25-0.5"] < 0.1 and power["0.125-0.25"] < 0.3
        assert scene_psnr_db(bench.scene.original, bench.scene.pixels) > 50
    with pytest.raises(FoveaError, match="held-out"):
        heldout_scenes(count=99, width_px=256, height_px=256, factor=4)


def test_targets_pass_and_fail_on_the_measured_medians():
    from generator.evaluation.quality_summary import summarize

    def rec(variant, strength, jod, seam):
        return {
            "model_variant": variant,
            "strength": strength,
            "jod": jod,
            "fovea_psnr_db": 40.0,
            "fovea_ssim": 0.9,
            "token_ratio": 0.2 / strength,
            "seam_ratio_foveated": seam,
            "scene_psnr_db_foveated": 35.0,
            "octave_power_ratio_foveated": {"0.125-0.25": 1.0, "0.25-0.5": 1.0},
        }

    def full(variant, seam, power, upsampled=False):
        return {
            "model_variant": variant,
            "seam_ratio": seam,
            "scene_psnr_db": 36.0,
            "octave_power_ratio": {"0.125-0.25": power, "0.25-0.5": power},
            "original_upsampled": upsampled,
        }

    records = [rec("default-foveated", 0.5, 9.7, 1.02), rec("default-foveated", 1.0, 8.9, 1.3)]
    records += [rec("default-naive", 0.5, 9.0, 1.0), rec("default-naive", 1.0, 9.2, 1.0)]
    rows = [full("original", 1.0, 1.0), full("bicubic", 1.0, 0.01)]
    rows += [full("default-foveated", 1.05, 0.9), full("default-foveated", 1.2, 3.0, True)]
    rows += [full("default-foveated", 1.0, 1.1)]
    summary = summarize(records, rows, resolution=256, seeds=[0], strengths=[0.5, 1.0])
    t = summary["targets"]
    assert t["no_seams_full"]["pass"] and t["no_seams_full"]["measured"] == pytest.approx(1.05)
    assert t["no_seams_full"]["worst"] == pytest.approx(1.2)
    assert t["no_seams_foveated"]["pass"] is False  # 1.3 at s = 1
    assert t["real_detail"]["pass"] and t["real_detail"]["bicubic"]["0.25-0.5"] == 0.01
    assert t["real_detail"]["native_scenes_only"]["0.125-0.25"] == pytest.approx(1.0)
    assert t["faithful_to_scene"]["pass"]
    assert t["jod_s0.5"]["pass"] and t["jod_s1"]["pass"] is False
    assert t["beats_naive"]["pass"] is False and t["beats_naive"]["measured"] == {
        "0.5": True,
        "1.0": False,
    }
    assert t["all_pass"] is False
    assert summary["jod_9_5_crossing"]["strength"] == pytest.approx(0.5 + 0.5 * 0.2 / 0.8)


def _tiny_scene_generator(seed: int, model_id: str):
    """A small scene-conditioned default model with random weights (output layer not zero)."""
    from generator.models.default import DefaultModel, ModelConfig
    from generator.models.weights_io import build_generator

    torch.manual_seed(seed)
    config = ModelConfig(
        heads=1, head_dim=32, double_blocks=1, single_blocks=1, rope_axes=(8, 12, 12)
    )
    model = DefaultModel(config)
    with torch.no_grad():
        torch.nn.init.normal_(model.transformer.proj_out.weight, std=0.02)
    return build_generator(model.eval().requires_grad_(False), model_id=model_id, steps=2)


def test_quality_bench_runs_end_to_end_on_held_out_scenes(tmp_path):
    """Two held-out scenes at 128 px, tiny scene models: records with the detail fields, the
    oracle bound, the targets, the sheets; the summary is strict JSON."""
    from PIL import Image

    from generator.evaluation.quality import QualitySettings, run_quality
    from generator.model_cli import _json

    print(f"seed {SEED}")
    models = {
        "default-foveated": _tiny_scene_generator(SEED, "tiny-post"),
        "default-naive": _tiny_scene_generator(SEED + 1, "tiny-naive"),
    }
    settings = QualitySettings(
        resolution=128,
        scenes=2,
        seeds=[0],
        strengths=[1.0, 4.0],
        gazes_frac=[(0.75, 0.35)],
        steps=2,
        ceiling=True,
    )
    result = run_quality(
        settings, models=models, sheets_dir=tmp_path / "sheets", progress=lambda _: None
    )
    records, bounds, rows = result["records"], result["bounds"], result["full_resolution"]
    variants = {r["model_variant"] for r in records}
    assert variants == {
        "default-foveated",
        "default-naive",
        "default-foveated-circle-p2",
        "default-foveated-circle-p4",
    }
    assert len(records) == 2 * (2 * 2 + 2)
    assert {r["model_variant"] for r in bounds} == {"oracle", "ceiling"}
    assert len(bounds) == 2 * 2 * 2
    assert len({r["scene"] for r in records}) == 2
    bands = ["0.125-0.25", "0.25-0.5"]
    for r in records + bounds:
        for key in ("strength", "model_variant", "jod", "fovea_psnr_db", "fovea_ssim"):
            assert key in r
        assert np.isfinite(r["jod"]) and 0 < r["jod"] <= 10.5
        assert 0 < r["token_ratio"] <= 1
        # The full-resolution twin's natural detail, and the references.
        assert r["seam_ratio"] > 0 and r["scene_psnr_db"] > 10
        assert list(r["octave_power_ratio"]) == bands
        assert list(r["octave_power_ratio_bicubic"]) == bands
        assert 0.8 < r["seam_ratio_original"] < 1.2
    for r in records:
        assert r["seam_ratio_foveated"] > 0 and list(r["octave_power_ratio_foveated"]) == bands
    # The acuity layouts at s = 4 are foveated (fewer tokens than the full grid).
    assert min(r["token_ratio"] for r in records if r["strength"] == 4.0) < 0.5
    # The bounds are scored on the post-trained model's layouts.
    for b in bounds:
        match = [
            r
            for r in records
            if r["model_variant"] == "default-foveated"
            and (r["scene"], r["strength"]) == (b["scene"], b["strength"])
        ]
        assert match[0]["token_ratio"] == b["token_ratio"]
    # One full-resolution row per scene and model, plus the original and bicubic references.
    assert sorted(r["model_variant"] for r in rows) == sorted(
        ["original", "bicubic", "default-foveated", "default-naive"] * 2
    )
    summary = result["summary"]
    assert summary["full_resolution"]["bicubic"]["octave_power_ratio_median"]["0.25-0.5"] < 0.1
    assert summary["octave_bands_cpp"] == [[0.125, 0.25], [0.25, 0.5]]
    assert [s["scene_index"] for s in summary["scenes"]] == [0, 1]
    assert set(summary["jod_9_5_crossing_by_variant"]) == {
        "default-foveated",
        "default-naive",
        "oracle",
        "ceiling",
    }
    targets = summary["targets"]
    for name in ("no_seams_full", "no_seams_foveated", "real_detail", "faithful_to_scene"):
        assert targets[name]["pass"] in (True, False)
    assert targets["jod_s1"]["pass"] in (True, False) and targets["jod_s0.5"]["pass"] is None
    json.loads(_json(summary))  # strict JSON (infinite PSNRs become null)
    json.loads(_json(records + bounds + rows))
    sheets = summary["sheets"]
    assert set(sheets) == {"scenes", "spectrum", "jod_curve"}
    for path in sheets.values():
        assert Path(path).is_file() and Path(path).stat().st_size > 1000, path
    with Image.open(sheets["scenes"]) as sheet:
        assert sheet.size[0] > 4 * 300 and sheet.size[1] > 2 * 300  # 4 columns, 2 scenes


def test_quality_bench_refuses_models_that_take_no_scene():
    from generator.evaluation.quality import QualitySettings, run_quality
    from generator.loading import load_generator

    tiny = load_generator("tiny")
    with pytest.raises(FoveaError, match="scene-conditioned"):
        run_quality(
            QualitySettings(resolution=128, scenes=1, seeds=[0]),
            models={"default-foveated": tiny, "default-naive": tiny},
            progress=lambda _: None,
        )


def _tiny_weights(weights: Path) -> Path:
    """A weights folder of a tiny scene model (base + a LoRA), seeded."""
    from safetensors.torch import save_file

    from generator.models.weights_io import save_weights

    model = _tiny_scene_generator(SEED, "tiny").denoiser.model
    save_weights(model, weights / "default-base.safetensors")
    g = torch.Generator().manual_seed(SEED)
    out_dim, in_dim = model.transformer.proj_out.weight.shape
    lora = {
        "transformer.proj_out.lora_A.weight": torch.randn(2, in_dim, generator=g) * 0.05,
        "transformer.proj_out.lora_B.weight": torch.randn(out_dim, 2, generator=g) * 0.05,
    }
    save_file(lora, str(weights / "default-foveated-lora.safetensors"), {"lora_scale": "1.0"})
    return weights


def test_the_command_writes_records_bounds_full_rows_and_summary(tmp_path, capsys):
    """`fovea bench quality` on a weights folder of a tiny scene model (base + a LoRA)."""
    from fovea_cli.main import main

    print(f"seed {SEED}")
    weights = _tiny_weights(tmp_path / "weights")
    out = tmp_path / "q.json"
    args = ["bench", "quality", "--json", str(out), "--resolution", "128", "--scenes", "1"]
    args += ["--seeds", "0", "--strengths", "4", "--steps", "1", "--no-circle"]
    assert main([*args, "--weights", str(weights)]) == 0
    printed = capsys.readouterr().out
    assert "target real_detail:" in printed and "all targets pass:" in printed
    records = json.loads(out.read_text())
    assert {r["model_variant"] for r in records} == {"default-foveated", "default-naive"}
    command = f"fovea {' '.join(args)} --weights {weights}"  # what made them (they said not)
    assert {r["command"] for r in records} == {command}
    assert {r["model_variant"] for r in json.loads((tmp_path / "q_bounds.json").read_text())} == {
        "oracle"
    }
    rows = json.loads((tmp_path / "q_full.json").read_text())
    assert {r["model_variant"] for r in rows} == {
        "original",
        "bicubic",
        "default-foveated",
        "default-naive",
    }
    summary = json.loads((tmp_path / "q_summary.json").read_text())
    assert "targets" in summary and (tmp_path / "q_sheets" / "scenes.png").is_file()
    # Too many scenes: one line, no traceback.
    assert main([*args, "--scenes", "99", "--weights", str(weights)]) == 2  # the last wins
    err = capsys.readouterr().err
    assert err.startswith("error: --scenes 99") and "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_writes_the_records_scored_so_far(tmp_path, capsys):
    """Ctrl-C in `fovea bench quality` (hours at its defaults on a CPU) said 'interrupted' and
    wrote nothing of what was scored. The records, bounds, full-resolution rows and summary
    scored by then are written (summary ``interrupted``), and the line says where. The Ctrl-C
    comes in the run's last module forward (counted in an uninterrupted run)."""
    from fovea_cli.main import main

    print(f"seed {SEED}")
    weights = _tiny_weights(tmp_path / "weights")
    args = ["bench", "quality", "--resolution", "128", "--scenes", "1", "--seeds", "0"]
    args += ["--strengths", "4", "--steps", "1", "--no-circle", "--weights", str(weights)]
    with module_forwards() as calls:
        assert main([*args, "--json", str(tmp_path / "all.json")]) == 0
    complete = json.loads((tmp_path / "all.json").read_text())
    assert json.loads((tmp_path / "all_summary.json").read_text())["interrupted"] is False
    out = tmp_path / "part.json"
    with module_forwards(ctrl_c_at=len(calls)):
        assert main([*args, "--json", str(out)]) == 130
    records = json.loads(out.read_text())
    assert 0 < len(records) < len(complete)
    key = [(r["model_variant"], r["strength"], r["gaze_px"]) for r in complete]
    assert [(r["model_variant"], r["strength"], r["gaze_px"]) for r in records] == key[
        : len(records)
    ]
    assert json.loads((tmp_path / "part_summary.json").read_text())["interrupted"] is True
    assert (tmp_path / "part_bounds.json").is_file() and (tmp_path / "part_full.json").is_file()
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted; the {len(records)} records scored so far and their summary are in {out} "
        "and beside it (summary 'interrupted': true)"
    )


def test_block_means_on_a_grid_the_level_does_not_divide():
    """45 cells a side at level 4: the whole blocks get their means, the last row and column (no
    whole block) keep their values, and the shape stays (it shrank to 44 and broke the oracle's
    resampling of a 720 px layout)."""
    grid = torch.randn(1, 3, 45, 45, generator=torch.Generator().manual_seed(SEED))
    out = block_means(grid, 4)
    assert out.shape == grid.shape
    assert torch.equal(out[..., 44:, :], grid[..., 44:, :])
    assert torch.equal(out[..., :, 44:], grid[..., :, 44:])
    torch.testing.assert_close(
        out[..., 40:44, 0:4], grid[..., 40:44, 0:4].mean((2, 3), True).expand(1, 3, 4, 4)
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the run would start")
def test_a_device_this_machine_lacks_is_one_error_line(tmp_path, capsys):
    """--device cuda on a CPU-only machine was a traceback ('Torch not compiled with CUDA
    enabled', from moving the weights) after the sheets folder was made."""
    from fovea_cli.main import main

    out = tmp_path / "q.json"
    args = ["bench", "quality", "--resolution", "64", "--scenes", "1", "--device", "cuda"]
    assert main([*args, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: device 'cuda' requested but this torch")
    assert list(tmp_path.iterdir()) == []


def test_a_weights_folder_without_the_model_names_that_folder(tmp_path, capsys):
    """--weights naming a folder without the default model said 'train them with `fovea train
    base` or use --model tiny': bench quality has no --model, and the shipped weights were there."""
    from fovea_cli.main import main

    empty = tmp_path / "weights"
    empty.mkdir()
    args = ["bench", "quality", "--resolution", "64", "--scenes", "1", "--weights", str(empty)]
    assert main([*args, "--json", str(tmp_path / "q.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {str(empty)!r} holds no default model (default")
    assert "--model tiny" not in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]  # no empty q_sheets folder


@pytest.mark.parametrize(
    "stage", ["default-detail", "default-periphery", "default-foveated-lora"], ids=str
)
def test_a_weights_folder_with_a_broken_stage_file_is_one_error_line(tmp_path, capsys, stage):
    """A detail, periphery or adapter file cut short in a --weights folder stopped bench quality
    with safetensors' 'SafetensorError: Error while deserializing header' traceback (the base
    file already said it in one line)."""
    import shutil

    from fovea_cli.main import main

    weights = tmp_path / "weights"
    shutil.copytree(Path(__file__).parents[2] / "generator" / "models" / "weights", weights)
    broken = weights / f"{stage}.safetensors"
    broken.write_bytes(broken.read_bytes()[:100])
    args = ["bench", "quality", "--resolution", "64", "--scenes", "1", "--weights", str(weights)]
    assert main([*args, "--json", str(tmp_path / "q.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and f"{broken} is not a readable safetensors" in err[-1]
