"""Group statistics: threshold summaries, mixed models, effect sizes, indistinguishability."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.equivalence import indistinguishability
from analysis.fits import FitSettings, fit_cell
from analysis.glmm import aggregate_for_glmm, trial_mixed_logistic
from analysis.group import group_thresholds, pairwise_effects, threshold_mixed_model
from analysis.simulate_data import p_correct_parametric

SEED = 31


def _thresholds(ratio: float, n: int = 12, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(0, 0.25, n))
    rows = []
    for i in range(n):
        rows.append(
            {
                "participant": f"{i:02d}",
                "condition": "a",
                "threshold": base[i] * np.exp(rng.normal(0, 0.05)),
            }
        )
        rows.append(
            {
                "participant": f"{i:02d}",
                "condition": "b",
                "threshold": ratio * base[i] * np.exp(rng.normal(0, 0.05)),
            }
        )
    return pd.DataFrame(rows)


def test_group_threshold_is_the_geometric_mean_with_a_t_interval():
    t = pd.DataFrame({"condition": ["a"] * 4, "threshold": [1.0, 2.0, 4.0, 0.5]})
    g = group_thresholds(t, log_axis=True).iloc[0]
    assert g.threshold == pytest.approx((1 * 2 * 4 * 0.5) ** 0.25)
    assert g.ci_low < g.threshold < g.ci_high and g.n_participants == 4


def test_mixed_model_and_pairwise_find_a_real_difference_and_not_a_null_one():
    print(f"seed {SEED}")
    real = _thresholds(1.5)
    lmm = threshold_mixed_model(real, conditions=["a", "b"], log_axis=True)
    eff = lmm.effects.iloc[0]
    assert eff.ci_low < 1.5 < eff.ci_high and lmm.omnibus_p < 1e-6
    pairs = pairwise_effects(
        real, conditions=["a", "b"], log_axis=True, rng=np.random.default_rng(SEED)
    )
    row = pairs.iloc[0]
    assert row.ratio == pytest.approx(eff.ratio_vs_reference, rel=0.02)
    assert row.d_z > 2 and row.d_z_ci_low < row.d_z < row.d_z_ci_high and row.p_holm < 1e-6
    null = _thresholds(1.0)
    lmm0 = threshold_mixed_model(null, conditions=["a", "b"], log_axis=True)
    assert lmm0.effects.iloc[0].ci_low < 1.0 < lmm0.effects.iloc[0].ci_high


def test_mixed_model_needs_participants_and_conditions():
    one = _thresholds(1.2, n=2)
    assert (
        "fewer than three participants"
        in threshold_mixed_model(one, conditions=["a", "b"], log_axis=True).note
    )
    only_a = _thresholds(1.2)[lambda d: d.condition == "a"]
    assert (
        "fewer than two conditions"
        in threshold_mixed_model(only_a, conditions=["a", "b"], log_axis=True).note
    )


def _trials(n_participants=8, seed=SEED):
    rng = np.random.default_rng(seed)
    rows = []
    levels = np.geomspace(0.25, 4, 6)
    for p in range(n_participants):
        for cond, thr in (("a", 1.0), ("b", 2.5)):
            lv = np.repeat(levels, 12)
            c = rng.random(lv.size) < p_correct_parametric(
                lv, threshold=thr * np.exp(rng.normal(0, 0.1)), width_log10=0.8, lapse=0.02
            )
            rows.append(
                pd.DataFrame(
                    {
                        "participant": f"{p:02d}",
                        "condition": cond,
                        "level": lv,
                        "correct": c.astype(float),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_aggregated_glmm_equals_statsmodels_on_bernoulli_rows():
    """The binomial aggregation is exact: same VB fit as BinomialBayesMixedGLM on trial rows."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    trials = _trials()
    ours = trial_mixed_logistic(trials, conditions=["a", "b"], log_axis=True)
    d = trials.copy()
    agg = aggregate_for_glmm(trials, log_axis=True)
    d["xc"] = np.log(d["level"]) - np.average(np.log(agg["level"]), weights=agg["n"])
    d["condition"] = pd.Categorical(d["condition"], categories=["a", "b"])
    model = BinomialBayesMixedGLM.from_formula(
        "correct ~ C(condition) * xc",
        {"participant": "0 + C(participant)", "participant_slope": "0 + C(participant):xc"},
        d,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.fit_vb(rng=np.random.default_rng(0))
    np.testing.assert_allclose(ours.coefficients["estimate"], ref.fe_mean, atol=2e-3)
    np.testing.assert_allclose(ours.variance["sd"], np.exp(ref.vcp_mean), rtol=0.05)
    assert ours.wald_df == 2 and ours.wald_p < 0.01  # b's curve is shifted
    assert ours.n_trials == len(trials)


def _equivalence_fits(settings: FitSettings, n: int = 6) -> list:
    """``n`` simulated participants' fits of condition a (threshold 1.5), seed ``SEED``."""
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    fits = []
    for p in range(n):
        lv = np.repeat(np.geomspace(0.1, 8, 7), 40)
        c = rng.random(lv.size) < p_correct_parametric(
            lv, threshold=1.5, width_log10=0.6, lapse=0.02
        )
        fits.append(
            fit_cell(
                participant=f"{p}",
                condition="a",
                observer="parametric",
                levels=lv,
                correct=c,
                settings=settings,
            )
        )
    return fits


def test_indistinguishability_verdicts():
    fits = _equivalence_fits(FitSettings(n_boot=300, bayes=False))
    table = indistinguishability(
        fits, operating_levels={"a": 0.12}, margin=0.05, rng=np.random.default_rng(1)
    )
    assert table.iloc[0].verdict == "equivalent" and table.iloc[0].ci_high < 0.55
    assert "does not prove" in table.iloc[0].statement
    table = indistinguishability(
        fits, operating_levels={"a": 5.0}, margin=0.05, rng=np.random.default_rng(1)
    )
    assert table.iloc[0].verdict == "detectable" and table.iloc[0].ci_low > 0.55
    # True P(correct) at 0.9 is 0.553: right at the bound, so neither claim can be made.
    table = indistinguishability(
        fits, operating_levels={"a": 0.9}, margin=0.05, rng=np.random.default_rng(1)
    )
    assert (
        table.iloc[0].verdict == "inconclusive"
        and table.iloc[0].ci_low < 0.55 < table.iloc[0].ci_high
    )
    table = indistinguishability(
        fits, operating_levels={"b": 1.0}, margin=0.05, rng=np.random.default_rng(1)
    )
    assert table.iloc[0].verdict == "not estimable"


def test_indistinguishability_needs_the_group_minimum_of_participants():
    """One or two participants give a value and an interval but no group verdict, as they give
    no group threshold (MIN_GROUP_PARTICIPANTS); three do."""
    fits = _equivalence_fits(FitSettings(n_boot=300, bayes=False), n=3)
    for n, verdict in ((1, "not estimable"), (2, "not estimable"), (3, "equivalent")):
        row = indistinguishability(
            fits[:n], operating_levels={"a": 0.12}, margin=0.05, rng=np.random.default_rng(1)
        ).iloc[0]
        assert (row.n_participants, row.verdict) == (n, verdict)
        assert np.isfinite([row.p_correct, row.ci_low, row.ci_high]).all()
    assert (
        "needs at least 3 fitted participants"
        in indistinguishability(
            fits[:1], operating_levels={"a": 0.12}, margin=0.05, rng=np.random.default_rng(1)
        )
        .iloc[0]
        .statement
    )


def test_indistinguishability_takes_point_and_interval_from_the_same_fit():
    """With the Bayesian fit primary, the value is still the maximum-likelihood fits' mean, the
    method whose bootstrap gives the interval."""
    fits = _equivalence_fits(FitSettings(n_boot=300, primary="bayes"), n=3)
    row = indistinguishability(
        fits, operating_levels={"a": 0.9}, margin=0.05, rng=np.random.default_rng(1)
    ).iloc[0]
    ml = np.mean([f.ml_p_correct(0.9) for f in fits])
    bayes = np.mean([float(f.p_correct(0.9)) for f in fits])
    assert row.p_correct == pytest.approx(ml, abs=1e-12) and abs(bayes - ml) > 1e-6
    assert row.ci_low <= row.p_correct <= row.ci_high


def test_group_estimate_with_two_participants_needs_more_participants():
    """The demo's two participants (thresholds 2.2 and 0.56): a t interval with one degree of
    freedom (about 4e-05 to 3e+04) is not a result; the note says so."""
    t = pd.DataFrame({"condition": ["a", "a"], "threshold": [2.22, 0.563]})
    g = group_thresholds(t, log_axis=True, level_ranges={"a": (0.1, 8.0)}).iloc[0]
    assert g.n_participants == 2 and g.ci_high / g.ci_low > 1e3
    assert g.note.startswith("the group estimate needs more participants: 2 included")


def test_group_estimate_wider_than_the_level_range_needs_more_participants():
    wide = pd.DataFrame({"condition": ["a"] * 3, "threshold": [0.2, 1.0, 6.0]})
    g = group_thresholds(wide, log_axis=True, level_ranges={"a": (0.1, 8.0)}).iloc[0]
    assert g.ci_high / g.ci_low > 80 and "wider than the whole level range 0.1 to 8" in g.note
    narrow = pd.DataFrame({"condition": ["a"] * 4, "threshold": [1.0, 2.0, 4.0, 0.5]})
    g = group_thresholds(narrow, log_axis=True, level_ranges={"a": (0.1, 8.0)}).iloc[0]
    assert g.note == "" and g.ci_low < g.threshold < g.ci_high
    linear = pd.DataFrame({"condition": ["a"] * 3, "threshold": [0.1, 0.5, 0.9]})
    g = group_thresholds(linear, log_axis=False, level_ranges={"a": (0.0, 1.0)}).iloc[0]
    assert "wider than the whole level range" in g.note


def test_group_estimate_note_without_participants_or_range():
    empty = pd.DataFrame({"condition": ["a"], "threshold": [float("nan")]})
    assert group_thresholds(empty, log_axis=True).iloc[0].note == (
        "no included participant has a threshold"
    )
    wide = pd.DataFrame({"condition": ["a"] * 3, "threshold": [0.2, 1.0, 6.0]})
    assert group_thresholds(wide, log_axis=True).iloc[0].note == ""  # no range to compare with


def test_group_estimate_with_thresholds_at_a_fitting_bound_is_not_a_result():
    """One participant correct on every trial has the fit's lower bound as 'threshold': the
    mean would describe the fitting range, so the note names the participant instead."""
    t = pd.DataFrame(
        {"participant": ["01", "02", "03"], "condition": ["a"] * 3, "threshold": [0.45, 1, 1.2]}
    )
    g = group_thresholds(
        t, log_axis=True, level_ranges={"a": (0.1, 8.0)}, at_bound={"a": ["01"]}
    ).iloc[0]
    assert g.note.startswith("1 of 3 participants' thresholds (01) sit at a bound of the fit")
    g = group_thresholds(t, log_axis=True, level_ranges={"a": (0.1, 8.0)}, at_bound={}).iloc[0]
    assert g.note == ""
    # thresholds.csv has n/a for it: still named and counted ("1 of 3", not "needs more").
    t.loc[0, "threshold"] = float("nan")
    g = group_thresholds(
        t, log_axis=True, level_ranges={"a": (0.1, 8.0)}, at_bound={"a": ["01"]}
    ).iloc[0]
    assert g.n_participants == 2
    assert g.note.startswith("1 of 3 participants' thresholds (01) sit at a bound of the fit")


def test_unbracketed_thresholds_are_left_out_of_the_mixed_model_and_pairwise_tests():
    """An n/a threshold (thresholds.csv, not bracketed) is not a value for the condition
    effects: the mixed model and the pairwise comparisons use the other participants only."""
    print("seed 3")
    rng = np.random.default_rng(3)
    rows = [
        {"participant": f"{i:02d}", "condition": c, "threshold": base * np.exp(rng.normal(0, 0.2))}
        for i in range(1, 7)
        for c, base in (("a", 1.0), ("b", 2.0))
    ]
    t = pd.DataFrame(rows)
    t.loc[(t["participant"] == "01") & (t["condition"] == "b"), "threshold"] = np.nan
    pairs = pairwise_effects(t, conditions=["a", "b"], log_axis=True, rng=np.random.default_rng(0))
    assert pairs.iloc[0].n == 5
    lmm = threshold_mixed_model(t, conditions=["a", "b"], log_axis=True)
    dropped = threshold_mixed_model(t.dropna(), conditions=["a", "b"], log_axis=True)
    assert lmm.note == "" and lmm.effects.equals(dropped.effects)


def test_effect_size_interval_with_three_participants_is_finite_and_plausible():
    # Three participants (the report's minimum): 1 in 9 bootstrap resamples repeats one
    # participant; such a resample has no spread and must not give a d_z of ~1e16.
    thresholds = pd.DataFrame(
        {
            "participant": ["01", "02", "03"] * 2,
            "condition": ["a"] * 3 + ["b"] * 3,
            "threshold": [2.54, 0.513, 1.38, 1.97, 0.881, 1.72],
        }
    )
    row = pairwise_effects(
        thresholds, conditions=["a", "b"], log_axis=True, rng=np.random.default_rng(0)
    ).iloc[0]
    assert row.n == 3
    assert row.d_z_ci_low < row.d_z < row.d_z_ci_high
    assert -100 < row.d_z_ci_low and row.d_z_ci_high < 100
