"""The model card's measured figures: any ``fovea bench quality`` summary as markdown, whatever
its fields (settings as a list, JOD 9.5 crossings as text, nested records as tables), and the
card's value formatting."""

from __future__ import annotations

import json
import math
from numbers import Real

#: How many rows one generic table of the measured figures shows at most.
MAX_TABLE_ROWS = 60


def measured_section(quality: dict | None) -> list[str]:
    """The card's measured figures: a ``fovea bench quality`` summary of any shape as lines of
    markdown (settings as a list, JOD crossings as text, nested records as tables)."""
    summary = (quality or {}).get("summary")
    if not summary:
        return [
            "Not yet measured for these weights: run `fovea bench quality --json PATH` and "
            "`python -m generator.training.export --refresh-card generator/models/weights "
            "--quality-summary PATH_summary.json`."
        ]
    source = quality.get("source")
    lines = [f"`fovea bench quality` summary{f' (`{source}`)' if source else ''}:", ""]
    if isinstance(summary, list):
        return [*lines, *markdown_table([r for r in summary if isinstance(r, dict)])]
    settings = {k: v for k, v in summary.items() if _is_scalar(v)}
    lines += [f"- {k}: {format_value(v)}" for k, v in settings.items()]
    for key, value in summary.items():
        if key in settings:
            continue
        if _is_crossing(value):
            lines += ["", f"{key}: {crossing_text(value)}."]
        elif isinstance(value, dict) and value and all(_is_crossing(v) for v in value.values()):
            lines += ["", f"{key}:", *[f"- {k}: {crossing_text(v)}" for k, v in value.items()]]
        elif isinstance(value, dict) and all(_is_scalar(v) for v in value.values()):
            lines += [
                "",
                f"{key}: " + "; ".join(f"{k} = {format_value(v)}" for k, v in value.items()),
            ]
        elif isinstance(value, dict):
            lines += ["", f"{key}:", "", *markdown_table(_rows(value))]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += ["", f"{key}:", "", *markdown_table([_flat(v) for v in value])]
        else:
            lines += ["", f"{key}: `{json.dumps(value)}`"]
    return lines


def _rows(tree: dict, path: tuple[str, ...] = ()) -> list[dict]:
    """A nested dict -> one row per dict that holds numbers or text, its path as ``group``; a
    row's dict of plain numbers (e.g. per octave) is one cell, other dicts are rows of their own."""
    scalars = {k: v for k, v in tree.items() if _is_scalar(v)}
    cells = {k: v for k, v in tree.items() if scalars and _is_cell(v)}
    rows = [{"group": " / ".join(path), **scalars, **cells}] if scalars else []
    for key, value in tree.items():
        if isinstance(value, dict) and key not in cells:
            rows += _rows(value, (*path, str(key)))
    return rows


def _is_cell(value) -> bool:
    """A dict of numbers, flags or None: shown in one cell as ``key: value, ...``."""
    return isinstance(value, dict) and all(
        v is None or (isinstance(v, bool | Real)) for v in value.values()
    )


def _flat(record: dict, prefix: str = "") -> dict:
    """Nested fields as ``a.b`` columns."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def markdown_table(rows: list[dict], *, first: list[str] = ()) -> list[str]:
    """A markdown table of ``rows`` (columns: ``first``, then every other key as it appears)."""
    if not rows:
        return ["(no records)"]
    columns = [c for c in first if any(c in r for r in rows)]
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:MAX_TABLE_ROWS]:
        lines.append("| " + " | ".join(format_value(row.get(c), cell=True) for c in columns) + " |")
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"\n({len(rows) - MAX_TABLE_ROWS} more rows in the summary)")
    return lines


def is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value) -> bool:
    if isinstance(value, list | tuple):
        return all(_is_scalar(v) and not isinstance(v, list | tuple) for v in value)
    return value is None or isinstance(value, str | bool | Real)


def _is_crossing(value) -> bool:
    return isinstance(value, dict) and set(value) >= {"strength", "token_ratio"}


def format_value(value, *, cell: bool = False) -> str:
    """A value for the card: numbers to 4 significant digits, None as n/a."""
    if value is None:
        text = "" if cell else "n/a"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, Real):
        text = f"{value:.4g}"
    elif isinstance(value, list | tuple):
        text = ", ".join(format_value(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    else:
        text = str(value)
    return text.replace("|", "\\|") if cell else text


def crossing_text(crossing: dict | None) -> str:
    """A JOD 9.5 crossing: interpolated numbers, or ``<s`` / ``>s`` beyond the strengths."""
    if not crossing:
        return "not measured"
    strength, ratio = crossing.get("strength"), crossing.get("token_ratio")
    if isinstance(strength, str) and strength.startswith("<"):
        return f"below s = {strength[1:]} (JOD is under 9.5 already at this, the lowest strength measured)"
    if isinstance(strength, str):
        return f"above s = {strength[1:]} (JOD >= 9.5 at every strength measured)"
    if not is_number(strength):
        return "not measured"
    ratio_text = f", token ratio {ratio:.3f}" if is_number(ratio) else ""
    return f"s = {strength:.2f}{ratio_text}"
