"""A simulated eye tracker: a scripted participant whose gaze follows the display's targets.

The participant looks at whatever ``set_target`` names: after a saccade latency it saccades there
(landing with a small error and, when that is large, a corrective saccade), then fixates with slow
drift, microsaccades that pull the eye back onto the target, measurement noise and blinks (samples
``valid=False``; with ``sim_blink_artifact_deg`` the gaze is pulled down just before and after
them, as an EyeLink reports it). On a configured fraction of trials it breaks fixation: a saccade
3-8 deg away, a short dwell, and a saccade back.

Everything is a function of the seed and of the times at which the session calls in, never of
wall-clock time or of how often ``sample()`` is called: each random process (microsaccades,
blinks, saccades, breaks, drift, calibration) draws from its own stream in time order, the
trajectory is generated piecewise up to the time asked for, and the noise of sample ``k`` is a
hash of ``(seed, k)``. Samples lie on the grid ``k / sampling_rate_hz`` of the
given clock.

Fixation breaks and the trial structure. The participant breaks fixation "during the stimulus
intervals", which only the runner knows: a trial with a planned break (drawn at ``trial_start``
with probability ``settings.sim_fixation_break_prob``) breaks at a uniformly drawn time within
``break_window_s`` after the first message matching ``STIMULUS_ONSET_PATTERN`` (the runner sends
``STIMULUS_ONSET ...`` at the first interval's onset). ``trial_end`` cancels a break that has not
happened yet. ``break_log`` records, per trial, whether a break was planned and when it began.
A session reads the gaze once per flip; ``break_timing`` fits the window and the dwell to its
flips, so that every planned break falls on a flip the trial checks (with many simulated frames
per flip, a 0.2 s dwell fell between two flips, and a break starting after interval 2 was never
checked).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study.trackers.base import CalibrationResult, GazeSample, trial_result_code
from study.trackers.edf import validate_edf_name

STIMULUS_ONSET_MESSAGE = "STIMULUS_ONSET"
# The eyelid's artifact around a blink (``sim_blink_artifact_deg``): the pupil's image moves as
# the lid closes over it and as it opens, the opening slower (SR Research: "blinks are always
# embedded in saccades").
BLINK_CLOSING_S = 0.03
BLINK_OPENING_S = 0.06
STIMULUS_ONSET_PATTERN = re.compile(r"^\s*STIMULUS_ONSET\b", re.I)


BREAK_WINDOW_S = 0.5  # a planned break starts within this long after the stimulus onset
BREAK_DWELL_S = (0.2, 0.5)  # how long the eye stays away
BREAK_SACCADE_S = 0.04  # the longest break saccade (8 deg: 21 ms + 2.2 ms/deg)


def break_timing(*, checked_flips: int, flip_s: float, break_min_s: float) -> dict:
    """``SimulatedTracker``'s ``break_window_s`` and ``break_dwell_s`` for a session that reads
    the gaze once per flip, ``flip_s`` apart (simulated sessions: ``speed`` frame periods), and
    checks it on ``checked_flips`` flips from the stimulus onset on
    (``study.trial.presentation.stimulus_flips``).

    A planned break is then seen by the trial: it starts early enough for the eye to be out for
    ``break_min_s`` by the last checked flip, and lasts at least one flip plus ``break_min_s``,
    so that a flip falls in it. At a lab's 60 Hz (or a few frames per flip) the defaults
    (``BREAK_WINDOW_S``, ``BREAK_DWELL_S``) fit and are kept.
    """
    last_check_s = max(0, checked_flips - 1) * flip_s
    window_s = min(BREAK_WINDOW_S, max(0.0, last_check_s - BREAK_SACCADE_S - break_min_s))
    low, high = BREAK_DWELL_S
    shortest = flip_s + break_min_s + BREAK_SACCADE_S
    if low < shortest:
        low, high = shortest, shortest + (high - low)
    return {"break_window_s": window_s, "break_dwell_s": (low, high)}


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _keyed_normal_pair(key: int, index: int) -> tuple[float, float]:
    """Two standard normals that depend only on (key, index): counter-based, so a sample's noise
    does not depend on which other samples were drawn (Box-Muller on a SplitMix64 hash)."""
    h1 = _splitmix64(key ^ _splitmix64(index & _MASK64))
    h2 = _splitmix64(h1)
    u1 = ((h1 >> 11) + 1) * 2.0**-53  # (0, 1]
    u2 = (h2 >> 11) * 2.0**-53
    r = math.sqrt(-2.0 * math.log(u1))
    return r * math.cos(2.0 * math.pi * u2), r * math.sin(2.0 * math.pi * u2)


@dataclass
class _Segment:
    """Linear gaze motion from (x0, y0) at t0 to (x1, y1) at t1 (fixational drift or saccade)."""

    t0: float
    t1: float
    x0: float
    y0: float
    x1: float
    y1: float

    def at(self, t: float) -> tuple[float, float]:
        if self.t1 <= self.t0:
            return self.x1, self.y1
        f = min(1.0, max(0.0, (t - self.t0) / (self.t1 - self.t0)))
        return self.x0 + f * (self.x1 - self.x0), self.y0 + f * (self.y1 - self.y0)


@dataclass
class BreakRecord:
    """One trial's fixation-break plan and outcome (clock seconds)."""

    trial: int
    planned: bool
    onset_s: float | None = None  # when the eye left; None if it never did
    return_s: float | None = None
    amplitude_deg: float | None = None


@dataclass
class _Event:
    time_s: float
    kind: str  # "target" | "correct" | "break_out" | "break_back"
    order: int = field(default=0)


class SimulatedTracker:
    """A deterministic scripted participant behind the tracker interface.

    Args:
        settings: ``TrackerSettings``; uses ``sampling_rate_hz`` and the ``sim_*`` fields.
        seed: seeds every random process of the participant.
        clock: callable returning seconds (a simulated clock in simulated sessions).
        break_amplitude_deg: range of fixation-break saccade amplitudes.
        break_dwell_s: range of how long the eye stays away during a break.
        break_window_s: a planned break starts uniformly within this many seconds after the
            stimulus-onset message (``break_timing`` fits both to a session's flips).
    """

    name = "sim"

    def __init__(
        self,
        *,
        settings,
        seed: int,
        clock,
        break_amplitude_deg: tuple[float, float] = (3.0, 8.0),
        break_dwell_s: tuple[float, float] = BREAK_DWELL_S,
        break_window_s: float = BREAK_WINDOW_S,
    ) -> None:
        self.settings = settings
        self.seed = int(seed)
        self.clock = clock
        self.rate_hz = float(settings.sampling_rate_hz)
        self.break_amplitude_deg = break_amplitude_deg
        self.break_dwell_s = break_dwell_s
        self.break_window_s = break_window_s
        streams = np.random.SeedSequence([self.seed, 0x5E1]).spawn(7)
        self._rng_micro, self._rng_blink, self._rng_sacc, self._rng_break = (
            np.random.default_rng(s) for s in streams[:4]
        )
        self._rng_drift, self._rng_calib, self._rng_latency = (
            np.random.default_rng(s) for s in streams[4:]
        )
        self._noise_key = int(streams[6].generate_state(1, dtype=np.uint64)[0])  # sample noise
        self.messages: list[tuple[float, str]] = []
        self.break_log: list[BreakRecord] = []
        self.recording = False
        self.edf_name: str | None = None
        # Participant state; the trajectory is defined up to self._horizon.
        start = float(clock())
        self._horizon = start
        self._x, self._y = 0.0, 0.0  # starts looking at the screen centre
        self._goal = (0.0, 0.0)  # where the display asks the eye to look
        self._aim = (0.0, 0.0)  # where the eye means to be (goal, or away during a break)
        self._vx, self._vy = self._new_drift()
        self._segments: list[_Segment] = [_Segment(start, start, 0.0, 0.0, 0.0, 0.0)]
        self._events: list[_Event] = []
        self._event_order = 0
        self._next_micro = start + self._micro_interval()
        self._blinks: list[tuple[float, float]] = []
        self._next_blink = start + self._blink_interval()
        self._armed_break: BreakRecord | None = None  # planned, waiting for stimulus onset
        self._pending_break: BreakRecord | None = None  # scheduled, not yet started
        self._current_break_record: BreakRecord | None = None  # the eye is away now

    # ------------------------------------------------------------------ random processes
    def _micro_interval(self) -> float:
        rate = self.settings.sim_microsaccade_rate_hz
        return self._rng_micro.exponential(1.0 / rate) if rate > 0 else math.inf

    def _blink_interval(self) -> float:
        rate = self.settings.sim_blink_rate_hz
        return self._rng_blink.exponential(1.0 / rate) if rate > 0 else math.inf

    def _new_drift(self) -> tuple[float, float]:
        angle = self._rng_drift.uniform(0.0, 2.0 * math.pi)
        speed = self.settings.sim_drift_deg_per_s
        return speed * math.cos(angle), speed * math.sin(angle)

    # ------------------------------------------------------------------ trajectory
    def _push(self, time_s: float, kind: str) -> None:
        self._event_order += 1
        self._events.append(_Event(time_s, kind, self._event_order))
        self._events.sort(key=lambda e: (e.time_s, e.order))

    def _drop(self, *kinds: str) -> None:
        self._events = [e for e in self._events if e.kind not in kinds]

    def _drift_to(self, t: float) -> None:
        if t <= self._horizon:
            return
        dt = t - self._horizon
        x1, y1 = self._x + self._vx * dt, self._y + self._vy * dt
        self._segments.append(_Segment(self._horizon, t, self._x, self._y, x1, y1))
        self._x, self._y, self._horizon = x1, y1, t

    def _saccade(self, t: float, x: float, y: float, *, micro: bool = False) -> None:
        amplitude = math.hypot(x - self._x, y - self._y)
        # Main sequence: ~21 ms + 2.2 ms/deg for saccades; microsaccades 15-25 ms.
        duration = 0.015 + 0.01 * amplitude if micro else 0.021 + 0.0022 * amplitude
        self._segments.append(_Segment(t, t + duration, self._x, self._y, x, y))
        self._x, self._y, self._horizon = x, y, t + duration
        self._vx, self._vy = self._new_drift()

    def _saccade_to_aim(self, t: float, *, error_sd_deg: float) -> None:
        ax, ay = self._aim
        ex, ey = self._rng_sacc.normal(0.0, error_sd_deg, size=2) if error_sd_deg > 0 else (0, 0)
        self._saccade(t, ax + float(ex), ay + float(ey))

    def _handle(self, event: _Event, t: float) -> None:
        if event.kind in ("target", "break_back"):
            if event.kind == "break_back" and self._current_break_record is not None:
                self._current_break_record.return_s = t
                self._current_break_record = None
            self._aim = self._goal
            amplitude = math.hypot(self._aim[0] - self._x, self._aim[1] - self._y)
            if amplitude < 0.05:
                return
            self._saccade_to_aim(t, error_sd_deg=0.05 * amplitude + 0.05)
            landing_error = math.hypot(self._aim[0] - self._x, self._aim[1] - self._y)
            if landing_error > 0.3:
                self._push(self._horizon + self._rng_sacc.uniform(0.1, 0.2), "correct")
            self._next_micro = self._horizon + self._micro_interval()
        elif event.kind == "correct":
            self._saccade_to_aim(t, error_sd_deg=0.05)
            self._next_micro = self._horizon + self._micro_interval()
        elif event.kind == "break_out":
            record = self._pending_break
            self._pending_break = None
            amplitude = float(self._rng_break.uniform(*self.break_amplitude_deg))
            angle = float(self._rng_break.uniform(0.0, 2.0 * math.pi))
            self._aim = (
                self._goal[0] + amplitude * math.cos(angle),
                self._goal[1] + amplitude * math.sin(angle),
            )
            self._drop("correct")
            self._saccade_to_aim(t, error_sd_deg=0.0)
            if record is not None:
                record.onset_s, record.amplitude_deg = t, amplitude
                self._current_break_record = record
            self._push(self._horizon + self._rng_break.uniform(*self.break_dwell_s), "break_back")

    def _microsaccade(self, t: float) -> None:
        amp = self.settings.sim_microsaccade_amplitude_deg
        dx, dy = self._aim[0] - self._x, self._aim[1] - self._y
        offset = math.hypot(dx, dy)
        size = amp * float(self._rng_micro.lognormal(0.0, 0.25))
        if offset > 0.5 * amp:
            # Corrective: most microsaccades bring the eye back towards the target.
            angle = math.atan2(dy, dx) + float(self._rng_micro.normal(0.0, 0.3))
            size = min(offset * float(self._rng_micro.uniform(0.7, 1.1)), max(size, 1.0))
        else:
            angle = float(self._rng_micro.uniform(0.0, 2.0 * math.pi))
        self._saccade(
            t, self._x + size * math.cos(angle), self._y + size * math.sin(angle), micro=True
        )
        self._next_micro = self._horizon + self._micro_interval()

    def _extend(self, until: float) -> None:
        """Generate the trajectory up to ``until`` (clock seconds)."""
        while True:
            t_event = self._events[0].time_s if self._events else math.inf
            t_next = min(t_event, self._next_micro)
            if t_next > until:
                self._drift_to(until)
                break
            t_next = max(t_next, self._horizon)  # events due during a saccade wait for its end
            self._drift_to(t_next)
            if t_event <= self._next_micro:
                self._handle(self._events.pop(0), t_next)
            else:
                self._microsaccade(t_next)
        while self._next_blink <= until:
            duration = self.settings.sim_blink_duration_s * float(self._rng_blink.uniform(0.7, 1.3))
            self._blinks.append((self._next_blink, self._next_blink + duration))
            self._next_blink += duration + self._blink_interval()

    def _position(self, t: float) -> tuple[float, float]:
        for segment in reversed(self._segments):
            if segment.t0 <= t:
                return segment.at(t)
        return self._segments[0].at(t)

    def _blinking(self, t: float) -> bool:
        return any(start <= t < end for start, end in reversed(self._blinks[-4:]))

    def _blink_artifact_deg(self, t: float) -> float:
        """How far the eyelid pulls the reported gaze down at ``t``: up to
        ``sim_blink_artifact_deg``, ramping in over ``BLINK_CLOSING_S`` before a blink and out
        over ``BLINK_OPENING_S`` after it (an EyeLink reports a saccade around every blink)."""
        peak = self.settings.sim_blink_artifact_deg
        if peak <= 0:
            return 0.0
        recent = self._blinks[-4:]
        to_start = min(
            (s - t for s in [*(b[0] for b in recent), self._next_blink] if s > t), default=math.inf
        )
        since_end = min((t - e for _, e in recent if e <= t), default=math.inf)
        weight = max(1.0 - to_start / BLINK_CLOSING_S, 1.0 - since_end / BLINK_OPENING_S, 0.0)
        return peak * weight

    def _prune(self, t: float) -> None:
        # Samples are only ever asked for "now"; keep a second of history for safety.
        if len(self._segments) > 256:
            keep = [s for s in self._segments if s.t1 >= t - 1.0]
            self._segments = keep or self._segments[-1:]
        if len(self._blinks) > 64:
            self._blinks = self._blinks[-8:]

    # ------------------------------------------------------------------ interface
    def open(self, *, win, session_dir: Path, edf_name: str) -> None:
        """Nothing to connect to; the EDF name is still checked, as with a tracker."""
        self.edf_name = validate_edf_name(edf_name)

    def calibrate(self) -> CalibrationResult | None:
        """A simulated validation: average error ~0.3-0.6 deg, maximum 1.6-2x that."""
        avg = 0.3 + 0.15 * abs(float(self._rng_calib.normal()))
        worst = avg * float(self._rng_calib.uniform(1.6, 2.0))
        result = CalibrationResult(avg_error_deg=avg, max_error_deg=worst, time_s=self.clock())
        self.message(f"FOVEA_CALIBRATION avg {avg:.2f} max {worst:.2f}")
        return result

    def drift_correct(self, *, x_deg: float, y_deg: float) -> bool:
        """The participant is shown the target (it looks there); always accepted."""
        self.set_target(x_deg=x_deg, y_deg=y_deg)
        return True

    def start_recording(self) -> None:
        self.recording = True

    def stop_recording(self) -> None:
        self.recording = False

    def is_connected(self) -> bool:
        """Always True: there is no link to lose."""
        return True

    def is_recording(self) -> bool:
        return self.recording

    def message(self, text: str) -> None:
        now = float(self.clock())
        self.messages.append((now, text))
        if self._armed_break is not None and STIMULUS_ONSET_PATTERN.match(text):
            self._extend(now)
            self._pending_break, self._armed_break = self._armed_break, None
            self._push(now + float(self._rng_break.uniform(0.0, self.break_window_s)), "break_out")

    def _reseed_for_trial(self, trial: int) -> None:
        """Key the participant's random streams to (seed, trial): a session resumed after a kill
        (a fresh tracker) then behaves trial for trial as the uninterrupted one would."""
        streams = np.random.SeedSequence([self.seed, 0x5E1, int(trial)]).spawn(6)
        (
            self._rng_micro,
            self._rng_blink,
            self._rng_sacc,
            self._rng_break,
            self._rng_drift,
            self._rng_latency,
        ) = (np.random.default_rng(s) for s in streams)
        now = float(self.clock())
        self._extend(now)
        self._next_micro = now + self._micro_interval()
        self._next_blink = max(self._next_blink, now) if self._blinks else now
        self._next_blink += self._blink_interval()

    def trial_start(self, *, trial: int, variables: dict) -> None:
        self._reseed_for_trial(trial)
        self.message(f"TRIALID {int(trial)}")
        planned = bool(self._rng_break.random() < self.settings.sim_fixation_break_prob)
        record = BreakRecord(trial=int(trial), planned=planned)
        self.break_log.append(record)
        self._armed_break = record if planned else None

    def trial_end(self, *, result: str, variables: dict | None = None) -> None:
        self._extend(float(self.clock()))
        self._armed_break = None
        if self._pending_break is not None:  # the trial ended before the break began
            self._pending_break = None
            self._drop("break_out")
        self.message(f"TRIAL_RESULT {trial_result_code(result)}")

    def sample(self) -> GazeSample | None:
        """The newest sample on the ``k / sampling_rate_hz`` grid at or before ``clock()``."""
        now = float(self.clock())
        k = math.floor(now * self.rate_hz + 1e-9)
        return self._sample_at(k / self.rate_hz, noise_index=k, extend_to=now)

    def gaze_at(self, time_s: float) -> GazeSample:
        """The participant's gaze at ``time_s`` (clock seconds), for a tracker that samples on its
        own time grid (the emulated EyeLink). Times must not go back by more than a second
        (older trajectory is pruned); ``set_target``/``message`` calls still come at ``clock()``.
        """
        t = float(time_s)
        return self._sample_at(t, noise_index=math.floor(t * self.rate_hz + 1e-9), extend_to=t)

    def _sample_at(self, t: float, *, noise_index: int, extend_to: float) -> GazeSample:
        k = noise_index
        self._extend(max(extend_to, t))
        if self._blinking(t):
            self._prune(t)
            return GazeSample(time_s=t, x_deg=math.nan, y_deg=math.nan, valid=False)
        x, y = self._position(t)
        y -= self._blink_artifact_deg(t)
        noise_sd = self.settings.sim_noise_deg
        if noise_sd > 0:
            nx, ny = _keyed_normal_pair(self._noise_key, k)
            x, y = x + noise_sd * nx, y + noise_sd * ny
        self._prune(t)
        return GazeSample(time_s=t, x_deg=x, y_deg=y, valid=True)

    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        """Ask the participant to look at (x_deg, y_deg); repeated calls with the same target are
        ignored, a new target is saccaded to after the saccade latency."""
        goal = (float(x_deg), float(y_deg))
        if goal == self._goal:
            return
        now = float(self.clock())
        self._extend(now)
        self._goal = goal
        self._drop("target", "correct", "break_back")
        if self._current_break_record is not None:
            self._current_break_record.return_s = now
            self._current_break_record = None
        latency = self.settings.sim_saccade_latency_s
        if latency > 0:  # latencies vary ~20 % from saccade to saccade
            latency *= float(self._rng_latency.lognormal(0.0, 0.2))
        self._push(now + latency, "target")

    def close(self, *, dest_dir: Path, local_name: str | None = None) -> Path | None:
        """No EDF from a simulated tracker: None."""
        self.recording = False
        return None
