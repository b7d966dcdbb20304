"""Aborted trials come back with their interval order drawn again, up to [procedure]
max_attempts (then given up); Escape during an interval ends that trial (re-queued unless the
operator quits); the operator's pause and recalibrate keys between trials and the status line;
through the real window where keys are involved (XTest)."""

from __future__ import annotations

import threading

import pytest

from protocol.run_settings import InstructionSettings
from study.operator import OperatorControls
from study.presenter import QuitRequested
from study.procedures import Scheduler, replay
from study.procedures.scheduler import LoggedTrial
from tests.study.trial_rig import make_runner, plan, press_keys, rig_protocol


def _requeue_run(scheduler, n: int):
    """Re-queue the first plan ``n`` times; the plans presented."""
    plans = []
    for _ in range(n):
        p = scheduler.next_plan()
        plans.append(p)
        scheduler.record(p, outcome="requeue")
    return plans


def test_requeued_plan_gets_a_new_interval_order_and_is_given_up_after_max_attempts():
    protocol = rig_protocol(
        procedure={"max_attempts": 4, "method": "staircase", "staircase": {"n_staircases": 1}}
    )
    scheduler = Scheduler(protocol=protocol, seed=7)
    plans = _requeue_run(scheduler, 4)
    assert [p.attempt for p in plans] == [1, 2, 3, 4] and len({p.plan_id for p in plans}) == 1
    assert len({p.interval_foveated for p in plans}) == 2  # drawn again (keyed), not fixed
    assert scheduler.gives_up(plans[-1]) and scheduler.given_up == 1
    after = scheduler.next_plan()  # the track goes on with a new stimulus
    assert after.plan_id != plans[0].plan_id and after.attempt == 1
    # a replay of the logged rows draws the same intervals
    again = Scheduler(protocol=protocol, seed=7)
    rows = [
        LoggedTrial(
            trial=i + 1,
            track=p.track,
            condition=p.condition,
            level=p.level,
            seed=p.seed,
            interval_foveated=p.interval_foveated,
            outcome="requeue",
            correct=None,
        )
        for i, p in enumerate(plans)
    ]
    replay(again, rows, source="test")
    assert again.given_up == 1 and again.next_plan() == after


class _FakePresenter:
    def __init__(self, keys, *, simulated=False):
        self._keys, self.screens, self.simulated = set(keys), [], simulated

    def take_operator_keys(self):
        keys, self._keys = self._keys, set()
        return keys

    def text_screen(self, text, *, phase, **kw):
        self.screens.append(phase)


def test_operator_pause_and_recalibrate_between_trials_and_the_status_line():
    calls, lines = [], []
    presenter = _FakePresenter({"p", "c"})
    controls = OperatorControls(
        presenter=presenter,
        calibrate=lambda: calls.append("calibrate"),
        say=lines.append,
        calibrations=lambda: [{"avg_error_deg": 0.42}, {"avg_error_deg": None}],
        texts=InstructionSettings(),
    )
    controls.between_trials()
    assert presenter.screens == ["pause"] and calls == ["calibrate"] and controls.pauses == 1
    controls.between_trials()  # nothing pressed since
    assert calls == ["calibrate"]
    row = {
        "condition": "acuity_right3",
        "level": 2.0,
        "correct": 1,
        "gen_latency_s": 0.5,
        "abort_reason": None,
    }
    line = controls.status_line(trial=7, done=5, total=40, row=row, requeued=False)
    assert "trial    7 (5 of 40 done) acuity_right3" in line and "last validation 0.42 deg" in line
    assert line.endswith("[p: pause, c: recalibrate]")  # for the lab's operator
    practice = controls.status_line(
        trial=2, done=0, total=40, row={**row, "block": "practice"}, requeued=False
    )
    assert "trial    2 (practice) acuity_right3" in practice  # not '(0 of 40 done)'
    presenter.simulated = True  # nobody at a simulation's keyboard
    assert "recalibrate" not in controls.status_line(
        trial=7, done=5, total=40, row=row, requeued=False
    )


@pytest.fixture(scope="module")
def rig(virtual_x):
    from psychopy import visual

    from protocol.geometry import stimulus_geometry
    from study.service.start import start_service

    protocol = rig_protocol()
    service = start_service(
        protocol, geometry=stimulus_geometry(protocol), scenes=None, log=lambda *a: None
    )
    win = visual.Window(
        size=(800, 600), units="pix", fullscr=False, checkTiming=False, waitBlanking=False
    )
    yield protocol, service, win
    win.close()
    service.close()


def _escape_in_interval1(rig, virtual_x, answer: str, trial: int):
    protocol, service, win = rig
    protocol = rig_protocol(simulation={"speed": 1}, timing={"stimulus_duration_s": 3.0})
    runner, gaze = make_runner(protocol, service=service, win=win, requeue_dropped_frames=False)
    sent = {"done": False}

    def script(t, shown):
        if shown == "interval1" and not sent["done"]:
            sent["done"] = True
            press_keys(virtual_x, win, ["Escape"])
            threading.Thread(
                target=press_keys,
                args=(virtual_x, win, [answer]),
                kwargs={"delay_s": 0.5},
                daemon=True,
            ).start()
        return ...

    gaze.script = script
    return runner.run(plan=plan(protocol), trial=trial)


@pytest.mark.display
def test_escape_in_an_interval_aborts_the_trial_and_no_requeues_it(rig, virtual_x):
    outcome = _escape_in_interval1(rig, virtual_x, "n", trial=1)
    assert outcome.requeue and outcome.row["abort_reason"] == "escape"
    assert outcome.row["response"] is None and outcome.row["onset2_s"] is None  # not resumed


@pytest.mark.display
def test_escape_in_an_interval_then_yes_quits(rig, virtual_x):
    with pytest.raises(QuitRequested):
        _escape_in_interval1(rig, virtual_x, "y", trial=2)


@pytest.mark.display
def test_operator_keys_pressed_during_a_trial_count_between_trials(rig, virtual_x):
    """``p`` typed while the trial runs survives the trial's key-buffer clears."""
    protocol, service, win = rig
    runner, gaze = make_runner(protocol, service=service, win=win, requeue_dropped_frames=False)
    sent = {"done": False}

    def script(t, shown):
        if shown == "fixation" and not sent["done"]:
            sent["done"] = True
            press_keys(virtual_x, win, ["p"])
        return ...

    gaze.script = script
    outcome = runner.run(plan=plan(protocol), trial=3)
    assert not outcome.requeue
    assert "p" in runner.presenter.take_operator_keys()
    assert runner.presenter.take_operator_keys() == set()


def test_an_aborted_trial_comes_back_after_another_tracks_trial():
    protocol = rig_protocol(procedure={"method": "staircase", "staircase": {"n_staircases": 2}})
    for seed in range(4):
        scheduler = Scheduler(protocol=protocol, seed=seed)
        aborted = scheduler.next_plan()
        scheduler.record(aborted, outcome="requeue")
        between = 0
        while (plan_ := scheduler.next_plan()).track != aborted.track:
            between += 1
            scheduler.record(plan_, outcome="response", correct=True)
        assert between >= 1  # not at once: another track's trial first
        assert plan_.plan_id == aborted.plan_id and plan_.attempt == aborted.attempt + 1


def test_abort_streak_counts_aborted_trials_in_a_row():
    """A response ends the run of aborts; a stopped recording neither counts nor ends it; the
    limit-th abort says what happened and the count starts again."""
    from study.operator import AbortStreak
    from study.trial.state import TrialOutcome

    def outcome(reason=None, *, stopped=False):
        row = {"abort_reason": reason}
        return TrialOutcome(
            row=row, requeue=reason is not None, correct=None, recording_stopped=stopped
        )

    streak = AbortStreak(3)
    assert streak.add(outcome("fixation_break")) is None
    assert streak.add(outcome()) is None  # answered: the run starts again
    said = [
        streak.add(o)
        for o in (
            outcome("fixation_break"),
            outcome("recording_stopped", stopped=True),
            outcome("deadline"),
            outcome("fixation_break"),
            outcome("deadline"),
        )
    ]
    assert said == [
        None,
        None,
        None,
        "3 trials in a row were aborted (fixation_break 2, deadline 1)",
        None,
    ]


@pytest.mark.display
def test_after_too_many_aborts_the_window_asks_the_operator(rig, virtual_x):
    """``C`` on the question recalibrates, then the session goes on (SPACE goes on at once)."""
    protocol, service, win = rig
    runner, _ = make_runner(protocol, service=service, win=win, requeue_dropped_frames=False)
    presenter = runner.presenter
    presenter.auto_advance = False  # the operator's keys, through the real window
    calls, lines = [], []
    controls = OperatorControls(
        presenter=presenter,
        calibrate=lambda: calls.append("calibrate"),
        say=lines.append,
        calibrations=lambda: [],
        texts=protocol.instructions,
    )
    for key, expected in (("c", ["calibrate"]), ("space", [])):
        calls.clear()
        threading.Thread(
            target=press_keys, args=(virtual_x, win, [key]), kwargs={"delay_s": 0.5}, daemon=True
        ).start()
        controls.after_aborts("10 trials in a row were aborted (deadline 10)")
        assert calls == expected
    assert "10 trials in a row were aborted (deadline 10)" in lines[0]
