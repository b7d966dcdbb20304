"""``fovea bench latent``, registered by ``generator.model_cli``. Light imports only: the
benchmark's are in the handler."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from generator.arg_types import output_file, positive_int
from generator.atomic import write_atomic


def register_latent(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench latent``."""
    p = bench_subparsers.add_parser(
        "latent",
        help="pixel space vs the latent space of a small autoencoder trained here: decode time "
        "vs foveated generation time, reconstruction quality, parameters and FLOPs",
    )
    p.add_argument("--json", required=True, type=output_file, help="output JSON (one dict)")
    p.add_argument(
        "--ae",
        default="runs/ae",
        help="trained autoencoder, file or run folder (`python -m generator.training.autoencoder`; "
        "default runs/ae); 'none': an untrained one, timing only",
    )
    p.add_argument(
        "--resolution", type=positive_int, nargs="+", default=[512, 1024], help="image sides, px"
    )
    p.add_argument("--strengths", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="timed runs per measurement (median)"
    )
    p.add_argument(
        "--recon-crops", type=positive_int, nargs="+", default=[256, 512], help="crop sides, px"
    )
    p.add_argument(
        "--reference-aes",
        nargs="*",
        default=["tiny-f8c4w64", "tiny-f8c4w16", "kl-f16c16w16"],
        help="untrained decoders also timed (tiny-f8c4w64 = TAESD's size)",
    )
    p.add_argument("--pixel-model", default="default", help="pixel-space model (default, tiny)")
    p.add_argument("--data", default=None, help="photos for reconstruction (default: the pack)")
    p.add_argument("--no-jod", action="store_true", help="skip FovVideoVDP")
    p.set_defaults(handler=_bench_latent)


def _bench_latent(args) -> int:
    from generator.errors import FoveaError
    from generator.evaluation.latent_compare import LatentSettings, run_latent_compare

    if any(s % 16 or s < 64 for s in [*args.resolution, *args.recon_crops]):
        raise FoveaError("--resolution and --recon-crops must be multiples of 16, at least 64")
    if args.repeats < 1:
        raise FoveaError(f"--repeats {args.repeats} must be at least 1")
    if args.data is not None:  # read after the timings: a wrong folder is refused before them
        from generator.data.fetch import load_manifest

        load_manifest(Path(args.data))
    settings = LatentSettings(
        ae_path=None if args.ae.lower() == "none" else args.ae,
        pixel_model=args.pixel_model,
        sizes_px=list(args.resolution),
        strengths=list(args.strengths),
        repeats=args.repeats,
        reference_aes=list(args.reference_aes),
        recon_crops_px=list(args.recon_crops),
        jod=not args.no_jod,
        data=args.data,
    )
    result = run_latent_compare(settings)
    result["command"] = _command(args)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, json.dumps(result, indent=1, allow_nan=False))
    print(f"wrote {out}; verdict: {result['verdict']['choice']} ({result['verdict']['reason']})")
    return 0


def _command(args) -> str:
    """The run's command with every setting spelled out (defaults included)."""
    words = ["fovea", "bench", "latent", "--json", args.json, "--ae", args.ae]
    for flag, values in (
        ("--resolution", args.resolution),
        ("--strengths", args.strengths),
        ("--repeats", [args.repeats]),
        ("--recon-crops", args.recon_crops),
        ("--reference-aes", args.reference_aes),
        ("--pixel-model", [args.pixel_model]),
        ("--data", [args.data] if args.data else []),
    ):
        words += [flag, *map(str, values)] if values else []
    return shlex.join(words + (["--no-jod"] if args.no_jod else []))
