"""The session's trial loop: between-trial screens and operator keys, scheduled calibrations and
drift checks, each trial run and logged (gaze, then row, then scheduler), the abort streak, and
the periodic timing report.

``TrialLoop`` is part of ``study.session_window.SessionRun``; it uses the run's ``protocol``,
``scheduler``, ``behlog``, ``sidecar``, ``paths``, ``say``, ``screens`` and ``files``.
"""

from __future__ import annotations

from study.operator import AbortStreak, OperatorControls
from study.procedures import is_practice
from study.session_tracker import RESUME_HINT, link_lost_screen, restart_recording
from study.trackers.base import TrackerLinkLost


class TrialLoop:
    """The trials of one run (methods of ``SessionRun``)."""

    def _calibrate(self, tracker) -> None:
        self._record_calibration(tracker.calibrate())

    def _record_calibration(self, result) -> None:
        """Every calibration so far (drift-check recalibrations included) into the sidecar."""
        self.files.record_calibration(self.tracker, result)

    def _trial_loop(self, *, runner, presenter, tracker, timing) -> str:
        p = self.protocol
        sch = self.scheduler
        trials_this_run = 0
        self.operator = OperatorControls(
            presenter=presenter,
            calibrate=lambda: self._calibrate(tracker),
            say=self.say,
            calibrations=lambda: self.sidecar.get("calibration", []),
            texts=p.instructions,
        )
        aborts = AbortStreak(p.procedure.max_aborts_in_a_row)
        while not sch.finished:
            self.screens.before_trial()  # practice introduction, breaks
            self.operator.between_trials()  # the operator's pause / recalibrate keys
            trials_this_run += 1
            if _due(p.tracker.calibrate_every_n_trials, trials_this_run):
                self._calibrate(tracker)
            plan = sch.next_plan()
            trial = len(self.behlog.rows) + 1
            due = _due(p.tracker.drift_correct_every_n_trials, trials_this_run)
            try:
                outcome = runner.run(plan=plan, trial=trial, drift_check=due)
            except TrackerLinkLost:
                link_lost_screen(presenter, trial=trial - 1)  # until the operator ends the run
                raise  # nothing of this trial is logged (a resume reruns it)
            self._log_trial(plan=plan, outcome=outcome, trial=trial, presenter=presenter)
            self.screens.after_trial(plan)  # a finished practice block's result
            timing.add_trial(outcome)
            if outcome.recording_stopped:
                self._restart_recording(tracker, presenter)
            finding = aborts.add(outcome)
            if finding:
                if presenter.auto_advance:  # no one at the keyboard: the run cannot go on
                    self.say(f"{self.paths.session_dir}: {finding}; {RESUME_HINT}")
                    return f"stopped: {finding}"
                self.operator.after_aborts(finding)
            if trial % 20 == 0:
                timing.write(
                    path=self.paths.timing_json,
                    rows=self.behlog.rows,
                    presenter=presenter,
                    run_record=None,
                )
        self.screens.goodbye()
        return "completed"

    def _log_trial(self, *, plan, outcome, trial: int, presenter) -> None:
        """The trial's gaze, then its row (fsynced), then the scheduler; a progress line."""
        # Gaze first, then the trial row: a kill in between leaves physio samples of a trial
        # beh.tsv lacks, which a resume drops (the trial runs again).
        presenter.physio.flush_block()
        outcome.row["block"] = "practice" if is_practice(plan.track) else "main"
        self.behlog.append(outcome.row)
        self.scheduler.record(
            plan, outcome="requeue" if outcome.requeue else "response", correct=outcome.correct
        )
        self.say(
            self.operator.status_line(
                trial=trial,
                done=self.scheduler.n_responses,
                total=self.scheduler.total_planned_responses,
                row=outcome.row,
                requeued=outcome.requeue,
            )
        )

    def _restart_recording(self, tracker, presenter) -> None:
        self.say(f"{self.paths.session_dir}: recording stopped; restarting it")
        restart_recording(tracker, presenter)


def _due(every_n: int, trials_this_run: int) -> bool:
    """Every ``every_n`` trials of this run (0: never), not before its first trial."""
    return bool(every_n and trials_this_run > 1 and (trials_this_run - 1) % every_n == 0)
