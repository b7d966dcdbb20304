"""What a training run keeps on disk between its steps: ``OUT/checkpoint.pt`` (parameters, EMA,
optimiser, schedule, losses, lineage) and the weights it has so far (base: ``model.safetensors``;
post-training: ``lora.safetensors``; detail: ``detail.safetensors``; periphery:
``periphery.safetensors``), plus ``loss.png``. ``--resume`` reads the checkpoint back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generator.atomic import replace_atomically
from generator.training.config import TrainConfig
from generator.training.objective import Ema


@dataclass
class TrainedParts:
    """What the optimiser works on: the model (wrapped by accelerate once prepared), its trainable
    parameters, optimiser, warm-up schedule and their moving average."""

    model: Any
    trainable: list
    opt: Any
    sched: Any
    ema: Ema


@dataclass
class Progress:
    """What the run has done so far; the checkpoint stores it and ``--resume`` restores it.

    Attributes:
        step: steps done (all runs of this OUT).
        losses: total loss per step.
        parts: (velocity, refiner) loss per step.
        elapsed_before_s: training seconds of the earlier runs of this OUT.
        previous: the earlier runs' record (``lineage.starting_record``).
        base_sha256: post-training: the hash of the base it trains on (``lineage.base_sha256``).
    """

    previous: dict
    base_sha256: str | None = None
    step: int = 0
    losses: list[float] = field(default_factory=list)
    parts: list[tuple[float, float]] = field(default_factory=list)
    elapsed_before_s: float = 0.0


def load_checkpoint(
    ckpt_path: Path, run: TrainedParts, progress: Progress, cfg: TrainConfig
) -> None:
    """Restore the parameters, EMA, optimiser, schedule and ``progress`` from ``ckpt_path``."""
    import torch

    from generator.errors import FoveaError
    from generator.training.lineage import without_own_snapshot

    ckpt = _read_checkpoint(ckpt_path)
    _check_same_settings(ckpt_path, ckpt.get("config") or {}, asdict(cfg))
    saved_base = ckpt.get("base_sha256")
    if saved_base and progress.base_sha256 and saved_base != progress.base_sha256:
        raise FoveaError(
            f"--init {cfg.init} is not the base that the run in {ckpt_path.parent} started on "
            "(it changed since: a base run continued into that file?); post-train the new base "
            "in another --out"
        )
    with torch.no_grad():
        for p, v in zip(run.trainable, ckpt["trainable"], strict=True):
            p.copy_(v)
        for s, v in zip(run.ema.shadow, ckpt["ema"], strict=True):
            s.copy_(v)
    run.opt.load_state_dict(ckpt["opt"])
    run.sched.load_state_dict(ckpt["sched"])
    progress.step, progress.losses = ckpt["step"], ckpt["losses"]
    progress.elapsed_before_s = ckpt["elapsed_s"]
    progress.parts = [tuple(x) for x in ckpt.get("loss_parts", [])]
    if "previous" in ckpt:
        progress.previous = ckpt["previous"]
    else:  # a checkpoint from before runs kept it
        so_far = {
            "config": asdict(cfg),
            "steps": progress.step,
            "loss_first50": mean_first50(progress.losses),
        }
        progress.previous = without_own_snapshot(progress.previous, so_far)


def _read_checkpoint(ckpt_path: Path) -> dict:
    """``torch.load`` of a run's checkpoint; a file cut short or not a checkpoint (a copy from
    another machine that did not finish) is a one-line error (it is written atomically here)."""
    import pickle

    import torch

    from generator.errors import FoveaError

    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        if isinstance(error, PermissionError | FileNotFoundError):
            raise  # not a broken file: the fovea command names the path
        ckpt = None
        reason = f"{type(error).__name__}: {error}"
    else:
        reason = "not a dict of a run's state"
    if not isinstance(ckpt, dict) or "step" not in ckpt:
        raise FoveaError(
            f"{ckpt_path} is not a readable training checkpoint ({reason}; a copy cut short?): "
            "copy it again, or start a new run in another --out"
        )
    return ckpt


#: The weights file (``<name>.safetensors``) a training run writes, per stage.
RUN_WEIGHTS = {"base": "model", "foveated": "lora", "detail": "detail", "periphery": "periphery"}


#: Settings a resumed run may change: where and how long it runs, not what it trains.
RESUMABLE_CHANGES = (
    "out",
    "steps",
    "time_budget_s",
    "deadline_unix",
    "checkpoint_every_s",
    "progress",
)


def _check_same_settings(ckpt_path: Path, saved: dict, now: dict) -> None:
    """Refuse to resume a checkpoint with other training settings: the optimiser's state would
    keep the checkpoint's learning rate (``--lr`` ignored), another stage or architecture does
    not fit its tensors, and the log (and the model card's reproduce command) would state the
    new settings for every step. Paths compare as the files they name."""
    from generator.data.images import resolve_source
    from generator.errors import FoveaError

    def same(key: str, a, b) -> bool:
        if key in ("data", "init", "init_lora") and a and b:
            return resolve_source(a).resolve() == resolve_source(b).resolve()
        if key == "mixed_precision":  # auto is no (float32)
            return {"auto": "no"}.get(a, a) == {"auto": "no"}.get(b, b)
        if key == "crop_px":
            return list(a or []) == list(b or [])
        return a == b

    changed = [
        key
        for key in saved
        if key in now and key not in RESUMABLE_CHANGES and not same(key, saved[key], now[key])
    ]
    if not changed:
        return
    flags = {"stage": "stage", "model": "--model-json"}
    diff = "; ".join(
        f"{flags.get(k, '--' + k.replace('_', '-'))} {_shown(saved[k])} there, {_shown(now[k])} now"
        for k in changed
    )
    raise FoveaError(
        f"{ckpt_path} was saved by a run with other settings ({diff}): --resume continues it "
        "with its own flags (only --steps, --time-budget-s, --deadline-unix and "
        "--checkpoint-every-s may change); other settings need another --out"
    )


def _shown(value) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def save_run(
    accelerator,
    run: TrainedParts,
    progress: Progress,
    cfg: TrainConfig,
    *,
    out: Path,
    elapsed_s: float,
) -> None:
    """Write OUT/checkpoint.pt, the EMA weights (base: ``model.safetensors``; post-training:
    ``lora.safetensors``; detail: ``detail.safetensors``; periphery: ``periphery.safetensors``)
    and ``loss.png``; only the main process writes."""
    import torch

    from generator.models.weights_io import save_detail, save_periphery, save_weights
    from generator.training.lora_io import save_lora
    from generator.training.plots import plot_losses

    unwrapped = accelerator.unwrap_model(run.model)
    if not accelerator.is_main_process:
        return
    state = {
        "trainable": [p.detach().cpu() for p in run.trainable],
        "ema": [s.cpu() for s in run.ema.shadow],
        "opt": run.opt.state_dict(),
        "sched": run.sched.state_dict(),
        "step": progress.step,
        "losses": progress.losses,
        "loss_parts": progress.parts,
        "elapsed_s": elapsed_s,
        "config": asdict(cfg),
        "previous": progress.previous,
        "base_sha256": progress.base_sha256,
    }
    replace_atomically(out / "checkpoint.pt", lambda path: torch.save(state, path))
    meta = {"stage": cfg.stage, "step": progress.step}

    def write_weights(path: Path) -> None:
        if cfg.stage == "base":
            save_weights(unwrapped, path, dtype=torch.float32, metadata=meta)
        elif cfg.stage == "detail":
            save_detail(unwrapped, path, dtype=torch.float32, metadata=meta)
        elif cfg.stage == "periphery":
            save_periphery(unwrapped, path, dtype=torch.float32, metadata=meta)
        else:
            save_lora(unwrapped, path, rank=cfg.lora_rank, alpha=cfg.lora_alpha, meta=meta)

    run.ema.swap()
    try:
        replace_atomically(out / f"{RUN_WEIGHTS[cfg.stage]}.safetensors", write_weights)
    finally:
        run.ema.swap()
    plot_losses(
        progress.losses, out / "loss.png", title=f"{cfg.stage} training loss", stage=cfg.stage
    )


def mean_first50(losses: list[float]) -> float | None:
    """Mean loss of the first 50 steps (a run's fingerprint in lineage.without_own_snapshot;
    numpy's mean, as logs have always had it, so that the floats compare equal)."""
    import numpy as np

    return float(np.mean(losses[:50])) if losses else None
