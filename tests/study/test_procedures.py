"""Procedures: staircase rules, QUEST+ convergence, constant stimuli, interleaving, re-queues and
replay from logged trials."""

from __future__ import annotations

import math

import numpy as np
import pytest

from generator.errors import FoveaError
from protocol import validate_protocol
from protocol.schema import Condition, SimulationSettings, StaircaseSettings
from study.observers import ParametricObserver
from study.procedures import LoggedTrial, Scheduler, replay
from study.procedures.tracks import StaircaseTrack
from tests.study.conftest import pilot_dict, small_protocol_dict

SEED = 1234


def _protocol(data):
    return validate_protocol(data, source="test")


def test_staircase_two_down_one_up_steps_and_reversals():
    condition = Condition(name="c", level_min=0.1, level_max=10.0)
    settings = StaircaseSettings(n_down=2, n_up=1, step_scale="log", step_sizes=[0.2, 0.1])
    track = StaircaseTrack(
        name="c/s1", condition=condition, settings=settings, start_level=1.0, max_trials=10
    )
    levels = []
    for correct in [True, True, True, True, False, True, True, False]:
        levels.append(track.next_level())
        track.update(level=levels[-1], correct=correct)
    log = [round(math.log10(v), 6) for v in levels]
    # two correct -> down 0.2; two correct -> down 0.2; wrong -> up (reversal: step 0.1); ...
    assert log == [0.0, 0.0, -0.2, -0.2, -0.4, -0.3, -0.3, -0.4]
    assert len(track.summary()["reversals"]) == 3
    assert not track.finished


def test_staircase_clamps_to_the_level_range():
    condition = Condition(name="c", level_min=0.5, level_max=2.0)
    settings = StaircaseSettings(n_down=1, n_up=1, step_scale="linear", step_sizes=[1.0])
    track = StaircaseTrack(
        name="c/s1", condition=condition, settings=settings, start_level=1.0, max_trials=5
    )
    for _ in range(3):
        track.update(level=track.next_level(), correct=False)
    assert track.next_level() == 2.0
    for _ in range(3):
        track.update(level=track.next_level(), correct=True)
    assert track.next_level() == 0.5


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_staircase_level_reached_along_different_paths_is_one_number(scale):
    # Linear: 0.5 +0.2 +0.2 is 0.8999999999999999 in floats, 0.7 +0.2 is 0.9; beh.tsv logged
    # both and the report pooled them as two levels.
    condition = Condition(name="c", level_min=0.1, level_max=5.0)
    settings = StaircaseSettings(n_down=1, n_up=1, step_scale=scale, step_sizes=[0.2, 0.1])
    track = StaircaseTrack(
        name="c/s1", condition=condition, settings=settings, start_level=0.5, max_trials=20
    )
    levels = []
    for correct in [False, False, True, False, True, True, False, False]:
        levels.append(track.next_level())
        track.update(level=levels[-1], correct=correct)
    if scale == "linear":
        assert levels == [0.5, 0.7, 0.9, 0.8, 0.9, 0.8, 0.7, 0.8]
    else:
        # -0.3 + 0.2 - 0.1 + 0.1 ...: the same log10 offset gives the same float every time.
        offsets = [round(math.log10(v / 0.5), 9) for v in levels]
        assert offsets == [0.0, 0.2, 0.4, 0.3, 0.4, 0.3, 0.2, 0.3]
    by_value = {}
    for v in levels:
        by_value.setdefault(round(v, 9), set()).add(v)
    assert all(len(same) == 1 for same in by_value.values())


def test_questplus_finds_a_parametric_observers_threshold():
    data = pilot_dict()
    data["conditions"] = data["conditions"][:1]
    data["procedure"]["trials_per_condition"] = 80
    data["procedure"]["questplus"] = {
        "n_levels": 25,
        "n_thresholds": 25,
        "widths_log10": [0.1, 0.2, 0.4],
        "lapse_rates": [0.02],
    }
    protocol = _protocol(data)
    truth = SimulationSettings(threshold=0.8, width=0.5, log_scale=True, lapse=0.02)
    observer = ParametricObserver(settings=truth)
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    scheduler = Scheduler(protocol=protocol, seed=SEED)
    while not scheduler.finished:
        plan = scheduler.next_plan()
        p = observer.p_correct(condition=plan.condition, level=plan.level)
        scheduler.record(plan, outcome="response", correct=bool(rng.random() < p))
    estimate = scheduler.summary()["acuity_centre"]["threshold_estimate"]
    assert abs(math.log10(estimate) - math.log10(0.8)) < 0.15, estimate


def test_constant_stimuli_present_every_level_the_set_number_of_times():
    data = pilot_dict()
    data["procedure"] = {"method": "constant", "constant": {"repeats": 3}}
    data["conditions"][0]["levels"] = [0.5, 1.0, 2.0]
    protocol = _protocol(data)
    scheduler = Scheduler(protocol=protocol, seed=SEED)
    seen: dict = {}
    while not scheduler.finished:
        plan = scheduler.next_plan()
        seen.setdefault(plan.condition, []).append(plan.level)
        scheduler.record(plan, outcome="response", correct=True)
    assert sorted(seen["acuity_centre"]) == [0.5] * 3 + [1.0] * 3 + [2.0] * 3
    assert len(seen["acuity_right6"]) == 5 * 3  # default: 5 log-spaced levels


def test_requeued_plan_comes_back_unchanged_and_the_track_waits_for_it():
    protocol = _protocol(small_protocol_dict(method="staircase", trials=6))
    scheduler = Scheduler(protocol=protocol, seed=SEED)
    first = scheduler.next_plan()
    scheduler.record(first, outcome="requeue")
    for _ in range(20):
        plan = scheduler.next_plan()
        if plan.track == first.track:
            break
        scheduler.record(plan, outcome="response", correct=True)
    assert (plan.plan_id, plan.level, plan.seed, plan.interval_foveated) == (
        first.plan_id,
        first.level,
        first.seed,
        first.interval_foveated,
    )
    assert plan.attempt == 2


def _run(scheduler, rng, break_prob=0.2):
    log = []
    while not scheduler.finished:
        plan = scheduler.next_plan()
        if rng.random() < break_prob:
            scheduler.record(plan, outcome="requeue")
            log.append(
                LoggedTrial(
                    len(log) + 1,
                    plan.track,
                    plan.condition,
                    plan.level,
                    plan.seed,
                    plan.interval_foveated,
                    "requeue",
                    None,
                )
            )
        else:
            correct = bool(rng.random() < 0.75)
            scheduler.record(plan, outcome="response", correct=correct)
            log.append(
                LoggedTrial(
                    len(log) + 1,
                    plan.track,
                    plan.condition,
                    plan.level,
                    plan.seed,
                    plan.interval_foveated,
                    "response",
                    correct,
                )
            )
    return log


@pytest.mark.parametrize("method", ["staircase", "questplus", "constant"])
def test_replaying_a_log_prefix_continues_exactly_as_uninterrupted(method):
    print("seed", SEED)
    data = small_protocol_dict(method=method, trials=8)
    data["conditions"][0]["levels"] = [0.5, 1.0, 2.0] if method == "constant" else []
    protocol = _protocol(data)
    full = _run(Scheduler(protocol=protocol, seed=SEED), np.random.default_rng(SEED))
    cut = len(full) // 2
    resumed = Scheduler(protocol=protocol, seed=SEED)
    replay(resumed, full[:cut], source="beh.tsv")
    rest = []
    for row in full[cut:]:  # the same outcomes as before
        plan = resumed.next_plan()
        rest.append((plan.track, plan.level, plan.seed, plan.interval_foveated))
        resumed.record(plan, outcome=row.outcome, correct=row.correct)
    assert rest == [(r.track, r.level, r.seed, r.interval_foveated) for r in full[cut:]]
    assert resumed.finished


def test_replay_refuses_a_log_from_another_seed():
    protocol = _protocol(small_protocol_dict())
    log = _run(Scheduler(protocol=protocol, seed=1), np.random.default_rng(0))
    with pytest.raises(FoveaError, match="does not match the procedure replayed"):
        replay(Scheduler(protocol=protocol, seed=2), log, source="beh.tsv")


def test_upcoming_stimulus_is_the_next_new_plans_stimulus():
    protocol = _protocol(small_protocol_dict())
    scheduler = Scheduler(protocol=protocol, seed=SEED)
    for _ in range(12):
        upcoming = scheduler.upcoming_stimulus()
        plan = scheduler.next_plan()
        assert (plan.seed, plan.conditioning) == upcoming
        scheduler.record(plan, outcome="response", correct=True)
        if scheduler.finished:
            break
