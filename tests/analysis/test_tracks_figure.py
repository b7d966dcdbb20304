"""The levels trial by trial (adaptive procedures): one figure per participant beside its
psychometric functions, one line per track; none for constant stimuli."""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from analysis.figures import participant_tracks
from analysis.fits import FitSettings, fit_cell
from analysis.report import ReportConfig, build_report
from analysis.simulate_data import SimulationSpec, simulate_dataset

SEED = 11


def _report(tmp_path, procedure: str):
    spec = SimulationSpec(
        participants=2,
        trials_per_condition=40,
        procedure=procedure,
        perceptual_participants=0,
        seed=SEED,
    )
    simulate_dataset(out_dir=tmp_path / "data", spec=spec)
    config = ReportConfig(fit=FitSettings(n_boot=100, seed=0), progress=False, workers=1)
    return build_report(data_dir=tmp_path / "data", out_dir=tmp_path / "out", config=config)


def _legend_rows_below_panels(png: bytes) -> int:
    """Pixel rows under the lowest panel's x axis that hold a track-blue pixel (the legend's
    "correct" marker; the axis labels are black)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    dark = pixels.sum(axis=2) < 150
    bottom_spine = np.flatnonzero(dark.mean(axis=1) > 0.15).max()  # the panels' x axes
    below = pixels[bottom_spine + 1 :]
    return int((np.abs(below - (31, 119, 180)).sum(axis=2) < 40).any(axis=1).sum())


def test_an_adaptive_study_shows_each_participants_tracks_after_their_curves(tmp_path):
    print(f"seed {SEED}")
    result = _report(tmp_path, "questplus")
    figures = sorted(p.name for p in (result.out_dir / "figures").glob("*.png"))
    assert [f for f in figures if f.startswith("tracks_")] == [
        "tracks_sub-01.png",
        "tracks_sub-02.png",
    ]
    html = result.html.read_text(encoding="utf-8")
    alts = re.findall(r'<img alt="((?:psychometric|tracks)_sub-\d+)"', html)
    assert alts == [
        "psychometric_sub-01",
        "tracks_sub-01",
        "psychometric_sub-02",
        "tracks_sub-02",
    ]
    assert "the level of each analysed trial in the order it ran" in html
    # The legend sat inside the first panel (loc="best"), over the track where the threshold's
    # interval band left no free corner; it is now under the panels.
    for name in ("tracks_sub-01.png", "tracks_sub-02.png"):
        assert _legend_rows_below_panels((result.out_dir / "figures" / name).read_bytes()) > 3


def test_constant_stimuli_have_no_tracks(tmp_path):
    result = _report(tmp_path, "constant")
    assert not list((result.out_dir / "figures").glob("tracks_*.png"))
    assert "in the order it ran" not in result.html.read_text(encoding="utf-8")


def test_interleaved_tracks_are_drawn_in_their_own_colours():
    rng = np.random.default_rng(SEED)
    levels = np.geomspace(4.0, 1.0, 30)
    correct = (rng.random(30) < 0.8).astype(float)
    track = np.array(["c/s1", "c/s2"] * 15, dtype=object)
    fit = fit_cell(
        participant="01",
        condition="c",
        observer="parametric",
        levels=levels,
        correct=correct,
        settings=FitSettings(n_boot=100, bayes=False),
    )
    png = participant_tracks([fit], [(levels, correct, track)], title="t", truth={"c": 1.5})
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    blue = (np.abs(pixels - (31, 119, 180)).sum(axis=2) < 30).sum()  # track 1
    # Track 2 was drawn in the threshold line's red; it has its own colour (purple).
    purple = (np.abs(pixels - (148, 103, 189)).sum(axis=2) < 30).sum()
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    red = ((r > g + 100) & (r > b + 100)).sum()  # the threshold line (over its pink band)
    green = ((g > r + 40) & (g > b + 40)).sum()  # the true threshold's dotted line
    print("pixels: blue", blue, "purple", purple, "red", red, "green", green)
    assert blue > 100 and purple > 100 and red > 100 and green > 20
