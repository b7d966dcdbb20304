"""Agreement with psignifit 4 (the reference implementation of the Bayesian model) on the same
data sets: each threshold inside the other's 95 % interval in every case, median relative
difference below 5 % — for our Bayesian fit (same model) and for our ML fit (the primary)."""

from __future__ import annotations

import warnings

import numpy as np
import psignifit as ps
import pytest

from analysis.fits import FitSettings, fit_cell
from analysis.validation import SETTINGS, simulate_experiments

SEEDS = (101, 202)
FAMILIES = ("norm", "logistic", "weibull")


def _datasets():
    out = []
    for design in ("constant", "questplus120"):
        for seed in SEEDS:
            levels, correct = simulate_experiments(
                SETTINGS[design], n=len(FAMILIES), rng=np.random.default_rng(seed)
            )
            for j, family in enumerate(FAMILIES):
                out.append((design, seed, family, levels[j], correct[j].astype(float)))
    return out


@pytest.mark.slow
def test_thresholds_agree_with_psignifit():
    rows = []
    for design, seed, family, levels, correct in _datasets():
        fit = fit_cell(
            participant=f"{design}{seed}",
            condition=family,
            observer="parametric",
            levels=levels,
            correct=correct,
            settings=FitSettings(sigmoid=family, n_boot=1000),
        )
        table = fit.table
        x = np.log(table["level"].to_numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ps.psignifit(
                np.c_[x, table["k"], table["n"]],
                sigmoid=family,
                experiment_type="2AFC",
                bounds={"lambda": (0.0, 0.1)},
                verbose=False,
            )
        p_t = float(np.exp(ref.parameter_estimate["threshold"]))
        p_lo, p_hi = (float(np.exp(v)) for v in ref.confidence_intervals["threshold"]["0.95"])
        b = fit.bayes
        b_t, b_lo, b_hi = (float(np.exp(v)) for v in (b.threshold_x, *b.ci_threshold_x))
        m_t = fit.threshold()
        m_lo, m_hi = fit.ci()
        rows.append((design, seed, family, p_t, p_lo, p_hi, b_t, b_lo, b_hi, m_t, m_lo, m_hi))
        print(
            f"{design} seed {seed} {family}: psignifit {p_t:.3f} [{p_lo:.3f}, {p_hi:.3f}]  "
            f"bayes {b_t:.3f} [{b_lo:.3f}, {b_hi:.3f}]  ml {m_t:.3f} [{m_lo:.3f}, {m_hi:.3f}]"
        )
    r = np.array([row[3:] for row in rows], dtype=float)
    p_t, p_lo, p_hi, b_t, b_lo, b_hi, m_t, m_lo, m_hi = r.T
    rel_bayes = np.abs(b_t / p_t - 1)
    rel_ml = np.abs(m_t / p_t - 1)
    print(
        f"median relative difference: bayes {np.median(rel_bayes):.4f}, ml {np.median(rel_ml):.4f}; "
        f"max: bayes {rel_bayes.max():.4f}, ml {rel_ml.max():.4f}"
    )
    assert np.all((p_lo <= b_t) & (b_t <= p_hi)) and np.all((b_lo <= p_t) & (p_t <= b_hi))
    assert np.all((p_lo <= m_t) & (m_t <= p_hi)) and np.all((m_lo <= p_t) & (p_t <= m_hi))
    assert np.median(rel_bayes) < 0.05
    assert np.median(rel_ml) < 0.05
    # Same model, same priors: the intervals themselves agree closely too.
    assert np.median(np.abs(b_lo / p_lo - 1)) < 0.05 and np.median(np.abs(b_hi / p_hi - 1)) < 0.05
