"""Group statistics on participants' thresholds: across participants, condition effects.

- ``group_thresholds``: per condition, the geometric mean of participants' thresholds with a
  t interval on log thresholds (arithmetic on a linear axis).
- ``threshold_mixed_model``: linear mixed model of log threshold on condition with participant
  random intercepts (statsmodels ``MixedLM``): condition effects as threshold ratios with
  intervals, and an omnibus Wald test that all conditions share one threshold.
- ``pairwise_effects``: every pair of conditions within participants: threshold ratio, Cohen's
  d_z with a bootstrap interval, paired t test with Holm correction.

The trial-level model is ``analysis.glmm`` (``trial_mixed_logistic``); the indistinguishability
statement is ``analysis.equivalence`` (``indistinguishability``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# ---------------------------------------------------------------------------------------------
# Thresholds across participants


def group_thresholds(
    thresholds: pd.DataFrame,
    *,
    log_axis: bool,
    ci_level: float = 0.95,
    conditions: list[str] | None = None,
    level_ranges: dict[str, tuple[float, float]] | None = None,
    at_bound: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Per-condition group threshold.

    Args:
        thresholds: rows with ``condition, threshold`` (NaN thresholds are ignored: thresholds.csv
            has NaN for a threshold the tested levels do not bracket), and ``participant``.
        log_axis: average log thresholds (geometric mean) instead of thresholds.
        ci_level: interval probability.
        conditions: the conditions, in order (default: as they appear); conditions without
            thresholds get a row with n_participants 0.
        level_ranges: condition -> (lowest, highest) level of its range (the protocol's), for
            ``group_estimate_note``; conditions not named are not checked against a range.
        at_bound: condition -> participants whose threshold the tested levels do not bracket
            (``PsychometricFit.unbracketed``: not an estimate), for ``group_estimate_note``.

    Returns:
        condition, n_participants, threshold, ci_low, ci_high, sd_log10 (between-participant SD
        of log10 thresholds; NaN on a linear axis), note ("" when the row is a group result,
        else why it is not one yet: ``group_estimate_note``).
    """
    rows = []
    if conditions is None:
        conditions = list(dict.fromkeys(thresholds["condition"])) if len(thresholds) else []
    for condition in conditions:
        g = thresholds[thresholds["condition"] == condition]
        v = g["threshold"].to_numpy(dtype=float)
        kept = np.isfinite(v) & ((v > 0) if log_axis else True)
        v = v[kept]
        n = v.size
        unbracketed = list((at_bound or {}).get(condition, []))
        # Participants whose row holds no value for an unbracketed threshold (thresholds.csv)
        # still count in the note's "k of n".
        counted = set(g.loc[kept, "participant"].astype(str)) if "participant" in g else None
        not_counted = [p for p in unbracketed if counted is not None and p not in counted]
        row = {
            "condition": condition,
            "n_participants": n,
            "threshold": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "sd_log10": np.nan,
        }
        if n:
            y = np.log(v) if log_axis else v
            m = y.mean()
            if n > 1:
                half = stats.t.ppf(0.5 + ci_level / 2, n - 1) * y.std(ddof=1) / math.sqrt(n)
            else:
                half = np.nan
            back = np.exp if log_axis else (lambda z: z)
            row.update(
                threshold=float(back(m)),
                ci_low=float(back(m - half)),
                ci_high=float(back(m + half)),
            )
            if log_axis and n > 1:
                row["sd_log10"] = float(np.log10(v).std(ddof=1))
        row["note"] = group_estimate_note(
            n_participants=n + len(not_counted),
            ci_low=row["ci_low"],
            ci_high=row["ci_high"],
            level_range=(level_ranges or {}).get(condition),
            log_axis=log_axis,
            at_bound=unbracketed,
        )
        rows.append(row)
    return pd.DataFrame(rows)


# A group interval from fewer participants is a t interval with one or no degree of freedom
# (t_0.975 = 12.7 with two): it spans orders of magnitude and says nothing about the group.
MIN_GROUP_PARTICIPANTS = 3


def group_estimate_note(
    *,
    n_participants: int,
    ci_low: float,
    ci_high: float,
    level_range: tuple[float, float] | None,
    log_axis: bool,
    at_bound: list[str] | tuple[str, ...] = (),
) -> str:
    """Why a group threshold is not a result yet ("" when it is one).

    The rule: at least ``MIN_GROUP_PARTICIPANTS`` participants with a threshold, none of them
    at a bound of its fit (that value is the end of the fitting range, which the tested levels
    set, so a mean with it would describe the range rather than the participants), and an
    interval no wider than the condition's whole level range (on the fitting axis: the ratio
    ci_high / ci_low against level_max / level_min on a log axis, differences on a linear one).
    An interval wider than every level the study could test does not estimate the group's
    threshold; more participants narrow it.

    Args:
        n_participants: participants with a fit in this condition (a threshold, or one the
            tested levels do not bracket).
        ci_low, ci_high: the group interval (NaN when there is none).
        level_range: (lowest, highest) level of the condition's range, or None.
        log_axis: whether thresholds are averaged on a log axis.
        at_bound: participants whose threshold the tested levels do not bracket
            (``PsychometricFit.unbracketed``).
    """
    if n_participants == 0:
        return "no included participant has a threshold"
    if at_bound:
        return (
            f"{len(at_bound)} of {n_participants} participants' thresholds "
            f"({', '.join(at_bound)}) sit at a bound of the fit, or beyond the tested levels with "
            "an interval open to that bound: not estimates, so no group mean (test levels that "
            "bracket their thresholds)"
        )
    if n_participants < MIN_GROUP_PARTICIPANTS:
        return (
            f"the group estimate needs more participants: {n_participants} included, at least "
            f"{MIN_GROUP_PARTICIPANTS} needed for a group interval"
        )
    if level_range is None or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return ""
    lo, hi = (float(v) for v in level_range)
    if log_axis:
        if not (0 < lo < hi and ci_low > 0):
            return ""
        too_wide = math.log(ci_high / ci_low) > math.log(hi / lo)
    else:
        too_wide = hi > lo and ci_high - ci_low > hi - lo
    if too_wide:
        return (
            f"the group estimate needs more participants: its interval is wider than the whole "
            f"level range {lo:g} to {hi:g}"
        )
    return ""


@dataclass
class MixedModelResult:
    """Condition effects from the threshold mixed model.

    Attributes:
        effects: condition, ratio_vs_reference, ci_low, ci_high, p (Wald z).
        omnibus_chi2, omnibus_df, omnibus_p: Wald test that all condition effects are zero.
        reference: the reference condition.
        participant_sd_log: random-intercept SD (log threshold units).
        note: why the model was not fitted ("" when it was).
    """

    effects: pd.DataFrame
    omnibus_chi2: float
    omnibus_df: int
    omnibus_p: float
    reference: str
    participant_sd_log: float
    note: str = ""


def threshold_mixed_model(
    thresholds: pd.DataFrame, *, conditions: list[str], log_axis: bool, ci_level: float = 0.95
) -> MixedModelResult:
    """``log threshold ~ condition + (1 | participant)`` (statsmodels MixedLM, REML).

    Args:
        thresholds: participant, condition, threshold.
        conditions: condition order; the first is the reference.
        log_axis: model log thresholds (effects are ratios); else thresholds (differences).
        ci_level: interval probability.
    """
    empty = pd.DataFrame(columns=["condition", "ratio_vs_reference", "ci_low", "ci_high", "p"])
    d = thresholds[np.isfinite(thresholds["threshold"].astype(float))].copy()
    if log_axis:
        d = d[d["threshold"] > 0]
    present = [c for c in conditions if c in set(d["condition"])]
    if len(present) < 2:
        return MixedModelResult(
            empty,
            np.nan,
            0,
            np.nan,
            present[0] if present else "",
            np.nan,
            "fewer than two conditions with thresholds of included participants",
        )
    if d["participant"].nunique() < 3:
        return MixedModelResult(
            empty,
            np.nan,
            0,
            np.nan,
            present[0],
            np.nan,
            "fewer than three participants with thresholds among those included",
        )
    import warnings

    import statsmodels.formula.api as smf

    d["y"] = np.log(d["threshold"]) if log_axis else d["threshold"]
    d["condition"] = pd.Categorical(d["condition"], categories=present)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm("y ~ C(condition)", d, groups=d["participant"].astype(str))
        result = model.fit(reml=True)
    z = stats.norm.ppf(0.5 + ci_level / 2)
    names = [f"C(condition)[T.{c}]" for c in present[1:]]
    rows = []
    for c, name in zip(present[1:], names, strict=True):
        b, se = float(result.fe_params[name]), float(result.bse_fe[name])
        back = math.exp if log_axis else (lambda v: v)
        rows.append(
            {
                "condition": c,
                "ratio_vs_reference" if log_axis else "difference_vs_reference": back(b),
                "ci_low": back(b - z * se),
                "ci_high": back(b + z * se),
                "p": float(2 * stats.norm.sf(abs(b / se))) if se > 0 else np.nan,
            }
        )
    cov = result.cov_params().loc[names, names].to_numpy()
    beta = result.fe_params[names].to_numpy()
    try:
        chi2 = float(beta @ np.linalg.solve(cov, beta))
    except np.linalg.LinAlgError:
        chi2 = np.nan
    df = len(names)
    sd = float(np.sqrt(max(float(result.cov_re.iloc[0, 0]), 0.0)))
    return MixedModelResult(
        effects=pd.DataFrame(rows),
        omnibus_chi2=chi2,
        omnibus_df=df,
        omnibus_p=float(stats.chi2.sf(chi2, df)) if np.isfinite(chi2) else np.nan,
        reference=present[0],
        participant_sd_log=sd,
    )


def pairwise_effects(
    thresholds: pd.DataFrame,
    *,
    conditions: list[str],
    log_axis: bool,
    rng: np.random.Generator,
    n_boot: int = 2000,
    ci_level: float = 0.95,
    level_variables: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Within-participant comparisons of every pair of conditions that share a level variable
    (``level_variables``: condition -> its variable; a strength threshold and a radius_shrink
    one are in different units, so their ratio means nothing).

    Returns:
        condition_a, condition_b, n (participants with both), ratio (geometric mean of b/a; a
        difference on a linear axis) with t interval, d_z (mean/SD of the paired log differences)
        with a percentile bootstrap interval, t, p, p_holm.
    """
    wide = thresholds.pivot_table(
        index="participant", columns="condition", values="threshold", aggfunc="first"
    )
    rows = []
    z_lo, z_hi = (1 - ci_level) / 2, 1 - (1 - ci_level) / 2
    variable = level_variables or {}
    for a, b in itertools.combinations([c for c in conditions if c in wide.columns], 2):
        if variable.get(a) != variable.get(b):
            continue
        pair = wide[[a, b]].dropna()
        if log_axis:
            pair = pair[(pair[a] > 0) & (pair[b] > 0)]
            diff = np.log(pair[b].to_numpy()) - np.log(pair[a].to_numpy())
        else:
            diff = pair[b].to_numpy() - pair[a].to_numpy()
        n = diff.size
        row = {
            "condition_a": a,
            "condition_b": b,
            "n": n,
            "ratio": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "d_z": np.nan,
            "d_z_ci_low": np.nan,
            "d_z_ci_high": np.nan,
            "t": np.nan,
            "p": np.nan,
        }
        if n >= 3 and diff.std(ddof=1) > 0:
            m, sd = diff.mean(), diff.std(ddof=1)
            half = stats.t.ppf(0.5 + ci_level / 2, n - 1) * sd / math.sqrt(n)
            back = np.exp if log_axis else (lambda v: v)
            t_stat = m / (sd / math.sqrt(n))
            idx = rng.integers(0, n, size=(n_boot, n))
            boot = diff[idx]
            # A resample of one participant repeated has no spread: its d_z is undefined (a
            # rounding-level SD would make it ~1e16). With 3 participants 1 in 9 resamples is one.
            ok = np.ptp(boot, axis=1) > 0
            dz_boot = boot.mean(axis=1)[ok] / boot.std(axis=1, ddof=1)[ok]
            row.update(
                ratio=float(back(m)),
                ci_low=float(back(m - half)),
                ci_high=float(back(m + half)),
                d_z=float(m / sd),
                d_z_ci_low=float(np.quantile(dz_boot, z_lo)),
                d_z_ci_high=float(np.quantile(dz_boot, z_hi)),
                t=float(t_stat),
                p=float(2 * stats.t.sf(abs(t_stat), n - 1)),
            )
        rows.append(row)
    # No pair (one condition, or none sharing a level variable): the columns all the same.
    out = pd.DataFrame(rows, columns=list(_PAIR_COLUMNS))
    if not log_axis:
        out = out.rename(columns={"ratio": "difference"})
    out["p_holm"] = _holm(out["p"].to_numpy()) if len(out) else pd.Series(dtype=float)
    return out


_PAIR_COLUMNS = (
    "condition_a",
    "condition_b",
    "n",
    "ratio",
    "ci_low",
    "ci_high",
    "d_z",
    "d_z_ci_low",
    "d_z_ci_high",
    "t",
    "p",
)


def comparable_conditions(
    conditions: list[str], level_variables: dict[str, str]
) -> tuple[list[str], list[str]]:
    """(the conditions whose level variable is the first condition's, the others): the models
    that compare conditions (threshold mixed model, trial-level logistic model) take the first
    list only, as their thresholds and levels share units."""
    if not conditions:
        return [], []
    first = level_variables.get(conditions[0])
    same = [c for c in conditions if level_variables.get(c) == first]
    return same, [c for c in conditions if c not in same]


def _holm(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    pv = p[ok]
    order = np.argsort(pv)
    m = pv.size
    adj = np.maximum.accumulate((m - np.arange(m)) * pv[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out
