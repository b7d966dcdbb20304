"""Study subcommands (`fovea demo`, `run`, `simulate`). Filled in by the study runner."""

from __future__ import annotations

import argparse


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    demo = subparsers.add_parser("demo", help="generate a foveated image and its twin (demo)")
    demo.add_argument("--out", default="fovea-demo", help="output folder (default: fovea-demo)")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from generator.demo import run_demo

    run_demo(out_dir=args.out)
    return 0
