"""The study's QUEST+ procedure, run for many simulated experiments at once.

``study.procedures.tracks.QuestPlusTrack`` drives ``questplus.QuestPlus`` (xarray-based, about
15 ms per trial here): too slow for the hundreds of simulated experiments that validation needs.
``LockstepQuestPlus`` is the same algorithm on plain numpy arrays, for R independent runs in
lockstep: the same stimulus grid (log10 level), the same parameter grid (mean, sd on log10 level,
lapse; guess 0.5; uniform prior), the same psychometric function (cumulative normal) and the same
min-expected-entropy stimulus choice, computed in the same order of operations.
tests/analysis/test_adaptive.py checks that it picks the same levels as the study's track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True, kw_only=True)
class QuestPlusGrid:
    """QUEST+ domains, as the study builds them from a condition and ``[procedure.questplus]``.

    Attributes:
        stim_log10: (S,) candidate log10 levels.
        mean_log10: (M,) threshold grid (log10 level).
        sd_log10: (D,) psychometric SD grid (log10 units).
        lapse: (A,) lapse-rate grid.
    """

    stim_log10: np.ndarray
    mean_log10: np.ndarray
    sd_log10: np.ndarray
    lapse: np.ndarray

    @classmethod
    def for_condition(
        cls,
        *,
        level_min: float,
        level_max: float,
        levels: tuple[float, ...] = (),
        n_levels: int = 25,
        n_thresholds: int = 25,
        widths_log10: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4),
        lapse_rates: tuple[float, ...] = (0.0, 0.02, 0.05),
    ) -> QuestPlusGrid:
        """The grid ``QuestPlusTrack`` uses (defaults: the protocol schema's defaults)."""
        if levels:
            stim = np.log10(np.asarray(sorted(levels), dtype=float))
        else:
            stim = np.linspace(math.log10(level_min), math.log10(level_max), n_levels)
        lo, hi = math.log10(level_min), math.log10(level_max)
        if levels:
            lo, hi = min(lo, float(stim.min())), max(hi, float(stim.max()))
        return cls(
            stim_log10=stim,
            mean_log10=np.linspace(lo, hi, n_thresholds),
            sd_log10=np.asarray(widths_log10, dtype=float),
            lapse=np.asarray(lapse_rates, dtype=float),
        )


class LockstepQuestPlus:
    """R independent QUEST+ runs advanced together.

    Args:
        grid: the domains.
        n_runs: number of runs R.
        guess: lower asymptote (0.5 for 2AFC).
    """

    def __init__(self, *, grid: QuestPlusGrid, n_runs: int, guess: float = 0.5) -> None:
        self.grid = grid
        x = grid.stim_log10[:, None, None, None]
        mu = grid.mean_log10[None, :, None, None]
        sd = grid.sd_log10[None, None, :, None]
        lapse = grid.lapse[None, None, None, :]
        # questplus.psychometric_function.norm_cdf: gamma + (1 - gamma - delta) * Phi((x - mu) / sd)
        p = guess + (1 - guess - lapse) * special.ndtr((x - mu) / sd)
        self._p_correct = p.reshape(
            len(grid.stim_log10), -1
        )  # (S, G), G in (mean, sd, lapse) order
        n_params = self._p_correct.shape[1]
        self.posterior = np.full((n_runs, n_params), 1.0 / n_params)

    @property
    def n_runs(self) -> int:
        return self.posterior.shape[0]

    def next_index(self) -> np.ndarray:
        """(R,) index into ``grid.stim_log10`` of each run's next stimulus (min expected entropy)."""
        expected = np.zeros((self.n_runs, self._p_correct.shape[0]))
        for lik in (self._p_correct, 1.0 - self._p_correct):
            new_post = self.posterior[:, None, :] * lik[None, :, :]  # (R, S, G)
            pk = new_post.sum(axis=2)
            new_post /= pk[:, :, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                plogp = new_post * np.log(new_post)
            h = -np.nansum(plogp, axis=2)
            expected += pk * h
        return np.argmin(expected, axis=1)

    def next_levels(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, levels) of each run's next stimulus."""
        idx = self.next_index()
        return idx, 10.0 ** self.grid.stim_log10[idx]

    def update(
        self, *, indices: np.ndarray, correct: np.ndarray, active: np.ndarray | None = None
    ) -> None:
        """Record each run's response to the stimulus at ``indices``.

        Args:
            indices: (R,) stimulus indices presented.
            correct: (R,) bool.
            active: (R,) bool; runs with False are left unchanged.
        """
        lik = self._p_correct[indices]
        lik = np.where(np.asarray(correct, dtype=bool)[:, None], lik, 1.0 - lik)
        new = self.posterior * lik
        new /= new.sum(axis=1, keepdims=True)
        if active is None:
            self.posterior = new
        else:
            self.posterior = np.where(np.asarray(active, dtype=bool)[:, None], new, self.posterior)


def run_lockstep(
    *,
    grid: QuestPlusGrid,
    n_trials: int,
    p_correct_fn,
    rng: np.random.Generator,
    n_runs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_runs`` QUEST+ runs of ``n_trials`` responses each.

    Args:
        grid: QUEST+ domains.
        n_trials: responses per run.
        p_correct_fn: ``f(levels (R,)) -> (R,)`` the simulated observers' P(correct).
        rng: draws the responses.
        n_runs: R.

    Returns:
        ``(levels, correct)``, both (R, n_trials).
    """
    qp = LockstepQuestPlus(grid=grid, n_runs=n_runs)
    levels = np.empty((n_runs, n_trials))
    correct = np.empty((n_runs, n_trials), dtype=bool)
    for t in range(n_trials):
        idx, lv = qp.next_levels()
        c = rng.random(n_runs) < p_correct_fn(lv)
        qp.update(indices=idx, correct=c)
        levels[:, t] = lv
        correct[:, t] = c
    return levels, correct
