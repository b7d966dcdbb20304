"""The study's CLI: ``fovea demo`` end to end, argument errors as one-line messages."""

from __future__ import annotations

import tomllib

import pytest

from study.cli import main
from study.commands import PROTOCOL_DIR, demo_protocol_text, resolve_protocol


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
def test_demo_runs_a_simulated_pilot_and_says_where_results_are(virtual_x, tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(
            ["demo", "--out", str(out), "--participants", "1", "--trials", "2", "--image-px", "128"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"data:        {out / 'data'}" in printed and "report:" in printed
    assert len(list((out / "data").glob("sub-sim01/ses-1/beh/*_beh.tsv"))) == 1
    assert (out / "screenshots" / "interval1.png").exists()
    assert main(["demo", "--out", str(out)]) == 2  # never overwrites
