"""The simulated-data writer produces the study's exact layout and columns, deterministically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.data import load_dataset
from analysis.session_reader import REQUIRED_COLUMNS
from analysis.simulate_data import SimulationSpec, simulate_dataset
from protocol.session_data import COLUMNS


def test_layout_columns_and_sidecar(tmp_path):
    spec = SimulationSpec(
        participants=2,
        trials_per_condition=30,
        procedure="questplus",
        perceptual_participants=1,
        seed=5,
    )
    truth = simulate_dataset(out_dir=tmp_path / "d", spec=spec)
    beh = sorted((tmp_path / "d").rglob("*_beh.tsv"))
    assert [p.relative_to(tmp_path / "d").as_posix() for p in beh] == [
        "sub-01/ses-1/beh/sub-01_ses-1_task-fovea2afc_beh.tsv",
        "sub-02/ses-1/beh/sub-02_ses-1_task-fovea2afc_beh.tsv",
        "sub-vdp01/ses-1/beh/sub-vdp01_ses-1_task-fovea2afc_beh.tsv",
    ]
    header = beh[0].read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    assert tuple(header) == COLUMNS and set(REQUIRED_COLUMNS) <= set(header)
    sidecar = json.loads(
        beh[0].with_name(beh[0].name.replace("_beh.tsv", "_beh.json")).read_text(encoding="utf-8")
    )
    for key in (
        "TaskName",
        "protocol_name",
        "protocol_sha256",
        "display",
        "image_size_px",
        "patch_px",
        "conditions",
        "observer",
        "completed",
        "calibration",
        "true_thresholds",
    ):
        assert key in sidecar
    ds = load_dataset(data_dir=tmp_path / "d")
    responded = ds.trials[(ds.trials["fixation_break"] == 0)]
    counts = responded.groupby(["participant", "condition"]).size()
    assert (counts == 30).all()
    assert {t["participant"] for t in truth} == {"01", "02", "vdp01"}
    t01 = {t["condition"]: t["threshold"] for t in truth if t["participant"] == "01"}
    assert sidecar["true_thresholds"] == pytest.approx(t01)


def test_same_seed_same_bytes(tmp_path):
    spec = SimulationSpec(participants=2, trials_per_condition=20, seed=9)
    simulate_dataset(out_dir=tmp_path / "a", spec=spec)
    simulate_dataset(out_dir=tmp_path / "b", spec=spec)
    for p in sorted((tmp_path / "a").rglob("*.*")):
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()


def test_the_studys_reader_accepts_simulated_files(tmp_path):
    from protocol.session_data import read_rows

    simulate_dataset(
        out_dir=tmp_path / "d", spec=SimulationSpec(participants=1, trials_per_condition=10, seed=1)
    )
    rows = read_rows(next((tmp_path / "d").rglob("*_beh.tsv")))
    assert len(rows) >= 20 and rows[0]["participant"] == "01"
    assert np.isfinite(float(rows[0]["level"]))


def test_the_column_list_matches_the_studys_and_each_seed_has_one_scene(tmp_path):
    import pandas as pd

    from protocol.session_data import COLUMNS

    simulate_dataset(out_dir=tmp_path / "d", spec=SimulationSpec(participants=1, seed=2))
    (path,) = (tmp_path / "d").rglob("*_beh.tsv")
    assert tuple(path.read_text(encoding="utf-8").split("\n", 1)[0].split("\t")) == COLUMNS
    rows = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    assert rows.groupby("seed")["scene"].nunique().eq(1).all()
    assert rows["scene"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert set(rows["reference"]) == {"generated"}
