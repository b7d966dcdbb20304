"""`fovea bench quality` and the bounds it can report (generator.models.ceiling)."""

import json
from pathlib import Path

import numpy as np
import torch

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.models.ceiling import (
    block_means,
    level_map,
    reduce_to_layout,
    resample_within_blocks,
)
from generator.tokens import pack

SEED = 1234


def _layout(px: int = 256, strength: float = 1.0):
    geometry = StimulusGeometry(display=default_display(), image_width_px=px, image_height_px=px)
    return build_layout(
        geometry=geometry,
        gaze_px=(px * 0.3, px * 0.4),
        spec=LayoutSpec(mode="acuity", strength=strength),
        patch_px=16,
    )


def test_level_map_covers_every_cell_with_its_blocks_level():
    layout = _layout()
    levels = level_map(layout, cells_per_token=16)
    assert levels.shape == (256, 256)
    assert int(levels.min()) == 1 and int(levels.max()) == int(layout.levels.max())
    # Cell counts per level match the tokens' block areas.
    for k in np.unique(layout.levels):
        area = int((layout.levels == k).sum()) * (16 * int(k)) ** 2
        assert int((levels == int(k)).sum()) == area


def test_resampling_keeps_the_tokens_noise_and_changes_the_rest():
    print(f"seed {SEED}")
    layout = _layout()
    noise = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(SEED))
    other = resample_within_blocks(noise, layout, cells_per_token=16, seed=SEED + 1)
    # What a foveated generation sees is identical ...
    torch.testing.assert_close(
        pack(other, layout, p=16, noise=True), pack(noise, layout, p=16, noise=True)
    )
    # ... fine regions keep their noise exactly, coarse ones get new within-block noise ...
    levels = level_map(layout, cells_per_token=16)
    fine = (levels == 1).expand_as(noise)
    assert torch.equal(other[fine], noise[fine])
    coarse = ~fine
    assert (other[coarse] - noise[coarse]).abs().mean() > 0.5
    # ... and the result is still unit-variance white noise.
    assert abs(float(other.std()) - 1.0) < 0.05
    assert abs(float(block_means(other, 2).std()) - 0.5) < 0.05


def test_reducing_an_image_to_the_full_layout_changes_nothing():
    rng = np.random.default_rng(SEED)
    image = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    full = build_layout(geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16)
    assert np.array_equal(reduce_to_layout(image, full, cells_per_token=16), image)
    reduced = reduce_to_layout(image, _layout(128, 2.0), cells_per_token=16)
    assert reduced.shape == image.shape and not np.array_equal(reduced, image)


def test_quality_bench_scores_variants_and_bounds(tmp_path):
    """The shipped default model at 128 px, one seed: records, summary and the bounds' order."""
    from generator.models.quality import QualitySettings, run_quality

    settings = QualitySettings(
        resolution=128,
        seeds=[0],
        strengths=[0.5, 2.0],
        gazes_frac=[(0.5, 0.5)],
        circle=False,
        ceiling=True,
        steps=4,
    )
    result = run_quality(settings, sheets_dir=tmp_path / "sheets", progress=lambda _: None)
    records, bounds = result["records"], result["bounds"]
    # The pinned records file holds generations only; the bounds get their own.
    assert {r["model_variant"] for r in records} == {"default-foveated", "default-naive"}
    assert {r["model_variant"] for r in bounds} == {"oracle", "ceiling"}
    assert len(records) == len(bounds) == 2 * 2
    for r in records + bounds:
        assert np.isfinite(r["jod"]) and 0 < r["jod"] <= 10.5
        assert 0 < r["token_ratio"] <= 1
    med = result["summary"]["medians"]
    for s in ("0.5", "2.0"):
        # Only resolution is lost in the oracle: nothing can beat it.
        for variant in ("default-foveated", "ceiling"):
            assert med["oracle"][s]["jod_median"] >= med[variant][s]["jod_median"] - 0.05
    crossings = result["summary"]["jod_9_5_crossing_by_variant"]
    assert set(crossings) == {"default-foveated", "default-naive", "oracle", "ceiling"}
    json.dumps(result["summary"])  # JSON-able
    for path in result["summary"]["sheets"].values():
        assert Path(path).is_file() and Path(path).stat().st_size > 1000, path
    assert set(result["summary"]["sheets"]) >= {"full", "foveated", "spectrum", "jod_curve"}
