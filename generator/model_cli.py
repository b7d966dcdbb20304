"""``fovea data``, ``fovea train`` and ``fovea bench quality``: the embedded default model's data,
training and quality benchmark. Registered by fovea_cli; heavy imports live in the handlers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from generator.arg_types import output_file, positive_float, positive_int, seed_int
from generator.atomic import write_atomic
from generator.precision import DTYPES


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``data``, ``train`` and ``bench quality``."""
    # Long by design: a flat list of subcommands and flags, read top to bottom like --help.
    data = subparsers.add_parser("data", help="fetch and pack the default model's training photos")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    images = data_sub.add_parser(
        "images",
        help="fetch photographic wallpapers (apt-get download + dpkg -x) and "
        "scikit-image's photos into a cache folder with a manifest",
    )
    images.add_argument(
        "--cache", default=None, help="cache folder (default $FOVEA_DATA or ~/.cache/fovea/images)"
    )
    images.add_argument(
        "--max-side-px",
        type=positive_int,
        default=1024,
        help="shorter side of cached images, at most (default 1024)",
    )
    images.add_argument(
        "--offline",
        action="store_true",
        help="only scikit-image's bundled photos (no package downloads)",
    )
    images.set_defaults(handler=_data_images)
    pack = data_sub.add_parser("pack", help="pack cached images into one .npz (<= 50 MB)")
    pack.add_argument(
        "--cache",
        default=None,
        help="cache folder of fovea data images (default $FOVEA_DATA or ~/.cache/fovea/images)",
    )
    pack.add_argument("--out", required=True, help="output .npz")
    pack.add_argument(
        "--max-side-px",
        type=positive_int,
        default=1024,
        help="shorter side of packed images, at most (default 1024)",
    )
    pack.set_defaults(handler=_data_pack)

    train = subparsers.add_parser(
        "train",
        help="train the default model (single process; use `accelerate launch -m "
        "generator.training.train` for several GPUs)",
    )
    train_sub = train.add_subparsers(dest="train_stage", metavar="STAGE", required=True)
    from generator.training.config import add_arguments

    for stage, text in (
        ("base", "base training on full-resolution tokens (crops and their scenes)"),
        ("foveated", "foveated LoRA post-training on mixed-resolution tokens"),
        ("detail", "the convolutional detail stage (low-noise denoiser of the finest octave)"),
        ("periphery", "the periphery stage: coarse tokens' detail, on pairs (--data PAIRS)"),
    ):
        p = train_sub.add_parser(stage, help=text)
        add_arguments(p)
        p.set_defaults(handler=_train, stage=stage)  # _train sets on_interrupt (its OUT)
    pairs = train_sub.add_parser(
        "pairs",
        help="make the periphery stage's training pairs with the shipped model: full-resolution "
        "twins and foveated images of training-photo crops (resumable)",
    )
    pairs.add_argument("--out", required=True, help="pairs folder")
    pairs.add_argument("--count", type=positive_int, default=48, help="twins (default 48)")
    pairs.add_argument("--per-twin", type=positive_int, default=4, help="foveated images per twin")
    pairs.add_argument("--resolution", type=positive_int, default=1024, help="image side, px")
    pairs.add_argument("--seed", type=seed_int, default=0)
    pairs.add_argument("--data", default="generator/data/photos-1024.npz", help="photo pack")
    pairs.add_argument("--weights", default=None, help="weights folder (default: shipped)")
    pairs.add_argument("--no-progress", action="store_true")
    pairs.set_defaults(
        handler=_train_pairs,
        on_interrupt="the pairs made so far are kept: the same command continues",
    )
    from generator.training.export import add_export_arguments

    export = train_sub.add_parser(
        "export",
        help="write shipped fp16 weights and the model card from training runs "
        "(or, with --refresh-card, only rewrite the card)",
    )
    add_export_arguments(export)
    export.set_defaults(handler=_train_export)

    quality = bench_subparsers.add_parser(
        "quality",
        help="the default model on held-out scenes: natural detail (seam ratio, octave power "
        "ratio, scene PSNR) and FovVideoVDP JOD / foveal PSNR/SSIM of foveated vs "
        "full-resolution generations (post-trained, naive, circle, oracle), with the targets",
    )
    quality.add_argument(
        "--json", required=True, type=output_file, help="output JSON (list of records)"
    )
    quality.add_argument(
        "--resolution", type=positive_int, default=1024, help="image side, px (default 1024)"
    )
    quality.add_argument(
        "--scenes",
        type=positive_int,
        default=8,
        help="held-out scenes (scene i from held-out photograph i, centre crop; default 8)",
    )
    quality.add_argument(
        "--seeds",
        type=seed_int,
        nargs="+",
        default=[0, 1],
        help="seeds per scene (default: 0 1)",
    )
    quality.add_argument(
        "--strengths",
        type=positive_float,
        nargs="+",
        default=[0.25, 0.5, 1.0, 2.0],
        help="acuity strengths (default: 0.25 0.5 1 2)",
    )
    quality.add_argument(
        "--steps", type=positive_int, default=None, help="sampler steps (model default)"
    )
    quality.add_argument(
        "--fovea-deg", type=positive_float, default=2.0, help="PSNR/SSIM radius, deg (default: 2)"
    )
    quality.add_argument("--no-circle", action="store_true", help="skip the circle layouts")
    quality.add_argument(
        "--ceiling",
        action="store_true",
        help="also score the ceiling bound (what any foveated generator of this model can "
        "reach; one more full-resolution generation per scene, seed, gaze and strength) into "
        "--json's *_bounds.json beside the oracle bound (always scored)",
    )
    quality.add_argument(
        "--sheets", default=None, help="folder for sample sheets (default: beside the JSON)"
    )
    quality.add_argument("--weights", default=None, help="weights folder (default: shipped)")
    quality.add_argument("--device", default="cpu")
    quality.set_defaults(handler=_bench_quality)
    lora = bench_subparsers.add_parser(
        "lora",
        help="a foveated LoRA (the Foveated Diffusion release's) on the kit's acuity layouts and "
        "its own circle layouts, against the base model without it: FovVideoVDP JOD and foveal "
        "PSNR/SSIM of foveated vs full-resolution generations",
    )
    lora.add_argument("--model", required=True, help="FLUX.2 [klein] pipeline directory")
    lora.add_argument("--lora", required=True, help="the release's LoRA file")
    lora.add_argument(
        "--json", required=True, type=output_file, help="output JSON (list of records)"
    )
    lora.add_argument("--prompts", nargs="+", default=None, help="prompts (default: four)")
    lora.add_argument(
        "--seeds",
        type=seed_int,
        nargs="+",
        default=[0, 1],
        help="seeds per prompt (default: 0 1)",
    )
    lora.add_argument(
        "--strengths",
        type=positive_float,
        nargs="+",
        default=[0.25, 0.5, 1.0, 2.0],
        help="acuity strengths (default: 0.25 0.5 1 2)",
    )
    lora.add_argument(
        "--resolution", type=positive_int, default=1024, help="image side, px (default 1024)"
    )
    lora.add_argument(
        "--steps", type=positive_int, default=None, help="sampler steps (model default)"
    )
    lora.add_argument(
        "--fovea-deg", type=positive_float, default=2.0, help="PSNR/SSIM radius, deg (default: 2)"
    )
    lora.add_argument("--device", default="cpu")
    lora.add_argument("--dtype", default=None, choices=DTYPES)
    lora.set_defaults(handler=_bench_lora)
    from generator.evaluation.latent_cli import register_latent

    register_latent(bench_subparsers)


def _cache(value: str | None) -> Path:
    from generator.data.fetch import default_cache_dir

    return Path(value) if value else default_cache_dir()


def _data_images(args) -> int:
    from generator.data.fetch import fetch_images

    cache = _cache(args.cache)
    manifest = fetch_images(
        cache_dir=cache, max_side_px=args.max_side_px, include_packages=not args.offline
    )
    n = len(manifest["images"])
    held = sum(e["split"] == "heldout" for e in manifest["images"])
    print(f"{n} images ({held} held out) in {cache}; manifest {cache / 'manifest.json'}")
    return 0


def _data_pack(args) -> int:
    from generator.data.pack import pack_images

    info = pack_images(
        cache_dir=_cache(args.cache), out=Path(args.out), max_side_px=args.max_side_px
    )
    print(f"packed {info['images']} images into {info['path']} ({info['bytes'] / 1e6:.1f} MB)")
    return 0


def _train(args) -> int:
    from generator.training.config import config_from_args
    from generator.training.train import train

    args.on_interrupt = (  # what fovea says after Ctrl-C: the folder this run saves into
        f"the same command with --resume continues from {Path(args.out) / 'checkpoint.pt'} "
        "(written every --checkpoint-every-s and kept whole)"
    )
    log = train(config_from_args(args.stage, args), resume=args.resume)
    if not log["steps"]:  # the loss is None: no step, nothing trained
        print(
            f"{args.stage}: no training step was made: start-up took {log['wall_seconds']:.0f} "
            f"s of --time-budget-s {args.time_budget_s:g} (or --deadline-unix had passed); "
            f"the same command with --resume and a larger --time-budget-s trains in {args.out}"
        )
        return 0
    print(
        f"{args.stage}: {log['steps']} steps, loss {log['loss_first50']:.4g} -> "
        f"{log['loss_last50']:.4g}; outputs in {args.out}"
    )
    return 0


def _train_pairs(args) -> int:
    from generator.training.periphery_pairs import PairSettings, build_pairs

    settings = PairSettings(
        count=args.count,
        per_twin=args.per_twin,
        resolution=args.resolution,
        seed=args.seed,
        data=args.data,
        weights_dir=args.weights,
    )
    out = build_pairs(settings, Path(args.out), progress=not args.no_progress)
    print(f"{settings.count} twins x {settings.per_twin} foveated images in {out}")
    return 0


def _train_export(args) -> int:
    from generator.training.export import run_export

    print(run_export(args))
    return 0


def _json(value) -> str:
    """Strict JSON: a non-finite number (the PSNR of identical images is infinite) becomes null."""
    import math

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=1, allow_nan=False)


def _check_flux2_directory(path: Path) -> None:
    """FoveaError unless ``path``'s ``model_index.json`` names a FLUX.2 pipeline: the release's
    LoRA fits FLUX.2 [klein], and on another model the merge blamed the LoRA."""
    from generator.errors import FoveaError
    from generator.model_directory import FLUX2_PIPELINES, pipeline_class

    name = pipeline_class(path)  # None: the loader says what is wrong with the file
    if name is not None and name not in FLUX2_PIPELINES:
        raise FoveaError(
            f"--model {path}: its model_index.json names {name!r}; fovea bench lora measures the "
            f"release's LoRA, made for FLUX.2 [klein] ({' or '.join(FLUX2_PIPELINES)} directories)"
        )


def _bench_lora(args) -> int:
    from generator.errors import FoveaError
    from generator.evaluation.lora_quality import (
        DEFAULT_PROMPTS,
        LoraQualitySettings,
        run_lora_quality,
    )
    from generator.evaluation.quality_plot import plot_quality

    if not (Path(args.model) / "model_index.json").is_file():
        raise FoveaError(f"--model {args.model}: not a pipeline directory (no model_index.json)")
    _check_flux2_directory(Path(args.model))
    if not Path(args.lora).is_file():
        raise FoveaError(f"--lora {args.lora}: no such file")
    if args.resolution % 16 or args.resolution < 64:
        raise FoveaError(f"--resolution {args.resolution} must be a multiple of 16 and >= 64")
    settings = LoraQualitySettings(
        model=args.model,
        lora=args.lora,
        prompts=list(args.prompts or DEFAULT_PROMPTS),
        seeds=list(args.seeds),
        strengths=list(args.strengths),
        resolution=args.resolution,
        fovea_deg=args.fovea_deg,
        steps=args.steps,
        device=args.device,
        dtype=args.dtype,
    )
    result = run_lora_quality(settings)
    result["records"] = [{**r, "command": args.command_line} for r in result["records"]]
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, _json(result["records"]))
    summary_path = out.with_name(f"{out.stem}_summary.json")
    write_atomic(summary_path, _json(result["summary"]))
    figure = plot_quality([result["summary"]], out.with_name(f"{out.stem}_jod.png"))
    print(f"wrote {len(result['records'])} records to {out}; summary {summary_path}; {figure}")
    for label, row in result["summary"]["by_layout"].items():
        parts = [
            f"{v} JOD {r['jod_median']:.2f} (tokens {r['token_ratio_median']:.3f})"
            for v, r in row.items()
        ]
        gain = result["summary"]["lora_jod_gain_by_layout"][label]
        print(f"{label}: " + ", ".join(parts) + f"; LoRA gain {gain:+.2f} JOD")
    if result["interrupted"]:
        args.on_interrupt = (
            f"the {len(result['records'])} records of the prompts and seeds scored whole so far "
            f"and their summary are in {out} and beside it (summary 'interrupted': true)"
        )
        raise KeyboardInterrupt
    return 0


def _bench_quality(args) -> int:
    from generator.errors import FoveaError
    from generator.evaluation.quality import QualitySettings, run_quality
    from generator.loading import check_device

    if args.resolution % 16 or args.resolution < 64:
        raise FoveaError(f"--resolution {args.resolution} must be a multiple of 16 and >= 64")
    check_device(args.device)  # a weights folder's models load past load_generator's check
    settings = QualitySettings(
        resolution=args.resolution,
        scenes=args.scenes,
        seeds=list(args.seeds),
        strengths=list(args.strengths),
        fovea_deg=args.fovea_deg,
        steps=args.steps,
        circle=not args.no_circle,
        ceiling=args.ceiling,
        weights_dir=args.weights,
        device=args.device,
    )
    out = Path(args.json)
    sheets = Path(args.sheets) if args.sheets else out.parent / f"{out.stem}_sheets"
    made_sheets = not sheets.exists()
    sheets.mkdir(parents=True, exist_ok=True)  # a file in the way: refused before the hours of work
    try:
        result = run_quality(settings, sheets_dir=sheets)
    except (FoveaError, KeyboardInterrupt):
        if made_sheets and not any(sheets.iterdir()):  # failed before any sheet: leave no trace
            sheets.rmdir()
        raise
    for key in ("records", "bounds"):
        result[key] = [{**r, "command": args.command_line} for r in result[key]]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, _json(result["records"]))
    bounds_path = out.with_name(f"{out.stem}_bounds.json")
    write_atomic(bounds_path, _json(result["bounds"]))
    print(f"wrote {len(result['bounds'])} oracle / ceiling records to {bounds_path}")
    full_path = out.with_name(f"{out.stem}_full.json")
    write_atomic(full_path, _json(result["full_resolution"]))
    print(f"wrote {len(result['full_resolution'])} full-resolution rows to {full_path}")
    summary_path = out.with_name(f"{out.stem}_summary.json")
    write_atomic(summary_path, _json(result["summary"]))
    s = result["summary"]
    print(f"wrote {len(result['records'])} records to {out}; summary {summary_path}")
    for variant, crossing in s["jod_9_5_crossing_by_variant"].items():
        print(f"JOD 9.5 crossing ({variant}): {crossing}")
    for name, target in s["targets"].items():
        if name != "all_pass":
            verdict = {True: "pass", False: "FAIL", None: "not measured"}[target["pass"]]
            print(f"target {name}: {verdict} ({target['target']}; measured {target['measured']})")
    print(f"all targets pass: {s['targets']['all_pass']}")
    if result["interrupted"]:
        args.on_interrupt = (
            f"the {len(result['records'])} records scored so far and their summary are in {out} "
            "and beside it (summary 'interrupted': true)"
        )
        raise KeyboardInterrupt
    return 0
