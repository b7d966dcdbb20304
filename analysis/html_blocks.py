"""Small HTML building blocks for a self-contained report (inline CSS, images as data URIs)."""

from __future__ import annotations

import base64
import html
import math
import struct

import numpy as np
import pandas as pd

from analysis.p_values import P_COLUMNS, fmt_p

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.6em 0 1em 0; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 3px 5px; text-align: right; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.text, th.text { text-align: left; }
td.text { overflow-wrap: break-word; }
td.long { min-width: 16em; overflow-wrap: anywhere; }
.needs-more { color: #8a6d00; font-weight: bold; }
.stimuli-row { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.stimuli { flex: 3 1 640px; min-width: 0; }
.token-figure { flex: 1 1 300px; min-width: 0; }
.token-figure.wide { flex: 1 1 100%; max-width: 900px; }
.explain { color: #555; font-size: 0.92em; }
.answer { background: #f3f8ff; border-left: 4px solid #1f77b4; padding: 0.6em 1em; }
.warn { background: #fff7e6; border-left: 4px solid #ff9800; padding: 0.5em 1em; }
.verdict-equivalent { color: #1b7e1b; font-weight: bold; }
.verdict-detectable { color: #b22222; font-weight: bold; }
.verdict-inconclusive { color: #8a6d00; font-weight: bold; }
img { max-width: 100%; height: auto; }
code { overflow-wrap: anywhere; }
nav ul { columns: 2; font-size: 0.92em; }
code { background: #f4f4f4; padding: 0 3px; }
"""


# An indistinguishability verdict -> its CSS class.
VERDICT_CLASS = {
    "equivalent": "verdict-equivalent",
    "detectable": "verdict-detectable",
    "inconclusive": "verdict-inconclusive",
}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


# Magnitudes below this are a zero plus floating-point round-off (a lapse rate fitted at its
# bound 0 comes out as 3.9e-16), and are shown as 0; the CSV files keep the values.
ROUND_OFF_ZERO = 1e-9


def fmt(value, digits: int = 3) -> str:
    """Numbers with ``digits`` significant digits; NaN/None/NA as an en dash; round-off as 0."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "–"
        v = float(value)
        if abs(v) < ROUND_OFF_ZERO:
            return "0"
        if v.is_integer() and abs(v) < 1e12:
            return str(int(v))
        if abs(v) >= 1000:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(value)


def interval(lo, hi) -> str:
    """An interval as text: ``LO to HI`` (``fmt``'s digits)."""
    return f"{fmt(lo)} to {fmt(hi)}"


# A table with more columns is shown as several narrower ones (the leading label columns
# repeated), so every table fits a 1280 px wide window without scrolling sideways.
MAX_TABLE_COLUMNS = 16
LABEL_COLUMNS = ("participant", "condition", "term", "component", "rule")


def table(
    frame: pd.DataFrame, *, digits: int = 3, max_rows: int | None = None, text_columns=()
) -> str:
    """A DataFrame as an HTML table (escaped; numbers right-aligned, text left).

    More than ``MAX_TABLE_COLUMNS`` columns: split into parts of balanced width, each repeating
    the leading label columns (``LABEL_COLUMNS``), one after the other.
    """
    if frame is None or len(frame) == 0:
        return '<p class="explain">(none)</p>'
    rows = frame if max_rows is None else frame.head(max_rows)
    text_cols = set(text_columns) | {c for c in frame.columns if frame[c].dtype == object}
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="explain">({len(frame) - max_rows} more rows in the CSV file)</p>'
    parts = _column_parts(list(frame.columns))
    html_parts = [_table_html(rows[part], digits=digits, text_cols=text_cols) for part in parts]
    if len(parts) > 1:
        html_parts[0] = (
            f'<p class="explain">({len(frame.columns)} columns, shown in {len(parts)} parts)</p>'
            + html_parts[0]
        )
    return "".join(html_parts) + more


def _column_parts(columns: list) -> list[list]:
    """The columns split into parts of at most ``MAX_TABLE_COLUMNS``, labels repeated."""
    if len(columns) <= MAX_TABLE_COLUMNS:
        return [columns]
    labels = []
    for c in columns:
        if c not in LABEL_COLUMNS or len(labels) == 2:
            break
        labels.append(c)
    rest = columns[len(labels) :]
    per_part = MAX_TABLE_COLUMNS - len(labels)
    n_parts = -(-len(rest) // per_part)
    size = -(-len(rest) // n_parts)
    return [labels + rest[i : i + size] for i in range(0, len(rest), size)]


def _table_html(rows: pd.DataFrame, *, digits: int, text_cols: set) -> str:
    head = "".join(
        f'<th class="{"text" if c in text_cols else ""}">{_breakable(c)}</th>' for c in rows.columns
    )
    body = []
    for rec in rows.itertuples(index=False):
        cells = []
        for c, v in zip(rows.columns, rec, strict=True):
            text = fmt_p(v) if c in P_COLUMNS else fmt(v, digits)
            if c in text_cols:
                cls = "text long" if len(text) > 60 else "text"
                cells.append(f'<td class="{cls}">{_breakable(text, after="_/")}</td>')
            else:
                cells.append(f'<td class="">{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _breakable(text, *, after: str = "_") -> str:
    """``text``, escaped, that may wrap after each character of ``after`` (column names after
    ``_``, paths after ``/``), so wide tables fit the page instead of scrolling sideways."""
    out = esc(text)
    for char in after:
        out = out.replace(char, char + "<wbr>")
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, from its header (IHDR, bytes 16 to 24)."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def image(png: bytes, *, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<p><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></p>'


def paragraph(text: str, *, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def bullet_list(items) -> str:
    items = list(items)
    if not items:
        return '<p class="explain">(none)</p>'
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def page(*, title: str, sections: list[tuple[str, str, str]], header_html: str) -> str:
    """The whole document. ``sections``: (anchor, heading, body html)."""
    nav = "".join(f'<li><a href="#{esc(a)}">{esc(h)}</a></li>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{header_html}"
        f"<nav><ul>{nav}</ul></nav>{body}</body></html>\n"
    )
