"""Train the default model: ``base`` on full-resolution tokens, ``foveated`` post-training (LoRA)
on mixed-resolution tokens built from the same crops, or ``consistency`` post-training (LoRA) on
teacher pairs (``generator.training.teacher``): the foveated tokens of a seed's noise are trained
to flow to the tokens of the base model's full-resolution image of that seed.

Runs single-process on a CPU or under ``accelerate launch`` on one or several GPUs::

    accelerate launch -m generator.training.train base --data generator/data/photos-1024.npz \\
        --out runs/base --time-budget-s 3600
    accelerate launch -m generator.training.train foveated --init runs/base/model.safetensors \\
        --data generator/data/photos-1024.npz --out runs/foveated --time-budget-s 1800

Objective (JiT, "Back to Basics", 2025): the network predicts the clean tokens ``x``; the loss is
the velocity MSE with ``v_hat = (z_t - x_hat) / max(t, t_min)``, ``z_t = (1 - t) x + t noise``,
``t`` logit-normal. Training stops at ``--steps`` or when ``--time-budget-s`` is spent, whichever
is first, and always saves what it has. ``--resume`` continues from ``OUT/checkpoint.pt``.
Outputs in OUT: ``model.safetensors`` (base: EMA weights) or ``lora.safetensors`` (foveated),
``loss.png``, ``log.json``, ``checkpoint.pt``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Stage = Literal["base", "foveated", "consistency"]
POST_TRAINING = ("foveated", "consistency")
LORA_TARGETS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "add_q_proj",
    "add_k_proj",
    "add_v_proj",
    "to_add_out",
    "proj_mlp",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
    "linear",
    "x_embedder",
)


@dataclass
class TrainConfig:
    """One training stage. Sizes in pixels, times in seconds.

    Attributes:
        stage: ``base`` (full-resolution tokens, all weights) or ``foveated`` (mixed-resolution
            tokens, LoRA on top of ``init``).
        data: cache folder or packed ``.npz`` of photographs.
        out: output folder.
        init: base weights (``model.safetensors``) to start from; required for post-training.
        pairs: consistency: teacher-pair ``.npz`` files (``generator.training.teacher``).
        pair_weights: consistency: how often each pairs file is drawn (default: by its size).
        init_lora: post-training: start the LoRA from this adapter (same rank), e.g. the shipped
            one, instead of from scratch.
        layout_mix: post-training: probability of each layout mode (``acuity``, ``circle``,
            ``full``); empty means ``layouts.MODE_PROBS``. Full grids of 1024 px crops cost a
            CPU step many times over, so a 1024 px run may draw them less often.
        crop_px: crop sides to train on (one drawn per step).
        batch_size: crops per step (per process).
        groups: foveated: layouts per step (the batch is split, one layout per group).
        steps: step limit; time_budget_s: wall-clock limit (whichever comes first).
        lr, weight_decay, warmup_steps: AdamW settings (linear warm-up, then constant).
        ema_decay: EMA of the trainable weights (what is saved), with a 1/(step+10) warm-up.
        lora_rank, lora_alpha: foveated LoRA.
        t_mean, t_std, t_min: logit-normal time distribution (1 = noise) and the x->v clamp.
        class_dropout: fraction of crops trained unconditional (null class).
        max_zoom_out: crops cover between 1x and this many times crop_px of the source.
        checkpoint_every_s: checkpoint period.
        seed: all randomness derives from it (and the step number).
        model: architecture overrides for base training (ModelConfig fields).
        mixed_precision: accelerate's setting (``no``, ``bf16``, ``fp16``); ``auto`` picks bf16
            on CUDA and no on CPU.
        progress: tqdm bar.
        deadline_unix: absolute wall-clock deadline (``time.time()``); no step starts that would
            end after it (so start-up time counts against a job's budget).
    """

    stage: Stage = "base"
    pairs: list[str] = field(default_factory=list)
    pair_weights: list[float] = field(default_factory=list)
    init_lora: str | None = None
    layout_mix: dict[str, float] = field(default_factory=dict)
    data: str = "generator/data/photos-1024.npz"
    out: str = "runs/base"
    init: str | None = None
    crop_px: list[int] = field(default_factory=lambda: [256])
    batch_size: int = 16
    groups: int = 2
    steps: int = 100_000
    time_budget_s: float = 600.0
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 200
    ema_decay: float = 0.999
    lora_rank: int = 32
    lora_alpha: float = 32.0
    t_mean: float = 0.8
    t_std: float = 0.8
    t_min: float = 0.05
    class_dropout: float = 0.1
    max_zoom_out: float = 4.0
    checkpoint_every_s: float = 300.0
    seed: int = 0
    model: dict = field(default_factory=dict)
    mixed_precision: str = "auto"
    progress: bool = True
    deadline_unix: float | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line flags of :class:`TrainConfig` (shared by ``fovea train`` and ``-m``)."""
    d = TrainConfig()
    parser.add_argument("--data", default=d.data, help="cache folder or packed .npz of photographs")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--init", default=None, help="base model.safetensors (post-training)")
    parser.add_argument("--pairs", nargs="+", default=[], help="teacher pairs (consistency)")
    parser.add_argument(
        "--pair-weights",
        type=float,
        nargs="+",
        default=[],
        help="relative draw frequency of each --pairs file (default: by its number of pairs)",
    )
    parser.add_argument(
        "--init-lora", default=None, help="post-training: start from this LoRA (same rank)"
    )
    parser.add_argument(
        "--layout-mix",
        nargs="+",
        default=[],
        metavar="MODE=P",
        help="post-training layout modes drawn with these weights, e.g. acuity=0.8 circle=0.15 "
        "full=0.05 (default: acuity=0.6 circle=0.25 full=0.15)",
    )
    parser.add_argument("--crop-px", type=int, nargs="+", default=d.crop_px)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--groups", type=int, default=d.groups)
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--time-budget-s", type=float, default=d.time_budget_s)
    parser.add_argument("--lr", type=float, default=None, help="default: 3e-4 base, 1e-4 foveated")
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay)
    parser.add_argument("--lora-rank", type=int, default=d.lora_rank)
    parser.add_argument("--checkpoint-every-s", type=float, default=d.checkpoint_every_s)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--model-json", default=None, help="JSON of ModelConfig overrides (base)")
    parser.add_argument(
        "--mixed-precision", default=d.mixed_precision, choices=["auto", "no", "bf16", "fp16"]
    )
    parser.add_argument(
        "--deadline-unix",
        type=float,
        default=None,
        help="absolute time.time() after which no step starts",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true")


def config_from_args(stage: str, args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        stage=stage,
        pairs=list(args.pairs),
        pair_weights=list(args.pair_weights),
        init_lora=args.init_lora,
        layout_mix=parse_layout_mix(args.layout_mix),
        data=args.data,
        out=args.out,
        init=args.init,
        crop_px=list(args.crop_px),
        batch_size=args.batch_size,
        groups=args.groups,
        steps=args.steps,
        time_budget_s=args.time_budget_s,
        lr=args.lr if args.lr is not None else (3e-4 if stage == "base" else 1e-4),
        warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay,
        lora_rank=args.lora_rank,
        lora_alpha=float(args.lora_rank),
        checkpoint_every_s=args.checkpoint_every_s,
        seed=args.seed,
        model=json.loads(args.model_json) if args.model_json else {},
        mixed_precision=args.mixed_precision,
        progress=not args.no_progress,
        deadline_unix=args.deadline_unix,
    )


def parse_layout_mix(items: list[str]) -> dict[str, float]:
    """``["acuity=0.8", "full=0.2"]`` -> ``{"acuity": 0.8, "full": 0.2}`` (modes left out: 0)."""
    from generator.errors import FoveaError
    from generator.training.layouts import MODE_PROBS

    mix = {}
    for item in items:
        mode, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or mode not in MODE_PROBS or not weight >= 0:
            raise FoveaError(
                f"--layout-mix takes MODE=WEIGHT with MODE in {', '.join(MODE_PROBS)} and "
                f"WEIGHT >= 0, got {item!r}"
            )
        mix[mode] = weight
    if mix and sum(mix.values()) <= 0:
        raise FoveaError("--layout-mix: the weights add up to 0")
    return mix


def _validate(cfg: TrainConfig) -> None:
    from generator.errors import FoveaError

    if cfg.stage not in ("base", *POST_TRAINING):
        raise FoveaError(
            f"training stage must be 'base', 'foveated' or 'consistency', got {cfg.stage!r}"
        )
    if cfg.stage in POST_TRAINING and not cfg.init:
        raise FoveaError(f"{cfg.stage} post-training needs --init (the base model.safetensors)")
    if cfg.stage == "consistency" and not cfg.pairs:
        raise FoveaError("consistency post-training needs --pairs (made by `fovea train teacher`)")
    for path in cfg.pairs:
        if not Path(path).is_file():
            raise FoveaError(f"--pairs {path} does not exist")
    if cfg.pair_weights and len(cfg.pair_weights) != len(cfg.pairs):
        raise FoveaError(
            f"--pair-weights has {len(cfg.pair_weights)} values for {len(cfg.pairs)} --pairs files"
        )
    if cfg.init_lora and (cfg.stage not in POST_TRAINING or not Path(cfg.init_lora).is_file()):
        raise FoveaError(f"--init-lora {cfg.init_lora}: a post-training stage and an existing file")
    if cfg.init and not Path(cfg.init).is_file():
        raise FoveaError(f"--init {cfg.init} does not exist")
    for px in cfg.crop_px:
        if px % 16 or px < 32:
            raise FoveaError(f"--crop-px {px} must be a multiple of 16 and at least 32")
    if cfg.batch_size < cfg.groups or cfg.batch_size < 1:
        raise FoveaError(f"--batch-size {cfg.batch_size} must be >= --groups {cfg.groups} and >= 1")


def sample_times(n: int, *, generator, mean: float, std: float, device):
    """Logit-normal t in (0, 1), 1 = noise (JiT's P_mean = -0.8 in its t=1-is-clean convention)."""
    import torch

    z = torch.randn(n, generator=generator, device=generator.device)
    return torch.sigmoid(mean + std * z).to(device)


def training_loss(model, x, classes, layout, *, generator, cfg: TrainConfig, noise=None):
    """JiT v-loss of one micro-batch on one layout.

    Args:
        model: DefaultModel (possibly wrapped by accelerate).
        x: (B, 3, H, W) clean crops in [-1, 1].
        classes: (B,) class ids (null class already applied).
        layout: token layout of an H x W image.
        noise: (B, 3, H, W) noise coupled to ``x`` (teacher pairs); None draws fresh noise.
    """
    import torch

    from generator.denoiser import layout_ids
    from generator.tokens import pack

    p = 16
    device = x.device
    # Noise from a generator on x's device: drawing 50 M normals per step on the CPU would
    # dominate a GPU step.
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, device=generator.device).to(device)
    x_tok = pack(x, layout, p=p)
    n_tok = pack(noise, layout, p=p, noise=True)
    t = sample_times(x.shape[0], generator=generator, mean=cfg.t_mean, std=cfg.t_std, device=device)
    tb = t[:, None, None]
    z = (1 - tb) * x_tok + tb * n_tok
    img_ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32, device=device)
    txt_ids = torch.zeros(1, 3, device=device)
    x_hat = model(z, img_ids=img_ids, txt_ids=txt_ids, t=t, class_ids=classes).float()
    denom = tb.clamp_min(cfg.t_min)
    v_hat = (z - x_hat) / denom
    v = (z - x_tok) / denom  # = noise - x where t >= t_min (the same clamp keeps targets finite)
    return torch.mean((v_hat - v) ** 2)


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
    from generator.models.default import DefaultModel, ModelConfig, load_model, save_weights
    from generator.training.layouts import full_layout, random_layout
    from generator.training.plots import plot_losses

    _validate(cfg)
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
        from peft import LoraConfig

        for p in model.parameters():
            p.requires_grad_(False)
        model.transformer.add_adapter(
            LoraConfig(
                r=cfg.lora_rank,
                lora_alpha=cfg.lora_alpha,
                init_lora_weights="gaussian",
                target_modules=list(LORA_TARGETS),
            )
        )
        if cfg.init_lora:
            _load_lora(model, Path(cfg.init_lora), rank=cfg.lora_rank)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps))
    )
    model.to(device)
    ema = Ema(trainable, cfg.ema_decay)
    step, losses, elapsed_before = 0, [], 0.0
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
        accelerator.print(f"resumed {cfg.stage} at step {step}")
    model, opt = accelerator.prepare(model, opt)
    if cfg.stage == "consistency":
        from generator.training.teacher import TeacherPairs

        bank = TeacherPairs(cfg.pairs, weights=cfg.pair_weights or None)
    else:
        bank = load_bank(source=Path(cfg.data), split="train").to(device)
    n_params = sum(p.numel() for p in trainable)
    accelerator.print(
        f"{cfg.stage}: {len(bank)} {'pairs' if cfg.stage == 'consistency' else 'images'}, "
        f"{n_params / 1e6:.2f} M trainable "
        f"parameters, device {device}, precision {mp}"
    )
    null_class = accelerator.unwrap_model(model).config_.null_class
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
                "elapsed_s": elapsed_before + time.perf_counter() - loop_start,
                "config": asdict(cfg),
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
                _save_lora(unwrapped, out / "lora.safetensors", cfg, meta)
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
        noise = None
        if cfg.stage == "consistency":
            x, noise, classes, crop_px = bank.batch(rng=rng, count=cfg.batch_size, device=device)
        else:
            crop_px = int(rng.choice(cfg.crop_px))
            x, classes = random_crops(
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
        # Teacher pairs were generated with their class: no dropout there.
        dropout = 0.0 if cfg.stage == "consistency" else cfg.class_dropout
        drop = torch.rand(cfg.batch_size, generator=g).to(device) < dropout
        classes = torch.where(drop, torch.full_like(classes, null_class), classes)
        groups = cfg.groups if cfg.stage in POST_TRAINING else 1
        noise_chunks = noise.chunk(groups) if noise is not None else [None] * groups
        total = 0.0
        with accelerator.accumulate(model):
            for chunk_x, chunk_c, chunk_n in zip(
                x.chunk(groups), classes.chunk(groups), noise_chunks, strict=True
            ):
                if cfg.stage in POST_TRAINING:
                    layout = random_layout(
                        rng=rng, image_px=crop_px, patch_px=16, mode_probs=cfg.layout_mix
                    )
                else:
                    layout = full_layout(image_px=crop_px, patch_px=16)
                with accelerator.autocast():
                    loss = training_loss(
                        model, chunk_x, chunk_c, layout, generator=gd, cfg=cfg, noise=chunk_n
                    )
                accelerator.backward(loss / groups)
                total += float(loss.detach()) / groups
            accelerator.clip_grad_norm_(trainable, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        ema.update(step)
        if not math.isfinite(total):
            raise RuntimeError(f"loss is {total} at step {step}")
        losses.append(total)
        dt = time.perf_counter() - step_start
        step_s = dt if step_s == 0.0 else 0.9 * step_s + 0.1 * max(dt, step_s * 0.5)
        step += 1
        images_seen += cfg.batch_size
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", res=crop_px)
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
        "loss_first50": float(np.mean(losses[:50])) if losses else None,
        "loss_last50": float(np.mean(losses[-50:])) if losses else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "num_processes": accelerator.num_processes,
        "mixed_precision": mp,
        "trainable_params": n_params,
        "wall_seconds": time.perf_counter() - start,
    }
    if accelerator.is_main_process:
        (out / "log.json").write_text(json.dumps(log, indent=1))
        (out / "losses.json").write_text(json.dumps(losses))
    return log


def _load_lora(model, path: Path, *, rank: int) -> None:
    """Copy a saved adapter (``_save_lora``'s format) into the model's fresh peft adapter."""
    from peft import set_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import load_file

    from generator.errors import FoveaError

    with safe_open(str(path), framework="pt") as f:
        saved_rank = int((f.metadata() or {}).get("rank", rank))
    if saved_rank != rank:
        raise FoveaError(f"--init-lora {path} has rank {saved_rank}, --lora-rank is {rank}")
    state = {k.removeprefix("transformer."): v.float() for k, v in load_file(str(path)).items()}
    result = set_peft_model_state_dict(model.transformer, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise FoveaError(f"--init-lora {path} does not fit this model: {unexpected[:3]} ...")


def _save_lora(model, path: Path, cfg: TrainConfig, meta: dict) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = get_peft_model_state_dict(model.transformer)
    state = {f"transformer.{k}": v.detach().cpu().float().contiguous() for k, v in state.items()}
    metadata = {"lora_scale": str(cfg.lora_alpha / cfg.lora_rank), "rank": str(cfg.lora_rank)}
    metadata.update({k: str(v) for k, v in meta.items()})
    save_file(state, str(path), metadata=metadata)


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
