"""``fovea bench realtime``: frame statistics, the seeded trial plan and the bench's protocol
(pure functions), and a short bench through the session's own trial loop (display)."""

from __future__ import annotations

import pytest

from study.frames import frame_stats
from study.realtime import BenchConfig, bench_protocol, plan_trials
from study.realtime.plan import BENCH_CLASSES, BENCH_PROMPTS, TARGETS_DEG, abba_order


def test_frame_stats_counts_intervals_over_one_and_a_half_periods():
    period = 1 / 60
    stats = frame_stats([period] * 8 + [1.49 * period, 1.51 * period, 3 * period], period_s=period)
    assert stats.frames == 11 and stats.dropped_frames == 2
    assert stats.interval_median_s == pytest.approx(period)
    assert stats.interval_max_s == pytest.approx(3 * period)
    assert frame_stats([], period_s=period).frames == 0


def test_bench_plan_is_seeded_and_has_off_target_landings():
    config = BenchConfig(trials=40, seed=3, off_target_prob=0.25)
    print("seed 3")
    a, b = plan_trials(config), plan_trials(config)
    assert a == b
    off = [p for p in a if p.off_target]
    assert 4 <= len(off) <= 18
    for p in a:
        dx, dy = p.landing_deg[0] - p.target_deg[0], p.landing_deg[1] - p.target_deg[1]
        err = (dx * dx + dy * dy) ** 0.5
        if p.off_target:
            assert 0.8 <= err <= 1.3  # beyond the 0.5 deg speculation tolerance
    assert plan_trials(BenchConfig(trials=40, seed=4)) != a


def test_bench_protocol_and_order():
    config = BenchConfig(trials=3, image_px=128, tolerance_deg=0.4, fixation_hold_s=0.2)
    spec, plain = (bench_protocol(config, speculative=s) for s in (True, False))
    assert spec.generation.speculative and not plain.generation.speculative
    assert spec.generation.service == "process" and spec.generation.speculation_tolerance_deg == 0.4
    assert [c.fixation_deg for c in spec.conditions] == list(TARGETS_DEG)
    # Off-target landings (up to 1.3 deg) must still count as fixation.
    assert spec.fixation.tolerance_deg > config.off_target_deg[1]
    assert spec.timing.fixation_hold_s == 0.2 and spec.tracker.sim_fixation_break_prob == 0
    assert abba_order(2) == [(0, "speculative"), (0, "plain"), (1, "plain"), (1, "speculative")]
    assert spec.stimulus.decode == "full" and spec.stimulus.dtype == "float32"
    assert spec.stimulus.classes == list(BENCH_CLASSES)  # a preset is a class model
    assert [p.conditioning for p in plan_trials(config)] == [0, 1, 2]


def test_a_bench_setting_the_protocol_refuses_is_one_error_line():
    from generator.errors import FoveaError

    with pytest.raises(
        FoveaError, match="^fovea bench realtime: field stimulus: decode 'foveated'"
    ):
        bench_protocol(BenchConfig(decode="foveated"), speculative=True)


@pytest.mark.display
def test_a_short_bench_runs_the_trial_loop(virtual_x, tmp_path):
    from study.realtime import run_realtime_bench, write_records

    config = BenchConfig(
        trials=2, image_px=64, steps=2, baseline_s=0.2, off_target_prob=0.5, seed=1
    )
    print("seed 1")
    records = run_realtime_bench(config=config, event_log=tmp_path / "events.jsonl")
    write_records(records, tmp_path / "out" / "records.json")
    assert (tmp_path / "out" / "records.json").exists()
    assert [r["mode"] for r in records] == ["speculative", "plain"]
    for record in records:
        print({k: v for k, v in record.items() if k != "per_trial"})
        assert record["trials"] == 2 and record["aborted_trials"] == 0
        assert 0 < record["latency_median_s"] <= record["latency_max_s"] < 30
        assert record["gen_latency_median_s"] > 0 and record["generation_median_s"] > 0
        assert record["frames"] > 0 and record["baseline_mark_frames"] > 0
        assert record["generation_phase_frames"] > 0
        assert len(record["load_average_start"]) == 3 and len(record["load_average_end"]) == 3
    spec = records[0]
    assert spec["speculative_kept"] + spec["speculative_replaced"] == 2
    assert records[1]["speculative_kept"] is None
    # Both modes see the same participant on a plan: a saccade from the same resting point
    # with the same latency (the second mode's eyes were already on the plan's landing point:
    # no saccade, and its speculation less of a head start).
    # A trial in which the loaded machine stalled a frame (a dropped frame) counts that stall in
    # its fixation time (0.6 s once in a full CI run): compared only where neither dropped one.
    by_plan = [sorted(r["per_trial"], key=lambda t: t["trial"]) for r in records]
    for a, b in zip(*by_plan, strict=True):
        assert a["trial"] == b["trial"] and len(a["gaze_deg"]) == 2
        for t in (a, b):
            assert t["fixation_s"] > config.fixation_hold_s + 0.1  # a saccade first
        print("fixation s", a["fixation_s"], b["fixation_s"], "dropped frames", end=" ")
        print(a["dropped_frames"], b["dropped_frames"])
        if a["dropped_frames"] == b["dropped_frames"] == 0:
            assert abs(a["fixation_s"] - b["fixation_s"]) < 0.15


@pytest.mark.display
def test_the_bench_runs_a_flux2_directory_with_the_foveated_decode(virtual_x, tmp_path):
    """What a GPU lab runs (``--model DIR --dtype bfloat16 --decode foveated``), here on a tiny
    random FLUX.2 directory on the CPU: prompt conditioning, bf16, the VAE and the foveated decode
    in the loop."""
    from generator.tiny_flux2 import save_tiny_flux2_pipeline
    from study.realtime import run_realtime_bench

    model = save_tiny_flux2_pipeline(tmp_path / "klein")
    config = BenchConfig(
        trials=2,
        image_px=64,
        steps=2,
        baseline_s=0.2,
        seed=2,
        model=str(model),
        decode="foveated",
        dtype="bfloat16",
    )
    print("seed 2")
    records = run_realtime_bench(config=config, log=lambda *_: None)
    for record in records:
        assert record["trials"] == 2 and record["aborted_trials"] == 0
        assert record["decode"] == "foveated" and record["sampler"] == "eager"  # CPU: eager
        assert record["dtype"] == "bfloat16"
        assert record["model"] == str(model) and record["generation_median_s"] > 0
        # a prompt model draws prompts, every one encoded at warm-up
        assert record["conditions_encoded"] == len(BENCH_PROMPTS)
        assert {t["conditioning"] for t in record["per_trial"]} <= set(BENCH_PROMPTS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "{tmp}"], "is a folder"),
        (["--json", "{tmp}/a_file/out.json"], "is a file, not a folder"),
        (["--json", "{tmp}/out.json", "--event-log", "{tmp}"], "is a folder; give a file, e.g."),
        (["--json", "{tmp}/out.json", "--event-log", "{tmp}"], "events.jsonl"),
        (["--json", "{tmp}/out.json", "--off-target-prob", "1.5"], "between 0 and 1"),
        (["--json", "{tmp}/out.json", "--off-target-prob", "-0.1"], "between 0 and 1"),
    ],
)
def test_bench_arguments_are_refused_before_the_bench_starts(tmp_path, capsys, args, message):
    """A path the records cannot go to, or a share that is no probability, is one usage error at
    once (it was a traceback, or an error after the whole bench had run)."""
    from fovea_cli.main import main

    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "realtime", *(a.format(tmp=tmp_path) for a in args)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.display
def test_ctrl_c_writes_the_records_of_the_trials_run_so_far(
    virtual_x, tmp_path, monkeypatch, capsys
):
    """A Ctrl-C during the trials keeps what was measured: the JSON holds both modes' complete
    records of the finished trials, marked ``interrupted``, and the exit status is 130."""
    import json

    from fovea_cli.main import main
    from study.realtime import run as bench_run

    lines = []
    trial_line = bench_run._trial_line

    def interrupt_after_three(*args):
        lines.append(trial_line(*args))
        if len(lines) == 3:
            raise KeyboardInterrupt
        return lines[-1]

    monkeypatch.setattr(bench_run, "_trial_line", interrupt_after_three)
    out = tmp_path / "records.json"
    argv = ["bench", "realtime", "--json", str(out), "--trials", "3", "--image-px", "64"]
    assert main([*argv, "--steps", "2"]) == 130
    printed = capsys.readouterr()
    err = printed.err
    assert "interrupted" in err and str(out) in err
    assert "note: a mode's p95 comes from as few as" in printed.out  # 1 or 2 trials a mode
    records = json.loads(out.read_text())
    assert [r["mode"] for r in records] == ["speculative", "plain"]
    assert [r["trials"] for r in records] == [1, 2]  # ABBA: spec, plain | plain, (stopped)
    for record in records:
        assert record["interrupted"] is True and record["trials_planned"] == 3
        assert record["command"] == f"fovea {' '.join(argv)} --steps 2"
        assert record["latency_median_s"] > 0 and record["frames"] > 0
    assert not list(tmp_path.glob(".*.tmp-*"))


@pytest.mark.display
def test_trials_whose_gaze_is_off_the_image_are_counted_and_noted(virtual_x, tmp_path, capsys):
    """At a small --image-px the fixation targets (up to 3 deg out) lie off the image: those
    trials' images are all periphery (fewer tokens), and their latencies were reported as a
    foveated image's without a word. Each trial records whether its image's gaze was on the
    image and its tokens; the records count the others and the command says so."""
    import json

    from fovea_cli.main import main
    from protocol.geometry import stimulus_geometry
    from study.realtime.records import gaze_on_image

    config = BenchConfig(trials=1, image_px=64)
    geometry = stimulus_geometry(bench_protocol(config, speculative=False))
    assert gaze_on_image(geometry, (0.0, 0.0))
    (plan,) = plan_trials(config)  # seed 0: the target at (2, 2) deg, 90 px out
    assert plan.target_deg == (2.0, 2.0) and not gaze_on_image(geometry, plan.target_deg)

    out = tmp_path / "records.json"
    argv = ["bench", "realtime", "--json", str(out), "--trials", "1", "--image-px", "64"]
    assert main([*argv, "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    records = json.loads(out.read_text())
    for record in records:
        (trial,) = record["per_trial"]
        assert trial["gaze_on_image"] is False and trial["tokens"] > 0
        assert record["gaze_off_image_trials"] == 1
    assert "note: 2 of 2 shown trials had their image made at a gaze off the 64 px image" in printed


@pytest.mark.display
def test_a_generator_that_fails_for_good_keeps_the_records_of_the_trials_run(
    virtual_x, tmp_path, monkeypatch, capsys
):
    """The generator process killed after the third trial, with no restart allowed: the bench
    ended with 'error: generation service stopped: ...' and wrote nothing, losing every trial
    measured before. The records of the finished trials are written, with ``stopped_by``, and
    the error names the file."""
    import json
    import multiprocessing
    import os
    import signal

    from fovea_cli.main import main
    from study.realtime import run as bench_run
    from study.service.child import RestartPolicy

    monkeypatch.setattr(RestartPolicy, "refusal", lambda self: "no restart allowed (test)")
    lines = []
    trial_line = bench_run._trial_line

    def kill_after_three(*args):
        lines.append(trial_line(*args))
        if len(lines) == 3:
            for child in multiprocessing.active_children():  # the generator process
                os.kill(child.pid, signal.SIGKILL)
        return lines[-1]

    monkeypatch.setattr(bench_run, "_trial_line", kill_after_three)
    out = tmp_path / "records.json"
    argv = ["bench", "realtime", "--json", str(out), "--trials", "4", "--image-px", "64"]
    assert main([*argv, "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "no restart allowed (test)" in err and str(out) in err and "Traceback" not in err
    records = json.loads(out.read_text())
    assert [r["mode"] for r in records] == ["speculative", "plain"]
    assert sum(r["trials"] for r in records) >= 3
    for record in records:
        assert "no restart allowed (test)" in record["stopped_by"]
        assert record["interrupted"] is False and record["trials_planned"] == 4


@pytest.mark.display
def test_the_window_holds_the_whole_image(virtual_x):
    """--image-px 1024 (and anything above 600) was drawn in an 800x600 window, cut off: its
    frames cost less than on a screen showing it whole. The window is enlarged to hold it, and
    the records give its size as PsychoPy reports it."""
    from study.realtime import run_realtime_bench
    from study.realtime.plan import window_size

    assert window_size(BenchConfig(image_px=1024)) == (1024, 1024)
    assert window_size(BenchConfig(image_px=512)) == BenchConfig.window_px
    config = BenchConfig(trials=1, image_px=640, steps=2, baseline_s=0.2)
    for record in run_realtime_bench(config=config, log=lambda *a: None):
        width, height = record["window_px"]
        assert width >= 640 and height >= 640
