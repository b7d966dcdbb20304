"""Subcommands of this package, registered by ``fovea_cli``:
``fovea stimuli build|merge|check|sheet``."""

from __future__ import annotations

import argparse

from generator.arg_types import positive_int

#: ``--tile-px``'s range: a smaller tile shows nothing, a larger one only upscales (and a sheet
#: of 100000 px tiles exhausted the memory; ``stimuli.sheet.MAX_SHEET_PIXELS`` bounds the whole).
TILE_PX_RANGE = (16, 2048)

#: As ``fovea run`` and ``fovea check`` take it (``protocol.load.resolve_protocol``).
PROTOCOL_HELP = "protocol TOML file, or a shipped protocol's name (e.g. pilot_2afc)"


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``stimuli`` (build, merge, check, sheet)."""
    stim = subparsers.add_parser(
        "stimuli", help="pre-generated stimulus sets: build, merge, check, contact sheet"
    )
    sub = stim.add_subparsers(dest="stimuli_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build",
        help="pre-generate a protocol's references and foveated versions into a content-addressed cache",
        description="Pre-generate everything PROTOCOL allows (full-resolution references for every seed and "
        "conditioning; foveated versions at each condition's fixation target for every level the procedure "
        "can present) into DIR/objects, with a manifest of hashes, parameters and timings. Under "
        "`accelerate launch` each process builds the shard of its rank.",
    )
    build.add_argument("protocol", metavar="PROTOCOL", help=PROTOCOL_HELP)
    build.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="set directory (default: stimulus_sets/<protocol name>)",
    )
    build.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="build shard I of N (1-based); merge when all are done",
    )
    build.add_argument(
        "--only",
        choices=("all", "references", "foveated"),
        default="all",
        help="what to build (default: all)",
    )
    build.add_argument(
        "--max-seeds",
        type=int,
        default=None,
        metavar="N",
        help="only the first N seeds of the pool (into a fuller set's folder: its manifest then "
        "lists only these; the other images stay and a full build lists them again)",
    )
    build.add_argument("--device", default=None, help="torch device (default: the protocol's)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.add_argument(
        "--scenes",
        metavar="DIR",
        default=None,
        help="scene models: a folder of photographs instead of the protocol's [stimulus] scenes",
    )
    build.set_defaults(
        handler=_build,
        on_interrupt="the images made so far are kept: the same command continues and reuses them",
    )

    merge = sub.add_parser("merge", help="merge shard manifests into DIR/manifest.json")
    merge.add_argument(
        "directory", metavar="DIR", help="the set directory holding the shards' manifests"
    )
    merge.set_defaults(handler=_merge)

    check = sub.add_parser(
        "check",
        help="check a set against a protocol: coverage, file hashes and the model's weights "
        "(as a session does)",
    )
    check.add_argument("protocol", metavar="PROTOCOL", help=PROTOCOL_HELP)
    check.add_argument(
        "directory", metavar="DIR", help="stimulus set directory (fovea stimuli build --out)"
    )
    check.add_argument(
        "--quick",
        action="store_true",
        help="check file presence, not the files' hashes nor the model's weights (not loaded)",
    )
    check.add_argument(
        "--scenes", metavar="DIR", default=None, help="the scenes the session will use"
    )
    check.set_defaults(handler=_check)

    sheet = sub.add_parser(
        "sheet",
        help="contact sheet PNG: references, foveated versions with fixation, token layouts",
    )
    sheet.add_argument("directory", metavar="DIR", help="stimulus set directory")
    sheet.add_argument(
        "--out", metavar="PNG", default=None, help="output (default: DIR/contact_sheet.png)"
    )
    sheet.add_argument("--rows", type=positive_int, default=4, help="stimuli shown (default 4)")
    sheet.add_argument(
        "--levels", type=positive_int, default=3, help="levels per condition (default 3)"
    )
    sheet.add_argument(
        "--tile-px",
        type=_tile_px,
        default=256,
        help=f"tile size (the images' longer side), {TILE_PX_RANGE[0]} to {TILE_PX_RANGE[1]} px "
        "(default 256)",
    )
    sheet.set_defaults(handler=_sheet)


def _tile_px(text: str) -> int:
    """argparse type of ``--tile-px``: whole pixels in ``TILE_PX_RANGE``."""
    value = positive_int(text)
    low, high = TILE_PX_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{value} px is out of range: give {low} to {high}")
    return value


def _build(args) -> int:
    from protocol.load import resolve_protocol
    from stimuli.build import build_stimulus_set, parse_shard

    shard = parse_shard(args.shard) if args.shard else None
    build_stimulus_set(
        protocol_path=resolve_protocol(args.protocol),
        out=args.out,
        shard=shard,
        only=args.only,
        max_seeds=args.max_seeds,
        device=args.device,
        progress=not args.no_progress,
        scenes=args.scenes,
    )
    return 0


def _merge(args) -> int:
    from stimuli.manifest import merge_manifests, read_manifest

    path = merge_manifests(args.directory)
    print(f"merged -> {path}")
    # Shards built on several machines: their manifests are small to copy, their images not.
    entries = read_manifest(path)["entries"]
    absent = sum(not (path.parent / e["file"]).is_file() for e in entries)
    if absent:
        print(
            f"note: {absent} of the {len(entries)} images the shards list are not in "
            f"{path.parent / 'objects'}: copy each shard's objects/ folder into it (a session "
            "refuses the set until then)"
        )
    return 0


def _check(args) -> int:
    from protocol import load_protocol
    from protocol.load import resolve_protocol
    from protocol.scenes import check_scenes, check_scenes_unloaded, scenes_spec
    from stimuli.check import check_stimulus_set

    loaded = load_protocol(resolve_protocol(args.protocol))
    scenes = scenes_spec(loaded, override=args.scenes)
    # As `fovea check` and a session: no scenes for a model that takes prompts or classes.
    checked = check_scenes_unloaded(spec=scenes, protocol=loaded.protocol)
    from stimuli.check import generator_weights

    # As a session at start: a set made with other weights (a model directory updated in
    # place, a preset changed with an upgrade) is refused; --quick reads no weights.
    weights = None if args.quick else generator_weights(loaded, args.directory)
    sset = check_stimulus_set(
        args.directory,
        protocol=loaded,
        fingerprint=weights,
        verify_files=not args.quick,
        scenes=scenes,
    )
    if not checked:  # a model directory: the set, built from it, says whether it takes scenes
        made_from = sset.manifest["scenes"]
        factor = None if made_from is None else int(made_from["factor"])
        check_scenes(spec=scenes, protocol=loaded.protocol, scene_factor=factor)
    from stimuli.check import moved_model_directory

    built_with = sset.manifest["model"].get("model")
    if moved_model_directory(built_with, loaded.protocol.stimulus.model):
        print(
            f"note: the set was built from model directory {built_with}, the protocol names "
            f"{loaded.protocol.stimulus.model}: a session compares their weights when it starts"
        )
    from stimuli.check import missing_references_note

    note = missing_references_note(sset, loaded)
    if note:
        print(note)
    n_ref = sum(e["kind"] == "reference" for e in sset.entries)
    print(
        f"ok: {len(sset.entries)} images ({n_ref} references, {len(sset.entries) - n_ref} foveated) match "
        f"{args.protocol}" + ("" if args.quick else ", all hashes and the model's weights verified")
    )
    return 0


def _sheet(args) -> int:
    from generator.cli_args import check_image_output
    from stimuli.sheet import write_contact_sheet

    if args.out:
        check_image_output(args.out, option="--out")
    path = write_contact_sheet(
        args.directory,
        out=args.out,
        rows=args.rows,
        levels_per_condition=args.levels,
        tile_px=args.tile_px,
    )
    print(f"contact sheet -> {path}")
    return 0
