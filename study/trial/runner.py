"""``TrialRunner``: one gaze-contingent 2AFC trial, frame by frame, one method per phase.

Inter-trial interval -> fixation (the gaze held inside the tolerance for the hold time) -> the
wait for the images (the foveated one requested at the measured gaze; the reference was
requested at trial start: the full-resolution twin, or with ``[stimulus] reference = "original"``
the photograph of the seed's scene; neither blocks the frame loop) -> interval 1 -> mask -> ISI
-> interval 2, the gaze checked on every frame -> the response (keys 1/2 or left/right; or a
simulated observer) -> optional feedback. Scene models make both images from the seed's scene;
the row records its hash (``scene``) and the ``reference``.

A fixation break, a missed generation deadline (without a cached stimulus), a crashed generator
or a missing answer aborts the trial: it is logged (flagged) and its plan re-queued. The phases
before the stimulus are in ``study.trial.fixation``, the stimulus and the answer in
``study.trial.presentation``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protocol.levels import layout_spec
from protocol.schema import Protocol
from protocol.session_data import new_row
from study.generation import GenerationService
from study.operator import drift_check_lines
from study.presenter import Presenter, QuitRequested, RecordingStopped
from study.procedures import TrialPlan, is_practice
from study.trackers.base import TrackerLinkLost
from study.trial.dataviewer import end_variables, save_shown_images
from study.trial.fixation import FixationPhases
from study.trial.frame_drops import DROP_COLUMNS, phase_drops, stimulus_drops
from study.trial.presentation import PresentationPhases
from study.trial.sources import TrialImageSources
from study.trial.state import TrialAborted, TrialOutcome, TrialState


class TrialRunner(FixationPhases, PresentationPhases):
    """Runs trials of one session.

    Args:
        protocol: the validated protocol.
        presenter: the window.
        tracker: the gaze source.
        service: the generation backend.
        geometry: ``generator.StimulusGeometry`` of the stimulus.
        observer: a simulated observer, or None for keyboard answers.
        session_seed: the session's seed (per-trial randomness derives from it).
        participant, session: labels for the rows.
        stimulus_set: a checked ``stimuli.StimulusSet`` (``--stimulus-set``): full-resolution
            twins come from it instead of the generator, and with ``on_deadline_miss = "cached"``
            its image at the fixation target stands in for a late foveated one.
        prefetch_after_intervals: have the next plan's twin prefetched once the second interval
            has ended (the intervals run with an idle generator) instead of as soon as this
            trial's images are ready (sessions).
        images_dir: where the images shown in each trial are saved as PNG
            (``study.trial.dataviewer``); None: not saved.
        requeue_dropped_frames: abort and re-queue a trial with a dropped frame while its
            images are shown (``study.trial.frame_drops``); None: the protocol's
            ``timing.requeue_dropped_frames`` in real-clock sessions, never in simulated ones
            (their flips are not paced by a display).
    """

    def __init__(
        self,
        *,
        protocol: Protocol,
        presenter: Presenter,
        tracker,
        service: GenerationService,
        geometry,
        observer,
        session_seed: int,
        participant: str,
        session: str,
        stimulus_set=None,
        prefetch_after_intervals: bool = False,
        images_dir: Path | None = None,
        requeue_dropped_frames: bool | None = None,
    ) -> None:
        self.protocol = protocol
        self.presenter = presenter
        self.tracker = tracker
        self.service = service
        self.geometry = geometry
        self.observer = observer
        self.session_seed = session_seed
        self.participant = participant
        self.session = session
        self.sources = TrialImageSources(
            protocol=protocol, service=service, geometry=geometry, stimulus_set=stimulus_set
        )
        self.prefetch_after_intervals = prefetch_after_intervals
        self.images_dir = images_dir
        if requeue_dropped_frames is None:
            requeue_dropped_frames = (
                protocol.timing.requeue_dropped_frames and not presenter.simulated
            )
        self.requeue_dropped_frames = requeue_dropped_frames
        self.upcoming = None  # callable -> (seed, conditioning) of the next new plan, or None
        self.calibrate_requested = False

    on_calibration = None  # set by the session: records calibrations in the sidecar
    say = None  # set by the session: the operator's console lines (in-trial calibrations)

    # ---------------------------------------------------------------- the trial
    def run(self, *, plan: TrialPlan, trial: int, drift_check: bool = False) -> TrialOutcome:
        """Present ``plan`` as trial number ``trial``; returns the row to log.

        ``drift_check``: a drift check at the fixation target first, after ``TRIALID`` (SR's
        order: its messages belong to the trial in the EDF)."""
        presenter, win = self.presenter, self.presenter.win
        state = self._new_trial(plan, trial)
        self.sources.harvest_late()
        presenter.trial = trial
        n_gaze_before = len(presenter.stats.gaze_to_flip_s)
        intervals_before = state.intervals_before = len(win.frameIntervals)
        win.recordFrameIntervals = True
        self.tracker.trial_start(
            trial=trial,
            variables={
                "condition": plan.condition,
                "level": plan.level,
                "seed": plan.seed,
                "interval_foveated": plan.interval_foveated,
                "track": plan.track,
                "attempt": plan.attempt,
            },
        )
        result_label = "aborted"
        try:
            if drift_check:
                self.drift_check(x_deg=state.fixation_deg[0], y_deg=state.fixation_deg[1])
            outcome = self._run_phases(state)
            row = state.row
            row["given_up"] = self._gives_up(plan, requeue=outcome.requeue)
            if not outcome.requeue or row["given_up"]:
                self.sources.forget(plan)  # never presented again: no stand-in needed
            result_label = "response" if not outcome.requeue else (row["abort_reason"] or "requeue")
        except TrackerLinkLost:
            # The run ends: nothing of this trial is logged, and a resume runs it again.
            result_label = "link_lost"
            raise
        finally:
            self._cancel_unfinished(state)
            self.tracker.trial_end(result=result_label, variables=end_variables(state.row))
            win.recordFrameIntervals = False
            presenter.trial = None
            if state.shown and self.images_dir is not None:
                save_shown_images(
                    images_dir=self.images_dir,
                    trial=trial,
                    foveated=state.foveated.image,
                    full=state.twin.image,
                )
        intervals = [float(v) for v in win.frameIntervals[intervals_before:]]
        limit = win.refreshThreshold
        state.row["dropped_frames"] = int(sum(v > limit for v in intervals))
        state.row.update({DROP_COLUMNS[p]: n for p, n in self._phase_drops(state).items()})
        gaze_lat = presenter.stats.gaze_to_flip_s[n_gaze_before:]
        state.row["gaze_to_flip_median_s"] = float(np.median(gaze_lat)) if gaze_lat else None
        outcome.frame_intervals_s = intervals
        # A stop during the feedback or abort screen keeps the outcome (OUTCOME_PHASES).
        outcome.recording_stopped |= self.tracker.is_connected() and not self.tracker.is_recording()
        outcome.fixation_acquired_s = state.fixation_acquired_s
        if state.foveated_ticket is not None:
            outcome.generation_timings = state.foveated_ticket.timings
        return outcome

    def _new_trial(self, plan: TrialPlan, trial: int) -> TrialState:
        condition = self.protocol.condition(plan.condition)
        fx, fy = condition.fixation_deg
        # The beh.tsv row (protocol.session_data): the columns not given here start as n/a.
        row = new_row(
            participant=self.participant,
            session=self.session,
            trial=trial,
            condition=plan.condition,
            level=plan.level,
            interval_foveated=plan.interval_foveated,
            fixation_break=0,
            seed=plan.seed,
            deadline_missed=0,
            cached_stimulus=0,
            fixation_x_deg=fx,
            fixation_y_deg=fy,
            observer="human" if self.observer is None else self.observer.name,
            track=plan.track,
            attempt=plan.attempt,
            level_variable=condition.level_variable,
            conditioning=plan.conditioning,
            reference=self.protocol.stimulus.reference,
            blink_in_interval=0,
            refixated=0,
            given_up=0,
        )
        spec = layout_spec(condition=condition, level=plan.level)
        return TrialState(plan=plan, row=row, spec=spec, fixation_deg=(fx, fy))

    def _run_phases(self, trial: TrialState) -> TrialOutcome:
        # The twin does not depend on gaze: ask for it first (the service may have it cached).
        trial.twin, trial.twin_ticket = self.sources.request_twin(trial.plan)
        if trial.twin is not None:
            trial.row["twin_latency_s"] = 0.0
        try:
            self._inter_trial_interval()
            self._fixation(trial)
            self._wait_for_images(trial)
            self._record_images(trial)
            if not self.prefetch_after_intervals:
                self._prefetch_next_twin()
            stimuli = self._stimuli(trial)
            if trial.monitor.invalid_seen:  # a blink while waiting: hold the gaze again
                self._refixate(trial)
            trial.monitor = self._gaze_monitor(trial, centre_deg=trial.gaze_deg)
            self._interval(trial, 1, stimuli)
            self._mask(trial, stimuli)
            self._isi(trial)
            self._interval(trial, 2, stimuli)
            if trial.monitor.ends_broken():  # a run the blink rule had not decided yet
                raise TrialAborted("fixation_break")
            self.tracker.message("STIMULUS_OFF")
            if self.prefetch_after_intervals:
                self._prefetch_next_twin()
            correct = self._response(trial)
        except TrialAborted as aborted:
            return self._abort(trial.row, reason=aborted.reason)
        except RecordingStopped:
            # No abort screen: the session pauses and restarts the recording.
            trial.row["abort_reason"] = "recording_stopped"
            trial.row["fixation_break"] = 0
            self.tracker.message("TRIAL_ABORTED recording_stopped")
            return TrialOutcome(row=trial.row, requeue=True, correct=None, recording_stopped=True)
        self._feedback(trial, correct=correct)
        return TrialOutcome(row=trial.row, requeue=False, correct=correct)

    # ---------------------------------------------------------------- helpers
    def _gives_up(self, plan: TrialPlan, *, requeue: bool) -> int:
        """1 when this abort uses the plan's last attempt (``[procedure] max_attempts``; the
        scheduler then drops it, ``Scheduler.gives_up``); practice plans are never given up."""
        last = plan.attempt >= self.protocol.procedure.max_attempts
        return int(requeue and last and not is_practice(plan.track))

    def _phase_drops(self, trial: TrialState) -> dict[str, int]:
        """This trial's dropped frames so far per counted phase (``DROP_COLUMNS``' keys)."""
        win = self.presenter.win
        start = trial.intervals_before
        return phase_drops(
            win.frameIntervals[start:],
            self.presenter.interval_phases[start:],
            threshold_s=win.refreshThreshold,
        )

    def _check_dropped_frames(self, trial: TrialState) -> None:
        """After the second interval went off: a dropped frame while the images were shown
        (or between them) aborts the trial (re-queued), when the runner re-queues drops."""
        if not self.requeue_dropped_frames:
            return
        if stimulus_drops(self._phase_drops(trial)):
            raise TrialAborted("dropped_frame")

    def _prefetch_next_twin(self) -> None:
        """Have the service make the next plan's twin now, while the generator is idle."""
        if self.upcoming is not None:
            self.sources.prefetch_twin(self.upcoming())

    def _cancel_unfinished(self, trial: TrialState) -> None:
        """However the trial ended (an abort, a stopped recording, a quit, an error): cancel its
        foveated request and speculation if they still run, unless kept as a future stand-in
        (``TrialImageSources.abandon``). Foveated requests run first in, first out: one left
        running would hold up the next trial's. A twin goes on into the service's cache."""
        for ticket in (trial.speculation, trial.foveated_ticket):
            if ticket is not None and not ticket.done() and not self.sources.is_kept(ticket):
                ticket.cancel()

    def _abort(self, row: dict, *, reason: str) -> TrialOutcome:
        # A twin still being generated goes on into the service's cache for the re-queued plan.
        row["abort_reason"] = reason
        row["fixation_break"] = 1 if reason == "fixation_break" else 0
        self.tracker.message(f"TRIAL_ABORTED {reason}")
        presenter = self.presenter
        if reason == "escape":  # Escape while the images were shown: quit, or re-queue
            if presenter.confirm_quit():
                raise QuitRequested()
            return TrialOutcome(row=row, requeue=True, correct=None)
        for _ in range(presenter.frames_for(1.0) if not presenter.simulated else 1):
            presenter.draw_text(self.protocol.instructions.abort_text(reason))
            presenter.flip(phase="abort")
        return TrialOutcome(row=row, requeue=True, correct=None)

    def _calibrate(self, reason: str | None = None) -> None:
        """A calibration in the trial; ``reason``: the console's line on why (none for a
        drift check's recalibration, which the session prints with the check)."""
        if reason is not None and self.say is not None:
            self.say(reason)
        result = self.tracker.calibrate()
        if self.on_calibration is not None:
            self.on_calibration(result)

    def drift_check(self, *, x_deg: float, y_deg: float) -> None:
        """A drift check at the target (degrees); a recalibration when the check asks for one
        (offset above the protocol's limit, or no result after the capped attempts)."""
        check = getattr(self.tracker, "drift_check", None)
        if check is None:  # the simulated tracker: the participant is shown the target
            self.tracker.drift_correct(x_deg=x_deg, y_deg=y_deg)
            return
        result = check(x_deg=x_deg, y_deg=y_deg)
        if self.say is not None:  # before the recalibration it may bring, in the console too
            limits = getattr(self.tracker, "limits", None)
            for line in drift_check_lines(
                [result],
                trial=self.presenter.trial,
                limit_deg=getattr(limits, "drift_offset_deg", None),
            ):
                self.say(line)
        if result.recalibrate:
            self._calibrate()
