"""``fovea check`` on a protocol naming a model directory (a tiny FLUX.2 [klein] one): a
pipeline directory is a prompt model, so the check says it takes no scenes and refuses scenes as
the session does once the model loads, without loading it."""

from __future__ import annotations

from PIL import Image

from fovea_cli.main import main
from tests.study.conftest import write_flux2_protocol


def test_check_says_a_model_directory_takes_no_scenes(tiny_dir, tmp_path, capsys):
    protocol = write_flux2_protocol(tmp_path / "p.toml", model=tiny_dir, prompts=("a cat", "a dog"))
    assert main(["check", str(protocol)]) == 0
    out = capsys.readouterr().out
    assert "no scenes (the model takes classes or prompts)" in out
    assert "scenes pool" not in out and "photograph" not in out


def test_check_refuses_scenes_for_a_model_directory(tiny_dir, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (400, 300), (120, 90, 60)).save(photos / "a.png")
    protocol = write_flux2_protocol(tmp_path / "p.toml", model=tiny_dir, extra='scenes = "photos"')
    assert main(["check", str(protocol)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "takes prompts or classes, not scenes" in err, err
    assert len(err.splitlines()) == 1
