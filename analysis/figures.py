"""The report's figures of one participant and of the fits: psychometric functions per condition,
the levels trial by trial (adaptive procedures), and measured vs perceptual-observer functions.
Every function returns PNG bytes; the report writes them to ``figures/`` and embeds them.
Group, QC and token figures: ``analysis.group_figures``; what they share: ``analysis.figure_style``.
"""

from __future__ import annotations

import numpy as np

from analysis.figure_style import (
    COLORS,
    THRESHOLD_COLOUR,
    TRACK_COLOURS,
    TRUTH_COLOUR,
    legend_below,
    level_grid,
    level_label,
    log_axis_ticks,
    p_correct_axis,
    panel_grid,
    ranges_by_label,
    stacked,
    to_png,
)


def panel_title(fit) -> str:
    """A participant panel's title: condition, trials and, at a fitting bound, that the
    threshold is not estimated."""
    title = f"{fit.condition} (n={fit.n_trials})"
    if fit.fitted and fit.threshold_bound:
        title += f"\nno threshold: at the fit's {fit.threshold_bound} bound"
    elif fit.fitted and fit.threshold_open:
        title += "\nno threshold: beyond the tested levels"
    elif fit.fitted and _extrapolated(fit):
        title += "\nextrapolated: beyond the tested levels"
    return title


def _extrapolated(fit) -> bool:
    from analysis.fits import EXTRAPOLATED

    return EXTRAPOLATED in fit.flags


def participant_curves(
    fits: list,
    *,
    title: str,
    truth: dict[str, float] | None = None,
    level_labels: dict[str, str] | None = None,
) -> bytes:
    """One participant's psychometric functions, one panel per condition.

    Data points: proportion correct per level (pooled into at most 12 groups for adaptive data),
    area proportional to trial count. Line: the primary fit; marker with bar: threshold and its
    interval, drawn at the threshold's P(correct); none where the threshold sits at a bound of
    the fit (no estimate: the panel's title says so).
    """
    return to_png(curves_figure(fits, title=title, truth=truth, level_labels=level_labels))


def curves_figure(
    fits: list,
    *,
    title: str,
    truth: dict[str, float] | None = None,
    level_labels: dict[str, str] | None = None,
):
    """The matplotlib figure of ``participant_curves`` (same arguments). The legend goes under
    the panels: inside one, matplotlib's "best" place counts data points by their centres, so
    it half covered a large disc whose centre lay just outside it. ``level_labels``: condition
    -> its level axis label; panels of one level variable share their level range, others have
    their own."""
    from analysis.fits import pool_for_display

    rows_of_legend = 1 if len(fits) > 1 else 2
    fig, rows, cols = panel_grid(len(fits), title, below_in=0.15 + 0.13 * rows_of_legend)
    ranges = ranges_by_label(fits, level_labels)
    axes = []
    for i, fit in enumerate(fits):
        ax = fig.add_subplot(rows, cols, i + 1)
        axes.append(ax)
        lo, hi = ranges[level_label(level_labels, fit.condition)]
        pts = pool_for_display(fit.table, sigmoid=fit.sigmoid)
        if fit.sigmoid.log_axis:
            pts = pts[pts["level"] > 0]
            log_axis_ticks(ax, "x", lo, hi)
        proportions = (pts["k"] / pts["n"]).to_numpy(dtype=float)
        if len(pts):
            ax.scatter(
                pts["level"],
                pts["k"] / pts["n"],
                s=12 + 180 * pts["n"] / max(pts["n"].max(), 1),
                color="#555555",
                alpha=0.6,
                edgecolor="none",
                label="data",
            )
        if fit.fitted:
            end = hi if fit.level_domain is None else min(hi, fit.level_domain.high)
            grid = level_grid(fit, lo, end)
            ax.plot(grid, fit.p_correct(grid), color=COLORS[0], lw=1.8, label="fit")
        if fit.fitted and not fit.unbracketed:
            t = fit.threshold()
            c_lo, c_hi = fit.ci()
            p_t = float(fit.p_correct(t))
            ax.errorbar(
                [t],
                [p_t],
                xerr=[[max(t - c_lo, 0)], [max(c_hi - t, 0)]],
                fmt="o",
                color=COLORS[1],
                ms=5,
                capsize=3,
                label="threshold (CI)",
            )
        if truth and fit.condition in truth:
            _truth_line(ax, truth[fit.condition], lo, hi, vertical=True)
        ax.axhline(0.5, color="#999999", lw=0.8, ls="--")
        p_correct_axis(ax, proportions)
        ax.set_xlim(lo, hi)
        ax.set_title(panel_title(fit), fontsize=9)
        ax.set_xlabel(level_label(level_labels, fit.condition), fontsize=8)
        ax.set_ylabel("proportion correct", fontsize=8)
        ax.tick_params(labelsize=7)
    legend_below(fig, axes)
    return fig


def _truth_line(ax, value: float, lo: float, hi: float, *, vertical: bool) -> None:
    """A simulated participant's true threshold: a dotted green line across the level axis
    (``vertical``: the level axis is x) when it lies within [lo, hi]; otherwise a note at the
    axis end it lies beyond, so no legend entry names a line that is not drawn."""
    colour = TRUTH_COLOUR
    if lo <= value <= hi:
        line = ax.axvline if vertical else ax.axhline
        line(value, color=colour, ls=":", lw=1.2, label="true threshold")
        return
    above = value > hi
    text = f"true threshold {value:.3g} {'beyond' if above else 'below'} the axis"
    if vertical:
        ax.text(
            0.98 if above else 0.02,
            0.04,
            text,
            transform=ax.transAxes,
            fontsize=6,
            color=colour,
            ha="right" if above else "left",
            va="bottom",
        )
    else:
        ax.text(
            0.98,
            0.97 if above else 0.03,
            text,
            transform=ax.transAxes,
            fontsize=6,
            color=colour,
            ha="right",
            va="top" if above else "bottom",
        )


def participant_tracks(
    fits: list,
    sequences: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    title: str,
    truth: dict[str, float] | None = None,
    level_labels: dict[str, str] | None = None,
) -> bytes:
    """One participant's levels trial by trial, one panel per condition (``fits`` order).

    Args:
        fits: the participant's fits (the threshold and its interval are drawn where estimated).
        sequences: per fit, (levels, correct, track) of its analysed trials in the order they
            ran; one line per track (interleaved staircases or QUEST+ tracks), filled markers
            correct, open ones wrong.
        title: the figure's title.
        truth: simulated true thresholds by condition (dotted green, when given).
        level_labels: condition -> its level axis label (``Design.level_labels``).
    """
    from matplotlib.ticker import MaxNLocator

    # The legend goes under the panels: inside one it covered the track where "best" found no
    # free corner (the threshold's interval band fills the panel's width).
    rows_of_legend = 1 if len(fits) > 1 else 2
    fig, rows, cols = panel_grid(len(fits), title, below_in=0.15 + 0.13 * rows_of_legend)
    ranges = ranges_by_label(fits, level_labels)
    axes = []
    for i, (fit, (levels, correct, track)) in enumerate(zip(fits, sequences, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        axes.append(ax)
        lo, hi = ranges[level_label(level_labels, fit.condition)]
        if fit.sigmoid.log_axis:
            log_axis_ticks(ax, "y", lo, hi)
        order = np.arange(1, len(levels) + 1)
        for k, label in enumerate(dict.fromkeys(track)):
            on = track == label
            colour = TRACK_COLOURS[k % len(TRACK_COLOURS)]
            ax.plot(order[on], levels[on], color=colour, lw=0.9, alpha=0.7)
            hit = on & (correct == 1)
            miss = on & (correct != 1)
            first = k == 0
            ax.scatter(
                order[hit],
                levels[hit],
                s=14,
                color=colour,
                zorder=3,
                label="correct" if first else None,
            )
            ax.scatter(
                order[miss],
                levels[miss],
                s=14,
                facecolor="white",
                edgecolor=colour,
                zorder=3,
                label="wrong" if first else None,
            )
        if fit.fitted and not fit.unbracketed:
            c_lo, c_hi = fit.ci()
            ax.axhspan(c_lo, c_hi, color=THRESHOLD_COLOUR, alpha=0.12, lw=0)
            ax.axhline(fit.threshold(), color=THRESHOLD_COLOUR, lw=1.2, label="threshold (CI)")
        if truth and fit.condition in truth:
            _truth_line(ax, truth[fit.condition], lo, hi, vertical=False)
        ax.set_ylim(lo, hi)
        ax.set_xlim(0, max(len(levels), 1) + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
        ax.set_title(panel_title(fit), fontsize=9)
        ax.set_xlabel("trial of the condition", fontsize=8)
        ax.set_ylabel(stacked(level_label(level_labels, fit.condition)), fontsize=8)
        ax.tick_params(labelsize=7)
    legend_below(fig, axes)
    return to_png(fig)


def overlay_figure(
    human: dict,
    model: dict,
    *,
    conditions: list[str],
    level_labels: dict[str, str] | None = None,
) -> bytes:
    """The PNG of ``overlay_curves_figure`` (same arguments)."""
    return to_png(
        overlay_curves_figure(human, model, conditions=conditions, level_labels=level_labels)
    )


def overlay_curves_figure(
    human: dict,
    model: dict,
    *,
    conditions: list[str],
    level_labels: dict[str, str] | None = None,
):
    """Measured (pooled participants) vs perceptual-observer psychometric functions per condition.

    A dotted line marks each threshold the tested levels bracket; one they do not (at a bound
    of the fit, or beyond the tested levels) gets no line, and the panel's title says what the
    data bound it by, as the participant figures do. The legend goes under the panels (inside
    one, matplotlib's "best" place covered data discs).

    Args:
        human: condition -> (fit of pooled human data, list of participant fits).
        model: condition -> fit of pooled perceptual-observer data.
        level_labels: condition -> its level axis label (``Design.level_labels``); panels of one
            level variable share their level range, others have their own.
    """
    from analysis.fits import pool_for_display

    fig, rows, cols = panel_grid(
        len(conditions),
        "Measured (participants) vs predicted (perceptual observer)",
        below_in=0.15 + 0.13 * (1 if len(conditions) > 1 else 2),
    )
    all_fits = [human[c][0] for c in conditions if c in human and human[c][0] is not None]
    all_fits += [model[c] for c in conditions if c in model]
    ranges = ranges_by_label(all_fits, level_labels) if all_fits else {}
    axes, extra_lines = [], 0
    for i, c in enumerate(conditions):
        ax = fig.add_subplot(rows, cols, i + 1)
        axes.append(ax)
        lo, hi = ranges.get(level_label(level_labels, c), (0.1, 10))
        proportions, title = [], c
        for fit, color, label, who in (
            (human.get(c, (None, []))[0], COLORS[0], "participants (pooled)", "participants"),
            (model.get(c), COLORS[1], "perceptual observer", "perceptual"),
        ):
            if fit is None:
                continue
            if fit.sigmoid.log_axis:
                log_axis_ticks(ax, "x", lo, hi)
            pts = pool_for_display(fit.table, sigmoid=fit.sigmoid)
            pts = pts[pts["level"] > 0] if fit.sigmoid.log_axis else pts
            proportions += (pts["k"] / pts["n"]).tolist()
            ax.scatter(
                pts["level"],
                pts["k"] / pts["n"],
                s=10 + 120 * pts["n"] / max(pts["n"].max(), 1),
                color=color,
                alpha=0.35,
                edgecolor="none",
            )
            if fit.fitted:
                grid = level_grid(fit, lo, hi)
                ax.plot(grid, fit.p_correct(grid), color=color, lw=1.8, label=label)
                if fit.unbracketed:
                    bound = "at most" if fit.unbracketed == "lower" else "at least"
                    title += f"\n{who}: {bound} {fit.bound_level():.3g}"
                else:
                    ax.axvline(fit.threshold(), color=color, ls=":", lw=1)
        ax.axhline(0.5, color="#999999", lw=0.8, ls="--")
        p_correct_axis(ax, proportions)
        ax.set_xlim(lo, hi)
        ax.set_title(title, fontsize=9)
        extra_lines = max(extra_lines, title.count("\n"))
        ax.set_xlabel(level_label(level_labels, c), fontsize=8)
        ax.set_ylabel("proportion correct", fontsize=8)
        ax.tick_params(labelsize=7)
    if extra_lines:  # room above the first row for its panels' longer titles (9 pt lines)
        top = fig.subplotpars.top - extra_lines * 0.16 / fig.get_figheight()
        fig.subplots_adjust(top=top)
    legend_below(fig, axes)
    return fig
