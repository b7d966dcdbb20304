"""``fovea demo``: a short simulated pilot end to end, from a stimulus set to the analysis report.

The one command that spans every package (stimuli, study, generator, analysis), so it lives here,
above all of them.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from generator.arg_types import seed_int
from generator.errors import FoveaError
from protocol.load import PROTOCOL_DIR
from protocol.session_data import REPORT_MIN_TRIALS_PER_FIT
from study.commands import add_observer_option
from study.simulate import simulate


def register(
    subparsers: argparse._SubParsersAction, bench_subparsers: argparse._SubParsersAction
) -> None:
    """Add ``demo``."""
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
    demo.add_argument(
        "--participants", type=int, default=2, help="simulated participants (default: 2)"
    )
    add_observer_option(demo)
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
    demo.add_argument("--seed", type=seed_int, default=1, help="simulation seed (default: 1)")
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
    demo.set_defaults(
        handler=_demo,
        on_interrupt="the same command continues the demo",
    )


#: The demo's session structure: the example pair after the instructions and one short practice
#: block at the easiest level (a break after half of the main trials is set above).
DEMO_PRACTICE = """
[practice]                # fovea demo: the example pair, then 4 easy practice trials
trials = 4
max_blocks = 1
example = true
"""


def demo_protocol_text(
    *,
    source: Path,
    image_px: int,
    trials: int,
    model: str = "default",
    steps: int | None = None,
    seeds: int | None = None,
) -> str:
    """The pilot protocol with the demo's image size, trials, seeds and model (``fovea demo``),
    counterbalanced by Latin square, with the example pair, a short practice block and a
    break after half of the main trials."""
    text = source.read_text(encoding="utf-8")
    model_line = f"model = {json.dumps(model)}"
    if steps is not None:
        model_line += f"\nnum_steps = {int(steps)}"
    replacements = {
        r"(?m)^model = .*$": model_line,
        r"(?m)^name = .*$": 'name = "demo_pilot"',
        r"(?m)^image_width_px = .*$": f"image_width_px = {image_px}",
        r"(?m)^image_height_px = .*$": f"image_height_px = {image_px}",
        r"(?m)^trials_per_condition = .*$": f"trials_per_condition = {trials}\n"
        'counterbalance = "latin_square"',
        # a break after half of the main trials (the pilot has two conditions)
        r"(?m)^every_n_trials = .*$": f"every_n_trials = {trials}\nmin_duration_s = 10.0",
    }
    if seeds is not None:
        replacements[r"(?m)^seed_count = .*$"] = f"seed_count = {int(seeds)}"
    for pattern, value in replacements.items():
        # count=1: the first ``name =`` is the protocol's (conditions follow it).
        text, n = re.subn(pattern, value, text, count=1)
        if n != 1:
            raise FoveaError(f"{source}: cannot derive the demo protocol (pattern {pattern!r})")
    return "# Derived from pilot_2afc.toml by `fovea demo`.\n" + text + DEMO_PRACTICE


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
    resume = _continues(out, text)
    if args.trials < REPORT_MIN_TRIALS_PER_FIT:  # said before the minutes of work, not after
        print(
            f"note: --trials {args.trials} is fewer than the {REPORT_MIN_TRIALS_PER_FIT} "
            "responses per condition the report fits: it will show the data without thresholds"
        )
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
        resume=resume,
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
    print(
        f"  screenshots: {out / 'screenshots'}  (each screen of a trial, the example pair, "
        "practice, break and goodbye screens; full display size)"
    )
    print(f"  images:      {images['foveated'].parent}  (scene, foveated, full, layout)")
    print(f"  report:      {report}")
    return 0 if report_ok else 1


def _continues(out: Path, protocol_text: str) -> bool:
    """Whether ``out`` holds a demo stopped with the same options (the same command continues
    it: its twins are reused, finished sessions skipped, a stopped one resumed); an empty or
    missing folder starts a new demo; anything else is refused (nothing is overwritten)."""
    if not out.exists() or not any(out.iterdir()):
        return False
    earlier = out / "demo_pilot.toml"
    earlier_text = earlier.read_text(encoding="utf-8") if earlier.is_file() else None
    if earlier_text == protocol_text:
        print(f"continuing the demo in {out} (what it finished is kept)")
        return True
    differs = "" if earlier_text is None else _first_difference(earlier_text, protocol_text)
    raise FoveaError(
        f"{out} exists and is not a demo with these options{differs}; choose another --out, or "
        "give the options it was started with to continue it (nothing is overwritten)"
    )


def _first_difference(earlier: str, now: str) -> str:
    """`` (its protocol has X, these options give Y)`` for the first setting line that differs
    between an earlier demo's protocol and this one's."""
    old = [line for line in earlier.splitlines() if "=" in line and not line.startswith("#")]
    new = [line for line in now.splitlines() if "=" in line and not line.startswith("#")]
    for a, b in zip(old, new, strict=False):
        if a != b:
            return f" (its protocol has `{a.strip()}`, these options give `{b.strip()}`)"
    return ""


def _generator_example(args, *, protocol_path: Path, stimulus_set: Path) -> dict:
    """The generator demo at the pilot's off-centre fixation, its twin taken from the set."""
    from generator.demo import run_generator_demo
    from protocol import load_protocol
    from protocol.scenes import scenes_spec
    from stimuli.check import check_stimulus_set

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
    """The analysis report (``fovea report``) of the demo's data.

    Returns:
        (ok, where the report is or why there is none). The simulated data are kept either way.
    """
    from analysis.report import main as report_main

    try:
        status = report_main([str(data_dir), "--out", str(out_dir), *extra_args])
    except FoveaError as error:
        return False, f"analysis report failed: {error}"
    except Exception as error:  # noqa: BLE001 - the demo's data stay usable; say what broke
        return False, f"analysis report failed: {type(error).__name__}: {error}"
    if status not in (0, None):
        return False, f"analysis report failed (status {status})"
    html = sorted(out_dir.glob("*.html"))
    return True, str(html[0] if html else out_dir)
