"""Shared fixtures: small simulated data sets in the study's layout (seeds printed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset

GOLDEN_SEED = 4242


def golden_spec() -> SimulationSpec:
    """The fixed data set behind the golden tables: 5 participants (one incomplete session, one
    excluded by QC for fixation breaks), one perceptual-observer session, two conditions."""
    return SimulationSpec(
        participants=5,
        conditions=(
            SimCondition(name="acuity_centre", threshold=1.5),
            SimCondition(name="acuity_right8", threshold=0.9, fixation_deg=(8.0, 0.0)),
        ),
        trials_per_condition=84,
        procedure="constant",
        perceptual_participants=1,
        incomplete=("02",),
        overrides={"05": {"fixation_break_rate": 0.45}},
        seed=GOLDEN_SEED,
    )


@pytest.fixture(scope="session")
def golden_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("golden") / "data"
    print(f"golden data set: seed {GOLDEN_SEED}")
    simulate_dataset(out_dir=root, spec=golden_spec())
    return root


@pytest.fixture()
def small_data(tmp_path) -> Path:
    """A fresh copy-able small data set (3 participants, 2 conditions, 60 trials), seed 7."""
    root = tmp_path / "data"
    print("small data set: seed 7")
    simulate_dataset(
        out_dir=root, spec=SimulationSpec(participants=3, trials_per_condition=60, seed=7)
    )
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
