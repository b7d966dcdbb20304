"""The trial-level mixed-effects logistic model of every analysed trial.

``trial_mixed_logistic``: ``logit P(correct) ~ condition * log level`` with participant random
intercepts and slopes (statsmodels ``BinomialBayesMixedGLM``, variational Bayes; trials sharing
participant, condition and level are aggregated into binomial counts, which gives the same ELBO
as the Bernoulli rows in a fraction of the time), with a Wald test that the conditions' curves do
not differ (covariance from the Laplace approximation at the VB mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


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
        xc_zero_level: the level where the covariate ``xc`` is 0 (``describe_xc``); NaN when
            not fitted.
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
    xc_zero_level: float = float("nan")


def describe_xc(*, log_axis: bool, zero_level: float) -> str:
    """What the model's level covariate ``xc`` is, its units, and what its terms mean: the one
    definition the page and summary.json use (``aggregate_for_glmm`` computes it)."""
    if log_axis:
        what = (
            "xc is the level covariate: ln(level) minus its mean over the analysed trials, so "
            f"xc = 0 at level {zero_level:.3g} (their geometric mean level) and one unit of xc "
            "is a factor e = 2.72 in level"
        )
        unit = "per unit of ln(level)"
    else:
        what = (
            "xc is the level covariate: the level minus its mean over the analysed trials, so "
            f"xc = 0 at level {zero_level:.3g} and one unit of xc is one unit of level"
        )
        unit = "per unit of level"
    return (
        f"{what}. The xc estimate is the change in the log-odds of a correct answer {unit} in "
        "the reference condition; Intercept: the log-odds at xc = 0 in the reference condition; "
        "C(condition)[T.name]: that condition's difference in log-odds at xc = 0; "
        "C(condition)[T.name]:xc: its difference in slope. participant and participant_slope: "
        f"SDs of the participants' random intercepts (log-odds) and slopes (log-odds {unit})."
    )


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
            "fewer than two included participants",
        )
    agg["condition"] = pd.Categorical(agg["condition"], categories=present)
    model, result = _fit_vb(agg, present)
    coef, cov = _coefficients(model, result, agg, ci_level)
    cond_idx = [i for i, nm in enumerate(model.fep_names) if nm.startswith("C(condition)")]
    if cond_idx:
        b = coef["estimate"].to_numpy()[cond_idx]
        c = cov[np.ix_(cond_idx, cond_idx)]
        chi2 = float(b @ np.linalg.solve(c, b))
        df = len(cond_idx)
        p_val = float(stats.chi2.sf(chi2, df))
    else:
        chi2, df, p_val = np.nan, 0, np.nan
    z = stats.norm.ppf(0.5 + ci_level / 2)
    vcp_mean, vcp_sd = np.asarray(result.vcp_mean), np.asarray(result.vcp_sd)
    variance = pd.DataFrame(
        {
            "component": list(model.vcp_names),
            "sd": np.exp(vcp_mean),
            "ci_low": np.exp(vcp_mean - z * vcp_sd),
            "ci_high": np.exp(vcp_mean + z * vcp_sd),
        }
    )
    first = agg.iloc[0]
    zero = first["level"] * np.exp(-first["xc"]) if log_axis else first["level"] - first["xc"]
    return LogisticMixedResult(
        coef,
        variance,
        chi2,
        df,
        p_val,
        present[0],
        len(agg),
        int(agg["n"].sum()),
        xc_zero_level=float(zero),
    )


def _fit_vb(agg: pd.DataFrame, present: list[str]):
    """The aggregated model and its variational-Bayes fit, warm-started from the binomial GLM."""
    import warnings

    import statsmodels.api as sm
    from statsmodels.genmod.bayes_mixed_glm import _BayesMixedGLM

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
        counts = np.column_stack([agg["k"], agg["n"] - agg["k"]])
        glm = sm.GLM(counts, model.exog, family=sm.families.Binomial()).fit()
        mean = np.concatenate([glm.params, np.full(model.k_vcp, -1.0), np.zeros(model.k_vc)])
        sd = np.concatenate(
            [np.sqrt(np.diag(glm.cov_params())), np.full(model.k_vcp + model.k_vc, 0.5)]
        )
        result = model.fit_vb(mean=mean, sd=sd)
    return model, result


def _coefficients(model, result, agg: pd.DataFrame, ci_level: float):
    """Fixed effects with Laplace intervals, and their covariance (fixed effects x fixed effects).

    Laplace approximation at the VB mode with the variance components fixed at their VB means:
    the negative Hessian of the log posterior in (fixed effects, random effects).
    """
    fe_mean = np.asarray(result.fe_mean)
    vcp_mean = np.asarray(result.vcp_mean)
    vc_mean = np.asarray(result.vc_mean)
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
    return coef, cov
