"""Subcommands of this package; registered by study.cli."""

from __future__ import annotations

import argparse


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add this package's subcommands (none yet)."""
