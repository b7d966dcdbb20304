"""Helpers for the tests that run the EyeLink tracker against the pylink emulator (no display)."""

from __future__ import annotations

from pathlib import Path

from generator.geometry import default_display
from protocol import TrackerSettings
from study.trackers import make_tracker
from study.trackers.emulated_host import FaultScript

FRAME_S = 1 / 64  # an exact binary fraction: frame times add up without rounding drift
RATE_HZ = 500


class SteppedClock:
    """A simulated session clock the test advances (``pumpDelay`` advances it too)."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class FakeWindow:
    """What the tracker reads from a PsychoPy window: its size (px), and whether it records
    frame intervals."""

    size = (800, 600)
    recordFrameIntervals = False  # noqa: N815 - PsychoPy's name


def settings(**overrides) -> TrackerSettings:
    """Tracker settings for a quiet participant (no blinks, little noise) at 500 Hz."""
    values = dict(
        kind="eyelink",
        sampling_rate_hz=RATE_HZ,
        eye="right",
        sim_blink_rate_hz=0.0,
        sim_noise_deg=0.01,
        sim_fixation_break_prob=0.0,
        validation_max_avg_error_deg=1.0,
    )
    values.update(overrides)
    return TrackerSettings(**values)


def open_tracker(
    tmp_path: Path,
    *,
    faults: FaultScript | None = None,
    edf_name: str = "fv0001",
    host_dir: Path | None = None,
    clock: SteppedClock | None = None,
    tracker_settings: TrackerSettings | None = None,
    **options,
):
    """An opened ``eyelink-emulated`` tracker and its clock."""
    clock = clock or SteppedClock()
    tracker = make_tracker(
        "eyelink-emulated",
        settings=tracker_settings or settings(),
        seed=3,
        clock=clock,
        display=default_display(),
        faults=faults or FaultScript(),
        host_dir=host_dir or tmp_path / "host",
        **options,
    )
    tracker.open(win=FakeWindow(), session_dir=tmp_path, edf_name=edf_name)
    return tracker, clock


def run_frames(tracker, clock, n_frames: int) -> list:
    """Advance ``n_frames`` display frames, sampling once per frame like the presenter."""
    samples = []
    for _ in range(n_frames):
        clock.advance(FRAME_S)
        samples.append(tracker.sample())
    return samples


def run_trial(tracker, clock, trial: int, *, n_frames: int = 64, result: str = "response"):
    """One trial's messages and frames (the participant looks at the centre)."""
    tracker.trial_start(trial=trial, variables={"level": 0.5, "condition": "near"})
    tracker.set_target(x_deg=0.0, y_deg=0.0)
    samples = run_frames(tracker, clock, n_frames)
    tracker.trial_end(result=result)
    return samples
