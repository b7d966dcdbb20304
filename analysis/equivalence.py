"""Indistinguishability at an operating level: proportion correct against chance, as an
equivalence test (TOST): the claim "indistinguishable" is only made when the interval excludes
differences larger than a stated margin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.group import MIN_GROUP_PARTICIPANTS


def indistinguishability(
    fits: list,
    *,
    operating_levels: dict[str, float],
    margin: float,
    rng: np.random.Generator,
    n_boot: int = 4000,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Group proportion correct at each condition's operating level, against chance.

    The group value is the mean of participants' fitted P(correct) at the level, from their
    maximum-likelihood fits (also with ``--method bayes``: the interval needs their bootstrap
    replicates, so point and interval come from one method). Its interval comes from a two-stage
    bootstrap: resample participants, then draw one of each sampled participant's
    parametric-bootstrap replicates. With the ``1 - 2 alpha`` interval [lo, hi] and
    the bound ``0.5 + margin``: ``hi < bound`` is the equivalence test (TOST; the model's
    proportion correct cannot fall below chance in 2AFC, so the lower one-sided test is moot):
    "equivalent", the images are indistinguishable *within the margin*; ``lo > bound``:
    "detectable", the difference exceeds the margin (one-sided test at ``alpha``); otherwise
    "inconclusive", which is not evidence of no difference. (Whether the interval excludes
    exactly 0.5 is no test here: a fitted 2AFC function lies above 0.5 at every level.) With
    fewer than ``MIN_GROUP_PARTICIPANTS`` fitted participants (the group thresholds' minimum) the
    value and interval are shown but the verdict is "not estimable"; so it is at a level outside
    the levels those participants were tested at (``tested_range``): there the value is the
    fitted functions' extrapolation (towards 0.5 below the tested levels, whatever the data),
    not a measurement.

    Args:
        fits: ``PsychometricFit`` objects of included participants (ML bootstrap needed).
        operating_levels: condition -> level.
        margin: equivalence margin in proportion correct above 0.5 (e.g. 0.05 -> 55 %).
        rng: bootstrap generator.
        n_boot: group bootstrap replicates.
        alpha: test level (each one-sided test).

    Returns:
        condition, level, n_participants, p_correct, ci_low, ci_high (the 1 - 2 alpha
        interval), bound, verdict, statement.
    """
    rows = []
    by_cond: dict[str, list] = {}
    for f in fits:
        if f.fitted:
            by_cond.setdefault(f.condition, []).append(f)
    for condition, level in operating_levels.items():
        group = by_cond.get(condition, [])
        bound = 0.5 + margin
        row = {
            "condition": condition,
            "level": level,
            "n_participants": len(group),
            "p_correct": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "bound": bound,
            "verdict": "not estimable",
            "statement": (
                f"{condition} at level {level:g}: no included participant has a fitted "
                "psychometric function in this condition, so there is no proportion correct to test."
            ),
        }
        if not group:
            rows.append(row)
            continue
        point = np.array([f.ml_p_correct(level) for f in group])
        samples = [f.boot_p_correct(level) for f in group]
        if any(s.size == 0 for s in samples):
            samples = [np.full(1, v) for v in point]
        n = len(group)
        group_boot = _two_stage_bootstrap(samples, rng=rng, n_boot=n_boot)
        lo, hi = np.quantile(group_boot, [alpha, 1 - alpha])
        pc = float(point.mean())
        verdict, statement = _verdict(
            pc=pc,
            lo=float(lo),
            hi=float(hi),
            bound=bound,
            alpha=alpha,
            level=level,
            condition=condition,
            n=n,
            tested=tested_range(group),
        )
        row.update(
            p_correct=pc, ci_low=float(lo), ci_high=float(hi), verdict=verdict, statement=statement
        )
        rows.append(row)
    return pd.DataFrame(rows)


def tested_range(fits: list) -> tuple[float, float]:
    """(lowest, highest) level at which the ``fits``' participants were tested (analysed trials)."""
    levels = np.concatenate([f.table["level"].to_numpy(dtype=float) for f in fits])
    return float(levels.min()), float(levels.max())


def _two_stage_bootstrap(samples: list[np.ndarray], *, rng, n_boot: int) -> np.ndarray:
    """(n_boot,) group means: resample participants, then one of each sampled participant's
    bootstrap replicates (``samples[i]``: participant i's replicates, at least one)."""
    n = len(samples)
    pick_p = rng.integers(0, n, size=(n_boot, n))
    boot = np.empty((n_boot, n))
    for j in range(n):
        idx = pick_p[:, j]
        draws = rng.integers(0, 1 << 30, size=n_boot)
        for p_i in np.unique(idx):
            sel = idx == p_i
            s = samples[p_i]
            boot[sel, j] = s[draws[sel] % s.size]
    return boot.mean(axis=1)


def _verdict(*, pc, lo, hi, bound, alpha, level, condition, n, tested) -> tuple[str, str]:
    conf = 100 * (1 - 2 * alpha)
    head = (
        f"{condition} at level {level:g}: mean proportion correct {pc:.3f} "
        f"({conf:.0f} % interval {lo:.3f} to {hi:.3f}, {n} participant{'' if n == 1 else 's'})."
    )
    if n < MIN_GROUP_PARTICIPANTS:
        return "not estimable", (
            f"{head} A group verdict needs at least {MIN_GROUP_PARTICIPANTS} fitted participants, "
            "as a group threshold does: with fewer the interval says nothing about the group."
        )
    low, high = tested
    if not low * (1 - 1e-9) <= level <= high * (1 + 1e-9):  # the TSV's digits
        return "not estimable", (
            f"{head} Level {level:g} lies outside the levels the participants were tested at "
            f"({low:.3g} to {high:.3g}): the proportion correct there is the fitted functions' "
            "extrapolation (which approaches 50 % below the tested levels whatever the data), not "
            "a measurement, so no verdict is given. Choose an operating level inside the tested "
            "range (fovea report --operating-level [COND=]LEVEL)."
        )
    margin = bound - 0.5
    if hi < bound:
        return "equivalent", (
            f"{head} The interval's upper end lies below the equivalence bound {bound:.3f}, so "
            f"performance is within {margin:.3f} of chance (TOST, alpha = {alpha:g}): any visible "
            "difference at this level is smaller than the bound. This bounds the effect for these "
            "participants and images; it does not prove that nobody could ever tell the images apart."
        )
    if lo > bound:
        return "detectable", (
            f"{head} The whole interval lies above the equivalence bound {bound:.3f} (one-sided "
            f"alpha = {alpha:g}): participants told the images apart more often than the margin allows."
        )
    return "inconclusive", (
        f"{head} The interval straddles the equivalence bound {bound:.3f}: the data neither rule out a "
        "difference of that size nor show one (more trials are needed). Failing to detect a difference "
        "is not evidence that there is none."
    )
