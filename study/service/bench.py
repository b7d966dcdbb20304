"""``fovea bench realtime``: a simulated session's request pattern against the process service,
while a real PsychoPy window flips every frame.

Each trial: the fixation target appears (speculative mode starts generating at the target now);
the simulated eyes land after a saccade latency (sometimes off target) and hold fixation; when
the hold completes ("fixation acquired") the gaze is measured and the foveated image requested
(plain) or the speculation resolved (speculative); the stimulus goes on screen at the first flip
after both the foveated image and its full-resolution twin are ready. As in the study, the
twin is asked for at trial start and the next trial's twin is prefetched from stimulus onset;
with ``quiet_intervals`` the prefetch is held (``pause_background``) until the second interval
has ended. The trial goes on with the second interval and a simulated answer.

Trials alternate between the modes in ABBA order with the same seeds, targets and landing
errors, so that both see the same machine load. Frame intervals are also measured for a stretch
with no generation at all (``baseline_*``), which separates drops caused by generation from
drops a loaded machine or the virtual display cause anyway; the baseline draws the heaviest
frame (image and mark). Frames that upload a new image texture (``onset``: about 20 ms for a
512 px image on Xvfb's software renderer) are counted separately: they cost the window, not the
generator.

Records (one per mode) carry at least ``mode``, ``latency_median_s``, ``latency_p95_s``
(fixation acquired to stimulus on screen), ``frames`` and ``dropped_frames``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Mode = str  # "speculative" | "plain"


@dataclass(frozen=True)
class BenchConfig:
    """Bench parameters.

    Attributes:
        trials: trials per mode.
        image_px: square image side (a multiple of the model's token size).
        model, device, steps: generator (``steps`` None: the model's default).
        tolerance_deg: speculation tolerance (``resolve``).
        off_target_prob: share of trials where the eyes land off the target by
            ``off_target_deg`` (beyond the tolerance): the speculation is wasted there.
        off_target_deg: (min, max) landing error of those trials.
        landing_sd_deg: per-axis landing scatter of the other trials.
        saccade_latency_s: (mean, sd) of the time from target onset to landing.
        fixation_hold_s: hold before fixation counts as acquired.
        stimulus_s, isi_s: each of the two intervals, and the blank between them.
        response_s: simulated answer time after the second interval.
        iti_s: inter-trial blank.
        refresh_hz: frame rate of the loop.
        baseline_s: seconds of flipping with no generation (frame-interval baseline).
        seed: random seed of targets, latencies and landing errors.
        window_px: window size.
        nice: niceness added to the generator process.
        quiet_intervals: hold the next twin's prefetch during the two intervals
            (``pause_background``), so that it runs during the answer and the next fixation.
    """

    trials: int = 12
    image_px: int = 512
    model: str = "tiny"
    device: str = "cpu"
    steps: int | None = None
    tolerance_deg: float = 0.5
    off_target_prob: float = 0.25
    off_target_deg: tuple[float, float] = (0.8, 1.3)
    landing_sd_deg: float = 0.15
    saccade_latency_s: tuple[float, float] = (0.2, 0.04)
    fixation_hold_s: float = 0.3
    stimulus_s: float = 0.5
    isi_s: float = 0.25
    response_s: float = 0.5
    iti_s: float = 0.3
    refresh_hz: float = 60.0
    baseline_s: float = 3.0
    seed: int = 0
    window_px: tuple[int, int] = (800, 600)
    nice: int = 10
    quiet_intervals: bool = True


@dataclass
class _TrialPlan:
    seed: int
    conditioning: int
    target_deg: tuple[float, float]
    landing_deg: tuple[float, float]
    saccade_s: float
    off_target: bool


def plan_trials(config: BenchConfig) -> list[_TrialPlan]:
    """The seeded trial sequence (shared by both modes)."""
    rng = np.random.default_rng(config.seed)
    targets = [
        (0.0, 0.0),
        (3.0, 0.0),
        (-3.0, 0.0),
        (0.0, 2.5),
        (0.0, -2.5),
        (2.0, 2.0),
        (-2.0, -2.0),
    ]
    plans = []
    for i in range(config.trials):
        tx, ty = targets[int(rng.integers(len(targets)))]
        off = bool(rng.random() < config.off_target_prob)
        if off:
            r = rng.uniform(*config.off_target_deg)
            a = rng.uniform(0, 2 * math.pi)
            dx, dy = r * math.cos(a), r * math.sin(a)
        else:
            dx, dy = rng.normal(0.0, config.landing_sd_deg, size=2)
        mean, sd = config.saccade_latency_s
        saccade = float(np.clip(rng.normal(mean, sd), 0.12, 0.4))
        plans.append(
            _TrialPlan(1000 + i, i % 4, (tx, ty), (tx + float(dx), ty + float(dy)), saccade, off)
        )
    return plans


def run_realtime_bench(
    *, config: BenchConfig, event_log: str | Path | None = None, log=print
) -> list[dict]:
    """Run the bench; returns one record per mode (``speculative``, ``plain``)."""
    from generator.geometry import StimulusGeometry, default_display
    from study.service.process import ProcessGenerationService
    from study.xvfb import virtual_display

    geometry = StimulusGeometry(
        display=default_display(), image_width_px=config.image_px, image_height_px=config.image_px
    )
    service = ProcessGenerationService(
        model=config.model,
        device=config.device,
        geometry=geometry,
        num_steps=config.steps,
        event_log=event_log,
        nice=config.nice,
    )
    log(f"starting the generator process ({config.model} on {config.device}) ...")
    info = service.start()
    log(
        f"generator ready: pid {info['pid']}, load {info['load_s']:.1f} s, warm-up {info['warmup_s']:.1f} s, "
        f"{info['torch_threads']} torch thread(s)"
    )
    try:
        w, h = config.window_px
        with virtual_display(width_px=max(1024, w), height_px=max(768, h)):
            return _with_window(
                config=config, geometry=geometry, service=service, info=info, log=log
            )
    finally:
        service.close()


def _with_window(*, config, geometry, service, info, log) -> list[dict]:
    from PIL import Image
    from psychopy import logging as pp_logging
    from psychopy import visual

    from generator.layout import LayoutSpec
    from study.generation import GenerationRequest
    from study.service.frameloop import PacedFrameLoop

    pp_logging.console.setLevel(pp_logging.ERROR)
    win = visual.Window(
        size=config.window_px,
        units="pix",
        fullscr=False,
        color=(0, 0, 0),
        colorSpace="rgb",
        waitBlanking=False,
        checkTiming=False,
        allowGUI=False,
    )
    try:
        loop = PacedFrameLoop(win, refresh_hz=config.refresh_hz, pace=True)
        ppd = geometry.display.pixels_per_degree
        dot = visual.Circle(win, radius=0.2 * ppd, fillColor=(1, 1, 1), lineColor=None, units="pix")
        grey = np.full((config.image_px, config.image_px, 3), 128, np.uint8)
        # The first texture upload compiles shaders (~0.4 s): do it before measuring.
        stim = visual.ImageStim(
            win,
            image=Image.fromarray(grey),
            units="pix",
            size=(config.image_px, config.image_px),
            interpolate=False,
        )
        stim.draw()
        loop.flip("setup")

        def target_pos(x_deg, y_deg):
            sx, sy = geometry.display.deg_to_screen_px(x_deg, y_deg)
            return (
                float(sx - geometry.display.width_px / 2),
                float(geometry.display.height_px / 2 - sy),
            )

        # ---- baselines: the loop alone, no generation anywhere: the mark only (as while waiting
        # for generation) and the heaviest frame (image and mark, as during the intervals)
        n_base = max(2, int(config.baseline_s * config.refresh_hz / 2))
        base_start = loop.mark()
        for _ in range(n_base):
            dot.draw()
            loop.flip("baseline")
        baseline_mark = loop.stats(start=base_start + 1)
        base_start = loop.mark()
        for _ in range(n_base):
            stim.draw()
            dot.draw()
            loop.flip("baseline")
        baseline_image = loop.stats(start=base_start + 1)
        baseline = (baseline_mark, baseline_image)

        plans = plan_trials(config)
        order = []
        for i in range(len(plans)):
            pair = ("speculative", "plain") if i % 2 == 0 else ("plain", "speculative")
            order.extend((i, m) for m in pair)
        results = {"speculative": [], "plain": []}
        spans = {"speculative": [], "plain": []}

        def request(plan, gaze_deg, kind="foveated"):
            if kind == "full":
                return GenerationRequest(
                    kind="full",
                    seed=plan.seed,
                    conditioning=plan.conditioning,
                    spec=LayoutSpec(mode="full"),
                    gaze_px=None,
                )
            gx, gy = geometry.deg_to_image_px(*gaze_deg)
            return GenerationRequest(
                kind="foveated",
                seed=plan.seed,
                conditioning=plan.conditioning,
                spec=LayoutSpec(mode="acuity"),
                gaze_px=(float(gx), float(gy)),
                deadline_s=10.0,
            )

        # The first twin is made before timing starts (a session prefetches it during the
        # instructions); later twins are prefetched while the previous stimulus is shown.
        service.submit(request(plans[0], None, kind="full")).wait(600)
        frames = lambda s: max(1, round(s * config.refresh_hz))  # noqa: E731

        def show(image, seconds) -> float:
            stim.image = Image.fromarray(image)  # the texture upload happens in this frame
            stim.draw()
            dot.draw()
            onset = loop.flip("onset")
            for _ in range(frames(seconds) - 1):
                stim.draw()
                dot.draw()
                loop.flip("stimulus")
            return onset

        t_start = time.perf_counter()
        for n, (i, mode) in enumerate(order):
            plan = plans[i]
            first = loop.mark()
            # As in the study: the twin is asked for at trial start (a cache hit when prefetched).
            twin_ticket = service.submit(request(plan, None, kind="full"))
            for _ in range(frames(config.iti_s)):
                loop.flip("iti")
            dot.pos = target_pos(*plan.target_deg)
            dot.draw()
            t_on = loop.flip("target")
            ticket = None
            if mode == "speculative":
                ticket = service.submit_speculative(request(plan, plan.target_deg))
            acquired_at = t_on + plan.saccade_s + config.fixation_hold_s
            while True:
                dot.draw()
                t = loop.flip("target")
                if t >= acquired_at:
                    break
            t_acq = t
            if mode == "speculative":
                gx, gy = geometry.deg_to_image_px(*plan.landing_deg)
                ticket = service.resolve(
                    ticket, gaze_px=(float(gx), float(gy)), tolerance_deg=config.tolerance_deg
                )
            else:
                ticket = service.submit(request(plan, plan.landing_deg))
            while not (ticket.done() and twin_ticket.done()):
                dot.draw()
                loop.flip("wait")
            foveated, twin = ticket.result(), twin_ticket.result()
            if config.quiet_intervals:
                service.pause_background(True)
            t_stim = show(foveated.image, config.stimulus_s)
            upcoming = order[n + 1][0] if n + 1 < len(order) else None
            if upcoming is not None and upcoming != i:
                nxt = plans[upcoming]
                service.prefetch_twin(seed=nxt.seed, conditioning=nxt.conditioning)
            for _ in range(frames(config.isi_s)):
                dot.draw()
                loop.flip("stimulus")
            show(twin.image, config.stimulus_s)
            service.pause_background(False)
            for _ in range(frames(config.response_s)):
                dot.draw()
                loop.flip("response")
            timings = ticket.timings
            results[mode].append(
                {
                    "trial": i,
                    "stimulus_latency_s": t_stim - t_acq,
                    "off_target": plan.off_target,
                    "reused_speculative": ticket.reused_speculative,
                    "gaze_error_deg": ticket.gaze_error_deg,
                    "queue_wait_s": timings["queue_wait_s"],
                    "generation_s": timings["generation_s"],
                    "transfer_s": timings["transfer_s"],
                    "request_to_result_s": timings["latency_s"],
                    "resolve_to_result_s": timings["latency_from_resolve_s"],
                    "twin_cache_hit": twin_ticket.cache_hit,
                }
            )
            spans[mode].append((first, loop.mark()))
            log(
                f"trial {i + 1:2d} {mode:11s} latency {1000 * (t_stim - t_acq):6.1f} ms"
                + (
                    ""
                    if ticket.reused_speculative is None
                    else f"  speculation {'kept' if ticket.reused_speculative else 'replaced'}"
                )
            )
        total_s = time.perf_counter() - t_start
        psychopy_intervals = list(win.frameIntervals)
    finally:
        win.close()
    records = []
    for mode in ("speculative", "plain"):
        records.append(
            _record(
                mode=mode,
                config=config,
                info=info,
                loop=loop,
                spans=spans[mode],
                trials=results[mode],
                baseline=baseline,
                total_s=total_s,
                service_stats=service.stats(),
                psychopy_intervals=psychopy_intervals,
            )
        )
    spec, plain = records
    if spec["latency_median_s"] is not None and plain["latency_median_s"] is not None:
        hidden = plain["latency_median_s"] - spec["latency_median_s"]
        spec["hidden_latency_median_s"] = hidden
        plain["hidden_latency_median_s"] = hidden
    return records


def _record(
    *, mode, config, info, loop, spans, trials, baseline, total_s, service_stats, psychopy_intervals
) -> dict:
    from study.service.frameloop import frame_stats

    latencies = [t["stimulus_latency_s"] for t in trials]
    intervals, gen_intervals = [], []
    for start, stop in spans:
        intervals += loop.intervals(start=start + 1, stop=stop)
        gen_intervals += loop.intervals(start=start + 1, stop=stop, phases={"target", "wait"})
    all_stats = frame_stats(intervals, period_s=loop.period_s)
    by_phase = {}
    for phase in ("iti", "target", "wait", "onset", "stimulus", "response"):
        values = []
        for start, stop in spans:
            values += loop.intervals(start=start + 1, stop=stop, phases={phase})
        by_phase[phase] = frame_stats(values, period_s=loop.period_s).dropped_frames
    gen_stats = frame_stats(gen_intervals, period_s=loop.period_s)

    def q(values, p):
        return None if not values else float(np.percentile(values, p))

    def med(key):
        values = [t[key] for t in trials if t.get(key) is not None]
        return statistics.median(values) if values else None

    reused = [t["reused_speculative"] for t in trials if t["reused_speculative"] is not None]
    pp = np.asarray(psychopy_intervals, dtype=float)
    return {
        "mode": mode,
        "latency_median_s": q(latencies, 50),
        "latency_p95_s": q(latencies, 95),
        "latency_mean_s": float(np.mean(latencies)) if latencies else None,
        "latency_max_s": max(latencies) if latencies else None,
        "latency_on_target_median_s": q(
            [t["stimulus_latency_s"] for t in trials if not t["off_target"]], 50
        ),
        "latency_off_target_median_s": q(
            [t["stimulus_latency_s"] for t in trials if t["off_target"]], 50
        ),
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
        "baseline_frames": baseline[0].frames + baseline[1].frames,
        "baseline_dropped_frames": baseline[0].dropped_frames + baseline[1].dropped_frames,
        **baseline[0].as_dict("baseline_mark_"),
        **baseline[1].as_dict("baseline_image_"),
        "frame_period_s": loop.period_s,
        "psychopy_frame_intervals": int(pp.size),
        "psychopy_frame_interval_p95_s": float(np.percentile(pp, 95)) if pp.size else None,
        "trials": len(trials),
        "speculative_kept": sum(reused) if reused else None,
        "speculative_replaced": (len(reused) - sum(reused)) if reused else None,
        "queue_wait_median_s": med("queue_wait_s"),
        "generation_median_s": med("generation_s"),
        "transfer_median_s": med("transfer_s"),
        "tolerance_deg": config.tolerance_deg,
        "off_target_prob": config.off_target_prob,
        "saccade_latency_mean_s": config.saccade_latency_s[0],
        "fixation_hold_s": config.fixation_hold_s,
        "quiet_intervals": config.quiet_intervals,
        "nice": config.nice,
        "image_px": config.image_px,
        "model": config.model,
        "model_id": info.get("model_id"),
        "steps": info.get("steps"),
        "device": config.device,
        "torch_threads": info.get("torch_threads"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "service_restarts": service_stats.get("restarts"),
        "wall_s": total_s,
        "latencies_s": latencies,
        "per_trial": trials,
    }


def write_records(records: list[dict], path: str | Path) -> None:
    """Write the records as a JSON list (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
