"""Training of tiny scene models: the loss goes down, base then foveated LoRA chain, checkpoints
resume, the export fits and its card counts every run; flags that cannot work are one-line
errors."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.data.images import load_bank, random_crops
from generator.errors import FoveaError
from generator.models.default import DefaultModel, ModelConfig
from generator.models.weights_io import load_model
from generator.training.config import TrainConfig, parse_layout_mix
from generator.training.export import export_weights
from generator.training.layouts import MODE_PROBS, full_layout, random_layout
from generator.training.lineage import lineage
from generator.training.objective import training_loss
from generator.training.train import main as train_main
from generator.training.train import train

REPO = Path(__file__).resolve().parents[2]
PACK = str(REPO / "generator" / "data" / "photos-1024.npz")
TINY = {
    "heads": 1,
    "head_dim": 32,
    "double_blocks": 1,
    "single_blocks": 1,
    "rope_axes": [8, 12, 12],
    "refiner_channels": 4,
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
        model={} if kw.get("init") else TINY,
        progress=False,
        seed=7,
    )
    base.update(kw)
    return TrainConfig(**base)


def _fov_cfg(out: Path, init: Path, **kw) -> TrainConfig:
    fov = dict(
        stage="foveated",
        init=str(init),
        crop_px=[64],
        batch_size=4,
        groups=2,
        steps=3,
        lora_rank=4,
        lora_alpha=4.0,
    )
    fov.update(kw)
    return _cfg(out, **fov)


def _eval_loss(model, seed: int = 99) -> list[float]:
    """(total, velocity, refiner) loss on a fixed batch, noise and times (the same for every
    model)."""
    bank = load_bank(source=Path(PACK), split="train")
    x, _ = random_crops(bank, count=16, crop_px=64, generator=torch.Generator().manual_seed(seed))
    layout = full_layout(image_px=64, patch_px=16)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return [float(v) for v in training_loss(model, x, layout, generator=g, cfg=TrainConfig())]


def test_a_tiny_base_run_reduces_the_loss_and_writes_its_outputs(tmp_path):
    print("seed 7")
    torch.manual_seed(0)
    before = _eval_loss(DefaultModel(ModelConfig.from_dict(TINY)))
    log = train(_cfg(tmp_path / "b", steps=500, lr=1e-3))
    after = _eval_loss(load_model(tmp_path / "b" / "model.safetensors"))
    print(f"held-batch loss (total, velocity, refiner) untrained {before}, after 500 steps {after}")
    assert after[0] < 0.98 * before[0]
    assert log["steps"] == 500 and log["config"]["model"] == TINY
    for name in ("model.safetensors", "loss.png", "log.json", "losses.json", "checkpoint.pt"):
        assert (tmp_path / "b" / name).is_file()
    losses = json.loads((tmp_path / "b" / "losses.json").read_text())
    assert len(losses["total"]) == len(losses["parts"]) == 500
    velocity, refiner = losses["parts"][0]
    assert losses["total"][0] == pytest.approx(velocity + refiner, rel=1e-5) and refiner > 0


def test_base_then_foveated_resume_and_export_count_every_run(tmp_path):
    out = tmp_path / "base"
    # The command line, with the architecture as --model-json.
    argv = ["base", "--data", PACK, "--out", str(out), "--crop-px", "32", "64", "--steps", "3"]
    argv += ["--batch-size", "4", "--seed", "7", "--no-progress", "--model-json", json.dumps(TINY)]
    assert train_main(argv) == 0
    assert load_model(out / "model.safetensors").config_ == ModelConfig.from_dict(TINY)
    same = dict(crop_px=[32, 64], batch_size=4, lr=3e-4, warmup_steps=200, ema_decay=0.999)
    log = train(_cfg(out, steps=5, **same), resume=True)  # the command's own settings
    losses = json.loads((out / "losses.json").read_text())
    assert log["steps"] == 5 and len(losses["total"]) == len(losses["parts"]) == 5
    fov = train(_fov_cfg(tmp_path / "fov", out / "model.safetensors"))
    base_params = sum(p.numel() for p in load_model(out / "model.safetensors").parameters())
    assert fov["steps"] == 3 and fov["trainable_params"] < 0.5 * base_params
    record = export_weights(base_dir=out, foveated_dir=tmp_path / "fov", out_dir=tmp_path / "w")
    assert record["shipped_bytes"] < 25 * 1024 * 1024
    assert record["base"]["loss_parts_last50"][1] > 0 and record["refiner_parameters"] > 0
    assert record["data"]["splits"]["train"] == len(load_bank(source=Path(PACK)))
    for name in ("default-base-loss.png", "default-foveated-loss.png", "MODEL_CARD.md"):
        assert (tmp_path / "w" / name).is_file()
    merged = load_model(
        tmp_path / "w" / "default-base.safetensors",
        lora=tmp_path / "w" / "default-foveated-lora.safetensors",
    )
    assert merged.config_.heads == 1 and merged.config_.refiner_channels == 4
    card = (tmp_path / "w" / "MODEL_CARD.md").read_text()
    assert "- base: 5 steps x batch 4 at crops [32, 64] px" in card
    assert "(velocity " in card and "- foveated: 3 steps" in card
    assert f"--model-json '{json.dumps(TINY, separators=(',', ':'))}'" in card
    # Base training continued from exported weights: the card counts both runs.
    more = train(_cfg(tmp_path / "more", init=str(tmp_path / "w" / "default-base.safetensors")))
    assert more["steps"] == 30
    record = export_weights(
        base_dir=tmp_path / "more",
        foveated_dir=None,
        out_dir=tmp_path / "w2",
        sampler={"steps": 9, "shift": 0.5},
    )
    assert record["base"]["previous"]["steps"] == 5
    shipped = load_model(tmp_path / "w2" / "default-base.safetensors").config_
    assert (shipped.steps, shipped.shift) == (9, 0.5)  # the sampler choice travels with the weights
    card = (tmp_path / "w2" / "MODEL_CARD.md").read_text()
    assert "- base: 5 steps" in card and "- base (continued from the run above): 30 steps" in card
    assert "- foveated: not run" in card and "In all 35 steps" in card
    # Its reproduce block exports the first run, continues from it into a folder of its own, and
    # exports that one.
    commands = card.split("Reproduce")[1].split("```")[1].strip().splitlines()
    assert commands[0].startswith("fovea train base --out runs/base ")
    assert commands[1:3] == [
        "# continued from the weights the run above exported:",
        "fovea train export --base runs/base",
    ]
    assert commands[3].startswith("fovea train base --out runs/base-2 --data ")
    assert "default-base.safetensors" in commands[3] and "--steps 30 " in commands[3]
    assert commands[-1].startswith("fovea train export --base runs/base-2 --sampler")
    assert "--foveated" not in commands[-1]  # this set has no adapter

    # Post-training continued from the exported adapter (--init-lora): the same for its stage.
    def fov2_config(steps: int):
        return _fov_cfg(
            tmp_path / "fov2",
            out / "model.safetensors",
            init_lora=str(tmp_path / "w" / "default-foveated-lora.safetensors"),
            steps=steps,
        )

    fov2 = train(fov2_config(1))
    assert fov2["steps"] == 1
    record = export_weights(base_dir=out, foveated_dir=tmp_path / "fov2", out_dir=tmp_path / "w")
    assert record["foveated"]["previous"]["steps"] == 3
    card = (tmp_path / "w" / "MODEL_CARD.md").read_text()
    assert "- foveated: 3 steps" in card
    assert "- foveated (continued from the run above): 1 steps" in card
    assert (
        "fovea train export --base runs/base --foveated runs/foveated\n"
        "fovea train foveated --out runs/foveated-2 --data"
    ) in card
    # That export shipped a snapshot of fov2 itself, and the shipped record changes again before
    # fov2 resumes: exported again, fov2 still counts the first adapter once and itself once (the
    # record taken when fov2 started, kept in its checkpoint).
    assert fov2["previous"]["steps"] == 3
    sidecar = tmp_path / "w" / "default.json"
    shipped = json.loads(sidecar.read_text())
    shipped["foveated"] = {"config": {"out": "elsewhere"}, "steps": 99}
    sidecar.write_text(json.dumps(shipped))
    train(fov2_config(2), resume=True)
    record = export_weights(base_dir=out, foveated_dir=tmp_path / "fov2", out_dir=tmp_path / "w")
    assert [r["steps"] for r in lineage(record["foveated"])] == [3, 2]
    # An export that fails part-way (here: a post-training folder without its adapter, found
    # after the new base is written) leaves the shipped set as it was, not a new base beside the
    # old adapter, and no staging folder behind.
    shipped_files = {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()}
    with pytest.raises(FoveaError, match="lora.safetensors not found"):
        export_weights(base_dir=tmp_path / "more", foveated_dir=tmp_path, out_dir=tmp_path / "w")
    assert {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()} == shipped_files
    assert not (tmp_path / ".w.export").exists()


def test_an_adapter_resumed_from_its_file_starts_where_it_ended(tmp_path):
    from safetensors.torch import load_file

    train(_cfg(tmp_path / "base", steps=2, crop_px=[32]))
    init = tmp_path / "base" / "model.safetensors"
    train(_fov_cfg(tmp_path / "fov", init, steps=4, lr=1e-2))
    first = tmp_path / "fov" / "lora.safetensors"
    more = train(
        _fov_cfg(tmp_path / "fov2", init, init_lora=str(first), deadline_unix=time.time() - 1)
    )
    assert more["steps"] == 0
    a, b = load_file(str(first)), load_file(str(tmp_path / "fov2" / "lora.safetensors"))
    assert a.keys() == b.keys() and any(v.abs().sum() > 0 for k, v in a.items() if "lora_B" in k)
    for key in a:
        torch.testing.assert_close(b[key], a[key])
    with pytest.raises(FoveaError, match="rank"):
        train(_fov_cfg(tmp_path / "fov3", init, init_lora=str(first), lora_rank=8))


def test_time_budget_and_deadline_stop_training(tmp_path):
    log = train(_cfg(tmp_path / "t", steps=10_000, time_budget_s=1.0, crop_px=[32]))
    assert log["steps"] < 10_000 and (tmp_path / "t" / "model.safetensors").is_file()
    log = train(_cfg(tmp_path / "d", steps=10_000, deadline_unix=time.time() - 1))
    assert log["steps"] == 0 and (tmp_path / "d" / "model.safetensors").is_file()


def test_flags_that_cannot_work_are_one_line_errors(tmp_path):
    with pytest.raises(FoveaError, match="--init"):
        train(_cfg(tmp_path, stage="foveated"))
    with pytest.raises(FoveaError, match="multiple of 16"):
        train(_cfg(tmp_path, crop_px=[100]))
    with pytest.raises(FoveaError, match="one of base, foveated, detail"):
        train(_cfg(tmp_path, stage="consistency", init=PACK))
    with pytest.raises(FoveaError, match="unknown ModelConfig field.*classes"):
        train(_cfg(tmp_path, model={**TINY, "classes": ["landscape"]}))
    with pytest.raises(FoveaError, match="rope_axes"):
        train(_cfg(tmp_path, model={**TINY, "head_dim": 64}))
    with pytest.raises(FoveaError, match="scene_conditioning"):
        train(_cfg(tmp_path, model={**TINY, "scene_conditioning": "prompt"}))
    with pytest.raises(FoveaError, match="scene factor 32"):
        train(_cfg(tmp_path, model={**TINY, "scene_factor": 32}, crop_px=[48]))
    with pytest.raises(FoveaError, match="--model-json sets a new model"):
        train(_cfg(tmp_path, init=PACK, model=TINY))
    argv = ["base", "--out", str(tmp_path), "--model-json", "{heads: 1}"]
    assert train_main(argv) == 2  # not JSON: the error line, no traceback
    with pytest.raises(SystemExit):
        train_main(["consistency", "--out", str(tmp_path)])


def test_the_command_line_offers_the_stages_their_pairs_and_export_only():
    import argparse

    from generator.model_cli import register

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    bench = sub.add_parser("bench").add_subparsers(dest="bench")
    register(sub, bench)
    train_parser = sub.choices["train"]
    stages = next(a for a in train_parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(stages.choices) == {"base", "foveated", "detail", "periphery", "pairs", "export"}
    args = parser.parse_args(["train", "foveated", "--out", "o", "--init", "b"])
    assert args.stage == "foveated" and not hasattr(args, "pairs")
    args = parser.parse_args(["train", "pairs", "--out", "p", "--count", "3"])
    assert (args.count, args.per_twin, args.resolution) == (3, 4, 1024)


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


def test_a_run_stopped_while_saving_keeps_the_previous_checkpoint_and_weights(
    tmp_path, monkeypatch, capsys
):
    """Ctrl-C (or a kill, a full disk) in the middle of writing the checkpoint: before, the
    checkpoint was written in place and a run stopped there lost it (a torn checkpoint.pt that
    --resume cannot read); now the previous one stays whole, no partial file is left, and
    --resume continues from it."""
    out = tmp_path / "base"
    train(_cfg(out, crop_px=[32], batch_size=2, steps=2), resume=True)  # nothing to resume yet
    assert f"no checkpoint in {out}; starting a new base run" in capsys.readouterr().out
    before = {name: (out / name).read_bytes() for name in ("checkpoint.pt", "model.safetensors")}
    real_save = torch.save

    def interrupted_save(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(out, crop_px=[32], batch_size=2, steps=4), resume=True)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir() if ".tmp-" in p.name) == []

    monkeypatch.setattr(torch, "save", real_save)
    log = train(_cfg(out, crop_px=[32], batch_size=2, steps=4), resume=True)
    assert log["steps"] == 4 and torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 4


def test_ctrl_c_finishes_the_step_saves_a_checkpoint_and_resume_continues(
    tmp_path, monkeypatch, capsys
):
    """A real SIGINT during step 3 (of 50, checkpoints every 300 s): the step finishes, the
    checkpoint holds 3 steps instead of none, the run stops with KeyboardInterrupt (the command
    line's exit 130) and --resume continues from step 3."""
    import os
    import signal

    import generator.training.train as train_module

    out = tmp_path / "base"
    real_step = train_module._train_step

    def step_interrupted_at_3(accelerator, run, bank, cfg, step):
        result = real_step(accelerator, run, bank, cfg, step)
        if step in (2, 6):
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the terminal, mid-run
        return result

    monkeypatch.setattr(train_module, "_train_step", step_interrupted_at_3)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(out, crop_px=[32], batch_size=2, steps=50))
    assert signal.getsignal(signal.SIGINT) is handler  # the usual Ctrl-C again afterwards
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    # The log and losses describe the saved weights (before, a stopped run wrote neither, and an
    # export of the folder showed an earlier run's numbers or none).
    assert json.loads((out / "log.json").read_text())["steps"] == 3
    assert len(json.loads((out / "losses.json").read_text())["total"]) == 3

    monkeypatch.setattr(train_module, "_train_step", real_step)
    log = train(_cfg(out, crop_px=[32], batch_size=2, steps=5), resume=True)
    assert log["steps"] == 5

    # The `python -m generator.training.train` form (accelerate launch): one line, exit 130.
    monkeypatch.setattr(train_module, "_train_step", step_interrupted_at_3)
    argv = ["base", "--out", str(out), "--data", PACK, "--crop-px", "32", "--batch-size", "2"]
    argv += ["--lr", "2e-3", "--warmup-steps", "5", "--ema-decay", "0.9", "--seed", "7"]
    argv += ["--model-json", json.dumps(TINY), "--no-progress", "--resume", "--steps", "50"]
    assert train_main(argv) == 130
    assert "--resume continues" in capsys.readouterr().err
    assert json.loads((out / "log.json").read_text())["steps"] == 7


def test_a_second_training_into_the_same_folder_is_refused_while_one_runs(tmp_path):
    """Two trainings into one --out would overwrite each other's checkpoints: while the folder's
    lock is held (another fovea train there), a second is refused in one line; afterwards it
    runs."""
    from generator.process_lock import ProcessLock
    from generator.training.train import LOCK_FILE

    out = tmp_path / "base"
    out.mkdir()
    with ProcessLock(out / LOCK_FILE, what="the other training"):
        with pytest.raises(
            FoveaError,
            match=f"training folder {out} is in use by another .* then run the command again \\(with --resume",
        ):
            train(_cfg(out, crop_px=[32], batch_size=2, steps=1))
        assert (out / LOCK_FILE).is_file()  # the refused run leaves the holder's lock alone
    assert train(_cfg(out, crop_px=[32], batch_size=2, steps=1))["steps"] == 1


def test_a_rerun_without_resume_is_refused_instead_of_overwriting_the_checkpoint(tmp_path):
    """A killed training rerun without --resume started at step 0 and overwrote the folder's
    checkpoint and weights at its first save (the earlier steps lost); now it is refused in one
    line, the checkpoint and weights stay byte for byte, and --resume continues from them."""
    print("seed 7")
    out = tmp_path / "base"
    train(_cfg(out, crop_px=[32], batch_size=2, steps=2))
    kept = {name: (out / name).read_bytes() for name in ("checkpoint.pt", "model.safetensors")}
    with pytest.raises(FoveaError, match="--resume continues it"):
        train(_cfg(out, crop_px=[32], batch_size=2, steps=3))
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert train_main(["base", "--out", str(out), "--data", PACK, "--no-progress"]) == 2
    log = train(_cfg(out, crop_px=[32], batch_size=2, steps=3), resume=True)
    assert log["steps"] == 3 and torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3


def test_an_export_refuses_weights_that_are_ahead_of_their_log(tmp_path):
    """A run killed after a periodic checkpoint (kill -9, a lost machine) has weights of more
    steps than its log.json says: the export wrote a card with the older log's steps, time and
    losses. Now it refuses in one line naming the folder and the command that writes the log."""
    print("seed 7")
    out = tmp_path / "base"
    train(_cfg(out, crop_px=[32], batch_size=2, steps=2))
    stale = {name: (out / name).read_bytes() for name in ("log.json", "losses.json")}
    train(_cfg(out, crop_px=[32], batch_size=2, steps=4), resume=True)
    for name, content in stale.items():  # as the kill left them: the weights at step 4
        (out / name).write_bytes(content)
    with pytest.raises(
        FoveaError, match=r"model.safetensors holds 4 steps, its log.json 2.*--resume"
    ):
        export_weights(base_dir=out, foveated_dir=None, out_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    (out / "log.json").unlink()
    with pytest.raises(FoveaError, match=r"no log.json.*--resume --steps 4"):
        export_weights(base_dir=out, foveated_dir=None, out_dir=tmp_path / "w")
    log = train(_cfg(out, crop_px=[32], batch_size=2, steps=4), resume=True)  # writes the log
    assert log["steps"] == 4
    record = export_weights(base_dir=out, foveated_dir=None, out_dir=tmp_path / "w")
    assert record["base"]["steps"] == 4


def test_resume_refuses_settings_other_than_the_checkpoints(tmp_path):
    """--resume with another --lr trained on at the checkpoint's learning rate (the optimiser's
    state carries it) while the log and the card said the new one; another stage's or
    architecture's checkpoint failed with a traceback. Now both are one-line errors that name
    the flags; the step and time limits may change."""
    print("seed 7")
    out = tmp_path / "base"
    train(_cfg(out, crop_px=[32], batch_size=2, steps=2))
    with pytest.raises(FoveaError, match=r"--lr 0.002 there, 0.01 now.*another --out"):
        train(_cfg(out, crop_px=[32], batch_size=2, steps=3, lr=1e-2), resume=True)
    with pytest.raises(FoveaError, match=r"stage base there, detail now"):
        train(_cfg(out, stage="detail", model={}, crop_px=[32], batch_size=2), resume=True)
    with pytest.raises(FoveaError, match=r"--model-json"):
        train(_cfg(out, crop_px=[32], batch_size=2, model={**TINY, "heads": 2}), resume=True)
    log = train(
        _cfg(out, data=str(Path(PACK).relative_to(REPO)), crop_px=[32], batch_size=2, steps=3),
        resume=True,
    )
    assert log["steps"] == 3


def test_an_adapter_is_exported_only_with_the_base_it_was_trained_on(tmp_path):
    """A base run resumed after its foveated post-training started (or another base given to
    the export) shipped an adapter beside a base it was never trained on, silently. Now the
    run records its base's hash, the export refuses the pair in one line (the shipped set
    unchanged), and resuming the adapter on a changed --init file is refused too."""
    print("seed 7")
    base = tmp_path / "base"
    train(_cfg(base, crop_px=[32], batch_size=2, steps=2))
    init = base / "model.safetensors"
    fov = train(_fov_cfg(tmp_path / "fov", init, steps=1))
    assert len(fov["base_sha256"]) == 64
    export_weights(base_dir=base, foveated_dir=tmp_path / "fov", out_dir=tmp_path / "w")
    shipped = {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()}
    # The adapter with the shipped base alone (fp16 of the same weights) is the same pair.
    export_weights(base_dir=None, foveated_dir=tmp_path / "fov", out_dir=tmp_path / "w")
    shipped = {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()}
    train(_cfg(base, crop_px=[32], batch_size=2, steps=3), resume=True)  # the base moves on
    with pytest.raises(FoveaError, match=r"fov was post-trained on another base"):
        export_weights(base_dir=base, foveated_dir=tmp_path / "fov", out_dir=tmp_path / "w")
    assert {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()} == shipped
    with pytest.raises(FoveaError, match=r"--init .* is not the base"):
        train(_fov_cfg(tmp_path / "fov", init, steps=2), resume=True)


def test_weights_files_that_are_not_safetensors_are_one_line_errors(tmp_path, capsys):
    """A cut-short or foreign file given to detail's --init, foveated's --init-lora or found
    as a run's weights by the export failed with safetensors' 'SafetensorError' traceback
    (base's --init already said it in one line). Now each is one line naming the file."""
    from generator.training.export import main as export_main

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    small = ["--crop-px", "32", "--batch-size", "2", "--steps", "1", "--no-progress"]
    shipped_base = str(REPO / "generator" / "models" / "weights" / "default-base.safetensors")
    runs = [
        ["detail", "--init", str(bad)],
        ["foveated", "--init", shipped_base, "--init-lora", str(bad), "--lora-rank", "4"],
    ]
    for i, argv in enumerate(runs):
        assert train_main([*argv, "--out", str(tmp_path / f"r{i}"), *small]) == 2
        err = capsys.readouterr().err
        assert f"{bad} is not a readable safetensors file" in err, err
    run = tmp_path / "detail-run"
    run.mkdir()
    (run / "detail.safetensors").write_bytes(bad.read_bytes())
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    shipped = {p.name: p.read_bytes() for p in weights.iterdir()}
    assert export_main(["--detail", str(run), "--out", str(weights)]) == 2
    err = capsys.readouterr().err
    assert "detail.safetensors is not a readable safetensors file" in err, err
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == shipped


def test_an_export_without_a_base_into_a_new_folder_names_that_folder(tmp_path, capsys):
    """fovea train export --detail RUN --out NEW (no --base, NEW without shipped weights) said
    'NEW/../.NEW.export has no shipped base weights to keep': the staging copy's name, which
    the user never gave. Now the message names --out and how to give it a base."""
    from generator.training.export import main as export_main

    print("seed 7")
    run = tmp_path / "detail"
    train(_cfg(run, stage="detail", model={"channels": 8, "blocks": 1}, steps=1, batch_size=2))
    assert export_main(["--detail", str(run), "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'new'} has no shipped base weights to keep" in err, err
    assert ".export" not in err and "--out a copy of the shipped weights" in err


def test_an_export_of_a_run_that_is_training_now_says_so(tmp_path):
    """fovea train export --detail RUN while RUN was still training said 'RUN has no log.json
    (the run was stopped before it wrote it)' and suggested a --resume into the busy folder.
    Now, while the run's train.lock is held, the export says the run is being trained and to
    export it when it ends; afterwards it exports."""
    from generator.process_lock import ProcessLock
    from generator.training.train import LOCK_FILE

    print("seed 7")
    run = tmp_path / "detail"
    train(_cfg(run, stage="detail", model={"channels": 8, "blocks": 1}, steps=1, batch_size=2))
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    shipped = {p.name: p.read_bytes() for p in weights.iterdir()}
    with ProcessLock(run / LOCK_FILE, what="the training"):
        with pytest.raises(FoveaError, match=f"{run} is being trained now.*when that training"):
            export_weights(base_dir=None, foveated_dir=None, out_dir=weights, detail_dir=run)
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == shipped
    record = export_weights(base_dir=None, foveated_dir=None, out_dir=weights, detail_dir=run)
    assert record["detail"]["steps"] == 1


def test_a_run_that_made_no_step_says_so_and_is_not_exported(tmp_path, capsys):
    """A --time-budget-s that start-up used up printed 'detail: 0 steps, loss None -> None',
    and its export shipped the untrained start weights, the card saying 'loss n/a -> n/a' and
    reproducing it with --steps 0 (which fovea train refuses). Now the run says that no step was
    made and how to train it; the export refuses it, the shipped set unchanged."""
    from fovea_cli.main import main as fovea

    run = tmp_path / "detail"
    argv = ["train", "detail", "--out", str(run), "--crop-px", "32", "--batch-size", "2"]
    argv += ["--model-json", '{"channels": 8, "blocks": 1}', "--no-progress"]
    assert fovea([*argv, "--deadline-unix", str(time.time() - 1)]) == 0
    out = capsys.readouterr().out
    assert "no training step was made" in out and "None" not in out, out
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    shipped = {p.name: p.read_bytes() for p in weights.iterdir()}
    assert fovea(["train", "export", "--detail", str(run), "--out", str(weights)]) == 2
    err = capsys.readouterr().err
    assert f"{run} made no training step" in err and "--resume" in err, err
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == shipped
    assert fovea([*argv, "--resume", "--steps", "1"]) == 0
    assert "detail: 1 steps, loss " in capsys.readouterr().out
    assert fovea(["train", "export", "--detail", str(run), "--out", str(weights)]) == 0


def test_a_base_exported_without_an_adapter_gets_a_card_and_figures_without_one(tmp_path):
    """fovea train export --base RUN (a new base, no --foveated) removes the shipped adapter,
    which no longer fits, but its card still reproduced the set with 'fovea train export --base
    runs/base --foveated runs/foveated' (a folder the block never makes), listed
    default-foveated-loss.png, and that figure of the old adapter stayed in the folder. Now the
    export line and the figure list name the adapter only when the set has one, and the stale
    figure goes with the adapter."""
    print("seed 7")
    base = tmp_path / "base"
    train(_cfg(base, crop_px=[32], batch_size=2, steps=2))
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    export_weights(base_dir=base, foveated_dir=None, out_dir=weights)
    names = {p.name for p in weights.iterdir()}
    assert "default-foveated-lora.safetensors" not in names
    assert "default-foveated-loss.png" not in names and "default-base-loss.png" in names
    card = (weights / "MODEL_CARD.md").read_text()
    assert "- foveated: not run" in card
    assert "--foveated" not in card and "default-foveated-loss.png" not in card
    assert "fovea train export --base runs/base --sampler" in card


def test_a_new_base_beside_the_kept_periphery_stage_says_how_to_retrain_it(tmp_path, capsys):
    """The periphery stage learns from pairs the exported model makes (fovea train pairs); an
    export of a new base kept the old stage without a word, its card still saying its pairs were
    made by the weights above. The export now notes it and names the three commands; a detail
    stage (pairs are made before it) gets no note."""
    from generator.training.export import main as export_main

    print("seed 7")
    base, detail = tmp_path / "base", tmp_path / "detail"
    train(_cfg(base, crop_px=[32], batch_size=2, steps=1))
    small = dict(crop_px=[32], batch_size=2, steps=1, model={"channels": 8, "blocks": 1})
    train(_cfg(detail, stage="detail", **small))
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    capsys.readouterr()
    assert export_main(["--detail", str(detail), "--out", str(weights)]) == 0
    assert "note:" not in capsys.readouterr().out
    assert export_main(["--base", str(base), "--out", str(weights)]) == 0
    note = capsys.readouterr().out.splitlines()[-1]
    assert note.startswith("note: the kept periphery stage (default-periphery.safetensors) was")
    assert f"fovea train pairs --weights {weights} --out PAIRS" in note


def test_the_module_entry_points_report_an_unusable_out_in_one_line(tmp_path, capsys):
    """`python -m generator.training.train` (what accelerate launch runs) and `python -m
    generator.training.export` gave a NotADirectoryError traceback for an --out below a file,
    where `fovea train` says it in one line. Now they say it as fovea does."""
    from generator.training.export import main as export_main

    print("seed 7")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = ["detail", "--out", str(blocker / "run"), "--crop-px", "32", "--steps", "1"]
    assert train_main([*argv, "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"error: {blocker / 'run'}: a file is in the way (a folder must go there)\n"
    )
    run = tmp_path / "base"
    train(_cfg(run, crop_px=[32], batch_size=2, steps=1))
    assert export_main(["--base", str(run), "--out", str(blocker / "w")]) == 2
    assert capsys.readouterr().err == (
        f"error: {blocker}: a file is in the way (a folder must go there)\n"
    )


def test_a_runs_loss_figure_says_what_its_loss_is():
    """A run's loss.png labelled every stage's curve 'v-loss (MSE)', though base and foveated
    plot velocity plus refiner loss and periphery its regression plus seam penalty; a run of
    under 100 steps drew its curve twice ('per step' and 'mean of 1'). The axis now names each
    stage's loss, and a short run has one curve."""
    import matplotlib.pyplot as plt

    from generator.training.plots import loss_figure

    labels = {}
    for stage in ("base", "foveated", "detail", "periphery"):
        for steps in (5, 500):
            fig = loss_figure([0.5 / (i + 1) for i in range(steps)], title="t", stage=stage)
            ax = fig.axes[0]
            labels[stage] = ax.get_ylabel()
            assert len(ax.get_lines()) == (1 if steps == 5 else 2)
            plt.close(fig)
    assert labels["base"] == labels["foveated"] == "loss (velocity + refiner)"
    assert labels["periphery"] == "loss (regression + seam penalty)"
    assert "v-loss" not in labels["detail"]


def test_a_checkpoint_cut_short_is_a_one_line_error_on_resume(tmp_path, capsys):
    """--resume of a checkpoint.pt that a copy from another machine cut short (or that is not a
    checkpoint) failed with torch.load's OSError / ValueError / EOFError traceback. Now it is one
    line naming the file and what to do; the run's other files are left as they were."""
    print("seed 7")
    out = tmp_path / "detail"
    small = ["--crop-px", "32", "--batch-size", "2", "--no-progress"]
    argv = ["detail", "--out", str(out), "--model-json", '{"channels": 8, "blocks": 1}', *small]
    assert train_main([*argv, "--steps", "1"]) == 0
    whole = (out / "checkpoint.pt").read_bytes()
    for broken in (whole[: len(whole) // 2], b"garbage\n", b""):
        (out / "checkpoint.pt").write_bytes(broken)
        weights = (out / "detail.safetensors").read_bytes()
        assert train_main([*argv, "--steps", "2", "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"{out / 'checkpoint.pt'} is not a readable training checkpoint" in err, err
        assert (out / "detail.safetensors").read_bytes() == weights


def test_a_runs_or_records_broken_json_is_a_one_line_error(tmp_path, capsys):
    """A run's losses.json cut short stopped fovea train export with a JSONDecodeError traceback,
    as did a default.json beside --init (the record a continued run takes its lineage from).
    Now each is one line naming the file and what it is."""
    from generator.training.export import main as export_main

    print("seed 7")
    run = tmp_path / "detail"
    train(_cfg(run, stage="detail", model={"channels": 8, "blocks": 1}, steps=1, batch_size=2))
    (run / "losses.json").write_text('{"total": [1')
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    assert export_main(["--detail", str(run), "--out", str(weights)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'losses.json'} is not readable JSON (the run's losses)" in err, err
    (weights / "default.json").write_text('{"detail": [')
    argv = ["detail", "--init", str(weights / "default-detail.safetensors"), "--steps", "1"]
    assert train_main([*argv, "--out", str(tmp_path / "more"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{weights / 'default.json'} is not readable JSON (the record beside --init" in err


def test_the_progress_line_of_a_conv_stage_shows_its_own_loss(tmp_path, capsys):
    """The progress line of a detail or periphery run showed 'ref=0.00000' beside 'v=': the
    transformer's refiner loss, which those stages do not have (always 0). Their line now shows
    their one loss; base keeps velocity and refiner."""
    print("seed 7")
    small = dict(crop_px=[32], batch_size=2, steps=10, progress=True)
    train(_cfg(tmp_path / "d", stage="detail", model={"channels": 8, "blocks": 1}, **small))
    detail = capsys.readouterr().err.strip().splitlines()[-1]
    assert "10/10" in detail and "loss=" in detail and "ref=" not in detail, detail
    train(_cfg(tmp_path / "b", **small))
    base = capsys.readouterr().err.strip().splitlines()[-1]
    assert "10/10" in base and "v=" in base and "ref=" in base, base


def test_the_progress_bar_ends_where_the_time_budget_stops_the_run(tmp_path, capsys):
    """A run stopped by --time-budget-s drew its bar to --steps (default 100000), so a log's
    time left said days ('52:16:41') for a run of an hour. The bar's end is the steps the
    budget leaves room for, the time left the budget's."""
    print("seed 7")
    small = dict(crop_px=[32], batch_size=2, progress=True, model={"channels": 8, "blocks": 1})
    train(_cfg(tmp_path / "d", stage="detail", steps=100_000, time_budget_s=2, **small))
    last = capsys.readouterr().err.strip().splitlines()[-1]
    done, total = (int(n) for n in last.split("|")[-1].split()[0].split("/"))
    assert 1 <= done <= total < 100_000, last  # set after each step, however few a slow CI makes


def test_a_run_folder_given_as_init_names_the_file_inside(tmp_path, capsys):
    """--init runs/base (the run's folder, not its model.safetensors) said '--init runs/base
    does not exist', though it does. Now a folder is refused naming the weights file in it
    (--init-lora likewise); a missing path still says it does not exist."""
    print("seed 7")
    base = tmp_path / "base"
    train(_cfg(base, crop_px=[32], batch_size=2, steps=1))
    shipped = REPO / "generator" / "models" / "weights"
    small = ["--out", str(tmp_path / "o"), "--steps", "1", "--no-progress"]
    cases = [
        (
            ["foveated", "--init", str(base)],
            f"--init {base} is a folder: give the weights file, "
            f"--init {base / 'model.safetensors'}",
        ),
        (["detail", "--init", str(shipped)], f"--init {shipped / 'default-detail.safetensors'}"),
        (
            ["foveated", "--init", str(base / "model.safetensors"), "--init-lora", str(tmp_path)],
            f"--init-lora {tmp_path} is a folder: give a weights file",
        ),
        (["base", "--init", str(tmp_path / "none")], f"--init {tmp_path / 'none'} does not exist"),
    ]
    for argv, message in cases:
        assert train_main([*argv, *small]) == 2
        err = capsys.readouterr().err
        assert message in err, err
    assert not (tmp_path / "o").exists()


def test_a_batch_of_one_trains_every_stage_but_post_training_with_groups(tmp_path, capsys):
    """fovea train base/detail/periphery --batch-size 1 said '--batch-size 1 must be >= --groups
    2', a foveated-only flag those stages do not use (its default is 2); --layout-mix was taken
    by them and ignored. Now a batch of one trains them, foveated still needs a crop per
    layout group, and --layout-mix outside post-training is refused."""
    print("seed 7")
    small = ["--crop-px", "32", "--steps", "1", "--no-progress", "--batch-size", "1"]
    detail = ["detail", "--model-json", '{"channels": 8, "blocks": 1}', *small]
    assert train_main([*detail, "--out", str(tmp_path / "d")]) == 0
    assert train_main([*detail, "--out", str(tmp_path / "m"), "--layout-mix", "acuity=1"]) == 2
    assert "--layout-mix is for foveated post-training" in capsys.readouterr().err
    train(_cfg(tmp_path / "b", crop_px=[32], batch_size=1, steps=1))
    init = str(tmp_path / "b" / "model.safetensors")
    assert train_main(["foveated", "--init", init, "--out", str(tmp_path / "f"), *small]) == 2
    assert "--batch-size 1 must be >= --groups 2" in capsys.readouterr().err


def test_the_module_help_says_what_it_does_in_a_whole_sentence(capsys):
    """`accelerate launch -m generator.training.train --help` described itself with the first
    line of the module's docstring, cut mid-sentence: 'Train the default model: ``base`` on
    full-resolution tokens, then ``foveated``'. It now says what it trains, in one sentence."""
    with pytest.raises(SystemExit) as stop:
        train_main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Train one stage of the default model: base, foveated, detail or periphery" in text
    assert "``" not in text


def test_ctrl_c_of_fovea_train_names_the_checkpoint_to_resume_from(tmp_path):
    """After Ctrl-C, fovea train said 'the same command with --resume continues from
    OUT/checkpoint.pt': the word OUT, not the run's folder. It now names the checkpoint that the
    stopped run saved (a real SIGINT to a real `fovea train detail`)."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "detail"
    command = [sys.executable, "-m", "fovea_cli", "train", "detail", "--out", str(out)]
    command += ["--model-json", '{"channels": 8, "blocks": 1}', "--crop-px", "32"]
    command += ["--batch-size", "2", "--steps", "100000", "--time-budget-s", "120"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert "trainable" in run.stdout.readline()  # the run has started its steps
        time.sleep(1.0)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert f"--resume continues from {out / 'checkpoint.pt'} " in err, err
    assert (out / "checkpoint.pt").is_file()


def test_the_exported_loss_figures_name_each_stages_own_losses():
    """The export's default-periphery-loss.png showed the periphery stage's regression loss
    twice, as 'total' and as 'velocity' (a loss it has not), and default-detail-loss.png the
    detail loss twice likewise. A conv stage's figure now draws its one loss under its name;
    base and foveated keep total, velocity and refiner."""
    import matplotlib.pyplot as plt

    from generator.training.plots import loss_parts_figure

    total = [0.5 / (i + 1) for i in range(200)]
    names = {}
    for stage, parts in (
        ("base", [(t * 0.9, t * 0.1) for t in total]),
        ("detail", [(t, 0.0) for t in total]),
        ("periphery", [(t, 0.0) for t in total]),
    ):
        fig = loss_parts_figure(total, parts, title="t", stage=stage)
        names[stage] = [line.get_label() for line in fig.axes[0].get_lines()]
        plt.close(fig)
    assert names["base"] == ["total", "velocity", "refiner"]
    assert names["periphery"] == ["loss (regression + seam penalty)"]
    assert len(names["detail"]) == 1 and "velocity" in names["detail"][0]


def test_two_exports_into_one_folder_do_not_run_at_once(tmp_path):
    """Two fovea train export into one weights folder at once (two terminals) shared its staging
    copy: the second removed the first's, and failed with 'error: no such file or folder' (a
    later interleaving would mix the two sets). An export now holds the folder's lock
    (export.export_lock, in the temporary folder): a second is refused in one line while the
    first runs, the set unchanged, and runs afterwards."""
    from generator.process_lock import ProcessLock
    from generator.training.export import export_lock

    print("seed 7")
    run = tmp_path / "detail"
    train(_cfg(run, stage="detail", model={"channels": 8, "blocks": 1}, steps=1, batch_size=2))
    weights = tmp_path / "w"
    shutil.copytree(REPO / "generator" / "models" / "weights", weights)
    shipped = {p.name: p.read_bytes() for p in weights.iterdir()}
    with ProcessLock(export_lock(weights), what="the first export"):
        with pytest.raises(FoveaError, match=f"weights folder {weights} is in use by another"):
            export_weights(base_dir=None, foveated_dir=None, out_dir=weights, detail_dir=run)
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == shipped
    assert not (tmp_path / ".w.export").exists()
    record = export_weights(base_dir=None, foveated_dir=None, out_dir=weights, detail_dir=run)
    assert record["detail"]["steps"] == 1


def test_images_smaller_than_the_crop_are_named_at_the_start(tmp_path, capsys):
    """A lab's cache of small photographs (or one made at a small --max-side-px) trained on
    crops upscaled from them without a word: blurrier targets than the photographs' own detail.
    The run's start now says how many images are smaller than the largest --crop-px."""
    from PIL import Image

    print("seed 3 (pixels), 7 (training)")
    cache = tmp_path / "photos"
    cache.mkdir()
    rng = np.random.default_rng(3)
    entries = []
    for name, side in (("small", 48), ("large", 96)):
        pixels = (rng.random((side, side, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(cache / f"{name}.png")
        entries.append({"id": name, "split": "train", "cached_file": f"{name}.png"})
    (cache / "manifest.json").write_text(json.dumps({"images": entries}))

    train(_cfg(tmp_path / "run", data=str(cache), steps=1, batch_size=2))
    out = capsys.readouterr().out
    assert "note: 1 of 2 images have a shorter side under 64 px (--crop-px)" in out, out
    train(_cfg(tmp_path / "run32", data=str(cache), steps=1, batch_size=2, crop_px=[32]))
    assert "upscaled" not in capsys.readouterr().out


def test_a_run_that_fails_to_start_leaves_no_folder_behind(tmp_path, capsys):
    """A training started with a wrong --data stopped in one line but left its new --out
    holding only train.lock: a folder that looked like a run to resume. A folder the failed
    run made is removed; one that was there before is left empty, as it was."""
    print("seed 7")
    argv = ["base", "--data", str(tmp_path / "nope.npz"), "--steps", "1", "--no-progress"]
    new = tmp_path / "runs" / "base"
    assert train_main([*argv, "--out", str(new)]) == 2
    assert "nope.npz does not exist" in capsys.readouterr().err
    assert not new.exists() and (tmp_path / "runs").is_dir()
    kept = tmp_path / "kept"
    kept.mkdir()
    assert train_main([*argv, "--out", str(kept)]) == 2
    assert kept.is_dir() and not any(kept.iterdir())
