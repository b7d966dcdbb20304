"""A stimulus set built on one machine and used on another: the set, the protocol and the model
directory all at other paths (with spaces and non-ASCII characters), checked from another working
directory (real tiny generators)."""

from __future__ import annotations

import shutil

import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from stimuli.check import check_stimulus_set, moved_model_directory
from stimuli.manifest import MANIFEST, merge_manifests, read_manifest
from tests.study.conftest import write_flux2_protocol


def _quiet(*_args) -> None:
    pass


def test_a_copied_set_and_protocol_check_from_another_working_directory(
    built_set, protocol_path, tmp_path, monkeypatch
):
    lab = tmp_path / "lab pc ü" / "study é"
    shutil.copytree(built_set, lab / "set")
    shutil.copy(protocol_path, lab / "protocol.toml")
    monkeypatch.chdir(lab)
    sset = check_stimulus_set("set", protocol=load_protocol("protocol.toml"))
    assert sset.reference(seed=7, conditioning=0).shape == (128, 128, 3)
    assert all(not e["file"].startswith("/") for e in sset.entries)  # relative to the set


@pytest.fixture(scope="module")
def flux_set(tmp_path_factory):
    """A set built from a tiny FLUX.2 directory on the 'GPU server', and the same directory
    copied to the 'lab PC' with its protocol naming it there."""
    from generator.tiny_flux2 import save_tiny_flux2_pipeline
    from stimuli.build import build_stimulus_set

    root = tmp_path_factory.mktemp("moved")
    server = save_tiny_flux2_pipeline(root / "server" / "klein")
    built = write_flux2_protocol(root / "server" / "p.toml", model=server, name="moved")
    out = root / "server" / "set"
    build_stimulus_set(protocol_path=built, out=out, progress=False, log=_quiet)
    lab = root / "lab pc ü" / "models" / "klein"
    shutil.copytree(server, lab)
    protocol = write_flux2_protocol(root / "lab pc ü" / "p.toml", model=lab, name="moved")
    return {"set": out, "protocol": protocol, "lab_model": lab, "root": root}


def test_a_model_directory_at_another_path_keeps_its_set(flux_set):
    loaded = load_protocol(flux_set["protocol"])
    sset = check_stimulus_set(flux_set["set"], protocol=loaded)
    made = read_manifest(flux_set["set"] / MANIFEST)["model"]
    # A session's own fingerprint names the directory where it lies now: only weights count.
    here = dict(made, model=str(flux_set["lab_model"]), model_id=str(flux_set["lab_model"]))
    check_stimulus_set(flux_set["set"], protocol=loaded, fingerprint=here)
    with pytest.raises(FoveaError, match="weights_sha256"):
        check_stimulus_set(
            flux_set["set"], protocol=loaded, fingerprint=dict(here, weights_sha256="0" * 64)
        )
    assert sset.reference(seed=3, conditioning="a cat").shape == (64, 64, 3)


def test_a_preset_is_not_a_moved_directory(flux_set, tmp_path):
    assert moved_model_directory("/srv/models/klein", str(flux_set["lab_model"]))
    assert not moved_model_directory("tiny", str(flux_set["lab_model"]))
    assert not moved_model_directory("/srv/models/klein", "tiny")
    other = write_flux2_protocol(tmp_path / "p.toml", model="tiny", name="moved")
    with pytest.raises(FoveaError, match="model '.*klein' in the set, 'tiny' in the protocol"):
        check_stimulus_set(flux_set["set"], protocol=load_protocol(other))


def test_cli_check_notes_the_moved_directory(flux_set, capsys):
    from fovea_cli.main import main

    assert main(["stimuli", "check", str(flux_set["protocol"]), str(flux_set["set"])]) == 0
    out = capsys.readouterr().out
    assert "note: the set was built from model directory" in out
    assert "a session compares their weights when it starts" in out
    assert out.strip().endswith("all hashes and the model's weights verified")


def test_cli_check_refuses_scenes_for_a_prompt_model_directory(flux_set, tmp_path, capsys):
    """A model directory's scene factor is known once it loads: the set built from it says
    that it takes prompts, so --scenes is refused as a session would."""
    from PIL import Image

    from fovea_cli.main import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (400, 300), (120, 90, 60)).save(photos / "a.png")
    argv = ["stimuli", "check", str(flux_set["protocol"]), str(flux_set["set"])]
    assert main([*argv, "--scenes", str(photos)]) == 2
    assert "takes prompts or classes, not scenes" in capsys.readouterr().err


def test_cli_check_compares_the_model_weights_as_a_session_does(tmp_path, capsys):
    """The model directory got other weights at the same path (re-downloaded, retrained in
    place; or a shipped preset changed with an upgrade): `fovea stimuli check` said ok, and the
    session then refused the set at start ('generated with other weights'). The check now loads
    the generator and compares its weights' hash; --quick (presence only) does not."""
    from fovea_cli.main import main
    from generator.tiny_flux2 import save_tiny_flux2_pipeline
    from stimuli.build import build_stimulus_set

    model = save_tiny_flux2_pipeline(tmp_path / "klein", seed=0)
    protocol = write_flux2_protocol(tmp_path / "p.toml", model=model, name="reweighted")
    build_stimulus_set(protocol_path=protocol, out=tmp_path / "set", progress=False, log=_quiet)
    argv = ["stimuli", "check", str(protocol), str(tmp_path / "set")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "hashes and the model's weights verified" in out
    assert "note: the set was built from model directory" not in out  # the same directory
    assert not moved_model_directory(str(model), str(model))
    shutil.rmtree(model)
    save_tiny_flux2_pipeline(model, seed=1)  # other weights, same path
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after diffusers' loading bars
    assert err.startswith("error: stimulus set") and "model weights_sha256" in err, err
    assert "in the session's generator" in err and "rebuild it with `fovea stimuli build" in err
    assert main([*argv, "--quick"]) == 0


def test_shards_built_on_two_machines_from_a_model_directory_beside_the_protocol_merge(tmp_path):
    """Two machines each hold the study folder (the protocol and, beside it, the model directory
    it names by a relative path) at another place, and build a shard each: the same protocol,
    the same weights; their shards merge and the set passes the check on either machine."""
    from generator.tiny_flux2 import save_tiny_flux2_pipeline
    from stimuli.build import Shard, build_stimulus_set

    machines = [tmp_path / "gpu server" / "study", tmp_path / "lab pc" / "home" / "study"]
    for index, study in enumerate(machines, 1):
        save_tiny_flux2_pipeline(study / "klein", seed=0)
        protocol = write_flux2_protocol(study / "p.toml", model="klein", name="two_machines")
        build_stimulus_set(
            protocol_path=protocol,
            out=study / "set",
            shard=Shard(index, 2),
            progress=False,
            log=_quiet,
        )
    one, two = (study / "set" for study in machines)
    shutil.copytree(two, one, dirs_exist_ok=True)
    merge_manifests(one)
    for study in machines:
        check_stimulus_set(one, protocol=load_protocol(study / "p.toml"))


def test_a_set_whose_keys_hold_the_model_directorys_path_is_reused_by_its_rebuild(
    tmp_path, monkeypatch
):
    """Sets built before a directory's model id left out its path keep their keys: their
    rebuild (here at another path, as on the lab PC) reuses every image."""
    import stimuli.fingerprint as fingerprint
    from generator.tiny_flux2 import save_tiny_flux2_pipeline
    from stimuli.build import build_stimulus_set

    server = save_tiny_flux2_pipeline(tmp_path / "server" / "klein", seed=0)
    built = write_flux2_protocol(tmp_path / "server" / "p.toml", model=server, name="older")
    with monkeypatch.context() as m:  # the model id as recorded before: the directory's path
        m.setattr(fingerprint, "_location_free", lambda model_id, model: model_id)
        build_stimulus_set(protocol_path=built, out=tmp_path / "set", progress=False, log=_quiet)
    lab = tmp_path / "lab" / "klein"
    shutil.copytree(server, lab)
    protocol = write_flux2_protocol(tmp_path / "lab" / "p.toml", model=lab, name="older")
    said: list[str] = []
    build_stimulus_set(
        protocol_path=protocol, out=tmp_path / "set", progress=False, log=said.append
    )
    assert "(0 generated, 2 reused)" in said[-1], said
    assert read_manifest(tmp_path / "set" / MANIFEST)["model"]["model_id"] == str(server)
    check_stimulus_set(tmp_path / "set", protocol=load_protocol(protocol))
