"""Running the realtime bench: the service, the window, the baselines and the trials."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.atomic import write_atomic
from study.realtime.plan import (
    MODES,
    BenchConfig,
    LandingParticipant,
    abba_order,
    plan_trials,
    window_size,
)


@dataclass
class BenchRun:
    """What the records are made from.

    Attributes:
        timer: the ``study.frames.FrameTimer`` every flip went through.
        geometry: the stimulus geometry (degrees <-> image pixels).
        window_px: the window's size (width, height), as PsychoPy reports it.
        spans: per mode, the (first, end) flip indices of each of its trials.
        outcomes: per mode, (index, ``BenchTrial``, ``TrialOutcome``) of each trial.
        fixation_on: per mode, the clock time each trial's fixation mark appeared (the saccade
            to it starts then).
        baseline: (mark only, image and mark) ``FrameIntervalStats`` without generation.
        wall_s: seconds the trials took.
        planned: trials planned per mode.
        interrupted: a Ctrl-C stopped the trials; the records hold the trials finished before.
        stopped_by: why a generator that failed for good (``GenerationError``: the service gave
            up restarting it, a request raised, it hangs) stopped the trials, or None; the
            records hold the trials finished before.
        load_start, load_end: the machine's load averages (1, 5, 15 min) before and after the
            trials (``os.getloadavg``; None where there is none).
    """

    timer: object
    geometry: object = None
    window_px: list | None = None
    spans: dict = field(default_factory=lambda: {m: [] for m in MODES})
    outcomes: dict = field(default_factory=lambda: {m: [] for m in MODES})
    fixation_on: dict = field(default_factory=lambda: {m: [] for m in MODES})
    baseline: tuple = ()
    wall_s: float = 0.0
    planned: int = 0
    interrupted: bool = False
    stopped_by: str | None = None
    load_start: list | None = None
    load_end: list | None = None


def run_realtime_bench(
    *, config: BenchConfig, event_log: str | Path | None = None, log=print
) -> list[dict]:
    """Run the bench; returns one record per mode (``speculative``, ``plain``). A Ctrl-C
    during the trials stops them: the records then hold the trials finished before it and
    ``interrupted`` is true (a Ctrl-C before the first trial raises ``KeyboardInterrupt``); a
    generator that fails for good (``GenerationError``) stops them the same way, its message in
    ``stopped_by`` (before the first trial it is raised).

    Args:
        config: the bench parameters.
        event_log: the generation service's JSON-lines event file, or None.
        log: progress printer.
    """
    from protocol.geometry import stimulus_geometry
    from study.realtime.plan import bench_protocol
    from study.realtime.records import mode_records
    from study.service.start import start_service
    from study.xvfb import virtual_display

    protocols = {mode: bench_protocol(config, speculative=mode == "speculative") for mode in MODES}
    geometry = stimulus_geometry(protocols["plain"])
    service = start_service(
        protocols["speculative"],
        geometry=geometry,
        scenes=None,
        log=log,
        event_log=event_log,
        nice=config.nice,
    )
    info = service.info
    log(
        f"generator ready: pid {info['pid']}, load {info['load_s']:.1f} s, warm-up "
        f"{info['warmup_s']:.1f} s, {info['torch_threads']} torch thread(s)"
    )
    try:
        w, h = window_size(config)
        with virtual_display(width_px=max(1024, w), height_px=max(768, h)):
            run = _with_window(
                config=config, protocols=protocols, geometry=geometry, service=service, log=log
            )
        return mode_records(config=config, info=info, run=run, service_stats=service.stats())
    finally:
        service.close()


def _with_window(*, config: BenchConfig, protocols: dict, geometry, service, log) -> BenchRun:
    from psychopy import logging as pp_logging
    from psychopy import visual

    from study.session_display import background_rgb

    pp_logging.console.setLevel(pp_logging.ERROR)
    win = visual.Window(
        size=window_size(config),
        units="pix",
        fullscr=False,
        color=background_rgb(protocols["plain"]),
        colorSpace="rgb",
        waitBlanking=False,
        checkTiming=False,
        allowGUI=False,
    )
    try:
        return _run_trials(
            config=config, protocols=protocols, geometry=geometry, service=service, win=win, log=log
        )
    finally:
        win.close()


def _run_trials(*, config, protocols, geometry, service, win, log) -> BenchRun:
    """The baselines, then every planned trial in both modes (ABBA) through ``TrialRunner``."""
    from study.frames import FrameTimer
    from study.observers import make_observer
    from study.presenter import Presenter, RealClock
    from study.service.errors import GenerationError
    from study.trackers import make_tracker
    from study.trial import TrialRunner

    protocol = protocols["plain"]
    clock = RealClock()
    participant = LandingParticipant(
        make_tracker("sim", settings=protocol.tracker, seed=config.seed, clock=clock)
    )
    participant.open(win=win, session_dir=Path("."), edf_name="bench")
    participant.start_recording()
    run = BenchRun(
        timer=FrameTimer(refresh_hz=config.refresh_hz, pace=True),
        geometry=geometry,
        window_px=[int(v) for v in win.size],
    )
    presenter = Presenter(
        protocol=protocol,
        win=win,
        clock=clock,
        tracker=participant,
        physio=None,
        simulated=False,
        auto_advance=True,
        frame_timer=run.timer,
    )
    run.baseline = _baselines(presenter, config)
    observer = make_observer("parametric", display=protocol.display, settings=protocol.simulation)
    runners = {
        mode: TrialRunner(
            protocol=protocols[mode],
            presenter=presenter,
            tracker=participant,
            service=service,
            geometry=geometry,
            observer=observer,
            session_seed=config.seed,
            participant="bench",
            session=mode,
            prefetch_after_intervals=config.quiet_intervals,
            requeue_dropped_frames=False,  # the bench measures drops, it does not retry them
        )
        for mode in MODES
    }
    plans = plan_trials(config)
    run.planned = len(plans)
    order = abba_order(len(plans))
    # The first twin is made before timing starts (as the service's cache would hold it after
    # the instructions); later ones are prefetched by the trials.
    _first_twin(service, plans[0])
    run.load_start = _load_average()
    t0 = time.perf_counter()
    try:
        for n, (i, mode) in enumerate(order):
            following = plans[order[n + 1][0]] if n + 1 < len(order) else None
            runner = runners[mode]
            runner.upcoming = (
                None if following is None else (lambda f=following: (f.seed, f.conditioning))
            )
            _rest(presenter, participant)
            participant.landing_deg, participant.plan_trial = plans[i].landing_deg, i + 1
            first = run.timer.mark()
            outcome = runner.run(plan=_trial_plan(plans[i], i), trial=n + 1)
            run.spans[mode].append((first, run.timer.mark()))
            run.outcomes[mode].append((i, plans[i], outcome))
            run.fixation_on[mode].append(_last_fixation_on(participant))
            log(_trial_line(i, mode, outcome))
    except KeyboardInterrupt:
        if not any(run.outcomes.values()):
            raise
        run.interrupted = True  # the trial in progress is dropped; the finished ones are kept
    except GenerationError as error:  # the trials re-queue retryable ones themselves
        if not any(run.outcomes.values()):
            raise
        run.stopped_by = str(error)
    run.wall_s = time.perf_counter() - t0
    run.load_end = _load_average()
    participant.stop_recording()
    return run


# Where the eyes rest between trials (a blank screen): off every target, so each trial starts
# with a saccade to its fixation mark.
REST_DEG = (0.0, 5.0)


def _rest(presenter, participant, *, settle_s: float = 0.2, max_s: float = 2.0) -> None:
    """The participant looks at ``REST_DEG`` until its gaze has stayed within 1 deg of it for
    ``settle_s`` (at most ``max_s``): every trial, in both modes, then starts with the same
    saccade. Without it the eyes stayed on the previous trial's landing point, which a plan's
    second mode shares with its first: that trial had no saccade at all, and its speculation
    less of a head start."""
    participant.rest(x_deg=REST_DEG[0], y_deg=REST_DEG[1])
    start = presenter.clock()
    since = None
    while presenter.clock() - start < max_s:
        frame = presenter.flip(phase="rest")
        sample = frame.sample
        if sample is None or not sample.valid:
            since = None
        elif math.hypot(sample.x_deg - REST_DEG[0], sample.y_deg - REST_DEG[1]) > 1.0:
            since = None
        elif since is None:
            since = frame.t
        elif frame.t - since >= settle_s:
            return


def _last_fixation_on(participant) -> float | None:
    """Clock time of the participant's last ``FIXATION_ON`` message (the mark appeared)."""
    for time_s, text in reversed(participant.messages):
        if text.startswith("FIXATION_ON"):
            return float(time_s)
    return None


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _baselines(presenter, config: BenchConfig) -> tuple:
    """Flip intervals without any generation: the mark alone (as while waiting for images),
    then image and mark (the heaviest frame, as during the intervals)."""
    timer = presenter.frame_timer
    side = config.image_px
    image = presenter.image_stim(np.full((side, side, 3), 128, np.uint8))
    image.draw()  # the first texture upload compiles shaders (~0.4 s): before measuring
    presenter.flip(phase="setup")
    n_frames = max(2, int(config.baseline_s * config.refresh_hz / 2))
    stats = []
    for stim in (None, image):
        start = timer.mark()
        for _ in range(n_frames):
            if stim is not None:
                stim.draw()
            presenter.draw_fixation(0.0, 0.0)
            presenter.flip(phase="baseline")
        stats.append(timer.stats(start=start + 1))
    return tuple(stats)


def _first_twin(service, plan) -> None:
    from generator.layout import LayoutSpec
    from study.generation import GenerationRequest

    request = GenerationRequest(
        kind="full",
        seed=plan.seed,
        conditioning=plan.conditioning,
        spec=LayoutSpec(mode="full"),
        gaze_px=None,
    )
    service.submit(request).wait(600)


def _trial_plan(plan, index: int):
    """The ``TrialPlan`` of bench trial ``index`` (its target's condition, level 1)."""
    from study.procedures import TrialPlan
    from study.realtime.plan import TARGETS_DEG

    target = TARGETS_DEG.index(plan.target_deg)
    return TrialPlan(
        plan_id=index + 1,
        track=f"target{target}",
        condition=f"target{target}",
        level=1.0,
        seed=plan.seed,
        conditioning=plan.conditioning,
        interval_foveated=1 + index % 2,
        track_index=index,
    )


def _trial_line(index: int, mode: str, outcome) -> str:
    latency = outcome.fixation_to_onset_s
    if latency is None:
        return f"trial {index + 1:2d} {mode:11s} aborted ({outcome.row['abort_reason']})"
    kept = outcome.row.get("speculation_kept")
    return f"trial {index + 1:2d} {mode:11s} latency {1000 * latency:6.1f} ms" + (
        "" if kept is None else f"  speculation {'kept' if kept else 'replaced'}"
    )


def write_records(records: list[dict], path: str | Path) -> None:
    """Write the records as a JSON list (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(records, indent=2) + "\n")
