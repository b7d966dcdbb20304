"""The practice block: easy trials before the main ones, repeated until the participant
answers well enough (``[practice]``), logged with ``block = practice``.

Like the scheduler, a pure state machine over ``next_plan()`` and ``record()`` with its own
seeded generator, so a resumed session replays its logged practice trials and knows whether the
practice was already passed (it is never repeated then).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from protocol.schema import Protocol
from study.procedures.scheduler import Outcome, TrialPlan

PRACTICE_TRACK_PREFIX = "practice/"


def is_practice(track: str) -> bool:
    """Whether a plan's (or a ``beh.tsv`` row's) track belongs to the practice block."""
    return track.startswith(PRACTICE_TRACK_PREFIX)


class PracticeBlock:
    """Plans practice trials: conditions in turn (the session's order), the practice levels in
    turn, a seed, conditioning and foveated interval drawn per new plan.

    Args:
        protocol: the validated protocol (``[practice]``, conditions, seed pool).
        seed: the practice block's own seed (independent of the main trials' streams, so the
            main sequence is the same with or without practice).
        condition_order: the session's condition order.
    """

    def __init__(self, *, protocol: Protocol, seed: int, condition_order: list[str]) -> None:
        self.settings = protocol.practice
        self._protocol = protocol
        self._rng = np.random.default_rng(seed)
        self._seed = int(seed)
        self._conditions = list(condition_order)
        self._seed_pool = protocol.stimulus.seed_pool()
        self._conditionings = protocol.stimulus.conditionings()
        self._next_stimulus = self._draw_stimulus()
        self._pending: TrialPlan | None = None
        self._outstanding: TrialPlan | None = None
        self._n_plans = 0
        self._block_responses = 0
        self._block_correct = 0
        self.blocks: list[dict] = []  # finished blocks: block, responses, correct, accuracy
        self.passed = False
        self.finished = self.settings.trials == 0
        self.n_responses = 0

    def level_for(self, condition: str, k: int) -> float:
        """The ``k``-th practice plan's level (``[practice] levels`` in turn, else the
        condition's easiest, ``level_max``)."""
        levels = self.settings.levels
        if levels:
            return float(levels[k % len(levels)])
        return float(self._protocol.condition(condition).level_max)

    def easiest_level(self, condition: str) -> float:
        """The example's level: the largest practice level (or the condition's ``level_max``)."""
        levels = self.settings.levels
        return (
            float(max(levels)) if levels else float(self._protocol.condition(condition).level_max)
        )

    def _draw_stimulus(self) -> tuple[int, int | str, int]:
        seed = int(self._seed_pool[int(self._rng.integers(len(self._seed_pool)))])
        conditioning = self._conditionings[int(self._rng.integers(len(self._conditionings)))]
        return seed, conditioning, int(self._rng.integers(1, 3))

    def upcoming_stimulus(self) -> tuple[int, int | str]:
        """(seed, conditioning) of the next new practice plan."""
        return self._next_stimulus[0], self._next_stimulus[1]

    def next_plan(self) -> TrialPlan:
        if self._outstanding is not None:
            raise RuntimeError("record() the outstanding plan before asking for the next one")
        if self.finished:
            raise RuntimeError("the practice is finished")
        if self._pending is not None:
            # A re-queued practice trial comes back with its interval order drawn again (keyed
            # by plan and attempt, so a replay draws the same), as the main trials do.
            pending, self._pending = self._pending, None
            rng = np.random.default_rng([self._seed, pending.plan_id, pending.attempt + 1])
            plan = replace(
                pending, attempt=pending.attempt + 1, interval_foveated=int(rng.integers(1, 3))
            )
        else:
            k = self._n_plans
            condition = self._conditions[k % len(self._conditions)]
            seed, conditioning, interval = self._next_stimulus
            self._next_stimulus = self._draw_stimulus()
            self._n_plans += 1
            plan = TrialPlan(
                plan_id=self._n_plans,
                track=PRACTICE_TRACK_PREFIX + condition,
                condition=condition,
                level=self.level_for(condition, k),
                seed=seed,
                conditioning=conditioning,
                interval_foveated=interval,
                track_index=k,
            )
        self._outstanding = plan
        return plan

    def record(self, plan: TrialPlan, *, outcome: Outcome, correct: bool | None = None) -> None:
        """A response counts towards the block; a block that is full ends the practice (the
        criterion met, or ``max_blocks`` reached) or starts the next block."""
        if plan != self._outstanding:
            raise RuntimeError("record() got a plan other than the outstanding one")
        self._outstanding = None
        if outcome == "requeue":
            self._pending = plan
            return
        if correct is None:
            raise ValueError("a response needs correct=True/False")
        self.n_responses += 1
        self._block_responses += 1
        self._block_correct += int(bool(correct))
        if self._block_responses < self.settings.trials:
            return
        accuracy = self._block_correct / self._block_responses
        self.blocks.append(
            {
                "block": len(self.blocks) + 1,
                "responses": self._block_responses,
                "correct": self._block_correct,
                "accuracy": accuracy,
            }
        )
        self._block_responses = self._block_correct = 0
        self.passed = accuracy >= self.settings.criterion
        self.finished = self.passed or len(self.blocks) >= self.settings.max_blocks

    def summary(self) -> dict:
        """The sidecar's ``practice`` record."""
        return {
            "trials_per_block": self.settings.trials,
            "criterion": self.settings.criterion,
            "max_blocks": self.settings.max_blocks,
            "blocks": list(self.blocks),
            "finished": self.finished,
            "passed": self.passed,
        }
