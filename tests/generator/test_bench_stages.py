"""``fovea bench generator`` reports each stage's share (encode, denoise, decode)."""

from __future__ import annotations

import pytest


def test_bench_records_split_stages():
    from generator.bench import run_generator_benchmark

    records = run_generator_benchmark(model="flux2-tiny", sizes=[128], steps=1)
    assert records
    for record in records:
        shares = record["encode_share"] + record["denoise_share"] + record["decode_share"]
        assert shares == pytest.approx(1.0)
        assert 0 < record["decoded_area_ratio"] <= 1.0


def test_the_stage_split_samples_the_steps_the_timed_runs_sample():
    """``--steps 1`` timed one-step generations but split the stages of a generation with the
    model's own steps (4 for flux2-tiny), so ``denoise_seconds`` was several times the record's
    ``denoise_seconds_foveated``. The split samples the benchmark's steps."""
    from generator.bench import _stage_split
    from generator.geometry import StimulusGeometry, default_display
    from generator.layout import LayoutSpec
    from generator.loading import load_generator

    generator = load_generator("flux2-tiny")
    assert generator.steps != 1
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    layout = generator.layout(geometry=geometry, gaze_px=(64.0, 64.0), spec=LayoutSpec())
    calls = []
    generator.denoiser.transformer.register_forward_hook(lambda *_: calls.append(1))
    generator.generate(seed=0, geometry=geometry, gaze_px=(64.0, 64.0), spec=LayoutSpec(), steps=1)
    per_generation = len(calls)
    calls.clear()
    _stage_split(generator, layout, steps=1)
    assert len(calls) == per_generation


def test_bench_generator_records_say_the_command_that_made_them(tmp_path):
    """Each record names the command (they named device and model, not how they were made)."""
    import json

    from fovea_cli.main import main

    out = tmp_path / "bench.json"
    argv = ["bench", "generator", "--model", "tiny", "--sizes", "64", "--steps", "1"]
    assert main([*argv, "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert records and {r["command"] for r in records} == {
        " ".join(["fovea", *argv, "--json", str(out)])
    }
    assert {(r["device"], r["resolution"], r["steps"]) for r in records} == {("cpu", 64, 1)}


def test_ctrl_c_writes_the_records_measured_so_far(tmp_path, capsys):
    """Ctrl-C in ``fovea bench generator`` (an hour at 1024 px with the default model) said
    'interrupted' and wrote nothing: every record measured was lost. The records measured by then
    are written, marked ``interrupted``, and the line says where. The Ctrl-C arrives in the run's
    last transformer forward (counted in an uninterrupted run), inside the last record's work."""
    import json

    from fovea_cli.main import main
    from tests.generator.forward_hooks import module_forwards

    argv = ["bench", "generator", "--model", "tiny", "--sizes", "64", "--steps", "1", "--json"]
    with module_forwards() as calls:
        assert main([*argv, str(tmp_path / "all.json")]) == 0
    complete = json.loads((tmp_path / "all.json").read_text())
    assert not any(r["interrupted"] for r in complete)
    planned = len(complete)
    out = tmp_path / "part.json"
    with module_forwards(ctrl_c_at=len(calls)):
        assert main([*argv, str(out)]) == 130
    records = json.loads(out.read_text())
    assert len(records) == planned - 1
    assert all(r["interrupted"] and r["records_planned"] == planned for r in records)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted; the {planned - 1} of {planned} records measured so far are in {out}"
    )
    assert not list(tmp_path.glob(".*.tmp-*"))


@pytest.mark.parametrize("bench", ["generator", "report", "quality"])
def test_a_json_path_in_a_folder_that_takes_no_file_is_refused_before_the_work(bench, capsys):
    """--json in a folder that takes no file (a read-only share; here /proc, where no file can
    be made even by root) ran the whole benchmark and then failed naming a temporary file
    ('/proc/.x.json.tmp-3579: no such file or folder'). It is refused before any work."""
    from fovea_cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", bench, "--json", "/proc/fovea-bench-x.json"])
    assert exit_.value.code == 2
    assert "--json: /proc/fovea-bench-x.json: cannot write in /proc" in capsys.readouterr().err
