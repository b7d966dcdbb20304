"""The trial's phases from the stimulus on: interval 1, mask, ISI, interval 2 (the gaze checked
on every frame), the response and the feedback.

``PresentationPhases`` is part of ``TrialRunner``; it uses the runner's ``protocol``,
``presenter``, ``tracker``, ``geometry``, ``observer`` and ``session_seed``.
"""

from __future__ import annotations

import numpy as np

from study.observers import ObserverTrial
from study.presenter import RESPONSE_KEYS, QuitRequested
from study.procedures.practice import is_practice
from study.trial.dataviewer import image_ref, onset_messages
from study.trial.state import TrialAborted, TrialState, trial_rng

# The feedback mark's colour (sRGB) by the answer: correct, wrong. Hue alone (PsychoPy's
# "green" and "red") left a red-green colour-blind participant (about 1 man in 12) two marks of
# nearly the background's luminance (linear 0.15 and 0.21 against 0.22); these differ tenfold
# in luminance (0.62 and 0.06): on the default mid-grey background one is lighter, one darker.
FEEDBACK_RGB = {True: (120, 230, 120), False: (140, 0, 0)}

#: The response prompt's distance from the screen centre, deg: above it, or below it when the
#: fixation mark (where the eyes are) would lie within PROMPT_CLEARANCE_DEG of the text's line.
PROMPT_OFFSET_DEG = 3.0
PROMPT_CLEARANCE_DEG = 1.5


def prompt_y_deg(fixation_y_deg: float) -> float:
    """The response prompt's height (deg, up from the centre) for a fixation at that height."""
    above = abs(fixation_y_deg - PROMPT_OFFSET_DEG) > PROMPT_CLEARANCE_DEG
    return PROMPT_OFFSET_DEG if above else -PROMPT_OFFSET_DEG


def isi_rest_flips(timing, frames_for) -> int:
    """Flips of the ISI after the mask (the fixation mark alone)."""
    return max(0, frames_for(timing.isi_s) - frames_for(timing.mask_duration_s))


def stimulus_flips(timing, frames_for) -> int:
    """Flips from interval 1's onset to interval 2's last frame: the frames whose gaze the trial
    checks for a fixation break (``timing``: the protocol's ``[timing]``; ``frames_for``:
    seconds -> flips, ``Presenter.frames_for``)."""
    stimulus = frames_for(timing.stimulus_duration_s)
    return 2 * stimulus + frames_for(timing.mask_duration_s) + isi_rest_flips(timing, frames_for)


class PresentationPhases:
    """The two intervals with mask and ISI, the response, the feedback (methods of
    ``TrialRunner``)."""

    def _stimuli(self, trial: TrialState) -> dict:
        """The window's stimuli: interval number (1, 2) -> image, and ``mask`` (noise)."""
        plan, presenter = trial.plan, self.presenter
        images = {
            plan.interval_foveated: trial.foveated.image,
            3 - plan.interval_foveated: trial.twin.image,
        }
        stimuli: dict = {k: presenter.image_stim(v) for k, v in images.items()}
        h, w = trial.twin.image.shape[:2]
        rng = trial_rng(session_seed=self.session_seed, plan=plan, purpose=f"mask{plan.attempt}")
        stimuli["mask"] = presenter.mask_stim(width_px=w, height_px=h, rng=rng)
        return stimuli

    def _interval(self, trial: TrialState, number: int, stimuli: dict) -> None:
        """Interval ``number`` (1 or 2): its image for the stimulus duration; the onset (the
        flip's time) goes into the row, and the onset messages for the EDF and Data Viewer
        (``study.trial.dataviewer``) are sent from the flip."""
        kind = "foveated" if number == trial.plan.interval_foveated else "full"
        messages = onset_messages(
            trial=int(trial.row["trial"]),
            interval=number,
            image_file=image_ref(trial=int(trial.row["trial"]), kind=kind),
            gaze_deg=trial.image_gaze_deg or trial.gaze_deg,  # where the image's fovea is
            presenter=self.presenter,
        )

        def onset(frame) -> None:
            trial.row["onset_s" if number == 1 else "onset2_s"] = frame.t
            trial.shown = True

        frames = self.presenter.frames_for(self.protocol.timing.stimulus_duration_s)
        self._present(
            trial,
            phase=f"interval{number}",
            stim=stimuli[number],
            frames=frames,
            on_first=onset,
            first_messages=messages,
        )

    def _mask(self, trial: TrialState, stimuli: dict) -> None:
        """The noise mask at the start of the ISI (breaks the afterimage of interval 1)."""
        frames = self.presenter.frames_for(self.protocol.timing.mask_duration_s)
        self._present(trial, phase="isi", stim=stimuli["mask"], frames=frames, timing_phase="mask")

    def _isi(self, trial: TrialState) -> None:
        """The rest of the inter-stimulus interval: the fixation mark alone."""
        frames = isi_rest_flips(self.protocol.timing, self.presenter.frames_for)
        self._present(trial, phase="isi", stim=None, frames=frames)

    def _present(
        self,
        trial: TrialState,
        *,
        phase: str,
        stim,
        frames: int,
        on_first=None,
        first_messages: tuple[str, ...] = (),
        timing_phase: str | None = None,
    ) -> None:
        """Show ``stim`` (None: nothing) for ``frames`` flips with the gaze checked on each; the
        fixation mark is drawn during the ISI, and in the intervals when the protocol says.
        ``first_messages`` go to the tracker from the first frame's flip."""
        presenter = self.presenter
        fx, fy = trial.fixation_deg
        show_mark = self.protocol.fixation.show_during_stimulus or phase == "isi"
        in_interval, keep_gaze = phase.startswith("interval"), phase != "isi"
        for i in range(frames):
            if stim is not None:
                stim.draw()
            if show_mark:
                presenter.draw_fixation(fx, fy)
            frame = presenter.flip(
                phase=phase,
                messages=first_messages if i == 0 else (),
                timing_phase=timing_phase,
            )
            if i == 0 and on_first is not None:
                on_first(frame)
            if presenter.keys(["escape"]):  # the trial ends: never resumed mid-display
                raise TrialAborted("escape")
            if trial.monitor.broken(t=frame.t, sample=frame.sample):
                raise TrialAborted("fixation_break")
            if in_interval and (frame.sample is None or not frame.sample.valid):
                trial.row["blink_in_interval"] = 1
            if keep_gaze and frame.sample is not None and frame.sample.valid:
                trial.seen_deg.append((frame.sample.x_deg, frame.sample.y_deg))

    def _response(self, trial: TrialState) -> bool:
        """The answer (simulated observer, or keys); returns whether it was right."""
        presenter, plan, row = self.presenter, trial.plan, trial.row
        fx, fy = trial.fixation_deg
        presenter.clear_keys()
        presenter.draw_text(self.protocol.instructions.response_prompt, y_deg=prompt_y_deg(fy))
        presenter.draw_fixation(fx, fy)
        prompt_frame = presenter.flip(phase="response")  # ends interval 2's last interval
        self._check_dropped_frames(trial)
        if self.observer is not None:
            answer = self._observer_answer(trial)
            window = self.protocol.timing.response_window_s
            if window > 0 and answer.rt_s > window:  # too late, as a key after the window
                presenter.clock.advance(window)
                raise TrialAborted("no_response")
            presenter.clock.advance(answer.rt_s)
            response, rt_s = answer.response, answer.rt_s
            row["p_correct_model"] = answer.p_correct
        else:
            response, rt_s = self._wait_for_key(prompt_frame.t, fx, fy)
            if response is None:
                raise TrialAborted("no_response")
        correct = response == plan.interval_foveated
        row["response"], row["rt_s"], row["correct"] = response, rt_s, int(correct)
        self.tracker.message(f"RESPONSE {response} correct {int(correct)}")
        return correct

    def _feedback(self, trial: TrialState, *, correct: bool) -> None:
        if not self.protocol.shows_feedback(practice=is_practice(trial.plan.track)):
            return
        presenter = self.presenter
        color = [v / 127.5 - 1 for v in FEEDBACK_RGB[correct]]  # PsychoPy's rgb: -1 to 1
        for _ in range(presenter.frames_for(self.protocol.timing.feedback_duration_s)):
            presenter.draw_fixation(*trial.fixation_deg, color=color)
            presenter.flip(phase="feedback")

    def _observer_answer(self, trial: TrialState):
        plan = trial.plan
        mean_gaze = np.mean(trial.seen_deg, axis=0) if trial.seen_deg else trial.gaze_deg
        seen_px = tuple(float(v) for v in self.geometry.deg_to_image_px(*mean_gaze))
        rng = trial_rng(session_seed=self.session_seed, plan=plan, purpose="observer")
        return self.observer.respond(
            trial=ObserverTrial(
                condition=plan.condition,
                level=plan.level,
                interval_foveated=plan.interval_foveated,
                foveated=trial.foveated.image,
                twin=trial.twin.image,
                gaze_px=seen_px,
            ),
            rng=rng,
        )

    def _wait_for_key(self, t0: float, fx: float, fy: float) -> tuple[int | None, float | None]:
        presenter, window = self.presenter, self.protocol.timing.response_window_s
        keys = ["1", "2", "num_1", "num_2", "left", "right", "escape"]
        while True:
            presenter.draw_text(self.protocol.instructions.response_prompt, y_deg=prompt_y_deg(fy))
            presenter.draw_fixation(fx, fy)
            frame = presenter.flip(phase="response")
            for key in presenter.keys(keys):
                if key == "escape":
                    if presenter.confirm_quit():
                        raise QuitRequested()
                    continue
                return RESPONSE_KEYS[key], frame.t - t0
            if window > 0 and frame.t - t0 > window:
                return None, None
