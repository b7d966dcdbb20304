"""Known thresholds are recovered from simulated observers, and agree with psignifit 4.

(A compact CI-sized version of the validation: the full 200-experiment study per setting is the
analysis helper's benchmark; here 60 experiments per sigmoid keep the suite fast.)
"""

import numpy as np
import pytest

from analysis.fits import FitSettings, fit_cell
from analysis.simulate_data import p_correct_parametric

SEED = 20261128
LEVELS = np.geomspace(0.25, 4.0, 7)  # constant stimuli around the true threshold 1.0


def _experiment(rng, *, trials_per_level=40, threshold=1.0, width_log10=0.6, lapse=0.02):
    levels = np.repeat(LEVELS, trials_per_level)
    p = p_correct_parametric(levels, threshold=threshold, width_log10=width_log10, lapse=lapse)
    return levels, (rng.random(levels.size) < p).astype(int)


@pytest.mark.slow
def test_constant_stimuli_threshold_recovery_bias_and_coverage():
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    settings = FitSettings(n_boot=200, bayes=False)
    estimates, covered = [], []
    for i in range(60):
        levels, correct = _experiment(rng)
        fit = fit_cell(
            participant=f"p{i}",
            condition="c",
            observer="parametric",
            levels=levels,
            correct=correct,
            settings=settings,
        )
        assert fit.fitted
        estimates.append(fit.threshold())
        lo, hi = fit.ci()
        covered.append(lo <= 1.0 <= hi)
    log_bias = float(np.median(np.log(estimates)))
    coverage = float(np.mean(covered))
    print(f"median log-threshold bias {log_bias:+.4f}, 95% CI coverage {coverage:.3f}")
    assert abs(np.expm1(log_bias)) < 0.05
    assert 0.85 <= coverage <= 1.0  # 60 experiments: binomial spread around 0.95


def test_agrees_with_psignifit_on_the_same_data():
    psignifit = pytest.importorskip("psignifit")
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED + 1)
    settings = FitSettings(n_boot=200, bayes=True)
    rel_diffs = []
    for i in range(5):
        levels, correct = _experiment(rng)
        fit = fit_cell(
            participant=f"q{i}",
            condition="c",
            observer="parametric",
            levels=levels,
            correct=correct,
            settings=settings,
        )
        k = np.array([correct[levels == v].sum() for v in LEVELS])
        n = np.array([(levels == v).sum() for v in LEVELS])
        data = np.column_stack([np.log(LEVELS), k, n])
        result = psignifit.psignifit(data, experiment_type="2AFC", sigmoid="norm", thresh_PC=0.5)
        ps_threshold = float(np.exp(result.parameter_estimate["threshold"]))
        ps_lo, ps_hi = np.exp(result.confidence_intervals["threshold"]["0.95"])
        ours = fit.threshold()
        lo, hi = fit.ci()
        assert ps_lo <= ours <= ps_hi and lo <= ps_threshold <= hi
        rel_diffs.append(abs(ours - ps_threshold) / ps_threshold)
    print("relative differences", np.round(rel_diffs, 4))
    assert float(np.median(rel_diffs)) < 0.05
