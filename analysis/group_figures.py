"""The report's group figures: participants' thresholds with the group result, quality control
per participant, and the layouts' token ratio against the level. Every function returns PNG
bytes (``thresholds_figure`` the matplotlib figure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figure_style import (
    COLORS,
    by_level_label,
    log_axis_ticks,
    new_figure,
    stacked,
    to_png,
)


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
    return to_png(
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
    fig = new_figure(width_in, 3.6)
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
        ax.set_ylabel(stacked(f"threshold: {label}"), fontsize=9)
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
                color=COLORS[1],
                mfc="white" if pending else COLORS[1],
                ms=6,
                capsize=4,
            )
    if log_axis:
        limits = threshold_axis_limits(thresholds, group)
        if limits is not None:
            ax.set_ylim(*limits)
            log_axis_ticks(ax, "y", *limits)
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
    fig = new_figure(10, 5.6)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.88, wspace=0.25, hspace=0.6)
    labels = qc["participant"].astype(str).tolist()
    colors = ["#d62728" if e else "#1f77b4" for e in qc["excluded"]]
    for i, (col, title, limit) in enumerate(panels):
        values = qc[col].to_numpy(dtype=float) if col in qc else np.full(len(qc), np.nan)
        _qc_panel(fig.add_subplot(2, 3, i + 1), values, labels, colors, title=title, limit=limit)
    fig.suptitle(
        "Quality control per participant (red: excluded; dashed: exclusion limit)", fontsize=10
    )
    return to_png(fig)


def _qc_panel(ax, values: np.ndarray, labels: list[str], colors: list[str], *, title, limit):
    """One metric's bars. A bar of height 0 cannot be seen, and a metric a participant lacks
    (no calibration with dummy mode, no timed answers) was drawn as 0: zeros are labelled "0"
    and missing values "n/a", so neither reads as the other or as an empty panel."""
    ax.bar(range(len(labels)), np.nan_to_num(values), color=colors)
    for x, value in enumerate(values):
        if not np.isfinite(value) or value == 0:
            text = "0" if np.isfinite(value) else "n/a"
            ax.annotate(
                text,
                (x, 0),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                color="#333333",
            )
    if limit is not None:
        ax.axhline(limit, color="#333333", ls="--", lw=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.tick_params(axis="y", labelsize=7)


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
    fig = new_figure(6.0 if n == 1 else 4.2 * n, 3.8)
    fig.subplots_adjust(left=0.14 / min(n, 2), right=0.97, bottom=0.16, top=0.86, wspace=0.25)
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
        "Token ratio of the layout\ndashed: group threshold (band: its interval); "
        "dotted: not a group result yet",
        fontsize=9,
    )
    return to_png(fig)


def _token_panel(
    ax, curves, group: pd.DataFrame, *, log_axis: bool, first_color: int, ratio_range
) -> None:
    """One panel of ``token_figure``: conditions of one level variable; ``ratio_range``: the
    token-ratio axis limits shared by every panel (None: matplotlib's)."""
    for i, (c, (levels, ratio)) in enumerate(curves.items(), start=first_color):
        color = COLORS[i % len(COLORS)]
        ax.plot(levels, ratio, color=color, lw=1.6, label=c)
        g = group[group["condition"] == c]
        if len(g) and np.isfinite(g["threshold"].iloc[0]):
            r = g.iloc[0]
            # A group threshold that is not a result yet (group_estimate_note: too few
            # participants, one at a bound, an interval wider than the levels) gets a dotted
            # line and no band: with two participants its band covered the whole panel.
            result = not str(r.get("note", "") or "")
            if result and np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                ax.axvspan(r.ci_low, r.ci_high, color=color, alpha=0.12)
            ax.axvline(r.threshold, color=color, ls="--" if result else ":", lw=1)
    all_levels = (
        np.concatenate([lv for lv, _ in curves.values()]) if curves else np.array([0.1, 10])
    )
    if log_axis and all_levels.min() > 0:
        lo, hi = all_levels.min(), all_levels.max()
        if hi <= lo:  # one tested level: a span around it (equal limits make no axis)
            lo, hi = lo / 1.5, hi * 1.5
        ax.set_xlim(lo, hi)
        log_axis_ticks(ax, "x", lo, hi)
    if ratio_range is not None:
        ax.set_ylim(*ratio_range)
        log_axis_ticks(ax, "y", *ratio_range)
    ax.legend(fontsize=7)
