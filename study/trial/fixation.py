"""The trial's phases before the stimulus: inter-trial interval, fixation, and the wait for the
two images (deadline misses included).

``FixationPhases`` is part of ``TrialRunner``; it uses the runner's ``protocol``, ``presenter``,
``tracker``, ``geometry`` and ``sources``.
"""

from __future__ import annotations

import time

from study.generation import GenerationResult
from study.presenter import QuitRequested
from study.service.errors import GenerationError, ServiceUnavailable
from study.trial.gaze import FixationHold, GazeMonitor
from study.trial.sources import request_elapsed_s, shared_scene
from study.trial.state import TrialAborted, TrialState

# The longest a participant waits at the fixation mark for the images: this many deadlines, at
# least GIVE_UP_MIN_S (more than the process service needs to notice a hung generator and
# restart it). A generator that never delivers (a hung worker thread, a wedged GPU) then stops
# the session instead of freezing the screen.
GIVE_UP_DEADLINES = 10
GIVE_UP_MIN_S = 300.0


def give_up_s(deadline_s: float) -> float:
    """How long the trial waits for its images before the session stops (see above)."""
    return max(GIVE_UP_MIN_S, GIVE_UP_DEADLINES * deadline_s)


class FixationPhases:
    """Inter-trial interval, fixation, waiting for the images (methods of ``TrialRunner``)."""

    def _inter_trial_interval(self) -> None:
        presenter = self.presenter
        for _ in range(presenter.frames_for(self.protocol.timing.iti_s)):
            presenter.flip(phase="iti")
            presenter.check_escape()

    def _fixation(self, trial: TrialState) -> None:
        """The fixation target until the gaze is held inside the tolerance for the hold time
        (``c``: calibrate; a timeout: drift check and start over, and after the protocol's
        ``max_fixation_timeouts`` in a row a recalibration instead); measures the gaze."""
        presenter, timing = self.presenter, self.protocol.timing
        fx, fy = trial.fixation_deg
        trial.monitor = self._gaze_monitor(trial)
        hold = FixationHold(monitor=trial.monitor, hold_s=timing.fixation_hold_s)
        self.tracker.set_target(x_deg=fx, y_deg=fy)
        self.tracker.message(f"FIXATION_ON {fx:.2f} {fy:.2f}")
        trial.speculation = self.sources.speculate(trial.plan, trial.spec, trial.fixation_deg)
        phase_start = presenter.clock()
        timeouts = 0
        presenter.clear_keys()
        while True:
            presenter.draw_fixation(fx, fy)
            frame = presenter.flip(phase="fixation")
            self._fixation_keys()
            if self.calibrate_requested:
                self.calibrate_requested = False
                self._calibrate(
                    f"  recalibration asked by the operator (fixation of trial {trial.row['trial']})"
                )
                self.tracker.set_target(x_deg=fx, y_deg=fy)
                hold.reset()
                phase_start = presenter.clock()
                continue
            if hold.add(t=frame.t, sample=frame.sample):
                break
            if frame.t - phase_start > timing.fixation_timeout_s:
                timeouts += 1
                self.tracker.message(f"FIXATION_TIMEOUT {timeouts}")
                if timeouts >= self.protocol.tracker.max_fixation_timeouts:
                    timeouts = 0
                    self._calibrate(
                        f"  trial {trial.row['trial']}: no fixation in "
                        f"{self.protocol.tracker.max_fixation_timeouts} timeouts of "
                        f"{timing.fixation_timeout_s:g} s in a row: recalibration"
                    )
                else:
                    self.drift_check(x_deg=fx, y_deg=fy)
                self.tracker.set_target(x_deg=fx, y_deg=fy)  # the mark is back on the screen
                hold.reset()
                phase_start = presenter.clock()
        trial.fixation_acquired_s = hold.end_s
        trial.gaze_deg = hold.mean_gaze_deg(timing.gaze_average_s)
        trial.row["gaze_x_deg"], trial.row["gaze_y_deg"] = trial.gaze_deg
        trial.row["fixation_window_deg"] = self._stimulus_window_deg(trial)
        # Breaks are counted from here on, around the gaze the image is made for; a blink while
        # waiting for the images is allowed (a fresh hold follows before the onset).
        trial.monitor = self._gaze_monitor(trial, centre_deg=trial.gaze_deg, allow_invalid=True)

    def _fixation_keys(self) -> None:
        presenter = self.presenter
        if presenter.simulated:
            return
        pressed = presenter.keys(["escape", "c"])
        if "escape" in pressed and presenter.confirm_quit():
            raise QuitRequested()
        if "c" in pressed:
            self.calibrate_requested = True

    def _wait_for_images(self, trial: TrialState) -> None:
        """Request the foveated image at the measured gaze and keep the frame loop running until
        both images are ready (or the deadline rules otherwise); the fixation is checked."""
        presenter, plan = self.presenter, trial.plan
        gaze_px = tuple(float(v) for v in self.geometry.deg_to_image_px(*trial.gaze_deg))
        ticket = self.sources.request_foveated(
            plan, trial.spec, gaze_px, speculation=trial.speculation
        )
        if trial.speculation is not None:
            trial.row["speculation_kept"] = int(ticket is trial.speculation)
            if ticket is trial.speculation:
                made_px = ticket.request.gaze_px
                trial.image_gaze_deg = tuple(
                    float(v) for v in self.geometry.image_px_to_deg(*made_px)
                )
        trial.foveated_ticket = ticket
        self.tracker.message(
            f"GENERATION_REQUEST gaze {trial.gaze_deg[0]:.3f} {trial.gaze_deg[1]:.3f}"
        )
        if ticket.done() and (trial.twin is not None or trial.twin_ticket.done()):
            return  # a speculative start already finished: the onset is the next frame
        last = wait_start = time.perf_counter()
        fx, fy = trial.fixation_deg
        deadline_s = self.protocol.generation.deadline_s
        limit_s = give_up_s(deadline_s)
        while True:
            presenter.draw_fixation(fx, fy)
            advance = None
            if presenter.simulated:
                # Simulated time follows real time while waiting: generation is real work. No
                # vsync paces these flips (Xvfb): the wait for the images ends at this frame's
                # deadline, one period after the last flip, so a frame that keeps up lasts one
                # period. Waiting a whole period after the drawing made every frame longer than
                # one period, most of them longer than the 1.5 periods of a dropped frame.
                since_flip = time.perf_counter() - (presenter.flipped_perf_s or last)
                ticket.wait(max(0.0, presenter.frame_period_s - since_flip))
                now = time.perf_counter()
                advance, last = max(now - last, presenter.frame_period_s), now
            frame = presenter.flip(phase="wait", advance_s=advance)
            presenter.check_escape()
            if trial.monitor.broken(t=frame.t, sample=frame.sample):
                self.sources.abandon(plan, ticket)
                raise TrialAborted("fixation_break")
            twin_ready = trial.twin is not None or trial.twin_ticket.done()
            # The deadline is checked before "done": an image that finished after the deadline
            # within this frame's wait missed it (a finished ticket's elapsed time is its latency).
            if not trial.row["deadline_missed"] and request_elapsed_s(ticket) > deadline_s:
                if self._deadline_missed(trial, twin_ready=twin_ready):
                    return
            if ticket.done() and twin_ready:
                return
            if time.perf_counter() - wait_start > limit_s:
                # Which one hung, before cancelling (a cancelled ticket is done).
                what = "foveated image" if not ticket.done() else "reference image"
                ticket.cancel()
                raise ServiceUnavailable(
                    f"the trial's {what} was not ready {limit_s:g} s after the gaze was "
                    f"measured (deadline_s = {deadline_s:g}): the generator hangs"
                )

    def _deadline_missed(self, trial: TrialState, *, twin_ready: bool) -> bool:
        """The foveated image is late: show a stand-in made within ``cache_gaze_tolerance_deg``
        of the measured gaze (True; ``on_deadline_miss = "cached"``), re-queue the trial
        (raises), or after too many misses wait for it and show it late (False, flagged). The
        late request is cancelled unless it may become a stand-in (``sources.abandon``)."""
        plan, row, ticket = trial.plan, trial.row, trial.foveated_ticket
        generation = self.protocol.generation
        row["deadline_missed"] = 1
        self.tracker.message("GENERATION_DEADLINE_MISSED")
        gaze_px = tuple(float(v) for v in self.geometry.deg_to_image_px(*trial.gaze_deg))
        stand_in = self.sources.stand_in(plan, gaze_px) if twin_ready else None
        if stand_in is not None:
            self.sources.abandon(plan, ticket)
            trial.foveated, made_px = stand_in
            row["cached_stimulus"] = 1
            made_deg = self.geometry.image_px_to_deg(*made_px)
            trial.image_gaze_deg = tuple(float(v) for v in made_deg)
            row["stand_in_gaze_x_deg"], row["stand_in_gaze_y_deg"] = trial.image_gaze_deg
            row["gen_latency_s"] = request_elapsed_s(ticket)
            return True
        if plan.attempt < generation.max_deadline_misses:
            self.sources.abandon(plan, ticket)
            row["gen_latency_s"] = request_elapsed_s(ticket)
            raise TrialAborted("deadline")
        self.tracker.message("GENERATION_SHOWN_LATE")
        return False

    def _record_images(self, trial: TrialState) -> None:
        """Take both finished images (a crashed generator aborts: it is restarted, the plan
        re-queued) and record their latencies, tokens and scene."""
        row = trial.row
        if trial.foveated is None:
            ticket = trial.foveated_ticket
            trial.foveated = self._result(ticket)
            row["gen_latency_s"] = request_elapsed_s(ticket)
            self.sources.remember(trial.plan, ticket, trial.foveated)
        if trial.twin is None:
            trial.twin = self._result(trial.twin_ticket)
            row["twin_latency_s"] = trial.twin_ticket.latency_s
        row["scene"] = shared_scene(trial.foveated, trial.twin)
        row["tokens"] = trial.foveated.tokens
        row["tokens_full"] = trial.foveated.tokens_full
        row["token_ratio"] = trial.foveated.token_ratio

    def _result(self, ticket) -> GenerationResult:
        try:
            return ticket.result()
        except GenerationError as error:
            if not error.retryable:
                raise
            self.tracker.message(f"GENERATION_FAILED {error}")
            raise TrialAborted("generator_crash") from error

    def _gaze_monitor(
        self, trial: TrialState, *, centre_deg=None, allow_invalid: bool = False
    ) -> GazeMonitor:
        """The fixation check around the target (``centre_deg`` None: the hold), or around the
        measured gaze with the stimulus window (``fixation_window_deg``)."""
        fixation, presenter = self.protocol.fixation, self.presenter
        x, y = trial.fixation_deg if centre_deg is None else centre_deg
        return GazeMonitor(
            x_deg=x,
            y_deg=y,
            tolerance_deg=fixation.tolerance_deg
            if centre_deg is None
            else trial.row["fixation_window_deg"],
            max_invalid_s=fixation.max_invalid_s,
            break_min_s=fixation.break_min_s,
            sample_period_s=presenter.frame_period_s * presenter.speed,
            blink_edge_s=fixation.blink_edge_s,
            allow_invalid=allow_invalid,
        )

    def _stimulus_window_deg(self, trial: TrialState) -> float:
        """Radius of the window around the measured gaze from the generation on
        (``FixationSettings.interval_window_deg``: the condition's padding, bounded)."""
        padding = self.protocol.condition(trial.plan.condition).padding_deg
        return self.protocol.fixation.interval_window_deg(padding)

    def _refixate(self, trial: TrialState) -> None:
        """After a blink while waiting for the images: the gaze held again in the window for
        ``fixation.refixation_hold_s`` before the onset (``refixated`` = 1); no hold within the
        fixation timeout is a fixation break."""
        presenter = self.presenter
        trial.row["refixated"] = 1
        self.tracker.message("REFIXATION")
        monitor = self._gaze_monitor(trial, centre_deg=trial.gaze_deg)
        hold = FixationHold(monitor=monitor, hold_s=self.protocol.fixation.refixation_hold_s)
        start = presenter.clock()
        while True:
            presenter.draw_fixation(*trial.fixation_deg)
            frame = presenter.flip(phase="refixation")
            presenter.check_escape()
            if hold.add(t=frame.t, sample=frame.sample):
                return
            if frame.t - start > self.protocol.timing.fixation_timeout_s:
                raise TrialAborted("fixation_break")
