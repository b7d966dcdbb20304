"""Building, checking, sharding and merging stimulus sets (real tiny generator, 128 px)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from stimuli.build import Shard, build_stimulus_set, parse_shard, shard_from_env
from stimuli.check import check_stimulus_set
from stimuli.manifest import MANIFEST, merge_manifests, read_manifest
from tests.stimuli.conftest import PROTOCOL, write_protocol


def _quiet(*_args) -> None:
    pass


def test_built_set_passes_the_session_check(built_set, protocol_path):
    manifest = read_manifest(built_set / MANIFEST)
    entries = manifest["entries"]
    assert manifest["plan"]["planned"] == len(entries) == 4 + 3 * 4  # refs + 3 levels x 4 stimuli
    assert len({e["key"] for e in entries}) == len(entries)
    assert manifest["model"]["weights_sha256"] and manifest["model"]["steps"] == 2
    sset = check_stimulus_set(built_set, protocol=load_protocol(protocol_path))
    assert sset.reference(seed=7, conditioning=0).shape == (128, 128, 3)
    assert sset.foveated(seed=8, conditioning=1, condition="centre", level=2.0).dtype == np.uint8
    assert sset.foveated(seed=8, conditioning=1, condition="centre", level=3.0) is None
    foveated = [e for e in entries if e["kind"] == "foveated" and e["level"] == 2.0]
    assert all(e["token_ratio"] < 1.0 for e in foveated)  # level 2 really foveates at 128 px


def test_cached_images_are_bit_identical_to_fresh_generations(built_set, protocol_path):
    from generator.loading import load_generator
    from protocol.geometry import stimulus_geometry

    p = load_protocol(protocol_path).protocol
    geometry = stimulus_geometry(p)
    generator = load_generator("tiny")
    sset = check_stimulus_set(built_set, protocol=p)
    fresh = generator.generate(
        seed=8, geometry=geometry, gaze_px=None, spec=_full(), condition=1, steps=2
    )
    assert np.array_equal(sset.reference(seed=8, conditioning=1), fresh.image)
    entry = next(e for e in sset.entries if e["condition"] == "right")
    from generator.layout import LayoutSpec

    fresh = generator.generate(
        seed=entry["seed"],
        geometry=geometry,
        gaze_px=tuple(entry["gaze_px"]),
        spec=LayoutSpec(**entry["spec"]),
        condition=entry["conditioning"],
        steps=2,
    )
    cached = sset.foveated(
        seed=entry["seed"],
        conditioning=entry["conditioning"],
        condition="right",
        level=entry["level"],
    )
    assert np.array_equal(cached, fresh.image)


def _full():
    from generator.layout import LayoutSpec

    return LayoutSpec(mode="full")


def test_a_corrupted_or_missing_entry_is_refused(built_set, protocol_path, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(built_set, damaged)
    entry = read_manifest(damaged / MANIFEST)["entries"][3]
    path = damaged / entry["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of the PNG
    path.write_bytes(bytes(data))
    with pytest.raises(FoveaError, match=r"corrupted \(sha256") as info:
        check_stimulus_set(damaged, protocol=load_protocol(protocol_path))
    assert entry["file"] in str(info.value) and "rebuild it" in str(info.value)
    # presence-only checking does not read files; a deleted one is still caught
    check_stimulus_set(damaged, protocol=load_protocol(protocol_path), verify_files=False)
    path.unlink()
    with pytest.raises(FoveaError, match="is missing"):
        check_stimulus_set(damaged, protocol=load_protocol(protocol_path), verify_files=False)
    (damaged / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(FoveaError, match="unreadable"):
        check_stimulus_set(damaged, protocol=load_protocol(protocol_path))


def test_a_mismatched_set_is_refused(built_set, protocol_path, tmp_path):
    other = write_protocol(tmp_path / "other.toml", seed_start=100)
    with pytest.raises(FoveaError, match="are not in the set"):
        check_stimulus_set(built_set, protocol=load_protocol(other))
    text = (tmp_path / "other.toml").read_text().replace("seed_start = 100", "seed_start = 7")
    bigger = tmp_path / "bigger.toml"
    bigger.write_text(text.replace("image_width_px = 128", "image_width_px = 256"))
    with pytest.raises(FoveaError, match="geometry"):
        check_stimulus_set(built_set, protocol=load_protocol(bigger))
    wrong = dict(read_manifest(built_set / MANIFEST)["model"], weights_sha256="0" * 64)
    with pytest.raises(FoveaError, match="weights_sha256"):
        check_stimulus_set(built_set, protocol=load_protocol(protocol_path), fingerprint=wrong)


def test_shards_build_and_merge_into_the_same_set(built_set, protocol_path, tmp_path):
    out = tmp_path / "sharded"
    shutil.copytree(built_set / "objects", out / "objects")  # a shared store: images are reused
    build_stimulus_set(
        protocol_path=protocol_path, out=out, shard=Shard(1, 2), progress=False, log=_quiet
    )
    with pytest.raises(FoveaError, match="not merged"):
        check_stimulus_set(out, protocol=load_protocol(protocol_path))
    with pytest.raises(FoveaError, match="shards 2 of 2 are missing"):
        merge_manifests(out)
    build_stimulus_set(
        protocol_path=protocol_path, out=out, shard=Shard(2, 2), progress=False, log=_quiet
    )
    merged = read_manifest(out / MANIFEST)  # the last shard merged
    whole = read_manifest(built_set / MANIFEST)
    assert sorted((e["key"], e["sha256"]) for e in merged["entries"]) == sorted(
        (e["key"], e["sha256"]) for e in whole["entries"]
    )
    assert [s["index"] for s in merged["shards"]] == [1, 2]
    assert sum(s["reused"] for s in merged["shards"]) == len(whole["entries"])
    check_stimulus_set(out, protocol=load_protocol(protocol_path))


def test_shards_built_from_copies_of_the_protocol_at_other_paths_merge(
    built_set, protocol_path, tmp_path, monkeypatch
):
    """Two machines (or working directories) hold the same protocol at different paths (one
    copy with CRLF line endings and a comment of its own): their shards merge; a protocol with
    other settings is still refused."""
    out = tmp_path / "sharded"
    shutil.copytree(built_set / "objects", out / "objects")
    here = tmp_path / "node 1"
    (here / "protocols").mkdir(parents=True)
    shutil.copy(protocol_path, here / "protocols" / "stim_test.toml")
    monkeypatch.chdir(here)  # a relative path on one node, an absolute one on the other
    build_stimulus_set(
        protocol_path="protocols/stim_test.toml",
        out=out,
        shard=Shard(1, 2),
        progress=False,
        log=_quiet,
    )
    shard_1 = read_manifest(out / "manifest.shard-001-of-002.json")
    assert shard_1["protocol"]["path"] == str(here / "protocols" / "stim_test.toml")
    other = tmp_path / "node 2 ü" / "stim_test.toml"
    other.parent.mkdir()
    text = "# copied to node 2\n" + protocol_path.read_text(encoding="utf-8")
    other.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    build_stimulus_set(protocol_path=other, out=out, shard=Shard(2, 2), progress=False, log=_quiet)
    merged = read_manifest(out / MANIFEST)
    assert [s["index"] for s in merged["shards"]] == [1, 2]
    check_stimulus_set(out, protocol=load_protocol(other))

    (out / MANIFEST).unlink()
    shard_2 = json.loads((out / "manifest.shard-002-of-002.json").read_text())
    shard_2["protocol"]["settings_sha256"] = "0" * 64  # a copy with other settings
    (out / "manifest.shard-002-of-002.json").write_text(json.dumps(shard_2))
    with pytest.raises(FoveaError, match="field 'protocol' differs from shard 1"):
        merge_manifests(out)


def test_shard_parsing_and_accelerate_environment():
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ("0/2", "3/2", "a/b", "2"):
        with pytest.raises(FoveaError, match="--shard"):
            parse_shard(bad)
    env = {"ACCELERATE_MIXED_PRECISION": "no", "WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}
    assert shard_from_env(env) == (Shard(3, 4), 0)
    assert shard_from_env({"WORLD_SIZE": "4", "RANK": "2"}) is None  # not accelerate
    assert shard_from_env({"ACCELERATE_MIXED_PRECISION": "no", "WORLD_SIZE": "1"}) is None
    assert Shard(2, 3).take(list(range(8))) == [1, 4, 7]


def test_questplus_levels_match_the_study_procedure(protocol_path):
    """Pre-generated levels must equal the levels QUEST+ presents, bit for bit."""
    from stimuli.plan import condition_levels
    from study.procedures.tracks import QuestPlusTrack

    p = load_protocol(protocol_path).protocol
    data = p.model_dump()
    data["procedure"]["method"] = "questplus"
    data["conditions"][0]["levels"] = []
    data["conditions"][1]["levels"] = []
    from protocol import validate_protocol

    q = validate_protocol(data, source="test")
    for condition in q.conditions:
        track = QuestPlusTrack(
            name=condition.name, condition=condition, settings=q.procedure.questplus, max_trials=1
        )
        assert sorted(track._level_to_x) == condition_levels(q, condition)


def test_cli_check_reports_a_damaged_set_in_one_line(built_set, protocol_path, tmp_path, capsys):
    from fovea_cli.main import main

    damaged = tmp_path / "set"
    shutil.copytree(built_set, damaged)
    manifest = json.loads((damaged / MANIFEST).read_text())
    manifest["entries"][0]["sha256"] = "f" * 64
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    assert main(["stimuli", "check", str(protocol_path), str(damaged)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: stimulus set") and "corrupted" in err and "\n" not in err
    assert main(["stimuli", "check", str(protocol_path), str(built_set)]) == 0


def test_cli_check_says_when_a_set_holds_only_some_seeds_references(
    built_set, protocol_path, tmp_path, capsys
):
    """A set built with --max-seeds 1 checked 'ok' without a word, and a session then generated
    most twins during its trials; check (and a session at start) now says how many seeds the set
    covers."""
    from fovea_cli.main import main

    assert main(["stimuli", "check", str(protocol_path), str(built_set)]) == 0
    assert "note:" not in capsys.readouterr().out  # every seed
    partial = tmp_path / "partial"
    args = ["stimuli", "build", str(protocol_path), "--out", str(partial), "--max-seeds", "1"]
    assert main([*args, "--only", "references", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["stimuli", "check", str(protocol_path), str(partial)]) == 0
    out = capsys.readouterr().out
    assert (
        "note: the set holds references for 1 of the protocol's 2 seeds (built with "
        "--max-seeds 1); a session generates the others' full-resolution twins" in out
    )
    assert "ok: 2 images (2 references, 0 foveated)" in out


def test_a_narrower_build_says_which_images_its_manifest_leaves_out(
    built_set, protocol_path, tmp_path, capsys
):
    """A quick --max-seeds build into a full set's folder replaced its manifest without a word:
    the other images stayed in objects/ but sessions generated them live. It now says so before
    the work, and a build with the earlier options lists them again, generating none."""
    import shutil

    from fovea_cli.main import main

    folder = tmp_path / "set"
    shutil.copytree(built_set, folder)
    args = ["stimuli", "build", str(protocol_path), "--out", str(folder), "--no-progress"]
    seconds = {e["key"]: e["seconds"] for e in read_manifest(folder / MANIFEST)["entries"]}
    assert main([*args, "--max-seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert f"note: {folder / MANIFEST} lists 16 images; this build lists 8. The other 8" in out
    kept = read_manifest(folder / MANIFEST)["entries"]  # reused: their generation time kept
    assert len(kept) == 8 and [e["seconds"] for e in kept] == [seconds[e["key"]] for e in kept]
    assert all(isinstance(e["seconds"], float) for e in kept)
    assert "a build with --only all lists them again without generating them" in out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "note:" not in out and "16 images (0 generated, 16 reused)" in out


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["entries"][0].pop("file"), "entry 1 has no 'file'"),
        (lambda m: m["entries"][2].update(seed="7"), "entry 3's 'seed' is a string"),
        (lambda m: m.update(entries={"a": 1}), "field 'entries' is an object"),
        (lambda m: m["entries"].append(3), "entry 17 is a number, not an object"),
        (lambda m: m["entries"][1].pop("gaze_px"), "entry 2 has no 'gaze_px'"),
        (lambda m: m["model"].pop("token_px"), "field 'model' has no positive integer 'token_px'"),
    ],
)
def test_cli_check_reports_a_hand_edited_manifest_in_one_line(
    built_set, protocol_path, tmp_path, capsys, edit, message
):
    from fovea_cli.main import main

    edited = tmp_path / "set"
    shutil.copytree(built_set, edited)
    manifest = json.loads((edited / MANIFEST).read_text())
    edit(manifest)
    (edited / MANIFEST).write_text(json.dumps(manifest))
    assert main(["stimuli", "check", str(protocol_path), str(edited)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "rebuild the set" in err and "\n" not in err


def test_a_build_stopped_mid_write_leaves_no_temporary_and_the_same_command_finishes(
    protocol_path, tmp_path, monkeypatch
):
    """Ctrl-C while an image is being written: before, its hidden temporary stayed in the set
    for good; now nothing partial is left, and the same build continues to a set that passes
    the session check."""
    import os
    import stat

    fsync, calls = os.fsync, []

    def ctrl_c_at_the_third_write(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):  # a file's content, not its folder's entry
            calls.append(fd)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return fsync(fd)

    out = tmp_path / "set"
    monkeypatch.setattr(os, "fsync", ctrl_c_at_the_third_write)
    with pytest.raises(KeyboardInterrupt):
        build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=_quiet)
    monkeypatch.setattr(os, "fsync", fsync)
    assert len(list(out.rglob("*.png"))) == 2
    assert [p.name for p in out.rglob(".*.tmp-*")] == []
    build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=_quiet)
    assert [p.name for p in out.rglob(".*.tmp-*")] == []
    check_stimulus_set(out, protocol=load_protocol(protocol_path))


def test_another_protocols_build_into_a_set_folder_is_refused(built_set, tmp_path):
    """A build of protocol B into A's set folder would replace A's manifest: refused before the
    model loads, A's manifest unchanged. A's own protocol, edited, rebuilds it with a note."""
    out = tmp_path / "set"
    shutil.copytree(built_set, out)
    before = (out / MANIFEST).read_bytes()
    other = tmp_path / "other.toml"
    text = PROTOCOL.format(seed_start=7)
    other.write_text(text.replace('name = "stim_test"', 'name = "other"'), encoding="utf-8")
    with pytest.raises(FoveaError, match="holds the stimulus set of protocol 'stim_test'"):
        build_stimulus_set(protocol_path=other, out=out, progress=False, log=lambda *_: None)
    assert (out / MANIFEST).read_bytes() == before
    edited = tmp_path / "stim_test.toml"
    edited.write_text(text.replace("levels = [1.0]", "levels = [2.0]"), encoding="utf-8")
    said: list[str] = []
    build_stimulus_set(protocol_path=edited, out=out, progress=False, log=said.append)
    assert any("built from other settings of 'stim_test'" in line for line in said), said
    assert (
        read_manifest(out / MANIFEST)["protocol"]["settings_sha256"]
        != json.loads(before)["protocol"]["settings_sha256"]
    )


def test_a_folder_being_built_for_another_protocol_is_refused_until_that_build_ends(
    built_set, protocol_path, tmp_path
):
    """Two builds of different protocols into one folder at the same time: the second is
    refused while the first runs (its claim is held by another process here), and builds once
    that process has ended, even killed; claims of the same protocol (shards) coexist."""
    import signal
    import subprocess
    import sys

    from stimuli.claim import claim_set_folder

    out = tmp_path / "set"
    shutil.copytree(built_set / "objects", out / "objects")  # images reused: no generation
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from stimuli.claim import claim_set_folder; "
            f"claim_set_folder(Path({str(out)!r}), 'other'); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FoveaError, match="in use by a running build of protocol 'other'"):
            build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=_quiet)
        assert not (out / MANIFEST).exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with claim_set_folder(out, "stim_test"):  # a shard of the same protocol, still running
        build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=_quiet)
    check_stimulus_set(out, protocol=load_protocol(protocol_path))
    assert [p.name for p in out.glob(".build-*")] == []  # the killed holder's claim is gone


def test_another_protocols_manifest_written_during_a_build_is_refused_before_the_manifest(
    built_set, protocol_path, tmp_path, monkeypatch
):
    """A build that did not claim the folder (an older fovea) wrote its manifest meanwhile:
    checked again just before writing ours, which is refused and leaves theirs."""
    import stimuli.build as build

    out = tmp_path / "set"
    shutil.copytree(built_set / "objects", out / "objects")
    theirs = dict(read_manifest(built_set / MANIFEST))
    theirs["protocol"] = dict(theirs["protocol"], name="other")
    make_manifest = build._manifest

    def written_meanwhile(*args, **kwargs):
        (out / MANIFEST).write_text(json.dumps(theirs))
        return make_manifest(*args, **kwargs)

    monkeypatch.setattr(build, "_manifest", written_meanwhile)
    with pytest.raises(FoveaError, match="holds the stimulus set of protocol 'other'"):
        build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=_quiet)
    assert read_manifest(out / MANIFEST)["protocol"]["name"] == "other"


def test_cli_check_refuses_scenes_for_a_model_that_takes_none_as_fovea_check_does(
    built_set, protocol_path, tmp_path, capsys
):
    """The set's protocol uses the tiny class model: `fovea stimuli check --scenes DIR` said
    ok, while `fovea check` (and a session) refuse scenes for it."""
    from PIL import Image

    from fovea_cli.main import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (400, 300), (120, 90, 60)).save(photos / "a.png")
    stimuli_check = ["stimuli", "check", str(protocol_path), str(built_set)]
    for command in (stimuli_check, ["check", str(protocol_path)]):
        assert main([*command, "--scenes", str(photos)]) == 2
        err = capsys.readouterr().err.strip()
        assert "model 'tiny' takes prompts or classes, not scenes: drop --scenes" in err
        assert "\n" not in err
    assert main([*stimuli_check, "--scenes", "pool"]) == 0


def test_a_failed_build_leaves_no_empty_set_folder_and_keeps_what_it_made(
    protocol_path, tmp_path, capsys, monkeypatch
):
    """A build that failed before its first image (here a --scenes folder that is not there)
    left its set folder behind holding only the hidden claim lock: an empty folder that looked
    like a set. It now leaves the place as it found it (no folder; a folder given empty stays
    empty). A build stopped after some images keeps them, and `fovea stimuli check` says the
    same build continues it instead of 'build it'."""
    import os
    import stat

    from fovea_cli.main import main

    missing = str(tmp_path / "no such photos")
    out = tmp_path / "sets" / "stim_test"
    with pytest.raises(FoveaError, match="does not exist"):
        build_stimulus_set(protocol_path=protocol_path, out=out, scenes=missing, log=_quiet)
    assert not (tmp_path / "sets").exists()  # nor the folder it was made in
    out.mkdir(parents=True)
    with pytest.raises(FoveaError, match="does not exist"):
        build_stimulus_set(protocol_path=protocol_path, out=out, scenes=missing, log=_quiet)
    assert list(out.iterdir()) == []

    fsync, files = os.fsync, []

    def ctrl_c_at_the_third_image(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            files.append(fd)
            if len(files) == 3:
                raise KeyboardInterrupt
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", ctrl_c_at_the_third_image)
    with pytest.raises(KeyboardInterrupt):
        build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=_quiet)
    monkeypatch.setattr(os, "fsync", fsync)
    assert len(list(out.rglob("*.png"))) == 2  # never removed
    assert main(["stimuli", "check", str(protocol_path), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"stimulus set {out} has no {MANIFEST} but holds 2 images" in err
    assert "run the same `fovea stimuli build` again: it reuses them" in err, err


def test_merging_shards_built_on_two_machines_says_which_images_were_not_copied(
    built_set, protocol_path, tmp_path, capsys
):
    """Two machines built a shard each into their own folder; only shard 2's manifest was copied
    beside shard 1's: the merge said 'merged' and the session then refused the set ('missing;
    rebuild it'), hours of generation where a copy would do. The merge now says how many of the
    listed images are not in the folder and to copy each shard's objects/ folder."""
    from fovea_cli.main import main

    one, two = tmp_path / "machine 1", tmp_path / "machine 2"
    shutil.copytree(built_set / "objects", two / "objects")
    build_stimulus_set(
        protocol_path=protocol_path, out=one, shard=Shard(1, 2), progress=False, log=_quiet
    )
    build_stimulus_set(
        protocol_path=protocol_path, out=two, shard=Shard(2, 2), progress=False, log=_quiet
    )
    name = "manifest.shard-002-of-002.json"
    shutil.copy(two / name, one / name)
    assert main(["stimuli", "merge", str(one)]) == 0
    out = capsys.readouterr().out
    assert f"note: 8 of the 16 images the shards list are not in {one / 'objects'}" in out, out
    assert "copy each shard's objects/ folder into it" in out
    shutil.copytree(two / "objects", one / "objects", dirs_exist_ok=True)
    assert main(["stimuli", "merge", str(one)]) == 0
    assert "note:" not in capsys.readouterr().out
    check_stimulus_set(one, protocol=load_protocol(protocol_path))


def test_a_sharded_build_beside_another_shard_counts_manifests_is_refused_before_the_work(
    built_set, protocol_path, tmp_path
):
    """A set built in 2 shards, rebuilt in 3 (another number of GPUs): each of the 3 shards did
    its whole work and then failed on 'shard manifests of different shard counts'. Refused now
    before the model loads, naming the stale manifests; the images stay."""
    out = tmp_path / "set"
    shutil.copytree(built_set / "objects", out / "objects")
    for index in (1, 2):
        build_stimulus_set(
            protocol_path=protocol_path, out=out, shard=Shard(index, 2), progress=False, log=_quiet
        )
    said: list[str] = []
    with pytest.raises(FoveaError) as info:
        build_stimulus_set(
            protocol_path=protocol_path, out=out, shard=Shard(1, 3), progress=False, log=said.append
        )
    message = str(info.value)
    assert "manifest.shard-001-of-002.json, manifest.shard-002-of-002.json" in message, message
    assert "remove them (the images stay and are reused)" in message
    assert not any(line.startswith("loading generator") for line in said)
    assert not (out / "manifest.shard-001-of-003.json").exists()
    assert len(list(out.rglob("*.png"))) == 16
