"""Subcommands of this package; registered by ``fovea_cli``.

- ``fovea report DATA_DIR --out OUT_DIR``: the analysis report (same as
  ``python analysis/report.py``).
- ``fovea bench report --json PATH``: time the report on a simulated study.
"""

from __future__ import annotations

import argparse

from generator.arg_types import output_file, positive_int, seed_int


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``report`` and ``bench report``."""
    from analysis.report import add_arguments

    report = subparsers.add_parser(
        "report",
        help="analyse session data: thresholds with intervals, group statistics, QC, HTML report",
        description="Fit psychometric functions to every *_beh.tsv below DATA_DIR and write "
        "report.html, thresholds.csv, summary.json, figures/ and tables/ to OUT_DIR.",
    )
    add_arguments(report)
    report.set_defaults(handler=_report)

    bench = bench_subparsers.add_parser(
        "report", help="time the analysis report on a simulated study (JSON records)"
    )
    bench.add_argument(
        "--json", required=True, metavar="PATH", type=output_file, help="where to write the records"
    )
    bench.add_argument(
        "--participants",
        type=positive_int,
        default=20,
        help="simulated participants (default: 20)",
    )
    bench.add_argument(
        "--conditions", type=positive_int, default=4, help="conditions per study (default: 4)"
    )
    bench.add_argument(
        "--trials",
        type=positive_int,
        default=200,
        help="trials per participant and condition (default: 200)",
    )
    bench.add_argument(
        "--bootstrap",
        type=positive_int,
        default=1000,
        help="bootstrap replicates per fit, at least 100 (default: 1000)",
    )
    bench.add_argument(
        "--procedure",
        choices=("constant", "questplus"),
        default="constant",
        help="how the simulated sessions chose levels (default: constant)",
    )
    bench.add_argument(
        "--repeats", type=positive_int, default=1, help="timed reports of the study (default: 1)"
    )
    bench.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="processes (default: usable CPUs, at most 4)",
    )
    bench.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="seed of the simulated study (default: 0)",
    )
    bench.add_argument("--keep", metavar="DIR", help="keep the simulated data and reports in DIR")
    bench.set_defaults(handler=_bench)


def _report(args: argparse.Namespace) -> int:
    from analysis.report import run_from_args

    return run_from_args(args)


def _bench(args: argparse.Namespace) -> int:
    from analysis.bench import run_report_benchmark, write_records
    from generator.errors import FoveaError

    for name in ("participants", "conditions", "trials", "repeats"):
        if getattr(args, name) < 1:
            raise FoveaError(f"--{name} must be at least 1, got {getattr(args, name)}")
    records = run_report_benchmark(
        participants=args.participants,
        conditions=args.conditions,
        trials=args.trials,
        n_boot=args.bootstrap,
        procedure=args.procedure,
        repeats=args.repeats,
        workers=args.workers,
        seed=args.seed,
        keep_dir=args.keep,
        progress=True,  # as fovea report shows it: the default study takes minutes
    )
    records = [{**r, "command": args.command_line} for r in records]
    write_records(records, args.json)
    for r in records:
        print(
            f"report: {r['participants']} participants x {r['conditions']} conditions x "
            f"{r['trials_per_condition']} trials: {r['seconds']:.1f} s ({r['workers']} workers)"
        )
    return 0
