"""The study's CLI: ``fovea demo`` end to end, argument errors as one-line messages."""

from __future__ import annotations

import tomllib

import pytest

from fovea_cli.demo import demo_protocol_text
from fovea_cli.main import main
from protocol.load import PROTOCOL_DIR, resolve_protocol
from tests.study.conftest import REPO


def test_demo_protocol_is_the_pilot_with_fewer_trials_and_seeds():
    text = demo_protocol_text(
        source=PROTOCOL_DIR / "pilot_2afc.toml", image_px=800, trials=3, seeds=2
    )
    data = tomllib.loads(text)
    assert data["name"] == "demo_pilot" and data["stimulus"]["image_width_px"] == 800
    assert data["stimulus"]["model"] == "default" and data["stimulus"]["scenes"] == "pool"
    assert data["stimulus"]["seed_count"] == 2
    assert data["procedure"]["trials_per_condition"] == 3
    assert [c["name"] for c in data["conditions"]] == ["acuity_centre", "acuity_right6"]
    # the session structure a lab expects, kept short: example, 4 practice trials, one break
    assert data["practice"] == {"trials": 4, "max_blocks": 1, "example": True}
    assert data["breaks"]["every_n_trials"] == 3  # after half of 2 x 3 main trials
    assert data["procedure"]["counterbalance"] == "latin_square"


def test_the_pilot_shows_natural_scenes_with_both_fixations_on_the_image():
    from protocol import load_protocol
    from protocol.geometry import stimulus_geometry

    p = load_protocol(PROTOCOL_DIR / "pilot_2afc.toml").protocol
    assert p.stimulus.model == "default" and p.stimulus.image_width_px >= 768
    geometry = stimulus_geometry(p)
    eccentricities = []
    for condition in p.conditions:
        x, y = geometry.deg_to_image_px(*condition.fixation_deg)
        assert 0 <= x < geometry.image_width_px and 0 <= y < geometry.image_height_px
        eccentricities.append(max(abs(v) for v in condition.fixation_deg))
    assert min(eccentricities) == 0 and max(eccentricities) >= 6


def test_demo_refuses_an_image_too_small_for_its_fixations(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--image-px", "256"]) == 2
    err = capsys.readouterr().err.strip()
    assert "acuity_right6's fixation (6, 0) deg lies outside the image" in err and "\n" not in err
    assert not out.exists()


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
    """The demo's whole path with the tiny model (fast; no scenes): the set of twins first, then
    two sessions in a window of the display's full size, the generator example, the report."""
    import json

    import numpy as np
    from PIL import Image

    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--model", "tiny", "--trials", "3", "--seeds", "2"]
    status = main(argv)
    printed = capsys.readouterr().out
    print(printed)
    assert f"data:        {out / 'data'}" in printed
    assert "note: --trials 3 is fewer than the 10 responses per condition the report" in printed
    behs = sorted((out / "data").glob("sub-sim0[12]/ses-1/beh/*_beh.tsv"))
    assert len(behs) == 2
    manifest = json.loads((out / "stimulus_set" / "manifest.json").read_text())
    assert len(manifest["entries"]) == 2  # only the twins the trials need: 2 seeds x 1 class
    sidecar = json.loads(behs[0].with_suffix(".json").read_text())
    assert sidecar["runs"][-1]["stimulus_set"]["entries"] == 2
    # practice first (logged as such), a break after half of the main trials, the example
    assert sidecar["practice"]["blocks"][0]["responses"] == 4
    assert [b["after_responses"] for b in sidecar["runs"][-1]["breaks"]] == [3]
    assert sidecar["example"]["level"] == 8.0 and sidecar["session_duration_s"] > 0
    header, *lines = behs[0].read_text().splitlines()
    column = header.split("\t").index("block")
    blocks = [line.split("\t")[column] for line in lines]
    assert blocks[0] == "practice" and blocks[-1] == "main"
    for name in ("example", "practice", "break", "goodbye"):
        assert (out / "screenshots" / f"{name}.png").exists(), name
    shot = Image.open(out / "screenshots" / "interval1.png")
    assert shot.size == (2560, 1440)  # what a participant sees
    image = np.asarray(shot.convert("RGB")).astype(int)
    assert image[620:820, 1180:1380].std() > 5  # the stimulus at the centre, not background
    assert np.abs(image[20:40, 20:40] - 128).max() <= 1  # the display's grey around it
    for name in ("foveated", "foveated_fixation", "full", "layout"):
        assert (out / "generator" / f"{name}.png").exists()
    panel = Image.open(out / "generator" / "panel.png")  # foveated | twin | layout (no scene)
    assert panel.size == (3 * 480, 480 + 28)
    report_line = next(line for line in printed.splitlines() if line.strip().startswith("report:"))
    if (REPO / "analysis" / "report.py").exists():
        assert status == 0, report_line
        assert report_line.strip().endswith(".html") or (out / "report").is_dir()
    # The same command again continues it: the finished sessions and twins are kept.
    again = main(argv)
    printed = capsys.readouterr().out
    assert f"continuing the demo in {out}" in printed and "already complete" in printed
    assert again == status and sorted((out / "data").glob("sub-sim0[12]/ses-1/beh/*_beh.tsv"))
    assert "0 generated" in printed  # the twins came from the set already built
    assert main(["demo", "--out", str(out)]) == 2  # other options: never overwritten


@pytest.mark.display
@pytest.mark.slow
def test_bench_session_writes_json_records(virtual_x, tmp_path, capsys):
    import json

    from tests.study.conftest import small_protocol_dict, write_toml

    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "small.toml")
    out = tmp_path / "bench.json"
    assert main(["bench", "session", "--protocol", str(protocol), "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["responses"] == 2 and record["trials"] >= 2
    # What made the numbers (the record named only the protocol): command, model, device, size.
    assert record["command"] == f"fovea bench session --protocol {protocol} --json {out}"
    assert (record["model"], record["device"], record["resolution"]) == ("tiny", "cpu", [128, 128])
    # Its p95 says how few generations it comes from (it said nothing of it).
    assert 2 <= record["gen_latency_count"] < 20
    printed = capsys.readouterr().out
    assert f"note: sim01's generation p95 comes from {record['gen_latency_count']} generations" in (
        printed
    )
    # Progress while it runs (a pilot session ran minutes without a line), and the session
    # files it named are said to be gone with their temporary folder.
    assert "  trial    1 " in printed and "sim01: summary:" in printed
    assert "in a temporary folder, now removed (--data DIR keeps them)" in printed
    # --data keeps the sessions (a Ctrl-C then leaves what it ran); --quiet drops the lines.
    kept = tmp_path / "kept"
    argv = ["bench", "session", "--protocol", str(protocol), "--json", str(out), "--quiet"]
    assert main([*argv, "--data", str(kept)]) == 0
    printed = capsys.readouterr().out
    assert "  trial    1 " not in printed and "temporary folder" not in printed
    assert len(list(kept.glob("sub-sim01/ses-1/beh/*_beh.tsv"))) == 1
    for key in (
        "session_wall_s",
        "frame_interval_ms_median",
        "gaze_to_flip_ms_median",
        "gen_latency_s_median",
    ):
        assert record[key] > 0


def test_bench_session_refuses_a_json_path_it_cannot_write_before_the_session(tmp_path, capsys):
    """``--json`` naming a folder (or under a file) was taken as given: the whole simulated
    session ran (minutes with the pilot), then the write failed naming a temporary file. It is
    refused at once, as the other benchmarks' ``--json`` is."""
    folder = tmp_path / "results"
    folder.mkdir()
    (tmp_path / "a_file").write_text("x")
    for path, says in ((folder, "is a folder"), (tmp_path / "a_file" / "b.json", "is a file")):
        with pytest.raises(SystemExit) as exit_:
            main(["bench", "session", "--protocol", "nosuch_protocol", "--json", str(path)])
        assert exit_.value.code == 2
        assert says in capsys.readouterr().err


def test_ctrl_c_in_the_demo_says_the_same_command_continues(tmp_path, monkeypatch, capsys):
    """After Ctrl-C the same command continues the demo (it was refused: 'choose another
    --out'); the same folder with other options is refused, nothing is overwritten."""
    import stimuli.build

    def ctrl_c(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(stimuli.build, "build_stimulus_set", ctrl_c)
    out = tmp_path / "demo"
    command = ["demo", "--out", str(out), "--model", "tiny"]
    assert main(command) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "interrupted; the same command continues the demo"
    )
    assert main(command) == 130  # it went on, to the (still interrupted) build
    assert f"continuing the demo in {out}" in capsys.readouterr().out
    assert main([*command, "--trials", "5"]) == 2
    refused = capsys.readouterr().err
    assert "is not a demo with these options (its protocol has `trials_per_condition = 16`, " in (
        refused
    )
    assert "these options give `trials_per_condition = 5`); choose another --out" in refused
