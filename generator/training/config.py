"""Configuration of one training stage (:class:`TrainConfig`), its command-line flags (shared by
``fovea train`` and ``python -m generator.training.train``) and its checks."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from generator.arg_types import seed_int

Stage = Literal["base", "foveated", "detail", "periphery"]
POST_TRAINING = ("foveated",)
STAGES = ("base", *POST_TRAINING, "detail", "periphery")
#: Stages that train a convolutional stage of their own (not the transformer).
CONV_STAGES = ("detail", "periphery")
DEFAULT_LR = {"base": 3e-4, "foveated": 1e-4, "detail": 1e-3, "periphery": 1e-3}


@dataclass
class TrainConfig:
    """One training stage. Sizes in pixels, times in seconds.

    Attributes:
        stage: ``base`` (full-resolution tokens, all weights), ``foveated`` (mixed-resolution
            tokens, LoRA on top of ``init``), ``detail`` (the convolutional detail stage,
            :mod:`generator.models.detail`, on its own: noise prediction at low t) or
            ``periphery`` (:mod:`generator.models.periphery`: regression on pairs).
        data: cache folder or packed ``.npz`` of photographs; for ``periphery``, a folder of
            pairs (:mod:`generator.training.periphery_pairs`).
        out: output folder.
        init: weights to start from: base ``model.safetensors`` (required for post-training) or,
            for ``detail`` / ``periphery``, that stage's ``.safetensors``.
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
        refiner_weight: weight of the refiner's image MSE beside the velocity loss.
        max_zoom_out: crops cover between 1x and this many times crop_px of the source.
        checkpoint_every_s: checkpoint period.
        seed: all randomness derives from it (and the step number).
        model: architecture of a model trained from scratch (``ModelConfig`` fields, or for
            ``detail`` / ``periphery`` ``DetailConfig`` / ``PeripheryConfig`` fields; the rest
            default); a run with ``init`` takes the
            architecture stored in that file.
        mixed_precision: accelerate's setting (``no``, ``bf16``, ``fp16``); ``auto`` is ``no``:
            float32 with TF32 matmuls on CUDA (bf16's backward crashed in cuBLAS on an H200,
            torch 2.11), so bf16 is opt-in.
        progress: tqdm bar.
        deadline_unix: absolute wall-clock deadline (``time.time()``); no step starts that would
            end after it (so start-up time counts against a job's budget).
    """

    stage: Stage = "base"
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
    # Most weight on low noise, where fine detail is formed: the scene already fixes the coarse
    # content that high-noise steps decide.
    t_mean: float = -0.6
    t_std: float = 1.0
    t_min: float = 0.05
    refiner_weight: float = 4.0
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
    parser.add_argument(
        "--data",
        default=d.data,
        help="cache folder or packed .npz of photographs (periphery: the pairs folder)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--init",
        default=None,
        help="weights to start from: the base model.safetensors (foveated: required), or for "
        "detail and periphery that stage's .safetensors",
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
    parser.add_argument(
        "--crop-px",
        type=int,
        nargs="+",
        default=d.crop_px,
        help=f"crop sides, px, one drawn per step (default: {' '.join(map(str, d.crop_px))})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"crops per step and process (default: {d.batch_size})",
    )
    parser.add_argument(
        "--groups",
        type=int,
        default=d.groups,
        help=f"foveated: layouts per step, the batch split among them (default: {d.groups})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=d.steps,
        help=f"step limit; training stops at it or at --time-budget-s (default: {d.steps})",
    )
    parser.add_argument(
        "--time-budget-s",
        type=float,
        default=d.time_budget_s,
        help=f"wall-clock limit, s (default: {d.time_budget_s:g})",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="default: 3e-4 base, 1e-4 foveated, 1e-3 detail and periphery",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=d.warmup_steps,
        help=f"linear learning-rate warm-up, steps (default: {d.warmup_steps})",
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=d.ema_decay,
        help=f"decay of the weights' moving average, which is what is saved (default: "
        f"{d.ema_decay:g})",
    )
    parser.add_argument(
        "--t-mean",
        type=float,
        default=d.t_mean,
        help="logit-normal time distribution's mean (1 = noise; lower trains more on fine detail)",
    )
    parser.add_argument(
        "--t-std",
        type=float,
        default=d.t_std,
        help=f"logit-normal time distribution's spread (default: {d.t_std:g})",
    )
    parser.add_argument(
        "--max-zoom-out",
        type=float,
        default=d.max_zoom_out,
        help="crops cover between 1x and this many times --crop-px of the photograph",
    )
    parser.add_argument(
        "--lora-rank",
        type=int,
        default=d.lora_rank,
        help=f"foveated: the LoRA's rank (default: {d.lora_rank})",
    )
    parser.add_argument(
        "--checkpoint-every-s",
        type=float,
        default=d.checkpoint_every_s,
        help=f"seconds between checkpoints that --resume continues from (default: "
        f"{d.checkpoint_every_s:g})",
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=d.seed,
        help=f"all randomness derives from it and the step (default: {d.seed})",
    )
    parser.add_argument(
        "--model-json",
        default=None,
        help="architecture of a model trained from scratch: ModelConfig fields (detail, "
        "periphery: DetailConfig, PeripheryConfig), e.g. '{\"single_blocks\": 4}'",
    )
    parser.add_argument(
        "--mixed-precision",
        default=d.mixed_precision,
        choices=["auto", "no", "bf16", "fp16"],
        help=f"accelerate's number format (default: {d.mixed_precision}: float32, with TF32 "
        "matmuls on CUDA; bf16 is opt-in, its backward crashed in cuBLAS on an H200)",
    )
    parser.add_argument(
        "--deadline-unix",
        type=float,
        default=None,
        help="absolute time.time() after which no step starts",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(stage: str, args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        stage=stage,
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
        lr=args.lr if args.lr is not None else DEFAULT_LR[stage],
        warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay,
        t_mean=args.t_mean,
        t_std=args.t_std,
        max_zoom_out=args.max_zoom_out,
        lora_rank=args.lora_rank,
        lora_alpha=float(args.lora_rank),
        checkpoint_every_s=args.checkpoint_every_s,
        seed=args.seed,
        model=parse_model_json(args.model_json),
        mixed_precision=args.mixed_precision,
        progress=not args.no_progress,
        deadline_unix=args.deadline_unix,
    )


def parse_model_json(text: str | None) -> dict:
    """``--model-json``: a JSON object of ``ModelConfig`` fields (None: {})."""
    from generator.errors import FoveaError

    if not text:
        return {}
    try:
        model = json.loads(text)
    except json.JSONDecodeError as error:
        raise FoveaError(f"--model-json is not valid JSON ({error.msg}): {text!r}") from None
    if not isinstance(model, dict):
        raise FoveaError(f"--model-json must be a JSON object of ModelConfig fields, got {text!r}")
    return model


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


def validate(cfg: TrainConfig) -> None:
    """Raise FoveaError for a configuration that cannot run (missing files, bad sizes)."""
    from generator.errors import FoveaError

    if cfg.stage not in STAGES:
        raise FoveaError(f"training stage must be one of {', '.join(STAGES)}, got {cfg.stage!r}")
    if cfg.stage in POST_TRAINING and not cfg.init:
        raise FoveaError(f"{cfg.stage} post-training needs --init (the base model.safetensors)")
    if cfg.init_lora and cfg.stage in POST_TRAINING:
        _check_init_file("--init-lora", cfg.init_lora, ("lora", "default-foveated-lora"))
    if cfg.init_lora and (cfg.stage not in POST_TRAINING or not Path(cfg.init_lora).is_file()):
        raise FoveaError(f"--init-lora {cfg.init_lora}: a post-training stage and an existing file")
    if cfg.init:
        own = {"detail": "detail", "periphery": "periphery"}.get(cfg.stage, "model")
        shipped = {"model": "default-base"}.get(own, f"default-{own}")
        _check_init_file("--init", cfg.init, (own, shipped))
    if cfg.lr is not None and not cfg.lr > 0:
        raise FoveaError(f"--lr must be positive, got {cfg.lr!r}")
    _check_numbers(cfg)
    if cfg.stage == "periphery" and not Path(cfg.data).is_dir():
        raise FoveaError(
            f"periphery training takes --data PAIRS_FOLDER (from `fovea train pairs`), "
            f"got {cfg.data}"
        )
    factor = _check_model(cfg)
    for px in cfg.crop_px:
        if px % 16 or px < 32:
            raise FoveaError(f"--crop-px {px} must be a multiple of 16 and at least 32")
        if px % factor:
            raise FoveaError(f"--crop-px {px} must be a multiple of the scene factor {factor}")
    if cfg.batch_size < 1:
        raise FoveaError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.stage in POST_TRAINING and cfg.batch_size < cfg.groups:  # one layout per group
        raise FoveaError(f"--batch-size {cfg.batch_size} must be >= --groups {cfg.groups}")
    if cfg.layout_mix and cfg.stage not in POST_TRAINING:
        raise FoveaError(f"--layout-mix is for foveated post-training; {cfg.stage} has no layouts")


def _check_init_file(flag: str, value: str, names: tuple[str, ...]) -> None:
    """``value`` must be a file; a folder (a run's ``--out``, a weights folder) is refused with
    the file of ``names`` (``<name>.safetensors``) inside it, when there is one."""
    from generator.errors import FoveaError

    path = Path(value)
    if path.is_file():
        return
    if not path.is_dir():
        raise FoveaError(f"{flag} {value} does not exist")
    inside = [path / f"{n}.safetensors" for n in names if (path / f"{n}.safetensors").is_file()]
    hint = f": give the weights file, {flag} {inside[0]}" if inside else ": give a weights file"
    raise FoveaError(f"{flag} {value} is a folder{hint}")


def _check_numbers(cfg: TrainConfig) -> None:
    """Counts, times and distribution settings in range (finite, NaN refused): a run that cannot
    make a step, or whose EMA or time draw diverges, would save weights that are not a model."""
    import math

    from generator.errors import FoveaError

    checks = (
        ("--steps", cfg.steps, cfg.steps >= 1, "at least 1"),
        ("--time-budget-s", cfg.time_budget_s, cfg.time_budget_s > 0, "positive"),
        ("--groups", cfg.groups, cfg.groups >= 1, "at least 1"),
        ("--warmup-steps", cfg.warmup_steps, cfg.warmup_steps >= 0, "0 or more"),
        ("--ema-decay", cfg.ema_decay, 0 <= cfg.ema_decay < 1, "in [0, 1), e.g. 0.999"),
        ("--t-mean", cfg.t_mean, math.isfinite(cfg.t_mean), "a finite number"),
        ("--t-std", cfg.t_std, 0 < cfg.t_std < math.inf, "positive"),
        ("--max-zoom-out", cfg.max_zoom_out, 1 <= cfg.max_zoom_out < math.inf, "at least 1"),
        ("--lora-rank", cfg.lora_rank, cfg.lora_rank >= 1, "at least 1"),
        ("--checkpoint-every-s", cfg.checkpoint_every_s, cfg.checkpoint_every_s > 0, "positive"),
    )
    for flag, value, ok, what in checks:
        if not ok:
            raise FoveaError(f"{flag} must be {what}, got {value!r}")


def _check_model(cfg: TrainConfig) -> int:
    """Check ``cfg.model`` (``--model-json``) against ``ModelConfig``; returns the scene factor
    of a model built from it (that of the ``--init`` file is checked when it is loaded)."""
    from dataclasses import fields

    from generator.errors import FoveaError
    from generator.models.default import ModelConfig
    from generator.models.detail import DetailConfig
    from generator.models.periphery import PeripheryConfig

    if cfg.model and cfg.init:
        raise FoveaError("--model-json sets a new model's architecture; --init loads one from file")
    architecture = {"detail": DetailConfig, "periphery": PeripheryConfig}.get(
        cfg.stage, ModelConfig
    )
    known = {f.name for f in fields(architecture)}
    unknown = sorted(set(cfg.model) - known)
    if unknown:
        raise FoveaError(
            f"--model-json: unknown {architecture.__name__} field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    if cfg.stage in CONV_STAGES:
        return 1  # the conv stages work on crops of any scene factor
    model = ModelConfig.from_dict(cfg.model)
    if sum(model.rope_axes) != model.head_dim:
        raise FoveaError(
            f"--model-json: rope_axes {list(model.rope_axes)} add up to {sum(model.rope_axes)}, "
            f"not head_dim {model.head_dim}"
        )
    if model.scene_conditioning not in ("channels", "reference"):
        raise FoveaError(
            f"--model-json: scene_conditioning must be 'channels' or 'reference', "
            f"got {model.scene_conditioning!r}"
        )
    if model.scene_factor < 1:
        raise FoveaError(f"--model-json: scene_factor must be >= 1, got {model.scene_factor}")
    return model.scene_factor if not cfg.init else 1
