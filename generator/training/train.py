"""Train the default model: ``base`` on full-resolution tokens, then ``foveated`` post-training
(LoRA) on mixed-resolution tokens built from the same crops (random gaze, strength and layout
mode). Each training pair is a random crop of a training photograph and its scene (the crop
area-downsampled by the model's ``scene_factor``).

Runs single-process on a CPU or under ``accelerate launch`` on one or several GPUs::

    accelerate launch -m generator.training.train base --data generator/data/photos-1024.npz \\
        --out runs/base --time-budget-s 3600
    accelerate launch -m generator.training.train foveated --init runs/base/model.safetensors \\
        --data generator/data/photos-1024.npz --out runs/foveated --time-budget-s 1800

Objective (JiT, "Back to Basics", 2025): the network predicts the clean tokens ``x``; the loss is
the velocity MSE with ``v_hat = (z_t - x_hat) / max(t, t_min)``, ``z_t = (1 - t) x + t noise``,
``t`` logit-normal, plus the refiner's image loss (:func:`training_loss`). Training stops at ``--steps`` or when ``--time-budget-s`` is spent, whichever
is first, and always saves what it has. ``--resume`` continues from ``OUT/checkpoint.pt``.
Outputs in OUT: ``model.safetensors`` (base: EMA weights) or ``lora.safetensors`` (foveated),
``loss.png``, ``log.json``, ``losses.json`` (per step: ``total`` and ``parts`` = [velocity,
refiner]), ``checkpoint.pt``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

from generator.training.config import (
    POST_TRAINING,
    TrainConfig,
    add_arguments,
    config_from_args,
    validate,
)


def sample_times(n: int, *, generator, mean: float, std: float, device):
    """Logit-normal t in (0, 1), 1 = noise (JiT's P_mean = -0.8 in its t=1-is-clean convention)."""
    import torch

    z = torch.randn(n, generator=generator, device=generator.device)
    return torch.sigmoid(mean + std * z).to(device)


def training_loss(model, x, layout, *, generator, cfg: TrainConfig, noise=None):
    """JiT v-loss of one micro-batch on one layout, plus the refiner's image loss.

    Args:
        model: DefaultModel (possibly wrapped by accelerate).
        x: (B, 3, H, W) clean crops in [-1, 1]; their scenes are made here.
        layout: token layout of an H x W image.
        noise: (B, 3, H, W) noise coupled to ``x``; None draws fresh noise.

    Returns:
        (total loss, velocity loss, refiner loss) as tensors.
    """
    import torch

    from generator.denoiser import layout_ids
    from generator.models.default import scene_inputs
    from generator.scene import downsample_to_scene
    from generator.tokens import pack, unpack

    net = model.module if hasattr(model, "module") else model
    mcfg = net.config_
    p = mcfg.patch_px
    device = x.device
    # Noise from a generator on x's device: drawing 50 M normals per step on the CPU would
    # dominate a GPU step.
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, device=generator.device).to(device)
    scene = scene_inputs(downsample_to_scene(x, mcfg.scene_factor), layout, mcfg)
    x_tok = pack(x, layout, p=p)
    n_tok = pack(noise, layout, p=p, noise=True)
    t = sample_times(x.shape[0], generator=generator, mean=cfg.t_mean, std=cfg.t_std, device=device)
    tb = t[:, None, None]
    z = (1 - tb) * x_tok + tb * n_tok
    img_ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32, device=device)
    ref_ids = None if scene.reference_ids is None else scene.reference_ids.to(device)
    x_hat = model(
        z,
        scene_tokens=scene.scene_tokens,
        img_ids=img_ids,
        t=t,
        reference=scene.reference,
        reference_ids=ref_ids,
    ).float()
    denom = tb.clamp_min(cfg.t_min)
    v_hat = (z - x_hat) / denom
    v = (z - x_tok) / denom  # = noise - x where t >= t_min (the same clamp keeps targets finite)
    v_loss = torch.mean((v_hat - v) ** 2)
    if net.refiner is None:
        return v_loss, v_loss.detach(), torch.zeros((), device=device)
    # The refiner sees the unpacked prediction and learns the layout's own target (the clean
    # image where tokens are fine, its unpacked coarse tokens elsewhere), weighted to low t,
    # where the sampler's last step hands it its input.
    image_hat = unpack(x_hat, layout, p=p)
    target = unpack(x_tok, layout, p=p)
    refined = net.refine(image_hat, scene.scene_up)
    weight = (1 - t)[:, None, None, None] ** 2
    r_loss = torch.mean(weight * (refined - target) ** 2) * cfg.refiner_weight
    return v_loss + r_loss, v_loss.detach(), r_loss.detach()


class Ema:
    """Exponential moving average of a set of parameters (with a 1/(step+10) warm-up)."""

    def __init__(self, params, decay: float):
        self.params = list(params)
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay

    def update(self, step: int) -> None:
        import torch

        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                s.mul_(d).add_(p.detach().float(), alpha=1 - d)

    def swap(self) -> None:
        """Exchange live and EMA values (call twice to restore)."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                tmp = p.detach().clone()
                p.copy_(s.to(p.dtype))
                s.copy_(tmp.float())


def train(cfg: TrainConfig, *, resume: bool = False) -> dict:
    """Run one stage; returns the log dict (also written to OUT/log.json)."""
    import numpy as np
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from generator.data.images import load_bank, random_crops
    from generator.models.default import DefaultModel, ModelConfig
    from generator.models.weights_io import load_model, save_weights
    from generator.training.layouts import full_layout, random_layout
    from generator.training.lineage import starting_record, without_own_snapshot
    from generator.training.lora_io import add_lora, load_lora, save_lora
    from generator.training.plots import plot_losses

    validate(cfg)
    start = time.perf_counter()
    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=mp)
    device = accelerator.device
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 training at TF32 matmul speed
        torch.backends.cudnn.allow_tf32 = True
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    if cfg.init:
        model = load_model(Path(cfg.init)).requires_grad_(True)
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
    ema = Ema(trainable, cfg.ema_decay)
    step, losses, elapsed_before, ckpt_parts = 0, [], 0.0, []
    previous = starting_record(asdict(cfg), "base" if cfg.stage == "base" else "foveated")
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        with torch.no_grad():
            for p, v in zip(trainable, ckpt["trainable"], strict=True):
                p.copy_(v)
            for s, v in zip(ema.shadow, ckpt["ema"], strict=True):
                s.copy_(v)
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        step, losses, elapsed_before = ckpt["step"], ckpt["losses"], ckpt["elapsed_s"]
        ckpt_parts = [tuple(x) for x in ckpt.get("loss_parts", [])]
        if "previous" in ckpt:
            previous = ckpt["previous"]
        else:  # a checkpoint from before runs kept it
            so_far = {"config": asdict(cfg), "steps": step, "loss_first50": _mean50(losses)}
            previous = without_own_snapshot(previous, so_far)
        accelerator.print(f"resumed {cfg.stage} at step {step}")
    model, opt = accelerator.prepare(model, opt)
    bank = load_bank(source=Path(cfg.data), split="train").to(device)
    n_params = sum(p.numel() for p in trainable)
    accelerator.print(
        f"{cfg.stage}: {len(bank)} images, "
        f"{n_params / 1e6:.2f} M trainable "
        f"parameters, device {device}, precision {mp}"
    )
    budget_s = cfg.time_budget_s - (time.perf_counter() - start)
    loop_start = time.perf_counter()
    last_ckpt = loop_start
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (cfg.progress and accelerator.is_main_process),
        desc=cfg.stage,
        dynamic_ncols=True,
    )
    images_seen = 0
    parts: list[tuple[float, float]] = ckpt_parts  # (velocity, refiner) loss per step

    def save(final: bool) -> None:
        unwrapped = accelerator.unwrap_model(model)
        if not accelerator.is_main_process:
            return
        torch.save(
            {
                "trainable": [p.detach().cpu() for p in trainable],
                "ema": [s.cpu() for s in ema.shadow],
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "step": step,
                "losses": losses,
                "loss_parts": parts,
                "elapsed_s": elapsed_before + time.perf_counter() - loop_start,
                "config": asdict(cfg),
                "previous": previous,
            },
            ckpt_path,
        )
        ema.swap()
        try:
            meta = {"stage": cfg.stage, "step": step}
            if cfg.stage == "base":
                save_weights(
                    unwrapped, out / "model.safetensors", dtype=torch.float32, metadata=meta
                )
            else:
                save_lora(
                    unwrapped,
                    out / "lora.safetensors",
                    rank=cfg.lora_rank,
                    alpha=cfg.lora_alpha,
                    meta=meta,
                )
        finally:
            ema.swap()
        plot_losses(losses, out / "loss.png", title=f"{cfg.stage} training loss")

    step_s = 0.0  # running estimate of one step's duration

    def time_left() -> bool:
        if time.perf_counter() - loop_start + step_s > budget_s:
            return False
        return cfg.deadline_unix is None or time.time() + step_s < cfg.deadline_unix

    while step < cfg.steps and time_left():
        step_start = time.perf_counter()
        g = torch.Generator().manual_seed(
            cfg.seed * 1_000_003 + step * 97 + accelerator.process_index
        )
        rng = np.random.default_rng([cfg.seed, step, accelerator.process_index])
        crop_px = int(rng.choice(cfg.crop_px))
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
        groups = cfg.groups if cfg.stage in POST_TRAINING else 1
        total = v_total = r_total = 0.0
        with accelerator.accumulate(model):
            for chunk_x in x.chunk(groups):
                if cfg.stage in POST_TRAINING:
                    layout = random_layout(
                        rng=rng, image_px=crop_px, patch_px=16, mode_probs=cfg.layout_mix
                    )
                else:
                    layout = full_layout(image_px=crop_px, patch_px=16)
                with accelerator.autocast():
                    loss, v_loss, r_loss = training_loss(
                        model, chunk_x, layout, generator=gd, cfg=cfg
                    )
                accelerator.backward(loss / groups)
                total += float(loss.detach()) / groups
                v_total += float(v_loss) / groups
                r_total += float(r_loss) / groups
            accelerator.clip_grad_norm_(trainable, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        ema.update(step)
        if not math.isfinite(total):
            raise RuntimeError(f"loss is {total} at step {step}")
        losses.append(total)
        parts.append((v_total, r_total))
        dt = time.perf_counter() - step_start
        step_s = dt if step_s == 0.0 else 0.9 * step_s + 0.1 * max(dt, step_s * 0.5)
        step += 1
        images_seen += cfg.batch_size
        bar.update(1)
        if step % 10 == 0:
            recent = np.mean(parts[-50:], axis=0)
            bar.set_postfix(v=f"{recent[0]:.4f}", ref=f"{recent[1]:.5f}", res=crop_px)
        if time.perf_counter() - last_ckpt > cfg.checkpoint_every_s:
            save(final=False)
            last_ckpt = time.perf_counter()
    bar.close()
    loop_s = time.perf_counter() - loop_start
    save(final=True)
    log = {
        "stage": cfg.stage,
        "config": asdict(cfg),
        "steps": step,
        "images_seen_this_run": images_seen,
        "loop_seconds": loop_s,
        "train_seconds_total": elapsed_before + loop_s,
        "steps_per_s": (len(losses) and images_seen / cfg.batch_size / max(loop_s, 1e-9)),
        "loss_first50": _mean50(losses),
        "loss_last50": float(np.mean(losses[-50:])) if losses else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "num_processes": accelerator.num_processes,
        "mixed_precision": mp,
        "tf32": device.type == "cuda",
        "trainable_params": n_params,
        "wall_seconds": time.perf_counter() - start,
        "previous": previous,
    }
    if accelerator.is_main_process:
        (out / "log.json").write_text(json.dumps(log, indent=1))
        (out / "losses.json").write_text(json.dumps({"total": losses, "parts": parts}))
    return log


def _mean50(losses: list[float]) -> float | None:
    """Mean loss of the first 50 steps (a run's fingerprint in lineage.without_own_snapshot;
    numpy's mean, as logs have always had it, so that the floats compare equal)."""
    import numpy as np

    return float(np.mean(losses[:50])) if losses else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.training.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("stage", choices=["base", *POST_TRAINING])
    add_arguments(parser)
    args = parser.parse_args(argv)
    from generator.errors import FoveaError

    try:
        train(config_from_args(args.stage, args), resume=args.resume)
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
