"""Report figures (matplotlib, object API: no global pyplot state, works headless).

Every function returns PNG bytes; the report writes them to ``figures/`` and embeds them.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

DPI = 90
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_THRESHOLD_COLOUR = _COLORS[1]  # a fitted threshold and its interval
_TRUTH_COLOUR = _COLORS[2]  # a simulated participant's true threshold
# Trial-by-trial tracks share a panel with both lines: their colours are the others.
_TRACK_COLOURS = tuple(c for c in _COLORS if c not in (_THRESHOLD_COLOUR, _TRUTH_COLOUR))


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    # No constrained layout: it re-measures every tick label (seconds per figure); the fixed
    # margins of subplots_adjust suit these simple grids.
    return Figure(figsize=(width_in, height_in))


def _panel_grid(n: int, title: str, *, below_in: float = 0.0):
    """(figure, rows, cols) for ``n`` psychometric panels, at most 4 a row, titled ``title``;
    ``below_in``: inches of room under the panels (for a legend outside them)."""
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    width_in = 3.1 * cols
    height_in = 2.6 * rows + 0.4
    fig = _figure(width_in, height_in + below_in)
    fig.suptitle(title)
    fig.subplots_adjust(
        left=0.6 / width_in,  # room for the y label and ticks, whatever the number of columns
        right=0.98,
        bottom=((0.18 if rows == 1 else 0.1) * height_in + below_in) / (height_in + below_in),
        top=1 - (0.18 if rows == 1 else 0.1) * height_in / (height_in + below_in),
        wspace=0.3,
        hspace=0.5,
    )
    return fig, rows, cols


#: A legend under several panels: its entries in one row.
_LEGEND_COLUMNS = 4


def _legend_below(fig, axes) -> None:
    """One legend for every panel's labelled artists, under the panels (``_panel_grid``'s
    ``below_in``), where it covers no data."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="lower center",
            ncol=_LEGEND_COLUMNS if len(axes) > 1 else 2,
            fontsize=6,
            frameon=False,
        )


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks within [lo, hi] (log axes)."""
    ticks = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1.0, 2.0, 5.0):
            v = m * 10.0**e
            if lo <= v <= hi:
                ticks.append(float(f"{v:.6g}"))
    return ticks


def _log_axis(ax, which: str, lo: float, hi: float) -> None:
    """Log scale with fixed 1-2-5 ticks and plain labels (0.5, 1, 2).

    Fixed tick positions also keep matplotlib from running its tick locators on every draw,
    which dominated the report's run time.
    """
    from matplotlib.ticker import NullLocator

    ticks = _nice_ticks(lo, hi)
    if which == "x":
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    else:
        ax.set_yscale("log")
        ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
        ax.yaxis.set_minor_locator(NullLocator())


def _level_grid(fit, lo: float, hi: float, n: int = 200) -> np.ndarray:
    if fit.sigmoid.log_axis:
        return np.geomspace(lo, hi, n)
    return np.linspace(lo, hi, n)


def _p_correct_axis(ax, proportions) -> None:
    """The proportion-correct y axis: 0.35 to 1 (guessing at 0.5, with room below), reaching
    down to the lowest plotted proportion when one lies lower (1 of 3 correct at a level is
    common with adaptive data), so no data point is cut off."""
    p = np.asarray(proportions, dtype=float)
    p = p[np.isfinite(p)]
    low = min(0.35, float(p.min()) - 0.05) if p.size else 0.35
    ax.set_ylim(max(low, -0.03), 1.02)
    ticks = [v for v in (0.0, 0.25, 0.5, 0.75, 1.0) if v >= low]
    ax.set_yticks(ticks, [f"{v:g}" for v in ticks])


def _range(fits) -> tuple[float, float]:
    """Level-axis limits of ``fits``: their tested levels and marked thresholds with a margin,
    which stops just past the end of the possible levels (``level_domain``: radius_shrink 1),
    where the curve ends."""
    levels = np.concatenate(
        [f.table["level"].to_numpy() for f in fits if len(f.table)] or [np.array([1.0])]
    )
    # A threshold marked beyond the tested levels (extrapolated) is on the axis too.
    marked = np.array([f.threshold() for f in fits if f.fitted and not f.unbracketed], float)
    levels = np.concatenate([levels, marked[np.isfinite(marked)]])
    log_axis = fits[0].sigmoid.log_axis if fits else True
    domain = fits[0].level_domain if fits else None
    high = domain.high if domain is not None else np.inf
    if log_axis:
        pos = levels[levels > 0]
        lo, hi = (pos.min(), pos.max()) if pos.size else (0.1, 10.0)
        return lo / 1.5, min(hi * 1.5, high * 1.04)
    span = levels.max() - levels.min() or 1.0
    return levels.min() - 0.1 * span, min(levels.max() + 0.1 * span, high + 0.02 * span)


def _ranges_by_label(fits: list, level_labels) -> dict[str, tuple[float, float]]:
    """Level-axis limits per level variable (its label): ``_range`` of that variable's fits."""
    groups = by_level_label([f.condition for f in fits], level_labels)
    return {
        label: _range([f for f in fits if f.condition in conditions])
        for label, conditions in groups.items()
    } or {"level": _range(fits)}


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


def level_label(level_labels: dict[str, str] | None, condition: str) -> str:
    """The level axis label of ``condition`` (``Design.level_labels``); ``level`` when unknown."""
    return (level_labels or {}).get(condition, "level")


def by_level_label(conditions, level_labels: dict[str, str] | None) -> dict[str, list[str]]:
    """Conditions grouped by the label of their level variable, in first-seen order: conditions
    with different level variables (``strength``, ``radius_shrink``) never share an axis."""
    groups: dict[str, list[str]] = {}
    for c in conditions:
        groups.setdefault(level_label(level_labels, c), []).append(c)
    return groups


def _stacked(label: str) -> str:
    """A long axis label on two lines: the name, then its unit in brackets."""
    return label.replace(" (", "\n(", 1)


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
    return _png(curves_figure(fits, title=title, truth=truth, level_labels=level_labels))


def curves_figure(
    fits: list,
    *,
    title: str,
    truth: dict[str, float] | None = None,
    level_labels: dict[str, str] | None = None,
):
    """The matplotlib figure of ``participant_curves`` (same arguments). The legend goes where it
    covers the fewest data points and curves: the lower right, where a steep function's data
    near 50 % can sit, is not kept free for it. ``level_labels``: condition -> its level axis
    label; panels of one level variable share their level range, others have their own."""
    from analysis.fits import pool_for_display

    fig, rows, cols = _panel_grid(len(fits), title)
    ranges = _ranges_by_label(fits, level_labels)
    for i, fit in enumerate(fits):
        ax = fig.add_subplot(rows, cols, i + 1)
        lo, hi = ranges[level_label(level_labels, fit.condition)]
        pts = pool_for_display(fit.table, sigmoid=fit.sigmoid)
        if fit.sigmoid.log_axis:
            pts = pts[pts["level"] > 0]
            _log_axis(ax, "x", lo, hi)
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
            grid = _level_grid(fit, lo, end)
            ax.plot(grid, fit.p_correct(grid), color=_COLORS[0], lw=1.8, label="fit")
        if fit.fitted and not fit.unbracketed:
            t = fit.threshold()
            c_lo, c_hi = fit.ci()
            p_t = float(fit.p_correct(t))
            ax.errorbar(
                [t],
                [p_t],
                xerr=[[max(t - c_lo, 0)], [max(c_hi - t, 0)]],
                fmt="o",
                color=_COLORS[1],
                ms=5,
                capsize=3,
                label="threshold (CI)",
            )
        if truth and fit.condition in truth:
            _truth_line(ax, truth[fit.condition], lo, hi, vertical=True)
        ax.axhline(0.5, color="#999999", lw=0.8, ls="--")
        _p_correct_axis(ax, proportions)
        ax.set_xlim(lo, hi)
        ax.set_title(panel_title(fit), fontsize=9)
        ax.set_xlabel(level_label(level_labels, fit.condition), fontsize=8)
        ax.set_ylabel("proportion correct", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6, loc="best", framealpha=0.8)
    return fig


def _truth_line(ax, value: float, lo: float, hi: float, *, vertical: bool) -> None:
    """A simulated participant's true threshold: a dotted green line across the level axis
    (``vertical``: the level axis is x) when it lies within [lo, hi]; otherwise a note at the
    axis end it lies beyond, so no legend entry names a line that is not drawn."""
    colour = _TRUTH_COLOUR
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
    fig, rows, cols = _panel_grid(len(fits), title, below_in=0.15 + 0.13 * rows_of_legend)
    ranges = _ranges_by_label(fits, level_labels)
    axes = []
    for i, (fit, (levels, correct, track)) in enumerate(zip(fits, sequences, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        axes.append(ax)
        lo, hi = ranges[level_label(level_labels, fit.condition)]
        if fit.sigmoid.log_axis:
            _log_axis(ax, "y", lo, hi)
        order = np.arange(1, len(levels) + 1)
        for k, label in enumerate(dict.fromkeys(track)):
            on = track == label
            colour = _TRACK_COLOURS[k % len(_TRACK_COLOURS)]
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
            ax.axhspan(c_lo, c_hi, color=_THRESHOLD_COLOUR, alpha=0.12, lw=0)
            ax.axhline(fit.threshold(), color=_THRESHOLD_COLOUR, lw=1.2, label="threshold (CI)")
        if truth and fit.condition in truth:
            _truth_line(ax, truth[fit.condition], lo, hi, vertical=False)
        ax.set_ylim(lo, hi)
        ax.set_xlim(0, max(len(levels), 1) + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
        ax.set_title(panel_title(fit), fontsize=9)
        ax.set_xlabel("trial of the condition", fontsize=8)
        ax.set_ylabel(_stacked(level_label(level_labels, fit.condition)), fontsize=8)
        ax.tick_params(labelsize=7)
    _legend_below(fig, axes)
    return _png(fig)


def group_thresholds_figure(
    thresholds: pd.DataFrame,
    group: pd.DataFrame,
    *,
    log_axis: bool,
    conditions: list[str],
    level_labels: dict[str, str] | None = None,
    not_estimates: dict[str, list[str]] | None = None,
) -> bytes:
    """Participants' thresholds with intervals (grey) and the group mean with its interval.

    ``level_labels``: condition -> its level axis label (``Design.level_labels``); conditions of
    different level variables get a panel each, with its own axis. ``not_estimates``: condition
    -> participants whose threshold the tested levels do not bracket
    (``PsychometricFit.unbracketed``); drawn hollow and without an interval."""
    return _png(
        thresholds_figure(
            thresholds,
            group,
            log_axis=log_axis,
            conditions=conditions,
            level_labels=level_labels,
            not_estimates=not_estimates,
        )
    )


def thresholds_figure(
    thresholds: pd.DataFrame,
    group: pd.DataFrame,
    *,
    log_axis: bool,
    conditions: list[str],
    level_labels: dict[str, str] | None = None,
    not_estimates: dict[str, list[str]] | None = None,
):
    """The matplotlib figure of ``group_thresholds_figure`` (same arguments)."""
    groups = by_level_label(conditions, level_labels) or {"level": []}
    panel_in = [max(1.3 * len(cs), 1.3) + 1.0 for cs in groups.values()]
    width_in = max(4.0, sum(panel_in) + 0.5)
    fig = _figure(width_in, 3.6)
    # A fixed 1 inch left of each panel for its y label and tick labels such as 0.02.
    fig.subplots_adjust(bottom=0.22, top=0.86 if len(groups) == 1 else 0.8)
    key = "Participants (grey; hollow: not an estimate)\nand group (red; hollow: not a result yet)"
    x0 = 0.0
    for k, (label, cs) in enumerate(groups.items()):
        left, right = (x0 + 1.0) / width_in, (x0 + panel_in[k] - 0.1) / width_in
        x0 += panel_in[k]
        ax = fig.add_axes((left, 0.22, right - left, (0.86 if len(groups) == 1 else 0.8) - 0.22))
        _thresholds_panel(
            ax,
            thresholds[thresholds["condition"].isin(cs)],
            group[group["condition"].isin(cs)],
            log_axis=log_axis,
            conditions=cs,
            not_estimates=not_estimates,
        )
        ax.set_ylabel(_stacked(f"threshold: {label}"), fontsize=9)
    if len(groups) == 1:
        fig.axes[0].set_title(key, fontsize=9)
    else:
        fig.suptitle(key, fontsize=9)
    return fig


def _thresholds_panel(ax, thresholds, group, *, log_axis, conditions, not_estimates) -> None:
    """One panel of ``thresholds_figure``: conditions of one level variable."""
    rng = np.random.default_rng(0)  # fixed jitter: identical figures for identical data
    for i, c in enumerate(conditions):
        sub = thresholds[thresholds["condition"] == c]
        jitter = rng.uniform(-0.18, 0.18, len(sub))
        hollow = set((not_estimates or {}).get(c, ()))
        for j, r in enumerate(sub.itertuples(index=False)):
            if not np.isfinite(r.threshold):
                continue
            if str(r.participant) in hollow:  # the fit's range end or beyond the tested levels
                ax.plot(i + jitter[j], r.threshold, "o", color="#777777", mfc="white", ms=4)
                continue
            ax.plot([i + jitter[j]] * 2, [r.ci_low, r.ci_high], color="#bbbbbb", lw=1)
            ax.plot(i + jitter[j], r.threshold, "o", color="#777777", ms=3)
        g = group[group["condition"] == c]
        if len(g) and np.isfinite(g["threshold"].iloc[0]):
            gr = g.iloc[0]
            # A group estimate that needs more participants (its note) is drawn hollow and
            # without its interval: it is not a result.
            pending = bool(str(getattr(gr, "note", "") or ""))
            ax.errorbar(
                [i + 0.3],
                [gr.threshold],
                yerr=[[gr.threshold - gr.ci_low], [gr.ci_high - gr.threshold]]
                if np.isfinite(gr.ci_low) and not pending
                else None,
                fmt="D",
                color=_COLORS[1],
                mfc="white" if pending else _COLORS[1],
                ms=6,
                capsize=4,
            )
    if log_axis:
        limits = threshold_axis_limits(thresholds, group)
        if limits is not None:
            ax.set_ylim(*limits)
            _log_axis(ax, "y", *limits)
    if not np.isfinite(thresholds["threshold"].to_numpy(dtype=float)).any():
        ax.text(
            0.5,
            0.5,
            "no participant has a threshold yet\n(the page's notes say why)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#777777",
        )
        ax.set_yticks([])
    ax.set_xticks(range(len(conditions)), conditions, rotation=20, fontsize=8)
    ax.set_xlim(-0.5, len(conditions) - 0.5)


def threshold_axis_limits(
    thresholds: pd.DataFrame, group: pd.DataFrame
) -> tuple[float, float] | None:
    """Log-axis limits of the thresholds figure: every participant's interval and every group
    interval drawn (a group result's, not one with a note), with a margin; None without values."""
    values = [thresholds[["ci_low", "ci_high", "threshold"]].to_numpy(dtype=float).ravel()]
    if len(group):
        shown = group[group["note"].fillna("") == ""] if "note" in group else group
        values.append(group["threshold"].to_numpy(dtype=float))
        values.append(shown[["ci_low", "ci_high"]].to_numpy(dtype=float).ravel())
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not finite.size:
        return None
    return float(finite.min() / 1.2), float(finite.max() * 1.2)


def overlay_figure(human: dict, model: dict, *, conditions: list[str]) -> bytes:
    """Measured (pooled participants) vs perceptual-observer psychometric functions per condition.

    Args:
        human: condition -> (fit of pooled human data, list of participant fits).
        model: condition -> fit of pooled perceptual-observer data.
    """
    from analysis.fits import pool_for_display

    fig, rows, cols = _panel_grid(
        len(conditions), "Measured (participants) vs predicted (perceptual observer)"
    )
    all_fits = [human[c][0] for c in conditions if c in human and human[c][0] is not None]
    all_fits += [model[c] for c in conditions if c in model]
    lo, hi = _range(all_fits) if all_fits else (0.1, 10)
    for i, c in enumerate(conditions):
        ax = fig.add_subplot(rows, cols, i + 1)
        proportions = []
        for fit, color, label in (
            (human.get(c, (None, []))[0], _COLORS[0], "participants (pooled)"),
            (model.get(c), _COLORS[1], "perceptual observer"),
        ):
            if fit is None:
                continue
            if fit.sigmoid.log_axis:
                _log_axis(ax, "x", lo, hi)
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
                grid = _level_grid(fit, lo, hi)
                ax.plot(grid, fit.p_correct(grid), color=color, lw=1.8, label=label)
                ax.axvline(fit.threshold(), color=color, ls=":", lw=1)
        ax.axhline(0.5, color="#999999", lw=0.8, ls="--")
        _p_correct_axis(ax, proportions)
        ax.set_xlim(lo, hi)
        ax.set_title(c, fontsize=9)
        ax.set_xlabel("level", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6, loc="best", framealpha=0.8)
    return _png(fig)


def qc_figure(qc: pd.DataFrame, rules) -> bytes:
    """Per-participant QC metrics with the exclusion limits as dashed lines."""
    panels = [
        ("fixation_break_rate", "fixation-break rate", rules.max_fixation_break_rate),
        ("calibration_error_deg", "calibration error (deg)", rules.max_calibration_error_deg),
        ("deadline_miss_rate", "deadline-miss rate", rules.max_deadline_miss_rate),
        ("rt_outlier_rate", "RT-outlier rate", rules.max_rt_outlier_rate),
        ("gen_latency_median_s", "generation latency, median (s)", None),
        ("rt_median_s", "median RT (s)", None),
    ]
    fig = _figure(10, 5.6)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.88, wspace=0.25, hspace=0.6)
    labels = qc["participant"].astype(str).tolist()
    colors = ["#d62728" if e else "#1f77b4" for e in qc["excluded"]]
    for i, (col, title, limit) in enumerate(panels):
        ax = fig.add_subplot(2, 3, i + 1)
        values = qc[col].to_numpy(dtype=float) if col in qc else np.full(len(qc), np.nan)
        ax.bar(range(len(labels)), np.nan_to_num(values), color=colors)
        if limit is not None:
            ax.axhline(limit, color="#333333", ls="--", lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(
        "Quality control per participant (red: excluded; dashed: exclusion limit)", fontsize=10
    )
    return _png(fig)


def token_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    group: pd.DataFrame,
    *,
    log_axis: bool,
    level_labels: dict[str, str] | None = None,
) -> bytes:
    """Token ratio of the layout vs level per condition, group threshold and interval marked.

    ``level_labels``: condition -> its level axis label; conditions of different level variables
    get a panel each (side by side, one token-ratio axis)."""
    groups = by_level_label(curves, level_labels) or {"level": []}
    n = len(groups)
    fig = _figure(6.0 if n == 1 else 4.2 * n, 3.8)
    fig.subplots_adjust(left=0.14 / min(n, 2), right=0.97, bottom=0.16, top=0.9, wspace=0.25)
    ratios = np.concatenate([r for _, r in curves.values()]) if curves else np.array([0.01, 1])
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    ratio_range = (ratios.min() / 1.2, min(ratios.max() * 1.2, 1.0)) if ratios.size else None
    first = None
    i = 0
    for k, (label, cs) in enumerate(groups.items()):
        ax = fig.add_subplot(1, n, k + 1, sharey=first)
        first = first or ax
        _token_panel(
            ax,
            {c: curves[c] for c in cs},
            group,
            log_axis=log_axis,
            first_color=i,
            ratio_range=ratio_range,
        )
        i += len(cs)
        ax.set_xlabel(label)
        if k == 0:
            ax.set_ylabel("tokens / full-resolution tokens")
    fig.suptitle(
        "Token ratio of the layout; dashed: group threshold (band: its interval)", fontsize=9
    )
    return _png(fig)


def _token_panel(
    ax, curves, group: pd.DataFrame, *, log_axis: bool, first_color: int, ratio_range
) -> None:
    """One panel of ``token_figure``: conditions of one level variable; ``ratio_range``: the
    token-ratio axis limits shared by every panel (None: matplotlib's)."""
    for i, (c, (levels, ratio)) in enumerate(curves.items(), start=first_color):
        color = _COLORS[i % len(_COLORS)]
        ax.plot(levels, ratio, color=color, lw=1.6, label=c)
        g = group[group["condition"] == c]
        if len(g) and np.isfinite(g["threshold"].iloc[0]):
            r = g.iloc[0]
            if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                ax.axvspan(r.ci_low, r.ci_high, color=color, alpha=0.12)
            ax.axvline(r.threshold, color=color, ls="--", lw=1)
    all_levels = (
        np.concatenate([lv for lv, _ in curves.values()]) if curves else np.array([0.1, 10])
    )
    if log_axis and all_levels.min() > 0:
        lo, hi = all_levels.min(), all_levels.max()
        if hi <= lo:  # one tested level: a span around it (equal limits make no axis)
            lo, hi = lo / 1.5, hi * 1.5
        ax.set_xlim(lo, hi)
        _log_axis(ax, "x", lo, hi)
    if ratio_range is not None:
        ax.set_ylim(*ratio_range)
        _log_axis(ax, "y", *ratio_range)
    ax.legend(fontsize=7)
