"""``fovea stimuli sheet``: a contact sheet PNG to check a stimulus set by eye before a study.

One row per stimulus (seed, conditioning; its scene's source for scene models): the reference
(the full-resolution twin, or the original photograph with ``reference = "original"``), then per
condition and chosen level the foveated version with the fixation target marked (red ring and
crosshair: the point the layout was built for) and its token layout (blocks tinted by level,
``generator.draw.draw_layout``).
"""

from __future__ import annotations

import errno
import shlex
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from generator.draw import mark_fixation
from generator.errors import FoveaError
from generator.token_rules import default_token_rules
from stimuli.manifest import MANIFEST, StimulusSet, read_manifest
from stimuli.store import read_png

#: The largest sheet made (80 megapixels, 240 MB in memory): a larger one is more than PIL opens
#: without a warning (``Image.MAX_IMAGE_PIXELS``), and a very large one exhausted the memory
#: (``--tile-px 100000``).
MAX_SHEET_PIXELS = 80_000_000


def _pick_levels(levels: list[float], k: int) -> list[float]:
    levels = sorted(set(levels))
    if len(levels) <= k:
        return levels
    idx = np.unique(np.round(np.linspace(0, len(levels) - 1, k)).astype(int))
    return [levels[i] for i in idx]


def contact_sheet(
    directory: str | Path, *, rows: int = 4, levels_per_condition: int = 3, tile_px: int = 256
) -> Image.Image:
    """Build the sheet image of the set in ``directory`` (read through its manifest).

    Args:
        directory: the set directory.
        rows: stimuli (seed, conditioning) shown, the first ``rows`` of the set.
        levels_per_condition: levels shown per condition (spread from lowest to highest).
        tile_px: tile side in pixels (``fovea stimuli sheet``: ``stimuli.cli.TILE_PX_RANGE``):
            the images' longer side; the other keeps their aspect ratio (``tile_size``).

    Raises:
        FoveaError: no manifest or no images, or a sheet larger than ``MAX_SHEET_PIXELS``
            (checked before it is made).
    """
    from protocol.geometry import geometry_from_record

    if tile_px < 1:
        raise FoveaError(f"tile_px {tile_px}: a tile is at least 1 pixel")
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise FoveaError(f"{directory} has no {MANIFEST} (build or merge the set first)")
    sset = StimulusSet(directory=directory, manifest=read_manifest(path))
    entries = sset.entries
    geometry = geometry_from_record(sset.manifest["geometry"])
    token_px = int(sset.manifest["model"]["token_px"])
    # The layouts as the set was generated: the release's circle rule with a LoRA.
    rules = default_token_rules(lora=sset.manifest["model"].get("lora_sha256") is not None)
    stimuli = []
    for e in entries:
        key = (e["seed"], e["conditioning"])
        if key not in stimuli:
            stimuli.append(key)
    stimuli = stimuli[:rows]
    refs = {(e["seed"], e["conditioning"]): e for e in entries if e["kind"] == "reference"}
    columns = _columns(
        entries, with_reference=bool(refs), levels_per_condition=levels_per_condition
    )
    if not stimuli or not columns:
        raise FoveaError(f"stimulus set {directory} holds no images")
    fov = {
        (e["seed"], e["conditioning"], e["condition"], float(e["level"])): e
        for e in entries
        if e["kind"] == "foveated"
    }
    label_h, margin = 30, 110
    tile_w, tile_h = tile_size(sset.manifest["geometry"]["image_size_px"], tile_px)
    size = (margin + tile_w * len(columns), label_h + tile_h * len(stimuli))
    if size[0] * size[1] > MAX_SHEET_PIXELS:
        raise FoveaError(
            f"a contact sheet of {len(stimuli)} rows x {len(columns)} tiles of {tile_px} px would "
            f"be {size[0]}x{size[1]} px, more than {MAX_SHEET_PIXELS // 1_000_000} megapixels: "
            "give a smaller --tile-px, --rows or --levels"
        )
    sheet = Image.new("RGB", size, (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    names = {"reference": "original" if sset.manifest["reference"] == "original" else "full"}
    for j, (kind, cond, level) in enumerate(columns):
        text = names.get(kind, kind) if cond is None else f"{cond} {level:.3g}\n{kind}"
        draw.multiline_text((margin + j * tile_w + 4, 2), text, fill=(255, 255, 255))
    for i, (seed, conditioning) in enumerate(stimuli):
        y = label_h + i * tile_h
        draw.multiline_text(
            (4, y + 4), _row_label(entries, seed, conditioning), fill=(255, 255, 255)
        )
        for j, (kind, cond, level) in enumerate(columns):
            e = (
                refs.get((seed, conditioning))
                if kind == "reference"
                else fov.get((seed, conditioning, cond, level))
            )
            if e is None:
                continue
            tile = _tile(directory, e, kind, geometry=geometry, token_px=token_px, rules=rules)
            tile = tile.resize((tile_w, tile_h), Image.Resampling.LANCZOS)
            sheet.paste(tile, (margin + j * tile_w, y))
    return sheet


def tile_size(image_size_px, tile_px: int) -> tuple[int, int]:
    """(width, height) of a sheet tile for images of ``image_size_px`` (width, height): the
    longer side ``tile_px``, the other in proportion (a 256x128 px set's tiles were squares,
    its images and fixation rings squeezed to half their width)."""
    width, height = (int(v) for v in image_size_px)
    scale = tile_px / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _columns(
    entries: list[dict], *, with_reference: bool, levels_per_condition: int
) -> list[tuple[str, str | None, float | None]]:
    """The sheet's columns as (kind, condition, level): the reference, then per condition and
    chosen level its foveated image and its layout."""
    columns: list[tuple[str, str | None, float | None]] = []
    if with_reference:
        columns.append(("reference", None, None))
    conditions: dict[str, list[float]] = {}
    for e in entries:
        if e["kind"] == "foveated":
            conditions.setdefault(e["condition"], []).append(float(e["level"]))
    for name, levels in conditions.items():
        for level in _pick_levels(levels, levels_per_condition):
            columns.append(("foveated", name, level))
            columns.append(("layout", name, level))
    return columns


def _row_label(entries: list[dict], seed, conditioning) -> str:
    """A row's label: seed, conditioning and (scene models) its scene's source name, wrapped."""
    label = f"seed {seed}\ncond {conditioning}"
    scene = next((e.get("scene") for e in entries if e["seed"] == seed and e.get("scene")), None)
    if scene is not None:  # pool:<photo id>#crop=... or a file path: its name, wrapped
        name = Path(scene["source"].split("#")[0]).name.removeprefix("pool:")
        label += "\n" + "\n".join(name[k : k + 16] for k in range(0, min(len(name), 48), 16))
    return label


def _tile(
    directory: Path, e: dict, kind: str, *, geometry, token_px: int, rules: str
) -> Image.Image:
    """Entry ``e``'s tile at full size: the reference as is, a foveated image with its fixation
    marked, or its token layout (under token rules ``rules``) drawn over it."""
    from generator.draw import draw_layout
    from generator.layout import LayoutSpec
    from generator.token_rules import token_rules_layout

    try:
        image = read_png(directory / e["file"])
    except FoveaError as error:  # missing or damaged: the build makes it again
        raise FoveaError(
            f"{error}; `fovea stimuli build PROTOCOL --out {shlex.quote(str(directory))}` (the set's "
            "build) remakes it"
        ) from None
    if kind == "reference":
        return Image.fromarray(image)
    gaze = tuple(e["gaze_px"])
    if kind == "foveated":
        return mark_fixation(image, gaze)
    spec = LayoutSpec(**e["spec"])
    layout = token_rules_layout(
        rules, geometry=geometry, gaze_px=gaze, spec=spec, patch_px=token_px
    )
    return draw_layout(layout, image=image)


def write_contact_sheet(directory: str | Path, *, out: str | Path | None = None, **kwargs) -> Path:
    """Write the sheet PNG (default ``<directory>/contact_sheet.png``) atomically: a full disk
    leaves no torn sheet. Returns its path.

    Raises:
        FoveaError: the default place in the set's folder cannot be written (a set on a
            read-only share): says to give ``out`` elsewhere.
    """
    from generator.atomic import save_image_atomic
    from generator.errors import is_path_error, path_error_message

    default = out is None
    out = Path(directory) / "contact_sheet.png" if default else Path(out)
    sheet = contact_sheet(directory, **kwargs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image_atomic(out, sheet)
    except OSError as error:
        if not (default and is_path_error(error)) or error.errno == errno.ENOSPC:
            raise
        error.filename = str(out)  # not the temporary the atomic write was making
        raise FoveaError(
            f"{path_error_message(error)}: the contact sheet goes into the set's folder unless "
            f"--out names another file (e.g. --out {shlex.quote(out.name)})"
        ) from None
    return out
