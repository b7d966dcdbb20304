"""Vectorised maximum likelihood and the parametric bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from analysis.fit_bootstrap import bootstrap_ml
from analysis.fit_ml import default_bounds, fit_ml_batch, saturated_loglik
from analysis.psychometric import Sigmoid

SEED = 20261128


def _reference_nll_min(sig, levels, k, n, bounds):
    """Multi-start L-BFGS-B optimum (the slow, obvious way)."""

    def nll(th):
        p = np.clip(sig.p_correct(levels, *th), 1e-12, 1 - 1e-12)
        return -(k * np.log(p) + (n - k) * np.log(1 - p)).sum()

    box = [bounds.threshold_x, bounds.width_x, bounds.lapse]
    best = np.inf
    for t0 in np.linspace(*bounds.threshold_x, 4):
        for w0 in np.geomspace(*bounds.width_x, 4):
            for l0 in (0.0, 0.06):
                r = optimize.minimize(nll, [t0, w0, l0], bounds=box, method="L-BFGS-B")
                best = min(best, r.fun)
    return best


@pytest.mark.parametrize("name,axis", [("norm", "log"), ("logistic", "linear"), ("weibull", "log")])
def test_batch_fit_reaches_the_multistart_optimum(name, axis):
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    sig = Sigmoid(name, axis)
    levels = np.geomspace(0.25, 4, 7) if axis == "log" else np.linspace(0.2, 2.6, 7)
    x = sig.to_x(levels)
    n = np.full(7, 30)
    t_true = 0.0 if axis == "log" else 1.2
    k = rng.binomial(n, sig.p_correct(levels, t_true, 1.8, 0.03), size=(4, 7))
    bounds = default_bounds(x_levels=x, lapse_max=0.1)
    batch = fit_ml_batch(x=x, k=k, n=n, sigmoid=sig, bounds=bounds)
    assert batch.converged.all()
    assert ((batch.lapse >= 0) & (batch.lapse <= 0.1)).all()
    for i in range(k.shape[0]):
        ref = _reference_nll_min(sig, levels, k[i], n, bounds)
        assert -batch.loglik[i] <= ref + 1e-6, f"data set {i}: {-batch.loglik[i]} > {ref}"


def test_single_fit_equals_its_batch_row_and_deviance_is_consistent():
    sig = Sigmoid("norm")
    levels = np.geomspace(0.1, 8, 9)
    x = sig.to_x(levels)
    n = np.full(9, 20)
    k = np.array([10, 11, 9, 12, 15, 18, 19, 20, 20])
    b = default_bounds(x_levels=x, lapse_max=0.1)
    one = fit_ml_batch(x=x, k=k, n=n, sigmoid=sig, bounds=b)
    assert one.deviance[0] == pytest.approx(2 * (saturated_loglik(k[None], n)[0] - one.loglik[0]))
    assert one.deviance[0] >= 0
    assert np.isfinite(one.se_threshold_x[0]) and one.se_threshold_x[0] > 0


def test_bootstrap_is_reproducible_and_its_interval_contains_the_estimate():
    sig = Sigmoid("norm")
    levels = np.geomspace(0.25, 4, 7)
    x = sig.to_x(levels)
    n = np.full(7, 30)
    k = np.array([15, 17, 19, 24, 27, 29, 30])
    b = default_bounds(x_levels=x, lapse_max=0.1)
    r1 = bootstrap_ml(
        x=x, k=k, n=n, sigmoid=sig, bounds=b, n_boot=300, rng=np.random.default_rng(5)
    )
    r2 = bootstrap_ml(
        x=x, k=k, n=n, sigmoid=sig, bounds=b, n_boot=300, rng=np.random.default_rng(5)
    )
    np.testing.assert_array_equal(r1.boot.threshold_x, r2.boot.threshold_x)
    lo, hi = np.quantile(r1.boot.threshold_x, [0.025, 0.975])
    assert lo < r1.fit.threshold_x[0] < hi
    assert 0.0 <= r1.gof_p <= 1.0
    assert r1.generator_width_x >= r1.fit.width_x[0]  # the correction only ever makes it shallower
    assert r1.boot.threshold_x.size == 300


def test_width_correction_applies_to_steep_sparse_fits():
    """A steep fit from few trials: the refitted widths are steeper still, so the intervals come
    from a shallower generator, and they are wider than without the correction."""
    sig = Sigmoid("norm")
    levels = np.geomspace(0.25, 4, 7)
    x = sig.to_x(levels)
    n = np.full(7, 12)
    k = np.array([5, 7, 10, 12, 10, 11, 12])
    b = default_bounds(x_levels=x, lapse_max=0.1)
    on = bootstrap_ml(
        x=x, k=k, n=n, sigmoid=sig, bounds=b, n_boot=300, rng=np.random.default_rng(1)
    )
    off = bootstrap_ml(
        x=x,
        k=k,
        n=n,
        sigmoid=sig,
        bounds=b,
        n_boot=300,
        rng=np.random.default_rng(1),
        width_correction=False,
    )
    assert on.generator_width_x > 1.3 * on.fit.width_x[0]
    assert off.generator_width_x == off.fit.width_x[0]
    width = lambda r: np.subtract(*np.quantile(r.boot.threshold_x, [0.975, 0.025]))  # noqa: E731
    assert width(on) > width(off)
