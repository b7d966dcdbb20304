"""A generator-only demo: a foveated image, its full-resolution twin and a picture of the layout."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from generator.draw import draw_layout
from generator.errors import FoveaError
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.pipeline import FoveatedGenerator


def run_generator_demo(
    *,
    out_dir: str | Path,
    model: str = "default",
    size_px: int = 512,
    seed: int = 1,
    steps: int | None = None,
) -> dict[str, Path]:
    """Write ``foveated.png``, ``full.png`` and ``layout.png`` (+ JSON sidecars) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        generator = FoveatedGenerator.load(model)
    except FoveaError as error:
        if model != "default":
            raise
        print(f"note: {error}; using the random-weight 'tiny' model instead")
        generator = FoveatedGenerator.load("tiny")
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size_px, image_height_px=size_px
    )
    gaze = (size_px * 0.4, size_px * 0.45)
    foveated = generator.generate(
        seed=seed, geometry=geometry, gaze_px=gaze, spec=LayoutSpec(strength=1.0), steps=steps
    )
    full = generator.generate(
        seed=seed, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), steps=steps
    )
    paths = {
        "foveated": out / "foveated.png",
        "full": out / "full.png",
        "layout": out / "layout.png",
    }
    for name, result in (("foveated", foveated), ("full", full)):
        Image.fromarray(result.image).save(paths[name])
        paths[name].with_suffix(".json").write_text(json.dumps(result.sidecar, indent=2))
    draw_layout(foveated.layout, image=foveated.image).save(paths["layout"])
    print(
        f"foveated: {foveated.tokens}/{foveated.tokens_full} tokens in {foveated.seconds:.2f} s; "
        f"full: {full.seconds:.2f} s  ({generator.model_id})"
    )
    return paths
