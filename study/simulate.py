"""``fovea simulate``: simulated participants (sim01, sim02, ...) sharing one generator and one
virtual display, each session run by ``study.session.run_session``."""

from __future__ import annotations

import json
from pathlib import Path

from generator.errors import FoveaError


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
    tracker: str = "sim",
) -> list:
    """Run ``participants`` simulated sessions; returns their ``SessionResult`` list.

    One generator is loaded and one virtual display started for all of them. ``scenes``:
    ``--scenes``; ``full_window``: windows of the display's full resolution (the demo's
    screenshots); ``tracker``: ``sim`` or ``eyelink-emulated`` (the EyeLink code path against
    the pylink emulator; faults from ``$FOVEA_EYELINK_FAULTS``). A session whose tracker link is
    lost stops (its result is not completed) and the next participant runs; ``resume``
    continues it.
    """
    import numpy as np

    from protocol import load_protocol
    from protocol.geometry import stimulus_geometry
    from protocol.scenes import scenes_spec
    from study.service.start import start_service
    from study.session import SessionConfig
    from study.session_summary import session_summary
    from study.xvfb import virtual_display

    if participants < 1:
        raise FoveaError(f"--participants must be >= 1, got {participants}")
    loaded = load_protocol(protocol)
    if tracker == "eyelink-emulated":
        from study.trackers.emulated_host import FaultScript

        FaultScript.from_environment()  # a mistake in it stops here, before any session starts
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
                    tracker=tracker,
                    observer=observer,
                    seed=participant_seed,
                    seed_source=f"--seed {seed} (participant seed {participant_seed})",
                    resume=resume,
                    new_if_missing=True,
                    simulated_clock=True,
                    screenshots_dir=(screenshots if i == 1 else None),
                    quiet=quiet,
                    stimulus_set=stimulus_set,
                    scenes=spec,
                    full_window=full_window,
                )
                paths = _session_paths(data_dir, label, session, p.task, resume=resume)
                if service is None and not _complete(paths):
                    service = start_service(
                        p, geometry=geometry, scenes=spec, stimulus_set=stimulus_set is not None
                    )
                print(f"{label}: seed {participant_seed}")
                result = _run_one(config, service=service, paths=paths)
                print(
                    f"{label}: {result.status}, {result.n_rows} trials, {result.wall_s:.1f} s -> "
                    f"{result.paths.beh_tsv}"
                )
                if not quiet:  # what fovea run prints when a session ends
                    for line in session_summary(
                        result.paths.beh_tsv, result.paths.beh_json, result.paths.eyetrack_dir
                    ):
                        print(f"{label}: {line}")
                results.append(result)
    finally:
        if service is not None:
            service.close()
    return results


def _session_paths(data_dir: Path, label: str, session: str, task: str, *, resume: bool):
    """The participant's session files; an existing session with a logged trial needs
    ``resume`` (never overwritten); one without is continued, as ``fovea run`` does."""
    from study.datalog import SessionPaths
    from study.session import has_logged_trials

    paths = SessionPaths(data_dir=data_dir, participant=label, session=session, task=task)
    if paths.exists() and not resume and has_logged_trials(paths):
        raise FoveaError(
            f"session {paths.session_dir} already exists; continue with --resume or use "
            "another --data folder or --session (existing data are never overwritten)"
        )
    return paths


def _run_one(config, *, service, paths):
    """``run_session``; a lost tracker link ends the session (result not completed)."""
    import time

    from protocol.session_data import read_rows
    from study.session import SessionResult, run_session
    from study.trackers import TrackerLinkLost

    t0 = time.perf_counter()
    try:
        return run_session(config, service=service)
    except TrackerLinkLost as lost:
        print(f"{config.participant}: {lost}")
        n_rows = len(read_rows(paths.beh_tsv)) if paths.beh_tsv.exists() else 0
        return SessionResult(
            paths=paths,
            completed=False,
            n_rows=n_rows,
            n_responses=0,
            wall_s=time.perf_counter() - t0,
            status="stopped: the eye tracker link was lost; continue with --resume",
        )


def _complete(paths) -> bool:
    if not paths.beh_json.exists():
        return False
    try:
        return bool(json.loads(paths.beh_json.read_text(encoding="utf-8")).get("completed"))
    except (OSError, ValueError):
        return False
