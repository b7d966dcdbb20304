"""The study's CLI: ``fovea demo`` end to end, argument errors as one-line messages."""

from __future__ import annotations

import tomllib

import pytest

from study.cli import main
from study.commands import PROTOCOL_DIR, demo_protocol_text, resolve_protocol
from tests.study.conftest import REPO


def test_demo_protocol_is_the_pilot_with_small_images():
    text = demo_protocol_text(source=PROTOCOL_DIR / "pilot_2afc.toml", image_px=128, trials=3)
    data = tomllib.loads(text)
    assert data["name"] == "demo_pilot" and data["stimulus"]["image_width_px"] == 128
    assert data["procedure"]["trials_per_condition"] == 3
    assert [c["name"] for c in data["conditions"]] == ["acuity_centre", "acuity_right6"]


def test_protocols_resolve_by_name():
    assert resolve_protocol("pilot_2afc") == PROTOCOL_DIR / "pilot_2afc.toml"


def test_run_without_participant_and_terminal_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["run", "pilot_2afc", "--tracker", "sim"]) == 2
    assert "give --participant" in capsys.readouterr().err


def test_bad_labels_are_refused(capsys, tmp_path):
    assert main(["run", "pilot_2afc", "--participant", "p_1", "--data", str(tmp_path)]) == 2
    assert "letters and digits" in capsys.readouterr().err


@pytest.mark.display
@pytest.mark.slow
def test_demo_runs_a_simulated_pilot_and_the_report(virtual_x, tmp_path, capsys):
    out = tmp_path / "demo"
    status = main(
        ["demo", "--out", str(out), "--participants", "2", "--trials", "3", "--image-px", "128"]
    )
    printed = capsys.readouterr().out
    print(printed)
    assert f"data:        {out / 'data'}" in printed
    assert len(list((out / "data").glob("sub-sim0[12]/ses-1/beh/*_beh.tsv"))) == 2
    assert (out / "screenshots" / "interval1.png").exists()
    assert (out / "generator" / "foveated.png").exists()
    report_line = next(line for line in printed.splitlines() if line.strip().startswith("report:"))
    if (REPO / "analysis" / "report.py").exists():
        assert status == 0, report_line
        assert report_line.strip().endswith(".html") or (out / "report").is_dir()
    assert main(["demo", "--out", str(out)]) == 2  # never overwrites


@pytest.mark.display
@pytest.mark.slow
def test_bench_session_writes_json_records(virtual_x, tmp_path):
    import json

    from tests.study.conftest import small_protocol_dict, write_toml

    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "small.toml")
    out = tmp_path / "bench.json"
    assert main(["bench", "session", "--protocol", str(protocol), "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["responses"] == 2 and record["trials"] >= 2
    for key in (
        "session_wall_s",
        "frame_interval_ms_median",
        "gaze_to_flip_ms_median",
        "gen_latency_s_median",
    ):
        assert record[key] > 0
