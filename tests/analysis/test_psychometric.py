"""The sigmoid families: psignifit's parametrisation, inverse, slope, errors."""

from __future__ import annotations

import numpy as np
import pytest
from psignifit import sigmoids as ps_sigmoids

from analysis.psychometric import Sigmoid, weibull_params_to_fitting
from generator.errors import FoveaError

FAMILIES = [
    ("norm", "log"),
    ("logistic", "log"),
    ("weibull", "log"),
    ("norm", "linear"),
    ("logistic", "linear"),
]


@pytest.mark.parametrize("name,axis", FAMILIES)
def test_threshold_is_where_the_unscaled_sigmoid_is_half(name, axis):
    sig = Sigmoid(name, axis)
    for t, w in [(0.0, 1.0), (0.7, 2.5), (-1.2, 0.3)]:
        assert sig.unscaled(t, t, w) == pytest.approx(0.5, abs=1e-12)
        # 2AFC with lapse: P at threshold is halfway between guess and 1 - lapse.
        assert sig.p_correct(sig.to_level(t), t, w, 0.04) == pytest.approx(
            0.5 + 0.46 / 2, abs=1e-12
        )


@pytest.mark.parametrize("name,axis", FAMILIES)
def test_width_spans_five_to_ninety_five_percent(name, axis):
    sig = Sigmoid(name, axis)
    t, w = 0.3, 1.7
    x = np.linspace(-10, 10, 200001)
    f = sig.unscaled(x, t, w)
    x05 = x[np.argmin(np.abs(f - 0.05))]
    x95 = x[np.argmin(np.abs(f - 0.95))]
    assert x95 - x05 == pytest.approx(w, abs=1e-3)


@pytest.mark.parametrize("name", ["norm", "logistic", "weibull"])
def test_matches_psignifit_sigmoids(name):
    """Same parametrisation as psignifit (thresh_PC 0.5, width_alpha 0.05) on the fitting axis."""
    ours = Sigmoid(name, "log")
    theirs = ps_sigmoids.sigmoid_by_name(name, PC=0.5, alpha=0.05)
    x = np.linspace(-3, 3, 61)
    for t, w in [(0.0, 1.0), (0.5, 2.0), (-0.4, 0.6)]:
        np.testing.assert_allclose(ours.unscaled(x, t, w), theirs(x, t, w), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            ours.p_correct(np.exp(x), t, w, 0.03),
            theirs(x, t, w, gamma=0.5, lambd=0.03),
            rtol=1e-10,
        )


@pytest.mark.parametrize("name,axis", FAMILIES)
def test_inverse_and_slope(name, axis):
    sig = Sigmoid(name, axis)
    t, w, lam = 0.4, 1.3, 0.02
    for p in (0.6, 0.75, 0.9):
        level = sig.level_at_p(p, t, w, lam)
        assert sig.p_correct(level, t, w, lam) == pytest.approx(p, abs=1e-9)
    level_t = float(sig.to_level(t))
    h = 1e-6 * level_t
    numeric = (sig.p_correct(level_t + h, t, w, lam) - sig.p_correct(level_t - h, t, w, lam)) / (
        2 * h
    )
    assert sig.slope_at_threshold(t, w, lam) == pytest.approx(numeric, rel=1e-5)
    assert np.isnan(sig.level_at_p(0.99, t, w, lam))  # above the 1 - lapse asymptote


def test_level_zero_on_a_log_axis_is_the_guess_rate():
    sig = Sigmoid("norm", "log")
    assert sig.p_correct(0.0, 0.0, 1.0, 0.02) == pytest.approx(0.5)


def test_classic_weibull_conversion():
    alpha, beta = 1.7, 3.2
    t, w = weibull_params_to_fitting(alpha=alpha, beta=beta)
    sig = Sigmoid("weibull", "log")
    levels = np.array([0.3, 1.0, 1.7, 3.0])
    np.testing.assert_allclose(
        sig.unscaled(np.log(levels), t, w), 1 - np.exp(-((levels / alpha) ** beta)), rtol=1e-12
    )


def test_invalid_choices_name_what_is_valid():
    with pytest.raises(FoveaError, match="weibull, logistic, norm"):
        Sigmoid("probit")
    with pytest.raises(FoveaError, match="log levels"):
        Sigmoid("weibull", "linear")
    with pytest.raises(FoveaError, match="'log' or 'linear'"):
        Sigmoid("norm", "ln")
