"""Study subcommands: ``fovea run``, ``fovea simulate``, ``fovea demo``.

Heavy libraries (PsychoPy, torch) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from generator.errors import FoveaError

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DIR = REPO_ROOT / "protocols"


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
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
    run.add_argument("--seed", type=int, help="session seed (default: derived from the labels)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted session")
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
    run.set_defaults(handler=_run)

    sim = subparsers.add_parser(
        "simulate",
        help="run complete sessions with simulated participants (virtual display if needed)",
        description="Simulated participants (sim01, sim02, ...) through the real PsychoPy window "
        "and the simulated tracker. The same seed gives the same trials, also across a kill and "
        "--resume.",
    )
    sim.add_argument("protocol", help="protocol TOML")
    sim.add_argument(
        "--participants", type=int, default=1, help="number of participants (default: 1)"
    )
    sim.add_argument("--data", required=True, help="data root folder")
    sim.add_argument("--observer", choices=["parametric", "perceptual"], default="parametric")
    sim.add_argument("--seed", type=int, default=1, help="seed (default: 1)")
    sim.add_argument("--session", default="1", help="session label (default: 1)")
    sim.add_argument(
        "--resume", action="store_true", help="resume interrupted sessions, skip complete ones"
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
        "sees; slower) instead of just the stimulus and fixation marks",
    )
    sim.set_defaults(handler=_simulate)

    demo = subparsers.add_parser(
        "demo",
        help="a short simulated pilot on natural scenes (default model, 768 px, full-size window) "
        "and its analysis report",
        description="The pilot protocol, shortened: a stimulus set with the full-resolution twins "
        "the trials need is built first (fovea stimuli build), then simulated participants run "
        "in a window of the display's full resolution (2560 x 1440, a virtual display if "
        "needed), the foveated image generated at each measured gaze; screenshots, a generator "
        "example and the analysis report follow.",
    )
    demo.add_argument("--out", default="fovea-demo", help="output folder (default: fovea-demo)")
    demo.add_argument("--participants", type=int, default=2)
    demo.add_argument("--observer", choices=["parametric", "perceptual"], default="parametric")
    demo.add_argument(
        "--trials",
        type=int,
        default=16,
        help="responses per condition (default: 16, enough for a threshold fit; the pilot: 20)",
    )
    demo.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="generation seeds, one scene each; their twins are pre-built (default: 3)",
    )
    demo.add_argument(
        "--image-px", type=int, default=768, help="stimulus size, px (default: 768, 17 deg)"
    )
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument(
        "--model",
        default="default",
        help="generator: the embedded default scene model (default), 'tiny' (random weights, "
        "no scenes, fastest) or a local model directory",
    )
    demo.add_argument(
        "--steps", type=int, default=None, help="sampler steps (default: the model's)"
    )
    demo.add_argument(
        "--scenes", metavar="DIR", help="a folder of photographs instead of the shipped pool"
    )
    demo.set_defaults(handler=_demo)

    bench = bench_subparsers.add_parser(
        "session",
        help="wall time and frame/gaze/generation timing of a simulated session (JSON)",
        description="Runs simulated participants of PROTOCOL (default: the pilot) in a temporary "
        "folder and writes one JSON record per session: wall time, trials, frame intervals, "
        "gaze-to-flip latency, generation latencies. On a virtual display frame figures show "
        "the runner's own cost, not a lab display's timing.",
    )
    bench.add_argument("--json", required=True, help="output JSON path")
    bench.add_argument("--protocol", default="pilot_2afc", help="protocol (default: pilot_2afc)")
    bench.add_argument("--participants", type=int, default=1)
    bench.add_argument("--observer", choices=["parametric", "perceptual"], default="parametric")
    bench.add_argument("--seed", type=int, default=1)
    bench.set_defaults(handler=_bench_session)


def resolve_protocol(name: str) -> Path:
    """A protocol path, or a bare name found in the repository's ``protocols/``."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (PROTOCOL_DIR / name, PROTOCOL_DIR / f"{name}.toml"):
        if candidate.is_file():
            return candidate
    raise FoveaError(
        f"protocol {name!r} not found (give a TOML path or one of: {_protocol_names()})"
    )


def _protocol_names() -> str:
    return ", ".join(sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))) or "none"


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
        resume=args.resume,
        simulated_clock=False,
        fullscreen=False if args.windowed else None,
        screenshots_dir=Path(args.screenshots) if args.screenshots else None,
        stimulus_set=Path(args.stimulus_set) if args.stimulus_set else None,
        scenes=args.scenes,
    )
    result = run_session(config)
    print(f"{result.paths.beh_tsv}: {result.n_rows} trials, status: {result.status}")
    return 0 if result.status in ("completed", "already complete") else 1


def simulate(
    *,
    protocol: Path,
    participants: int,
    data_dir: Path,
    observer: str = "parametric",
    seed: int = 1,
    session: str = "1",
    resume: bool = False,
    screenshots: Path | None = None,
    quiet: bool = False,
    stimulus_set: Path | None = None,
    scenes: str | None = None,
    full_window: bool = False,
) -> list:
    """Run ``participants`` simulated sessions; returns their ``SessionResult`` list.

    One generator is loaded and one virtual display started for all of them. ``scenes``:
    ``--scenes``; ``full_window``: windows of the display's full resolution (the demo's
    screenshots).
    """
    import numpy as np

    from protocol import load_protocol
    from protocol.geometry import stimulus_geometry
    from protocol.scenes import scenes_spec
    from study.service.start import start_service
    from study.session import SessionConfig, run_session
    from study.xvfb import virtual_display

    if participants < 1:
        raise FoveaError(f"--participants must be >= 1, got {participants}")
    loaded = load_protocol(protocol)
    p = loaded.protocol
    geometry = stimulus_geometry(p)
    spec = scenes_spec(loaded, override=scenes)
    service = None
    results = []
    try:
        with virtual_display(width_px=p.display.width_px, height_px=p.display.height_px):
            for i in range(1, participants + 1):
                label = f"sim{i:02d}"
                participant_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
                config = SessionConfig(
                    loaded=loaded,
                    data_dir=data_dir,
                    participant=label,
                    session=session,
                    tracker="sim",
                    observer=observer,
                    seed=participant_seed,
                    resume=resume,
                    new_if_missing=True,
                    simulated_clock=True,
                    screenshots_dir=(screenshots if i == 1 else None),
                    quiet=quiet,
                    stimulus_set=stimulus_set,
                    scenes=spec,
                    full_window=full_window,
                )
                from study.datalog import SessionPaths

                paths = SessionPaths(
                    data_dir=data_dir, participant=label, session=session, task=p.task
                )
                if paths.exists() and not resume:
                    raise FoveaError(
                        f"session {paths.session_dir} already exists; continue with --resume or use "
                        "another --data folder or --session (existing data are never overwritten)"
                    )
                if service is None and not _complete(paths):
                    service = start_service(
                        p, geometry=geometry, scenes=spec, stimulus_set=stimulus_set is not None
                    )
                print(f"{label}: seed {participant_seed}")
                result = run_session(config, service=service)
                print(
                    f"{label}: {result.status}, {result.n_rows} trials, {result.wall_s:.1f} s -> "
                    f"{result.paths.beh_tsv}"
                )
                results.append(result)
    finally:
        if service is not None:
            service.close()
    return results


def _complete(paths) -> bool:
    import json

    if not paths.beh_json.exists():
        return False
    try:
        return bool(json.loads(paths.beh_json.read_text(encoding="utf-8")).get("completed"))
    except (OSError, ValueError):
        return False


def _simulate(args: argparse.Namespace) -> int:
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
    )
    print(
        f"{len(results)} simulated session(s) in {time.perf_counter() - t0:.1f} s; data in {args.data}"
    )
    return 0 if all(r.completed for r in results) else 1


def demo_protocol_text(
    *,
    source: Path,
    image_px: int,
    trials: int,
    model: str = "default",
    steps: int | None = None,
    seeds: int | None = None,
) -> str:
    """The pilot protocol with the demo's image size, trials, seeds and model (``fovea demo``)."""
    text = source.read_text(encoding="utf-8")
    model_line = f"model = {json.dumps(model)}"
    if steps is not None:
        model_line += f"\nnum_steps = {int(steps)}"
    replacements = {
        r"(?m)^model = .*$": model_line,
        r"(?m)^name = .*$": 'name = "demo_pilot"',
        r"(?m)^image_width_px = .*$": f"image_width_px = {image_px}",
        r"(?m)^image_height_px = .*$": f"image_height_px = {image_px}",
        r"(?m)^trials_per_condition = .*$": f"trials_per_condition = {trials}",
    }
    if seeds is not None:
        replacements[r"(?m)^seed_count = .*$"] = f"seed_count = {int(seeds)}"
    for pattern, value in replacements.items():
        # count=1: the first ``name =`` is the protocol's (conditions follow it).
        text, n = re.subn(pattern, value, text, count=1)
        if n != 1:
            raise FoveaError(f"{source}: cannot derive the demo protocol (pattern {pattern!r})")
    return "# Derived from pilot_2afc.toml by `fovea demo`.\n" + text


def _check_fixations_inside(protocol_text: str) -> None:
    """The demo shows every fixation point on the image: refuse an image too small for them."""
    import tomllib

    from protocol import validate_protocol
    from protocol.geometry import stimulus_geometry

    p = validate_protocol(tomllib.loads(protocol_text), source="fovea demo")
    geometry = stimulus_geometry(p)
    for condition in p.conditions:
        x, y = (float(v) for v in geometry.deg_to_image_px(*condition.fixation_deg))
        if not (0 <= x < geometry.image_width_px and 0 <= y < geometry.image_height_px):
            raise FoveaError(
                f"--image-px {p.stimulus.image_width_px}: condition {condition.name}'s fixation "
                f"({condition.fixation_deg[0]:g}, {condition.fixation_deg[1]:g}) deg lies outside "
                "the image; use a larger image (768 px: 17 deg)"
            )


def _demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FoveaError(
            f"{out} exists and is not empty; choose another --out (nothing is overwritten)"
        )
    for name in ("participants", "trials", "seeds"):
        if getattr(args, name) < 1:
            raise FoveaError(f"--{name} must be >= 1, got {getattr(args, name)}")
    text = demo_protocol_text(
        source=PROTOCOL_DIR / "pilot_2afc.toml",
        image_px=args.image_px,
        trials=args.trials,
        model=args.model,
        steps=args.steps,
        seeds=args.seeds,
    )
    _check_fixations_inside(text)
    out.mkdir(parents=True, exist_ok=True)
    protocol_path = out / "demo_pilot.toml"
    protocol_path.write_text(text, encoding="utf-8")
    from stimuli.build import build_stimulus_set

    stimulus_set = out / "stimulus_set"
    print(f"building the {args.seeds} seeds' full-resolution twins (fovea stimuli build) ...")
    build_stimulus_set(
        protocol_path=protocol_path,
        out=stimulus_set,
        only="references",
        progress=False,
        scenes=args.scenes,
    )
    data_dir = out / "data"
    simulate(
        protocol=protocol_path,
        participants=args.participants,
        data_dir=data_dir,
        observer=args.observer,
        seed=args.seed,
        screenshots=out / "screenshots",
        quiet=True,
        stimulus_set=stimulus_set,
        scenes=args.scenes,
        full_window=True,
    )
    images = _generator_example(args, protocol_path=protocol_path, stimulus_set=stimulus_set)
    report_dir = out / "report"
    report_args = ["--bootstrap", "200"]  # a demo: fewer bootstrap replicates, a quicker report
    if args.trials < 20:
        # The report's default QC wants 20 trials per condition; a shorter demo says so.
        rules = out / "qc_rules.toml"
        rules.write_text(f"min_trials_per_condition = {args.trials}\n", encoding="utf-8")
        report_args += ["--qc-rules", str(rules)]
    report_ok, report = _run_report(data_dir=data_dir, out_dir=report_dir, extra_args=report_args)
    print(f"\nfovea demo finished in {time.perf_counter() - t0:.0f} s")
    print(f"  protocol:    {protocol_path}")
    print(f"  twins:       {stimulus_set}  (stimulus set built before the sessions)")
    print(f"  data:        {data_dir}  (beh.tsv, physio.tsv.gz, timing.json per session)")
    print(f"  screenshots: {out / 'screenshots'}  (each screen of a trial, full display size)")
    print(f"  images:      {images['foveated'].parent}  (scene, foveated, full, layout)")
    print(f"  report:      {report}")
    return 0 if report_ok else 1


def _generator_example(args, *, protocol_path: Path, stimulus_set: Path) -> dict:
    """The generator demo at the pilot's off-centre fixation, its twin taken from the set."""
    from generator.demo import run_generator_demo
    from protocol import load_protocol
    from protocol.scenes import scenes_spec
    from stimuli.manifest import check_stimulus_set

    loaded = load_protocol(protocol_path)
    p = loaded.protocol
    seed = p.stimulus.seed_pool()[0]
    spec = scenes_spec(loaded, override=args.scenes)
    sset = check_stimulus_set(stimulus_set, protocol=loaded, scenes=spec, verify_files=False)
    entry = sset.reference_entry(seed=seed, conditioning=p.stimulus.conditionings()[0])
    gaze_deg = max((c.fixation_deg for c in p.conditions), key=lambda f: abs(f[0]) + abs(f[1]))
    print(f"\nan example stimulus pair and its token layout (seed {seed}):")
    return run_generator_demo(
        out_dir=Path(args.out) / "generator",
        model=p.stimulus.model,
        size_px=p.stimulus.image_width_px,
        seed=seed,
        steps=p.stimulus.num_steps,
        gaze_deg=tuple(gaze_deg),
        scenes=spec,
        twin=None if entry is None else sset.read(entry),
        twin_record=None if entry is None else {"stimulus_set": str(stimulus_set), **entry},
    )


def _run_report(*, data_dir: Path, out_dir: Path, extra_args: list[str]) -> tuple[bool, str]:
    """The analysis report, through its Python API or its script.

    Returns:
        (ok, where the report is or why there is none). The simulated data are kept either way.
    """
    try:
        from analysis import report as report_module
    except ImportError:
        report_module = None
    script = REPO_ROOT / "analysis" / "report.py"
    if report_module is not None and hasattr(report_module, "main"):
        try:
            status = report_module.main([str(data_dir), "--out", str(out_dir), *extra_args])
        except FoveaError as error:
            return False, f"analysis report failed: {error}"
        except Exception as error:  # noqa: BLE001 - the demo's data stay usable; say what broke
            return False, f"analysis report failed: {type(error).__name__}: {error}"
        if status not in (0, None):
            return False, f"analysis report failed (status {status})"
    elif script.is_file():
        done = subprocess.run(
            [sys.executable, str(script), str(data_dir), "--out", str(out_dir), *extra_args],
            check=False,
        )
        if done.returncode != 0:
            return False, f"analysis report failed (exit {done.returncode})"
    else:
        return True, "not made: the analysis package (analysis/report.py) is not installed yet"
    html = sorted(out_dir.glob("*.html"))
    return True, str(html[0] if html else out_dir)


def _bench_session(args: argparse.Namespace) -> int:
    import json
    import os
    import platform
    import tempfile

    protocol = resolve_protocol(args.protocol)
    display = os.environ.get("DISPLAY") or "Xvfb started by fovea"
    records = []
    with tempfile.TemporaryDirectory(prefix="fovea-bench-session-") as tmp:
        t0 = time.perf_counter()
        results = simulate(
            protocol=protocol,
            participants=args.participants,
            data_dir=Path(tmp),
            observer=args.observer,
            seed=args.seed,
            quiet=True,
        )
        total_s = time.perf_counter() - t0
        for result in results:
            timing = json.loads(result.paths.timing_json.read_text(encoding="utf-8"))
            run = timing["runs"][-1]
            records.append(
                {
                    "protocol": protocol.stem,
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
                    "twin_latency_s_median": timing["twin_latency_s"].get("median"),
                    "deadline_misses": timing["deadline_misses"],
                    "fixation_breaks": timing["fixation_breaks"],
                    "display": display,
                    "cpu_count": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0],
                    "machine": platform.machine(),
                }
            )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    for record in records:
        print(
            f"{record['participant']}: {record['trials']} trials in {record['session_wall_s']:.1f} s, "
            f"frame interval median {record['frame_interval_ms_median']:.1f} ms, "
            f"generation median {record['gen_latency_s_median']:.2f} s"
        )
    print(f"wrote {args.json}")
    return 0
