"""Group statistics: thresholds across participants, condition effects, indistinguishability.

- ``group_thresholds``: per condition, the geometric mean of participants' thresholds with a
  t interval on log thresholds (arithmetic on a linear axis).
- ``threshold_mixed_model``: linear mixed model of log threshold on condition with participant
  random intercepts (statsmodels ``MixedLM``): condition effects as threshold ratios with
  intervals, and an omnibus Wald test that all conditions share one threshold.
- ``pairwise_effects``: every pair of conditions within participants: threshold ratio, Cohen's
  d_z with a bootstrap interval, paired t test with Holm correction.
- ``trial_mixed_logistic``: a mixed-effects logistic model of every analysed trial,
  ``logit P(correct) ~ condition * log level`` with participant random intercepts and slopes
  (statsmodels ``BinomialBayesMixedGLM``, variational Bayes; trials sharing participant,
  condition and level are aggregated into binomial counts, which gives the same ELBO as the
  Bernoulli rows in a fraction of the time), with a Wald test that the conditions' curves do
  not differ (covariance from the Laplace approximation at the VB mode).
- ``indistinguishability``: proportion correct at an operating level against chance, as an
  equivalence test (TOST): the claim "indistinguishable" is only made when the interval excludes
  differences larger than a stated margin.
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
) -> pd.DataFrame:
    """Per-condition group threshold.

    Args:
        thresholds: rows with ``condition, threshold`` (NaN thresholds are ignored).
        log_axis: average log thresholds (geometric mean) instead of thresholds.
        ci_level: interval probability.
        conditions: the conditions, in order (default: as they appear); conditions without
            thresholds get a row with n_participants 0.

    Returns:
        condition, n_participants, threshold, ci_low, ci_high, sd_log10 (between-participant SD
        of log10 thresholds; NaN on a linear axis).
    """
    rows = []
    if conditions is None:
        conditions = list(dict.fromkeys(thresholds["condition"])) if len(thresholds) else []
    for condition in conditions:
        g = thresholds[thresholds["condition"] == condition]
        v = g["threshold"].to_numpy(dtype=float)
        v = v[np.isfinite(v) & ((v > 0) if log_axis else True)]
        n = v.size
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
        rows.append(row)
    return pd.DataFrame(rows)


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
            "fewer than two conditions with thresholds",
        )
    if d["participant"].nunique() < 3:
        return MixedModelResult(
            empty,
            np.nan,
            0,
            np.nan,
            present[0],
            np.nan,
            "fewer than three participants with thresholds",
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
) -> pd.DataFrame:
    """Within-participant comparisons of every pair of conditions.

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
    for a, b in itertools.combinations([c for c in conditions if c in wide.columns], 2):
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
            boot_sd = boot.std(axis=1, ddof=1)
            ok = boot_sd > 0
            dz_boot = boot.mean(axis=1)[ok] / boot_sd[ok]
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
    out = pd.DataFrame(rows)
    if not log_axis and len(out):
        out = out.rename(columns={"ratio": "difference"})
    if len(out):
        out["p_holm"] = _holm(out["p"].to_numpy())
    return out


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


# ---------------------------------------------------------------------------------------------
# Trial-level mixed-effects logistic model


@dataclass
class LogisticMixedResult:
    """The trial-level mixed logistic model.

    Attributes:
        coefficients: term, estimate, ci_low, ci_high (log-odds; Laplace at the VB mode).
        variance: component, sd, ci_low, ci_high (participant random-effect SDs; VB posterior).
        wald_chi2, wald_df, wald_p: test that condition intercepts and slopes equal the
            reference's.
        reference: reference condition.
        n_rows, n_trials: aggregated rows and trials.
        note: why not fitted ("" when fitted).
    """

    coefficients: pd.DataFrame
    variance: pd.DataFrame
    wald_chi2: float
    wald_df: int
    wald_p: float
    reference: str
    n_rows: int
    n_trials: int
    note: str = ""


def _aggregated_glmm_class():
    from statsmodels.genmod import families
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM, _BayesMixedGLM

    class AggregatedBinomialBayesMixedGLM(BinomialBayesMixedGLM):
        """BinomialBayesMixedGLM on binomial counts: ``endog`` = correct counts, ``n_trials``.

        Every observation's ELBO term is ``y * lp + E h(lp)`` with ``h = -log(1 + e^lp)``; n
        Bernoulli rows sharing one linear predictor sum to ``k * lp + n * E h(lp)``, so scaling
        ``h`` by ``n`` (and using ``k`` as ``endog``) is exact.
        """

        def __init__(self, endog, exog, exog_vc, ident, n_trials, **kwargs):
            _BayesMixedGLM.__init__(
                self,
                endog,
                exog,
                exog_vc=exog_vc,
                ident=ident,
                family=families.Binomial(),
                **kwargs,
            )
            self.n_trials = np.asarray(n_trials, dtype=float)

        def vb_elbo(self, vb_mean, vb_sd):
            fep_mean, vcp_mean, vc_mean = self._unpack(vb_mean)
            fep_sd, vcp_sd, vc_sd = self._unpack(vb_sd)
            tm, tv = self._lp_stats(fep_mean, fep_sd, vc_mean, vc_sd)
            n = self.n_trials

            def h(z):
                return -n * np.logaddexp(0.0, tm + np.sqrt(tv) * z)

            return self.vb_elbo_base(h, tm, fep_mean, vcp_mean, vc_mean, fep_sd, vcp_sd, vc_sd)

        def vb_elbo_grad(self, vb_mean, vb_sd):
            fep_mean, vcp_mean, vc_mean = self._unpack(vb_mean)
            fep_sd, vcp_sd, vc_sd = self._unpack(vb_sd)
            tm, tv = self._lp_stats(fep_mean, fep_sd, vc_mean, vc_sd)
            n = self.n_trials

            def h(z):
                from scipy.special import expit

                return -n * expit(tm + np.sqrt(tv) * z)

            return self.vb_elbo_grad_base(
                h, tm, tv, fep_mean, vcp_mean, vc_mean, fep_sd, vcp_sd, vc_sd
            )

    return AggregatedBinomialBayesMixedGLM


def aggregate_for_glmm(trials: pd.DataFrame, *, log_axis: bool) -> pd.DataFrame:
    """Analysed trials -> binomial counts per participant x condition x level, with the centred
    level covariate ``xc`` (log level on a log axis)."""
    d = trials[["participant", "condition", "level", "correct"]].copy()
    if log_axis:
        d = d[d["level"] > 0]
    agg = (
        d.groupby(["participant", "condition", "level"], sort=True)["correct"]
        .agg(["sum", "size"])
        .reset_index()
    )
    agg.columns = ["participant", "condition", "level", "k", "n"]
    x = np.log(agg["level"]) if log_axis else agg["level"]
    agg["xc"] = x - np.average(x, weights=agg["n"]) if len(agg) else x
    agg["participant"] = agg["participant"].astype(str)
    return agg


def trial_mixed_logistic(
    trials: pd.DataFrame, *, conditions: list[str], log_axis: bool, ci_level: float = 0.95
) -> LogisticMixedResult:
    """Fit ``logit P(correct) ~ condition * level`` with participant random intercepts and slopes.

    Args:
        trials: analysed trials (participant, condition, level, correct).
        conditions: condition order (first = reference).
        log_axis: use log level as the covariate.
        ci_level: interval probability.
    """
    import warnings

    agg = aggregate_for_glmm(trials, log_axis=log_axis)
    present = [c for c in conditions if c in set(agg["condition"])]
    empty = pd.DataFrame(columns=["term", "estimate", "ci_low", "ci_high"])
    if agg["participant"].nunique() < 2 or agg.empty:
        return LogisticMixedResult(
            empty,
            empty,
            np.nan,
            0,
            np.nan,
            present[0] if present else "",
            len(agg),
            int(agg["n"].sum()) if len(agg) else 0,
            "fewer than two participants",
        )
    from statsmodels.genmod.bayes_mixed_glm import _BayesMixedGLM

    agg["condition"] = pd.Categorical(agg["condition"], categories=present)
    formula = "k ~ C(condition) * xc" if len(present) > 1 else "k ~ xc"
    vc = {"participant": "0 + C(participant)", "participant_slope": "0 + C(participant):xc"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = _BayesMixedGLM.from_formula(formula, vc, agg)
        cls = _aggregated_glmm_class()
        model = cls(
            base.endog,
            base.exog,
            base.exog_vc,
            base.ident,
            agg["n"].to_numpy(),
            vcp_p=base.vcp_p,
            fe_p=base.fe_p,
            fep_names=base.fep_names,
            vcp_names=base.vcp_names,
            vc_names=base.vc_names,
        )
        # Warm start from the fixed-effects-only binomial GLM: about a third fewer iterations.
        import statsmodels.api as sm

        counts = np.column_stack([agg["k"], agg["n"] - agg["k"]])
        glm = sm.GLM(counts, model.exog, family=sm.families.Binomial()).fit()
        mean = np.concatenate([glm.params, np.full(model.k_vcp, -1.0), np.zeros(model.k_vc)])
        sd = np.concatenate(
            [np.sqrt(np.diag(glm.cov_params())), np.full(model.k_vcp + model.k_vc, 0.5)]
        )
        result = model.fit_vb(mean=mean, sd=sd)
    fe_mean = np.asarray(result.fe_mean)
    vcp_mean = np.asarray(result.vcp_mean)
    vc_mean = np.asarray(result.vc_mean)
    # Laplace approximation at the VB mode with the variance components fixed at their VB means:
    # the negative Hessian of the log posterior in (fixed effects, random effects).
    x = np.asarray(model.exog)
    zmat = (
        model.exog_vc.toarray() if hasattr(model.exog_vc, "toarray") else np.asarray(model.exog_vc)
    )
    eta = x @ fe_mean + zmat @ vc_mean
    p = 1.0 / (1.0 + np.exp(-eta))
    w = agg["n"].to_numpy() * p * (1 - p)
    design = np.hstack([x, zmat])
    sd_re = np.exp(vcp_mean)[model.ident]
    prior_prec = np.concatenate([np.full(x.shape[1], 1.0 / model.fe_p**2), 1.0 / sd_re**2])
    hess = design.T @ (design * w[:, None]) + np.diag(prior_prec)
    cov = np.linalg.inv(hess)[: x.shape[1], : x.shape[1]]
    se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(0.5 + ci_level / 2)
    coef = pd.DataFrame(
        {
            "term": list(model.fep_names),
            "estimate": fe_mean,
            "ci_low": fe_mean - z * se,
            "ci_high": fe_mean + z * se,
        }
    )
    cond_idx = [i for i, nm in enumerate(model.fep_names) if nm.startswith("C(condition)")]
    if cond_idx:
        b = fe_mean[cond_idx]
        c = cov[np.ix_(cond_idx, cond_idx)]
        chi2 = float(b @ np.linalg.solve(c, b))
        df = len(cond_idx)
        p_val = float(stats.chi2.sf(chi2, df))
    else:
        chi2, df, p_val = np.nan, 0, np.nan
    vcp_sd = np.asarray(result.vcp_sd)
    variance = pd.DataFrame(
        {
            "component": list(model.vcp_names),
            "sd": np.exp(vcp_mean),
            "ci_low": np.exp(vcp_mean - z * vcp_sd),
            "ci_high": np.exp(vcp_mean + z * vcp_sd),
        }
    )
    return LogisticMixedResult(
        coef, variance, chi2, df, p_val, present[0], len(agg), int(agg["n"].sum())
    )


# ---------------------------------------------------------------------------------------------
# Indistinguishability at an operating level


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

    The group value is the mean of participants' fitted P(correct) at the level. Its interval
    comes from a two-stage bootstrap: resample participants, then draw one of each sampled
    participant's parametric-bootstrap replicates. With the ``1 - 2 alpha`` interval [lo, hi] and
    the bound ``0.5 + margin``: ``hi < bound`` is the equivalence test (TOST; the model's
    proportion correct cannot fall below chance in 2AFC, so the lower one-sided test is moot):
    "equivalent", the images are indistinguishable *within the margin*; ``lo > bound``:
    "detectable", the difference exceeds the margin (one-sided test at ``alpha``); otherwise
    "inconclusive", which is not evidence of no difference. (Whether the interval excludes
    exactly 0.5 is no test here: a fitted 2AFC function lies above 0.5 at every level.)

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
            "statement": "no fitted participants in this condition",
        }
        if not group:
            rows.append(row)
            continue
        point = np.array([float(f.p_correct(level)) for f in group])
        samples = [f.boot_p_correct(level) for f in group]
        if any(s.size == 0 for s in samples):
            samples = [np.full(1, v) for v in point]
        n = len(group)
        pick_p = rng.integers(0, n, size=(n_boot, n))
        boot = np.empty((n_boot, n))
        for j in range(n):
            idx = pick_p[:, j]
            draws = rng.integers(0, 1 << 30, size=n_boot)
            for p_i in np.unique(idx):
                sel = idx == p_i
                s = samples[p_i]
                boot[sel, j] = s[draws[sel] % s.size]
        group_boot = boot.mean(axis=1)
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
        )
        row.update(
            p_correct=pc, ci_low=float(lo), ci_high=float(hi), verdict=verdict, statement=statement
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict(*, pc, lo, hi, bound, alpha, level, condition, n) -> tuple[str, str]:
    conf = 100 * (1 - 2 * alpha)
    head = (
        f"{condition} at level {level:g}: mean proportion correct {pc:.3f} "
        f"({conf:.0f} % interval {lo:.3f} to {hi:.3f}, {n} participants)."
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
