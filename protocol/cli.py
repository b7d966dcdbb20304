"""``fovea check PROTOCOL``: validate a protocol without loading a generator or opening a window,
and say in a few lines what it runs (the same checks ``fovea run|simulate`` make first)."""

from __future__ import annotations

import argparse
from pathlib import Path

from generator.arg_types import output_file
from generator.errors import FoveaError
from protocol.preview import PREVIEW_FORMATS
from protocol.summary import summary


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``check``."""
    del bench_subparsers
    check = subparsers.add_parser(
        "check",
        help="check a protocol file and summarise it (no generator, no window)",
        description="Check PROTOCOL as fovea run and simulate do before they start (every key, "
        "type and range, the model name, the scene folder) and print what it runs. Every key: "
        "docs/protocol.md.",
    )
    check.add_argument(
        "protocol", help="protocol TOML, or the name of a shipped one (e.g. pilot_2afc)"
    )
    check.add_argument(
        "--scenes",
        metavar="DIR",
        help="a folder of photographs to check instead of the protocol's [stimulus] scenes "
        "(as fovea run|simulate --scenes DIR)",
    )
    check.add_argument(
        "--preview",
        metavar="FILE",
        type=output_file,
        help="also draw the protocol to FILE (.png, .pdf or .svg): the screen with the image and "
        "each condition's fixation target, and each condition's token layout at its lowest, "
        "middle and highest levels over one of its scenes",
    )
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from protocol.load import load_protocol, resolve_protocol
    from protocol.scenes import check_scenes_unloaded, scenes_spec

    if args.preview is not None and Path(args.preview).suffix.lower() not in PREVIEW_FORMATS:
        raise FoveaError(f"--preview {args.preview}: give a {', '.join(PREVIEW_FORMATS)} file name")
    loaded = load_protocol(resolve_protocol(args.protocol))
    scenes = scenes_spec(loaded, override=args.scenes)
    check_scenes_unloaded(spec=scenes, protocol=loaded.protocol)  # as run does once it loads
    for line in summary(loaded.protocol, scenes=scenes):
        print(line)
    print(f"{loaded.path}: valid")
    if args.preview is not None:
        from protocol.preview import write_preview

        print(f"preview: {write_preview(loaded, scenes=scenes, out=args.preview)}")
    return 0
