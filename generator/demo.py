"""A generator-only demo: a scene, the foveated image made from it at a fixation point, its
full-resolution twin and a picture of the token layout (``fovea demo``'s ``generator/`` folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from generator.draw import draw_layout, mark_fixation
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.loading import load_generator


def run_generator_demo(
    *,
    out_dir: str | Path,
    model: str = "default",
    size_px: int = 768,
    seed: int = 1,
    steps: int | None = None,
    gaze_deg: tuple[float, float] = (6.0, 0.0),
    strength: float = 1.0,
    scenes: str = "pool",
    twin: np.ndarray | None = None,
    twin_record: dict | None = None,
) -> dict[str, Path]:
    """Write the demo images (PNG, + JSON records) into ``out_dir``.

    Files: ``scene.png`` (scene models: the low-resolution scene) and ``original.png`` (the
    photograph it came from), ``foveated.png`` and ``foveated_fixation.png`` (the fixation
    marked), ``full.png`` (the full-resolution twin) and ``layout.png``.

    Args:
        out_dir: output folder.
        model: generator (``generator.loading.load_generator``).
        size_px: square image side, on the default display (2560 x 1440 px, 59.8 cm at 60 cm).
        seed: generation seed (picks the scene, too).
        steps: sampler steps (None: the model's).
        gaze_deg: fixation, degrees from the screen centre (x right, y up); inside the image.
        strength: acuity layout strength.
        scenes: scene source for scene models (``pool`` or a folder).
        twin: the seed's full-resolution twin ((H, W, 3) uint8) when already made (a stimulus
            set); None: generated here.
        twin_record: the twin's JSON record, written beside ``full.png`` with ``twin``.

    Returns:
        Name (``scene``, ``original``, ``foveated``, ``fixation``, ``full``, ``layout``,
        ``panel``: scene | foveated with fixation | twin | layout side by side) -> path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = load_generator(model)
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size_px, image_height_px=size_px
    )
    gaze = tuple(float(v) for v in geometry.deg_to_image_px(*gaze_deg))
    scene = _scene(generator, scenes, seed=seed, size_px=size_px)
    foveated = generator.generate(
        seed=seed,
        geometry=geometry,
        gaze_px=gaze,
        spec=LayoutSpec(strength=strength),
        steps=steps,
        scene=scene,
    )
    paths = {name: out / f"{name}.png" for name in ("foveated", "full", "layout")}
    paths["fixation"] = out / "foveated_fixation.png"
    if scene is not None:
        paths.update(_write_scene(scene, out))
    full_seconds = None
    if twin is None:
        twin, twin_record, full_seconds = _generate_twin(generator, seed, geometry, steps, scene)
    Image.fromarray(foveated.image).save(paths["foveated"])
    _write_json(paths["foveated"].with_suffix(".json"), foveated.sidecar)
    mark_fixation(foveated.image, gaze).save(paths["fixation"])
    Image.fromarray(twin).save(paths["full"])
    _write_json(paths["full"].with_suffix(".json"), twin_record or {})
    draw_layout(foveated.layout, image=foveated.image).save(paths["layout"])
    paths["panel"] = out / "panel.png"
    example_panel(_panels(paths, foveated, scene)).save(paths["panel"])
    where = f"scene {scene.source}; " if scene is not None else ""
    full_text = "from the stimulus set" if full_seconds is None else f"{full_seconds:.2f} s"
    print(
        f"{where}foveated at ({gaze_deg[0]:g}, {gaze_deg[1]:g}) deg: "
        f"{foveated.tokens}/{foveated.tokens_full} tokens in {foveated.seconds:.2f} s; "
        f"full: {full_text}  ({generator.model_id})"
    )
    return paths


def _scene(generator, scenes: str, *, seed: int, size_px: int):
    """The seed's scene from ``scenes`` for a scene model (None for other models)."""
    if not generator.takes_scene:
        return None
    from generator.scene_sources import scene_source

    return scene_source(scenes).scene(
        seed=seed, width_px=size_px, height_px=size_px, factor=generator.scene_factor
    )


def _generate_twin(generator, seed: int, geometry, steps: int | None, scene):
    """(image (H, W, 3) uint8, JSON record, seconds) of the seed's full-resolution twin."""
    full = generator.generate(
        seed=seed,
        geometry=geometry,
        gaze_px=None,
        spec=LayoutSpec(mode="full"),
        steps=steps,
        scene=scene,
    )
    return full.image, full.sidecar, full.seconds


def _write_scene(scene, out: Path) -> dict[str, Path]:
    """Write ``scene.png`` and (when it has one) ``original.png``; name -> path."""
    paths = {"scene": out / "scene.png"}
    Image.fromarray(scene.pixels).save(paths["scene"])
    if scene.original is not None:
        paths["original"] = out / "original.png"
        Image.fromarray(scene.original).save(paths["original"])
    return paths


def _panels(paths: dict[str, Path], foveated, scene) -> list[tuple[str, Path]]:
    """The panel's (caption, image): the scene (scene models), the foveated image with its
    fixation, the twin and the token layout."""
    panels = [
        ("foveated, fixation marked", paths["fixation"]),
        ("full-resolution twin", paths["full"]),
    ]
    panels.append(
        (f"token layout: {foveated.tokens}/{foveated.tokens_full} tokens", paths["layout"])
    )
    if scene is not None:
        w, h = scene.size_px
        panels.insert(0, (f"scene ({w}x{h} px)", paths["scene"]))
    return panels


def example_panel(panels: list[tuple[str, Path]], *, tile_px: int = 480) -> Image.Image:
    """Images side by side, each scaled to ``tile_px`` (the scene with square pixels: nearest
    neighbour), with a caption above each."""
    caption_px = 28
    sheet = Image.new("RGB", (tile_px * len(panels), tile_px + caption_px), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (caption, path) in enumerate(panels):
        with Image.open(path) as im:
            small = im.width < tile_px / 2
            resample = Image.Resampling.NEAREST if small else Image.Resampling.LANCZOS
            tile = im.convert("RGB").resize((tile_px, tile_px), resample)
        sheet.paste(tile, (i * tile_px, caption_px))
        draw.text((i * tile_px + 8, 7), caption, fill="black", font=_font(16))
    return sheet


def _font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
