"""Training: the loss goes down on a tiny run, stages chain, checkpoints resume, export fits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.data.images import load_bank, random_crops
from generator.errors import FoveaError
from generator.models.default import load_model
from generator.training.config import TrainConfig, parse_layout_mix
from generator.training.export import export_weights
from generator.training.layouts import MODE_PROBS, full_layout, random_layout
from generator.training.lineage import lineage
from generator.training.train import train, training_loss

REPO = Path(__file__).resolve().parents[2]
PACK = str(REPO / "generator" / "data" / "photos-1024.npz")
SMALL = {
    "heads": 2,
    "head_dim": 32,
    "double_blocks": 1,
    "single_blocks": 1,
    "rope_axes": [8, 12, 12],
}


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(
        data=PACK,
        out=str(out),
        crop_px=[64],
        batch_size=8,
        steps=30,
        time_budget_s=600,
        lr=2e-3,
        warmup_steps=5,
        ema_decay=0.9,
        model=SMALL,
        progress=False,
        seed=7,
    )
    base.update(kw)
    return TrainConfig(**base)


def _eval_loss(model_path: Path, seed: int = 99) -> float:
    """Loss on a fixed batch with fixed noise and times (the same for every model)."""
    model = load_model(model_path)
    bank = load_bank(source=Path(PACK), split="train")
    g = torch.Generator().manual_seed(seed)
    x, c = random_crops(bank, count=16, crop_px=64, generator=g)
    layout = full_layout(image_px=64, patch_px=16)
    with torch.no_grad():
        return float(
            training_loss(
                model,
                x,
                c,
                layout,
                generator=torch.Generator().manual_seed(seed),
                cfg=TrainConfig(),
            )
        )


@pytest.mark.slow
def test_a_tiny_base_run_reduces_the_loss_and_writes_its_outputs(tmp_path):
    print("seed 7")
    first = train(_cfg(tmp_path / "a", steps=1))
    log = train(_cfg(tmp_path / "b", steps=40))
    before, after = (
        _eval_loss(tmp_path / "a" / "model.safetensors"),
        _eval_loss(tmp_path / "b" / "model.safetensors"),
    )
    print(f"held-batch loss after 1 step {before:.4f}, after 40 steps {after:.4f}")
    assert after < 0.8 * before
    assert first["steps"] == 1 and log["steps"] == 40
    for name in ("model.safetensors", "loss.png", "log.json", "checkpoint.pt"):
        assert (tmp_path / "b" / name).is_file()


@pytest.mark.slow
def test_resume_continues_the_step_count_and_foveated_stage_chains(tmp_path):
    out = tmp_path / "base"
    train(_cfg(out, steps=3))
    log = train(_cfg(out, steps=5), resume=True)
    assert log["steps"] == 5 and len(json.loads((out / "losses.json").read_text())) == 5
    fov = train(
        _cfg(
            tmp_path / "fov",
            stage="foveated",
            init=str(out / "model.safetensors"),
            crop_px=[128],
            batch_size=4,
            groups=2,
            steps=3,
            lora_rank=4,
            lora_alpha=4.0,
        )
    )
    assert fov["steps"] == 3 and fov["trainable_params"] < 0.5 * sum(
        p.numel() for p in load_model(out / "model.safetensors").parameters()
    )
    record = export_weights(base_dir=out, foveated_dir=tmp_path / "fov", out_dir=tmp_path / "w")
    assert record["shipped_bytes"] < 25 * 1024 * 1024
    merged = load_model(
        tmp_path / "w" / "default-base.safetensors",
        lora=tmp_path / "w" / "default-foveated-lora.safetensors",
    )
    assert merged.config_.heads == 2
    # Base training continued from exported weights: the card counts both runs.
    more = train(
        _cfg(tmp_path / "more", init=str(tmp_path / "w" / "default-base.safetensors"), steps=2)
    )
    assert more["steps"] == 2
    record = export_weights(base_dir=tmp_path / "more", foveated_dir=None, out_dir=tmp_path / "w2")
    assert record["base"]["previous"]["steps"] == 5
    card = (tmp_path / "w2" / "MODEL_CARD.md").read_text()
    assert "- base: 5 steps" in card and "- base (continued from the run above): 2 steps" in card

    # Post-training continued from the exported adapter (--init-lora): the same for its stage.
    def fov2_config(steps: int):
        return _cfg(
            tmp_path / "fov2",
            stage="foveated",
            init=str(out / "model.safetensors"),
            init_lora=str(tmp_path / "w" / "default-foveated-lora.safetensors"),
            crop_px=[128],
            batch_size=4,
            steps=steps,
            lora_rank=4,
            lora_alpha=4.0,
        )

    fov2 = train(fov2_config(1))
    assert fov2["steps"] == 1
    record = export_weights(base_dir=out, foveated_dir=tmp_path / "fov2", out_dir=tmp_path / "w")
    assert record["foveated"]["previous"]["steps"] == 3
    card = (tmp_path / "w" / "MODEL_CARD.md").read_text()
    assert "- foveated: 3 steps" in card
    assert "- foveated (continued from the run above): 1 steps" in card
    # That export shipped a snapshot of fov2 itself, and the shipped record changes again before
    # fov2 resumes: exported again, fov2 still counts the first adapter once and itself once (the
    # record taken when fov2 started, kept in its checkpoint).
    assert fov2["previous"]["steps"] == 3
    sidecar = tmp_path / "w" / "default.json"
    shipped = json.loads(sidecar.read_text())
    shipped["foveated"] = {"config": {"out": "elsewhere"}, "steps": 99}
    sidecar.write_text(json.dumps(shipped))
    fov2 = train(fov2_config(2), resume=True)
    record = export_weights(base_dir=out, foveated_dir=tmp_path / "fov2", out_dir=tmp_path / "w")
    assert [r["steps"] for r in lineage(record["foveated"])] == [3, 2]


def test_time_budget_and_deadline_stop_training(tmp_path):
    import time

    log = train(_cfg(tmp_path / "t", steps=10_000, time_budget_s=1.0))
    assert log["steps"] < 10_000 and (tmp_path / "t" / "model.safetensors").is_file()
    log = train(_cfg(tmp_path / "d", steps=10_000, deadline_unix=time.time() - 1))
    assert log["steps"] == 0 and (tmp_path / "d" / "model.safetensors").is_file()


def test_foveated_stage_without_init_is_a_user_error(tmp_path):
    with pytest.raises(FoveaError, match="--init"):
        train(_cfg(tmp_path, stage="foveated"))
    with pytest.raises(FoveaError, match="multiple of 16"):
        train(_cfg(tmp_path, crop_px=[100]))


def test_random_layouts_mix_modes_and_levels_deterministically():
    seed = 5
    print(f"seed {seed}")

    def draw():
        return [
            random_layout(rng=np.random.default_rng([seed, i]), image_px=512, patch_px=16)
            for i in range(60)
        ]

    a, b = draw(), draw()
    assert [x.levels.tolist() for x in a] == [x.levels.tolist() for x in b]
    modes = {x.spec.mode for x in a}
    assert modes == set(MODE_PROBS)
    assert any(x.levels.max() >= 4 for x in a if x.spec.mode == "acuity")
    assert all(x.num_tokens <= 1024 for x in a)


def test_layout_mix_sets_which_modes_are_drawn():
    mix = parse_layout_mix(["acuity=3", "circle=1"])
    assert mix == {"acuity": 3.0, "circle": 1.0}
    layouts = [
        random_layout(rng=np.random.default_rng([7, i]), image_px=256, patch_px=16, mode_probs=mix)
        for i in range(40)
    ]
    modes = [x.spec.mode for x in layouts]
    assert set(modes) == {"acuity", "circle"}  # no full grid: its weight is 0
    assert modes.count("acuity") > modes.count("circle")
    for bad in (["fovea=1"], ["acuity"], ["acuity=-1"], ["acuity=x"], ["full=0"]):
        with pytest.raises(FoveaError, match="--layout-mix"):
            parse_layout_mix(bad)


def _pair_loss(model, pairs, layout) -> float:
    """Coupled (teacher-pair) loss at fixed times: what consistency post-training minimises."""
    from generator.training.teacher import TeacherPairs

    batch = TeacherPairs([pairs]).batch(rng=np.random.default_rng(0), count=4, device="cpu")
    x, noise, classes, _ = batch
    cfg = TrainConfig(t_mean=0.0, t_std=1.0)
    with torch.no_grad():
        return float(
            training_loss(
                model,
                x,
                classes,
                layout,
                generator=torch.Generator().manual_seed(3),
                cfg=cfg,
                noise=noise,
            )
        )


@pytest.mark.slow
def test_consistency_stage_fits_the_teacher_pairs(tmp_path):
    from generator.layout import LayoutSpec, build_layout
    from generator.training.teacher import generate_pairs

    print("seed 7")
    train(_cfg(tmp_path / "base", steps=20))
    export_weights(base_dir=tmp_path / "base", foveated_dir=None, out_dir=tmp_path / "w")
    pairs = tmp_path / "pairs.npz"
    info = generate_pairs(
        out=pairs,
        crop_px=128,
        count=4,
        time_budget_s=600,
        steps=2,
        weights_dir=tmp_path / "w",
        progress=False,
    )
    assert info["count"] == 4
    with np.load(pairs) as data:
        assert data["images"].shape == (4, 128, 128, 3) and data["images"].dtype == np.uint8
    log = train(
        _cfg(
            tmp_path / "cons",
            stage="consistency",
            init=str(tmp_path / "w" / "default-base.safetensors"),
            pairs=[str(pairs)],
            batch_size=4,
            groups=2,
            steps=40,
            lora_rank=8,
            lora_alpha=8.0,
        )
    )
    assert log["steps"] == 40
    from generator.geometry import StimulusGeometry, default_display

    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    layout = build_layout(
        geometry=geometry,
        gaze_px=(10.0, 10.0),
        spec=LayoutSpec(mode="circle", circle_radius=0.2, periphery_factor=2),
        patch_px=16,
    )
    assert layout.token_ratio < 1.0
    base = load_model(tmp_path / "w" / "default-base.safetensors")
    tuned = load_model(
        tmp_path / "w" / "default-base.safetensors", lora=tmp_path / "cons" / "lora.safetensors"
    )
    before, after = _pair_loss(base, pairs, layout), _pair_loss(tuned, pairs, layout)
    print(f"teacher-pair loss on a foveated layout: base {before:.4f}, post-trained {after:.4f}")
    assert after < 0.9 * before
    # A run started from that adapter (--init-lora) begins exactly where it ended; a second
    # pairs file is drawn by the given weights.
    import time

    from safetensors.torch import load_file

    more = train(
        _cfg(
            tmp_path / "cons2",
            stage="consistency",
            init=str(tmp_path / "w" / "default-base.safetensors"),
            init_lora=str(tmp_path / "cons" / "lora.safetensors"),
            pairs=[str(pairs), str(pairs)],
            pair_weights=[1.0, 3.0],
            lora_rank=8,
            lora_alpha=8.0,
            deadline_unix=time.time() - 1,
        )
    )
    assert more["steps"] == 0
    first = load_file(str(tmp_path / "cons" / "lora.safetensors"))
    second = load_file(str(tmp_path / "cons2" / "lora.safetensors"))
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(second[key], first[key])
    with pytest.raises(FoveaError, match="rank"):
        train(
            _cfg(
                tmp_path / "cons3",
                stage="consistency",
                init=str(tmp_path / "w" / "default-base.safetensors"),
                init_lora=str(tmp_path / "cons" / "lora.safetensors"),
                pairs=[str(pairs)],
                lora_rank=4,
            )
        )


def test_consistency_stage_needs_pairs(tmp_path):
    with pytest.raises(FoveaError, match="--pairs"):
        train(_cfg(tmp_path, stage="consistency", init=PACK))
