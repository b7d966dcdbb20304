"""Figure details that a reader relies on: what the axes show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures import (
    group_thresholds_figure,
    panel_title,
    participant_curves,
    threshold_axis_limits,
)
from analysis.fits import FitSettings, fit_cell


def test_threshold_axis_shows_the_whole_group_interval():
    """Three participants (baseline pilot report): the group interval 0.163 to 9.05 reaches past
    every participant's interval; the axis must show both of its ends."""
    participants = pd.DataFrame(
        {
            "participant": ["a", "b", "c"],
            "condition": ["x"] * 3,
            "threshold": [2.54, 0.513, 1.38],
            "ci_low": [0.448, 0.178, 0.615],
            "ci_high": [6.2, 0.895, 1.64],
        }
    )
    group = pd.DataFrame(
        {
            "condition": ["x"],
            "threshold": [1.22],
            "ci_low": [0.163],
            "ci_high": [9.05],
            "note": [""],
        }
    )
    lo, hi = threshold_axis_limits(participants, group)
    assert lo < 0.163 and hi > 9.05
    pending = group.assign(note="the group estimate needs more participants")
    lo, hi = threshold_axis_limits(participants, pending)  # its interval is not drawn
    assert lo == 0.178 / 1.2 and hi == 6.2 * 1.2
    empty = participants.assign(threshold=np.nan, ci_low=np.nan, ci_high=np.nan)
    assert threshold_axis_limits(empty, group.iloc[0:0]) is None
    png = group_thresholds_figure(participants, group, log_axis=True, conditions=["x"])
    assert png.startswith(b"\x89PNG")


def test_a_threshold_at_the_fitting_bound_is_not_drawn_as_one():
    """Correct on every trial: the panel says there is no threshold instead of marking one."""
    levels = np.repeat([1.0, 1.6, 2.5, 4.0, 5.0], 4)
    fit = fit_cell(
        participant="01",
        condition="c",
        observer="parametric",
        levels=levels,
        correct=np.ones_like(levels),
        settings=FitSettings(n_boot=100, bayes=False),
    )
    assert fit.threshold_bound == "lower"
    assert panel_title(fit) == "c (n=20)\nno threshold: at the fit's lower bound"
    assert participant_curves([fit], title="01").startswith(b"\x89PNG")


def test_token_figure_with_one_tested_level_draws_without_a_warning():
    import warnings

    from analysis.figures import token_figure

    curves = {"x": (np.array([1.0]), np.array([0.2]))}
    group = pd.DataFrame(
        {"condition": ["x"], "threshold": [np.nan], "ci_low": [np.nan], "ci_high": [np.nan]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on equal axis limits
        png = token_figure(curves, group, log_axis=True)
    assert png.startswith(b"\x89PNG")
