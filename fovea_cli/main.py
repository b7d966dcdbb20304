"""The ``fovea`` entry point: builds the parser from the packages' command modules and runs one."""

from __future__ import annotations

import argparse
import importlib
import os
import select
import shlex
import sys

from generator.errors import FoveaError, is_path_error, path_error_message

# Order here is the order in `fovea --help` (and in `fovea bench --help`).
_COMMAND_MODULES = (
    "protocol.cli",  # check
    "study.commands",  # run, simulate; bench session
    "fovea_cli.demo",  # demo
    "generator.cli",  # generate, mask; bench generator
    "generator.model_cli",
    "stimuli.cli",  # stimuli build|merge|check|sheet
    "study.realtime_command",  # bench realtime
    "analysis.cli",  # report; bench report
)


class _VersionAction(argparse.Action):
    """``--version``: prints the version and exits; git is asked only when it is given."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from protocol.provenance import software_version

        print(f"fovea {software_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fovea",
        description="Foveated generation study kit: generate gaze-contingent images, run and "
        "simulate 2AFC sessions, analyse thresholds.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="the kit's version (and git commit, run from a checkout), as sessions record it",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = subparsers.add_parser("bench", help="benchmarks that write JSON records")
    bench_subparsers = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers, bench_subparsers)
    return parser


def reader_gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe whose reading end is closed (``fovea check ... | head`` once
    head has its lines): only then is a BrokenPipeError the reader's doing, not a fault."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), not a descriptor
        return False


def main(argv: list[str] | None = None) -> int:
    """Run ``fovea`` with ``argv`` (default: the command line); returns the exit status
    (2 and one ``error:`` line for a ``FoveaError`` or a path that cannot be used, 130 and a line
    saying how to continue when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command as given, which benchmarks record with their numbers.
    args.command_line = shlex.join(["fovea", *(sys.argv[1:] if argv is None else argv)])
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a closed pipe (fovea check ... | head) is met here, not at exit
    except BrokenPipeError:
        if not reader_gone(sys.stdout.fileno()):  # another pipe (a child process's): a bug
            raise
        # The reader has gone: the rest of the output goes nowhere, without a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # a shell's status for a command ended by SIGPIPE
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if not is_path_error(error):
            raise
        print(f"error: {path_error_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # A command that can continue says how (its ``on_interrupt``, set with set_defaults).
        how = getattr(args, "on_interrupt", None)
        print(f"interrupted; {how}" if how else "interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
