"""Recovery of known thresholds from simulated observers (the study's parametric observer),
through constant stimuli and through the study's QUEST+ procedure: over 200 simulated
experiments per setting, threshold bias below 5 % and 95 % interval coverage in [90 %, 98 %],
for the report's default fits (ML with bootstrap intervals, the primary; and psignifit 4's
Bayesian model)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from analysis.validation import SETTINGS, recovery_study

N_EXPERIMENTS = 200
SEED = 20261128


@pytest.mark.slow
@pytest.mark.parametrize("key", ["constant", "questplus200"])
def test_threshold_recovery(key):
    result = recovery_study(
        setting=SETTINGS[key], n_experiments=N_EXPERIMENTS, seed=SEED, workers=2
    )
    print(f"simulation seed {SEED}; fit bootstrap seeds derive from master seed 0 and 'sim<i>/c'")
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(result).items()})
    assert result.n_experiments >= 200
    assert abs(result.bias_ml) < 0.05
    assert 0.90 <= result.coverage_ml <= 0.98
    assert abs(result.bias_bayes) < 0.05
    assert 0.90 <= result.coverage_bayes <= 0.98
