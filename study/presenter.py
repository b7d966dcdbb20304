"""The PsychoPy window: drawing, flipping, per-frame gaze sampling, keys and screenshots.

Every frame goes through ``Presenter.flip``: it flips (the frame's time and any onset messages
stamped from the flip, ``win.callOnFlip``), reads the tracker's newest sample, logs it to the
physio file when it is new, records the gaze-sample-to-flip latency and, during a trial, checks
that the tracker is connected and recording. In simulated sessions the session
clock is a ``SimClock`` that ``flip`` advances by ``speed`` frame periods, so no real time is
waited for fixation holds or stimulus durations (the window still draws every shown frame).
Durations are counted in frames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from protocol.run_settings import frames_for
from protocol.schema import Protocol
from study.frames import DROPPED_FRAME_PERIODS
from study.operator import OPERATOR_KEYS
from study.session_display import background_rgb, ink_color
from study.trackers.base import TrackerLinkLost

RESPONSE_KEYS = {"1": 1, "num_1": 1, "left": 1, "2": 2, "num_2": 2, "right": 2}
# A trial's screens after its outcome is decided (the feedback, the abort notice, the quit
# question): a recording stopped or a link lost there does not undo the outcome. The runner
# asks whether the tracker still records when the trial ends; the next trial's first frame
# finds a lost link.
OUTCOME_PHASES = frozenset({"feedback", "abort", "escape_confirm"})


class SimClock:
    """A simulated session clock: seconds advance only when told (``advance``).

    Callable (the tracker interface's clock) and PsychoPy-like (``getTime``).
    """

    def __init__(self, *, start_s: float = 0.0) -> None:
        self._t = float(start_s)

    def __call__(self) -> float:
        return self._t

    def getTime(self) -> float:  # noqa: N802 - PsychoPy's name
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += max(0.0, float(seconds))


class RealClock:
    """Seconds since the session started (monotonic); ``start_s``: time already elapsed (a
    resumed session continues its time line)."""

    def __init__(self, *, start_s: float = 0.0) -> None:
        self._t0 = time.perf_counter() - float(start_s)

    def __call__(self) -> float:
        return time.perf_counter() - self._t0

    def getTime(self) -> float:  # noqa: N802
        return self()

    def advance(self, seconds: float) -> None:
        """Real time cannot be advanced; waiting is done by flipping frames."""


@dataclass
class FrameStats:
    """Per-frame measurements of the current run (for the timing report)."""

    gaze_to_flip_s: list[float] = field(default_factory=list)
    frames: int = 0


@dataclass
class Frame:
    """One flipped frame: its time on the session clock and the newest gaze sample."""

    t: float
    sample: object | None  # GazeSample


class QuitRequested(Exception):
    """The experimenter confirmed Escape: end the session, keeping the data."""


class RecordingStopped(Exception):
    """The tracker stopped recording during a trial (an abort on the Host PC): the trial is
    aborted and re-queued, and the session pauses until recording restarts."""


class Presenter:
    """Draws the study's screens in a PsychoPy window.

    Args:
        protocol: the protocol (display geometry, fixation mark, texts).
        win: an open ``psychopy.visual.Window`` in ``pix`` units.
        clock: ``SimClock`` or ``RealClock``.
        tracker: the gaze source (``sample()`` each frame).
        physio: ``PhysioLog`` for the per-frame samples (or None).
        simulated: simulated clock (``SimClock``, ``speed`` frame periods per flip).
        speed: simulated frame periods per flip.
        auto_advance: text screens show one frame and go on (simulated observers press no keys).
        frame_timer: a ``study.frames.FrameTimer`` that paces the flips of a window without vsync
            (``fovea bench realtime`` on Xvfb) and logs each flip's time and phase; None: the
            display paces them.
    """

    def __init__(
        self,
        *,
        protocol: Protocol,
        win,
        clock,
        tracker,
        physio,
        simulated: bool,
        speed: int = 1,
        auto_advance: bool | None = None,
        frame_timer=None,
    ) -> None:
        from psychopy import visual

        self.protocol = protocol
        self.win = win
        self.clock = clock
        self.tracker = tracker
        self.physio = physio
        self.simulated = simulated
        self.speed = speed if simulated else 1
        self.auto_advance = simulated if auto_advance is None else auto_advance
        self.frame_timer = frame_timer
        self.frame_period_s = 1.0 / protocol.display.refresh_hz
        # PsychoPy counts an interval above refreshThreshold as a dropped frame (its default,
        # 1.2 periods of a rate it assumes, is not the protocol's).
        win.refreshThreshold = DROPPED_FRAME_PERIODS * self.frame_period_s
        # The screen (phase) shown during each of win.frameIntervals, index for index.
        self.interval_phases: list[str] = []
        self._shown_phase = "setup"
        self.flipped_perf_s: float | None = None  # time.perf_counter() right after the last flip
        self._operator_keys: set[str] = set()  # pressed during a trial, for between trials
        self.display = protocol.display.geometry()
        self.stats = FrameStats()
        self.trial: int | None = None
        self.last_sample = None
        self.screenshot_dir: Path | None = None
        self.screenshots: dict[str, object] = {}
        self._visual = visual
        # Black on the default mid-grey, white on a dark background (INK_MIN_GRAY).
        self.ink = ink_color(protocol.display.background_gray)
        ppd = self.display.pixels_per_degree
        size = protocol.fixation.mark_size_deg * ppd
        # A bull's-eye and cross, the target shape Thaler et al. (2013) found gives the most
        # stable fixation; its inner dot and cross bars are 1/5 of the diameter (their ABC
        # target's are 1/3: 0.2 of 0.6 deg). docs/protocol.md gives the geometry.
        self._mark_outer = visual.Circle(
            win, radius=size / 2, fillColor=self.ink, lineColor=None, units="pix", edges=48
        )
        bg = background_rgb(protocol)
        self._mark_h = visual.Rect(
            win, width=size, height=size / 5, fillColor=bg, lineColor=None, units="pix"
        )
        self._mark_v = visual.Rect(
            win, width=size / 5, height=size, fillColor=bg, lineColor=None, units="pix"
        )
        self._mark_inner = visual.Circle(
            win, radius=size / 10, fillColor=self.ink, lineColor=None, units="pix", edges=24
        )
        # Every text the participant reads has this size and line length (a caption too); one
        # taller than the window is set smaller (draw_text).
        self.text_wrap_px = min(25 * ppd, 0.9 * float(win.size[0]))
        self.text_height_px = min(0.6 * ppd, self.text_wrap_px / 30)
        self._text = visual.TextStim(
            win,
            text="",
            units="pix",
            height=self.text_height_px,
            color=self.ink,
            wrapWidth=self.text_wrap_px,
            alignText="center",
        )
        self._laid_out: str | None = None  # the text self._text holds (draw_text)

    # ---------------------------------------------------------------- coordinates
    def deg_to_pix(self, x_deg: float, y_deg: float) -> tuple[float, float]:
        """Degrees from the screen centre -> PsychoPy ``pix`` (origin centre, y up)."""
        sx, sy = self.display.deg_to_screen_px(x_deg, y_deg)
        return float(sx) - self.display.width_px / 2, self.display.height_px / 2 - float(sy)

    def frames_for(self, seconds: float) -> int:
        """Number of flips that show ``seconds`` (at least one when seconds > 0)."""
        return frames_for(seconds, flip_s=self.frame_period_s * self.speed)

    # ---------------------------------------------------------------- drawing
    def draw_fixation(self, x_deg: float, y_deg: float, *, color=None) -> None:
        self.draw_fixation_px(self.deg_to_pix(x_deg, y_deg), color=color)

    def draw_fixation_px(self, pos: tuple[float, float], *, color=None) -> None:
        """The fixation mark at ``pos`` (PsychoPy ``pix``: from the window centre, y up), in
        ``color`` (None: the texts' ``ink``)."""
        color = self.ink if color is None else color
        for stim in (self._mark_outer, self._mark_h, self._mark_v, self._mark_inner):
            stim.pos = pos
        self._mark_outer.fillColor = color
        self._mark_inner.fillColor = color
        for stim in (self._mark_outer, self._mark_h, self._mark_v, self._mark_inner):
            stim.draw()

    def draw_text(self, text: str, *, y_deg: float = 0.0) -> None:
        """``text`` centred at ``y_deg``, in the session's text size; a text taller than the
        window (a long instruction in another language at many px/deg) in a smaller one that
        fits, so its first and last lines are not off the screen."""
        stim = self._text
        if text != self._laid_out:
            stim.height = self.text_height_px
            stim.text = text
            room = 0.94 * float(self.win.size[1])
            tall = float(stim.boundingBox[1])
            if tall > room:
                stim.height = self.text_height_px * room / tall
            self._laid_out = text
        stim.pos = (0.0, self.deg_to_pix(0.0, y_deg)[1])
        stim.draw()

    def image_stim(self, image: np.ndarray):
        """An ``ImageStim`` showing ``image`` (H, W, 3 uint8) 1:1 at the screen centre."""
        from PIL import Image

        h, w = image.shape[:2]
        return self._visual.ImageStim(
            self.win,
            image=Image.fromarray(image),
            units="pix",
            size=(w, h),
            pos=(0.0, 0.0),
            interpolate=False,
        )

    def mask_stim(self, *, width_px: int, height_px: int, rng: np.random.Generator):
        """A noise mask: 8x8-pixel blocks of random grey (breaks the afterimage of interval 1)."""
        blocks = rng.integers(
            0, 256, size=(math.ceil(height_px / 8), math.ceil(width_px / 8)), dtype=np.uint8
        )
        noise = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)[:height_px, :width_px]
        return self.image_stim(np.repeat(noise[:, :, None], 3, axis=2))

    # ---------------------------------------------------------------- frames
    def flip(
        self,
        *,
        phase: str,
        advance_s: float | None = None,
        messages: tuple[str, ...] = (),
        timing_phase: str | None = None,
    ) -> Frame:
        """Flip, advance a simulated clock, sample gaze and log it.

        The frame's time is stamped from the flip itself (``win.callOnFlip``), and ``messages``
        go to the tracker from there too, so an onset message carries the flip's time.

        Args:
            phase: label for the physio log and screenshots.
            advance_s: simulated sessions: seconds to advance instead of ``speed`` frames.
            messages: tracker messages to send at the flip (``STIMULUS_ONSET``, ``SYNCTIME``,
                ``!V IMGLOAD``...).
            timing_phase: the phase this frame's interval counts for in ``interval_phases``
                (default ``phase``; the mask is logged as ``isi`` but timed as ``mask``).

        Raises:
            TrackerLinkLost: during a trial, the link to the tracker is down.
            RecordingStopped: during a trial, the tracker is no longer recording.
            Neither is raised in ``OUTCOME_PHASES``.
        """
        if self.screenshot_dir is not None and phase not in self.screenshots:
            self.screenshots[phase] = self.win.getMovieFrame(buffer="back")
            self.screenshots[phase].save(self.screenshot_dir / f"{phase}.png")
        if self.frame_timer is not None:
            self.frame_timer.wait()
        if self.simulated:  # the simulated flip happens at the advanced time
            self.clock.advance(self.frame_period_s * self.speed if advance_s is None else advance_s)
        stamp: list[float] = []
        self.win.callOnFlip(self._on_flip, stamp, messages)
        self.win.flip()
        self.flipped_perf_s = time.perf_counter()
        self._track_interval_phases(timing_phase or phase)
        if self.frame_timer is not None:
            self.frame_timer.flipped(phase)
        t = stamp[0] if stamp else self.clock()
        sample = self.tracker.sample() if self.tracker is not None else None
        self.last_sample = sample
        self.stats.frames += 1
        if sample is not None:
            if sample.valid:
                self.stats.gaze_to_flip_s.append(t - sample.time_s)
            # The same sample again (no newer one yet) is not logged twice.
            if self.physio is not None and getattr(sample, "is_new", True):
                self.physio.add(
                    time_s=sample.time_s,
                    x_deg=sample.x_deg,
                    y_deg=sample.y_deg,
                    valid=sample.valid,
                    trial=self.trial,
                    phase=phase,
                )
        if self.trial is not None and self.tracker is not None and phase not in OUTCOME_PHASES:
            self._check_tracker()
        return Frame(t=t, sample=sample)

    def _track_interval_phases(self, phase: str) -> None:
        """An interval PsychoPy just recorded (``recordFrameIntervals``) measured how long the
        previous screen stayed up: it counts for that screen's phase."""
        n = len(self.win.frameIntervals)
        if len(self.interval_phases) > n:  # the intervals were cleared
            del self.interval_phases[n:]
        self.interval_phases.extend([self._shown_phase] * (n - len(self.interval_phases)))
        self._shown_phase = phase

    def _on_flip(self, stamp: list[float], messages: tuple[str, ...]) -> None:
        """Called by PsychoPy right after the buffer swap: the frame's time, then the messages."""
        stamp.append(self.clock())
        if self.tracker is not None:
            for text in messages:
                self.tracker.message(text)

    def _check_tracker(self) -> None:
        """Every frame of a trial: the link is up and the tracker records."""
        if not self.tracker.is_connected():
            edf = getattr(self.tracker, "edf_name", None)
            kept = f" ({edf}.EDF stays on the Host PC; the resume fetches it)" if edf else ""
            raise TrackerLinkLost(
                f"the link to the eye tracker was lost during a trial{kept}; everything up to "
                "the last completed trial is saved: reconnect, then continue with --resume"
            )
        if not self.tracker.is_recording():
            raise RecordingStopped()

    def keys(self, key_list: list[str]) -> list[str]:
        from psychopy import event

        return event.getKeys(keyList=key_list)

    def clear_keys(self) -> None:
        """Empty the key buffer, keeping the operator's keys (``study.operator``) for later."""
        from psychopy import event

        self._operator_keys.update(event.getKeys(keyList=list(OPERATOR_KEYS)))
        event.clearEvents()

    def take_operator_keys(self) -> set[str]:
        """The operator keys pressed since the last call (``p`` pause, ``c`` recalibrate)."""
        from psychopy import event

        keys = self._operator_keys | set(event.getKeys(keyList=list(OPERATOR_KEYS)))
        self._operator_keys = set()
        return keys

    def check_escape(self) -> None:
        """Escape -> confirmation screen; raises ``QuitRequested`` when confirmed."""
        if "escape" in self.keys(["escape"]):
            if self.confirm_quit():
                raise QuitRequested()

    def confirm_quit(self) -> bool:
        self.clear_keys()
        while True:
            self.draw_text(self.protocol.instructions.escape_confirm)
            self.flip(phase="escape_confirm")
            pressed = self.keys(["y", "n", "escape"])
            if "y" in pressed:
                return True
            if "n" in pressed or "escape" in pressed:
                self.clear_keys()
                return False

    def text_screen(
        self,
        text: str,
        *,
        phase: str,
        min_duration_s: float = 0.0,
        keys: tuple[str, ...] = ("space",),
    ) -> str:
        """Show ``text`` until one of ``keys``; returns it (``auto_advance``: one frame, then
        ``keys[0]``). Escape asks whether to quit (``QuitRequested``)."""
        self.clear_keys()
        start = self.clock()
        while True:
            self.draw_text(text)
            frame = self.flip(phase=phase)
            if self.auto_advance:
                return keys[0]
            pressed = self.keys([*keys, "escape"])
            if "escape" in pressed and self.confirm_quit():
                raise QuitRequested()
            chosen = [k for k in keys if k in pressed]
            if chosen and frame.t - start >= min_duration_s:
                return chosen[0]
