"""The simulated participant: fixation quality, blinks, saccade latency, breaks, determinism.

Each test runs the tracker on a simulated clock that the test advances frame by frame, the way a
simulated session drives it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from protocol import TrackerSettings
from protocol.run_settings import TimingSettings
from study.trackers import make_tracker
from study.trackers.base import GazeSample
from study.trackers.sim import STIMULUS_ONSET_MESSAGE

FRAME_S = 1 / 64
TARGETS_DEG = [(0.0, 0.0), (5.0, 3.0), (-4.0, 2.0), (8.0, -6.0), (-2.0, -7.0)]


class SimClock:
    """A simulated clock: the tests move time forward by hand (in steps that are exact binary
    fractions, so runs polled at different rates call in at exactly the same times)."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _tracker(seed: int, **sim):
    settings = TrackerSettings(kind="sim", **sim)
    clock = SimClock()
    tracker = make_tracker("sim", settings=settings, seed=seed, clock=clock)
    tracker.open(win=None, session_dir=".", edf_name="sim0001")
    print(f"seed={seed} settings={sim}")
    return tracker, clock


def _run_trials(tracker, clock, *, n_trials, trial_s=2.0, onset_at_s=None, step_s=FRAME_S):
    """Run trials (target changes each trial); return per-sample rows as an array.

    Columns: trial, time since target onset (s), valid, x error (deg), y error (deg).
    """
    rows = []
    for trial in range(1, n_trials + 1):
        tx, ty = TARGETS_DEG[trial % len(TARGETS_DEG)]
        tracker.trial_start(trial=trial, variables={"target": f"{tx},{ty}"})
        tracker.set_target(x_deg=tx, y_deg=ty)
        start = clock.now_s
        sent_onset = False
        for frame in range(1, int(round(trial_s / step_s)) + 1):
            clock.now_s = start + frame * step_s
            if onset_at_s is not None and not sent_onset and frame * step_s >= onset_at_s:
                tracker.message(f"{STIMULUS_ONSET_MESSAGE} interval=1")
                sent_onset = True
            sample = tracker.sample()
            assert sample.time_s <= clock.now_s + 1e-9
            rows.append((trial, frame * step_s, sample.valid, sample.x_deg - tx, sample.y_deg - ty))
        tracker.trial_end(result="ok")
    return np.array(rows, dtype=float)


def test_fixation_stays_within_tolerance_most_of_the_time():
    tracker, clock = _tracker(seed=11, sim_fixation_break_prob=0.0)
    rows = _run_trials(tracker, clock, n_trials=40)
    settled = rows[(rows[:, 1] > 0.6) & (rows[:, 2] == 1)]  # after latency + landing
    error = np.hypot(settled[:, 3], settled[:, 4])
    print(f"median error {np.median(error):.3f} deg, within 1 deg {np.mean(error < 1):.3f}")
    assert np.mean(error < 1.0) > 0.95
    assert np.median(error) < 0.35
    # ...but it is a live eye, not a dot: noise, drift and microsaccades move it.
    assert 0.02 < np.std(settled[:, 3]) < 0.5


def test_blinks_produce_invalid_samples_of_blink_duration():
    tracker, clock = _tracker(
        seed=5, sampling_rate_hz=250, sim_blink_rate_hz=1.0, sim_blink_duration_s=0.15
    )
    rows = _run_trials(tracker, clock, n_trials=20, trial_s=3.0, step_s=1 / 256)
    valid = rows[:, 2] == 1
    invalid_fraction = 1 - valid.mean()
    print(f"invalid fraction {invalid_fraction:.3f}")
    assert 0.07 < invalid_fraction < 0.22  # expected ~0.15 / (0.15 + 1.0)
    assert np.all(np.isnan(rows[~valid, 3])) and np.all(np.isfinite(rows[valid, 3]))
    # Runs of invalid samples last about a blink.
    runs, length = [], 0
    for is_valid in valid:
        if not is_valid:
            length += 1
        elif length:
            runs.append(length / 256)
            length = 0
    print(f"{len(runs)} blinks, median {np.median(runs):.3f} s")
    assert len(runs) > 30
    assert 0.1 < np.median(runs) < 0.2

    no_blinks, clock2 = _tracker(seed=5, sampling_rate_hz=250, sim_blink_rate_hz=0.0)
    rows2 = _run_trials(no_blinks, clock2, n_trials=5, trial_s=3.0, step_s=1 / 256)
    assert np.all(rows2[:, 2] == 1)


def test_blinks_carry_the_eyelids_artifact_which_the_fixation_check_ignores():
    """Around each blink the gaze drops (closing 30 ms, opening 60 ms), as an EyeLink reports
    it; the fixation check with the protocol's blink edge sees no break in 60 trials of steady
    fixation with many blinks, while the same check without the edge does (seed 5)."""
    from protocol.run_settings import FixationSettings
    from study.trial.gaze import GazeMonitor

    tracker, clock = _tracker(
        seed=5,
        sim_blink_rate_hz=1.0,
        sim_blink_artifact_deg=4.0,
        sim_fixation_break_prob=0.0,
        sim_drift_deg_per_s=0.0,
    )
    rows = _run_trials(tracker, clock, n_trials=60, trial_s=3.0, step_s=1 / 64)
    fixation = FixationSettings()
    breaks = {}
    for edge_s in (fixation.blink_edge_s, 0.0):
        n = 0
        for trial in np.unique(rows[:, 0]):
            settled = rows[(rows[:, 0] == trial) & (rows[:, 1] > 0.6)]
            monitor = GazeMonitor(
                x_deg=0.0,
                y_deg=0.0,
                tolerance_deg=fixation.tolerance_deg,
                max_invalid_s=fixation.max_invalid_s,
                break_min_s=fixation.break_min_s,
                sample_period_s=1 / 64,
                blink_edge_s=edge_s,
            )
            for _, t, valid, dx, dy in settled:
                sample = GazeSample(time_s=t, x_deg=dx, y_deg=dy, valid=bool(valid))
                if monitor.broken(t=t, sample=sample):
                    n += 1
                    break
        breaks[edge_s] = n
    valid = rows[:, 2] == 1
    edges = valid & ~np.roll(valid, 1) | valid & ~np.roll(valid, -1)  # next to a blink
    print(
        f"breaks by blink edge {breaks}; median drop at blink edges {np.median(rows[edges, 4]):.2f}"
    )
    assert np.median(rows[edges, 4]) < -1.0  # the eyelid pulls the gaze down
    assert breaks[fixation.blink_edge_s] == 0 and breaks[0.0] > 5


def test_saccade_follows_target_after_the_latency():
    latency_s = 0.25
    tracker, clock = _tracker(
        seed=3, sim_saccade_latency_s=latency_s, sim_fixation_break_prob=0.0, sim_blink_rate_hz=0.0
    )
    step = 1 / 512
    measured = []
    for trial in range(30):
        tracker.set_target(x_deg=0.0, y_deg=0.0)
        clock.now_s += 1.0
        tracker.sample()
        tracker.set_target(x_deg=8.0, y_deg=0.0)
        start = clock.now_s
        while True:
            clock.now_s += step
            if tracker.sample().x_deg > 4.0:  # half-way through the saccade
                measured.append(clock.now_s - start)
                break
            assert clock.now_s - start < 1.0, f"trial {trial}: no saccade within 1 s"
    print(f"latencies median {np.median(measured):.3f} s, sd {np.std(measured):.3f} s")
    # median latency as configured, plus half of the ~40 ms saccade
    assert np.median(measured) == pytest.approx(latency_s + 0.02, abs=0.03)
    assert min(measured) > 0.5 * latency_s
    assert np.std(measured) > 0.01  # latencies vary from saccade to saccade


def test_fixation_breaks_happen_at_the_configured_rate():
    p = 0.3
    tracker, clock = _tracker(seed=21, sim_fixation_break_prob=p, sim_blink_rate_hz=0.0)
    n = 300
    rows = _run_trials(tracker, clock, n_trials=n, trial_s=2.25, onset_at_s=0.625)
    planned = np.array([r.planned for r in tracker.break_log])
    happened = np.array([r.onset_s is not None for r in tracker.break_log])
    print(f"planned {planned.mean():.3f}, happened {happened.mean():.3f} (p={p})")
    assert len(tracker.break_log) == n
    assert abs(planned.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert np.array_equal(planned, happened)  # every planned break fits in the trial here
    # A break takes the eye well outside a 2 deg fixation window, then back.
    error = np.hypot(rows[:, 3], rows[:, 4])
    for record in tracker.break_log:
        in_trial = rows[:, 0] == record.trial
        late = in_trial & (rows[:, 1] > 0.625)
        left = np.any(error[late] > 2.5)
        assert left == record.planned, f"trial {record.trial}"
        if record.planned:
            assert record.amplitude_deg >= 3.0
            assert 0.2 <= record.return_s - record.onset_s <= 0.5 + 0.05
            # onset within the break window after the stimulus-onset message
            assert any(
                0.0 <= record.onset_s - t <= 0.5 + 1e-9
                for t, text in tracker.messages
                if text.startswith(STIMULUS_ONSET_MESSAGE)
            )
            assert error[in_trial][-1] < 1.5  # back on the target by the end


def test_no_breaks_without_a_stimulus_onset_message():
    tracker, clock = _tracker(seed=21, sim_fixation_break_prob=1.0)
    _run_trials(tracker, clock, n_trials=10, trial_s=1.5)
    assert all(r.planned and r.onset_s is None for r in tracker.break_log)


def test_same_seed_same_samples_and_independent_of_polling_rate():
    def run(seed, step_s):
        tracker, clock = _tracker(seed=seed, sim_fixation_break_prob=0.5, sim_blink_rate_hz=0.5)
        rows = _run_trials(tracker, clock, n_trials=8, onset_at_s=0.5, step_s=step_s)
        cal = tracker.calibrate()
        return rows, cal

    a, cal_a = run(7, 1 / 64)
    b, cal_b = run(7, 1 / 64)
    np.testing.assert_array_equal(a, b)
    assert cal_a == cal_b
    c, _ = run(8, 1 / 64)
    assert not np.allclose(a[:, 3], c[:, 3], equal_nan=True)
    # Polling twice as often gives the same gaze at the shared sample times.
    fine, _ = run(7, 1 / 128)
    shared = fine[1::2]
    np.testing.assert_array_equal(shared[:, :2], a[:, :2])
    np.testing.assert_allclose(shared[:, 2:], a[:, 2:], atol=1e-9, equal_nan=True)


def test_samples_lie_on_the_sampling_grid():
    tracker, clock = _tracker(seed=2, sampling_rate_hz=500)
    clock.now_s = 12.3456
    sample = tracker.sample()
    assert sample.time_s == pytest.approx(math.floor(12.3456 * 500) / 500)
    assert tracker.sample() == sample  # same clock time, same newest sample


def test_calibration_and_drift_correction_are_simulated():
    tracker, clock = _tracker(seed=4)
    result = tracker.calibrate()
    assert 0.3 <= result.avg_error_deg <= 1.0
    assert result.avg_error_deg < result.max_error_deg <= 2 * result.avg_error_deg
    assert tracker.drift_correct(x_deg=6.0, y_deg=0.0)
    clock.now_s += 1.0
    sample = tracker.sample()
    assert math.hypot(sample.x_deg - 6.0, sample.y_deg) < 1.0  # it looked at the target
    assert tracker.close(dest_dir=".") is None


def _checked_breaks(timing: dict | None, *, flip_s: float, checked_flips: int, n_trials: int):
    """(planned, seen): breaks the participant planned, and those a trial's fixation check saw
    reading the gaze once per flip, ``flip_s`` apart, on ``checked_flips`` flips from the
    onset (``timing``: ``break_timing``'s fit, None: the tracker's defaults)."""
    from protocol.run_settings import FixationSettings
    from study.trial.gaze import GazeMonitor

    settings = TrackerSettings(kind="sim", sim_fixation_break_prob=0.5, sim_blink_rate_hz=0.0)
    clock = SimClock()
    tracker = make_tracker("sim", settings=settings, seed=9, clock=clock, break_timing=timing)
    tracker.open(win=None, session_dir=".", edf_name="sim0001")
    fixation = FixationSettings()
    seen = 0
    for trial in range(1, n_trials + 1):
        tracker.trial_start(trial=trial, variables={})
        for _ in range(3):  # the fixation and the wait for the images
            clock.now_s += flip_s
            tracker.sample()
        monitor = GazeMonitor(
            x_deg=0.0,
            y_deg=0.0,
            tolerance_deg=fixation.tolerance_deg,
            max_invalid_s=fixation.max_invalid_s,
            break_min_s=fixation.break_min_s,
            sample_period_s=flip_s,
            blink_edge_s=fixation.blink_edge_s,
        )
        broken = False
        for flip in range(checked_flips):
            if flip:
                clock.now_s += flip_s
            else:
                tracker.message(f"{STIMULUS_ONSET_MESSAGE} trial {trial}")
            sample = tracker.sample()
            if monitor.broken(t=clock.now_s, sample=sample):
                broken = True
                break
        seen += broken or monitor.ends_broken()
        clock.now_s += 2 * flip_s  # the response and the feedback
        tracker.sample()
        tracker.trial_end(result="ok")
        clock.now_s += 3.0  # the eye is back before the next trial
        tracker.sample()
    planned = sum(r.planned for r in tracker.break_log)
    return planned, seen


@pytest.mark.parametrize("frames_per_flip", [1, 8, 50])
def test_every_planned_break_falls_on_a_flip_the_trial_checks(frames_per_flip):
    """A simulated session reads the gaze once per flip, ``speed`` frames apart. With a 0.1 s
    stimulus and ISI at 50 frames per flip (0.83 s), a trial checks three flips (interval 1,
    the mask, interval 2): a 0.2-0.5 s break fell between two of them on most trials, so far
    fewer breaks than ``sim_fixation_break_prob`` reached the data. ``break_timing`` fits the
    break to the flips: every planned break is seen, at a lab's 60 Hz as at 50 frames per
    flip."""
    from protocol.run_settings import FixationSettings, frames_for
    from study.trackers.sim import BREAK_DWELL_S, BREAK_WINDOW_S, break_timing
    from study.trial.presentation import stimulus_flips

    timing_settings = TimingSettings(
        stimulus_duration_s=0.1, isi_s=0.1, mask_duration_s=0.05, fixation_hold_s=0.1
    )
    flip_s = frames_per_flip / 60.0
    flips = stimulus_flips(timing_settings, lambda s: frames_for(s, flip_s=flip_s))
    assert flips == {1: 18, 8: 3, 50: 3}[frames_per_flip]
    timing = break_timing(
        checked_flips=flips, flip_s=flip_s, break_min_s=FixationSettings().break_min_s
    )
    n = 120
    planned, seen = _checked_breaks(timing, flip_s=flip_s, checked_flips=flips, n_trials=n)
    print(f"{frames_per_flip} frames per flip: {timing}; planned {planned}, seen {seen} of {n}")
    assert abs(planned / n - 0.5) < 4 * math.sqrt(0.25 / n)
    assert seen == planned
    if frames_per_flip == 50:  # the tracker's defaults: most breaks were never seen
        assert (timing["break_window_s"], timing["break_dwell_s"][0]) == (
            0.5,
            pytest.approx(0.893, abs=1e-3),
        )
        old_planned, old_seen = _checked_breaks(
            None, flip_s=flip_s, checked_flips=flips, n_trials=n
        )
        print(
            f"defaults ({BREAK_WINDOW_S} s, {BREAK_DWELL_S} s): planned {old_planned}, seen {old_seen}"
        )
        assert old_planned == planned and old_seen < planned / 3
