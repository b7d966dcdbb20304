"""Command-line options shared by the generator's subcommands, and their parsing into objects."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from generator.arg_types import positive_int
from generator.errors import FoveaError
from generator.geometry import DisplayGeometry, StimulusGeometry, default_display
from generator.layout import DEFAULT_CIRCLE_RADIUS, LayoutSpec

if TYPE_CHECKING:  # scene_sources imports torch: not at parser-building time
    from generator.scene_sources import SceneSource


def add_geometry_options(parser: argparse.ArgumentParser, *, image_size_px: int = 1024) -> None:
    parser.add_argument(
        "--display",
        metavar="W,H,WCM,HCM,DCM",
        help="display: resolution px, size cm, viewing distance cm (default "
        + ",".join(f"{v:g}" for v in default_display().as_dict().values())
        + ")",
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=image_size_px,
        metavar="PX",
        help=f"square image size in pixels (default {image_size_px})",
    )


def add_scene_options(parser: argparse.ArgumentParser) -> None:
    """``--scene FILE`` | ``--scenes DIR`` (default: the shipped photo pool, picked by seed)."""
    scenes = parser.add_mutually_exclusive_group()
    scenes.add_argument(
        "--scene",
        metavar="FILE",
        help="scene photograph (JPEG/PNG; its centre crop; default: the photo pool by seed)",
    )
    scenes.add_argument(
        "--scenes",
        metavar="DIR",
        help="folder of scene photographs (JPEG/PNG); the seed picks photo, crop, zoom and flip",
    )


def scene_source_from_args(args: argparse.Namespace) -> SceneSource | None:
    """The source named by ``--scene``/``--scenes``; None when neither is given (the pool)."""
    from generator.scene_sources import SceneError, SceneFile, SceneFolder

    if args.scene is not None:
        path = Path(args.scene)
        if path.is_dir():
            raise SceneError(f"--scene expects an image file; {path} is a folder (use --scenes)")
        return SceneFile(path)
    if args.scenes is not None:
        path = Path(args.scenes)
        if path.is_file():
            raise SceneError(f"--scenes expects a folder; {path} is a file (use --scene)")
        return SceneFolder(path)
    return None


def add_layout_options(parser: argparse.ArgumentParser) -> None:
    gaze = parser.add_mutually_exclusive_group()
    gaze.add_argument(
        "--gaze",
        metavar="X,Y",
        help="gaze in image pixels: x right, y down, 0..image size (default: image centre); "
        "a negative value needs the = form: --gaze=-10,3",
    )
    gaze.add_argument(
        "--gaze-deg",
        metavar="X,Y",
        help="gaze in degrees from the screen centre (x right, y up); a negative value needs "
        "the = form: --gaze-deg=-3,2",
    )
    parser.add_argument(
        "--mode",
        choices=("acuity", "circle", "full"),
        default="acuity",
        help="token layout: acuity (levels from the eye's acuity at each eccentricity), circle "
        "(the paper's full-resolution circle and a coarser periphery) or full (the twin's "
        "grid) (default: acuity)",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="foveation strength (1 nominal acuity, <1 conservative, >1 aggressive)",
    )
    parser.add_argument(
        "--acuity",
        choices=("linear", "geisler_perry"),
        default="linear",
        help="acuity mode: the acuity model (default: linear)",
    )
    parser.add_argument("--padding-deg", type=float, default=0.0, help="fovea padding, degrees")
    parser.add_argument("--max-level", type=int, default=8, help="coarsest level (1,2,4,8,16)")
    parser.add_argument(
        "--circle-radius",
        type=float,
        default=DEFAULT_CIRCLE_RADIUS,
        help="circle mode: radius as a fraction of the half-diagonal",
    )
    parser.add_argument("--periphery-factor", type=int, default=2, help="circle mode: 2 or 4")


def parse_pair(text: str, *, option: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
        if not (math.isfinite(x) and math.isfinite(y)):  # float() takes "nan" and "inf"
            raise ValueError
        return x, y
    except ValueError:
        raise FoveaError(f"{option} expects two finite numbers X,Y, got {text!r}") from None


def geometry_from_args(args: argparse.Namespace) -> StimulusGeometry:
    display = default_display()
    if args.display:
        parts = args.display.split(",")
        try:
            w, h, wcm, hcm, dcm = (float(v) for v in parts)
        except ValueError:
            raise FoveaError(f"--display expects W,H,WCM,HCM,DCM, got {args.display!r}") from None
        if w != int(w) or h != int(h):
            raise FoveaError(f"--display resolution must be whole pixels, got {w:g}x{h:g}")
        display = DisplayGeometry(int(w), int(h), wcm, hcm, dcm)
    return StimulusGeometry(display=display, image_width_px=args.size, image_height_px=args.size)


def gaze_from_args(args: argparse.Namespace, geometry: StimulusGeometry) -> tuple[float, float]:
    if args.gaze_deg:
        x, y = geometry.deg_to_image_px(*parse_pair(args.gaze_deg, option="--gaze-deg"))
        gaze = (float(x), float(y))
    elif args.gaze:
        gaze = parse_pair(args.gaze, option="--gaze")
    else:
        gaze = (geometry.image_width_px / 2, geometry.image_height_px / 2)
    geometry.check_gaze(gaze)
    _note_gaze_off_image(args, geometry, gaze)
    return gaze


def _note_gaze_off_image(
    args: argparse.Namespace, geometry: StimulusGeometry, gaze: tuple[float, float]
) -> None:
    """A note on stderr when the gaze (on the display, else ``check_gaze`` refused it) lies off
    the image: valid (a gaze beside the picture), but most often screen coordinates typed into
    ``--gaze``, or degrees past the image's edge; the layout is then almost all coarse."""
    import sys

    width, height = geometry.image_width_px, geometry.image_height_px
    x, y = gaze
    if 0 <= x <= width and 0 <= y <= height:
        return
    span = f"0..{width}" if width == height else f"x 0..{width}, y 0..{height}"
    image = f"the {width}x{height} px image"
    if args.gaze_deg:
        what = (
            f"--gaze-deg {args.gaze_deg} puts the gaze at image px {x:g},{y:g} (x right, y down, "
            f"{span}), outside {image}"
        )
    else:
        what = (
            f"--gaze {args.gaze} lies outside {image}: --gaze is in image pixels (x right, y "
            f"down, {span}), not screen pixels"
        )
    print(
        f"note: {what}; the layout is built for a gaze off the image (mostly coarse tokens)",
        file=sys.stderr,
    )


def spec_from_args(args: argparse.Namespace) -> LayoutSpec:
    return LayoutSpec(
        mode=args.mode,
        strength=args.strength,
        acuity=args.acuity,
        padding_deg=args.padding_deg,
        max_level=args.max_level,
        circle_radius=args.circle_radius,
        periphery_factor=args.periphery_factor,
    )


def check_image_output(path: str | Path, *, option: str) -> Path:
    """``path`` as a Path, or a FoveaError before any work when an image cannot be written there:
    a folder, or a file name whose extension names no image format (PIL picks the format by it)."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise FoveaError(
            f"{option} {path} is a folder; give an image file, e.g. {path / 'out.png'}"
        )
    Image.init()
    if path.suffix.lower() not in Image.registered_extensions():
        raise FoveaError(
            f"{option} {path}: {path.suffix or 'no extension'} is not an image format; "
            "end the name with .png"
        )
    return path
