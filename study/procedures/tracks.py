"""Level-selection tracks: one QUEST+, staircase or constant-stimuli sequence each.

A track is a pure state machine: ``next_level()`` proposes, ``update(level=, correct=)`` records a
response. Given the same construction arguments and the same sequence of updates, a track proposes
the same levels, which is what lets a resumed session rebuild its state from ``beh.tsv``.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from protocol.schema import (
    Condition,
    ConstantSettings,
    QuestPlusSettings,
    StaircaseSettings,
)


class Track(Protocol):
    """One sequence of levels for one condition."""

    name: str
    condition: str

    @property
    def finished(self) -> bool: ...

    def next_level(self) -> float: ...

    def update(self, *, level: float, correct: bool) -> None: ...

    def summary(self) -> dict: ...


def _log_grid(low: float, high: float, n: int) -> np.ndarray:
    return np.linspace(math.log10(low), math.log10(high), n)


class ConstantTrack:
    """Method of constant stimuli: every level ``repeats`` times, in a seeded random order.

    Args:
        name: track name (written to ``beh.tsv`` column ``track``).
        condition: the protocol condition.
        settings: repeats / default level count.
        rng: consumed once at construction for the order.
    """

    def __init__(
        self,
        *,
        name: str,
        condition: Condition,
        settings: ConstantSettings,
        rng: np.random.Generator,
    ) -> None:
        self.name = name
        self.condition = condition.name
        if condition.levels:
            levels = [float(v) for v in condition.levels]
        else:
            levels = [
                float(10**x)
                for x in _log_grid(condition.level_min, condition.level_max, settings.n_levels)
            ]
        sequence = np.repeat(np.asarray(levels), settings.repeats)
        self._sequence = [float(v) for v in sequence[rng.permutation(sequence.size)]]
        self._index = 0
        self._responses: list[tuple[float, bool]] = []

    @property
    def finished(self) -> bool:
        return self._index >= len(self._sequence)

    def next_level(self) -> float:
        return self._sequence[self._index]

    def update(self, *, level: float, correct: bool) -> None:
        self._responses.append((level, bool(correct)))
        self._index += 1

    def summary(self) -> dict:
        by_level: dict[float, list[bool]] = {}
        for level, correct in self._responses:
            by_level.setdefault(level, []).append(correct)
        return {
            "method": "constant",
            "n_trials": len(self._responses),
            "proportion_correct": {repr(k): float(np.mean(v)) for k, v in sorted(by_level.items())},
        }


class StaircaseTrack:
    """An n-down-1-up (generally n-down-m-up) staircase on a log or linear scale.

    Correct answers make the task harder: with larger levels meaning more degradation, the level
    goes down after ``n_down`` correct answers in a row and up after ``n_up`` wrong ones. Steps
    shrink with the number of reversals (``step_sizes``); levels are clamped to the condition's
    range. 2-down-1-up converges on 70.7 % correct (Levitt 1971).
    """

    def __init__(
        self,
        *,
        name: str,
        condition: Condition,
        settings: StaircaseSettings,
        start_level: float,
        max_trials: int,
    ) -> None:
        self.name = name
        self.condition = condition.name
        self._settings = settings
        self._log = settings.step_scale == "log"
        self._low = self._to_x(condition.level_min)
        self._high = self._to_x(condition.level_max)
        self._x = min(max(self._to_x(start_level), self._low), self._high)
        self._max_trials = max_trials
        self._n_trials = 0
        self._correct_run = 0
        self._wrong_run = 0
        self._last_direction = 0
        self._reversal_levels: list[float] = []

    def _to_x(self, level: float) -> float:
        return math.log10(level) if self._log else float(level)

    def _to_level(self, x: float) -> float:
        return float(10**x) if self._log else float(x)

    @property
    def finished(self) -> bool:
        return self._n_trials >= self._max_trials

    def next_level(self) -> float:
        return self._to_level(self._x)

    def update(self, *, level: float, correct: bool) -> None:
        self._n_trials += 1
        if correct:
            self._correct_run += 1
            self._wrong_run = 0
            if self._correct_run >= self._settings.n_down:
                self._correct_run = 0
                self._move(-1)
        else:
            self._wrong_run += 1
            self._correct_run = 0
            if self._wrong_run >= self._settings.n_up:
                self._wrong_run = 0
                self._move(+1)

    def _move(self, direction: int) -> None:
        if self._last_direction and direction != self._last_direction:
            self._reversal_levels.append(self._to_level(self._x))
        self._last_direction = direction
        steps = self._settings.step_sizes
        step = steps[min(len(self._reversal_levels), len(steps) - 1)]
        # Rounded so that a level reached along different paths is one number (0.5 + 0.2 + 0.2
        # is 0.8999999999999999, 0.7 + 0.2 is 0.9): beh.tsv, the report's pooling by level and a
        # stimulus set's levels then agree.
        x = round(self._x + direction * step, 12)
        self._x = min(max(x, self._low), self._high)

    def summary(self) -> dict:
        last = self._reversal_levels[-6:]
        if last and self._log:
            estimate = float(10 ** np.mean(np.log10(last)))
        elif last:
            estimate = float(np.mean(last))
        else:
            estimate = None
        return {
            "method": "staircase",
            "n_trials": self._n_trials,
            "reversals": self._reversal_levels,
            "threshold_estimate": estimate,
            "estimate_rule": "mean of the last <= 6 reversals (geometric on a log scale)",
        }


class QuestPlusTrack:
    """QUEST+ over log10(level) with a cumulative-normal psychometric function (2AFC: guess 0.5).

    The function's mean is the level where the unscaled sigmoid reaches 0.5 — psignifit's
    threshold definition — so ``summary()['threshold_estimate']`` compares with the analysis.
    Stimulus selection is ``min_entropy`` (deterministic).
    """

    def __init__(
        self, *, name: str, condition: Condition, settings: QuestPlusSettings, max_trials: int
    ) -> None:
        import questplus

        self.name = name
        self.condition = condition.name
        if condition.levels:
            stim = np.log10(np.asarray(sorted(condition.levels), dtype=float))
        else:
            stim = _log_grid(condition.level_min, condition.level_max, settings.n_levels)
        lo, hi = math.log10(condition.level_min), math.log10(condition.level_max)
        if condition.levels:
            lo, hi = min(lo, float(stim.min())), max(hi, float(stim.max()))
        self._stim = stim
        # Level values are produced from the grid, so a level read back from beh.tsv maps back
        # exactly; the nearest grid point covers anything else.
        self._level_to_x = {float(10**x): float(x) for x in stim}
        self._qp = questplus.QuestPlus(
            stim_domain={"intensity": stim},
            param_domain={
                "mean": np.linspace(lo, hi, settings.n_thresholds),
                "sd": np.asarray(settings.widths_log10, dtype=float),
                "lower_asymptote": np.asarray([0.5]),
                "lapse_rate": np.asarray(settings.lapse_rates, dtype=float),
            },
            outcome_domain={"response": ["Correct", "Incorrect"]},
            func="norm_cdf",
            stim_scale="linear",
            stim_selection_method="min_entropy",
        )
        self._max_trials = max_trials
        self._n_trials = 0
        self._next: float | None = None

    @property
    def finished(self) -> bool:
        return self._n_trials >= self._max_trials

    def next_level(self) -> float:
        if self._next is None:  # QUEST+'s entropy search is the costly part: once per update
            self._next = float(10 ** self._qp.next_stim["intensity"])
        return self._next

    def update(self, *, level: float, correct: bool) -> None:
        x = self._level_to_x.get(float(level))
        if x is None:
            x = float(self._stim[np.argmin(np.abs(self._stim - math.log10(level)))])
        self._qp.update(
            stim={"intensity": x}, outcome={"response": "Correct" if correct else "Incorrect"}
        )
        self._n_trials += 1
        self._next = None

    def summary(self) -> dict:
        estimate = self._qp.param_estimate
        return {
            "method": "questplus",
            "n_trials": self._n_trials,
            "threshold_estimate": float(10 ** estimate["mean"]),
            "sd_log10_estimate": float(estimate["sd"]),
            "lapse_estimate": float(estimate["lapse_rate"]),
        }
