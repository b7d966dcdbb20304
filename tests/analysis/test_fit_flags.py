"""The notes a fit carries: the threshold interval cut off by the fitting bound, or not."""

from __future__ import annotations

import re

import numpy as np
import pytest

from analysis.fit_ml import default_bounds
from analysis.fits import FitSettings, fit_cell

SEED = 20261130
BOUND_FLAG = "threshold interval cut off by the fitting bound"
# One simulated demo participant's 16 QUEST+ trials of one condition (fovea demo, sub-sim01,
# acuity_right6; protocol range 0.1-8): the report flagged its interval 0.71-2.28.
DEMO_LEVELS = [1.264, 4.005, 3.18, 3.18, 2.525, 2.005, 2.005, 3.18, 3.18, 3.18, 2.525, 2.005]
DEMO_LEVELS += [1.592, 3.18, 3.18, 2.525]
DEMO_CORRECT = [0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1]


def _fit(levels, correct, **settings):
    return fit_cell(
        participant="01",
        condition="c",
        observer="parametric",
        levels=np.asarray(levels, dtype=float),
        correct=np.asarray(correct, dtype=float),
        settings=FitSettings(n_boot=300, bayes=False, **settings),
    )


def _bound_flags(fit) -> list[str]:
    return [f for f in fit.flags if f.startswith(BOUND_FLAG)]


def test_a_well_sampled_fit_inside_the_level_range_is_not_flagged():
    """Constant stimuli, 40 trials at each of 7 levels around the threshold: the interval lies
    well inside the fitting bounds and no bound note appears."""
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    tested = np.geomspace(0.25, 4.0, 7)
    levels = np.repeat(tested, 40)
    fit0 = _fit(levels, np.zeros_like(levels))  # for the sigmoid only
    p = fit0.sigmoid.p_correct(levels, 0.0, 1.5, 0.02)
    fit = _fit(levels, rng.random(levels.size) < p)
    lo, hi = fit.ci()
    bounds = default_bounds(x_levels=fit.sigmoid.to_x(tested), lapse_max=0.1)
    lo_b, hi_b = (float(fit.sigmoid.to_level(b)) for b in bounds.threshold_x)
    assert lo_b * 1.2 < lo < fit.threshold() < hi < hi_b / 1.2
    assert _bound_flags(fit) == [], fit.flags


def test_a_sparse_fit_whose_interval_ends_at_the_bound_says_which_bound_and_its_value():
    """The demo's 16 QUEST+ trials (levels 1.26 to 4): the data do not say how low the threshold
    could be, the bootstrap piles up at the lower bound and ci_low equals it (0.71, inside the
    protocol's 0.1-8 range but the bound of the fit). The note names ci_low, the bound's value
    and where the bound comes from."""
    levels, correct = DEMO_LEVELS, DEMO_CORRECT
    fit = _fit(levels, correct)
    flags = _bound_flags(fit)
    assert len(flags) == 1, fit.flags
    ci_low, ci_high = fit.ci()
    m = re.search(r"ci_low = ([0-9.]+) is the lower bound of the fit", flags[0])
    assert m, flags[0]
    assert abs(float(m.group(1)) - ci_low) < 0.01 * ci_low
    bounds = default_bounds(x_levels=fit.sigmoid.to_x(np.unique(levels)), lapse_max=0.1)
    assert abs(float(fit.sigmoid.to_level(bounds.threshold_x[0])) - ci_low) < 1e-9
    assert "the tested levels 1.26 to 4" in flags[0]
    assert "not the protocol's level range" in flags[0]
    assert "upper bound" not in flags[0]


def test_the_bound_note_names_the_ml_columns_when_bayes_is_primary():
    levels, correct = DEMO_LEVELS, DEMO_CORRECT
    fit = fit_cell(
        participant="01",
        condition="c",
        observer="parametric",
        levels=np.asarray(levels, dtype=float),
        correct=np.asarray(correct, dtype=float),
        settings=FitSettings(n_boot=300, primary="bayes"),
    )
    flags = _bound_flags(fit)
    assert flags and "ml_ci_low = " in flags[0], fit.flags


def test_all_correct_responses_give_no_threshold_estimate_but_a_bound():
    """A participant correct on every trial (levels 1 to 5): the ML threshold is the lower end of
    the fitting range, not an estimate; the fit says so and which end it is."""
    levels = np.repeat([1.0, 1.6, 2.5, 4.0, 5.0], 4)
    fit = _fit(levels, np.ones_like(levels))
    assert fit.threshold_bound == "lower"
    assert any(f.startswith("no threshold estimate") and "lower bound" in f for f in fit.flags)
    demo = _fit(DEMO_LEVELS, DEMO_CORRECT)
    assert demo.threshold_bound == "" and not any("no threshold estimate" in f for f in demo.flags)


def test_a_threshold_at_a_bound_is_not_also_called_extrapolated():
    """The bound lies beyond the tested levels by construction; the 'no threshold estimate' note
    says what it is, an 'extrapolated' note on top would call it an estimate."""
    levels = np.repeat([1.0, 1.6, 2.5, 4.0, 5.0], 4)
    fit = _fit(levels, np.ones_like(levels))
    assert fit.threshold_bound == "lower" and fit.threshold() < 1.0
    assert not any("(extrapolated)" in f for f in fit.flags), fit.flags


def test_thresholds_csv_row_has_no_value_for_an_unbracketed_threshold():
    """thresholds.csv's threshold and interval are n/a (NaN) for a threshold at a bound of its
    fit or beyond the tested levels with an open interval (not estimates; fits.csv keeps the
    fit's value in ml_threshold and says why in flags); a bracketed one keeps its values."""
    print(f"seed {SEED}")
    levels = np.repeat([1.0, 1.6, 2.5, 4.0, 5.0], 4)
    at_bound = _fit(levels, np.ones_like(levels))
    rng = np.random.default_rng(SEED)
    chance_levels = np.repeat(np.geomspace(0.1, 8.0, 7), 20)
    beyond = _fit(chance_levels, rng.random(chance_levels.size) < 0.5)
    assert (at_bound.threshold_bound, beyond.threshold_open) == ("lower", "upper")
    for fit in (at_bound, beyond):
        row = fit.row()
        assert np.isnan([row["threshold"], row["ci_low"], row["ci_high"]]).all(), row
        assert row["n_trials"] == fit.n_trials and np.isfinite(row["lapse"])
        detail = fit.detail_row()
        assert np.isnan(detail["threshold"]) and np.isfinite(detail["ml_threshold"])
        assert "no threshold estimate" in detail["flags"]
    demo = _fit(DEMO_LEVELS, DEMO_CORRECT).row()
    assert demo["ci_low"] < demo["threshold"] < demo["ci_high"]


def test_all_correct_responses_give_no_bayesian_estimate_either():
    """The same data with the Bayesian estimate as the primary one: the posterior puts the
    threshold where the prior falls off, inside the fitting range, which would pass for a
    result; the likelihood says the data do not bracket it, so it is flagged the same way and the
    bound reported is the ML one."""
    levels = np.repeat([1.0, 1.6, 2.5, 4.0, 5.0], 4)
    fit = fit_cell(
        participant="01",
        condition="c",
        observer="parametric",
        levels=levels,
        correct=np.ones_like(levels),
        settings=FitSettings(n_boot=300, primary="bayes"),
    )
    bounds = default_bounds(x_levels=np.log(np.unique(levels)), lapse_max=0.1)
    assert fit.threshold() > float(np.exp(bounds.threshold_x[0]))  # the prior's, not the data's
    assert fit.threshold_bound == "lower"
    assert fit.bound_level() == pytest.approx(float(np.exp(bounds.threshold_x[0])), rel=1e-9)
    note = next(f for f in fit.flags if f.startswith("no threshold estimate"))
    assert f"the Bayesian estimate {fit.threshold():.3g} is where the prior puts it" in note


def test_a_threshold_beyond_the_tested_levels_with_an_open_interval_is_not_an_estimate():
    """A participant near chance at every tested level (0.1 to 8, 20 trials each): the ML fit
    puts a steep function between the highest tested level and the fit's upper bound, so the
    threshold is not at the bound, yet nothing limits it from above (the interval runs into the
    bound). Like one at the bound it is not an estimate: at least about the highest level, 8."""
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    tested = np.geomspace(0.1, 8.0, 7)
    levels = np.repeat(tested, 20)
    fit = _fit(levels, rng.random(levels.size) < 0.5)
    assert fit.threshold_bound == ""
    assert fit.threshold() > 8.0
    assert fit.threshold_open == "upper" and fit.unbracketed == "upper"
    assert fit.bound_level() == pytest.approx(8.0, rel=1e-9)
    assert any(
        f.startswith("no threshold estimate") and "highest tested level 8" in f for f in fit.flags
    ), fit.flags
    assert not any("(extrapolated)" in f for f in fit.flags)
    demo = _fit(DEMO_LEVELS, DEMO_CORRECT)
    assert demo.threshold_open == "" and demo.unbracketed == ""


SLOPE_FLAG = "slope not estimated: the width is at its lower bound"


def test_a_step_between_neighbouring_levels_says_the_slope_is_not_estimated():
    """Chance at 0.5 and 1, all correct from 2 on (levels a factor 2 apart): the ML width sits
    at its lower bound, the smallest level gap; a gradual rise over 7 levels does not."""
    print(f"seed {SEED}")
    levels = np.repeat([0.5, 1.0, 2.0, 4.0], 20)
    correct = np.tile(np.r_[np.ones(10), np.zeros(10)], 2).tolist() + [1] * 40
    fit = _fit(levels, correct)
    assert any(f.startswith(SLOPE_FLAG) for f in fit.flags), fit.flags
    rng = np.random.default_rng(SEED)
    gradual = np.repeat(np.geomspace(0.25, 4.0, 7), 40)
    p = fit.sigmoid.p_correct(gradual, 0.0, 1.5, 0.02)
    smooth = _fit(gradual, rng.random(gradual.size) < p)
    assert not any(f.startswith(SLOPE_FLAG) for f in smooth.flags), smooth.flags
