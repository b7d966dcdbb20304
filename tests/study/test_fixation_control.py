"""Fixation control through the real window with scripted gaze: a break is the gaze outside
the window for break_min_s (one stray sample is not), the window is centred on the gaze the
image was made at with the layout's padding as radius, a blink while waiting for the images is
allowed and followed by a fresh hold, a blink inside an interval is flagged."""

from __future__ import annotations

import pytest

from study.trackers.base import GazeSample
from study.trial.gaze import GazeMonitor
from tests.study.trial_rig import make_runner, plan, rig_protocol

pytestmark = pytest.mark.display
FX = 3.0  # the rig protocol's fixation target, (3, 0) deg


def _sample(t, x, y=0.0, valid=True):
    return GazeSample(time_s=t, x_deg=x, y_deg=y, valid=valid)


def test_break_needs_break_min_s_outside_not_one_sample():
    monitor = GazeMonitor(
        x_deg=0,
        y_deg=0,
        tolerance_deg=1,
        max_invalid_s=0.3,
        break_min_s=0.02,
        sample_period_s=1 / 60,
    )
    assert not monitor.broken(t=0.0, sample=_sample(0.0, 5.0))
    assert not monitor.broken(t=1 / 60, sample=_sample(1 / 60, 0.1))  # back inside: reset
    assert not monitor.broken(t=2 / 60, sample=_sample(2 / 60, 5.0))
    assert monitor.broken(t=3 / 60, sample=_sample(3 / 60, 5.0))
    waiting = GazeMonitor(x_deg=0, y_deg=0, tolerance_deg=1, max_invalid_s=0.1, allow_invalid=True)
    assert not any(waiting.broken(t=i / 60, sample=None) for i in range(60))
    assert waiting.invalid_seen


def _blink_monitor():
    return GazeMonitor(
        x_deg=0,
        y_deg=0,
        tolerance_deg=1,
        max_invalid_s=0.3,
        break_min_s=0.02,
        sample_period_s=1 / 60,
        blink_edge_s=0.09,  # off the 60 Hz grid: no frame falls on an edge
    )


def _feed(monitor, gaze):
    """``gaze``: per 60 Hz frame, an x in deg or None (invalid); the frames the monitor broke."""
    broke = []
    for i, x in enumerate(gaze):
        sample = _sample(i / 60, 0.0 if x is None else x, valid=x is not None)
        if monitor.broken(t=i / 60, sample=sample):
            broke.append(i)
    return broke


def test_a_blinks_artifact_saccades_are_not_a_break():
    """SR Research: blinks are embedded in saccades. Two frames outside as the eyelid closes,
    133 ms of missing pupil, then three frames outside as it opens: no break (it was one with
    the blink ignored: the outside time added up across the blink)."""
    blink = [0.0] * 5 + [4.0, 4.0] + [None] * 8 + [4.0, 4.0, 4.0] + [0.0] * 5
    assert _feed(_blink_monitor(), blink) == []
    # The gaze really leaves after the blink: a break once the edge and break_min_s are over.
    left = [0.0] * 5 + [None] * 8 + [4.0] * 20
    # Frames 13-17 are the edge (<= 0.09 s after the blink); the run from 18 is a break once it
    # has lasted break_min_s + blink_edge_s = 0.11 s: 7 frames, at frame 24.
    assert _feed(_blink_monitor(), left)[0] == 24


def test_a_break_is_decided_late_but_never_lost():
    """With a blink edge the decision waits: a run of break_min_s that comes back inside is a
    break at its return, one still open when the check ends is one (``ends_broken``), and one
    that lasts break_min_s + blink_edge_s is one without waiting for its end."""
    assert _feed(_blink_monitor(), [0.0] * 3 + [4.0] * 3 + [0.0]) == [6]
    open_run = _blink_monitor()
    assert _feed(open_run, [0.0] * 3 + [4.0] * 3) == [] and open_run.ends_broken()
    assert _feed(_blink_monitor(), [0.0] * 3 + [4.0] * 12)[0] == 9  # 7 frames >= 0.11 s
    one_stray = _blink_monitor()
    assert _feed(one_stray, [0.0, 4.0, 0.0]) == [] and not one_stray.ends_broken()


@pytest.fixture(scope="module")
def service(virtual_x):
    from protocol.geometry import stimulus_geometry
    from study.service.start import start_service

    protocol = rig_protocol()
    service = start_service(
        protocol, geometry=stimulus_geometry(protocol), scenes=None, log=lambda *a: None
    )
    yield service
    service.close()


def _trial(window, service, script, **changes):
    protocol = rig_protocol(simulation={"speed": 1}, **changes)
    runner, gaze = make_runner(protocol, service=service, win=window, requeue_dropped_frames=False)
    gaze.script = script
    return runner.run(plan=plan(protocol), trial=1)


def _frames(phase, n, where):
    """A script: ``where`` for the first ``n`` samples of ``phase``, else the participant."""
    seen = {"n": 0}

    def script(t, shown):
        if shown == phase and seen["n"] < n:
            seen["n"] += 1
            return where
        return ...

    return script


def test_one_stray_sample_in_interval1_is_not_a_break(window, service):
    outcome = _trial(window, service, _frames("interval1", 1, (FX + 5.0, 0.0)))
    assert not outcome.requeue and outcome.row["response"] in (1, 2)


def test_two_samples_outside_in_interval1_break(window, service):
    outcome = _trial(window, service, _frames("interval1", 2, (FX + 5.0, 0.0)))
    assert outcome.requeue and outcome.row["abort_reason"] == "fixation_break"
    assert outcome.row["fixation_break"] == 1


def test_window_is_centred_on_the_measured_gaze_with_the_padding_radius(window, service):
    """Fixation held 1.2 deg right of the target (inside the 1.5 deg tolerance): the image is
    made there; during the interval the gaze at 0.2 deg from the target is 1.4 deg from the
    measured gaze, outside the 1.0 deg padding window: a break."""

    def script(t, shown):
        if shown in ("fixation", "wait", "refixation"):
            return (FX + 1.2, 0.0)
        if shown == "interval1":
            return (FX - 0.2, 0.0)
        return ...

    outcome = _trial(window, service, script, condition={"padding_deg": 1.0})
    row = outcome.row
    assert row["gaze_x_deg"] == pytest.approx(FX + 1.2) and row["fixation_window_deg"] == 1.0
    assert outcome.requeue and row["abort_reason"] == "fixation_break"
    no_padding = _trial(window, service, script)  # the 1.5 deg tolerance: 1.4 deg is inside
    assert no_padding.row["fixation_window_deg"] == 1.5 and not no_padding.requeue


def test_blink_while_waiting_is_allowed_then_a_fresh_hold(window, service):
    # a blink longer than max_invalid_s (0.3 s) while the images are made
    outcome = _trial(window, service, _frames("wait", 30, None))
    assert not outcome.requeue and outcome.row["refixated"] == 1
    assert outcome.row["blink_in_interval"] == 0


def test_blink_inside_an_interval_is_flagged(window, service):
    outcome = _trial(window, service, _frames("interval2", 3, None))
    assert not outcome.requeue and outcome.row["blink_in_interval"] == 1
    assert outcome.row["refixated"] == 0
