"""A session's trial plan: the counterbalanced condition order, the practice block, then the
main scheduler. It answers the scheduler's interface (``next_plan``, ``record``, ``finished``,
``n_responses``...), so the session loop and ``replay`` drive it like a ``Scheduler``."""

from __future__ import annotations

import numpy as np

from protocol.schema import Protocol
from study.procedures.counterbalance import condition_order
from study.procedures.practice import PracticeBlock, is_practice
from study.procedures.scheduler import Outcome, Scheduler, TrialPlan


class SessionPlan:
    """Practice first (until it is finished), then the main trials.

    Args:
        protocol: the validated protocol.
        seed: the session's scheduling seed (the main scheduler's, as without practice; the
            practice block's seed is derived from it).
        participant: the participant label (its number chooses the Latin-square row).

    Attributes:
        counterbalancing: the sidecar's ``counterbalancing`` record.
        condition_order: the session's condition order.
    """

    def __init__(self, *, protocol: Protocol, seed: int, participant: str) -> None:
        self.condition_order, self.counterbalancing = condition_order(protocol, participant)
        self.main = Scheduler(protocol=protocol, seed=seed, condition_order=self.condition_order)
        practice_seed = np.random.SeedSequence(seed).spawn(3)[2]  # the scheduler uses 0 and 1
        self.practice = PracticeBlock(
            protocol=protocol,
            seed=int(practice_seed.generate_state(1)[0]),
            condition_order=self.condition_order,
        )

    @property
    def block(self) -> str:
        """``practice`` or ``main``: the block the next plan belongs to."""
        return "main" if self.practice.finished else "practice"

    @property
    def finished(self) -> bool:
        return self.main.finished

    @property
    def n_responses(self) -> int:
        """Main-block responses (breaks and progress count these)."""
        return self.main.n_responses

    @property
    def total_planned_responses(self) -> int:
        return self.main.total_planned_responses

    def next_plan(self) -> TrialPlan:
        return (self.main if self.practice.finished else self.practice).next_plan()

    def upcoming_stimulus(self) -> tuple[int, int | str]:
        return (self.main if self.practice.finished else self.practice).upcoming_stimulus()

    def record(self, plan: TrialPlan, *, outcome: Outcome, correct: bool | None = None) -> None:
        target = self.practice if is_practice(plan.track) else self.main
        target.record(plan, outcome=outcome, correct=correct)

    def __getattr__(self, name: str):
        """Anything else is the main scheduler's (``tracks``, ``given_up``...)."""
        if name in ("main", "practice"):  # not set yet (during __init__): no recursion
            raise AttributeError(name)
        return getattr(self.main, name)

    def summary(self) -> dict:
        """The main procedure's per-track estimates (the sidecar's ``procedure_estimates``)."""
        return self.main.summary()
