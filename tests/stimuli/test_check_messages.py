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


def test_another_protocols_set_is_named_as_such(built_set, tmp_path, capsys):
    """A session (or check) given another protocol's set was told that its images were not in
    the set, 'were seeds, conditions or levels changed after the build?', and to rebuild it
    with `fovea stimuli build PROTOCOL --out DIR`: a build that the folder refuses, as it
    holds another protocol's set. The error names the protocol the set was built for and
    sends the build to another folder; the set is left as it was."""
    from tests.stimuli.conftest import write_protocol

    other = tmp_path / "other.toml"
    write_protocol(other, seed_start=20)
    other.write_text(
        other.read_text(encoding="utf-8").replace('"stim_test"', '"other"'), encoding="utf-8"
    )
    before = (built_set / MANIFEST).read_bytes()
    assert main(["stimuli", "check", str(other), str(built_set), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert f"stimulus set {built_set} was built for protocol 'stim_test' and does not " in err
    assert "match protocol 'other': 16 of 16 images the protocol needs are not in the set" in err
    assert err.endswith(
        "give the set built for 'other', or build one with `fovea stimuli build PROTOCOL --out DIR` into "
        "another folder"
    )
    assert (built_set / MANIFEST).read_bytes() == before


def test_a_set_being_built_is_not_called_a_build_that_did_not_finish(
    built_set, protocol_path, tmp_path, capsys
):
    """Checked while its build ran (images stored, no manifest yet), a set was called a build
    that 'did not finish; run the same `fovea stimuli build` again', which starts a second
    build of the same images beside the running one. While a build holds the folder's claim
    the check says it is being built; once the build is gone, the earlier advice stands."""
    from stimuli.claim import claim_set_folder

    out = tmp_path / "set"
    out.mkdir()
    shutil.copytree(built_set / "objects", out / "objects")
    check = ["stimuli", "check", str(protocol_path), str(out), "--quick"]
    with claim_set_folder(out, "stim_test"):  # as a running build holds it
        assert main(check) == 2
        err = capsys.readouterr().err.strip()
    assert err == (
        f"error: stimulus set {out} is being built (protocol 'stim_test'): its manifest.json "
        "is written when the build ends; check the set then"
    )
    assert main(check) == 2
    assert "its build did not finish; run the same" in capsys.readouterr().err
