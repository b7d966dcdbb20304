"""A small autoencoder trained here: the latent space the default model could have used instead of
pixels (``fovea bench latent`` compares the two).

The architecture is diffusers' ``AutoencoderKL`` (the SD/FLUX VAE layout, small widths, no
attention) or ``AutoencoderTiny`` (TAESD's layout), built from a config, never downloaded (see
:class:`AeConfig`): ``factor`` px per latent cell (8: 1024 px -> 128 x 128 latents, 2 x 2 cells per
16 px token; 16: 64 x 64 latents, 1 cell per token) with ``latent_channels`` channels. It is
trained from scratch on the project's photographs (random multi-scale crops,
``generator.data.images``) with an L1 + MSE + chroma-L1 reconstruction loss, AdamW with a linear
warm-up and a cosine decay over the step or time budget, whichever ends first::

    python -m generator.training.autoencoder --out runs/ae --time-budget-s 1080

Outputs in OUT: ``autoencoder.safetensors`` (fp32, config in its metadata) and ``log.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from generator.atomic import replace_atomically, write_atomic
from generator.data.images import DEFAULT_PACK, load_bank, random_crops
from generator.errors import FoveaError

WEIGHTS_FILE = "autoencoder.safetensors"


@dataclass(frozen=True)
class AeConfig:
    """Autoencoder architecture.

    Attributes:
        kind: ``tiny`` (diffusers ``AutoencoderTiny``, TAESD's layout: ReLU conv blocks, ``width``
            channels in every stage) or ``kl`` (``AutoencoderKL`` as in SD/FLUX, GroupNorm + SiLU
            ResNet blocks, widths ``width`` then ``2 * width``, no mid-block attention; used as a
            deterministic autoencoder: the latent is the posterior mean).
        factor: image px per latent cell (a power of 2); latent_channels: channels per cell.
    """

    kind: str = "kl"
    factor: int = 8
    latent_channels: int = 4
    width: int = 16

    @property
    def stages(self) -> int:
        return int(math.log2(self.factor)) + 1

    def build(self):
        from diffusers import AutoencoderKL, AutoencoderTiny

        if self.factor < 2 or self.factor & (self.factor - 1):
            raise FoveaError(f"factor must be a power of 2 >= 2, got {self.factor}")
        n, w = self.stages, self.width
        if self.kind == "tiny":
            return AutoencoderTiny(
                encoder_block_out_channels=(w,) * n,
                decoder_block_out_channels=(w,) * n,
                num_encoder_blocks=(1,) + (3,) * (n - 1),
                num_decoder_blocks=(3,) * (n - 1) + (1,),
                latent_channels=self.latent_channels,
            )
        if self.kind == "kl":
            return AutoencoderKL(
                down_block_types=("DownEncoderBlock2D",) * n,
                up_block_types=("UpDecoderBlock2D",) * n,
                block_out_channels=tuple(w if i < n // 2 else 2 * w for i in range(n)),
                layers_per_block=1,
                norm_num_groups=min(8, w),
                latent_channels=self.latent_channels,
                scaling_factor=1.0,
                shift_factor=0.0,
                mid_block_add_attention=False,  # attention over a 128^2 latent: far too slow here
            )
        raise FoveaError(f"autoencoder kind must be 'tiny' or 'kl', got {self.kind!r}")

    @property
    def name(self) -> str:
        return f"{self.kind}-f{self.factor}c{self.latent_channels}w{self.width}"

    @classmethod
    def from_name(cls, name: str) -> AeConfig:
        """``kl-f8c4w16`` -> AeConfig("kl", factor=8, latent_channels=4, width=16)."""
        m = re.fullmatch(r"(tiny|kl)-f(\d+)c(\d+)w(\d+)", name)
        if not m:
            raise FoveaError(f"autoencoder architecture {name!r} is not like kl-f8c4w16")
        return cls(m[1], factor=int(m[2]), latent_channels=int(m[3]), width=int(m[4]))


@dataclass
class AeTrainConfig:
    """One training run. Sizes in pixels, times in seconds; ``steps=None``: the time budget only.
    ``threads``: torch CPU threads (None: torch's default; 1 is faster on an oversubscribed CPU).
    ``init``: continue from a saved autoencoder (same architecture); the log counts both runs."""

    out: str = "runs/ae"
    data: str = str(DEFAULT_PACK)
    ae: AeConfig = field(default_factory=AeConfig)
    crop_px: int = 128
    batch_size: int = 4
    lr: float = 2e-3
    warmup_steps: int = 20
    time_budget_s: float = 1080.0
    steps: int | None = None
    mse_weight: float = 1.0
    chroma_weight: float = 1.0
    seed: int = 0
    threads: int | None = None
    init: str | None = None
    progress: bool = True


def encode(ae, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> latents (``kl``: the posterior mean)."""
    out = ae.encode(images, return_dict=False)[0]
    return out if isinstance(out, torch.Tensor) else out.mode()


def reconstruct(ae, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> the autoencoder's reconstruction (no clamping)."""
    return ae.decode(encode(ae, images), return_dict=False)[0]


def save_autoencoder(ae, config: AeConfig, path: Path, *, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().float().contiguous() for k, v in ae.state_dict().items()}
    meta = {"config": json.dumps(asdict(config))}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a run stopped while saving keeps the previous weights, never a torn file.
    replace_atomically(path, lambda tmp: save_file(state, str(tmp), metadata=meta))


def load_autoencoder(path: Path) -> tuple[torch.nn.Module, AeConfig]:
    """A saved autoencoder (a file or a run folder), in eval mode, without gradients."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from generator.errors import safetensors_errors

    path = Path(path)
    path = path / WEIGHTS_FILE if path.is_dir() else path
    if not path.is_file():
        raise FoveaError(
            f"autoencoder {path} not found; train one with generator.training.autoencoder"
        )
    with safetensors_errors(path, "autoencoder"):
        with safe_open(str(path), framework="pt") as f:
            config = AeConfig(**json.loads((f.metadata() or {})["config"]))
        ae = config.build()
        ae.load_state_dict(load_file(str(path)))
    return ae.eval().requires_grad_(False), config


def reconstruction_loss(y: torch.Tensor, x: torch.Tensor, cfg: AeTrainConfig) -> torch.Tensor:
    """L1 + MSE in RGB, plus L1 of the chroma (each pixel minus its channel mean): luminance
    dominates an RGB loss, and a young autoencoder otherwise learns grey images first."""
    d = y - x
    chroma = d - d.mean(dim=1, keepdim=True)
    return (
        d.abs().mean()
        + cfg.mse_weight * d.square().mean()
        + cfg.chroma_weight * chroma.abs().mean()
    )


def _lr_factor(step: int, progress: float, warmup_steps: int) -> float:
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    return warm * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_autoencoder(cfg: AeTrainConfig) -> dict:
    """Train, save ``OUT/autoencoder.safetensors`` and ``OUT/log.json``; returns the log."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: AeTrainConfig) -> dict:
    from generator.progress import progress_bar

    print(f"autoencoder {cfg.ae.name}: seed {cfg.seed}, crops {cfg.crop_px} px x {cfg.batch_size}")
    torch.manual_seed(cfg.seed)
    bank = load_bank(source=Path(cfg.data), split="train")
    crops_rng = torch.Generator().manual_seed(cfg.seed)
    ae, before = cfg.ae.build(), {"steps": 0, "train_seconds": 0.0}
    if cfg.init:
        saved, config = load_autoencoder(Path(cfg.init))
        if config != cfg.ae:
            raise FoveaError(
                f"--init {cfg.init} is a {config.name} autoencoder, not {cfg.ae.name}: give the "
                "architecture flags it was trained with (--kind --factor --latent-channels --width)"
            )
        ae.load_state_dict(saved.state_dict())
        init_dir = Path(cfg.init) if Path(cfg.init).is_dir() else Path(cfg.init).parent
        log_path = init_dir / "log.json"
        if log_path.is_file():
            before = json.loads(log_path.read_text())
    ae.train().requires_grad_(True)
    start = time.perf_counter()  # the budget covers the training loop, not data loading
    optimizer = torch.optim.AdamW(ae.parameters(), lr=cfg.lr, weight_decay=0.0)
    bar = progress_bar(
        total=cfg.steps, desc=f"autoencoder {cfg.ae.name}", unit="step", enabled=cfg.progress
    )
    losses: list[float] = []
    step = 0
    while cfg.steps is None or step < cfg.steps:
        elapsed = time.perf_counter() - start
        progress = elapsed / cfg.time_budget_s
        if cfg.steps:
            progress = max(progress, step / cfg.steps)
        if progress >= 1.0:
            break
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(step, progress, cfg.warmup_steps)
        x, _ = random_crops(bank, count=cfg.batch_size, crop_px=cfg.crop_px, generator=crops_rng)
        y = reconstruct(ae, x)
        loss = reconstruction_loss(y, x, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{losses[-1]:.4f}", elapsed_s=f"{elapsed:.0f}")
    bar.close()
    ae.eval()
    seconds = time.perf_counter() - start
    log = {
        "config": {**asdict(cfg), "ae": asdict(cfg.ae)},
        "architecture": cfg.ae.name,
        "steps": step,
        "images_seen": step * cfg.batch_size,
        "train_seconds": seconds,
        "steps_total": step + before.get("steps_total", before["steps"]),
        "train_seconds_total": seconds + before.get("train_seconds_total", before["train_seconds"]),
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in ae.parameters()),
        "loss_first20": sum(losses[:20]) / max(1, len(losses[:20])),
        "loss_last20": sum(losses[-20:]) / max(1, len(losses[-20:])),
        "losses": losses,
    }
    out = Path(cfg.out)
    save_autoencoder(ae, cfg.ae, out / WEIGHTS_FILE, metadata={"steps": step, "seed": cfg.seed})
    write_atomic(out / "log.json", json.dumps(log, indent=1))
    return log


def main(argv: list[str] | None = None) -> int:
    """``--kind --factor --latent-channels --width`` (AeConfig) and the AeTrainConfig fields as
    flags (``--crop-px``, ``--time-budget-s``, ...), defaults from the dataclasses."""
    parser = argparse.ArgumentParser(
        prog="python -m generator.training.autoencoder",
        description="train the small latent autoencoder on the project's photos",
    )
    train_fields = [f for f in fields(AeTrainConfig) if f.name not in ("ae", "progress")]
    for owner, f in [(AeConfig(), f) for f in fields(AeConfig)] + [
        (AeTrainConfig(), f) for f in train_fields
    ]:
        default = getattr(owner, f.name)
        kind = {"steps": int, "threads": int, "init": str}.get(f.name, type(default))
        flag = f"--{f.name.replace('_', '-')}"
        parser.add_argument(flag, type=kind, default=default, help=f"(default {default})")
    parser.add_argument("--no-progress", action="store_true")
    args = vars(parser.parse_args(argv))
    try:
        ae = AeConfig(**{f.name: args.pop(f.name) for f in fields(AeConfig)})
        log = train_autoencoder(AeTrainConfig(ae=ae, progress=not args.pop("no_progress"), **args))
    except FoveaError as error:  # a flag or file the user can fix: one line
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{log['architecture']}: {log['steps']} steps in {log['train_seconds']:.0f} s, loss "
        f"{log['loss_first20']:.4f} -> {log['loss_last20']:.4f}; {Path(args['out']) / WEIGHTS_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
