"""Figure details that a reader relies on: what the axes show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures import curves_figure, panel_title, participant_curves
from analysis.fits import FitSettings, fit_cell
from analysis.group_figures import (
    group_thresholds_figure,
    threshold_axis_limits,
    thresholds_figure,
)


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


def test_the_thresholds_figure_y_label_lies_inside_the_image():
    """Thresholds down to 0.0112 (every trial correct: the fit's lower bound) give tick labels
    such as 0.02; the y label must not be cut off at the image's left edge."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    participants = pd.DataFrame(
        {
            "participant": ["a", "b", "c"],
            "condition": ["x"] * 3,
            "threshold": [0.0112] * 3,
            "ci_low": [0.0112] * 3,
            "ci_high": [0.0112] * 3,
        }
    )
    group = pd.DataFrame(
        {"condition": ["x", "y"], "threshold": [0.0112, 1.06], "ci_low": [np.nan, 0.742]}
    ).assign(ci_high=[np.nan, 1.5], note=["at a bound", ""])
    rows = pd.concat(
        [participants, participants.assign(condition="y", threshold=1.0, ci_low=0.7, ci_high=1.4)]
    )
    fig = thresholds_figure(rows, group, log_axis=True, conditions=["x", "y"])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    label = fig.axes[0].yaxis.label.get_window_extent(canvas.get_renderer())
    assert label.x0 >= 0, label


def test_thresholds_the_tested_levels_do_not_bracket_are_hollow_without_an_interval():
    """Participants near chance at every tested level (thresholds 9 to 70 beyond the highest
    level 8, intervals open to the fit's bound): not estimates, so the thresholds figure does not
    draw them like measured ones with intervals."""
    from matplotlib.colors import to_hex

    rows = pd.DataFrame(
        {
            "participant": ["01", "02", "03"],
            "condition": ["c1"] * 3,
            "threshold": [10.6, 66.8, 1.2],
            "ci_low": [6.98, 8.0, 0.9],
            "ci_high": [71.6, 71.6, 1.5],
        }
    )
    group = pd.DataFrame(
        {"condition": ["c1"], "threshold": [9.8], "ci_low": [np.nan], "ci_high": [np.nan]}
    ).assign(note=["not estimates"])
    fig = thresholds_figure(
        rows, group, log_axis=True, conditions=["c1"], not_estimates={"c1": ["01", "02"]}
    )
    lines = fig.axes[0].get_lines()
    intervals = [ln for ln in lines if to_hex(ln.get_color()) == "#bbbbbb"]
    hollow = [ln for ln in lines if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"]
    assert len(intervals) == 1 and list(intervals[0].get_ydata()) == [0.9, 1.5]
    assert sorted(float(ln.get_ydata()[0]) for ln in hollow) == [10.6, 66.8]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    title = fig.axes[0].title.get_window_extent(canvas.get_renderer())
    assert 0 <= title.x0 and title.x1 <= fig.bbox.width, (title, fig.bbox)  # the key is legible


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


def test_the_legend_of_a_psychometric_panel_covers_no_data_point():
    """Constant stimuli at 0.1 to 8 (the one-participant report): near 50 % up to level 2, then
    near 100 %. The point at level 2 and 55 % sat under the legend pinned to the lower right.
    Then, placed where matplotlib found the fewest points ('best', by their centres), the legend
    half covered a disc whose centre lay just outside it (the lab's messy data: 4 of 4 correct at
    0.2, a large disc under the upper-left legend). The legend now goes under the panels: no
    part of any disc is under it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    tested = np.geomspace(0.1, 8.0, 7)
    cases = (
        np.array([13, 11, 9, 10, 11, 20, 20]),  # correct of 20 at each level
        np.array([15, 5, 15, 5, 20, 20, 20]),  # 75 % at the lowest level: the upper left
    )
    for k in cases:
        levels = np.repeat(tested, 20)
        correct = np.concatenate([np.arange(20) < n for n in k]).astype(float)
        fit = fit_cell(
            participant="01",
            condition="c",
            observer="parametric",
            levels=levels,
            correct=correct,
            settings=FitSettings(n_boot=100, bayes=False),
        )
        fig = curves_figure([fit], title="01", truth={"c": 1.5})
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        (legend,) = fig.legends
        box = legend.get_window_extent(canvas.get_renderer())
        labels = [t.get_text() for t in legend.get_texts()]
        assert sorted(labels) == ["data", "fit", "threshold (CI)", "true threshold"], labels
        for ax in fig.axes:  # under the panel, its tick labels and axis label included
            assert box.y1 <= ax.get_tightbbox(canvas.get_renderer()).y0, (box, ax)


def test_every_plotted_proportion_lies_inside_the_psychometric_panel():
    """A staircase participant's levels (fovea simulate, acuity_centre): 1 of 3, 2 of 6 and 1 of
    4 correct at the three lowest levels. The y axis used to start at 0.35 and drop them, so
    the panel showed half the data; it now reaches down to the lowest proportion."""
    table = {0.710469: (3, 1), 0.894427: (6, 2), 1.003564: (4, 1), 1.126017: (17, 13)}
    table |= {1.263412: (7, 6), 1.417572: (7, 7)}
    levels = np.concatenate([[lv] * n for lv, (n, _) in table.items()])
    correct = np.concatenate([np.arange(n) < k for n, k in table.values()]).astype(float)
    fit = fit_cell(
        participant="sim01",
        condition="acuity_centre",
        observer="parametric",
        levels=levels,
        correct=correct,
        settings=FitSettings(n_boot=100, bayes=False),
    )
    ax = curves_figure([fit], title="sim01").axes[0]
    low, high = ax.get_ylim()
    proportions = [k / n for n, k in table.values()]
    assert low < min(proportions) and max(proportions) < high, (low, high)
    assert 0.25 in list(ax.get_yticks())
    ordinary = curves_figure(
        [
            fit_cell(
                participant="01",
                condition="c",
                observer="parametric",
                levels=np.repeat([1.0, 2.0, 4.0], 10),
                correct=np.tile(np.arange(10) < 6, 3).astype(float),
                settings=FitSettings(n_boot=100, bayes=False),
            )
        ],
        title="01",
    )
    assert ordinary.axes[0].get_ylim() == (0.35, 1.02)  # no proportion below 0.4: as before


def test_token_figure_with_one_tested_level_draws_without_a_warning():
    import warnings

    from analysis.group_figures import token_figure

    curves = {"x": (np.array([1.0]), np.array([0.2]))}
    group = pd.DataFrame(
        {"condition": ["x"], "threshold": [np.nan], "ci_low": [np.nan], "ci_high": [np.nan]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on equal axis limits
        png = token_figure(curves, group, log_axis=True)
    assert png.startswith(b"\x89PNG")


def test_level_axes_name_the_level_variable_and_never_mix_two():
    """strength (acuity) and radius_shrink (circle) conditions: every level axis names its
    variable (with its unit), and the thresholds figure gives each variable its own panel."""
    from generator.levels import level_axis_label

    labels = {"acuity": level_axis_label("strength"), "circle": level_axis_label("radius_shrink")}
    assert labels == {"acuity": "strength", "circle": "radius_shrink (1 - radius / half-diagonal)"}
    rng = np.random.default_rng(1)
    fits = []
    for condition, levels in (("acuity", [0.5, 1.0, 2.0, 4.0]), ("circle", [0.2, 0.4, 0.6, 0.8])):
        x = np.repeat(levels, 10)
        fits.append(
            fit_cell(
                participant="01",
                condition=condition,
                observer="parametric",
                levels=x,
                correct=(rng.random(x.size) < np.linspace(0.5, 1.0, x.size)).astype(float),
                settings=FitSettings(n_boot=100, bayes=False),
            )
        )
    fig = curves_figure(fits, title="01", level_labels=labels)
    assert [ax.get_xlabel() for ax in fig.axes] == [labels["acuity"], labels["circle"]]
    assert fig.axes[1].get_xlim()[1] < 2 < 4 < fig.axes[0].get_xlim()[1]  # a range per variable
    rows = pd.DataFrame(
        {
            "participant": ["01", "01"],
            "condition": ["acuity", "circle"],
            "threshold": [1.2, 0.5],
            "ci_low": [0.9, 0.3],
            "ci_high": [1.6, 0.7],
        }
    )
    group = rows.drop(columns="participant").assign(note="")
    fig = thresholds_figure(
        rows, group, log_axis=True, conditions=["acuity", "circle"], level_labels=labels
    )
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "threshold: strength",
        "threshold: radius_shrink\n(1 - radius / half-diagonal)",
    ]
    assert [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes] == [
        ["acuity"],
        ["circle"],
    ]


def test_a_true_threshold_off_the_level_axis_is_a_note_not_a_legend_entry():
    """A simulated true threshold of 50 on an axis that ends near 8: no dotted line can be drawn,
    so the legend does not name one; a note at the axis end gives its value."""
    tested = np.geomspace(0.1, 8.0, 7)
    levels = np.repeat(tested, 20)
    k = np.array([10, 11, 13, 15, 18, 20, 20])
    correct = np.concatenate([np.arange(20) < n for n in k]).astype(float)
    fit = fit_cell(
        participant="01",
        condition="c",
        observer="parametric",
        levels=levels,
        correct=correct,
        settings=FitSettings(n_boot=100, bayes=False),
    )
    for truth, on_axis in ((50.0, False), (1.5, True)):
        fig = curves_figure([fit], title="01", truth={"c": truth})
        ax, (legend,) = fig.axes[0], fig.legends
        labels = [t.get_text() for t in legend.get_texts()]
        notes = [t.get_text() for t in ax.texts]
        assert ("true threshold" in labels) == on_axis, labels
        assert any("true threshold 50 beyond the axis" in n for n in notes) != on_axis, notes


def test_a_threshold_beyond_the_tested_levels_is_on_the_axis_and_said_to_be_extrapolated():
    """A participant near chance at every level QUEST+ tested (0.633 to 3.18; the chance
    participant's report): the fit puts its threshold at 6.07, interval 1.2 to 6.23, beyond
    the highest level. The axis ended at 4.8, so the panel showed a flat curve and an interval
    bar without its marker or a word; it now reaches the marker and the title says so."""
    levels = np.array([1.264, 1.004, 3.18, 2.525, 2.005, 2.005, 1.592, 1.264, 1.004, 0.797])
    levels = np.concatenate([levels, [0.633, 0.633, 1.264, 1.004, 0.797, 1.592, 1.264]])
    levels = np.concatenate([levels, [1.264, 1.004, 1.592]])
    correct = np.array([1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0], float)
    fit = fit_cell(
        participant="04",
        condition="acuity_right6",
        observer="parametric",
        levels=levels,
        correct=correct,
        settings=FitSettings(n_boot=100, bayes=False),
    )
    assert not fit.unbracketed and fit.threshold() > levels.max()
    assert panel_title(fit) == "acuity_right6 (n=20)\nextrapolated: beyond the tested levels"
    ax = curves_figure([fit], title="04").axes[0]
    lo, hi = ax.get_xlim()
    assert lo < fit.threshold() < hi


def test_a_log_axis_has_a_tick_near_each_end_and_never_none():
    """The token figure's ratio axis ran from 0.024 to 0.25 with ticks 0.05, 0.1, 0.2: the
    curves' ends below 0.05 had nothing to be read by; an end that far past the outermost
    1-2-5 tick gets a one-digit tick. A narrow axis between two 1-2-5 values (1.1 to 1.9) had
    no tick at all; it gets its ends and middle."""
    from analysis.figure_style import log_axis_ticks, new_figure

    def ticks(lo, hi):
        ax = new_figure(4, 3).add_subplot()
        log_axis_ticks(ax, "y", lo, hi)
        return [float(v) for v in ax.get_yticks()]

    assert ticks(0.024, 0.25) == [0.03, 0.05, 0.1, 0.2]
    assert ticks(0.55, 5.0) == [0.6, 1.0, 2.0, 5.0]
    assert ticks(0.7, 9.3) == [1.0, 2.0, 5.0, 9.0]
    assert ticks(0.2, 20.0) == [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]  # ends on ticks: unchanged
    assert ticks(1.1, 1.9) == [1.1, 1.5, 1.9]


def test_the_token_figure_bands_only_group_results():
    """A group threshold that is not a result yet (two participants: its t interval spans
    orders of magnitude) had its band drawn over the whole panel; it gets a dotted line and
    no band, a result a dashed line and its band."""
    from analysis.figure_style import new_figure
    from analysis.group_figures import _token_panel

    levels = np.geomspace(0.5, 5.0, 20)
    curves = {"a": (levels, 0.2 / levels), "b": (levels, 0.1 / levels)}
    group = pd.DataFrame(
        {
            "condition": ["a", "b"],
            "threshold": [1.2, 1.4],
            "ci_low": [1.0, 0.01],
            "ci_high": [1.5, 200.0],
            "note": ["", "2 participants with a threshold; a group result needs at least 3"],
        }
    )
    ax = new_figure(4, 3).add_subplot()
    _token_panel(ax, curves, group, log_axis=True, first_color=0, ratio_range=(0.02, 0.5))
    assert len(ax.patches) == 1  # a's band only
    vertical = [line for line in ax.lines if len(set(line.get_xdata())) == 1]
    styles = {float(line.get_xdata()[0]): line.get_linestyle() for line in vertical}
    assert styles == {1.2: "--", 1.4: ":"}


def test_qc_bars_label_zeros_and_missing_values():
    """A participant without the metric (NaN) was drawn as a bar of height 0, the same as a
    real 0, and a panel of zeros looked empty: zeros say "0", missing values "n/a"."""
    from analysis.figure_style import new_figure
    from analysis.group_figures import _qc_panel

    ax = new_figure(4, 3).add_subplot()
    values = np.array([0.0, 0.12, np.nan])
    _qc_panel(ax, values, ["01", "02", "03"], ["#1f77b4"] * 3, title="rate", limit=0.25)
    assert [(t.get_text(), t.xy[0]) for t in ax.texts] == [("0", 0), ("n/a", 2)]


def test_a_long_figure_title_lies_inside_a_one_panel_figure():
    """One condition's figure is 3.1 in wide: the tracks title "Participant sim04 (excluded by
    QC): levels trial by trial" ran past both edges of the image ("nt sim04 (excluded by QC):
    levels tria" was left). A title too wide for the figure is broken into lines, with room for
    them above the panel's own title; a short one stays on one line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from analysis.figure_style import panel_grid

    for title, lines in (
        ("Participant sim04 (excluded by QC): levels trial by trial", 2),
        ("Measured (participants) vs predicted (perceptual observer)", 2),
        ("Participant 01", 1),
    ):
        fig, rows, cols = panel_grid(1, title, below_in=0.41)
        ax = fig.add_subplot(rows, cols, 1)
        ax.set_title("acuity_right3 (n=7)", fontsize=9)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        box = fig._suptitle.get_window_extent(renderer)
        panel = ax.title.get_window_extent(renderer)
        assert fig._suptitle.get_text().count("\n") == lines - 1, fig._suptitle.get_text()
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, (title, box)
        assert box.y1 <= fig.bbox.height and box.y0 >= panel.y1, (title, box, panel)


def test_the_perceptual_overlay_names_each_level_variable_on_its_own_range():
    """The overlay figure labelled every level axis 'level' and drew all conditions on one range:
    a radius_shrink panel (levels 0.2-0.8) beside a strength one (0.5-4) ran to 4, past the
    possible radius_shrink levels. It now labels and ranges each panel as the participant
    figures do (seed 1)."""
    from analysis.figures import overlay_curves_figure
    from generator.levels import level_axis_label

    labels = {"acuity": level_axis_label("strength"), "circle": level_axis_label("radius_shrink")}
    rng = np.random.default_rng(1)
    human, model = {}, {}
    for condition, levels in (("acuity", [0.5, 1.0, 2.0, 4.0]), ("circle", [0.2, 0.4, 0.6, 0.8])):
        x = np.repeat(levels, 10)
        fits = [
            fit_cell(
                participant=who,
                condition=condition,
                observer=who,
                levels=x,
                correct=(rng.random(x.size) < np.linspace(0.5, 1.0, x.size)).astype(float),
                settings=FitSettings(n_boot=100, bayes=False),
            )
            for who in ("pooled", "perceptual")
        ]
        human[condition], model[condition] = (fits[0], []), fits[1]
    fig = overlay_curves_figure(human, model, conditions=["acuity", "circle"], level_labels=labels)
    assert [ax.get_xlabel() for ax in fig.axes] == [labels["acuity"], labels["circle"]]
    assert fig.axes[1].get_xlim()[1] < 2 < 4 < fig.axes[0].get_xlim()[1]
    # the y axis says what it is, as in the participant figures (it had no label)
    assert [ax.get_ylabel() for ax in fig.axes] == ["proportion correct"] * 2


def test_the_report_draws_thresholds_it_cannot_estimate_hollow_where_the_page_puts_them(tmp_path):
    """A participant right on every trial (the lab's messy data): the page said 'at most about
    0.04', but the thresholds figure left the participant out altogether (thresholds.csv has
    n/a there, and the figure skipped n/a), though its key promised hollow markers for such
    thresholds. The figure gets the page's value, drawn hollow without an interval."""
    from matplotlib.colors import to_hex

    from analysis.report_analysis import ReportConfig
    from analysis.report_files import _figure_threshold_rows
    from analysis.report_stages import apply_qc, fit_participants, load
    from analysis.simulate_data import SimulationSpec, simulate_dataset

    root = tmp_path / "data"
    simulate_dataset(
        out_dir=root, spec=SimulationSpec(participants=3, trials_per_condition=30, seed=5)
    )
    beh = next((root / "sub-03").rglob("*_beh.tsv"))
    lines = beh.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    ir, ic, iv = (header.index(c) for c in ("response", "correct", "interval_foveated"))
    for k, line in enumerate(lines[1:], start=1):
        row = line.split("\t")
        if len(row) == len(header) and row[ir] != "n/a":
            row[ir], row[ic] = row[iv], "1"
            lines[k] = "\t".join(row)
    beh.write_text("\n".join(lines), encoding="utf-8")
    config = ReportConfig(fit=FitSettings(n_boot=100, bayes=False), progress=False, workers=1)
    a = load(config, root)
    apply_qc(a)
    fit_participants(a)
    fits = {(f.participant, f.condition): f for f in a.included_fits}
    at_most = {c: fits[("03", c)].bound_level() for c in a.conditions}
    assert all(fits[("03", c)].unbracketed and np.isfinite(at_most[c]) for c in a.conditions)
    assert a.threshold_rows.loc[a.threshold_rows["participant"] == "03", "threshold"].isna().all()
    rows = _figure_threshold_rows(a)
    for c in a.conditions:
        fig = thresholds_figure(
            rows,
            pd.DataFrame(columns=["condition", "threshold", "ci_low", "ci_high"]),
            log_axis=True,
            conditions=[c],
            not_estimates={c: ["03"]},
        )
        lines = fig.axes[0].get_lines()
        hollow = [
            ln for ln in lines if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"
        ]
        intervals = [ln for ln in lines if to_hex(ln.get_color()) == "#bbbbbb"]
        assert [float(ln.get_ydata()[0]) for ln in hollow] == [at_most[c]]
        assert len(intervals) == 2  # participants 01 and 02, measured
