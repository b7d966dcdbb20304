"""Intervals never reach levels without a layout: radius_shrink stops at 1 (radius 0)."""

from __future__ import annotations

import numpy as np

from analysis.fits import FitSettings, fit_cell
from generator.levels import LEVEL_DOMAINS

# A shallow, noisy radius_shrink track: threshold near 0.56, bootstrap interval up to 1.6.
LEVELS = np.repeat([0.2, 0.3, 0.45, 0.6, 0.8], 8)
CORRECT = np.array(
    [0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1]
    + [0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0],
    dtype=float,
)


def _fit(domain):
    return fit_cell(
        participant="01",
        condition="circle",
        observer="parametric",
        levels=LEVELS,
        correct=CORRECT,
        settings=FitSettings(n_boot=200, bayes=False, seed=0),
        level_domain=domain,
    )


def test_a_radius_shrink_fit_stays_within_1_and_says_so():
    """The fit's threshold range is cut to the possible levels: bootstrap fits that would run
    past radius 0 stop at 1, and the flag names 1 as the end of the possible levels."""
    free = _fit(None)
    assert free.ci()[1] > 1  # without the domain the bootstrap interval runs past radius 0
    fit = _fit(LEVEL_DOMAINS["radius_shrink"])
    assert abs(fit.threshold() - free.threshold()) < 1e-5  # inside: the same estimate
    assert fit.ci()[1] == 1.0 and fit.row()["ci_high"] == 1.0
    assert fit.detail_row()["ml_ci_high"] == 1.0 and free.detail_row()["ml_ci_high"] > 1
    assert any(
        "ci_high = 1 is the upper bound of the fit, the upper end of the possible "
        "radius_shrink levels"
        in f
        and "do not rule out a threshold there or none at any possible level" in f
        for f in fit.flags
    )


def test_an_interval_beyond_the_domain_is_cut_and_flagged():
    """An interval computed beyond the possible levels (the Bayesian posterior's, whose grid
    is not the ML bounds) is cut where it is reported, and flagged."""
    fit = _fit(LEVEL_DOMAINS["radius_shrink"])
    fit.ci_x = lambda: (np.log(0.2), np.log(1.6))  # as a posterior interval past radius 0
    assert fit.ci() == (0.2, 1.0) and fit.ci_cut() == ["upper"]


def test_domain_clip_names_the_cut_ends():
    d = LEVEL_DOMAINS["radius_shrink"]
    assert d.clip(0.2, 0.7) == (0.2, 0.7, [])
    assert d.clip(-0.1, 1.3) == (0.0, 1.0, ["lower", "upper"])
    assert LEVEL_DOMAINS["strength"].clip(0.5, 40.0) == (0.5, 40.0, [])
    # A periphery factor is 2 or 4: an interval reaching 1.5 or 6 is cut there.
    assert LEVEL_DOMAINS["periphery_factor"].clip(1.5, 6.0) == (2.0, 4.0, ["lower", "upper"])


def test_a_group_interval_beyond_radius_shrink_1_is_cut_with_a_warning():
    from types import SimpleNamespace

    import pandas as pd

    from analysis.report_stages import _cut_group_intervals

    domains = {"circle": LEVEL_DOMAINS["radius_shrink"]}
    a = SimpleNamespace(
        design=SimpleNamespace(level_domains=lambda conditions: domains),
        conditions=["acuity", "circle"],
        group=pd.DataFrame(
            {"condition": ["acuity", "circle"], "ci_low": [0.5, 0.3], "ci_high": [3.0, 1.4]}
        ),
        warnings=[],
    )
    _cut_group_intervals(a)
    assert a.group["ci_high"].tolist() == [3.0, 1.0]
    assert len(a.warnings) == 1 and a.warnings[0].startswith(
        "circle: the group interval ran beyond the possible radius_shrink levels"
    )


def test_a_radius_shrink_panel_stops_just_past_1():
    """The participant panel's level axis (and the fitted curve) end at the possible levels:
    tested levels up to 0.8 would give an axis to 1.2 (0.8 x 1.5)."""
    from analysis.figure_style import level_range

    lo, hi = level_range([_fit(LEVEL_DOMAINS["radius_shrink"])])
    assert hi == 1.04 and lo == 0.2 / 1.5
    assert level_range([_fit(None)])[1] == 0.8 * 1.5


def test_domains_have_the_protocol_schemas_open_ends():
    """The protocol schema allows strength > 0 and 0 < radius_shrink < 1
    (protocol.stimulus_settings.Condition): those ends are not possible levels; a periphery
    factor of 2 or 4 is."""
    strength, radius, factor = (
        LEVEL_DOMAINS[v] for v in ("strength", "radius_shrink", "periphery_factor")
    )
    assert not strength.contains(0.0) and strength.contains(1e-6) and strength.contains(40.0)
    assert not radius.contains(0.0) and radius.contains(0.5) and not radius.contains(1.0)
    assert radius.contains(0.999) and not radius.contains(1.2)
    assert factor.contains(2.0) and factor.contains(4.0) and not factor.contains(4.5)
    # Intervals are still cut at the ends (an open end is the interval's limit).
    assert radius.clip(0.3, 1.4) == (0.3, 1.0, ["upper"])


def test_the_schema_refuses_what_the_domains_exclude():
    import pytest
    from pydantic import ValidationError

    from protocol.stimulus_settings import Condition

    for level_variable, bad in (("strength", 0.0), ("radius_shrink", 1.0)):
        mode = "acuity" if level_variable == "strength" else "circle"
        fields = {"name": "c", "layout_mode": mode, "level_variable": level_variable}
        fields |= {"level_min": 0.1, "level_max": 0.9}
        assert not LEVEL_DOMAINS[level_variable].contains(bad)
        with pytest.raises(ValidationError):
            Condition(**fields, levels=[0.5, bad])
        Condition(**fields, levels=[0.3, 0.5])


def test_the_schema_validates_every_level_field_by_the_domains():
    """protocol.stimulus_settings.Condition writes no level limit of its own: levels, level_min,
    level_max and start_level are checked by LEVEL_DOMAINS, and the message says the domain's
    ends and why."""
    import pytest
    from pydantic import ValidationError

    from protocol.stimulus_settings import Condition

    def refused(**fields) -> str:
        with pytest.raises(ValidationError) as info:
            Condition(name="c", **fields)
        return info.value.errors()[0]["msg"]

    radius = LEVEL_DOMAINS["radius_shrink"]
    circle = {"layout_mode": "circle", "level_variable": "radius_shrink"}
    message = refused(**circle, level_min=0.1, level_max=1.2)
    assert f"level_max = 1.2: radius_shrink levels must be {radius.describe()}" in message
    assert radius.why in message and radius.describe() == "> 0 and < 1"
    assert "levels has 1: radius_shrink" in refused(**circle, level_max=0.9, levels=[0.5, 1.0])
    Condition(name="c", **circle, level_min=0.001, level_max=0.999, start_level=0.5)
    for field in ("level_min", "start_level"):
        fields = {"level_min": 0.1, "level_max": 2.0, field: 0.0}
        assert f"{field} = 0: strength levels must be > 0" in refused(**fields)
    factor = {"layout_mode": "circle", "level_variable": "periphery_factor"}
    assert "periphery_factor levels must be 2 or 4" in refused(**factor, levels=[2, 3])
    assert "needs explicit levels (2 and/or 4)" in refused(**factor)
    # A discrete variable's range ends are no layouts' levels: positive is enough.
    Condition(name="c", **factor, levels=[2, 4], level_min=0.1, level_max=4.0)
    assert "level_min must be > 0" in refused(**factor, levels=[2], level_min=-1.0)
    assert LEVEL_DOMAINS["periphery_factor"].testable(4.0)
    assert not LEVEL_DOMAINS["periphery_factor"].testable(3.0)
    assert LEVEL_DOMAINS["periphery_factor"].contains(3.0)  # an interpolated threshold
