"""The trial scheduler: interleaves a protocol's tracks, draws each trial's stimulus, re-queues.

Everything random is drawn from one seeded generator in a fixed order, and the scheduler's state
changes only through ``next_plan()`` and ``record()``. A resumed session therefore replays the
logged trials through a fresh scheduler (``replay``) and continues exactly as if never interrupted;
a logged trial that does not match the replayed plan means the protocol or seed changed, and is
refused.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from generator.errors import FoveaError
from protocol.levels import start_level
from protocol.schema import Protocol
from study.procedures.tracks import ConstantTrack, QuestPlusTrack, StaircaseTrack, Track

Outcome = Literal["response", "requeue"]


@dataclass(frozen=True)
class TrialPlan:
    """What the next trial presents.

    Attributes:
        plan_id: running number of distinct plans (a re-queued trial keeps its id).
        track: the track that chose the level.
        condition: protocol condition name.
        level: the manipulated value.
        seed: generation seed (shared by the foveated image and its twin).
        conditioning: class label or prompt.
        interval_foveated: 1 or 2.
        track_index: 0-based number of this plan within its track.
        attempt: 1 for the first presentation, +1 per re-queue.
    """

    plan_id: int
    track: str
    condition: str
    level: float
    seed: int
    conditioning: int | str
    interval_foveated: int
    track_index: int = 0
    attempt: int = 1


def build_tracks(
    *, protocol: Protocol, rng: np.random.Generator, condition_order: list[str] | None = None
) -> list[Track]:
    """The tracks a protocol's procedure runs, in condition order (``condition_order``: the
    session's, e.g. counterbalanced; None: the protocol's)."""
    procedure = protocol.procedure
    tracks: list[Track] = []
    names = condition_order or [c.name for c in protocol.conditions]
    for condition in (protocol.condition(name) for name in names):
        if procedure.method == "constant":
            tracks.append(
                ConstantTrack(
                    name=condition.name, condition=condition, settings=procedure.constant, rng=rng
                )
            )
        elif procedure.method == "questplus":
            tracks.append(
                QuestPlusTrack(
                    name=condition.name,
                    condition=condition,
                    settings=procedure.questplus,
                    max_trials=procedure.trials_per_condition,
                )
            )
        else:
            settings = procedure.staircase
            n = settings.n_staircases
            per = math.ceil(procedure.trials_per_condition / n)
            log = settings.step_scale == "log"
            start = start_level(condition, procedure)
            for k in range(n):
                # 0, +1, -1, +2, -2 ... spreads starts around the start level.
                offset = (k + 1) // 2 * (1 if k % 2 else -1) * settings.start_spread_log10
                level = start * 10**offset if log else start + offset
                level = min(max(level, condition.level_min), condition.level_max)
                tracks.append(
                    StaircaseTrack(
                        name=f"{condition.name}/s{k + 1}",
                        condition=condition,
                        settings=settings,
                        start_level=level,
                        max_trials=per,
                    )
                )
    return tracks


class Scheduler:
    """Chooses trials for one session.

    Args:
        protocol: the validated protocol.
        seed: the session's scheduling seed.
        condition_order: the session's condition order (``study.procedures.counterbalance``);
            None: the protocol's. With ``[procedure] order = "blocked"`` the conditions run one
            after another in this order.
    """

    def __init__(
        self, *, protocol: Protocol, seed: int, condition_order: list[str] | None = None
    ) -> None:
        # spawn(n)'s first children do not depend on n: the track and stimulus streams are as
        # before; the fourth keys the interval order of re-queued plans (the third is the
        # practice block's, study.procedures.session_plan).
        track_seq, stimulus_seq, _, requeue_seq = np.random.SeedSequence(seed).spawn(4)
        self._requeue_key = int(requeue_seq.generate_state(1, dtype=np.uint64)[0])
        self._max_attempts = protocol.procedure.max_attempts
        self.given_up = 0
        self._just_requeued: str | None = None  # the track whose plan was just re-queued
        self._rng = np.random.default_rng(track_seq)
        # Stimuli (seed, conditioning, interval) come from their own stream: the next one can be
        # known ahead (twin prefetch), and a track's trials do not depend on how often other
        # tracks' trials were re-queued.
        self._stimulus_rng = np.random.default_rng(stimulus_seq)
        self.tracks = build_tracks(
            protocol=protocol, rng=self._rng, condition_order=condition_order
        )
        self._blocked = protocol.procedure.order == "blocked"
        self._by_name = {t.name: t for t in self.tracks}
        self._seed_pool = protocol.stimulus.seed_pool()
        self._conditionings = protocol.stimulus.conditionings()
        self._stimulus_queue: deque[tuple[int, int | str, int]] = deque()
        self._pending: dict[str, TrialPlan] = {}
        self._n_plans = 0
        self._track_plans = {t.name: 0 for t in self.tracks}
        self._outstanding: TrialPlan | None = None
        self.n_responses = 0

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.tracks)

    @property
    def total_planned_responses(self) -> int:
        """Responses the procedure asks for in all (for break texts and progress)."""
        return sum(
            getattr(t, "_max_trials", None) or len(getattr(t, "_sequence", [])) for t in self.tracks
        )

    def next_plan(self) -> TrialPlan:
        """The next trial; call ``record`` with its outcome before asking again."""
        if self._outstanding is not None:
            raise RuntimeError("record() the outstanding plan before asking for the next one")
        active = [t for t in self.tracks if not t.finished]
        if not active:
            raise RuntimeError("the procedure is finished")
        if self._blocked:  # the current condition's tracks only (tracks are in condition order)
            active = [t for t in active if t.condition == active[0].condition]
        # A trial just aborted comes back later: another track goes first when there is one.
        others = [t for t in active if t.name != self._just_requeued]
        active = others or active
        track = active[int(self._rng.integers(len(active)))]
        pending = self._pending.pop(track.name, None)
        if pending is not None:
            plan = replace(
                pending, attempt=pending.attempt + 1, interval_foveated=self._new_interval(pending)
            )
        else:
            self.upcoming_stimulus()  # fills the queue when empty
            seed, conditioning, interval = self._stimulus_queue.popleft()
            self._n_plans += 1
            plan = TrialPlan(
                plan_id=self._n_plans,
                track=track.name,
                condition=track.condition,
                level=track.next_level(),
                seed=seed,
                conditioning=conditioning,
                interval_foveated=interval,
                track_index=self._track_plans[track.name],
            )
            self._track_plans[track.name] += 1
        self._outstanding = plan
        return plan

    def _new_interval(self, plan: TrialPlan) -> int:
        """A re-queued plan's interval order, drawn again (keyed by the plan and attempt, so a
        replay draws the same): the participant cannot tell where the altered image will be."""
        rng = np.random.default_rng([self._requeue_key, plan.plan_id, plan.attempt + 1])
        return int(rng.integers(1, 3))

    def gives_up(self, plan: TrialPlan) -> bool:
        """A re-queue of ``plan`` gives it up: its ``max_attempts`` presentations are used."""
        return plan.attempt >= self._max_attempts

    def upcoming_stimulus(self) -> tuple[int, int | str]:
        """(seed, conditioning) of the next new plan (a re-queued plan keeps its own)."""
        if not self._stimulus_queue:
            seeds = self._stimulus_rng.permutation(self._seed_pool)
            picks = self._stimulus_rng.integers(len(self._conditionings), size=len(seeds))
            intervals = self._stimulus_rng.integers(1, 3, size=len(seeds))
            self._stimulus_queue.extend(
                (int(s), self._conditionings[int(k)], int(i))
                for s, k, i in zip(seeds, picks, intervals, strict=True)
            )
        seed, conditioning, _ = self._stimulus_queue[0]
        return seed, conditioning

    def record(self, plan: TrialPlan, *, outcome: Outcome, correct: bool | None = None) -> None:
        """Record the outcome of ``plan``: a response (updates its track) or a re-queue."""
        if plan != self._outstanding:
            raise RuntimeError("record() got a plan other than the outstanding one")
        self._outstanding = None
        self._just_requeued = plan.track if outcome == "requeue" else None
        if outcome == "requeue":
            if self.gives_up(plan):  # the track goes on with a new plan (new stimulus)
                self.given_up += 1
            else:
                self._pending[plan.track] = plan
            return
        if correct is None:
            raise ValueError("a response needs correct=True/False")
        self._by_name[plan.track].update(level=plan.level, correct=bool(correct))
        self.n_responses += 1

    def summary(self) -> dict:
        """Per-track estimates for the session sidecar."""
        return {t.name: t.summary() for t in self.tracks}


@dataclass(frozen=True)
class LoggedTrial:
    """The fields of a ``beh.tsv`` row the scheduler replays."""

    trial: int
    track: str
    condition: str
    level: float
    seed: int
    interval_foveated: int
    outcome: Outcome
    correct: bool | None


def replay(scheduler: Scheduler, rows: list[LoggedTrial], *, source: str) -> None:
    """Feed logged trials through ``scheduler``, checking each matches what it would have planned.

    Raises:
        FoveaError: a logged trial differs from the replayed plan (changed protocol, seed or code).
    """
    for row in rows:
        if scheduler.finished:
            raise FoveaError(f"{source}: trial {row.trial} was logged after the procedure finished")
        plan = scheduler.next_plan()
        same = (
            plan.track == row.track
            and plan.condition == row.condition
            and math.isclose(plan.level, row.level, rel_tol=1e-9, abs_tol=1e-12)
            and plan.seed == row.seed
            and plan.interval_foveated == row.interval_foveated
        )
        if not same:
            raise FoveaError(
                f"{source}: trial {row.trial} does not match the procedure replayed from the "
                f"protocol and seed (logged {row.track} level {row.level!r} seed {row.seed}, "
                f"replayed {plan.track} level {plan.level!r} seed {plan.seed}); was the protocol "
                "or --seed changed? Start a new session instead"
            )
        scheduler.record(plan, outcome=row.outcome, correct=row.correct)
