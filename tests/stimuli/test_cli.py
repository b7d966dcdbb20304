"""Command-line wiring of ``fovea stimuli`` and ``fovea bench realtime`` (no generation here)."""

from __future__ import annotations

from fovea_cli.main import build_parser, main
from protocol.load import PROTOCOL_DIR


def test_subcommands_parse():
    parser = build_parser()
    args = parser.parse_args(["stimuli", "build", "p.toml", "--shard", "1/2", "--max-seeds", "3"])
    assert (args.protocol, args.shard, args.max_seeds, args.only) == ("p.toml", "1/2", 3, "all")
    args = parser.parse_args(["bench", "realtime", "--json", "out.json", "--trials", "4"])
    assert (args.json, args.trials, args.image_px, args.model, args.nice) == (
        "out.json",
        4,
        512,
        "tiny",
        10,
    )
    for argv in (
        ["stimuli", "merge", "d"],
        ["stimuli", "check", "p.toml", "d"],
        ["stimuli", "sheet", "d"],
    ):
        assert callable(parser.parse_args(argv).handler)


def test_bad_options_fail_in_one_line(tmp_path, capsys):
    assert main(["bench", "realtime", "--json", str(tmp_path / "x.json"), "--image-px", "100"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --image-px must be a multiple of 16")
    assert main(["stimuli", "build", str(tmp_path / "missing.toml"), "--shard", "3/2"]) == 2
    assert "--shard 3/2" in capsys.readouterr().err
    assert main(["stimuli", "merge", str(tmp_path)]) == 2
    assert "no shard manifests" in capsys.readouterr().err
    assert main(["stimuli", "sheet", str(tmp_path)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
    (tmp_path / "set.txt").write_text("not a set")
    protocol = str(PROTOCOL_DIR / "pilot_2afc.toml")
    assert main(["stimuli", "check", protocol, str(tmp_path / "set.txt")]) == 2
    assert "set.txt is a file: give the set's folder" in capsys.readouterr().err


def test_build_and_check_take_a_shipped_protocols_name(
    built_set, protocol_path, tmp_path, monkeypatch, capsys
):
    """As `fovea run` and `fovea check`: a bare name is one of the kit's protocols
    (``protocol.load.resolve_protocol``); here the kit's folder holds the test protocol."""
    import shutil

    import protocol.load

    kit = tmp_path / "protocols"
    kit.mkdir()
    shutil.copy(protocol_path, kit / "stim_test.toml")
    monkeypatch.setattr(protocol.load, "PROTOCOL_DIR", kit)
    monkeypatch.chdir(tmp_path / "protocols")  # no ./stim_test file: the name is looked up
    out = tmp_path / "set"
    shutil.copytree(built_set / "objects", out / "objects")  # images reused: no generation
    assert main(["stimuli", "build", "stim_test", "--out", str(out), "--no-progress"]) == 0
    assert main(["stimuli", "check", "stim_test", str(out)]) == 0
    assert "ok: 16 images" in capsys.readouterr().out
    assert main(["stimuli", "check", "stim_tset", str(out)]) == 2
    err = capsys.readouterr().err
    assert "protocol 'stim_tset' not found (give a TOML path or one of: stim_test)" in err


def test_a_missing_protocol_file_names_the_kits_protocols_by_absolute_path(tmp_path):
    import pytest

    from generator.errors import FoveaError
    from protocol import load_protocol

    with pytest.raises(FoveaError) as info:
        load_protocol(tmp_path / "missing.toml")
    assert f"the kit's protocols, in {PROTOCOL_DIR}: " in str(info.value)
    assert PROTOCOL_DIR.is_absolute() and "pilot_2afc" in str(info.value)


def test_a_build_into_a_file_is_one_line_before_the_model_loads(protocol_path, tmp_path, capsys):
    (tmp_path / "set").write_text("not a folder")
    assert main(["stimuli", "build", str(protocol_path), "--out", str(tmp_path / "set")]) == 2
    assert "set is a file: give the set's folder (--out DIR)" in capsys.readouterr().err
