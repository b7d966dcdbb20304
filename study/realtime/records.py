"""The realtime bench's records, one per mode, from what its trials recorded.

Latencies come from each ``TrialOutcome`` (fixation acquired to the first interval's first flip,
on the real clock; the foveated request's ``gen_latency_s`` and ticket timings); frame counts
from PsychoPy's intervals the trial recorded; the split by phase from the ``FrameTimer`` every
flip went through (an ``onset`` is the first flip of an interval: it uploads the image).
"""

from __future__ import annotations

import os
import platform
import statistics

import numpy as np

from study.frames import DROPPED_FRAME_PERIODS, frame_stats
from study.realtime.plan import MODES

PHASES = ("iti", "fixation", "wait", "onset", "interval1", "isi", "interval2", "response")
PHASES += ("feedback", "abort")
GENERATION_PHASES = {"fixation", "wait"}  # the mark shows while generation runs
ONSET_PHASES = {"interval1", "interval2"}


def mode_records(*, config, info: dict, run, service_stats: dict) -> list[dict]:
    """One record per mode (see the package docstring), with ``hidden_latency_median_s``:
    plain minus speculative median latency."""
    records = [
        _record(mode=mode, config=config, info=info, run=run, service_stats=service_stats)
        for mode in MODES
    ]
    speculative, plain = records
    if speculative["latency_median_s"] is not None and plain["latency_median_s"] is not None:
        hidden = plain["latency_median_s"] - speculative["latency_median_s"]
        speculative["hidden_latency_median_s"] = hidden
        plain["hidden_latency_median_s"] = hidden
    return records


def _per_trial(
    index: int, plan, outcome, fixation_on_s: float | None = None, geometry=None
) -> dict:
    row, timings = outcome.row, outcome.generation_timings or {}
    acquired = outcome.fixation_acquired_s
    gaze = (row.get("gaze_x_deg"), row.get("gaze_y_deg"))
    # A kept speculation's image was made at the target, any other at the measured gaze.
    made = plan.target_deg if timings.get("reused_speculative") else gaze
    return {
        "trial": index,
        "stimulus_latency_s": outcome.fixation_to_onset_s,
        # the mark appearing to fixation acquired: the saccade, then the hold
        "fixation_s": None
        if acquired is None or fixation_on_s is None
        else acquired - fixation_on_s,
        "gaze_deg": None if None in gaze else [float(v) for v in gaze],
        "conditioning": plan.conditioning,
        "off_target": plan.off_target,
        "aborted": row["abort_reason"],
        "reused_speculative": timings.get("reused_speculative"),
        "gaze_error_deg": timings.get("gaze_error_deg"),
        "gen_latency_s": row["gen_latency_s"],
        "queue_wait_s": timings.get("queue_wait_s"),
        "generation_s": timings.get("generation_s"),
        "transfer_s": timings.get("transfer_s"),
        "request_to_result_s": timings.get("latency_s"),
        "resolve_to_result_s": timings.get("latency_from_resolve_s"),
        "twin_cache_hit": row["twin_latency_s"] == 0.0,
        "dropped_frames": row["dropped_frames"],
        "tokens": row.get("tokens"),
        "gaze_on_image": None
        if None in made or geometry is None or outcome.fixation_to_onset_s is None
        else gaze_on_image(geometry, made),
    }


def gaze_on_image(geometry, gaze_deg) -> bool:
    """The gaze (deg) lies on the image: a foveated image made there has its fovea on it (one
    made off it is all periphery: fewer tokens, a shorter generation)."""
    x, y = (float(v) for v in geometry.deg_to_image_px(*gaze_deg))
    return 0 <= x <= geometry.image_width_px and 0 <= y <= geometry.image_height_px


def _percentile(values, q: float) -> float | None:
    values = [v for v in values if v is not None]
    return None if not values else float(np.percentile(values, q))


def _median(trials: list[dict], key: str) -> float | None:
    values = [t[key] for t in trials if t.get(key) is not None]
    return statistics.median(values) if values else None


def _dropped_by_phase(timer, spans) -> dict:
    """Dropped frames per trial phase within ``spans`` (first flips of intervals: ``onset``)."""
    limit = DROPPED_FRAME_PERIODS * timer.period_s
    counts = dict.fromkeys(PHASES, 0)
    for start, stop in spans:
        for i in range(max(1, start + 1), stop):
            phase = timer.phases[i]
            if phase in ONSET_PHASES and timer.phases[i - 1] != phase:
                phase = "onset"
            if timer.times_s[i] - timer.times_s[i - 1] > limit:
                counts[phase] = counts.get(phase, 0) + 1
    return counts


def _frame_figures(*, run, mode: str) -> dict:
    """Frame statistics of one mode's trials (PsychoPy's intervals, as the trial records them),
    by phase, while generating, and the baselines."""
    timer, spans = run.timer, run.spans[mode]
    intervals = [v for _, _, outcome in run.outcomes[mode] for v in outcome.frame_intervals_s]
    all_stats = frame_stats(intervals, period_s=timer.period_s)
    generating = []
    for start, stop in spans:
        generating += timer.intervals(start=start + 1, stop=stop, phases=GENERATION_PHASES)
    gen_stats = frame_stats(generating, period_s=timer.period_s)
    by_phase = _dropped_by_phase(timer, spans)
    mark, image = run.baseline
    pp = np.asarray(intervals, dtype=float)
    return {
        "frames": all_stats.frames,
        "dropped_frames": all_stats.dropped_frames,
        "frame_interval_median_s": all_stats.interval_median_s,
        "frame_interval_p95_s": all_stats.interval_p95_s,
        "frame_interval_max_s": all_stats.interval_max_s,
        "frame_interval_sd_s": all_stats.interval_sd_s,
        "dropped_frames_by_phase": by_phase,
        "dropped_frames_excluding_onsets": all_stats.dropped_frames - by_phase["onset"],
        "generation_phase_frames": gen_stats.frames,
        "generation_phase_dropped_frames": gen_stats.dropped_frames,
        "generation_phase_interval_p95_s": gen_stats.interval_p95_s,
        "baseline_frames": mark.frames + image.frames,
        "baseline_dropped_frames": mark.dropped_frames + image.dropped_frames,
        **mark.as_dict("baseline_mark_"),
        **image.as_dict("baseline_image_"),
        "frame_period_s": timer.period_s,
        "psychopy_frame_intervals": int(pp.size),
        "psychopy_frame_interval_p95_s": float(np.percentile(pp, 95)) if pp.size else None,
    }


def _record(*, mode: str, config, info: dict, run, service_stats: dict) -> dict:
    trials = [
        _per_trial(*entry, fixation_on_s, run.geometry)
        for entry, fixation_on_s in zip(run.outcomes[mode], run.fixation_on[mode], strict=True)
    ]
    shown = [t for t in trials if t["stimulus_latency_s"] is not None]
    latencies = [t["stimulus_latency_s"] for t in shown]
    kept = [t["reused_speculative"] for t in shown if t["reused_speculative"] is not None]
    generation_s = [t["generation_s"] for t in shown]
    gen_latency_s = [t["gen_latency_s"] for t in shown]
    return {
        "mode": mode,
        "latency_median_s": _percentile(latencies, 50),
        "latency_p95_s": _percentile(latencies, 95),
        "latency_mean_s": float(np.mean(latencies)) if latencies else None,
        "latency_max_s": max(latencies) if latencies else None,
        "latency_on_target_median_s": _percentile(
            [t["stimulus_latency_s"] for t in shown if not t["off_target"]], 50
        ),
        "latency_off_target_median_s": _percentile(
            [t["stimulus_latency_s"] for t in shown if t["off_target"]], 50
        ),
        "gen_latency_median_s": _percentile(gen_latency_s, 50),
        "gen_latency_p95_s": _percentile(gen_latency_s, 95),
        **_frame_figures(run=run, mode=mode),
        "trials": len(trials),
        "trials_planned": run.planned,
        "interrupted": run.interrupted,
        "stopped_by": run.stopped_by,
        "aborted_trials": len(trials) - len(shown),
        "gaze_off_image_trials": sum(t["gaze_on_image"] is False for t in shown),
        "speculative_kept": sum(kept) if kept else None,
        "speculative_replaced": (len(kept) - sum(kept)) if kept else None,
        "queue_wait_median_s": _median(shown, "queue_wait_s"),
        "generation_median_s": _percentile(generation_s, 50),
        "generation_p95_s": _percentile(generation_s, 95),
        "transfer_median_s": _median(shown, "transfer_s"),
        "tolerance_deg": config.tolerance_deg,
        "off_target_prob": config.off_target_prob,
        "saccade_latency_mean_s": config.saccade_latency_s,
        "fixation_hold_s": config.fixation_hold_s,
        "quiet_intervals": config.quiet_intervals,
        "nice": config.nice,
        "image_px": config.image_px,
        "window_px": run.window_px,
        "model": config.model,
        "model_id": info.get("model_id"),
        "steps": info.get("steps"),
        "decode": info.get("decode"),
        "dtype": info.get("dtype"),
        "sampler": info.get("sampler"),
        "static_shapes_error": info.get("static_shapes_error"),
        "conditions_encoded": info.get("conditions_encoded"),
        "device": config.device,
        "torch_threads": info.get("torch_threads"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_start": run.load_start,
        "load_average_end": run.load_end,
        "service_restarts": service_stats.get("restarts"),
        "wall_s": run.wall_s,
        "latencies_s": latencies,
        "per_trial": trials,
    }
