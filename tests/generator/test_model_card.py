"""The model card: what it says about a scene model, its runs and data, the measured figures of
any summary it is given, the conditioning comparison, and refreshing it from the command line."""

from __future__ import annotations

import json

from generator.training.card import _loss, _precision, model_card
from generator.training.card_figures import crossing_text

CONFIG = {
    "patch_px": 16,
    "heads": 4,
    "head_dim": 64,
    "double_blocks": 1,
    "single_blocks": 6,
    "rope_axes": [8, 28, 28],
    "scene_factor": 4,
    "scene_conditioning": "channels",
    "refiner_channels": 16,
    "steps": 6,
    "shift": 1.0,
}
BASE_RUN = {
    "stage": "base",
    "config": {
        "stage": "base",
        "data": "generator/data/photos-1024.npz",
        "crop_px": [128, 256],
        "batch_size": 8,
        "lr": 0.0003,
        "warmup_steps": 200,
        "ema_decay": 0.998,
        "seed": 0,
        "max_zoom_out": 4.0,
        "model": {"single_blocks": 6},
        "init": None,
    },
    "steps": 2976,
    "train_seconds_total": 1215.0,
    "device_name": "cpu",
    "num_processes": 1,
    "mixed_precision": "no",
    "loss_first50": 0.5,
    "loss_last50": 0.01234567,
    "loss_parts_first50": [0.45, 0.05],
    "loss_parts_last50": [0.0111, 0.00124],
}
FOVEATED_RUN = {
    "stage": "foveated",
    "config": {
        "stage": "foveated",
        "crop_px": [256],
        "batch_size": 4,
        "groups": 2,
        "lr": 0.0001,
        "lora_rank": 32,
        "layout_mix": {"acuity": 0.8, "full": 0.2},
        "seed": 0,
        "init": "/tmp/runs/base/model.safetensors",
    },
    "steps": 700,
    "train_seconds_total": 600.0,
    "device_name": "cpu",
    "num_processes": 1,
    "mixed_precision": "no",
    "loss_first50": 0.02,
    "loss_last50": 0.015,
}
DATA = {
    "path": "generator/data/photos-1024.npz",
    "images": 50,
    "splits": {"train": 41, "heldout": 9},
    "sources": {"mate-backgrounds": 12, "scikit-image": 9},
    "licences": ["CC0-1.0", "GPL-2+"],
}
COMPARISON = [
    {"variant": "channels", "steps": 1200, "wall_s": 600, "heldout_loss": 0.0123, "step_s": 0.5},
    {"variant": "reference", "steps": 500, "wall_s": 600, "heldout_loss": 0.015, "step_s": 1.2},
]


def _record(**extra) -> dict:
    record = {
        "base": BASE_RUN,
        "foveated": FOVEATED_RUN,
        "data": DATA,
        "config": CONFIG,
        "parameters": 9_200_000,
        "refiner_parameters": 1_900,
        "notes": [],
    }
    record.update(extra)
    return record


def test_the_card_describes_the_scene_model_its_data_and_runs():
    card = model_card(_record())
    assert "# Default model: scene-conditioned" in card
    assert "area-downsampled 4x (256 px for a 1024 px image)" in card
    assert "1 double + 6 single blocks, 4 heads x 64, 9.20 M parameters (1.9 k of them" in card
    assert "Scene conditioning `channels`" in card and "Refiner: a residual 3x3" in card
    assert "untrained model returns the bicubic scene" in card and "6 steps (shift 1)" in card
    assert "50 in `generator/data/photos-1024.npz` (41 for training, 9 held out" in card
    assert "mate-backgrounds 12, scikit-image 9" in card and "crops of the training" in card
    assert "at 128, 256 px, each covering 1-4x" in card and "4 x 4 pixel blocks" in card
    assert (
        "- base: 2976 steps x batch 8 at crops [128, 256] px, lr 0.0003, 1215 s (20 min) on "
        "cpu x1 (fp32); loss 0.5 -> 0.01235 (velocity 0.45 -> 0.0111, refiner 0.05 -> 0.00124)"
    ) in card
    assert "- foveated: 700 steps" in card and "(acuity 0.8, full 0.2), 2 per step" in card
    assert "In all 3676 steps and 1815 s (30 min) of training" in card
    assert (
        "fovea train base --out runs/base --data generator/data/photos-1024.npz "
        "--model-json '{\"single_blocks\":6}' --crop-px 128 256 --batch-size 8 --lr 0.0003"
    ) in card
    assert "fovea train foveated --out runs/foveated --init runs/base/model.safetensors" in card
    assert "--layout-mix acuity=0.8 full=0.2 --steps 700" in card
    assert "Not yet compared here" in card and "Not yet measured for these weights" in card
    for retired in ("teacher", "consistency", "class"):
        assert retired not in card.lower()


def test_reference_conditioning_and_no_refiner_are_said():
    config = dict(CONFIG, scene_conditioning="reference", refiner_channels=0, scene_factor=8)
    card = model_card(_record(config=config, refiner_parameters=None))
    assert "Scene conditioning `reference`" in card and "level 8 (one per 128 px block)" in card
    assert "No refiner" in card and "(128 px for a 1024 px image)" in card


def test_the_conditioning_section_says_which_was_chosen_and_why():
    card = model_card(_record(conditioning_comparison=COMPARISON))
    assert "| variant | steps | wall_s | step_s | heldout_loss |" in card
    assert "| reference | 500 | 600 | 1.2 | 0.015 |" in card
    assert (
        "Chosen: `channels` (against `reference`: 18 % lower held-out loss (0.0123 vs 0.015) "
        "and 58 % lower time per step (0.5 vs 1.2))."
    ) in card
    other = dict(CONFIG, scene_conditioning="reference")
    card = model_card(_record(config=other, conditioning_comparison=COMPARISON))
    assert "Chosen: `reference` (against `channels`: 22 % higher held-out loss" in card
    card = model_card(_record(conditioning_comparison=COMPARISON[1:]))
    assert "This model uses `channels`, which is not among the variants compared." in card


def test_any_quality_summary_is_printed_as_tables():
    summary = {
        "resolution": 1024,
        "seeds": [0, 1],
        "medians": {
            "default-foveated": {
                "0.5": {"jod_median": 9.61, "seam_ratio_median": 1.04, "power": {"o1": 0.9}},
                "1.0": {"jod_median": 9.2, "new_metric": 3},
            }
        },
        "jod_9_5_crossing_by_variant": {"default-foveated": {"strength": 0.8, "token_ratio": 0.2}},
        "targets": {"jod_s0.5": {"target": "JOD >= 9.5", "measured": 9.61, "pass": True}},
        "scenes": [{"index": 0, "image_id": "a|b"}],
        "bands": [[0.1, 0.2]],
    }
    card = model_card(_record(quality={"source": "q_summary.json", "summary": summary}))
    section = card.split("## Measured figures")[1]
    assert "summary (`q_summary.json`)" in section and "- seeds: 0, 1" in section
    assert "| group | jod_median | seam_ratio_median | power | new_metric |" in section
    assert "| default-foveated / 0.5 | 9.61 | 1.04 | o1: 0.9 |  |" in section
    assert "| default-foveated / 1.0 | 9.2 |  |  | 3 |" in section
    assert "- default-foveated: s = 0.80, token ratio 0.200" in section
    assert "| jod_s0.5 | JOD >= 9.5 | 9.61 | yes |" in section
    assert "| 0 | a\\|b |" in section and "bands: `[[0.1, 0.2]]`" in section
    rows = [{"variant": "x", "jod": 9.0}, {"variant": "y", "jod": 8.0, "extra": None}]
    card = model_card(_record(), quality=rows)
    assert "| variant | jod | extra |" in card and "| y | 8 |  |" in card


def test_the_crossing_is_said_in_words():
    assert crossing_text({"strength": 0.4192, "token_ratio": 0.1987}) == (
        "s = 0.42, token ratio 0.199"
    )
    assert crossing_text({"strength": "<0.25", "token_ratio": None}).startswith("below s = 0.25")
    assert crossing_text({"strength": ">2.0", "token_ratio": "<0.034"}).startswith("above s = 2.0")
    assert crossing_text(None) == "not measured"


def test_losses_and_precision():
    assert _loss(0.047091076970100405) == "0.04709" and _loss(None) == "n/a"
    assert _precision({"mixed_precision": "no", "tf32": True}) == "fp32, TF32 matmuls"
    assert _precision({"mixed_precision": "no"}) == "fp32"
    assert _precision({"mixed_precision": "bf16"}) == "bf16 mixed precision"
    assert _precision({}) == "precision n/a"


def test_refresh_card_stores_what_it_is_given_and_keeps_it(tmp_path, capsys):
    from fovea_cli.main import main

    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "default.json").write_text(json.dumps(_record(data={})))
    summary, comparison = tmp_path / "q_summary.json", tmp_path / "cond.json"
    summary.write_text(json.dumps({"resolution": 512, "note": "tiny"}))
    comparison.write_text(json.dumps(COMPARISON))
    argv = ["train", "export", "--refresh-card", str(weights), "--note", "first note"]
    argv += ["--quality-summary", str(summary), "--conditioning-comparison", str(comparison)]
    assert main(argv) == 0
    assert main(["train", "export", "--refresh-card", str(weights), "--note", "first note"]) == 0
    record = json.loads((weights / "default.json").read_text())
    assert record["conditioning_comparison"] == COMPARISON and record["notes"] == ["first note"]
    assert record["quality"]["summary"] == {"resolution": 512, "note": "tiny"}
    assert record["data"]["splits"]["heldout"] > 0  # looked up again from the pack
    card = (weights / "MODEL_CARD.md").read_text()
    assert "- resolution: 512" in card and "Chosen: `channels`" in card and "- first note" in card
    comparison.write_text(json.dumps({"variant": "channels"}))
    capsys.readouterr()
    argv = ["train", "export", "--refresh-card", str(weights), "--conditioning-comparison"]
    assert main([*argv, str(comparison)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cond.json" in err and "\n" not in err
    assert main([*argv, str(tmp_path / "missing.json")]) == 2
    # Without a run folder nothing is exported (the shipped adapter is not dropped by mistake).
    assert main(["train", "export", "--out", str(weights), "--note", "x"]) == 2
    assert "--base, --foveated, --detail and/or --periphery" in capsys.readouterr().err


def test_the_reproduce_export_carries_the_shipped_sampler_settings():
    """A base trained from scratch gets ModelConfig's default sampler; the export line of the
    reproduce block sets the one the record's config says was shipped."""
    config = dict(CONFIG, sampler="renoise", steps=6, shift=0.5)
    card = model_card(_record(config=config))
    commands = card.split("Reproduce")[1].split("```")[1].strip().splitlines()
    assert commands[-1] == (
        "fovea train export --base runs/base --foveated runs/foveated "
        "--sampler renoise --steps 6 --shift 0.5"
    )


def test_the_shipped_cards_reproduce_block_sets_every_shipped_sampler():
    from pathlib import Path

    weights = Path(__file__).resolve().parents[2] / "generator" / "models" / "weights"
    record = json.loads((weights / "default.json").read_text())
    card = (weights / "MODEL_CARD.md").read_text()
    export = [line for line in card.splitlines() if line.startswith("fovea train export --base ")][
        -1
    ]
    base, detail = record["config"], record["detail_config"]
    for flag in (
        f"--sampler {base['sampler']}",
        f"--steps {base['steps']}",
        f"--shift {base['shift']:g}",
        f"--detail-steps {detail['steps']}",
        f"--detail-shift {detail['shift']:g}",
    ):
        assert f" {flag} " in f"{export} ", flag


def test_the_reproduce_commands_repeat_the_time_distribution_and_precision():
    """A run with --t-mean, --t-std or --mixed-precision bf16 trained on another noise-level
    distribution or number format than the card's reproduce command (those flags were left out:
    it repeated a run with the defaults)."""
    base = dict(BASE_RUN, config=dict(BASE_RUN["config"], t_mean=-0.8, t_std=1.2))
    base["config"]["mixed_precision"] = "bf16"
    foveated = dict(FOVEATED_RUN, config=dict(FOVEATED_RUN["config"], t_mean=-0.6, t_std=1.0))
    foveated["config"]["mixed_precision"] = "auto"
    commands = model_card(_record(base=base, foveated=foveated)).split("Reproduce")[1]
    base_line, fov_line = commands.split("```")[1].strip().splitlines()[:2]
    assert " --t-mean -0.8 --t-std 1.2 " in base_line and "--mixed-precision bf16" in base_line
    assert " --t-mean -0.6 --t-std 1 " in fov_line and "--mixed-precision" not in fov_line


def test_sampler_settings_alone_rewrite_the_shipped_config(tmp_path, capsys):
    """``--steps`` (or ``--shift``, ``--sampler``) alone rewrites the shipped base's default
    sampler, its weights unchanged, in a copy of the shipped folder; a detail setting for a
    folder that ships no detail stage is refused with one line (it was silently ignored)."""
    import shutil

    from fovea_cli.main import main
    from generator.models.weights_io import BASE_FILE, DETAIL_FILE, WEIGHTS_DIR

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    before = json.loads((weights / "default.json").read_text())
    assert main(["train", "export", "--out", str(weights), "--steps", "3"]) == 0
    from safetensors import safe_open

    with safe_open(str(weights / BASE_FILE), "pt") as f:
        assert json.loads(f.metadata()["config"])["steps"] == 3
    after = json.loads((weights / "default.json").read_text())
    assert after["config"]["steps"] == 3 and after["parameters"] == before["parameters"]
    assert after["base"] == before["base"]  # the same trained weights, their record kept
    (weights / DETAIL_FILE).unlink()
    capsys.readouterr()
    assert main(["train", "export", "--out", str(weights), "--detail-steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "ships no detail stage" in err and "\n" not in err.strip()


def test_the_readmes_detail_and_periphery_commands_train_as_the_shipped_runs_did():
    """README's detail and periphery commands gave the shipped step counts (--steps 3037, 3926,
    4000) but left out the runs' --warmup-steps and --ema-decay, so, run as written, they
    trained with the defaults (200, 0.999) and did not repeat the shipped weights. Each now
    parses to the settings of the shipped card's reproduce command of the same --out (its time
    budget aside)."""
    import shlex
    from dataclasses import asdict
    from pathlib import Path

    from fovea_cli.main import build_parser
    from generator.models.detail import DetailConfig
    from generator.models.periphery import PeripheryConfig
    from generator.training.config import config_from_args

    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text().split("## Training the default model")[1]
    block = readme.split("```bash")[1].split("```")[0]
    card = (repo / "generator" / "models" / "weights" / "MODEL_CARD.md").read_text()
    shipped = card.split("Reproduce")[1].split("```")[1]
    parser = build_parser()

    def settings(line: str) -> dict:
        args = parser.parse_args(shlex.split(line.split("#")[0])[1:])
        cfg = asdict(config_from_args(args.stage, args))
        architecture = DetailConfig if args.stage == "detail" else PeripheryConfig
        cfg["model"] = architecture.from_dict(cfg["model"]).as_dict()
        for key in ("time_budget_s", "data", "progress", "init"):
            cfg.pop(key)
        return cfg

    compared = 0
    for line in block.splitlines():
        if " train detail " in line or " train periphery " in line:
            out = line.split("--out ")[1].split()[0]
            mine = next(c for c in shipped.splitlines() if f"--out {out} " in c)
            assert settings(line) == settings(mine), out
            compared += 1
    assert compared == 3


def test_export_refuses_sampler_settings_that_cannot_sample(tmp_path):
    """fovea train export --steps 0 (or --shift -1, --detail-steps -2) wrote them into the
    shipped configs, and the exported generator then had 0 sampler steps. They are now refused
    by the command line (steps at least 1, shifts positive), the weights unchanged."""
    import shutil
    from pathlib import Path

    import pytest

    from generator.training.export import main as export_main

    weights = tmp_path / "w"
    shutil.copytree(Path(__file__).resolve().parents[2] / "generator/models/weights", weights)
    before = {p.name: p.read_bytes() for p in weights.iterdir()}
    for flag, value in (("--steps", "0"), ("--shift", "-1"), ("--detail-steps", "-2")):
        with pytest.raises(SystemExit) as stop:
            export_main([flag, value, "--out", str(weights)])
        assert stop.value.code == 2
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == before
