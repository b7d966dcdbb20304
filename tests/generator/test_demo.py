"""The generator example (``generator.demo``) with the shipped scene model: scene, foveated image,
twin, layout and the side-by-side panel that README's figure is."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from generator.demo import run_generator_demo


def test_generator_demo_with_a_pool_scene_writes_the_panel(tmp_path):
    seed = 3  # printed for reproduction: the pool scene is picked by this seed
    print(f"seed {seed}")
    paths = run_generator_demo(out_dir=tmp_path, size_px=256, seed=seed, gaze_deg=(1.0, 0.0))
    scene = Image.open(paths["scene"])
    assert scene.size == (64, 64)  # the default model's scene: 4x smaller
    record = json.loads(paths["foveated"].with_suffix(".json").read_text())
    assert record["scene"]["source"].startswith("pool:")
    assert record["tokens"] < record["tokens_full"]
    panel = np.asarray(Image.open(paths["panel"]).convert("RGB"))
    assert panel.shape == (480 + 28, 4 * 480, 3)  # scene | foveated | twin | layout
    for tile in range(4):  # every tile holds a picture, not a blank
        assert panel[28:, tile * 480 : (tile + 1) * 480].std() > 5
