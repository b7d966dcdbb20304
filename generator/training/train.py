"""Train the default model: ``base`` on full-resolution tokens, then ``foveated`` post-training
(LoRA) on mixed-resolution tokens built from the same crops (random gaze, strength and layout
mode), and, on their own, the convolutional ``detail`` stage (:mod:`generator.models.detail`) and
``periphery`` stage (:mod:`generator.models.periphery`). Each training pair is a random crop of a
training photograph and its scene (the crop area-downsampled by the model's ``scene_factor``);
the periphery stage trains on pairs the shipped pipeline made
(:mod:`generator.training.periphery_pairs`, ``--data PAIRS_FOLDER``).

Runs single-process on a CPU or under ``accelerate launch`` on one or several GPUs::

    accelerate launch -m generator.training.train base --data generator/data/photos-1024.npz \\
        --out runs/base --time-budget-s 3600
    accelerate launch -m generator.training.train foveated --init runs/base/model.safetensors \\
        --data generator/data/photos-1024.npz --out runs/foveated --time-budget-s 1800

The objective is :mod:`generator.training.objective`'s (JiT x-prediction, velocity loss, plus the
refiner's image loss). Training stops at ``--steps`` or when ``--time-budget-s`` is spent, whichever
is first, and always saves what it has. ``--resume`` continues from ``OUT/checkpoint.pt``;
without it, a folder that holds one is refused (a fresh run would overwrite it).
Outputs in OUT: ``model.safetensors`` (base: EMA weights), ``lora.safetensors`` (foveated) or
``detail.safetensors`` (detail), ``periphery.safetensors`` (periphery), ``loss.png``,
``log.json``, ``losses.json`` (per step: ``total`` and ``parts`` = [velocity, refiner]; for
``detail`` [velocity, 0], for ``periphery`` [regression, 0]), ``checkpoint.pt``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from generator.atomic import write_atomic
from generator.errors import FoveaError, is_path_error, path_error_message, safetensors_errors
from generator.process_lock import ProcessLock
from generator.training.checkpoint import (
    Progress,
    TrainedParts,
    load_checkpoint,
    mean_first50,
    save_run,
)
from generator.training.config import (
    CONV_STAGES,
    POST_TRAINING,
    STAGES,
    TrainConfig,
    add_arguments,
    config_from_args,
    validate,
)
from generator.training.objective import Ema, training_loss

#: Held in the output folder while a training runs there (``generator.process_lock``).
LOCK_FILE = "train.lock"


def train(cfg: TrainConfig, *, resume: bool = False) -> dict:
    """Run one stage; returns the log dict (also written to OUT/log.json).

    Stages: the accelerator, the folder's lock (a second training into the same ``cfg.out`` is
    refused), the model and optimiser, the checkpoint (``resume``), then steps until
    ``cfg.steps`` or the time budget (checkpoints every ``checkpoint_every_s``), the last save and
    the log.
    """
    validate(cfg)
    start = time.perf_counter()
    accelerator, mp = _accelerator(cfg)
    out = Path(cfg.out)
    made_here = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = None
    if accelerator.is_main_process:  # one training per folder (its checkpoints)
        lock = ProcessLock(
            out / LOCK_FILE,
            what=f"training folder {out}",
            then="run the command again (with --resume to continue its checkpoint)",
        ).acquire()
    try:
        _refuse_to_start_over(out, cfg.stage, resume=resume)
        return _train_in(cfg, resume=resume, accelerator=accelerator, mp=mp, start=start)
    except BaseException:
        if lock is not None:  # only this run's own lock: never one another run holds
            lock.release()
            _clear_unused_folder(out, made_here=made_here)
        raise
    finally:
        if lock is not None:
            lock.release()


def _clear_unused_folder(out: Path, *, made_here: bool) -> None:
    """After a run that failed before writing anything (a wrong --data, a model that does not
    fit), remove its lock file and the folder if the run made it: a folder holding only
    ``train.lock`` looked like a run to resume."""
    try:
        if [p.name for p in out.iterdir()] == [LOCK_FILE]:
            (out / LOCK_FILE).unlink()
            if made_here:
                out.rmdir()
    except OSError:  # another run started there meanwhile, or a file in use: left as it is
        pass


def _note_upscaled_images(accelerator, bank, crop_px: int) -> None:
    """Say how many images are smaller than the largest crop: ``random_crops`` upscales them to
    it, so they teach blurrier detail than the photographs' own (a lab's folder of small
    photos, or a cache made at a small ``--max-side-px``)."""
    small = sum(min(image.shape[1:]) < crop_px for image in bank.images)
    if small:
        accelerator.print(
            f"note: {small} of {len(bank)} images have a shorter side under {crop_px} px "
            "(--crop-px) and are upscaled to it, so their crops are blurrier than a photograph's "
            "own detail; larger photos (fovea data images --max-side-px) or a smaller --crop-px "
            "avoid it"
        )


def _refuse_to_start_over(out: Path, stage: str, *, resume: bool) -> None:
    """Without ``resume``, refuse a folder that holds a training run's ``checkpoint.pt``: a run
    started afresh there would overwrite that checkpoint and its weights at its first save (the
    earlier run's steps lost, e.g. after a kill and a rerun that forgot ``--resume``)."""
    if not resume and (out / "checkpoint.pt").is_file():
        raise FoveaError(
            f"{out} holds a training run (checkpoint.pt) that a new {stage} run would overwrite: "
            "--resume continues it; a new run needs another --out (or that folder emptied)"
        )


def _train_in(cfg: TrainConfig, *, resume: bool, accelerator, mp: str, start: float) -> dict:
    """``train`` with its folder locked."""
    import torch

    from generator.data.images import load_bank
    from generator.training.lineage import base_sha256, starting_record

    device = accelerator.device
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    run = _build_model(cfg, device)
    progress = Progress(starting_record(asdict(cfg), cfg.stage))
    if cfg.stage in POST_TRAINING:  # the export ships the adapter only with this base
        progress.base_sha256 = base_sha256(Path(cfg.init))
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        load_checkpoint(ckpt_path, run, progress, cfg)
        accelerator.print(f"resumed {cfg.stage} at step {progress.step}")
    elif resume:  # a preempted job's first start, or a mistyped --out: say which
        accelerator.print(f"--resume: no checkpoint in {out}; starting a new {cfg.stage} run")
    run.model, run.opt = accelerator.prepare(run.model, run.opt)
    if cfg.stage == "periphery":
        from generator.training.periphery_pairs import check_crops_fit, load_pairs

        bank = load_pairs(Path(cfg.data))
        check_crops_fit(bank, cfg.crop_px, Path(cfg.data))
    else:
        bank = load_bank(source=Path(cfg.data), split="train").to(device)
    n_params = sum(p.numel() for p in run.trainable)
    if cfg.stage != "periphery":
        _note_upscaled_images(accelerator, bank, max(cfg.crop_px))
    accelerator.print(
        f"{cfg.stage}: {len(bank)} {'twins' if cfg.stage == 'periphery' else 'images'}, "
        f"{n_params / 1e6:.2f} M trainable "
        f"parameters, device {device}, precision {mp}"
    )
    budget_s = cfg.time_budget_s - (time.perf_counter() - start)
    images_seen, loop_s, stopped = _run_steps(
        accelerator, run, progress, bank, cfg, budget_s=budget_s
    )
    log = _run_log(
        cfg,
        progress,
        accelerator,
        mp=mp,
        n_params=n_params,
        images_seen=images_seen,
        loop_s=loop_s,
        wall_s=time.perf_counter() - start,
    )
    if accelerator.is_main_process:
        write_atomic(out / "log.json", json.dumps(log, indent=1))
        write_atomic(
            out / "losses.json", json.dumps({"total": progress.losses, "parts": progress.parts})
        )
    if stopped:  # Ctrl-C: saved and logged (an export reads the log); --resume continues
        raise KeyboardInterrupt
    return log


def _run_steps(
    accelerator, run: TrainedParts, progress: Progress, bank, cfg: TrainConfig, *, budget_s: float
) -> tuple[int, float, bool]:
    """Steps until ``cfg.steps``, the time budget (``budget_s`` from now) or ``cfg.deadline_unix``,
    whichever comes first (a step is not started when the estimate of its duration would overrun);
    checkpoints every ``cfg.checkpoint_every_s`` and once at the end, also when Ctrl-C stopped
    it (``_stop_after_the_step``). Returns (images seen, seconds in the loop, whether Ctrl-C
    stopped it)."""

    from generator.progress import progress_bar

    loop_start = time.perf_counter()
    last_ckpt = loop_start
    bar = progress_bar(
        total=cfg.steps,
        initial=progress.step,
        enabled=cfg.progress and accelerator.is_main_process,
        desc=cfg.stage,
        unit="step",
    )
    images_seen = 0
    step_s = 0.0  # running estimate of one step's duration

    def seconds_left() -> float:
        """Until the time budget or the deadline, whichever comes first."""
        left = budget_s - (time.perf_counter() - loop_start)
        return left if cfg.deadline_unix is None else min(left, cfg.deadline_unix - time.time())

    def time_left() -> bool:
        return step_s < seconds_left()

    def save() -> None:
        elapsed_s = progress.elapsed_before_s + time.perf_counter() - loop_start
        save_run(accelerator, run, progress, cfg, out=Path(cfg.out), elapsed_s=elapsed_s)

    with _stop_after_the_step(bar) as stop_requested:
        while progress.step < cfg.steps and time_left() and not stop_requested():
            step_start = time.perf_counter()
            total, v_total, r_total, crop_px = _train_step(
                accelerator, run, bank, cfg, progress.step
            )
            run.ema.update(progress.step)
            if not math.isfinite(total):
                raise RuntimeError(f"loss is {total} at step {progress.step}")
            progress.losses.append(total)
            progress.parts.append((v_total, r_total))
            dt = time.perf_counter() - step_start
            step_s = dt if step_s == 0.0 else 0.9 * step_s + 0.1 * max(dt, step_s * 0.5)
            progress.step += 1
            images_seen += cfg.batch_size
            # The bar ends where the run will stop: at --steps (default 100000) its time left
            # said days while --time-budget-s ended the run within the hour.
            reachable = progress.step + int(max(0.0, seconds_left()) / max(step_s, 1e-9))
            bar.total = min(cfg.steps, reachable)
            bar.update(1)
            if progress.step % 10 == 0:
                bar.set_postfix(**_postfix(cfg.stage, progress.parts[-50:]), res=crop_px)
            if time.perf_counter() - last_ckpt > cfg.checkpoint_every_s:
                save()
                last_ckpt = time.perf_counter()
        bar.close()
        loop_s = time.perf_counter() - loop_start
        save()
        stopped = stop_requested()  # the checkpoint holds the last whole step
    return images_seen, loop_s, stopped


def _postfix(stage: str, parts: list[tuple[float, float]]) -> dict[str, str]:
    """The progress line's mean losses of the recent steps: velocity and refiner for the
    transformer, the one loss of a conv stage (its second part is always 0)."""
    import numpy as np

    recent = np.mean(parts, axis=0)
    if stage in CONV_STAGES:
        return {"loss": f"{recent[0]:.4f}"}
    return {"v": f"{recent[0]:.4f}", "ref": f"{recent[1]:.5f}"}


@contextlib.contextmanager
def _stop_after_the_step(bar):
    """While training, a first Ctrl-C (SIGINT) lets the running step finish: the loop stops,
    saves a checkpoint, the run writes its log and then raises KeyboardInterrupt, so up to
    ``checkpoint_every_s`` of work is not lost; a second Ctrl-C stops at once. Yields a callable: whether a stop was asked."""
    asked: list[bool] = []

    def on_interrupt(signum, frame) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        bar.write("Ctrl-C: saving a checkpoint after this step (Ctrl-C again to stop at once)")

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread: interrupts are not delivered here anyway
        yield lambda: False
        return
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


def _accelerator(cfg: TrainConfig):
    """(accelerate ``Accelerator``, mixed precision in use: ``bf16`` or ``no``); TF32 on CUDA."""
    import torch
    from accelerate import Accelerator

    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "no"  # float32 (TF32 matmuls below): bf16's backward crashed in cuBLAS on an H200
    accelerator = Accelerator(mixed_precision=mp)
    if accelerator.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 training at TF32 matmul speed
        torch.backends.cudnn.allow_tf32 = True
    return accelerator, mp


def _build_model(cfg: TrainConfig, device) -> TrainedParts:
    """The model (from ``cfg.init`` or new from ``cfg.model``; a LoRA added for post-training),
    AdamW on its trainable parameters, the linear warm-up and the EMA, on ``device``."""
    import torch

    from generator.models.default import DefaultModel, ModelConfig
    from generator.models.detail import DetailConfig, DetailNet
    from generator.models.periphery import PeripheryConfig, PeripheryNet
    from generator.models.weights_io import load_detail, load_model, load_periphery
    from generator.training.lora_io import add_lora, load_lora

    if cfg.init:  # a file that is not safetensors (cut short, another format): one line
        load = {"detail": load_detail, "periphery": load_periphery}.get(cfg.stage, load_model)
        with safetensors_errors(cfg.init, "--init"):
            model = load(Path(cfg.init)).requires_grad_(True)
    elif cfg.stage == "detail":
        model = DetailNet(DetailConfig.from_dict(cfg.model))
    elif cfg.stage == "periphery":
        model = PeripheryNet(PeripheryConfig.from_dict(cfg.model))
    else:
        model = DefaultModel(ModelConfig.from_dict(cfg.model))
    model.train()
    if cfg.stage in POST_TRAINING:
        add_lora(model, rank=cfg.lora_rank, alpha=cfg.lora_alpha)
        if cfg.init_lora:
            load_lora(model, Path(cfg.init_lora), rank=cfg.lora_rank)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps))
    )
    model.to(device)
    return TrainedParts(model, trainable, opt, sched, Ema(trainable, cfg.ema_decay))


def _train_step(accelerator, run: TrainedParts, bank, cfg: TrainConfig, step: int):
    """One optimiser step on a batch of random crops (post-training: ``cfg.groups`` layouts, one
    per group). Returns (total, velocity, refiner) loss as floats and the crop size in px."""
    import numpy as np
    import torch

    from generator.data.images import random_crops
    from generator.models.detail import detail_loss
    from generator.training.layouts import full_layout, random_layout

    device = accelerator.device
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 97 + accelerator.process_index)
    rng = np.random.default_rng([cfg.seed, step, accelerator.process_index])
    crop_px = int(rng.choice(cfg.crop_px))
    if cfg.stage == "periphery":
        return (*_periphery_step(accelerator, run, bank, cfg, rng, crop_px), crop_px)
    x, _ = random_crops(
        bank,
        count=cfg.batch_size,
        crop_px=crop_px,
        generator=g,
        max_zoom_out=cfg.max_zoom_out,
    )
    gd = g
    if device.type != "cpu":
        gd = torch.Generator(device=device).manual_seed(
            cfg.seed * 7919 + step * 31 + accelerator.process_index
        )
    if cfg.stage == "detail":
        loss = _loss_step(
            accelerator, run, lambda: detail_loss(run.model, x.to(device), generator=g)
        )
        return loss, loss, 0.0, crop_px
    groups = cfg.groups if cfg.stage in POST_TRAINING else 1
    total = v_total = r_total = 0.0
    with accelerator.accumulate(run.model):
        for chunk_x in x.chunk(groups):
            if cfg.stage in POST_TRAINING:
                layout = random_layout(
                    rng=rng, image_px=crop_px, patch_px=16, mode_probs=cfg.layout_mix
                )
            else:
                layout = full_layout(image_px=crop_px, patch_px=16)
            with accelerator.autocast():
                loss, v_loss, r_loss = training_loss(
                    run.model, chunk_x, layout, generator=gd, cfg=cfg
                )
            accelerator.backward(loss / groups)
            total += float(loss.detach()) / groups
            v_total += float(v_loss) / groups
            r_total += float(r_loss) / groups
        _optimizer_step(accelerator, run)
    return total, v_total, r_total, crop_px


def _periphery_step(accelerator, run: TrainedParts, pairs, cfg: TrainConfig, rng, crop_px: int):
    """One optimiser step of the periphery stage on crops of the pairs: (total, regression, 0)."""
    from generator.models.periphery import periphery_loss
    from generator.training.periphery_pairs import pair_crops

    batch = pair_crops(pairs, count=cfg.batch_size, crop_px=crop_px, rng=rng)
    noise, image, levels, twin, origin = (t.to(accelerator.device) for t in batch)
    loss = _loss_step(
        accelerator,
        run,
        lambda: periphery_loss(run.model, noise, image, levels, twin, origin=origin),
    )
    return loss, loss, 0.0


def _loss_step(accelerator, run: TrainedParts, compute_loss) -> float:
    """One optimiser step on the loss ``compute_loss()`` returns; that loss as a float."""
    with accelerator.accumulate(run.model):
        with accelerator.autocast():
            loss = compute_loss()
        accelerator.backward(loss)
        _optimizer_step(accelerator, run)
    return float(loss.detach())


def _optimizer_step(accelerator, run: TrainedParts) -> None:
    """Clip the gradients, step the optimiser and the warm-up, clear the gradients."""
    accelerator.clip_grad_norm_(run.trainable, 1.0)
    run.opt.step()
    run.sched.step()
    run.opt.zero_grad(set_to_none=True)


def _run_log(
    cfg: TrainConfig,
    progress: Progress,
    accelerator,
    *,
    mp: str,
    n_params: int,
    images_seen: int,
    loop_s: float,
    wall_s: float,
) -> dict:
    """The run's ``log.json``: its config, steps, seconds, losses, hardware and lineage."""
    import numpy as np
    import torch

    losses, device = progress.losses, accelerator.device
    return {
        "stage": cfg.stage,
        "config": asdict(cfg),
        "steps": progress.step,
        "images_seen_this_run": images_seen,
        "loop_seconds": loop_s,
        "train_seconds_total": progress.elapsed_before_s + loop_s,
        "steps_per_s": (len(losses) and images_seen / cfg.batch_size / max(loop_s, 1e-9)),
        "loss_first50": mean_first50(losses),
        "loss_last50": float(np.mean(losses[-50:])) if losses else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "num_processes": accelerator.num_processes,
        "mixed_precision": mp,
        "tf32": device.type == "cuda",
        "trainable_params": n_params,
        "wall_seconds": wall_s,
        "previous": progress.previous,
        **({"base_sha256": progress.base_sha256} if progress.base_sha256 else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.training.train",
        description="Train one stage of the default model: base, foveated, detail or periphery "
        "(the flags of `fovea train STAGE`; run it under `accelerate launch` on GPUs).",
    )
    parser.add_argument("stage", choices=list(STAGES))
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        train(config_from_args(args.stage, args), resume=args.resume)
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an --out that cannot be made or written, as fovea reports it
        if not is_path_error(error):
            raise
        print(f"error: {path_error_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the checkpoint and log are saved (fovea train says the same)
        print(
            f"interrupted; the same command with --resume continues from {args.out}/checkpoint.pt",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
