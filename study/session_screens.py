"""The session's structure around the trials, as labs expect it: the example of the difference
after the instructions, the practice block's screens, rest breaks with a minimum duration and a
progress message, and the goodbye screen with the session's duration.

Each screen is recorded: the sidecar's ``example`` and ``practice`` records, the run's
``breaks`` (``runs[-1]["breaks"]``) and ``session_duration_s``. With a simulated participant a
screen shows one frame and a break lasts its minimum duration on the simulated clock.
"""

from __future__ import annotations

import math
import time

from protocol.levels import layout_spec
from study.procedures import SessionPlan, TrialPlan, is_practice


def format_duration(seconds: float) -> str:
    """``12 min 5 s`` (``45 s`` under a minute)."""
    total = max(0, round(seconds))
    minutes, secs = divmod(total, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


class SessionScreens:
    """The screens between trials of one run.

    Args:
        protocol: the validated protocol.
        plan: the session's ``SessionPlan`` (practice state, responses so far).
        presenter: the window.
        sidecar: the session's ``beh.json`` dict (updated in place).
        run_record: this run's record in ``sidecar["runs"]``.
        write_sidecar: writes the sidecar atomically.
        say: the operator's progress printer.
    """

    def __init__(
        self, *, protocol, plan: SessionPlan, presenter, sidecar, run_record, write_sidecar, say
    ) -> None:
        self.protocol = protocol
        self.plan = plan
        self.presenter = presenter
        self.sidecar = sidecar
        self.run_record = run_record
        self.write_sidecar = write_sidecar
        self.say = say
        self._last_break_at = plan.n_responses
        self._practice_intro_shown = False
        self._practice_blocks_seen = len(plan.practice.blocks)
        sidecar["practice"] = plan.practice.summary()

    # ---------------------------------------------------------------- around each trial
    def before_trial(self) -> None:
        """The practice introduction before this run's first practice trial; a break when
        another ``every_n_trials`` main responses are done."""
        if self.plan.block == "practice" and not self._practice_intro_shown:
            self._practice_intro_shown = True
            trials = self.protocol.practice.trials
            self.screen(self.protocol.instructions.practice_intro.format(trials=trials), "practice")
        self._maybe_break()

    def after_trial(self, plan: TrialPlan) -> None:
        """After a practice trial that completed a practice block: its result on screen (once
        more, or done) and in the sidecar."""
        practice = self.plan.practice
        if not is_practice(plan.track) or len(practice.blocks) == self._practice_blocks_seen:
            return
        self._practice_blocks_seen = len(practice.blocks)
        last = practice.blocks[-1]
        self.sidecar["practice"] = practice.summary()
        self.write_sidecar()
        texts = self.protocol.instructions
        values = {"correct": last["correct"], "trials": last["responses"]}
        self.say(
            f"  practice block {last['block']}: {last['correct']}/{last['responses']} correct"
            + ("" if not practice.finished else "; passed" if practice.passed else "; not passed")
        )
        if practice.finished and not practice.passed:
            self.say(
                "  practice criterion not met after the last practice block; main trials follow"
            )
        text = texts.practice_done if practice.finished else texts.practice_again
        self.screen(text.format(**values), "practice_result")

    def _maybe_break(self) -> None:
        every = self.protocol.breaks.every_n_trials
        done = self.plan.n_responses
        if not every or not done or done % every or done == self._last_break_at:
            return
        self._last_break_at = done
        total = self.plan.total_planned_responses
        text = self.protocol.instructions.break_text.format(
            done=done, total=total, block=done // every, blocks=math.ceil(total / every)
        )
        minimum = self.protocol.breaks.min_duration_s
        self.say(
            f"  break after {done} of {total} responses (block {done // every} of "
            f"{math.ceil(total / every)} done)"
            + (f", at least {format_duration(minimum)}" if minimum > 0 else "")
            + ("" if self.presenter.auto_advance else "; the participant's SPACE continues")
        )
        start = self.presenter.clock()
        self.screen(text, "break", min_duration_s=minimum)
        self.run_record.setdefault("breaks", []).append(
            {
                "after_responses": done,
                "block": done // every,
                "start_s": start,
                "duration_s": self.presenter.clock() - start,
            }
        )
        self.write_sidecar()  # a run killed later keeps its breaks in beh.json

    def goodbye(self) -> None:
        """The goodbye screen with the session's duration (session clock: a resumed session's
        time line continues), recorded as ``session_duration_s``."""
        duration_s = float(self.presenter.clock())
        self.sidecar["session_duration_s"] = duration_s
        text = self.protocol.instructions.goodbye.format(duration=format_duration(duration_s))
        self.screen(text, "goodbye")

    # ---------------------------------------------------------------- drawing
    def screen(self, text: str, phase: str, *, min_duration_s: float = 0.0) -> None:
        """A text screen until SPACE, not before ``min_duration_s``. A simulated participant
        (auto-advance) sees it for ``min_duration_s`` (at least one frame) and goes on."""
        presenter = self.presenter
        if not presenter.auto_advance:
            presenter.text_screen(text, phase=phase, min_duration_s=min_duration_s)
            return
        start = presenter.clock()
        while True:
            presenter.draw_text(text)
            advance = None
            if presenter.simulated and min_duration_s > 0:
                advance = max(min_duration_s, presenter.frame_period_s * presenter.speed)
            frame = presenter.flip(phase=phase, advance_s=advance)
            if frame.t - start >= min_duration_s:
                return

    def example(self, runner) -> None:
        """The example of the difference: the foveated image (left) beside its full-resolution
        twin (right) at the easiest practice level of the first condition, with
        ``instructions.example_text``; recorded as the sidecar's ``example``."""
        p = self.protocol
        condition = p.condition(self.plan.condition_order[0])
        level = self.plan.practice.easiest_level(condition.name)
        plan = TrialPlan(
            plan_id=0,
            track="example",
            condition=condition.name,
            level=level,
            seed=int(p.stimulus.seed_pool()[0]),
            conditioning=p.stimulus.conditionings()[0],
            interval_foveated=1,
        )
        images = self._example_images(runner, plan, condition)
        if images is None:
            return
        self.sidecar["example"] = {
            "condition": plan.condition,
            "level": level,
            "seed": plan.seed,
            "conditioning": plan.conditioning,
        }
        gaze_px = runner.geometry.deg_to_image_px(*condition.fixation_deg)
        self._show_pair(
            *images, gaze_px=tuple(float(v) for v in gaze_px), caption=p.instructions.example_text
        )

    def _example_images(self, runner, plan: TrialPlan, condition):
        """(foveated, twin) images, generated while a waiting text is shown; None (and a line
        to the operator) when the generator fails or takes longer than the deadline."""
        sources = runner.sources
        twin, twin_ticket = sources.request_twin(plan)
        spec = layout_spec(condition=condition, level=plan.level)
        gaze_px = tuple(float(v) for v in runner.geometry.deg_to_image_px(*condition.fixation_deg))
        ticket = sources.service.submit(sources.foveated_request(plan, spec, gaze_px))
        presenter, start = self.presenter, time.perf_counter()
        limit_s = 2 * self.protocol.generation.deadline_s
        while not (ticket.done() and (twin is not None or twin_ticket.done())):
            if time.perf_counter() - start > limit_s:
                self.say(f"  the example was not ready within {limit_s:g} s: skipped")
                ticket.cancel()  # not ahead of the first trial's request in the queue
                return None
            presenter.draw_text(self.protocol.instructions.example_wait)
            if presenter.simulated:
                ticket.wait(presenter.frame_period_s)
            presenter.flip(phase="example_wait")
            presenter.check_escape()
        try:
            foveated = ticket.result().image
            twin = twin.image if twin is not None else twin_ticket.result().image
        except Exception as error:  # noqa: BLE001 - the session goes on without its example
            self.say(f"  the example could not be generated ({error}): skipped")
            return None
        return foveated, twin

    def _show_pair(self, foveated, twin, *, gaze_px, caption: str) -> None:
        """Both images side by side, scaled to fit, where the eyes rest on the foveated one
        (``gaze_px``: image pixels from the top-left) the trials' fixation mark inside a ring,
        the caption below, the pair and the caption centred on the screen together; until
        SPACE. The caption keeps the size of the session's other texts, so where it would not
        fit below the pair (many pixels per degree, a small screen) the images are smaller."""
        from psychopy import visual

        presenter = self.presenter
        win_w, win_h = (float(v) for v in presenter.win.size)
        h, w = foveated.shape[:2]
        text = visual.TextStim(  # the size and line length of the session's other texts
            presenter.win,
            text=caption,
            units="pix",
            height=presenter.text_height_px,
            color=presenter.ink,
            wrapWidth=presenter.text_wrap_px,
            anchorVert="top",
        )
        caption_h = float(text.boundingBox[1])
        below = 0.04 * win_h  # from the images to the caption
        room_h = 0.96 * win_h - below - caption_h  # the images' height at most
        scale = max(0.05, min(1.0, 0.46 * win_w / w, 0.7 * win_h / h, room_h / h))
        image_y = (below + caption_h) / 2  # the images' centre: the whole block centred
        gap = 0.02 * win_w
        stims = []
        for image, side in ((foveated, -1), (twin, 1)):
            stim = presenter.image_stim(image)
            stim.size = (w * scale, h * scale)
            stim.pos = (side * (w * scale / 2 + gap / 2), image_y)
            stims.append(stim)
        left_x, centre_y = stims[0].pos
        rest = (left_x + (gaze_px[0] - w / 2) * scale, centre_y + (h / 2 - gaze_px[1]) * scale)
        ppd = presenter.display.pixels_per_degree
        mark_r = self.protocol.fixation.mark_size_deg * ppd / 2
        ring = visual.Circle(
            presenter.win,
            radius=max(6.0, 0.5 * ppd * scale, mark_r + 4.0),
            pos=rest,
            fillColor=None,
            lineColor=presenter.ink,
            lineWidth=2,
            units="pix",
            edges=48,
        )
        on_image = 0 <= gaze_px[0] < w and 0 <= gaze_px[1] < h  # off the image: no ring, no mark
        if on_image:
            stims.append(ring)
        text.pos = (0.0, image_y - h * scale / 2 - below)

        def draw() -> None:
            for stim in stims:
                stim.draw()
            if on_image:  # the mark the participant is told to look at, as in the trials
                presenter.draw_fixation_px(rest)
            text.draw()

        presenter.clear_keys()
        while True:
            draw()
            presenter.flip(phase="example")
            if presenter.auto_advance:
                return
            pressed = presenter.keys(["space", "escape"])
            if "escape" in pressed and presenter.confirm_quit():
                from study.presenter import QuitRequested

                raise QuitRequested()
            if "space" in pressed:
                return
