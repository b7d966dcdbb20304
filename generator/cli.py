"""Generator subcommands: ``fovea generate``, ``fovea mask``, ``fovea bench generator``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from generator.arg_types import output_file, positive_int, seed_int, size_list
from generator.atomic import save_image_atomic, write_atomic
from generator.cli_args import (
    add_geometry_options,
    add_layout_options,
    add_scene_options,
    check_image_output,
    gaze_from_args,
    geometry_from_args,
    scene_source_from_args,
    spec_from_args,
)
from generator.decoding import DECODES
from generator.precision import DTYPES

# Scene factor for models that do not set one (prompt models, image-to-image): the default's.
PROMPT_MODEL_SCENE_FACTOR = 4


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    gen = subparsers.add_parser(
        "generate",
        help="generate a foveated image (or its full twin)",
        description="Generate one image on the token layout for a gaze (with --full: its "
        "full-resolution twin, same scene and seed) and write it as PNG with a JSON sidecar.",
    )
    add_geometry_options(gen)
    add_layout_options(gen)
    add_scene_options(gen)
    gen.add_argument(
        "--seed", type=seed_int, default=0, help="noise and pool-scene seed (default: 0)"
    )
    gen.add_argument("--out", required=True, help="output PNG; a JSON sidecar is written beside it")
    gen.add_argument(
        "--full", action="store_true", help="full resolution (the foveated image's twin)"
    )
    gen.add_argument(
        "--model",
        default="default",
        help="preset name (default: default, the embedded scene model) or local model directory",
    )
    gen.add_argument(
        "--lora", default=None, help="LoRA file merged at load (the Foveated Diffusion release's)"
    )
    gen.add_argument(
        "--prompt",
        default=None,
        help="text prompt (text models) or class index (class models such as tiny, which hash a "
        "text to a class); scene models such as default take none",
    )
    gen.add_argument(
        "--steps", type=positive_int, default=None, help="sampling steps (default: model's)"
    )
    gen.add_argument("--device", default="cpu", help="torch device (default: cpu; e.g. cuda)")
    gen.add_argument("--dtype", default=None, choices=DTYPES)
    gen.add_argument(
        "--decode",
        default="full",
        choices=DECODES,
        help="latent models: decode a foveated image in full (default) or foveated (the periphery "
        "at the resolution its tokens carry; faster)",
    )
    gen.add_argument(
        "--eager",
        action="store_true",
        help="sample eagerly on a GPU too (default there: static shapes with CUDA graphs)",
    )
    gen.add_argument("--mask-out", default=None, help="also write the layout drawn over the image")
    gen.add_argument("--scene-out", default=None, help="also write the scene used (PNG)")
    gen.add_argument(
        "--t-start",
        type=float,
        default=None,
        help="prompt models given a scene: where image-to-image starts, in (0, 1] (1 = noise; "
        "default: 0.6)",
    )
    gen.set_defaults(handler=_generate)

    mask = subparsers.add_parser(
        "mask",
        help="draw a token layout over an image",
        description="Build the token layout for a gaze (no model) and draw it over an image "
        "as PNG; prints the token count per level.",
    )
    add_geometry_options(mask)
    add_layout_options(mask)
    mask.add_argument(
        "--image",
        default=None,
        help="image to draw over, upright and centre-cropped as --scene is (default: mid grey)",
    )
    mask.add_argument(
        "--token-px",
        type=positive_int,
        default=16,
        help="image pixels per fine token (default: 16)",
    )
    mask.add_argument("--out", required=True, help="output PNG")
    mask.set_defaults(handler=_mask)

    bench = bench_subparsers.add_parser("generator", help="full vs foveated generation speed")
    bench.add_argument(
        "--json", required=True, type=output_file, help="where to write the JSON records"
    )
    bench.add_argument(
        "--model",
        default="bench-10m",
        help="model to time (default: bench-10m, random weights of a 10 M-parameter "
        "transformer; 'default': the embedded model with its scene pipeline)",
    )
    bench.add_argument(
        "--sizes",
        type=size_list,
        default=[512, 1024],
        help="comma-separated image sizes (default: 512,1024)",
    )
    bench.add_argument("--steps", type=positive_int, default=None, help="default: the model's own")
    bench.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        help="timed runs per setting (median; default: 1)",
    )
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--dtype", default=None, choices=DTYPES)
    bench.set_defaults(handler=_bench)


def _condition(prompt: str | None):
    if prompt is not None and prompt.lstrip("-").isdigit():
        return int(prompt)
    return prompt


def _check_distinct_outputs(args: argparse.Namespace) -> None:
    """--out, --mask-out and --scene-out must be different files: one would overwrite the other
    (the generated image replaced by its mask or its scene), and none may be the --scene
    photograph (replaced by its own small scene or the generated image)."""
    from generator.errors import FoveaError

    seen: dict[Path, str] = {}
    if args.scene:
        seen[Path(args.scene).resolve()] = "--scene"
    outputs = [("--out", args.out), ("--mask-out", args.mask_out), ("--scene-out", args.scene_out)]
    for option, path in outputs:
        if not path:
            continue
        key = Path(path).resolve()
        if key in seen and seen[key] == "--scene":
            raise FoveaError(
                f"{option} {path} is the --scene photograph: writing it would destroy the "
                "photograph; give the output another name"
            )
        if key in seen:
            raise FoveaError(
                f"{option} {path} is also {seen[key]}: one would overwrite the other; give "
                "each output its own file"
            )
        seen[key] = option
    if args.scenes:
        _check_outside_scene_folder(args, Path(args.scenes))


def _check_outside_scene_folder(args: argparse.Namespace, folder: Path) -> None:
    """No output image may go into the --scenes folder: the next run would take it for one of the
    photographs, and every seed after it in the folder's order would get another photograph."""
    from generator.errors import FoveaError
    from generator.scene_sources import SUFFIXES

    for option in ("out", "mask_out", "scene_out"):
        path = getattr(args, option)
        if path and Path(path).suffix.lower() in SUFFIXES:
            if Path(path).resolve().parent == folder.resolve():
                raise FoveaError(
                    f"--{option.replace('_', '-')} {path} is in the --scenes folder {folder}: "
                    "the next run would take it for a photograph (and give the seeds other "
                    "photographs); write it elsewhere"
                )


def _note_fine_edge_strips(width_px: int, height_px: int, *, patch_px: int) -> None:
    """``generator.layout.fine_edge_strip_note`` on stderr, when there is one."""
    from generator.layout import fine_edge_strip_note

    note = fine_edge_strip_note(width_px, height_px, patch_px=patch_px)
    if note:
        print(f"note: {note}", file=sys.stderr)


def _check_sidecar_free(out: Path) -> None:
    """The sidecar ``OUT.json`` must not be another image's: ``s.png`` after ``s.jpg`` would
    replace the sidecar of ``s.jpg``, which is still there, with its own."""
    import json

    from PIL import Image

    from generator.errors import FoveaError

    sidecar = out.with_suffix(".json")
    if not sidecar.is_file():
        return
    try:
        named = json.loads(sidecar.read_text(encoding="utf-8")).get("image_file")
    except (ValueError, UnicodeDecodeError, AttributeError):
        named = None  # not a sidecar of ours: a sibling image below still protects it
    Image.init()
    if named is not None:
        others = [out.with_name(named)] if named != out.name else []
    else:  # a sidecar written before sidecars named their image
        others = [out.with_suffix(ext) for ext in Image.registered_extensions()]
        others = [o for o in others if o.suffix != out.suffix]
    owner = next((o for o in others if o.is_file()), None)
    if owner is not None:
        raise FoveaError(
            f"--out {out}: its sidecar would be {sidecar}, which is already the sidecar of "
            f"{owner}; give --out another name (e.g. {out.with_stem(out.stem + '-2')})"
        )


def _save_image(path: Path, image) -> None:
    """Write an output image, its folder made first (as for every output of ``generate``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(path, image)


def _generate(args: argparse.Namespace) -> int:
    from PIL import Image

    from generator.draw import draw_layout
    from generator.errors import FoveaError
    from generator.img2img import check_t_start
    from generator.layout import LayoutSpec
    from generator.loading import load_generator
    from generator.scene_sources import check_scene_size

    for option, path in (("--out", args.out), ("--mask-out", args.mask_out)):
        if path:
            check_image_output(path, option=option)
    if args.scene_out:
        check_image_output(args.scene_out, option="--scene-out")
    _check_distinct_outputs(args)
    _check_sidecar_free(Path(args.out))
    if args.full and args.mode not in ("acuity", "full"):  # acuity: the default, not a choice
        raise FoveaError(
            f"--full makes the full-resolution twin, on no token layout: --mode {args.mode} "
            "does not apply; drop one of them"
        )
    geometry = geometry_from_args(args)
    width_px, height_px = geometry.image_width_px, geometry.image_height_px
    spec = LayoutSpec(mode="full") if args.full else spec_from_args(args)
    gaze = None if spec.mode == "full" else gaze_from_args(args, geometry)
    # Everything about the scene that does not need the model is refused before it loads.
    check_scene_size(width_px=width_px, height_px=height_px, factor=None)
    source = scene_source_from_args(args)
    if args.t_start is not None:
        check_t_start(args.t_start)
        if source is None:
            raise FoveaError(
                "--t-start is where image-to-image starts from a scene given with --scene or "
                "--scenes; without one a prompt model samples from noise: drop --t-start or "
                "give a scene"
            )
    if source is not None:
        source.check(width_px=width_px, height_px=height_px)
    generator = load_generator(
        args.model,
        device=args.device,
        dtype=args.dtype,
        lora=args.lora,
        decode=args.decode,
        static_shapes=False if args.eager else None,
    )
    if spec.mode != "full":
        _note_fine_edge_strips(width_px, height_px, patch_px=generator.token_px)
    if args.prompt is not None and generator.takes_scene:
        raise FoveaError(
            f"--prompt: model {args.model!r} generates from a scene (--scene or --scenes), not "
            "from a prompt; drop --prompt"
        )
    if args.t_start is not None and generator.takes_scene:
        raise FoveaError(
            f"--t-start: model {args.model!r} adds detail to its scene starting from noise; "
            "--t-start is for prompt models given a scene (image-to-image); drop it"
        )
    scene = None
    if source is not None:
        factor = generator.scene_factor or PROMPT_MODEL_SCENE_FACTOR
        scene = source.scene(seed=args.seed, width_px=width_px, height_px=height_px, factor=factor)
    if args.scene_out and scene is None and not generator.takes_scene:
        raise FoveaError(
            f"--scene-out: model {args.model!r} generates from a prompt, without a scene, "
            "unless one is given with --scene or --scenes"
        )
    options = {} if args.t_start is None else {"t_start": args.t_start}
    result = generator.generate(
        seed=args.seed,
        geometry=geometry,
        gaze_px=gaze,
        spec=spec,
        condition=_condition(args.prompt),
        steps=args.steps,
        scene=scene,
        **options,
    )
    out = Path(args.out)
    _save_image(out, Image.fromarray(result.image))
    sidecar = {"image_file": out.name, **result.sidecar}
    write_atomic(out.with_suffix(".json"), json.dumps(sidecar, indent=2))
    if args.mask_out:
        _save_image(Path(args.mask_out), draw_layout(result.layout, image=result.image))
    if args.scene_out:
        _save_image(Path(args.scene_out), Image.fromarray(result.scene.pixels))
    used = f", scene {result.scene.source}" if result.scene is not None else ""
    print(
        f"{out}: {result.tokens}/{result.tokens_full} tokens ({result.layout.token_ratio:.3f}), "
        f"{result.seconds:.2f} s{used}"
    )
    return 0


def _mask(args: argparse.Namespace) -> int:
    from generator.backdrop import read_backdrop
    from generator.draw import draw_layout
    from generator.layout import build_layout

    check_image_output(args.out, option="--out")
    if args.image and Path(args.image).resolve() == Path(args.out).resolve():
        from generator.errors import FoveaError

        raise FoveaError(
            f"--out {args.out} is the --image picture: writing it would replace the picture "
            "with its mask; give the output another name"
        )
    geometry = geometry_from_args(args)
    spec = spec_from_args(args)
    gaze = None if spec.mode == "full" else gaze_from_args(args, geometry)
    if spec.mode != "full":
        _note_fine_edge_strips(
            geometry.image_width_px, geometry.image_height_px, patch_px=args.token_px
        )
    layout = build_layout(geometry=geometry, gaze_px=gaze, spec=spec, patch_px=args.token_px)
    image = None
    if args.image:
        image = read_backdrop(
            args.image, width_px=geometry.image_width_px, height_px=geometry.image_height_px
        )
    _save_image(Path(args.out), draw_layout(layout, image=image))
    print(
        f"{args.out}: {layout.num_tokens}/{layout.num_tokens_full} tokens "
        f"({layout.token_ratio:.3f}) {layout.level_counts()}"
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from generator.bench import run_generator_benchmark

    records = run_generator_benchmark(
        model=args.model,
        sizes=args.sizes,
        steps=args.steps,
        repeats=args.repeats,
        device=args.device,
        dtype=args.dtype,
    )
    records = [{**r, "command": args.command_line} for r in records]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(records, indent=2))
    print(f"wrote {len(records)} records to {args.json}")
    if records[0]["interrupted"]:
        args.on_interrupt = (
            f"the {len(records)} of {records[0]['records_planned']} records measured so far are "
            f"in {args.json}"
        )
        raise KeyboardInterrupt
    return 0
