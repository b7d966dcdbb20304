"""Session structure without a window: counterbalancing (balanced Latin square from the
participant number), blocked or interleaved conditions, the practice block's criterion and
limit, the session plan's replay (a resumed session keeps its order and its passed practice),
and the protocol's checks of the new fields."""

from __future__ import annotations

import itertools

import pytest

from generator.errors import FoveaError
from protocol import validate_protocol
from study.procedures import LoggedTrial, PracticeBlock, SessionPlan, replay
from study.procedures.counterbalance import (
    condition_order,
    latin_square_row,
    participant_number,
)
from tests.study.conftest import small_protocol_dict

SEED = 77


def _four_conditions(**procedure) -> dict:
    data = small_protocol_dict(method="constant", trials=4)
    base = data["conditions"][0]
    data["conditions"] = [
        {**base, "name": f"c{k}", "fixation_deg": [float(k), 0.0]} for k in range(4)
    ]
    data["procedure"]["constant"] = {"repeats": 1, "n_levels": 2}
    data["procedure"].update(procedure)
    return data


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_balanced_latin_square_positions_and_first_order_carry_over(n):
    rows = n if n % 2 == 0 else 2 * n
    square = [latin_square_row(n, r) for r in range(rows)]
    for row in square:
        assert sorted(row) == list(range(n))
    for position in range(n):  # every item at every position equally often
        counts = [sum(row[position] == item for row in square) for item in range(n)]
        assert len(set(counts)) == 1
    # every ordered pair (a directly followed by b) equally often
    pairs = [(row[i], row[i + 1]) for row in square for i in range(n - 1)]
    counts = {pair: pairs.count(pair) for pair in itertools.permutations(range(n), 2)}
    assert len(set(counts.values())) == 1
    assert latin_square_row(n, rows) == square[0]  # the rows repeat


def test_participant_number_from_the_label():
    assert participant_number("01") == 1
    assert participant_number("sim07") == 7
    assert participant_number("P12b") == 12
    assert participant_number("alice") == participant_number("alice") >= 1


def test_condition_order_by_latin_square_is_recorded():
    p = validate_protocol(_four_conditions(counterbalance="latin_square"), source="t")
    orders = [condition_order(p, f"{k:02d}")[0] for k in range(1, 5)]
    assert orders[0] == ["c0", "c1", "c3", "c2"]
    assert len(set(map(tuple, orders))) == 4  # four participants, four orders
    names, record = condition_order(p, "06")  # participant 6: row 1 again (4 rows)
    assert names == orders[1]
    assert record == {
        "scheme": "latin_square",
        "order": "interleaved",
        "participant_number": 6,
        "latin_square_row": 1,
        "latin_square_rows": 4,
        "condition_order": names,
    }
    plain = validate_protocol(_four_conditions(), source="t")
    assert condition_order(plain, "03")[0] == ["c0", "c1", "c2", "c3"]


def _run(plan, *, correct=lambda plan: True, stop_after=None):
    """Drive a plan to its end (or ``stop_after`` trials); returns the logged trials."""
    logged = []
    while not plan.finished and (stop_after is None or len(logged) < stop_after):
        trial = plan.next_plan()
        ok = bool(correct(trial))
        logged.append(
            LoggedTrial(
                trial=len(logged) + 1,
                track=trial.track,
                condition=trial.condition,
                level=trial.level,
                seed=trial.seed,
                interval_foveated=trial.interval_foveated,
                outcome="response",
                correct=ok,
            )
        )
        plan.record(trial, outcome="response", correct=ok)
    return logged


def test_blocked_order_runs_one_condition_after_another_in_the_counterbalanced_order():
    data = _four_conditions(order="blocked", counterbalance="latin_square")
    p = validate_protocol(data, source="t")
    plan = SessionPlan(protocol=p, seed=SEED, participant="02")
    conditions = [t.condition for t in _run(plan)]
    blocks = [k for k, _ in itertools.groupby(conditions)]
    assert blocks == plan.condition_order == [f"c{i}" for i in latin_square_row(4, 1)]
    interleaved = validate_protocol(_four_conditions(), source="t")
    runs = [
        [t.condition for t in _run(SessionPlan(protocol=interleaved, seed=s, participant="02"))]
        for s in range(3)
    ]
    assert all(len([k for k, _ in itertools.groupby(run)]) > 4 for run in runs)


def _practice_protocol(**practice):
    data = _four_conditions()
    data["conditions"] = data["conditions"][:2]
    data["practice"] = {"trials": 3, "max_blocks": 3, "criterion": 0.75, **practice}
    return validate_protocol(data, source="t")


def test_practice_repeats_until_the_criterion_then_stops_at_the_limit():
    p = _practice_protocol(levels=[8.0, 4.0])
    block = PracticeBlock(protocol=p, seed=1, condition_order=["c1", "c0"])
    answers = iter([True, False, False, True, True, True])  # 1/3, then 3/3
    plans = []
    while not block.finished:
        plans.append(block.next_plan())
        block.record(plans[-1], outcome="response", correct=next(answers))
    assert [b["correct"] for b in block.blocks] == [1, 3] and block.passed
    assert [x.condition for x in plans] == ["c1", "c0"] * 3
    assert [x.level for x in plans] == [8.0, 4.0] * 3
    assert all(x.track.startswith("practice/") for x in plans)
    failing = PracticeBlock(protocol=p, seed=1, condition_order=["c0", "c1"])
    n = 0
    while not failing.finished:
        plan = failing.next_plan()
        if n == 1:  # a re-queued practice trial comes back with the next attempt
            failing.record(plan, outcome="requeue")
            plan = failing.next_plan()
            assert plan.attempt == 2
        failing.record(plan, outcome="response", correct=False)
        n += 1
    assert n == 9 and len(failing.blocks) == 3 and not failing.passed
    assert failing.summary()["blocks"][-1] == {
        "block": 3,
        "responses": 3,
        "correct": 0,
        "accuracy": 0.0,
    }
    assert PracticeBlock(protocol=p, seed=1, condition_order=["c0"]).level_for("c0", 0) == 8.0


def test_practice_comes_first_and_does_not_change_the_main_sequence():
    p = _practice_protocol()
    with_practice = _run(SessionPlan(protocol=p, seed=SEED, participant="01"))
    without = _run(
        SessionPlan(
            protocol=validate_protocol({**p.model_dump(mode="json"), "practice": {}}, source="t"),
            seed=SEED,
            participant="01",
        )
    )
    practice = [t for t in with_practice if t.track.startswith("practice/")]
    assert with_practice[: len(practice)] == practice and len(practice) == 3
    assert [t.level for t in practice] == [8.0] * 3  # the conditions' level_max by default
    main = [(t.track, t.level, t.seed) for t in with_practice[len(practice) :]]
    assert main == [(t.track, t.level, t.seed) for t in without]


@pytest.mark.parametrize("stop_after", [2, 5])
def test_replay_continues_the_same_order_and_never_repeats_a_passed_practice(stop_after):
    p = _practice_protocol()
    data = p.model_dump(mode="json")
    data["procedure"].update(order="blocked", counterbalance="latin_square")
    p = validate_protocol(data, source="t")
    full = _run(SessionPlan(protocol=p, seed=SEED, participant="02"))
    resumed = SessionPlan(protocol=p, seed=SEED, participant="02")
    replay(resumed, full[:stop_after], source="test")
    assert resumed.block == ("practice" if stop_after < 3 else "main")
    rest = _run(resumed)
    assert [(t.track, t.level, t.seed) for t in full[stop_after:]] == [
        (t.track, t.level, t.seed) for t in rest
    ]


def test_protocol_checks_practice_levels_and_text_fields():
    data = _four_conditions()
    data["practice"] = {"trials": 2, "levels": [20.0]}
    with pytest.raises(FoveaError, match="field practice.levels: 20 lies outside"):
        validate_protocol(data, source="t")
    data = _four_conditions()
    data["instructions"] = {"break_text": "{done} of {totl}"}
    with pytest.raises(FoveaError, match="break_text: only the fields"):
        validate_protocol(data, source="t")
    data["instructions"] = {
        "goodbye": "Done in {duration}.",
        "break_text": "Block {block}/{blocks}",
    }
    validate_protocol(data, source="t")
