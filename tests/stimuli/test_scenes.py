"""Stimulus sets of the default scene model (128 px): references keyed by seed and scene, the
scene recorded in the manifest, originals as references, sets from other scenes refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from generator.errors import FoveaError
from generator.scene_sources import scene_source
from protocol import load_protocol
from stimuli.build import build_stimulus_set
from stimuli.check import check_stimulus_set
from stimuli.manifest import MANIFEST, read_manifest

PROTOCOL = """\
name = "scene_set"

[stimulus]
model = "default"
image_width_px = 128
image_height_px = 128
seed_start = 40
seed_count = 2
reference = "{reference}"
scenes = "{scenes}"

[[conditions]]
name = "centre"
fixation_deg = [0.0, 0.0]
levels = [2.0]
level_min = 0.1
level_max = 4.0

[procedure]
method = "constant"
"""


def _quiet(*_args) -> None:
    pass


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name, pixels in (("rocket", skdata.rocket()), ("coffee", skdata.coffee())):
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def _protocol(path, *, reference="generated", scenes="pool"):
    path.write_text(PROTOCOL.format(reference=reference, scenes=scenes), encoding="utf-8")
    return load_protocol(path)


def test_a_set_from_a_scene_folder_is_keyed_by_scene(photos, tmp_path):
    from generator.loading import load_generator
    from protocol.geometry import stimulus_geometry

    loaded = _protocol(tmp_path / "folder.toml", scenes=str(photos))
    out = tmp_path / "set"
    build_stimulus_set(protocol_path=loaded.path, out=out, progress=False, log=_quiet)
    manifest = read_manifest(out / MANIFEST)
    assert manifest["scenes"]["spec"] == str(photos) and manifest["reference"] == "generated"
    factor = manifest["scenes"]["factor"]
    source = scene_source(str(photos))
    scenes = {s: source.scene(seed=s, width_px=128, height_px=128, factor=factor) for s in (40, 41)}
    for entry in manifest["entries"]:  # 2 references + 2 foveated, each with its seed's scene
        assert entry["scene"] == scenes[entry["seed"]].record()
    sset = check_stimulus_set(out, protocol=loaded)
    assert sset.session_scenes == {s: scene.sha256 for s, scene in scenes.items()}
    generator = load_generator("default")
    fresh = generator.generate(
        seed=41,
        geometry=stimulus_geometry(loaded.protocol),
        gaze_px=None,
        spec=_full(),
        scene=scenes[41],
    )
    assert np.array_equal(sset.reference(seed=41, conditioning=0), fresh.image)
    # The same seeds with the pool's scenes: refused, naming the seed and both sources.
    with pytest.raises(FoveaError, match=r"seed 40's scene from 'pool'.*not the one the set"):
        check_stimulus_set(out, protocol=loaded, scenes="pool")


def test_original_references_are_the_scenes_photographs(tmp_path):
    loaded = _protocol(tmp_path / "original.toml", reference="original")
    out = tmp_path / "set"
    build_stimulus_set(
        protocol_path=loaded.path, out=out, only="references", progress=False, log=_quiet
    )
    manifest = read_manifest(out / MANIFEST)
    assert manifest["reference"] == "original" and manifest["scenes"]["spec"] == "pool"
    sset = check_stimulus_set(out, protocol=loaded)
    for seed in (40, 41):
        scene = scene_source("pool").scene(
            seed=seed, width_px=128, height_px=128, factor=manifest["scenes"]["factor"]
        )
        entry = sset.reference_entry(seed=seed, conditioning=0)
        assert entry["reference"] == "original" and entry["seconds"] == 0.0
        assert np.array_equal(sset.read(entry), scene.original)
    generated = _protocol(tmp_path / "generated.toml", reference="generated")
    with pytest.raises(FoveaError, match="references are 'original' in the set, 'generated'"):
        check_stimulus_set(out, protocol=generated)


def test_a_bad_scene_folder_stops_the_build_before_any_image(photos, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(skdata.camera()).save(bad / "grey.png")  # greyscale
    loaded = _protocol(tmp_path / "bad.toml", scenes=str(bad))
    with pytest.raises(FoveaError, match="grey.png"):
        build_stimulus_set(protocol_path=loaded.path, out=tmp_path / "set", log=_quiet)
    assert not (tmp_path / "set" / "objects").exists()


def _full():
    from generator.layout import LayoutSpec

    return LayoutSpec(mode="full")
