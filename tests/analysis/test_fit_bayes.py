"""psignifit 4's Bayesian model, re-implemented: internal consistency (psignifit itself is
compared in test_psignifit_agreement.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.fit_bayes import BayesGrid, _grid, _Posterior, fit_bayes
from analysis.psychometric import Sigmoid


def _data():
    sig = Sigmoid("norm")
    levels = np.geomspace(0.25, 4, 7)
    return sig, sig.to_x(levels), np.array([15, 16, 19, 23, 27, 29, 30]), np.full(7, 30)


def test_point_and_grid_log_posteriors_agree():
    sig, x, k, n = _data()
    post = _Posterior(x=x, k=k, n=n, sigmoid=sig, lapse_max=0.1, guess=0.5, beta_prior=10)
    grid = _grid(post.bounds, {"threshold": 7, "width": 6, "lapse": 3, "eta": 4})
    full = post.log_posterior(grid["eta"], grid["lapse"], grid["threshold"], grid["width"])
    for idx in [(0, 0, 3, 2), (1, 1, 2, 3), (3, 2, 4, 4), (2, 0, 6, 5)]:
        values = [
            grid[nm][i] for nm, i in zip(("eta", "lapse", "threshold", "width"), idx, strict=True)
        ]
        point = post.log_posterior_point(*values)
        assert (point == full[idx] == -np.inf) or point == pytest.approx(full[idx], rel=1e-10)


def test_fit_is_finite_and_the_interval_holds_the_estimate():
    sig, x, k, n = _data()
    fit = fit_bayes(x=x, k=k, n=n, sigmoid=sig)
    lo, hi = fit.ci_threshold_x
    assert lo < fit.threshold_x < hi and lo < fit.threshold_x_mean < hi
    assert 0 <= fit.lapse <= 0.1 and 0 <= fit.eta < 1
    assert np.trapezoid(fit.threshold_marginal, fit.threshold_grid) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["weibull", "norm", "logistic"])
def test_all_correct_at_the_top_levels_gives_no_nan(name):
    """Regression: beta-binomial terms with k == n underflowed to inf - inf (NaN posterior)."""
    sig = Sigmoid(name)
    x = sig.to_x(np.geomspace(0.25, 4, 7))
    fit = fit_bayes(x=x, k=np.array([15, 17, 22, 26, 29, 30, 30]), n=np.full(7, 30), sigmoid=sig)
    assert np.isfinite([fit.threshold_x, *fit.ci_threshold_x, fit.eta, fit.width_x]).all()
    assert fit.eta < 0.5


def test_overdispersed_data_widen_the_interval_and_raise_eta():
    sig = Sigmoid("norm")
    x = sig.to_x(np.geomspace(0.25, 4, 7))
    n = np.full(7, 40)
    smooth = np.array([20, 22, 25, 30, 35, 38, 39])
    wild = np.array([20, 32, 14, 36, 22, 39, 30])  # far more variable than binomial
    a = fit_bayes(x=x, k=smooth, n=n, sigmoid=sig)
    b = fit_bayes(x=x, k=wild, n=n, sigmoid=sig, grid=BayesGrid())
    assert b.eta > a.eta + 0.1
    assert np.diff(b.ci_threshold_x)[0] > np.diff(a.ci_threshold_x)[0]
