"""p-values are written one way everywhere: three decimals, ``< 0.001`` below, never ``0``."""

from __future__ import annotations

import math

import pandas as pd

from analysis.fits import FitSettings
from analysis.html_blocks import table
from analysis.p_values import fmt_p, p_text
from analysis.report import ReportConfig, build_report
from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset


def test_small_p_values_are_an_upper_bound_not_zero():
    assert [fmt_p(p) for p in (0.0, 1e-300, 0.00099, 0.001, 0.0234, 0.5, 1.0)] == [
        "< 0.001",
        "< 0.001",
        "< 0.001",
        "0.001",
        "0.023",
        "0.500",
        "1.000",
    ]
    assert [fmt_p(p) for p in (None, math.nan)] == ["–", "–"]
    assert p_text(0.0) == "p < 0.001" and p_text(0.0234) == "p = 0.023"


def test_p_value_columns_of_a_table_use_the_convention():
    html = table(pd.DataFrame({"condition": ["b"], "t": [0.0], "p": [0.0], "p_holm": [0.04]}))
    assert '<td class="">&lt; 0.001</td><td class="">0.040</td>' in html
    assert '<td class="">0</td>' in html  # t is not a p-value: plain number


def test_a_report_with_a_huge_condition_effect_prints_p_below_not_p_zero(tmp_path):
    spec = SimulationSpec(
        participants=4,
        procedure="constant",
        trials_per_condition=140,
        lapse=0.0,
        # Both thresholds inside the tested levels (0.1 to 8): a threshold below them (1e-3) is
        # no estimate, n/a in thresholds.csv, and the threshold mixed model leaves it out.
        conditions=(
            SimCondition(name="c1", threshold=0.2),
            SimCondition(name="c2", threshold=4.0),
        ),
        seed=3,
    )
    simulate_dataset(out_dir=tmp_path / "data", spec=spec)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=tmp_path / "data", out_dir=tmp_path / "out", config=config)
    html = report.html.read_text(encoding="utf-8")
    assert "p = 0;" not in html and "p = 0." + "000" not in html
    assert "chi2(1) = " in html and "p &lt; 0.001; trial-level" in html
