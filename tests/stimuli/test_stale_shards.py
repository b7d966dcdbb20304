"""A sharded build beside an earlier build's shards of other settings (a protocol edited and
built again on the same machines)."""

from __future__ import annotations

import json
import shutil

from fovea_cli.main import main
from stimuli.manifest import MANIFEST, read_manifest


def test_a_shard_beside_an_earlier_builds_shard_finishes_and_says_which_to_build(
    built_set, protocol_path, tmp_path, capsys
):
    """Shard 1/2 of an edited protocol into a folder holding shard 2/2 of the earlier
    settings did its whole work, wrote its manifest and then failed, exit 2: 'field
    'protocol' differs from shard 1 ...; all shards must come from the same protocol', as if
    the shards were wrong. It now finishes (exit 0), names the earlier build's shard and the
    --shard to build again (before the work too); that build merges the set, which checks
    ok."""
    out = tmp_path / "set"
    out.mkdir()
    shutil.copytree(built_set / "objects", out / "objects")
    earlier = json.loads((built_set / MANIFEST).read_text(encoding="utf-8"))
    earlier["protocol"]["settings_sha256"] = "0" * 64  # built from other settings
    (out / "manifest.shard-002-of-002.json").write_text(json.dumps(earlier), encoding="utf-8")
    build = ["stimuli", "build", str(protocol_path), "--out", str(out), "--no-progress"]

    assert main([*build, "--shard", "1/2"]) == 0
    printed = capsys.readouterr().out
    assert (  # said before the work (it said 'this build replaces it', which it does not)
        "note: manifest.shard-002-of-002.json was built from other settings of 'stim_test'; "
        "build its shard again with these settings (--shard 2/2)\n"
    ) in printed
    assert (
        "note: manifest.shard-002-of-002.json is from an earlier build with other settings; "
        "build --shard 2/2 with this protocol: the last shard to finish merges the set"
    ) in printed
    assert (out / "manifest.shard-001-of-002.json").is_file() and not (out / MANIFEST).exists()

    assert main([*build, "--shard", "2/2"]) == 0
    assert "all 2 shards present: merged into" in capsys.readouterr().out
    assert len(read_manifest(out / MANIFEST)["entries"]) == 16
    assert main(["stimuli", "check", str(protocol_path), str(out), "--quick"]) == 0


def test_merging_another_protocols_shards_into_a_set_folder_is_refused(built_set, tmp_path, capsys):
    """Shard manifests of protocol 'other' copied into the folder of stim_test's set: fovea
    stimuli merge replaced its manifest.json with theirs, said 'merged', and the set of
    stim_test was gone (and a build of stim_test then refused the folder as 'other''s). The
    merge is refused in one line; the set's manifest stays as it was."""
    out = tmp_path / "set"
    shutil.copytree(built_set, out)
    before = (out / MANIFEST).read_bytes()
    other = json.loads(before)
    other["protocol"]["name"] = "other"
    (out / "manifest.shard-001-of-001.json").write_text(json.dumps(other), encoding="utf-8")
    assert main(["stimuli", "merge", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {out} holds the stimulus set of protocol 'stim_test' (manifest.json); merging "
        "the shards of 'other' into it would replace it: move the shard manifests and their "
        "objects/ to another folder and merge there"
    )
    assert (out / MANIFEST).read_bytes() == before


def test_shards_of_two_conditions_with_the_same_images_merge(tmp_path, capsys):
    """Conditions right_a and right_b present the same images (same fixation, layout and
    level under two names; a valid protocol). Built whole the set listed both; built in two
    shards its merge kept one entry per image key and failed: 'the shards hold 4 images, the
    plan has 5; rebuild the shards with the same options', which a rebuild repeats. Each
    condition keeps its entry, and a session finds right_b's image."""
    from protocol import load_protocol
    from stimuli.check import check_stimulus_set
    from tests.stimuli.conftest import PROTOCOL

    text = PROTOCOL.format(seed_start=7).replace('name = "right"', 'name = "right_a"')
    text = text.replace("classes = [0, 1]", "classes = [0]").replace(
        "seed_count = 2", "seed_count = 1"
    )
    text += (
        '\n[[conditions]]\nname = "right_b"\nfixation_deg = [1.0, 0.0]\nlevels = [1.0]\n'
        "level_min = 0.1\nlevel_max = 4.0\n"
    )
    protocol = tmp_path / "twice.toml"
    protocol.write_text(text, encoding="utf-8")
    out = tmp_path / "set"
    build = ["stimuli", "build", str(protocol), "--out", str(out), "--no-progress"]
    assert main([*build, "--shard", "1/2"]) == 0
    assert main([*build, "--shard", "2/2"]) == 0
    assert "all 2 shards present: merged into" in capsys.readouterr().out
    entries = read_manifest(out / MANIFEST)["entries"]
    assert sorted(str(e["condition"]) for e in entries) == [
        "None",
        "centre",
        "centre",
        "right_a",
        "right_b",
    ]
    sset = check_stimulus_set(out, protocol=load_protocol(protocol), verify_files=False)
    found = sset.foveated_entry(seed=7, conditioning=0, condition="right_b", level=1.0)
    assert found is not None and found["condition"] == "right_b"
