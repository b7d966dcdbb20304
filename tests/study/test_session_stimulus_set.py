"""A session with a pre-generated stimulus set (``--stimulus-set``): checked at start, twins
served from the set, a set made with other weights refused (real tiny generator, 128 px)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from stimuli.manifest import MANIFEST
from study.session import SessionConfig, run_session
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display
SEED = 5


@pytest.fixture(scope="module")
def setup(virtual_x, tmp_path_factory):
    from stimuli.build import build_stimulus_set

    root = tmp_path_factory.mktemp("with_set")
    data = small_protocol_dict(method="constant", trials=4)
    data["stimulus"]["seed_count"] = 2
    data["conditions"][0]["levels"] = [2.0]
    protocol_path = write_toml(data, root / "with_set.toml")
    stimulus_set = root / "set"
    build_stimulus_set(
        protocol_path=protocol_path, out=stimulus_set, progress=False, log=lambda *_: None
    )
    return {"root": root, "loaded": load_protocol(protocol_path), "set": stimulus_set}


def _config(setup, participant: str, stimulus_set) -> SessionConfig:
    print("seed", SEED)
    return SessionConfig(
        loaded=setup["loaded"],
        data_dir=setup["root"] / "data",
        participant=participant,
        tracker="sim",
        observer="parametric",
        seed=SEED,
        simulated_clock=True,
        quiet=True,
        stimulus_set=stimulus_set,
    )


def test_twins_come_from_the_checked_set(setup):
    result = run_session(_config(setup, "sim01", setup["set"]))
    assert result.completed
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    shown = rows[rows["abort_reason"].isna()]
    assert len(shown) >= 4
    # No twin was generated: every one came from the set at once.
    assert (shown["twin_latency_s"] == 0.0).all()
    record = json.loads(result.paths.beh_json.read_text())["runs"][-1]["stimulus_set"]
    assert record["directory"] == str(setup["set"])
    assert record["entries"] == 4 + 4  # (2 seeds x 2 classes) references, each at one level
    assert record["weights_checked"] is True


def test_a_set_made_with_other_weights_is_refused(setup, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(setup["set"], other)
    manifest = json.loads((other / MANIFEST).read_text())
    manifest["model"]["weights_sha256"] = "0" * 64
    (other / MANIFEST).write_text(json.dumps(manifest))
    # The weights' hash is part of every image key, so the set check already refuses it; the
    # session's own comparison with the running generator's hash is the second line.
    with pytest.raises(FoveaError, match="(other weights|not in the set)"):
        run_session(_config(setup, "sim02", other))


def test_a_damaged_set_is_refused_before_anything_is_written(setup, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(setup["set"], damaged)
    first = json.loads((damaged / MANIFEST).read_text())["entries"][0]["file"]
    (damaged / first).write_bytes(b"not a png")
    with pytest.raises(FoveaError, match="corrupted"):
        run_session(_config(setup, "sim03", damaged))
    assert not (setup["root"] / "data" / "sub-sim03").exists()


def test_relative_paths_from_another_folder_are_recorded_absolute(setup, tmp_path, monkeypatch):
    """The set copied to a folder with spaces and non-ASCII characters, the session run from there
    with relative paths: the sidecar names the protocol and the set by absolute paths (a relative
    one would mean nothing once the data folder is copied elsewhere)."""
    lab = tmp_path / "lab pc ü"
    shutil.copytree(setup["set"], lab / "set copy")
    shutil.copy(setup["loaded"].path, lab / "p.toml")
    monkeypatch.chdir(lab)
    config = dataclasses.replace(
        _config(setup, "sim04", Path("set copy")),
        loaded=load_protocol("p.toml"),
        data_dir=Path("data"),
    )
    result = run_session(config)
    assert result.completed
    sidecar = json.loads((lab / result.paths.beh_json).read_text())
    assert sidecar["protocol_file"] == str(lab / "p.toml")
    assert sidecar["runs"][-1]["stimulus_set"]["directory"] == str(lab / "set copy")
