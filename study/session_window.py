"""The window part of a session: window, tracker and presenter, the trial loop
(``study.session_trials``), and the run's records when it ends (completed, quit with Escape, or
stopped by an error)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from generator.errors import FoveaError
from protocol.provenance import software_version
from protocol.session_data import MISSING_TOKENS
from study.datalog import BehaviourLog, PhysioLog, SessionPaths, write_json_atomic
from study.operator import validation_question
from study.procedures import SessionPlan
from study.service.errors import GenerationError
from study.session_events import write_events
from study.session_setup import UTC_FORMAT, derive_seed, reopen_gaze_log, utc_now
from study.session_tracker import (
    EDF_KINDS,
    RESUME_HINT,
    SessionTrackerFiles,
    fetch_command,
    write_physio_sidecar,
)
from study.session_trials import TrialLoop
from study.timing import TimingCollector
from study.trackers.base import TrackerLinkLost

if TYPE_CHECKING:
    from study.session import SessionConfig


class SessionRun(TrialLoop):
    """The part of a session that needs the window (kept apart so cleanup is in one place); the
    trial loop is ``study.session_trials.TrialLoop``."""

    def __init__(
        self,
        *,
        config: SessionConfig,
        paths: SessionPaths,
        scheduler: SessionPlan,
        behlog: BehaviourLog,
        sidecar: dict,
        seed: int,
        say,
        warn=None,
        stimulus_set=None,
    ) -> None:
        self.stimulus_set = stimulus_set
        self.config = config
        self.paths = paths
        self.scheduler = scheduler
        self.behlog = behlog
        self.sidecar = sidecar
        self.seed = seed
        self.say = say  # progress lines (silent with --quiet)
        self.warn = warn or say  # warnings: printed even with --quiet
        self.protocol = config.loaded.protocol

    def run(self, *, service, info: dict, geometry, set_record: dict | None) -> str:
        """The window part of the session with a started ``service`` (``info``: its start
        record; ``set_record``: the checked stimulus set's); returns the status."""
        from study.xvfb import virtual_display

        p = self.protocol
        if info.get("token_px"):
            self.sidecar["patch_px"] = info["token_px"]
        run_record = {
            "started_utc": utc_now(),
            "software_version": software_version(),  # a resumed session may run newer code
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
        """Open the window, the gaze log and the tracker; run the trials; close everything and
        write the run's records (also after Escape or an error)."""
        from psychopy import logging as pp_logging

        from study.presenter import QuitRequested, RealClock, SimClock

        pp_logging.console.setLevel(pp_logging.ERROR)
        p, cfg = self.protocol, self.config
        simulated = cfg.simulated_clock
        start_s = self._clock_start_s(simulated)
        clock = SimClock(start_s=start_s) if simulated else RealClock(start_s=start_s)
        physio = self._open_physio(run_record)
        win = self._open_window(simulated)
        self._check_display(win, run_record=run_record, physio=physio, simulated=simulated)
        timing = TimingCollector(
            refresh_hz=p.display.refresh_hz,
            simulated=simulated,
            speed=p.simulation.speed if simulated else 1,
        )
        try:
            tracker, files = self._make_tracker(clock=clock, run_record=run_record)
            presenter = self._make_presenter(
                win=win, clock=clock, physio=physio, simulated=simulated
            )
        except BaseException as error:  # the window and the gaze file never outlive the run
            reason = str(error) or type(error).__name__
            self._end_before_the_trials(
                win, physio, run_record, status=f"stopped before the first trial: {reason}"
            )
            raise
        status = "stopped"
        tracker_open = False
        link_lost = False
        try:
            edf_name = files.name_run()  # in the sidecar before the Host PC opens the file
            tracker.open(win=win, session_dir=self.paths.eyetrack_dir, edf_name=edf_name)
            tracker_open = True
            for name in files.fetch_earlier_runs(tracker):
                self.say(f"{self.paths.session_dir}: fetched {name} from the Host PC")
            presenter.tracker = tracker
            if hasattr(tracker, "override_validation") and not presenter.auto_advance:
                tracker.override_validation = validation_question(
                    presenter=presenter, say=self.say, limits=tracker.limits
                )
            runner = self._trial_runner(
                presenter=presenter, tracker=tracker, service=service, geometry=geometry
            )
            intro = p.instructions.welcome
            if self.behlog.rows:
                intro = f"{p.instructions.welcome_back}\n\n{intro}"
            presenter.text_screen(intro, phase="instructions")
            self.screens = self._screens(presenter, run_record)
            if p.practice.example and not self.behlog.rows:
                self.screens.example(runner)  # after the instructions, new sessions only
            self._calibrate(tracker)
            tracker.start_recording()
            self._write_physio_sidecar(tracker)
            status = self._trial_loop(
                runner=runner, presenter=presenter, tracker=tracker, timing=timing
            )
        except QuitRequested:
            status = "quit by the experimenter (Escape)"
            self.say(
                f"{self.paths.session_dir}: {status}; continue with: {fetch_command(self.config)}"
            )
        except TrackerLinkLost as lost:  # what happened, and the command that continues
            status = f"stopped: {lost}"
            link_lost = True
            raise TrackerLinkLost(f"{lost}: {fetch_command(self.config)}") from None
        except GenerationError as error:  # the trials re-queue retryable ones themselves
            status = f"stopped: the generator failed: {error}"
            raise GenerationStopped(
                f"{self.paths.session_dir}: the session stopped because the generator failed "
                f"({error}); {RESUME_HINT} once it works again"
            ) from error
        except Exception as error:
            if not tracker_open:  # e.g. no link to the EyeLink: the run record says why
                status = f"stopped before the first trial: {str(error) or type(error).__name__}"
            raise
        finally:
            try:
                left_on_host = None
                if tracker_open and getattr(tracker, "name", None) in EDF_KINDS:
                    self._show_saving_screen(presenter)  # not the last (stimulus) frame
                physio.close()
                if tracker_open:
                    files.close(tracker)
                    left_on_host = files.edf_left_on_host(tracker)
                self._write_physio_sidecar(tracker)
                write_events(
                    paths=self.paths,
                    protocol=p,
                    rows=self.behlog.rows,
                    display=self.sidecar["display"],
                )
                # The sidecar last: once it says completed, a resume rewrites nothing.
                self._write_run_records(
                    status=status, run_record=run_record, presenter=presenter, timing=timing
                )
                # The sidecar may say completed: only --resume fetches it. A lost link's own
                # message already says the file stays on the Host PC and the resume fetches it.
                if left_on_host and not link_lost:
                    self.warn(
                        f"{self.paths.session_dir}: warning: the eye-tracking file {left_on_host}"
                        "; it stays on the Host PC: do not delete it there. Fetch it with: "
                        f"{fetch_command(self.config)}"
                    )
                for earlier in files.earlier_runs_on_host() if tracker_open else ():
                    self.warn(
                        f"{self.paths.session_dir}: warning: the eye-tracking file {earlier} "
                        "was not fetched by this resume; it is still only on the Host PC: do "
                        f"not delete it there. Fetch it with: {fetch_command(self.config)}"
                    )
            finally:  # also when a full disk stops the records: the window never outlives the run
                win.close()
        return status

    def _show_saving_screen(self, presenter) -> None:
        """A neutral screen (the protocol's background, ``[instructions] saving``) while the
        EDF comes over, instead of the last frame (a stimulus, after an error or Escape); a
        window that can no longer draw does not stop the transfer."""
        try:
            win = presenter.win
            win.recordFrameIntervals = False  # no trial's frame
            presenter.draw_text(self.protocol.instructions.saving)
            if presenter.screenshot_dir is not None and "saving" not in presenter.screenshots:
                presenter.screenshots["saving"] = win.getMovieFrame(buffer="back")
                presenter.screenshots["saving"].save(presenter.screenshot_dir / "saving.png")
            win.flip()
        except Exception as error:  # noqa: BLE001 - the EDF transfer matters more
            self.warn(f"{self.paths.session_dir}: the saving screen failed ({error}); saving on")

    def _end_before_the_trials(self, win, physio, run_record: dict, *, status: str) -> None:
        """A run ended between opening the window and the trial loop's own cleanup (a refused
        display; making the tracker or the presenter failed): the run record gets ``status``,
        the gaze file and the sidecar are written and the window closed (left open, it ended the
        process with an X error at exit)."""
        run_record.update(ended_utc=utc_now(), status=status)
        try:
            physio.close()
            write_json_atomic(self.paths.beh_json, self.sidecar)
        finally:
            win.close()

    def _break_timing(self) -> dict:
        """The simulated participant's fixation breaks fitted to this session's flips (one per
        ``speed`` frames in a simulated session), so that each planned break is on a checked
        frame: ``sim_fixation_break_prob`` is then the rate of breaks the trials see."""
        from protocol.run_settings import frames_for
        from study.trackers.sim import break_timing
        from study.trial.presentation import stimulus_flips

        p = self.protocol
        speed = p.simulation.speed if self.config.simulated_clock else 1
        flip_s = speed / p.display.refresh_hz
        return break_timing(
            checked_flips=stimulus_flips(p.timing, lambda s: frames_for(s, flip_s=flip_s)),
            flip_s=flip_s,
            break_min_s=p.fixation.break_min_s,
        )

    def _make_tracker(self, *, clock, run_record: dict):
        """The tracker (not yet open) and the run's tracker files (``study.session_tracker``)."""
        from study.trackers import make_tracker

        p, kind = self.protocol, self.config.tracker
        tracker = make_tracker(
            kind,
            settings=p.tracker,
            seed=derive_seed(self.seed, "tracker"),
            clock=clock,
            display=p.display.geometry(),
            break_timing=self._break_timing(),
            **({} if kind == "sim" else {"refresh_hz": p.display.refresh_hz}),
        )
        files = SessionTrackerFiles(
            paths=self.paths,
            sidecar=self.sidecar,
            run_record=run_record,
            prefix=p.tracker.edf_prefix,
            write_sidecar=lambda: write_json_atomic(self.paths.beh_json, self.sidecar),
            records_edf=kind in EDF_KINDS,
        )
        self.files, self.tracker = files, tracker
        return tracker, files

    def _open_physio(self, run_record: dict) -> PhysioLog:
        """The gaze log: continued after the logged trials on a resume, else new. A damaged
        block found on the way is skipped; the file as found is kept in sourcedata and the run
        record and the console say so."""
        self.paths.eyetrack_dir.mkdir(parents=True, exist_ok=True)
        self.paths.physio_tsv_gz.parent.mkdir(parents=True, exist_ok=True)
        if not self.paths.physio_tsv_gz.exists():
            return PhysioLog.create(self.paths.physio_tsv_gz)
        physio = reopen_gaze_log(
            self.paths, last_trial=len(self.behlog.rows), run_record=run_record
        )
        if physio.damaged_copy is not None:
            copy = run_record["physio_damaged_copy"]
            self.warn(
                f"warning: the gaze file had a damaged block; the samples after it are kept, "
                f"the block's are lost; the file as found is kept as {copy}"
            )
        return physio

    def _check_display(self, win, *, run_record: dict, physio, simulated: bool) -> None:
        """Measure the screen into the run record (``study.display_check``); a refused screen
        ends the run before anything else happens (the session stays resumable)."""
        from study.display_check import DisplayRefused, check_session_display

        try:
            check_session_display(
                win,
                display=self.protocol.display,
                simulated=simulated,
                allow_virtual=self.config.allow_virtual_display,
                run_record=run_record,
                say=self.say,
            )
        except DisplayRefused as refused:
            self.behlog.close()
            self._end_before_the_trials(win, physio, run_record, status=f"refused: {refused}")
            raise
        write_json_atomic(self.paths.beh_json, self.sidecar)

    def _open_window(self, simulated: bool):
        """The PsychoPy window (``study.session_display.open_window``); its monitor profile goes
        into the sidecar."""
        from study.session_display import open_window

        win, self.sidecar["monitor"] = open_window(self.protocol, self.config, simulated=simulated)
        return win

    def _make_presenter(self, *, win, clock, physio, simulated: bool):
        """The presenter (its tracker is set once the tracker is open)."""
        from study.presenter import Presenter

        p, cfg = self.protocol, self.config
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
        return presenter

    def _trial_runner(self, *, presenter, tracker, service, geometry):
        """The trial runner with the session's observer (None: a person answers)."""
        from study.trial import TrialRunner

        p, cfg = self.protocol, self.config
        observer = None
        if cfg.observer != "human":
            from study.observers import make_observer

            observer = make_observer(cfg.observer, display=p.display, settings=p.simulation)
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
            images_dir=self.paths.images_dir,
        )
        runner.on_calibration = self._record_calibration
        runner.say = self.say
        runner.upcoming = self.scheduler.upcoming_stimulus
        return runner

    def _write_run_records(self, *, status: str, run_record: dict, presenter, timing) -> None:
        """Close the trial log; write the timing report and the sidecar with the run's end."""
        run_record["ended_utc"] = utc_now()
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

    def _clock_start_s(self, simulated: bool) -> float:
        """Where a resumed session's clock starts: its time line continues (onset_s and gaze
        timestamps stay monotonic). Real clock: seconds since the session's start; simulated:
        10 s after the last logged onset."""
        rows = self.behlog.rows
        if not rows:
            return 0.0
        if simulated:
            onsets = [float(r["onset_s"]) for r in rows if r["onset_s"] not in MISSING_TOKENS]
            return (max(onsets) if onsets else 0.0) + 10.0
        started = _dt.datetime.strptime(self.sidecar["started_utc"], UTC_FORMAT)
        return (_dt.datetime.now(_dt.UTC).replace(tzinfo=None) - started).total_seconds()

    def _write_physio_sidecar(self, tracker) -> None:
        write_physio_sidecar(
            paths=self.paths, protocol=self.protocol, sidecar=self.sidecar, tracker=tracker
        )

    def _screens(self, presenter, run_record: dict):
        """Example, practice, break and goodbye screens (``study.session_screens``)."""
        from study.session_screens import SessionScreens

        return SessionScreens(
            protocol=self.protocol,
            plan=self.scheduler,
            presenter=presenter,
            sidecar=self.sidecar,
            run_record=run_record,
            write_sidecar=lambda: write_json_atomic(self.paths.beh_json, self.sidecar),
            say=self.say,
        )


class GenerationStopped(FoveaError):
    """A session stopped by a generator that failed for good (``ServiceUnavailable``, or a
    ``GenerationFailed`` request): every logged trial is kept, ``--resume`` continues."""
