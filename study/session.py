"""The session runner: one participant, one session, from the protocol to durable data.

Order of work: validate the protocol -> find or create the session folder (an existing session is
only ever resumed, never overwritten) -> rebuild the procedure's state from the logged trials ->
load and warm up the generator -> open the window and the tracker, calibrate -> trials, each
appended to ``beh.tsv`` and fsynced before the next one -> sidecars, timing report, EDF.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from generator.errors import FoveaError
from protocol import LoadedProtocol
from protocol.geometry import display_record, stimulus_geometry
from protocol.levels import condition_summary
from protocol.scenes import POOL
from protocol.session_data import beh_sidecar, read_rows
from study.datalog import (
    BehaviourLog,
    PhysioLog,
    SessionPaths,
    physio_sidecar,
    write_json_atomic,
)
from study.procedures import LoggedTrial, Scheduler, replay
from study.timing import TimingCollector

ObserverKind = Literal["human", "parametric", "perceptual"]
TrackerKindArg = Literal["eyelink", "dummy", "sim"]


@dataclass
class SessionConfig:
    """How to run a session.

    Attributes:
        loaded: the validated protocol.
        data_dir: data root (BIDS layout below it).
        participant, session: labels (letters and digits).
        tracker: gaze source.
        observer: ``human`` (keyboard) or a simulated observer.
        seed: session seed; None: derived from the labels (recorded in the sidecar).
        resume: continue an existing session.
        new_if_missing: with ``resume``, start the session when none exists (simulations).
        simulated_clock: run on a simulated clock (no real waiting; simulated sessions).
        fullscreen: None: the protocol's choice (always windowed with a simulated clock).
        screenshots_dir: save the first frame of each screen type as PNG there.
        quiet: no progress lines.
        stimulus_set: a pre-generated set (``fovea stimuli build``) checked at start; twins come
            from it, and its images stand in for late ones with ``on_deadline_miss = "cached"``.
        scenes: ``--scenes``: ``pool`` or a folder of photographs instead of the protocol's
            ``[stimulus] scenes`` (``protocol.scenes``).
        full_window: simulated sessions: a window of the display's full resolution (screenshots
            show what a participant sees) instead of one just large enough for the stimulus.
    """

    loaded: LoadedProtocol
    data_dir: Path
    participant: str
    session: str = "1"
    tracker: TrackerKindArg = "eyelink"
    observer: ObserverKind = "human"
    seed: int | None = None
    resume: bool = False
    new_if_missing: bool = False
    simulated_clock: bool = False
    fullscreen: bool | None = None
    screenshots_dir: Path | None = None
    quiet: bool = False
    stimulus_set: Path | None = None
    scenes: str | None = None
    full_window: bool = False


@dataclass
class SessionResult:
    """What a finished (or stopped) session left on disk."""

    paths: SessionPaths
    completed: bool
    n_rows: int
    n_responses: int
    wall_s: float
    status: str
    estimates: dict = field(default_factory=dict)


def default_seed(participant: str, session: str) -> int:
    """A reproducible seed from the labels (different participants get different orders)."""
    return zlib.crc32(f"{participant}/{session}".encode())


def _derive(seed: int, purpose: str) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]).generate_state(1)[0])


def logged_trials(rows: list[dict[str, str]]) -> list[LoggedTrial]:
    """``beh.tsv`` rows as the scheduler's replay input."""
    out = []
    for row in rows:
        responded = row["correct"] not in ("n/a", "")
        out.append(
            LoggedTrial(
                trial=int(row["trial"]),
                track=row["track"],
                condition=row["condition"],
                level=float(row["level"]),
                seed=int(row["seed"]),
                interval_foveated=int(row["interval_foveated"]),
                outcome="response" if responded else "requeue",
                correct=(row["correct"] == "1") if responded else None,
            )
        )
    return out


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _software_version() -> str:
    try:
        from importlib.metadata import version

        return version("fovea-kit")
    except Exception:  # noqa: BLE001
        return "unknown"


def run_session(config: SessionConfig, *, service=None, log=print) -> SessionResult:
    """Run (or resume) one session. See the module docstring.

    Nothing is written before the checks pass: the stimulus set, the generator (loaded and
    warmed up) and the scene source (``protocol.scenes.check_scenes``).

    Args:
        config: what to run.
        service: an already started ``GenerationService`` to share (simulating several
            participants; its ``info`` is the start record); None starts one for this session
            and closes it at the end.
        log: progress printer.

    Raises:
        FoveaError: existing session without ``resume``, nothing to resume, changed protocol,
            seed or scenes, a bad scene folder, or a protocol that does not fit the generator.
    """
    import time

    from protocol.scenes import scenes_spec

    t_wall = time.perf_counter()
    protocol = config.loaded.protocol
    paths = SessionPaths(
        data_dir=Path(config.data_dir),
        participant=config.participant,
        session=config.session,
        task=protocol.task,
    )
    say = (lambda *a: None) if config.quiet else log
    resume = config.resume and paths.exists()
    if paths.exists() and not config.resume:
        raise FoveaError(
            f"session {paths.session_dir} already exists; continue it with --resume or choose "
            "another --session (existing data are never overwritten)"
        )
    if config.resume and not paths.exists() and not config.new_if_missing:
        raise FoveaError(f"nothing to resume: {paths.beh_tsv} does not exist")
    scenes = scenes_spec(config.loaded, override=config.scenes)
    stimulus_set = None
    if config.stimulus_set is not None:  # checked before anything is written
        from stimuli import check_stimulus_set

        say(f"checking stimulus set {config.stimulus_set} ...")
        stimulus_set = check_stimulus_set(
            config.stimulus_set, protocol=config.loaded, scenes=scenes
        )

    seed = (
        config.seed if config.seed is not None else default_seed(config.participant, config.session)
    )
    sidecar: dict | None = None
    if resume:
        sidecar = _resumable_sidecar(config, paths, scenes=scenes)
        seed = int(sidecar["seed"])
        if sidecar.get("completed"):
            say(f"{paths.session_dir}: already complete")
            n_rows = len(read_rows(paths.beh_tsv))
            return SessionResult(
                paths, True, n_rows, 0, time.perf_counter() - t_wall, "already complete"
            )
    scheduler = Scheduler(protocol=protocol, seed=_derive(seed, "scheduler"))
    behlog = None
    if resume:
        behlog = BehaviourLog.reopen(paths.beh_tsv)
        replay(scheduler, logged_trials(behlog.rows), source=str(paths.beh_tsv))
        log(
            f"resuming {paths.session_dir} after trial {len(behlog.rows)} "
            f"({scheduler.n_responses} responses)"
        )
        if scheduler.finished:
            # Killed after the last trial but before the sidecar said so.
            behlog.close()
            sidecar["completed"] = True
            sidecar["procedure_estimates"] = scheduler.summary()
            write_json_atomic(paths.beh_json, sidecar)
            return SessionResult(
                paths,
                True,
                len(behlog.rows),
                scheduler.n_responses,
                time.perf_counter() - t_wall,
                "completed",
            )

    geometry = stimulus_geometry(protocol)
    own_service = service is None
    try:
        if own_service:
            from study.service.start import start_service

            service = start_service(
                protocol,
                geometry=geometry,
                scenes=scenes,
                stimulus_set=stimulus_set is not None,
                log=say,
            )
        info = getattr(service, "info", {})
        from protocol.scenes import check_scenes

        checked = check_scenes(
            spec=scenes, protocol=protocol, scene_factor=info.get("scene_factor")
        )
        scene_record = None if checked is None else checked.record()
        set_record = None if stimulus_set is None else _stimulus_set_record(stimulus_set, info)
        if sidecar is None:
            sidecar = _new_sidecar(config, seed=seed, scenes=scene_record)
            # The sidecar first: a session is resumable as soon as anything of it exists.
            _ensure_dataset_files(Path(config.data_dir))
            paths.beh_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(paths.beh_json, sidecar)
            behlog = BehaviourLog.create(paths.beh_tsv)
        runner = _SessionRun(
            config=config,
            paths=paths,
            scheduler=scheduler,
            behlog=behlog,
            sidecar=sidecar,
            seed=seed,
            say=say,
            stimulus_set=stimulus_set,
        )
        status = runner.run(service=service, info=info, geometry=geometry, set_record=set_record)
    finally:
        if behlog is not None:  # closed by the window's cleanup unless a check refused to start
            behlog.close()
        if own_service and service is not None:
            service.close()
    return SessionResult(
        paths=paths,
        completed=sidecar["completed"],
        n_rows=len(behlog.rows),
        n_responses=scheduler.n_responses,
        wall_s=time.perf_counter() - t_wall,
        status=status,
        estimates=scheduler.summary(),
    )


def _stimulus_set_record(stimulus_set, info: dict) -> dict:
    """The stimulus set's record for the sidecar; refuses a set made with other weights."""
    made_with = stimulus_set.manifest["model"].get("weights_sha256")
    running = info.get("weights_sha256")
    if running is not None and made_with is not None and running != made_with:
        raise FoveaError(
            f"stimulus set {stimulus_set.directory} was generated with other weights "
            f"(sha256 {made_with[:12]}...) than the session's generator ({running[:12]}...); "
            "rebuild it with `fovea stimuli build`"
        )
    return {
        "directory": str(stimulus_set.directory),
        "entries": len(stimulus_set.entries),
        "weights_sha256": made_with,
        "weights_checked": running is not None,
        "reference": stimulus_set.manifest.get("reference", "generated"),
    }


def _resumable_sidecar(config: SessionConfig, paths: SessionPaths, *, scenes: str) -> dict:
    """The sidecar of the session to resume; refuses a changed protocol, seed, setup or scenes."""
    if not paths.beh_json.exists():
        raise FoveaError(f"{paths.beh_json} is missing; cannot resume {paths.session_dir}")
    sidecar = json.loads(paths.beh_json.read_text(encoding="utf-8"))
    if sidecar.get("protocol_sha256") != config.loaded.sha256:
        raise FoveaError(
            f"{config.loaded.path} differs from the protocol this session started with "
            f"(sha256 {str(sidecar.get('protocol_sha256'))[:12]}...); resume with the same file "
            "or start a new session"
        )
    if config.seed is not None and config.seed != sidecar.get("seed"):
        raise FoveaError(
            f"--seed {config.seed} differs from the session's seed {sidecar.get('seed')}"
        )
    if config.observer != sidecar.get("observer") or config.tracker != sidecar.get("tracker"):
        raise FoveaError(
            f"session {paths.session_dir} ran with tracker {sidecar.get('tracker')} and observer "
            f"{sidecar.get('observer')}; resume it with the same"
        )
    started = (sidecar.get("scenes") or {}).get("spec", POOL)
    if started != scenes:
        raise FoveaError(
            f"session {paths.session_dir} started with scenes {started!r}, not {scenes!r}; "
            "resume it with the same --scenes"
        )
    return sidecar


def _new_sidecar(config: SessionConfig, *, seed: int, scenes: dict | None) -> dict:
    """The ``beh.json`` sidecar of a new session."""
    protocol = config.loaded.protocol
    sidecar = beh_sidecar(
        task=protocol.task,
        task_description=protocol.description,
        protocol_name=protocol.name,
        protocol_file=str(config.loaded.path),
        protocol_sha256=config.loaded.sha256,
        protocol=protocol.model_dump(mode="json"),
        conditions={c.name: condition_summary(c) for c in protocol.conditions},
        display=display_record(protocol.display),
        image_size_px=(protocol.stimulus.image_width_px, protocol.stimulus.image_height_px),
        patch_px=None,
        scenes=scenes,
        reference=protocol.stimulus.reference,
        observer=config.observer,
        tracker=config.tracker,
        seed=seed,
        started_utc=_utc_now(),
        software_version=_software_version(),
    )
    if config.observer == "parametric":
        from study.observers import ParametricObserver

        obs = ParametricObserver(settings=protocol.simulation)
        sidecar["true_thresholds"] = {c.name: obs.threshold(c.name) for c in protocol.conditions}
    return sidecar


def _ensure_dataset_files(data_dir: Path) -> None:
    """BIDS dataset files at the data root, written once: ``dataset_description.json`` and a
    ``.bidsignore`` for the timing reports (not a BIDS suffix)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    description = data_dir / "dataset_description.json"
    if not description.exists():
        write_json_atomic(
            description,
            {
                "Name": "fovea-kit 2AFC sessions",
                "BIDSVersion": "1.10.0",
                "DatasetType": "raw",
                "GeneratedBy": [{"Name": "fovea-kit", "Version": _software_version()}],
            },
        )
    ignore = data_dir / ".bidsignore"
    if not ignore.exists():
        ignore.write_text("*_timing.json\n", encoding="utf-8")


class _SessionRun:
    """The part of a session that needs the window (kept apart so cleanup is in one place)."""

    def __init__(
        self,
        *,
        config: SessionConfig,
        paths: SessionPaths,
        scheduler: Scheduler,
        behlog: BehaviourLog,
        sidecar: dict,
        seed: int,
        say,
        stimulus_set=None,
    ) -> None:
        self.stimulus_set = stimulus_set
        self.config = config
        self.paths = paths
        self.scheduler = scheduler
        self.behlog = behlog
        self.sidecar = sidecar
        self.seed = seed
        self.say = say
        self.protocol = config.loaded.protocol

    def run(self, *, service, info: dict, geometry, set_record: dict | None) -> str:
        """The window part of the session with a started ``service`` (``info``: its start
        record; ``set_record``: the checked stimulus set's); returns the status."""
        from study.xvfb import virtual_display

        p = self.protocol
        if info.get("token_px"):
            self.sidecar["patch_px"] = info["token_px"]
        run_record = {
            "started_utc": _utc_now(),
            "generator": info,
            "first_trial": len(self.behlog.rows) + 1,
        }
        if set_record is not None:
            run_record["stimulus_set"] = set_record
        self.sidecar.setdefault("runs", []).append(run_record)
        write_json_atomic(self.paths.beh_json, self.sidecar)
        with virtual_display(width_px=p.display.width_px, height_px=p.display.height_px):
            return self._with_window(geometry=geometry, service=service, run_record=run_record)

    def _with_window(self, *, geometry, service, run_record: dict) -> str:
        from psychopy import logging as pp_logging
        from psychopy import visual

        from study.presenter import Presenter, QuitRequested, RealClock, SimClock
        from study.trackers import make_tracker
        from study.trial import TrialRunner

        pp_logging.console.setLevel(pp_logging.ERROR)
        p, cfg = self.protocol, self.config
        simulated = cfg.simulated_clock
        fullscreen = (
            p.display.fullscreen if cfg.fullscreen is None else cfg.fullscreen
        ) and not simulated
        start_s = self._clock_start_s(simulated)
        clock = SimClock(start_s=start_s) if simulated else RealClock(start_s=start_s)
        self.paths.eyetrack_dir.mkdir(parents=True, exist_ok=True)
        n_done = len(self.behlog.rows)
        if self.paths.physio_tsv_gz.exists():
            physio = PhysioLog.reopen(self.paths.physio_tsv_gz, last_trial=n_done)
        else:
            physio = PhysioLog.create(self.paths.physio_tsv_gz)
        win = visual.Window(
            size=window_size_px(p)
            if simulated and not cfg.full_window
            else (p.display.width_px, p.display.height_px),
            fullscr=fullscreen,
            screen=p.display.screen,
            units="pix",
            color=_background_rgb(p),
            colorSpace="rgb",
            allowGUI=not fullscreen,
            waitBlanking=not simulated,
            checkTiming=False,
        )
        win.mouseVisible = cfg.tracker == "dummy"
        timing = TimingCollector(
            refresh_hz=p.display.refresh_hz,
            simulated=simulated,
            speed=p.simulation.speed if simulated else 1,
        )
        tracker = make_tracker(
            cfg.tracker,
            settings=p.tracker,
            seed=_derive(self.seed, "tracker"),
            clock=clock,
            display=p.display.geometry(),
        )
        presenter = Presenter(
            protocol=p,
            win=win,
            clock=clock,
            tracker=None,
            physio=physio,
            simulated=simulated,
            speed=p.simulation.speed,
            auto_advance=cfg.observer != "human",
        )
        if cfg.screenshots_dir is not None:
            cfg.screenshots_dir.mkdir(parents=True, exist_ok=True)
            presenter.screenshot_dir = cfg.screenshots_dir
        observer = None
        if cfg.observer != "human":
            from study.observers import make_observer

            observer = make_observer(cfg.observer, display=p.display, settings=p.simulation)
        status = "stopped"
        tracker_open = False
        try:
            edf_name = f"{p.tracker.edf_prefix}{zlib.crc32(str(self.paths.session_dir).encode()) % 10 ** (8 - len(p.tracker.edf_prefix)):0{8 - len(p.tracker.edf_prefix)}d}"
            tracker.open(win=win, session_dir=self.paths.eyetrack_dir, edf_name=edf_name)
            tracker_open = True
            run_record["edf_name"] = edf_name
            presenter.tracker = tracker
            runner = TrialRunner(
                protocol=p,
                presenter=presenter,
                tracker=tracker,
                service=service,
                geometry=geometry,
                observer=observer,
                session_seed=self.seed,
                participant=cfg.participant,
                session=cfg.session,
                stimulus_set=self.stimulus_set,
            )
            runner.on_calibration = self._record_calibration
            runner.upcoming = self.scheduler.upcoming_stimulus
            intro = p.instructions.welcome
            if n_done:
                intro = "Welcome back: the session continues where it stopped.\n\n" + intro
            presenter.text_screen(intro, phase="instructions")
            self._calibrate(tracker)
            tracker.start_recording()
            self._write_physio_sidecar(clock)
            status = self._trial_loop(
                runner=runner, presenter=presenter, tracker=tracker, timing=timing
            )
        except QuitRequested:
            status = "quit by the experimenter (Escape)"
            self.say(f"{self.paths.session_dir}: {status}; resume with --resume")
        finally:
            physio.close()
            if tracker_open:
                try:
                    tracker.stop_recording()
                    edf = tracker.close(dest_dir=self.paths.eyetrack_dir)
                    if edf is not None:
                        run_record["edf_file"] = str(Path(edf).name)
                except Exception as error:  # noqa: BLE001 - data are safe; report and go on
                    run_record["tracker_close_error"] = str(error)
            run_record["ended_utc"] = _utc_now()
            run_record["status"] = status
            run_record["frames"] = presenter.stats.frames
            self.behlog.close()
            timing.write(
                path=self.paths.timing_json,
                rows=self.behlog.rows,
                presenter=presenter,
                run_record=run_record,
            )
            if status == "completed":
                self.sidecar["completed"] = True
                self.sidecar["procedure_estimates"] = self.scheduler.summary()
            write_json_atomic(self.paths.beh_json, self.sidecar)
            self._write_physio_sidecar(clock)
            win.close()
        return status

    def _clock_start_s(self, simulated: bool) -> float:
        """Where a resumed session's clock starts: its time line continues (onset_s and gaze
        timestamps stay monotonic). Real clock: seconds since the session's start; simulated:
        10 s after the last logged onset."""
        rows = self.behlog.rows
        if not rows:
            return 0.0
        if simulated:
            onsets = [float(r["onset_s"]) for r in rows if r["onset_s"] not in ("n/a", "")]
            return (max(onsets) if onsets else 0.0) + 10.0
        started = _dt.datetime.strptime(self.sidecar["started_utc"], "%Y-%m-%dT%H:%M:%SZ")
        return (_dt.datetime.now(_dt.UTC).replace(tzinfo=None) - started).total_seconds()

    def _calibrate(self, tracker) -> None:
        result = tracker.calibrate()
        if result is not None:
            self._record_calibration(result)

    def _record_calibration(self, result) -> None:
        self.sidecar.setdefault("calibration", []).append(
            {
                "time_s": result.time_s,
                "avg_error_deg": result.avg_error_deg,
                "max_error_deg": result.max_error_deg,
            }
        )
        write_json_atomic(self.paths.beh_json, self.sidecar)

    def _write_physio_sidecar(self, clock) -> None:
        p = self.protocol
        data = physio_sidecar(
            display=self.sidecar["display"],
            refresh_hz=p.display.refresh_hz,
            tracker=self.config.tracker,
            eye=p.tracker.eye,
            start_time_s=0.0,
            calibration_type=p.tracker.calibration_type,
            calibrations=self.sidecar.get("calibration", []),
        )
        write_json_atomic(self.paths.physio_json, data)

    def _trial_loop(self, *, runner, presenter, tracker, timing) -> str:
        p = self.protocol
        sch = self.scheduler
        total = sch.total_planned_responses
        last_break_at = sch.n_responses
        trials_this_run = 0
        while not sch.finished:
            every = p.breaks.every_n_trials
            if (
                every
                and sch.n_responses
                and sch.n_responses % every == 0
                and sch.n_responses != last_break_at
            ):
                last_break_at = sch.n_responses
                presenter.text_screen(
                    p.instructions.break_text.format(done=sch.n_responses, total=total),
                    phase="break",
                    min_duration_s=p.breaks.min_duration_s,
                )
            trials_this_run += 1
            n = p.tracker.calibrate_every_n_trials
            if n and trials_this_run > 1 and (trials_this_run - 1) % n == 0:
                self._calibrate(tracker)
            n = p.tracker.drift_correct_every_n_trials
            plan = sch.next_plan()
            if n and trials_this_run > 1 and (trials_this_run - 1) % n == 0:
                fx, fy = p.condition(plan.condition).fixation_deg
                tracker.drift_correct(x_deg=fx, y_deg=fy)
            trial = len(self.behlog.rows) + 1
            outcome = runner.run(plan=plan, trial=trial)
            # Gaze first, then the trial row: a kill in between leaves physio blocks of a trial
            # beh.tsv lacks, which a resume drops (the trial runs again).
            presenter.physio.flush_block()
            self.behlog.append(outcome.row)
            sch.record(
                plan, outcome="requeue" if outcome.requeue else "response", correct=outcome.correct
            )
            timing.add_trial(outcome)
            row = outcome.row
            self.say(
                f"  trial {trial:4d} {row['condition']:<16} level {row['level']:.3g} "
                + (
                    f"correct {row['correct']}"
                    if not outcome.requeue
                    else f"aborted ({row['abort_reason']})"
                )
                + (f"  gen {row['gen_latency_s']:.2f}s" if row["gen_latency_s"] is not None else "")
            )
            if trial % 20 == 0:
                timing.write(
                    path=self.paths.timing_json,
                    rows=self.behlog.rows,
                    presenter=presenter,
                    run_record=None,
                )
        presenter.text_screen(p.instructions.goodbye, phase="goodbye")
        return "completed"


def window_size_px(protocol) -> tuple[int, int]:
    """Simulated sessions: a window just large enough for the stimulus and every fixation mark.

    Positions are computed from the display geometry relative to the screen centre, so a smaller
    window only crops empty periphery; it flips several times faster on a virtual display.
    """
    display = protocol.display.geometry()
    half_w = protocol.stimulus.image_width_px / 2
    half_h = protocol.stimulus.image_height_px / 2
    mark = protocol.fixation.mark_size_deg * display.pixels_per_degree
    for condition in protocol.conditions:
        sx, sy = display.deg_to_screen_px(*condition.fixation_deg)
        half_w = max(half_w, abs(float(sx) - display.width_px / 2) + mark)
        half_h = max(half_h, abs(float(sy) - display.height_px / 2) + mark)
    width = min(display.width_px, max(640, 2 * math.ceil(half_w + 32)))
    height = min(display.height_px, max(480, 2 * math.ceil(half_h + 32)))
    return width, height


def _background_rgb(protocol) -> list[float]:
    g = 2.0 * protocol.display.background_gray - 1.0
    return [g, g, g]


def summarize_session(path: Path) -> dict:
    """Responses, completion and proportion correct of a session (for CLI output)."""
    rows = read_rows(path)
    responded = [r for r in rows if r["correct"] in ("0", "1")]
    pc = float(np.mean([r["correct"] == "1" for r in responded])) if responded else math.nan
    return {"rows": len(rows), "responses": len(responded), "proportion_correct": pc}
