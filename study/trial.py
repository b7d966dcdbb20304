"""One gaze-contingent 2AFC trial, frame by frame.

Fixation target -> gaze held inside the tolerance for the hold time -> the foveated image is
requested at the measured gaze (the reference was requested at trial start: the full-resolution
twin, or with ``[stimulus] reference = "original"`` the photograph of the seed's scene; neither
blocks the frame loop) -> interval 1, mask, interval 2 with the gaze checked on every frame -> the
response (keys 1/2 or left/right; or a simulated observer) -> optional feedback. Scene models make
both images from the seed's scene; the row records its hash (``scene``) and the ``reference``.

A fixation break, a missed generation deadline (without a cached stimulus) or a missing answer
aborts the trial: it is logged (flagged) and its plan re-queued.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from generator.errors import FoveaError
from protocol.levels import layout_spec
from protocol.schema import Protocol
from protocol.session_data import new_row
from study.generation import GenerationRequest, GenerationResult, GenerationService
from study.observers import ObserverTrial
from study.presenter import Presenter, QuitRequested
from study.procedures import TrialPlan
from study.service.cache import LruCache
from study.service.errors import GenerationError


@dataclass
class TrialOutcome:
    """What a trial produced: the ``beh.tsv`` row and the scheduler outcome."""

    row: dict
    requeue: bool
    correct: bool | None
    frame_intervals_s: list[float] = field(default_factory=list)


class GazeMonitor:
    """Per-frame fixation check around a target.

    A valid sample outside ``tolerance_deg`` is a break at once; invalid samples (blinks, loss)
    are tolerated for ``max_invalid_s`` in a row.
    """

    def __init__(
        self, *, x_deg: float, y_deg: float, tolerance_deg: float, max_invalid_s: float
    ) -> None:
        self.x, self.y = x_deg, y_deg
        self.tolerance = tolerance_deg
        self.max_invalid_s = max_invalid_s
        self._invalid_since: float | None = None

    def inside(self, sample) -> bool:
        return bool(
            sample is not None
            and sample.valid
            and math.hypot(sample.x_deg - self.x, sample.y_deg - self.y) <= self.tolerance
        )

    def broken(self, *, t: float, sample) -> bool:
        """True when this frame's sample ends the fixation."""
        if sample is None or not sample.valid:
            if self._invalid_since is None:
                self._invalid_since = t
            return t - self._invalid_since > self.max_invalid_s
        self._invalid_since = None
        return not self.inside(sample)


def trial_rng(*, session_seed: int, plan: TrialPlan, purpose: str) -> np.random.Generator:
    """A generator fixed by the session seed, the plan's track and position and a purpose.

    Keying on the plan (not the trial number) gives a plan the same answer whether it runs first
    time or after re-queues or a resume.
    """
    key = [
        session_seed,
        zlib.crc32(plan.track.encode()),
        plan.track_index,
        zlib.crc32(purpose.encode()),
    ]
    return np.random.default_rng(key)


def _request_elapsed_s(ticket) -> float:
    """Seconds since the gaze-contingent request; for a kept speculation, since it was resolved
    (the participant's gaze was measured), not since it started at the fixation target."""
    start = ticket.resolved_s
    if not ticket.reused_speculative or start is None:
        return ticket.elapsed_s()
    end = ticket.finished_s if ticket.finished_s is not None else time.perf_counter()
    return max(0.0, end - start)


def _shared_scene(foveated: GenerationResult, reference: GenerationResult) -> str | None:
    """The sha256 of the scene both images were made from (None for models without scenes).

    Raises:
        FoveaError: the two come from different scenes (a stimulus set built with other scenes
            would have been refused at start; this guards the invariant).
    """
    hashes = [(r.sidecar.get("scene") or {}).get("sha256") for r in (foveated, reference)]
    if hashes[0] is not None and hashes[1] is not None and hashes[0] != hashes[1]:
        raise FoveaError(
            f"the foveated image (scene {hashes[0][:12]}...) and its reference (scene "
            f"{hashes[1][:12]}...) come from different scenes"
        )
    return hashes[0] or hashes[1]


class TrialRunner:
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
    ) -> None:
        self.p = protocol
        self.stimulus_set = stimulus_set
        self.view = presenter
        self.tracker = tracker
        self.service = service
        self.geometry = geometry
        self.observer = observer
        self.session_seed = session_seed
        self.participant = participant
        self.session = session
        self.fallbacks = LruCache(256)  # deadline-miss stand-ins, keyed by _fallback_key
        self._late: list[tuple[tuple, object]] = []  # (key, ticket) finished after their deadline
        self.upcoming = None  # callable -> (seed, conditioning) of the next new plan, or None
        self.calibrate_requested = False

    # ---------------------------------------------------------------- helpers
    def _cache_key(self, plan: TrialPlan, gaze_deg: tuple[float, float]) -> tuple | None:
        """Fallback-cache key: the plan's stimulus at its fixation target, or None when the gaze
        was too far from the target for the image to stand in for one made at the target."""
        fx, fy = self.p.condition(plan.condition).fixation_deg
        if (
            math.hypot(gaze_deg[0] - fx, gaze_deg[1] - fy)
            > self.p.generation.cache_gaze_tolerance_deg
        ):
            return None
        return (plan.seed, plan.conditioning, plan.condition, plan.level)

    def _keep_late(self, key: tuple | None, ticket) -> None:
        if key is not None:
            self._late.append((key, ticket))

    def _harvest_late(self) -> None:
        keep = []
        for key, ticket in self._late:
            if ticket.done():
                try:
                    self.fallbacks.put(key, ticket.result())
                except Exception:  # noqa: BLE001 - a failed late request is simply not cached
                    pass
            else:
                keep.append((key, ticket))
        self._late = keep

    def _set_image(self, entry: dict | None) -> GenerationResult | None:
        """A stimulus-set image as a generation result (no generator time)."""
        if entry is None:
            return None
        return GenerationResult(
            image=self.stimulus_set.read(entry),
            tokens=int(entry["tokens"]),
            tokens_full=int(entry["tokens_full"]),
            token_ratio=float(entry["token_ratio"]),
            seconds=0.0,
            sidecar={
                "stimulus_set": str(self.stimulus_set.directory),
                "file": entry["file"],
                "scene": entry.get("scene"),
            },
        )

    def _set_twin_entry(self, key: tuple) -> dict | None:
        if self.stimulus_set is None:
            return None
        return self.stimulus_set.reference_entry(seed=key[0], conditioning=key[1])

    def _twin_from_set(self, key: tuple) -> GenerationResult | None:
        return self._set_image(self._set_twin_entry(key))

    def _fallback_from_set(self, plan: TrialPlan) -> GenerationResult | None:
        if self.stimulus_set is None:
            return None
        entry = self.stimulus_set.foveated_entry(
            seed=plan.seed,
            conditioning=plan.conditioning,
            condition=plan.condition,
            level=plan.level,
        )
        return self._set_image(entry)

    def _prefetch_next_twin(self) -> None:
        """Have the service generate the next plan's twin into its cache now, while the
        intervals run and the generator is idle (not when a stimulus set holds it)."""
        if self.upcoming is None:
            return
        key = self.upcoming()
        if key is None or self._set_twin_entry(key) is not None:
            return
        self.service.prefetch_twin(seed=key[0], conditioning=key[1])

    def _request_twin(self, plan: TrialPlan, row: dict):
        """The plan's twin (stimulus set, or the service's cache) or the ticket generating it.

        Returns:
            (twin, None) when it is here (``twin_latency_s`` 0), else (None, ticket).
        """
        from generator.layout import LayoutSpec

        twin = self._twin_from_set((plan.seed, plan.conditioning))
        if twin is None:
            ticket = self.service.submit(
                GenerationRequest(
                    kind="full",
                    seed=plan.seed,
                    conditioning=plan.conditioning,
                    spec=LayoutSpec(mode="full"),
                    gaze_px=None,
                )
            )
            if not ticket.cache_hit:
                return None, ticket
            twin = ticket.result()
        row["twin_latency_s"] = 0.0
        return twin, None

    def _observer_answer(self, plan, foveated, twin, gaze_px):
        rng = trial_rng(session_seed=self.session_seed, plan=plan, purpose="observer")
        return self.observer.respond(
            trial=ObserverTrial(
                condition=plan.condition,
                level=plan.level,
                interval_foveated=plan.interval_foveated,
                foveated=foveated,
                twin=twin,
                gaze_px=gaze_px,
            ),
            rng=rng,
        )

    def _abort_notice(self, text: str) -> None:
        n = self.view.frames_for(1.0) if not self.view.simulated else 1
        for _ in range(n):
            self.view.draw_text(text)
            self.view.flip(phase="abort")

    # ---------------------------------------------------------------- the trial
    def run(self, *, plan: TrialPlan, trial: int) -> TrialOutcome:
        """Present ``plan`` as trial number ``trial``; returns the row to log."""
        p, view = self.p, self.view
        condition = p.condition(plan.condition)
        fx, fy = condition.fixation_deg
        spec = layout_spec(condition=condition, level=plan.level)
        win = view.win
        self._harvest_late()
        view.trial = trial
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
            reference=self.p.stimulus.reference,
        )
        n_gaze_before = len(view.stats.gaze_to_flip_s)
        intervals_before = len(win.frameIntervals)
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
            outcome = self._run_phases(plan=plan, row=row, spec=spec, fx=fx, fy=fy)
            result_label = "response" if not outcome.requeue else (row["abort_reason"] or "requeue")
        finally:
            self.tracker.trial_end(result=result_label)
            win.recordFrameIntervals = False
            view.trial = None
        intervals = [float(v) for v in win.frameIntervals[intervals_before:]]
        limit = 1.5 * view.frame_period_s
        row["dropped_frames"] = int(sum(v > limit for v in intervals))
        gaze_lat = view.stats.gaze_to_flip_s[n_gaze_before:]
        row["gaze_to_flip_median_s"] = float(np.median(gaze_lat)) if gaze_lat else None
        outcome.frame_intervals_s = intervals
        return outcome

    def _run_phases(
        self, *, plan: TrialPlan, row: dict, spec, fx: float, fy: float
    ) -> TrialOutcome:
        p, view = self.p, self.view
        timing = p.timing
        # The twin does not depend on gaze: ask for it first (the service may have it cached).
        twin, twin_ticket = self._request_twin(plan, row)

        for _ in range(view.frames_for(timing.iti_s)):
            view.flip(phase="iti")
            view.check_escape()

        # ---- fixation: hold inside the tolerance
        monitor = GazeMonitor(
            x_deg=fx,
            y_deg=fy,
            tolerance_deg=p.fixation.tolerance_deg,
            max_invalid_s=p.fixation.max_invalid_s,
        )
        self.tracker.set_target(x_deg=fx, y_deg=fy)
        self.tracker.message(f"FIXATION_ON {fx:.2f} {fy:.2f}")
        speculation = self._speculate(plan, spec, fx, fy)
        hold: list[tuple[float, float, float]] = []
        hold_start: float | None = None
        phase_start = view.clock()
        view.clear_keys()
        while True:
            view.draw_fixation(fx, fy)
            frame = view.flip(phase="fixation")
            if not view.simulated:
                pressed = view.keys(["escape", "c"])
                if "escape" in pressed and view.confirm_quit():
                    raise QuitRequested()
                if "c" in pressed:
                    self.calibrate_requested = True
            if self.calibrate_requested:
                self.calibrate_requested = False
                self._calibrate()
                hold, hold_start, phase_start = [], None, view.clock()
                continue
            s = frame.sample
            if monitor.inside(s):
                if hold_start is None:
                    hold_start = frame.t
                hold.append((frame.t, s.x_deg, s.y_deg))
                if frame.t - hold_start >= timing.fixation_hold_s:
                    break
            else:
                hold, hold_start = [], None
            if frame.t - phase_start > timing.fixation_timeout_s:
                self.tracker.message("FIXATION_TIMEOUT")
                self.tracker.drift_correct(x_deg=fx, y_deg=fy)
                hold, hold_start, phase_start = [], None, view.clock()
        t_end = hold[-1][0]
        recent = [(x, y) for (t, x, y) in hold if t >= t_end - timing.gaze_average_s] or [
            hold[-1][1:]
        ]
        gx = float(np.mean([g[0] for g in recent]))
        gy = float(np.mean([g[1] for g in recent]))
        row["gaze_x_deg"], row["gaze_y_deg"] = gx, gy
        gaze_px = tuple(float(v) for v in self.geometry.deg_to_image_px(gx, gy))

        # ---- foveated generation at the measured gaze; keep the frame loop running
        if speculation is not None:
            fov_ticket = self.service.resolve(
                speculation, gaze_px=gaze_px, tolerance_deg=p.generation.speculation_tolerance_deg
            )
            row["speculation_kept"] = int(fov_ticket is speculation)
        else:
            fov_ticket = self.service.submit(self._foveated_request(plan, spec, gaze_px))
        self.tracker.message(f"GENERATION_REQUEST gaze {gx:.3f} {gy:.3f}")
        foveated: GenerationResult | None = None
        monitor = GazeMonitor(
            x_deg=fx,
            y_deg=fy,
            tolerance_deg=p.fixation.tolerance_deg,
            max_invalid_s=p.fixation.max_invalid_s,
        )
        last = time.perf_counter()
        while True:
            view.draw_fixation(fx, fy)
            advance = None
            if view.simulated:
                # Simulated time follows real time while waiting: generation is real work.
                fov_ticket.wait(view.frame_period_s)
                now = time.perf_counter()
                advance, last = max(now - last, view.frame_period_s), now
            frame = view.flip(phase="wait", advance_s=advance)
            view.check_escape()
            if monitor.broken(t=frame.t, sample=frame.sample):
                fov_ticket.cancel()
                self._keep_late(self._cache_key(plan, (gx, gy)), fov_ticket)
                return self._abort(plan, row, reason="fixation_break")
            twin_ready = twin is not None or twin_ticket.done()
            # The deadline is checked before "done": an image that finished after the deadline
            # within this frame's wait missed it (a finished ticket's elapsed time is its latency).
            if (
                not row["deadline_missed"]
                and _request_elapsed_s(fov_ticket) > p.generation.deadline_s
            ):
                row["deadline_missed"] = 1
                self.tracker.message("GENERATION_DEADLINE_MISSED")
                self._harvest_late()
                cached = self.fallbacks.get(self._cache_key(plan, (fx, fy)))
                if cached is None and p.generation.on_deadline_miss == "cached":
                    cached = self._fallback_from_set(plan)
                if p.generation.on_deadline_miss == "cached" and cached is not None and twin_ready:
                    self._keep_late(self._cache_key(plan, (gx, gy)), fov_ticket)
                    foveated = cached
                    row["cached_stimulus"] = 1
                    row["gen_latency_s"] = _request_elapsed_s(fov_ticket)
                    break
                if plan.attempt < p.generation.max_deadline_misses:
                    self._keep_late(self._cache_key(plan, (gx, gy)), fov_ticket)
                    row["gen_latency_s"] = _request_elapsed_s(fov_ticket)
                    return self._abort(plan, row, reason="deadline")
                # Missed too often: wait for this image and show it late (flagged).
                self.tracker.message("GENERATION_SHOWN_LATE")
            if fov_ticket.done() and twin_ready:
                break
        if foveated is None:
            try:
                foveated = fov_ticket.result()
            except GenerationError as error:  # a crashed generator is restarted: try again
                if not error.retryable:
                    raise
                self.tracker.message(f"GENERATION_FAILED {error}")
                return self._abort(plan, row, reason="generator_crash")
            row["gen_latency_s"] = _request_elapsed_s(fov_ticket)
            key = self._cache_key(plan, (gx, gy))
            if key is not None:
                self.fallbacks.put(key, foveated)
        if twin is None:
            try:
                twin = twin_ticket.result()
            except GenerationError as error:
                if not error.retryable:
                    raise
                self.tracker.message(f"GENERATION_FAILED {error}")
                return self._abort(plan, row, reason="generator_crash")
            row["twin_latency_s"] = twin_ticket.latency_s
        self._prefetch_next_twin()
        row["scene"] = _shared_scene(foveated, twin)
        row["tokens"] = foveated.tokens
        row["tokens_full"] = foveated.tokens_full
        row["token_ratio"] = foveated.token_ratio

        # ---- two intervals with a mask between them; gaze checked every frame
        images = {plan.interval_foveated: foveated.image, 3 - plan.interval_foveated: twin.image}
        stims = {k: view.image_stim(v) for k, v in images.items()}
        h, w = twin.image.shape[:2]
        mask = view.mask_stim(
            width_px=w,
            height_px=h,
            rng=trial_rng(session_seed=self.session_seed, plan=plan, purpose=f"mask{plan.attempt}"),
        )
        n_stim = view.frames_for(timing.stimulus_duration_s)
        n_mask = view.frames_for(timing.mask_duration_s)
        n_isi = max(0, view.frames_for(timing.isi_s) - n_mask)
        show_mark = p.fixation.show_during_stimulus
        seen: list[tuple[float, float]] = []
        schedule = (
            [("interval1", stims[1])] * n_stim
            + [("isi", mask)] * n_mask
            + [("isi", None)] * n_isi
            + [("interval2", stims[2])] * n_stim
        )
        for i, (phase, stim) in enumerate(schedule):
            if stim is not None:
                stim.draw()
            if show_mark or phase == "isi":
                view.draw_fixation(fx, fy)
            frame = view.flip(phase=phase)
            if i == 0:
                row["onset_s"] = frame.t
                self.tracker.message(f"STIMULUS_ONSET trial {row['trial']}")
            elif i == n_stim + n_mask + n_isi:
                self.tracker.message("STIMULUS2_ONSET")
            view.check_escape()
            if monitor.broken(t=frame.t, sample=frame.sample):
                return self._abort(plan, row, reason="fixation_break")
            if frame.sample is not None and frame.sample.valid and phase != "isi":
                seen.append((frame.sample.x_deg, frame.sample.y_deg))
        self.tracker.message("STIMULUS_OFF")

        # ---- response
        view.clear_keys()
        view.draw_text(p.instructions.response_prompt, y_deg=3.0)
        view.draw_fixation(fx, fy)
        prompt_frame = view.flip(phase="response")
        if self.observer is not None:
            mean_gaze = np.mean(seen, axis=0) if seen else (gx, gy)
            seen_px = tuple(float(v) for v in self.geometry.deg_to_image_px(*mean_gaze))
            answer = self._observer_answer(plan, foveated.image, twin.image, seen_px)
            view.clock.advance(answer.rt_s)
            response, rt_s = answer.response, answer.rt_s
            row["p_correct_model"] = answer.p_correct
        else:
            response, rt_s = self._wait_for_key(prompt_frame.t, fx, fy)
            if response is None:
                return self._abort(plan, row, reason="no_response")
        correct = response == plan.interval_foveated
        row["response"], row["rt_s"], row["correct"] = response, rt_s, int(correct)
        self.tracker.message(f"RESPONSE {response} correct {int(correct)}")

        # ---- feedback
        if p.feedback.enabled:
            color = "green" if correct else "red"
            for _ in range(view.frames_for(timing.feedback_duration_s)):
                view.draw_fixation(fx, fy, color=color)
                view.flip(phase="feedback")
        return TrialOutcome(row=row, requeue=False, correct=correct)

    def _wait_for_key(self, t0: float, fx: float, fy: float) -> tuple[int | None, float | None]:
        view, window = self.view, self.p.timing.response_window_s
        keys = ["1", "2", "num_1", "num_2", "left", "right", "escape"]
        from study.presenter import RESPONSE_KEYS

        while True:
            view.draw_text(self.p.instructions.response_prompt, y_deg=3.0)
            view.draw_fixation(fx, fy)
            frame = view.flip(phase="response")
            for key in view.keys(keys):
                if key == "escape":
                    if view.confirm_quit():
                        raise QuitRequested()
                    continue
                return RESPONSE_KEYS[key], frame.t - t0
            if window > 0 and frame.t - t0 > window:
                return None, None

    def _foveated_request(self, plan: TrialPlan, spec, gaze_px) -> GenerationRequest:
        return GenerationRequest(
            kind="foveated",
            seed=plan.seed,
            conditioning=plan.conditioning,
            spec=spec,
            gaze_px=gaze_px,
            deadline_s=self.p.generation.deadline_s,
        )

    def _speculate(self, plan: TrialPlan, spec, fx: float, fy: float):
        """Start generating at the fixation target before the eyes get there (when the service
        speculates; else None); ``resolve`` later keeps it or regenerates at the measured gaze."""
        if not self.p.generation.speculative:
            return None
        target_px = tuple(float(v) for v in self.geometry.deg_to_image_px(fx, fy))
        return self.service.submit_speculative(self._foveated_request(plan, spec, target_px))

    def _abort(self, plan: TrialPlan, row: dict, *, reason: str) -> TrialOutcome:
        # A twin still being generated goes on into the service's cache for the re-queued plan.
        row["abort_reason"] = reason
        row["fixation_break"] = 1 if reason == "fixation_break" else 0
        self.tracker.message(f"TRIAL_ABORTED {reason}")
        texts = {
            "fixation_break": "Please keep your eyes on the mark.",
            "deadline": "One moment...",
            "generator_crash": "One moment...",
            "no_response": "Please answer with 1 or 2.",
        }
        self._abort_notice(texts[reason])
        return TrialOutcome(row=row, requeue=True, correct=None)

    def _calibrate(self) -> None:
        result = self.tracker.calibrate()
        if result is not None and self.on_calibration is not None:
            self.on_calibration(result)

    on_calibration = None  # set by the session: records calibrations in the sidecar
