"""The session runner: one participant, one session, from the protocol to durable data.

Order of work: validate the protocol -> find or create the session folder (an existing session is
only ever resumed, never overwritten) -> rebuild the procedure's state from the logged trials ->
load and warm up the generator -> open the window and the tracker, calibrate -> trials, each
appended to ``beh.tsv`` and fsynced before the next one -> sidecars, timing report, EDF. A
``--resume`` of a session with no trial left only fetches the EDFs its runs left on the Host PC
(``study.session_tracker.fetch_left_files``: no window, no new run).

The stages live in their own modules: ``study.session_setup`` (seeds, sidecars, resume checks)
and ``study.session_window`` (window, tracker, the trial loop, the run's records).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from generator.errors import FoveaError
from protocol import LoadedProtocol
from protocol.geometry import stimulus_geometry
from protocol.session_data import ObserverKind, read_rows, session_field
from study.datalog import BehaviourLog, SessionLock, SessionPaths, write_json_atomic
from study.datalog.atomic import remove_stale_temporaries
from study.procedures import SessionPlan, replay
from study.session_finish import close_incomplete_session, finish_logged_session
from study.session_refusals import exists_refusal, missing_refusal, other_task_refusal
from study.session_setup import (
    changed_settings,
    default_seed,
    derive_seed,
    ensure_dataset_files,
    logged_trials,
    new_sidecar,
    resumable_sidecar,
    session_protocol,
    stimulus_set_record,
)
from study.session_tracker import fetch_left_files
from study.session_window import SessionRun

TrackerKindArg = Literal["eyelink", "dummy", "sim", "eyelink-emulated"]


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
        seed_source: how the user gave ``seed``, for messages (``fovea simulate`` derives each
            participant's seed from its ``--seed``); None: ``--seed`` itself.
        resume: continue an existing session.
        new_if_missing: with ``resume``, start the session when none exists (simulations).
        close: with ``resume``, write a stopped session's end records instead of running it
            (``study.session_finish.close_incomplete_session``).
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
        allow_virtual_display: real-clock sessions: run on a virtual display (Xvfb, software
            OpenGL) instead of refusing it; its refresh rate is recorded, not enforced
            (``study.display_check``).
    """

    loaded: LoadedProtocol
    data_dir: Path
    participant: str
    session: str = "1"
    tracker: TrackerKindArg = "eyelink"
    observer: ObserverKind = "human"
    seed: int | None = None
    seed_source: str | None = None
    resume: bool = False
    close: bool = False
    new_if_missing: bool = False
    simulated_clock: bool = False
    fullscreen: bool | None = None
    screenshots_dir: Path | None = None
    quiet: bool = False
    stimulus_set: Path | None = None
    scenes: str | None = None
    full_window: bool = False
    allow_virtual_display: bool = False


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
        FoveaError: existing session with a logged trial without ``resume`` (one without is
            resumed: ``_session_paths``), nothing to resume, changed protocol,
            seed or scenes, a bad scene folder, a protocol that does not fit the generator, or
            the session already running in another process (``study.datalog.SessionLock``).
    """
    paths = _paths(config)
    # Held from before the existence check to the end: a second run of the same session waits
    # for nothing and appends nothing (it would log every trial after the resume point twice).
    # Taking the lock is the session's first write: a data folder on a read-only file system
    # (a copy on a write-protected share) fails there, and gets the same one line.
    missing = _missing_folders(paths.lock_file.parent, stop=paths.data_dir)
    try:
        with SessionLock(
            paths.lock_file,
            what=f"session {paths.session_dir}",
            then="run the same command again (with --resume to continue a session it left "
            "unfinished)",
        ):
            return _run_locked(config, service=service, log=log)
    except FoveaError:
        # A refusal before the session existed (a mistyped --participant with --resume) leaves
        # no sourcedata/sub-*/ses-* folders made only for its lock.
        if missing and not paths.session_dir.exists():
            paths.lock_file.unlink(missing_ok=True)
            for folder in missing:  # deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    except OSError as error:
        if not _cannot_write_data(error, paths.data_dir):
            raise
        where = error.filename if error.filename is not None else paths.session_dir
        if not paths.beh_tsv.exists():
            raise FoveaError(
                f"cannot write the session's data ({error.strerror}: {where}); nothing was "
                "written: free space or make the folder writable (or choose another --data), "
                "then start again"
            ) from error
        raise FoveaError(
            f"cannot write the session's data ({error.strerror}: {where}); every trial "
            f"logged in {paths.beh_tsv} is safe: free space or make the folder writable, "
            "then continue with --resume"
        ) from error


def _missing_folders(folder: Path, *, stop: Path) -> list[Path]:
    """``folder`` and its parents below ``stop`` that do not exist yet, deepest first."""
    missing = []
    while folder != stop and stop in folder.parents and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _cannot_write_data(error: OSError, data_dir: Path) -> bool:
    """A full disk or quota, a read-only file system, no permission in the data folder: the
    experimenter can fix these and resume, so they get one line saying so (other OSErrors keep
    their traceback)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    if error.errno in (errno.EACCES, errno.EPERM) and error.filename is not None:
        return Path(data_dir).resolve() in Path(os.fsdecode(error.filename)).resolve().parents
    return False


def _run_locked(config: SessionConfig, *, service, log) -> SessionResult:
    """``run_session`` with the session's lock held."""
    from protocol.scenes import scenes_spec

    t_wall = time.perf_counter()
    say = (lambda *a: None) if config.quiet else log
    paths, resume, implicit = _session_paths(config)
    scenes = scenes_spec(config.loaded, override=config.scenes)
    stimulus_set = None
    if config.stimulus_set is not None:  # checked before anything is written
        from stimuli import check_stimulus_set

        say(f"checking stimulus set {config.stimulus_set} ...")
        stimulus_set = check_stimulus_set(
            config.stimulus_set, protocol=config.loaded, scenes=scenes
        )
        from stimuli.check import missing_references_note

        note = missing_references_note(stimulus_set, config.loaded)
        if note:
            say(note)
    # A file in the way: one line, before the window opens (--close opens none: no folder).
    if config.screenshots_dir is not None and not config.close:
        config.screenshots_dir.mkdir(parents=True, exist_ok=True)
    seed = (
        config.seed if config.seed is not None else default_seed(config.participant, config.session)
    )
    sidecar: dict | None = None
    if resume:
        try:
            sidecar = resumable_sidecar(config, paths, scenes=scenes, say=say)
        except FoveaError as error:
            if not implicit:
                raise
            raise FoveaError(
                f"{error} (session {paths.session_dir} has no logged trial yet: it is continued "
                "without --resume when these match; or choose another --session)"
            ) from None
        if implicit:
            log(_no_trial_note(paths, sidecar))
        changed = changed_settings(sidecar, config.loaded) if config.close else []
        if changed:
            config = replace(config, loaded=session_protocol(sidecar, config.loaded))
            say(
                f"{config.loaded.path} has changed since the session started "
                f"({'; '.join(changed)}): "
                "closing it with the protocol it started with, as its beh.json records it"
            )
        seed = int(session_field(sidecar, "seed"))
        if sidecar.get("completed"):
            # No trial left, but a run's EDF may still be on the Host PC (a failed transfer).
            left = fetch_left_files(config=config, paths=paths, sidecar=sidecar, say=say)
            status = "already complete" + _files_left_note(left)  # the caller prints it
            n_rows = len(read_rows(paths.beh_tsv))
            return SessionResult(paths, True, n_rows, 0, time.perf_counter() - t_wall, status)
    scheduler = SessionPlan(
        protocol=config.loaded.protocol,
        seed=derive_seed(seed, "scheduler"),
        participant=config.participant,
    )
    behlog = None
    if resume:
        remove_stale_temporaries(paths.beh_dir)  # of a run killed mid-write (the lock is held)
        behlog = BehaviourLog.reopen(paths.beh_tsv)
        replay(scheduler, logged_trials(behlog.rows), source=str(paths.beh_tsv))
        if not implicit:  # the note above said it
            log(
                f"{'closing' if config.close else 'resuming'} {paths.session_dir} after trial "
                f"{len(behlog.rows)} ({scheduler.n_responses} of "
                f"{scheduler.total_planned_responses} responses)"
            )
        if scheduler.finished:  # killed after the last trial but before the end records
            behlog.close()
            finish_logged_session(
                paths=paths,
                protocol=config.loaded.protocol,
                rows=behlog.rows,
                sidecar=sidecar,
                summary=scheduler.summary(),
                simulated=config.simulated_clock,
            )
            left = fetch_left_files(config=config, paths=paths, sidecar=sidecar, say=say)
            n_rows, n_responses = len(behlog.rows), scheduler.n_responses
            wall_s = time.perf_counter() - t_wall
            status = "completed" + _files_left_note(left)
            return SessionResult(paths, True, n_rows, n_responses, wall_s, status)
        if config.close:  # the lab will not resume it: its end records, no window
            behlog.close()
            close_incomplete_session(
                paths=paths,
                protocol=config.loaded.protocol,
                rows=behlog.rows,
                sidecar=sidecar,
                simulated=session_field(sidecar, "observer") != "human",
            )
            n_rows, n_responses = len(behlog.rows), scheduler.n_responses
            wall_s = time.perf_counter() - t_wall
            status = (
                f"closed incomplete: {n_responses} of {scheduler.total_planned_responses} "
                "responses; --resume still continues it"
            )  # the caller prints it
            return SessionResult(paths, False, n_rows, n_responses, wall_s, status)
    if not resume:  # the folder the labels give, before the participant starts
        say(
            f"new session {paths.session_dir}: {scheduler.total_planned_responses} responses planned"
        )
    run = _PreparedSession(config, paths, scheduler, behlog, sidecar, seed, scenes, stimulus_set)
    status = run.run(service=service, say=say, warn=log)
    return SessionResult(
        paths=paths,
        completed=run.sidecar["completed"],
        n_rows=len(run.behlog.rows),
        n_responses=scheduler.n_responses,
        wall_s=time.perf_counter() - t_wall,
        status=status,
        estimates=scheduler.summary(),
    )


def _files_left_note(left: int) -> str:
    """The status's note on eye-tracking files a resume could not fetch from the Host PC."""
    if not left:
        return ""
    return f"; {left} eye-tracking file(s) still only on the Host PC (--resume fetches them)"


def _paths(config: SessionConfig) -> SessionPaths:
    return SessionPaths(
        data_dir=Path(config.data_dir),
        participant=config.participant,
        session=config.session,
        task=config.loaded.protocol.task,
    )


def _session_paths(config: SessionConfig) -> tuple[SessionPaths, bool, bool]:
    """The session's paths, whether it is resumed and whether that resume is implicit: a
    session that exists without a logged trial (each of its runs ended before the first one: no
    EyeLink link, a refused display) is continued by the same command without ``--resume``, with
    the resume's checks. Refuses to overwrite a session with trials or to resume nothing."""
    paths = _paths(config)
    if paths.exists() and not config.resume:
        if not has_logged_trials(paths):
            return paths, True, True
        raise FoveaError(exists_refusal(paths))
    if config.resume and not paths.exists() and not config.new_if_missing:
        raise FoveaError(missing_refusal(paths, close=config.close))
    if not paths.exists() and (refusal := other_task_refusal(paths)):
        raise FoveaError(refusal)
    return paths, config.resume and paths.exists(), False


def has_logged_trials(paths: SessionPaths) -> bool:
    """Whether the existing session at ``paths`` logged a trial, or may have: True unless its
    sidecar exists and its ``beh.tsv`` is missing, empty or a header without a complete row (a
    session stopped before its first trial). Reads only (a torn line is repaired by a resume)."""
    if not paths.beh_json.is_file():
        return True  # not a session fovea can continue: the usual refusal
    if not paths.beh_tsv.exists() or paths.beh_tsv.stat().st_size == 0:
        return False
    try:
        return bool(read_rows(paths.beh_tsv))
    except (FoveaError, OSError, UnicodeDecodeError):
        return True  # unreadable: never continued implicitly


def _no_trial_note(paths: SessionPaths, sidecar: dict) -> str:
    """The console note of an implicit resume (``_session_paths``)."""
    runs = sidecar.get("runs") or []
    statuses = [str(r.get("status") or "no end record") for r in runs]
    earlier = f"its {len(runs)} earlier start(s) ended before the first trial"
    if statuses:
        earlier += f" (last: {statuses[-1]})"
    return (
        f"session {paths.session_dir} exists but has no logged trial: {earlier}; continuing it "
        "(no --resume needed; the earlier starts stay recorded in its beh.json runs)"
    )


@dataclass
class _PreparedSession:
    """A session checked so far, before its generator starts and its files (new ones) exist.

    ``behlog`` and ``sidecar`` are None for a new session until ``run`` creates them.
    """

    config: SessionConfig
    paths: SessionPaths
    scheduler: SessionPlan
    behlog: BehaviourLog | None
    sidecar: dict | None
    seed: int
    scenes: str
    stimulus_set: object | None

    def run(self, *, service, say, warn) -> str:
        """Start the generator (unless ``service`` is given), check the scenes and the stimulus
        set against it, write a new session's files, run the window part; returns the status."""
        protocol = self.config.loaded.protocol
        geometry = stimulus_geometry(protocol)
        own_service = service is None
        try:
            if own_service:
                from study.service.start import start_service

                service = start_service(
                    protocol,
                    geometry=geometry,
                    scenes=self.scenes,
                    stimulus_set=self.stimulus_set is not None,
                    log=say,
                )
            info = getattr(service, "info", {})
            set_record = self._check_against(info, warn=warn)
            runner = SessionRun(
                config=self.config,
                paths=self.paths,
                scheduler=self.scheduler,
                behlog=self.behlog,
                sidecar=self.sidecar,
                seed=self.seed,
                say=say,
                warn=warn,
                stimulus_set=self.stimulus_set,
            )
            return runner.run(service=service, info=info, geometry=geometry, set_record=set_record)
        finally:
            if self.behlog is not None:  # closed by the window's cleanup unless a check refused
                self.behlog.close()
            if own_service and service is not None:
                service.close()

    def _check_against(self, info: dict, *, warn) -> dict | None:
        """Check the scenes and the stimulus set against the running generator (``info``: its
        start record); a new session's sidecar and trial log are written once both pass.
        Returns the stimulus set's record (None without one)."""
        from protocol.scenes import check_scenes

        protocol = self.config.loaded.protocol
        checked = check_scenes(
            spec=self.scenes, protocol=protocol, scene_factor=info.get("scene_factor")
        )
        scene_record = None if checked is None else checked.record()
        set_record = (
            None if self.stimulus_set is None else stimulus_set_record(self.stimulus_set, info)
        )
        if self.sidecar is None:
            self.sidecar = new_sidecar(self.config, seed=self.seed, scenes=scene_record)
            self.sidecar["counterbalancing"] = self.scheduler.counterbalancing
            # The sidecar first: a session is resumable as soon as anything of it exists.
            note = ensure_dataset_files(
                Path(self.config.data_dir), participant=self.config.participant
            )
            if note:  # participants.tsv is not the kit's table
                warn(note)
            self.paths.beh_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.paths.beh_json, self.sidecar)
            self.behlog = BehaviourLog.create(self.paths.beh_tsv)
        return set_record


def summarize_session(path: Path) -> dict:
    """Responses, completion and proportion correct of a session (for CLI output)."""
    rows = read_rows(path)
    responded = [r for r in rows if r["correct"] in ("0", "1")]
    pc = float(np.mean([r["correct"] == "1" for r in responded])) if responded else math.nan
    return {"rows": len(rows), "responses": len(responded), "proportion_correct": pc}
