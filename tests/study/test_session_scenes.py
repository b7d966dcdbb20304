"""Scenes in a session: the default scene model at 128 px (thread service), simulated participant,
real PsychoPy window. Each trial's scene comes from the session's scene source by its seed and is
logged by content hash; twins come from a stimulus set keyed by seed and scene; with
``reference = "original"`` the scene's photograph is the second image; a bad scene folder is
refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata

from generator.errors import FoveaError
from generator.scene_sources import scene_source
from protocol import load_protocol
from study.session import SessionConfig, run_session
from study.session_display import window_size_px
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display
SEED = 3
SIZE = 128


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A folder with the protocols and ``photos/``: three photographs (JPEG)."""
    root = tmp_path_factory.mktemp("scenes")
    photos = root / "photos"
    photos.mkdir()
    for name, pixels in (
        ("astronaut", skdata.astronaut()),
        ("cat", skdata.chelsea()),
        ("coffee", skdata.coffee()),
    ):
        Image.fromarray(pixels).save(photos / f"{name}.jpg", quality=92)
    return root


def _protocol(root, name: str, **stimulus) -> object:
    data = small_protocol_dict(method="constant", trials=3)
    data["name"] = name
    data["stimulus"].update(model="default", classes=[0], seed_count=3, **stimulus)
    data["conditions"][0]["levels"] = [2.0]
    data["procedure"]["constant"] = {"repeats": 3}
    return load_protocol(write_toml(data, root / f"{name}.toml"))


def _config(loaded, root, participant: str, **extra) -> SessionConfig:
    print("seed", SEED)
    return SessionConfig(
        loaded=loaded,
        data_dir=root / "data",
        participant=participant,
        tracker="sim",
        observer="parametric",
        seed=SEED,
        simulated_clock=True,
        quiet=True,
        **extra,
    )


def _rows(result) -> pd.DataFrame:
    return pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)


@pytest.fixture(scope="module")
def folder_session(virtual_x, root):
    """``[stimulus] scenes = "photos"`` (relative to the protocol file); twins from a set built
    from the same folder before the session."""
    from stimuli.build import build_stimulus_set

    loaded = _protocol(root, "folder_scenes", scenes="photos")
    stimulus_set = root / "set"
    build_stimulus_set(
        protocol_path=loaded.path,
        out=stimulus_set,
        only="references",
        progress=False,
        log=lambda *_: None,
    )
    config = _config(loaded, root, "fold01", stimulus_set=stimulus_set, screenshots_dir=root / "s")
    result = run_session(config)
    return {"loaded": loaded, "config": config, "result": result, "rows": _rows(result)}


def test_each_trial_logs_the_scene_its_seed_picks_from_the_folder(folder_session, root):
    result, rows = folder_session["result"], folder_session["rows"]
    assert result.completed and len(rows) == 3
    sidecar = json.loads(result.paths.beh_json.read_text())
    scenes = sidecar["scenes"]
    assert scenes["spec"] == str((root / "photos").absolute()) and "folder" in scenes["source"]
    assert sidecar["session_reference"] == "generated" and sidecar["scene"]["Description"]
    source = scene_source(scenes["spec"])
    for _, row in rows.iterrows():
        scene = source.scene(
            seed=int(row["seed"]), width_px=SIZE, height_px=SIZE, factor=scenes["factor"]
        )
        assert row["scene"] == scene.sha256
    assert (rows["reference"] == "generated").all()
    print(rows[["seed", "scene"]].to_string())
    # Every twin came from the set (no generator time), which was keyed by the same scenes.
    assert (rows["twin_latency_s"] == 0.0).all()
    assert sidecar["runs"][-1]["stimulus_set"]["reference"] == "generated"


def test_the_reference_interval_shows_the_full_generation_of_the_trials_scene(folder_session):
    from generator import LayoutSpec, load_generator

    first = folder_session["rows"].iloc[0]
    p = folder_session["loaded"].protocol
    generator = load_generator("default")
    geometry = _geometry(p)
    scene = scene_source(str(folder_session["config"].loaded.path.parent / "photos")).scene(
        seed=int(first["seed"]), width_px=SIZE, height_px=SIZE, factor=generator.scene_factor
    )
    twin = generator.generate(
        seed=int(first["seed"]),
        geometry=geometry,
        gaze_px=None,
        spec=LayoutSpec(mode="full"),
        scene=scene,
    ).image
    shots = folder_session["config"].screenshots_dir
    shown = _shown(shots, p, interval=3 - int(first["interval_foveated"]))
    diff = np.abs(shown - twin.astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 3, (diff.mean(), diff.max())


def test_a_resume_with_other_scenes_is_refused(folder_session):
    config = folder_session["config"]
    stimulus_set = config.stimulus_set
    config.resume, config.scenes, config.stimulus_set = True, "pool", None
    try:
        with pytest.raises(FoveaError, match="started with scenes"):
            run_session(config)
    finally:
        config.resume, config.scenes, config.stimulus_set = False, None, stimulus_set


def test_a_set_built_from_other_scenes_is_refused(folder_session, root):
    config = _config(
        folder_session["loaded"], root, "fold02", stimulus_set=root / "set", scenes="pool"
    )
    with pytest.raises(FoveaError, match="is not the one the set was made from"):
        run_session(config)
    assert not (root / "data" / "sub-fold02").exists()


def test_reference_original_shows_the_scenes_photograph(virtual_x, root):
    loaded = _protocol(root, "original_ref", reference="original")
    shots = root / "shots_original"
    result = run_session(_config(loaded, root, "orig01", screenshots_dir=shots))
    rows = _rows(result)
    assert result.completed and (rows["reference"] == "original").all()
    sidecar = json.loads(result.paths.beh_json.read_text())
    assert sidecar["session_reference"] == "original" and sidecar["scenes"]["spec"] == "pool"
    first = rows.iloc[0]
    scene = scene_source("pool").scene(
        seed=int(first["seed"]), width_px=SIZE, height_px=SIZE, factor=sidecar["scenes"]["factor"]
    )
    assert first["scene"] == scene.sha256
    shown = _shown(shots, loaded.protocol, interval=3 - int(first["interval_foveated"]))
    diff = np.abs(shown - scene.original.astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 3, (diff.mean(), diff.max())


def test_a_bad_scene_folder_is_refused_before_anything_is_written(virtual_x, root, capsys):
    from fovea_cli.main import main

    bad = root / "bad_photos"
    bad.mkdir()
    good = (root / "photos" / "cat.jpg").read_bytes()
    (bad / "cat.jpg").write_bytes(good)
    (bad / "broken.jpg").write_bytes(good[: len(good) // 3])  # a truncated download
    loaded = _protocol(root, "bad_scenes")
    data = root / "bad_data"
    argv = ["simulate", str(loaded.path), "--data", str(data), "--scenes", str(bad), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    print(err)
    assert err.startswith("error: ") and "broken.jpg" in err and "\n" not in err
    assert not list(data.glob("sub-*"))


def test_scenes_for_a_model_without_scenes_are_refused(virtual_x, root):
    data = small_protocol_dict(method="constant", trials=1)
    data["conditions"][0]["levels"] = [2.0]
    loaded = load_protocol(write_toml(data, root / "tiny.toml"))
    config = _config(loaded, root, "tiny01", scenes=str(root / "photos"))
    with pytest.raises(FoveaError, match="takes prompts or classes, not scenes"):
        run_session(config)
    assert not (root / "data" / "sub-tiny01").exists()


def _geometry(p):
    from generator import StimulusGeometry

    return StimulusGeometry(display=p.display.geometry(), image_width_px=SIZE, image_height_px=SIZE)


def _shown(shots, p, *, interval: int) -> np.ndarray:
    """The image region of the first frame of ``interval`` (1 or 2) in the screenshots."""
    shot = np.asarray(Image.open(shots / f"interval{interval}.png").convert("RGB")).astype(int)
    width, height = window_size_px(p)
    top, left = (height - SIZE) // 2, (width - SIZE) // 2
    return shot[top : top + SIZE, left : left + SIZE]


@pytest.mark.slow
def test_the_generator_process_serves_scenes_and_originals(virtual_x, root):
    """The default service (its own process, speculative start) with ``reference = "original"``:
    the scene and the original come from the generator process."""
    data = small_protocol_dict(method="constant", trials=2)
    data["stimulus"].update(model="default", classes=[0], seed_count=2, reference="original")
    data["conditions"][0]["levels"] = [2.0]
    data["procedure"]["constant"] = {"repeats": 2}
    data["generation"].update(service="process", speculative=True)
    loaded = load_protocol(write_toml(data, root / "process.toml"))
    result = run_session(_config(loaded, root, "proc01"))
    rows = _rows(result)
    sidecar = json.loads(result.paths.beh_json.read_text())
    assert result.completed and sidecar["runs"][-1]["generator"]["service"] == "process"
    assert sidecar["runs"][-1]["generator"]["reference"] == "original"
    factor = sidecar["runs"][-1]["generator"]["scene_factor"]
    for _, row in rows.iterrows():
        scene = scene_source("pool").scene(
            seed=int(row["seed"]), width_px=SIZE, height_px=SIZE, factor=factor
        )
        assert row["scene"] == scene.sha256 and row["reference"] == "original"
