"""How the scene enters the default model: per-token channels vs reference tokens, measured.

Trains each variant from the same seed and data order for the same number of steps (base stage,
full-resolution tokens), then scores both on fixed held-out batches (velocity MSE, full and
foveated layouts alternating) and times one forward pass of each, interleaved, on full and
foveated layouts. Writes a JSON list of records (``variant, steps, wall_s, heldout_loss,
step_s, forward_s, tokens``) that ``python -m generator.training.export
--conditioning-comparison`` puts on the model card::

    OMP_NUM_THREADS=1 python benchmarks/scene_conditioning.py --steps 150 --work /tmp/cmp \\
        --json benchmarks/results/scene_conditioning.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from generator.arg_types import output_file, positive_int
from generator.atomic import write_atomic
from generator.data.images import DEFAULT_PACK, load_bank, random_crops
from generator.denoiser import layout_ids
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.models.default import DefaultModel, ModelConfig, scene_inputs
from generator.models.weights_io import load_model
from generator.training.config import TrainConfig
from generator.training.layouts import full_layout, random_layout
from generator.training.objective import training_loss
from generator.training.train import train

VARIANTS = ("channels", "reference")
TIMED_LAYOUTS = (
    (1024, LayoutSpec(mode="full")),
    (1024, LayoutSpec(mode="acuity", strength=1.0)),
    (512, LayoutSpec(mode="acuity", strength=1.0)),
)


def heldout_loss(model, *, batches: int = 8) -> float:
    """Mean velocity loss on fixed held-out 256 px crops (even batches full, odd foveated)."""
    bank = load_bank(source=DEFAULT_PACK, split="heldout")
    losses = []
    with torch.no_grad():
        for k in range(batches):
            g = torch.Generator().manual_seed(1000 + k)
            x, _ = random_crops(bank, count=4, crop_px=256, generator=g)
            layout = full_layout(image_px=256, patch_px=16)
            if k % 2:
                layout = random_layout(rng=np.random.default_rng(k), image_px=256, patch_px=16)
            _, v_loss, _ = training_loss(model, x, layout, generator=g, cfg=TrainConfig())
            losses.append(float(v_loss))
    return float(np.mean(losses))


def forward_seconds(models: dict, *, repeats: int = 3) -> dict:
    """Median seconds of one forward per variant and layout, variants interleaved."""
    out = {}
    for px, spec in TIMED_LAYOUTS:
        geometry = StimulusGeometry(
            display=default_display(), image_width_px=px, image_height_px=px
        )
        gaze = None if spec.mode == "full" else (px / 2, px / 2)
        layout = build_layout(geometry=geometry, gaze_px=gaze, spec=spec, patch_px=16)
        ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32)
        key = f"{px}px {spec.mode}" + (f" s={spec.strength:g}" if spec.mode == "acuity" else "")
        times = {v: [] for v in models}
        tokens = {}
        with torch.no_grad():
            for rep in range(repeats + 1):
                for variant, model in models.items():
                    s = scene_inputs(torch.zeros(1, 3, px // 4, px // 4), layout, model.config_)
                    context = 1 if s.reference is None else s.reference.shape[1]
                    tokens[variant] = layout.num_tokens + context
                    start = time.perf_counter()
                    model(
                        s.scene_tokens,
                        scene_tokens=s.scene_tokens,
                        img_ids=ids,
                        t=torch.ones(1),
                        reference=s.reference,
                        reference_ids=s.reference_ids,
                    )
                    if rep:  # the first round warms up
                        times[variant].append(time.perf_counter() - start)
        out[key] = {v: (statistics.median(times[v]), tokens[v]) for v in models}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=positive_int, default=150)
    parser.add_argument("--work", required=True, help="folder for the two training runs")
    parser.add_argument(
        "--json", required=True, type=output_file, help="where to write the records"
    )
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/scene_conditioning.py", *argv])
    records = []
    for variant in VARIANTS:
        cfg = TrainConfig(
            stage="base",
            out=str(Path(args.work) / variant),
            crop_px=[128],
            batch_size=6,
            steps=args.steps,
            time_budget_s=24 * 3600,
            warmup_steps=50,
            ema_decay=0.99,
            lr=3e-4,
            progress=False,
            checkpoint_every_s=1e9,
            model={"scene_conditioning": variant},
        )
        start = time.perf_counter()
        log = train(cfg)
        model = load_model(Path(cfg.out) / "model.safetensors")
        records.append(
            {
                "variant": variant,
                "steps": log["steps"],
                "wall_s": round(time.perf_counter() - start, 1),
                "step_s": round(log["loop_seconds"] / log["steps"], 3),
                "train_loss_last50": log["loss_last50"],
                "heldout_loss": heldout_loss(model),
            }
        )
    fresh = {v: DefaultModel(ModelConfig(scene_conditioning=v)).eval() for v in VARIANTS}
    timing = forward_seconds(fresh)
    for record in records:
        v = record["variant"]
        record["forward_s"] = {k: round(t[v][0], 4) for k, t in timing.items()}
        record["tokens"] = {k: t[v][1] for k, t in timing.items()}
        record["command"] = command
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(records, indent=1))
    for record in records:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
