"""A session interrupted, its project folder (protocol and photographs) and data folder moved to
another path (spaces, non-ASCII), then resumed there: the scene folder at its new path is the same
source when it makes every logged trial's scene; another folder is refused (default scene model at
128 px, simulated participant, real PsychoPy window)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from generator.errors import FoveaError
from protocol import load_protocol
from protocol.session_data import read_rows
from study.session import run_session
from tests.study.conftest import (
    simulated_session,
    small_protocol_dict,
    stop_with_a_full_disk_at_trial_3,
    write_toml,
)

pytestmark = pytest.mark.display


def _photos(folder, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k in range(3):
        pixels = (rng.random((160, 200, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{k}.png")


def _interrupted(virtual_x, tmp_path, monkeypatch) -> tuple:
    """A session stopped after 2 trials (its disk filled up), in ``tmp_path/lab``."""
    project = tmp_path / "lab" / "project"
    _photos(project / "photos", seed=1)
    data = small_protocol_dict(method="constant", trials=4)
    data["stimulus"].update(model="default", classes=[0], seed_count=3, scenes="photos")
    data["conditions"][0]["levels"] = [2.0]
    config = simulated_session(write_toml(data, project / "p.toml"), tmp_path / "lab" / "data")
    stop_with_a_full_disk_at_trial_3(config, monkeypatch)
    return config


def test_a_moved_project_and_data_folder_resume(virtual_x, tmp_path, monkeypatch):
    config = _interrupted(virtual_x, tmp_path, monkeypatch)
    old_photos = str(tmp_path / "lab" / "project" / "photos")
    moved = tmp_path / "other pc ü"
    shutil.move(tmp_path / "lab", moved)
    resumed = dataclasses.replace(
        config,
        loaded=load_protocol(moved / "project" / "p.toml"),
        data_dir=moved / "data",
        resume=True,
    )
    result = run_session(resumed)
    assert result.completed
    rows = read_rows(result.paths.beh_tsv)
    assert [r["trial"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    scenes = json.loads(result.paths.beh_json.read_text())["scenes"]
    assert scenes["spec"] == str(moved / "project" / "photos")
    assert scenes["earlier_specs"] == [old_photos]


def test_other_photographs_at_the_new_path_are_refused(virtual_x, tmp_path, monkeypatch):
    config = _interrupted(virtual_x, tmp_path, monkeypatch)
    moved = tmp_path / "other pc"
    shutil.move(tmp_path / "lab", moved)
    shutil.rmtree(moved / "project" / "photos")
    _photos(moved / "project" / "photos", seed=2)  # same names, other pictures
    resumed = dataclasses.replace(
        config,
        loaded=load_protocol(moved / "project" / "p.toml"),
        data_dir=moved / "data",
        resume=True,
    )
    with pytest.raises(FoveaError, match="started with scenes .*logged trials' scenes differ"):
        run_session(resumed)
