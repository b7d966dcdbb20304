"""What `fovea stimuli check` and the contact sheet tell a lab whose set does not fit."""

from __future__ import annotations

import shutil

from fovea_cli.main import main
from stimuli.manifest import MANIFEST, read_manifest


def test_commands_suggested_for_a_folder_named_with_spaces_are_quoted(
    built_set, protocol_path, tmp_path, capsys
):
    """A set in 'my set' with an image missing: check and sheet said to run
    `fovea stimuli build PROTOCOL --out /.../my set`, which the shell splits into two
    arguments; the folder is quoted as the shell needs it."""
    damaged = tmp_path / "my set"
    shutil.copytree(built_set, damaged)
    entry = read_manifest(damaged / MANIFEST)["entries"][0]
    (damaged / entry["file"]).unlink()
    quoted = f"--out '{damaged}'`"
    assert main(["stimuli", "check", str(protocol_path), str(damaged), "--quick"]) == 2
    assert quoted in capsys.readouterr().err
    assert main(["stimuli", "sheet", str(damaged), "--out", str(tmp_path / "s.png")]) == 2
    assert quoted in capsys.readouterr().err
    shards = tmp_path / "shard set"
    shards.mkdir()
    shutil.copy(built_set / MANIFEST, shards / "manifest.shard-001-of-002.json")
    assert main(["stimuli", "check", str(protocol_path), str(shards), "--quick"]) == 2
    assert f"run `fovea stimuli merge '{shards}'` once" in capsys.readouterr().err
