"""Token savings at threshold: the generator's layout for the protocol's display and image.

A condition's ``level`` maps onto the generator's ``LayoutSpec`` through the one mapping the
study uses too (``generator.levels.layout_spec_for_level``), fed the sidecar's condition table.
``periphery_factor`` levels are 2 or 4 only: a continuous threshold has no layout, so savings are
given per tested level.

The layout is built for gaze at the condition's fixation target (the study generates for the
fixated point), on the display and image size recorded in the session sidecar.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from protocol.geometry import geometry_from_record

# Condition fields the layout reads (the rest: the generator's defaults, as the protocol's).
_LAYOUT_FIELDS = ("acuity", "padding_deg", "max_level", "circle_radius", "periphery_factor")


def layout_spec_for(*, condition: dict, level: float):
    """The generator ``LayoutSpec`` for ``condition`` (a sidecar condition table) at ``level``."""
    from generator.errors import FoveaError
    from generator.levels import layout_spec_for_level

    fields = {k: condition[k] for k in _LAYOUT_FIELDS if condition.get(k) is not None}
    try:
        return layout_spec_for_level(
            level_variable=condition.get("level_variable", "strength"), level=level, **fields
        )
    except FoveaError as error:
        raise FoveaError(f"condition {condition.get('name')!r}: {error}") from None


def layout_tokens(
    *,
    condition: dict,
    level: float,
    display: dict,
    image_size_px: tuple[int, int],
    patch_px: int,
    gaze_deg: tuple[float, float] | None = None,
) -> tuple[int, int]:
    """(tokens, tokens_full) of the layout for ``condition`` at ``level``.

    Args:
        condition: sidecar condition table (``level_variable``, ``fixation_deg``, ...).
        level: the level.
        display: width_px, height_px, width_cm, height_cm, distance_cm.
        image_size_px: (width, height).
        patch_px: image pixels per fine token.
        gaze_deg: gaze (x right, y up, degrees from the screen centre); default: the
            condition's fixation target.
    """
    from generator import build_layout

    geometry = geometry_from_record({"display": display, "image_size_px": image_size_px})
    if gaze_deg is None:
        gaze_deg = tuple(condition.get("fixation_deg", (0.0, 0.0)))
    gx, gy = geometry.deg_to_image_px(float(gaze_deg[0]), float(gaze_deg[1]))
    spec = layout_spec_for(condition=condition, level=level)
    layout = build_layout(
        geometry=geometry, gaze_px=(float(gx), float(gy)), spec=spec, patch_px=int(patch_px)
    )
    return int(layout.num_tokens), int(layout.num_tokens_full)


def token_ratio_curve(
    *, condition: dict, levels: np.ndarray, display: dict, image_size_px, patch_px: int
) -> np.ndarray:
    """Token ratio at each level (NaN where the level has no layout)."""
    out = np.full(len(levels), np.nan)
    for i, level in enumerate(levels):
        try:
            tokens, full = layout_tokens(
                condition=condition,
                level=float(level),
                display=display,
                image_size_px=image_size_px,
                patch_px=patch_px,
            )
        except Exception:  # noqa: BLE001 - an out-of-range level has no layout: leave NaN
            continue
        out[i] = tokens / full
    return out


def token_savings(
    *,
    group: pd.DataFrame,
    conditions: dict[str, dict],
    display: dict,
    image_size_px: tuple[int, int],
    patch_px: int,
    level_variables: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Tokens of the layout at each condition's group threshold (and its interval's ends).

    Args:
        group: one row per condition with ``condition, threshold, ci_low, ci_high`` (level units).
        conditions: sidecar condition tables by name (missing: fixation at the screen centre).
        display, image_size_px, patch_px: geometry from the sidecar.
        level_variables: condition -> level variable for the conditions whose table does not
            name one (``Design.level_variables``; default ``strength``).

    Returns:
        condition, level_variable, fixation_deg, threshold, tokens_full, tokens_at_threshold,
        token_ratio, token_ratio_at_ci_low, token_ratio_at_ci_high, savings_pct, note. The larger
        the level, the fewer tokens: the ratio at ``ci_high`` is the optimistic end.
    """
    geometry = {"display": display, "image_size_px": image_size_px, "patch_px": patch_px}
    variables = level_variables or {}
    rows = [
        _savings_row(rec, conditions, geometry, variables.get(rec.condition, "strength"))
        for rec in group.itertuples(index=False)
    ]
    return pd.DataFrame(rows)


def _savings_row(rec, conditions: dict[str, dict], geometry: dict, default_variable: str) -> dict:
    """``token_savings``' row of one group-threshold record (``geometry``: display,
    image_size_px, patch_px; ``default_variable``: the level variable when the table has none)."""
    cond = dict(conditions.get(rec.condition) or {})
    cond.setdefault("name", rec.condition)
    if cond.get("level_variable") is None:
        cond["level_variable"] = default_variable
    variable = cond["level_variable"]
    row = {
        "condition": rec.condition,
        "level_variable": variable,
        "fixation_deg": "({:g}, {:g})".format(*tuple(cond.get("fixation_deg", (0.0, 0.0)))),
        "threshold": rec.threshold,
        "tokens_full": np.nan,
        "tokens_at_threshold": np.nan,
        "token_ratio": np.nan,
        "token_ratio_at_ci_low": np.nan,
        "token_ratio_at_ci_high": np.nan,
        "savings_pct": np.nan,
        "note": "",
    }
    if not conditions.get(rec.condition):
        row["note"] = (
            f"condition not described in the sidecar: {variable} layout at the screen centre "
            "assumed. "
        )
    if variable == "periphery_factor":
        row["note"] += "periphery factor is discrete (2 or 4): see the per-level token table"
        return row
    if not (isinstance(rec.threshold, float) and math.isfinite(rec.threshold)):
        row["note"] += "no group threshold"
        return row
    try:
        tokens, full = layout_tokens(
            condition=cond,
            level=rec.threshold,
            **geometry,
        )
    except Exception as error:  # noqa: BLE001 - reported in the table, not fatal
        row["note"] += f"no layout at the threshold: {error}"
        return row
    row.update(
        tokens_full=full,
        tokens_at_threshold=tokens,
        token_ratio=tokens / full,
        savings_pct=100.0 * (1.0 - tokens / full),
    )
    for end in ("ci_low", "ci_high"):
        value = getattr(rec, end)
        if isinstance(value, float) and math.isfinite(value):
            ratio = token_ratio_curve(
                condition=cond,
                levels=np.array([value]),
                **geometry,
            )[0]
            row[f"token_ratio_at_{end}"] = ratio
    return row


def tokens_per_tested_level(trials: pd.DataFrame) -> pd.DataFrame:
    """What the sessions recorded: median tokens (and ratio) per condition and level."""
    cols = ["condition", "level", "tokens"]
    if not set(cols) <= set(trials.columns):
        return pd.DataFrame(
            columns=["condition", "level", "tokens_median", "token_ratio_median", "trials"]
        )
    frame = trials[cols].copy()
    if "tokens_full" in trials:
        frame["ratio"] = trials["tokens"] / trials["tokens_full"]
    else:
        frame["ratio"] = np.nan
    out = (
        frame.groupby(["condition", "level"], sort=True)
        .agg(
            tokens_median=("tokens", "median"),
            token_ratio_median=("ratio", "median"),
            trials=("tokens", "size"),
        )
        .reset_index()
    )
    return out
