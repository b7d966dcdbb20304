"""What every report figure shares: the palette, the figure and panel grid, the legend under
the panels, log axes with 1-2-5 ticks, the proportion-correct axis, level-axis ranges and labels,
and PNG output (matplotlib's object API: no global pyplot state, works headless)."""

from __future__ import annotations

import io
import math

import numpy as np

DPI = 90
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
THRESHOLD_COLOUR = COLORS[1]  # a fitted threshold and its interval
TRUTH_COLOUR = COLORS[2]  # a simulated participant's true threshold
# Trial-by-trial tracks share a panel with both lines: their colours are the others.
TRACK_COLOURS = tuple(c for c in COLORS if c not in (THRESHOLD_COLOUR, TRUTH_COLOUR))


def new_figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    # No constrained layout: it re-measures every tick label (seconds per figure); the fixed
    # margins of subplots_adjust suit these simple grids.
    return Figure(figsize=(width_in, height_in))


def panel_grid(n: int, title: str, *, below_in: float = 0.0):
    """(figure, rows, cols) for ``n`` psychometric panels, at most 4 a row, titled ``title``;
    ``below_in``: inches of room under the panels (for a legend outside them)."""
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    width_in = 3.1 * cols
    lines = _title_lines(title, width_in)
    # Each line of the title beyond the first gets its own room above the panels.
    above_in = _TITLE_LINE_IN * (len(lines) - 1)
    height_in = 2.6 * rows + 0.4 + above_in
    fig = new_figure(width_in, height_in + below_in)
    fig.suptitle("\n".join(lines))
    margin_in = (0.18 if rows == 1 else 0.1) * (height_in - above_in)
    fig.subplots_adjust(
        left=0.6 / width_in,  # room for the y label and ticks, whatever the number of columns
        right=0.98,
        bottom=(margin_in + below_in) / (height_in + below_in),
        top=1 - (margin_in + above_in) / (height_in + below_in),
        wspace=0.3,
        hspace=0.5,
    )
    return fig, rows, cols


#: Height of one line of a figure title (matplotlib's default 12 pt, with its line spacing).
_TITLE_LINE_IN = 0.22


def _title_lines(title: str, width_in: float) -> list[str]:
    """``title`` broken at spaces into lines no wider than the figure (measured in its font):
    one condition's figure is 3.1 in wide, and "Participant sim04 (excluded by QC): levels
    trial by trial" ran past both edges."""
    import textwrap

    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    def width(text: str) -> float:
        return TextPath((0, 0), text, prop=FontProperties(size="large")).get_extents().width / 72

    room = 0.97 * width_in
    if width(title) <= room:
        return [title]
    head, colon, tail = title.partition(": ")
    if colon and max(width(head + ":"), width(tail)) <= room:
        return [head + ":", tail]
    chars = max(10, int(len(title) * room / width(title)))
    lines = textwrap.wrap(title, chars)
    while chars > 10 and max(width(line) for line in lines) > room:
        chars -= 1
        lines = textwrap.wrap(title, chars)
    return lines


#: A legend under several panels: its entries in one row.
_LEGEND_COLUMNS = 4


def legend_below(fig, axes) -> None:
    """One legend for every panel's labelled artists, under the panels (``panel_grid``'s
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


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


#: A log axis's end lying more than this factor beyond its outermost 1-2-5 tick gets a tick of
#: its own (one significant digit, inside the axis): a token ratio curve that ended between 0.024
#: and 0.05 had no tick to read it by.
_END_GAP_FACTOR = 1.6


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks within [lo, hi] (log axes), with a one-digit tick near an end that lies
    more than ``_END_GAP_FACTOR`` beyond the outermost of them (0.03 on an axis from 0.024)."""
    ticks = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1.0, 2.0, 5.0):
            v = m * 10.0**e
            if lo <= v <= hi:
                ticks.append(float(f"{v:.6g}"))
    if not ticks:  # a narrow axis between two 1-2-5 values: its ends and middle, two digits
        ends = (_round_in(lo, digits=2, up=True), _round_in(hi, digits=2, up=False))
        return sorted({ends[0], _round_in(math.sqrt(lo * hi), digits=2, up=True), ends[1]})
    if ticks[0] > lo * _END_GAP_FACTOR:
        end = _round_in(lo, digits=1, up=True)
        if end * 1.2 < ticks[0]:
            ticks.insert(0, end)
    if hi > ticks[-1] * _END_GAP_FACTOR:
        end = _round_in(hi, digits=1, up=False)
        if end > ticks[-1] * 1.2:
            ticks.append(end)
    return ticks


def _round_in(value: float, *, digits: int, up: bool) -> float:
    """``value`` rounded to ``digits`` significant digits, up or down (towards the axis)."""
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    steps = value / scale
    return float(f"{(math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)) * scale:.6g}")


def log_axis_ticks(ax, which: str, lo: float, hi: float) -> None:
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


def level_grid(fit, lo: float, hi: float, n: int = 200) -> np.ndarray:
    if fit.sigmoid.log_axis:
        return np.geomspace(lo, hi, n)
    return np.linspace(lo, hi, n)


def p_correct_axis(ax, proportions) -> None:
    """The proportion-correct y axis: 0.35 to 1 (guessing at 0.5, with room below), reaching
    down to the lowest plotted proportion when one lies lower (1 of 3 correct at a level is
    common with adaptive data), so no data point is cut off."""
    p = np.asarray(proportions, dtype=float)
    p = p[np.isfinite(p)]
    low = min(0.35, float(p.min()) - 0.05) if p.size else 0.35
    ax.set_ylim(max(low, -0.03), 1.02)
    ticks = [v for v in (0.0, 0.25, 0.5, 0.75, 1.0) if v >= low]
    ax.set_yticks(ticks, [f"{v:g}" for v in ticks])


def level_range(fits) -> tuple[float, float]:
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


def ranges_by_label(fits: list, level_labels) -> dict[str, tuple[float, float]]:
    """Level-axis limits per level variable (its label): ``level_range`` of that variable's fits."""
    groups = by_level_label([f.condition for f in fits], level_labels)
    return {
        label: level_range([f for f in fits if f.condition in conditions])
        for label, conditions in groups.items()
    } or {"level": level_range(fits)}


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


def stacked(label: str) -> str:
    """A long axis label on two lines: the name, then its unit in brackets."""
    return label.replace(" (", "\n(", 1)
