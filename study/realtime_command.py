"""``fovea bench realtime``: the realtime benchmark's command (its code: ``study.realtime``).

Registered by ``fovea_cli``; heavy imports live in the handler.
"""

from __future__ import annotations

import argparse

from generator.arg_types import output_file, output_file_like, seed_int
from generator.decoding import DECODES
from generator.precision import DEFAULT_DTYPE, DTYPES
from study.realtime.plan import BenchConfig

#: Shown trials per mode below which the summary notes that p95 is about the largest latency.
STEADY_P95_TRIALS = 20


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``bench realtime``."""
    rt = bench_subparsers.add_parser(
        "realtime",
        help="gaze-contingent latency with and without speculative start, frame intervals while generating",
        description="The session's own trial loop (study.trial.TrialRunner) with a simulated "
        "participant and the process generation service, in a real PsychoPy window (Xvfb when there "
        "is no DISPLAY). Writes one record per mode (speculative, plain): fixation-acquired-to-"
        "stimulus-on-screen latency, generation time and frame statistics, as the trials record them.",
    )
    rt.add_argument(
        "--json",
        required=True,
        metavar="PATH",
        type=output_file,
        help="output JSON (list of records)",
    )
    rt.add_argument(
        "--trials",
        type=int,
        default=BenchConfig.trials,
        help=f"trials per mode (default {BenchConfig.trials}: {STEADY_P95_TRIALS} or more shown trials "
        "steady the p95)",
    )
    rt.add_argument("--image-px", type=int, default=512, help="image side in px (default 512)")
    rt.add_argument("--model", default="tiny", help="generator model (default tiny)")
    rt.add_argument("--device", default="cpu")
    rt.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    rt.add_argument(
        "--decode",
        default="full",
        choices=DECODES,
        help="latent models: decode foveated images in full (default) or foveated",
    )
    rt.add_argument(
        "--dtype",
        default=DEFAULT_DTYPE,
        choices=DTYPES,
        help=f"the model's number format (default {DEFAULT_DTYPE}; bfloat16 for FLUX models on a GPU)",
    )
    rt.add_argument(
        "--tolerance-deg", type=float, default=0.5, help="speculation tolerance (default 0.5 deg)"
    )
    rt.add_argument(
        "--off-target-prob",
        type=_probability,
        default=0.25,
        help="share of landings off target (default 0.25)",
    )
    rt.add_argument("--seed", type=seed_int, default=0)
    rt.add_argument(
        "--nice", type=int, default=10, help="niceness added to the generator process (default 10)"
    )
    rt.add_argument(
        "--no-quiet-intervals",
        action="store_true",
        help="let the next twin's prefetch run during the stimulus intervals",
    )
    rt.add_argument(
        "--event-log",
        default=None,
        metavar="PATH",
        type=output_file_like("events.jsonl"),
        help="service events as JSON lines",
    )
    rt.set_defaults(
        handler=_bench_realtime,
        on_interrupt="no records written (no trial had finished; a Ctrl-C during the trials "
        "writes the records of the trials run so far)",
    )


def _ms(seconds: float | None) -> str:
    """``12.3 ms``, or ``n/a`` (a mode without a shown trial)."""
    return "n/a" if seconds is None else f"{1000 * seconds:.1f} ms"


def off_image_note(off_image: int, shown: int, image_px: int) -> str:
    """The note for shown trials whose image was made at a gaze off the image."""
    from study.realtime.plan import TARGETS_DEG

    farthest_deg = max(max(abs(x), abs(y)) for x, y in TARGETS_DEG)
    return (
        f"note: {off_image} of {shown} shown trials had their image made at a gaze off the "
        f"{image_px} px image (the fixation targets lie up to {farthest_deg:g} deg from the "
        "centre): such an image is all periphery, fewer tokens than a foveated one, so those "
        "latencies are shorter than a foveated image's; a larger --image-px keeps the gaze on it "
        "(per_trial gaze_on_image and tokens in the records)"
    )


def _probability(text: str) -> float:
    """argparse type: a share, 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def _bench_realtime(args) -> int:
    from generator.errors import FoveaError
    from study.realtime import BenchConfig, run_realtime_bench, write_records

    if args.trials < 1:
        raise FoveaError(f"--trials must be >= 1, got {args.trials}")
    if args.image_px % 16 or not 64 <= args.image_px <= 1024:
        raise FoveaError(f"--image-px must be a multiple of 16 in 64..1024, got {args.image_px}")
    config = BenchConfig(
        trials=args.trials,
        image_px=args.image_px,
        model=args.model,
        device=args.device,
        steps=args.steps,
        decode=args.decode,
        dtype=args.dtype,
        tolerance_deg=args.tolerance_deg,
        off_target_prob=args.off_target_prob,
        seed=args.seed,
        nice=args.nice,
        quiet_intervals=not args.no_quiet_intervals,
    )
    records = run_realtime_bench(config=config, event_log=args.event_log)
    records = [{**r, "command": args.command_line} for r in records]
    write_records(records, args.json)
    for r in records:
        print(
            f"{r['mode']:11s} latency median {_ms(r['latency_median_s'])}, p95 "
            f"{_ms(r['latency_p95_s'])} ({r['trials'] - r['aborted_trials']} shown); frames {r['frames']}, dropped {r['dropped_frames']} "
            f"(by phase {r['dropped_frames_by_phase']}); while generating at the mark: "
            f"{r['generation_phase_dropped_frames']} of {r['generation_phase_frames']}, without any "
            f"generation: {r['baseline_mark_dropped_frames']} of {r['baseline_mark_frames']} (mark), "
            f"{r['baseline_image_dropped_frames']} of {r['baseline_image_frames']} (image)"
        )
    shown = min(r["trials"] - r["aborted_trials"] for r in records)
    if 0 < shown < STEADY_P95_TRIALS:
        print(
            f"note: a mode's p95 comes from as few as {shown} shown trials, so it is about its "
            f"largest latency; {STEADY_P95_TRIALS} or more per mode (--trials) steady it"
        )
    off_image = sum(r["gaze_off_image_trials"] for r in records)
    if off_image:
        print(
            off_image_note(
                off_image, sum(r["trials"] - r["aborted_trials"] for r in records), args.image_px
            )
        )
    print(f"records -> {args.json}")
    if records[0]["interrupted"]:
        args.on_interrupt = (
            f"the records of the {records[0]['trials']} speculative and {records[1]['trials']} "
            f"plain trials run so far are in {args.json}"
        )
        raise KeyboardInterrupt
    if records[0]["stopped_by"]:
        raise FoveaError(
            f"the generator failed for good ({records[0]['stopped_by']}); the records of the "
            f"{records[0]['trials']} speculative and {records[1]['trials']} plain trials run "
            f"before it are in {args.json}"
        )
    return 0
