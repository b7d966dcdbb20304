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
