"""Turn training outputs into the shipped weights: fp16 base + fp16 LoRA + a JSON record.

    python -m generator.training.export --base runs/base --foveated runs/foveated \\
        --out generator/models/weights
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from generator.training.lineage import lineage, run_record

MAX_SHIPPED_BYTES = 25 * 1024 * 1024


def export_weights(
    *,
    base_dir: Path | None,
    foveated_dir: Path | None,
    out_dir: Path,
    quality_summary: dict | None = None,
    notes: list[str] | None = None,
) -> dict:
    """Write ``default-base.safetensors``, ``default-foveated-lora.safetensors`` (if a
    post-training run is given: ``foveated`` or ``consistency``), ``default.json`` (both stages'
    logs), the loss curves and ``MODEL_CARD.md`` into ``out_dir``; returns the record.

    ``base_dir=None`` keeps the base weights and base record already in ``out_dir`` (a new
    post-training run on the shipped base). ``notes`` are kept in the record and the card."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from generator.errors import FoveaError
    from generator.models.default import BASE_FILE, CARD_FILE, LORA_FILE, load_model, save_weights

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if base_dir is None:
        if not (out_dir / BASE_FILE).is_file() or not (out_dir / CARD_FILE).is_file():
            raise FoveaError(f"{out_dir} has no shipped base weights to keep; give --base")
        model = load_model(out_dir / BASE_FILE)
        record = {"base": json.loads((out_dir / CARD_FILE).read_text()).get("base", {})}
    else:
        model = load_model(Path(base_dir) / "model.safetensors")
        save_weights(model, out_dir / BASE_FILE, dtype=torch.float16, metadata={"source": "base"})
        record = {"base": run_record(Path(base_dir), "base")}
    record["notes"] = list(notes or [])
    if foveated_dir is not None:
        lora_file = Path(foveated_dir) / "lora.safetensors"
        with safe_open(str(lora_file), framework="pt") as f:
            meta = f.metadata() or {}
        state = {k: v.half().contiguous() for k, v in load_file(str(lora_file)).items()}
        save_file(state, str(out_dir / LORA_FILE), metadata=meta)
        record["foveated"] = run_record(Path(foveated_dir), "foveated")
    elif (out_dir / LORA_FILE).exists():
        (out_dir / LORA_FILE).unlink()  # a stale adapter would not match the new base
    record["config"] = model.config_.as_dict()
    record["parameters"] = sum(p.numel() for p in model.parameters())
    (out_dir / CARD_FILE).write_text(json.dumps(record, indent=1))
    for stage, run in (("base", base_dir), ("foveated", foveated_dir)):
        if run is not None and (Path(run) / "loss.png").is_file():
            shutil.copyfile(Path(run) / "loss.png", out_dir / f"default-{stage}-loss.png")
    (out_dir / "MODEL_CARD.md").write_text(model_card(record, quality_summary))
    for path in out_dir.glob("default*"):
        path.chmod(0o644)  # safetensors writes 0600; shipped files must be readable by all
    total = sum(p.stat().st_size for p in out_dir.glob("*.safetensors"))
    record["shipped_bytes"] = total
    if total > MAX_SHIPPED_BYTES:
        raise FoveaError(f"shipped weights in {out_dir} total {total / 1e6:.1f} MB, over 25 MB")
    return record


def model_card(record: dict, quality: dict | None) -> str:
    """The model card (markdown) from the export record and an optional quality summary."""
    cfg = record["config"]
    lines = [
        "# Default model: small pixel-space foveated flow-matching transformer",
        "",
        "Embedded default of the foveated generation kit (`FoveatedGenerator.load('default')`, no network).",
        "",
        "## Architecture",
        f"- diffusers `FluxTransformer2DModel`, {cfg['double_blocks']} double + {cfg['single_blocks']} "
        f"single blocks, {cfg['heads']} heads x {cfg['head_dim']}, {record['parameters'] / 1e6:.2f} M parameters.",
        f"- Pixel space, {cfg['patch_px']} px RGB patches per token (768 values), x-prediction "
        "(JiT, Li & He 2025) converted to velocity for the Euler sampler; "
        f"{cfg['steps']} steps by default.",
        "- Per-token rotary ids: (log2 level, row, col) of each block centre in fine-token units.",
        f"- Class-conditional: {', '.join(cfg['classes'])} (+ a null class), one learned token + pooled vector.",
        "- Files: `default-base.safetensors` (fp16), `default-foveated-lora.safetensors` (fp16 LoRA, merged at load).",
        "",
        "## Data",
        "Photographs from Debian packages (mate-backgrounds nature/, lomiri-wallpapers-16.04/-20.04, "
        "plasma-workspace-wallpapers; GPL-2+, CC-BY(-SA), CC0) and scikit-image's bundled photos "
        "(CC0 / public domain); `fovea data images` fetches them, the manifest records package, file, "
        "licence and sha256; a fixed 15 % of images (hash of the id) is held out. Training draws random "
        "square crops at 1-4x zoom-out, with horizontal flips.",
        "",
        "## Training",
    ]
    runs = [
        (stage, i, log)
        for stage in ("base", "foveated")
        for i, log in enumerate(lineage(record.get(stage) or {}) or [{}])
    ]
    for stage, i, log in runs:
        if not log:
            lines.append(f"- {stage}: not run")
            continue
        c = log.get("config", {})
        kind = c.get("stage", stage)
        layouts = (
            f"; LoRA rank {c.get('lora_rank')}, random acuity/circle/full layouts"
            + (
                " (" + ", ".join(f"{m} {w:g}" for m, w in c["layout_mix"].items()) + ")"
                if c.get("layout_mix")
                else ""
            )
            + (
                f", teacher pairs {', '.join(Path(p).name for p in c.get('pairs', []))}"
                + (
                    " (weights " + ", ".join(f"{w:g}" for w in c["pair_weights"]) + ")"
                    if c.get("pair_weights")
                    else ""
                )
                if kind == "consistency"
                else ""
            )
            if stage == "foveated"
            else ""
        )
        continued = " (continued from the run above)" if i > 0 else ""
        lines.append(
            f"- {kind}{continued}: {log.get('steps')} steps x batch {c.get('batch_size')} at "
            + ("the pairs' sizes" if kind == "consistency" else f"crops {c.get('crop_px')} px")
            + f", lr {c.get('lr')}, {log.get('train_seconds_total', 0):.0f} s on "
            f"{log.get('device_name')} x{log.get('num_processes')} ({_precision(log)}); "
            f"loss {_loss(log.get('loss_first50'))} -> {_loss(log.get('loss_last50'))}{layouts}"
        )
    lines += [
        "",
        "Reproduce: `OUT=dir bash generator/training/gpu_job.sh BUDGET_S` (base training continued "
        "from the shipped base, teacher pairs, consistency LoRA, export, all within the budget), "
        "or the stages one by one: `accelerate launch -m generator.training.train base --out "
        "runs/base [--init generator/models/weights/default-base.safetensors] ...`; "
        "`fovea train teacher --out runs/teacher-512.npz --crop-px 512 [--weights DIR]` (one file "
        "per size); `fovea train consistency --init BASE --pairs runs/teacher-*.npz --out "
        "runs/consistency [--init-lora generator/models/weights/default-foveated-lora.safetensors]`; "
        "`fovea train export [--base runs/base] --foveated runs/consistency` (without `--base` "
        "the shipped base is kept).",
    ]
    if record.get("notes"):
        lines += ["", "## Notes", *[f"- {note}" for note in record["notes"]]]
    lines += [
        "",
        "## Measured quality",
    ]
    if quality:
        lines.append(
            f"`fovea bench quality` at {quality.get('resolution')} px, seeds {quality.get('seeds')}:"
        )
        lines.append("")
        lines.append(
            "| variant | strength | median JOD | fovea PSNR dB | fovea SSIM | token ratio |"
        )
        lines.append("|---|---|---|---|---|---|")
        for variant, rows in quality.get("medians", {}).items():
            for strength, m in rows.items():
                lines.append(
                    f"| {variant} | {strength} | {m['jod_median']:.2f} | "
                    f"{_db(m['fovea_psnr_db_median'])} | {m['fovea_ssim_median']:.3f} | "
                    f"{m['token_ratio_median']:.3f} |"
                )
        lines.append("")
        lines.append(
            "Where the post-trained JOD curve crosses 9.5: "
            + _crossing_text(quality.get("jod_9_5_crossing"))
        )
        figure = (quality.get("sheets") or {}).get("jod_curve")
        if figure:
            lines += ["", f"Figure (JOD and foveal PSNR against the token ratio): `{figure}`."]
    else:
        lines.append("Not yet measured for these weights: run `fovea bench quality --json PATH`.")
    from generator.models.latent_report import card_lines

    lines += card_lines()  # benchmarks/results/latent_vs_pixel.json (`fovea bench latent`), if any
    return "\n".join(lines) + "\n"


def _crossing_text(crossing: dict | None) -> str:
    """``summarize``'s crossing: interpolated numbers, or ``<s`` / ``>s`` beyond the strengths."""
    if not crossing:
        return "not measured"
    strength, ratio = crossing.get("strength"), crossing.get("token_ratio")
    if isinstance(strength, str) and strength.startswith("<"):
        return f"below s = {strength[1:]} (JOD is under 9.5 already at this, the lowest strength measured)"
    if isinstance(strength, str):
        return f"above s = {strength[1:]} (JOD >= 9.5 at every strength measured)"
    return f"s = {strength:.2f}, token ratio {ratio:.3f}"


def _loss(value: float | None) -> str:
    """A mean training loss for the card (first or last 50 steps), 4 significant digits."""
    return "n/a" if value is None else f"{value:.4g}"


def _precision(log: dict) -> str:
    """accelerate's mixed-precision setting as the card says it (``no``: float32; TF32 matmuls
    where the log says training turned them on)."""
    mp = log.get("mixed_precision")
    if mp is None:
        return "precision n/a"
    if mp != "no":
        return f"{mp} mixed precision"
    return "fp32, TF32 matmuls" if log.get("tf32") else "fp32"


def _db(value: float | None) -> str:
    """A PSNR for the card; None is how the JSON holds an infinite one (identical pixels)."""
    return "identical" if value is None or value == float("inf") else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.training.export")
    parser.add_argument(
        "--refresh-card",
        default=None,
        metavar="WEIGHTS_DIR",
        help="only rewrite WEIGHTS_DIR/MODEL_CARD.md from its default.json (and --quality-summary)",
    )
    parser.add_argument("--base", help="base training output folder")
    parser.add_argument("--foveated", default=None, help="foveated training output folder")
    parser.add_argument("--out", help="weights folder to write")
    parser.add_argument("--quality-summary", default=None, help="bench quality *_summary.json")
    args = parser.parse_args(argv)
    from generator.errors import FoveaError

    quality = json.loads(Path(args.quality_summary).read_text()) if args.quality_summary else None
    if args.refresh_card:
        from generator.models.default import CARD_FILE

        folder = Path(args.refresh_card)
        record = json.loads((folder / CARD_FILE).read_text())
        (folder / "MODEL_CARD.md").write_text(model_card(record, quality))
        print(f"rewrote {folder / 'MODEL_CARD.md'}")
        return 0
    if not (args.base and args.out):
        parser.error("--base and --out are required (or --refresh-card)")
    try:
        record = export_weights(
            base_dir=Path(args.base),
            foveated_dir=Path(args.foveated) if args.foveated else None,
            out_dir=Path(args.out),
            quality_summary=json.loads(Path(args.quality_summary).read_text())
            if args.quality_summary
            else None,
        )
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported to {args.out}: {record['shipped_bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
