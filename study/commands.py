"""Study subcommands: ``fovea run``, ``fovea simulate``, ``fovea bench session``.

Registered by ``fovea_cli``; heavy libraries (PsychoPy, torch) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from generator.arg_types import output_file, seed_int
from generator.atomic import write_atomic
from generator.errors import FoveaError
from protocol.load import resolve_protocol
from protocol.session_data import SIMULATED_OBSERVERS

#: What ``fovea`` says after Ctrl-C in run and simulate (every trial is on disk when logged).
SESSION_INTERRUPTED = (
    "the trials logged so far are kept: continue with the same command and --resume"
)


def add_observer_option(parser: argparse.ArgumentParser) -> None:
    """``--observer`` of the commands that simulate participants."""
    parser.add_argument(
        "--observer",
        choices=list(SIMULATED_OBSERVERS),
        default="parametric",
        help="the simulated participant: parametric (a psychometric function at the protocol's "
        "[simulation] thresholds) or perceptual (FovVideoVDP on the trial's images) "
        "(default: parametric)",
    )


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``run``, ``simulate`` and ``bench session``."""
    _register_run(subparsers)
    _register_simulate(subparsers)
    _register_bench_session(bench_subparsers)


def _register_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a 2AFC session with a participant (EyeLink, dummy or simulated tracker)",
        description="Run one session of PROTOCOL. Every trial is on disk before the next starts; "
        "a stopped session continues with --resume. Without --participant in a terminal, a start "
        "dialog asks for the details.",
    )
    run.add_argument("protocol", help="protocol TOML (e.g. protocols/pilot_2afc.toml)")
    run.add_argument("--participant", help="participant label, letters and digits (e.g. 01)")
    run.add_argument("--session", default="1", help="session label (default: 1)")
    run.add_argument(
        "--tracker",
        choices=["eyelink", "dummy", "sim"],
        help="gaze source (default: the protocol's)",
    )
    run.add_argument("--data", default="data", help="data root folder (default: data)")
    run.add_argument(
        "--seed", type=seed_int, help="session seed (default: derived from the labels)"
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted session (one with no logged trial continues without it)",
    )
    run.add_argument(
        "--close",
        action="store_true",
        help="a stopped session that will not be resumed: write its end records (gaze file, "
        "events, timing) without opening a window, so the data folder is valid BIDS; it stays "
        "incomplete and --resume still continues it",
    )
    run.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    run.add_argument(
        "--screenshots", help="save the first frame of each screen as PNG in this folder"
    )
    run.add_argument(
        "--stimulus-set",
        help="a pre-generated stimulus set (fovea stimuli build) to check at start and take the "
        "full-resolution twins from",
    )
    run.add_argument(
        "--scenes",
        metavar="DIR",
        help="a folder of photographs (JPEG/PNG) to take each trial's scene from, by its seed "
        "(default: the protocol's [stimulus] scenes, e.g. the project's photo pool)",
    )
    run.add_argument(
        "--allow-virtual-display",
        action="store_true",
        help="run on a virtual display (Xvfb, software OpenGL: no real refresh rate), e.g. to "
        "try the session without the lab screen; refused otherwise",
    )
    run.set_defaults(handler=_run, on_interrupt=SESSION_INTERRUPTED)


def _register_simulate(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser(
        "simulate",
        help="run complete sessions with simulated participants (virtual display if needed)",
        description="Simulated participants (sim01, sim02, ...) through the real PsychoPy window "
        "and a simulated tracker (--tracker). The same seed gives the same trials, also across a "
        "kill and --resume.",
    )
    sim.add_argument("protocol", help="protocol TOML")
    sim.add_argument(
        "--participants", type=int, default=1, help="number of participants (default: 1)"
    )
    sim.add_argument("--data", required=True, help="data root folder")
    add_observer_option(sim)
    sim.add_argument("--seed", type=seed_int, default=1, help="seed (default: 1)")
    sim.add_argument("--session", default="1", help="session label (default: 1)")
    sim.add_argument(
        "--resume",
        action="store_true",
        help="resume interrupted sessions, skip complete ones, start the participants not yet run "
        "(e.g. after raising --participants)",
    )
    sim.add_argument(
        "--screenshots", help="save the first frame of each screen as PNG in this folder"
    )
    sim.add_argument("--quiet", action="store_true", help="no per-trial lines")
    sim.add_argument(
        "--stimulus-set",
        help="a pre-generated stimulus set (fovea stimuli build) to check at start and take the "
        "full-resolution twins from",
    )
    sim.add_argument(
        "--scenes",
        metavar="DIR",
        help="a folder of photographs to take each trial's scene from (default: the protocol's)",
    )
    sim.add_argument(
        "--full-window",
        action="store_true",
        help="windows of the display's full resolution (screenshots show what a participant "
        "sees; slower) instead of just the stimulus, the fixation marks and the prompt",
    )
    sim.add_argument(
        "--tracker",
        choices=["sim", "eyelink-emulated"],
        default="sim",
        help="sim: the simulated tracker; eyelink-emulated: the EyeLink code path against the "
        "pylink emulator (faults from $FOVEA_EYELINK_FAULTS, JSON) (default: sim)",
    )
    sim.set_defaults(handler=_simulate, on_interrupt=SESSION_INTERRUPTED)


def _register_bench_session(bench_subparsers: argparse._SubParsersAction) -> None:
    bench = bench_subparsers.add_parser(
        "session",
        help="wall time and frame/gaze/generation timing of a simulated session (JSON)",
        description="Runs simulated participants of PROTOCOL (default: the pilot) in a temporary "
        "folder and writes one JSON record per session: wall time, trials, frame intervals, "
        "gaze-to-flip latency, generation latencies. On a virtual display frame figures show "
        "the runner's own cost, not a lab display's timing.",
    )
    bench.add_argument("--json", required=True, type=output_file, help="output JSON path")
    bench.add_argument("--protocol", default="pilot_2afc", help="protocol (default: pilot_2afc)")
    bench.add_argument(
        "--participants", type=int, default=1, help="simulated participants (default: 1)"
    )
    add_observer_option(bench)
    bench.add_argument("--seed", type=seed_int, default=1, help="seed (default: 1)")
    bench.add_argument(
        "--data",
        help="keep the simulated sessions' data in this folder (default: a temporary folder, "
        "removed at the end)",
    )
    bench.add_argument(
        "--quiet", action="store_true", help="no per-trial progress lines or session summaries"
    )
    bench.set_defaults(handler=_bench_session)


def _start_dialog(args: argparse.Namespace, default_tracker: str) -> None:
    """PsychoPy's start dialog for interactive runs without --participant."""
    try:
        from psychopy import gui
    except Exception as error:  # noqa: BLE001
        raise FoveaError(f"give --participant (the start dialog is unavailable: {error})") from None
    info = {
        "participant": "",
        "session": args.session,
        "tracker": [default_tracker]
        + [k for k in ("eyelink", "dummy", "sim") if k != default_tracker],
        "resume": args.resume,
    }
    dialog = gui.DlgFromDict(info, title="fovea run", sortKeys=False)
    if not dialog.OK:
        raise FoveaError("cancelled at the start dialog")
    args.participant = str(info["participant"]).strip()
    args.session = str(info["session"]).strip()
    args.tracker = info["tracker"]
    args.resume = bool(info["resume"])


def _run(args: argparse.Namespace) -> int:
    from protocol import load_protocol
    from study.datalog import check_label
    from study.session import SessionConfig, run_session

    loaded = load_protocol(resolve_protocol(args.protocol))
    tracker = args.tracker or loaded.protocol.tracker.kind
    if args.close and not args.participant:
        raise FoveaError("--close needs --participant (and --session) of the session to close")
    if not args.participant:
        if not sys.stdin.isatty():
            raise FoveaError("give --participant ID (no terminal for the start dialog)")
        _start_dialog(args, tracker)
        tracker = args.tracker
    check_label(args.participant, what="participant")
    check_label(args.session, what="session")
    config = SessionConfig(
        loaded=loaded,
        data_dir=Path(args.data),
        participant=args.participant,
        session=args.session,
        tracker=tracker,
        observer="human",
        seed=args.seed,
        resume=args.resume or args.close,
        close=args.close,
        simulated_clock=False,
        fullscreen=False if args.windowed else None,
        screenshots_dir=Path(args.screenshots) if args.screenshots else None,
        stimulus_set=Path(args.stimulus_set) if args.stimulus_set else None,
        scenes=args.scenes,
        allow_virtual_display=args.allow_virtual_display,
    )
    result = run_session(config)
    print(f"{result.paths.beh_tsv}: {result.n_rows} trials, status: {result.status}")
    from study.session_summary import session_summary

    paths = result.paths
    for line in session_summary(paths.beh_tsv, paths.beh_json, paths.eyetrack_dir):
        print(line)
    done = result.status in ("completed", "already complete")
    return 0 if done or (args.close and result.status.startswith("closed")) else 1


def _simulate(args: argparse.Namespace) -> int:
    from study.simulate import simulate

    t0 = time.perf_counter()
    results = simulate(
        protocol=resolve_protocol(args.protocol),
        participants=args.participants,
        data_dir=Path(args.data),
        observer=args.observer,
        seed=args.seed,
        session=args.session,
        resume=args.resume,
        screenshots=Path(args.screenshots) if args.screenshots else None,
        quiet=args.quiet,
        stimulus_set=Path(args.stimulus_set) if args.stimulus_set else None,
        scenes=args.scenes,
        full_window=args.full_window,
        tracker=args.tracker,
    )
    print(
        f"{len(results)} simulated session(s) in {time.perf_counter() - t0:.1f} s; data in {args.data}"
    )
    return 0 if all(r.completed for r in results) else 1


#: Generations a session's p95 latency needs before it stops being about the largest one.
_STEADY_P95 = 20


def _bench_session(args: argparse.Namespace) -> int:
    import contextlib
    import json
    import os
    import platform
    import tempfile

    from protocol import load_protocol
    from study.simulate import simulate

    protocol = resolve_protocol(args.protocol)
    stimulus = load_protocol(protocol).protocol.stimulus
    display = os.environ.get("DISPLAY") or "Xvfb started by fovea"
    records = []
    if args.data:
        data_place = contextlib.nullcontext(args.data)
        args.on_interrupt = f"no JSON written; the sessions' data so far are in {args.data}"
    else:
        data_place = tempfile.TemporaryDirectory(prefix="fovea-bench-session-")
        args.on_interrupt = "no JSON written (--data DIR keeps the sessions' data)"
    with data_place as data_dir:
        t0 = time.perf_counter()
        results = simulate(
            protocol=protocol,
            participants=args.participants,
            data_dir=Path(data_dir),
            observer=args.observer,
            seed=args.seed,
            quiet=args.quiet,
        )
        total_s = time.perf_counter() - t0
        for result in results:
            timing = json.loads(result.paths.timing_json.read_text(encoding="utf-8"))
            run = timing["runs"][-1]
            records.append(
                {
                    "protocol": protocol.stem,
                    "model": stimulus.model,
                    "device": stimulus.device,
                    "resolution": [stimulus.image_width_px, stimulus.image_height_px],
                    "steps": stimulus.num_steps,
                    "participant": result.paths.participant,
                    "observer": args.observer,
                    "trials": result.n_rows,
                    "responses": result.n_responses,
                    "session_wall_s": result.wall_s,
                    "all_sessions_wall_s": total_s,  # includes loading the generator once
                    "frames": run["frames"],
                    "frames_per_flip": run["frames_per_flip"],
                    "frame_interval_ms_median": run["frame_interval_ms"].get("median"),
                    "frame_interval_ms_p95": run["frame_interval_ms"].get("p95"),
                    "gaze_to_flip_ms_median": run["gaze_to_flip_ms"].get("median"),
                    "gen_latency_s_median": timing["generation_latency_s"].get("median"),
                    "gen_latency_s_p95": timing["generation_latency_s"].get("p95"),
                    # the p95's sample size: with few generations it is about their maximum
                    "gen_latency_count": timing["generation_latency_s"].get("count", 0),
                    "twin_latency_s_median": timing["twin_latency_s"].get("median"),
                    "deadline_misses": timing["deadline_misses"],
                    "fixation_breaks": timing["fixation_breaks"],
                    "display": display,
                    "cpu_count": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0],
                    "machine": platform.machine(),
                    "command": args.command_line,
                }
            )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(records, indent=2) + "\n")
    for record in records:
        print(
            f"{record['participant']}: {record['trials']} trials in {record['session_wall_s']:.1f} s, "
            f"frame interval median {record['frame_interval_ms_median']:.1f} ms, "
            f"generation median {record['gen_latency_s_median']:.2f} s"
        )
        if record["gen_latency_count"] < _STEADY_P95:
            print(
                f"note: {record['participant']}'s generation p95 comes from "
                f"{record['gen_latency_count']} generations, so it is about their largest; "
                f"{_STEADY_P95} or more (a longer protocol) steady it"
            )
    if not args.data:  # the lines above named files in it
        print("the sessions' data were in a temporary folder, now removed (--data DIR keeps them)")
    print(f"wrote {args.json}")
    return 0
