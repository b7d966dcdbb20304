"""The experiment's design as the sessions' sidecars describe it (display, image size, token size,
conditions, procedure, simulated truths), with the defaults assumed where they are silent."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from analysis.data import Dataset
from generator.errors import FoveaError
from generator.geometry import default_display


@dataclass(frozen=True)
class Design:
    """What the sidecars say about the experiment (defaults where they are silent).

    Attributes:
        protocol_name, task: from the sidecars.
        display: width_px, height_px, width_cm, height_cm, distance_cm.
        image_size_px: (width, height).
        patch_px: image pixels per fine token.
        conditions: condition name -> its table from the sidecar (may be empty).
        level_variables: condition name -> its level variable: the sidecar's condition table,
            else the trials' ``level_variable`` column, else ``DEFAULT_LEVEL_VARIABLE``
            (assumed, in ``defaults_used``).
        procedure: the protocol's ``procedure`` table (may be empty).
        defaults_used: what was assumed because no sidecar said it.
        true_thresholds: simulated participants' true thresholds (condition -> level), if any.
    """

    protocol_name: str | None
    task: str | None
    display: dict
    image_size_px: tuple[int, int]
    patch_px: int
    conditions: dict[str, dict]
    level_variables: dict[str, str]
    procedure: dict
    defaults_used: tuple[str, ...]
    true_thresholds: dict[str, float]

    def level_variable(self, condition: str) -> str:
        return self.level_variables.get(condition, DEFAULT_LEVEL_VARIABLE)

    def condition_table(self, condition: str) -> dict:
        """The condition's sidecar table (may be empty) with its ``name`` and level variable."""
        table = {"name": condition, **self.conditions.get(condition, {})}
        table["level_variable"] = self.level_variable(condition)
        return table

    def level_labels(self, conditions) -> dict[str, str]:
        """Condition -> axis label of its level variable (``generator.levels.level_axis_label``)."""
        from generator.levels import level_axis_label

        return {c: level_axis_label(self.level_variable(c)) for c in conditions}

    def level_domains(self, conditions) -> dict:
        """Condition -> the possible levels of its level variable (``LevelDomain``), for the
        conditions whose variable has limits (``generator.levels.LEVEL_DOMAINS``)."""
        from generator.levels import LEVEL_DOMAINS

        return {
            c: LEVEL_DOMAINS[self.level_variable(c)]
            for c in conditions
            if self.level_variable(c) in LEVEL_DOMAINS
        }


#: The display assumed when a sidecar has none: the generator's reference display.
DEFAULT_DISPLAY = default_display().as_dict()
DEFAULT_IMAGE_SIZE_PX = (1024, 1024)
DEFAULT_PATCH_PX = 16
#: The level variable assumed when neither a sidecar nor the trials name one.
DEFAULT_LEVEL_VARIABLE = "strength"


def design_of(dataset: Dataset) -> tuple[Design, list[str]]:
    """The experiment's design from the primary sessions' sidecars, and notes on disagreements."""
    primary = [s for s in dataset.sessions if s.observer != "perceptual"] or dataset.sessions
    sidecars = [s.sidecar for s in primary if s.sidecar]
    notes: list[str] = []
    defaults: list[str] = []
    first = sidecars[0] if sidecars else {}
    display = dict(DEFAULT_DISPLAY)
    if isinstance(first.get("display"), dict):
        for key in DEFAULT_DISPLAY:
            value = first["display"].get(key)
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                display[key] = value
            else:
                defaults.append(f"display {key} = {DEFAULT_DISPLAY[key]}")
    else:
        d = DEFAULT_DISPLAY
        defaults.append(
            f"display ({d['width_px']}x{d['height_px']}, {d['width_cm']:g} x "
            f"{d['height_cm']:g} cm, {d['distance_cm']:g} cm)"
        )
    size = first.get("image_size_px")
    if (
        isinstance(size, list | tuple)
        and len(size) == 2
        and all(isinstance(v, int) and v > 0 for v in size)
    ):
        image_size = (int(size[0]), int(size[1]))
    else:
        image_size = DEFAULT_IMAGE_SIZE_PX
        defaults.append(f"image size {image_size[0]}x{image_size[1]} px")
    patch = first.get("patch_px")
    if isinstance(patch, int) and patch > 0:
        patch_px = patch
    else:
        patch_px = DEFAULT_PATCH_PX
        defaults.append(f"token size {patch_px} px")
    displays = {json.dumps(sc.get("display", {}), sort_keys=True) for sc in sidecars}
    if len(displays) > 1:
        notes.append(
            "sessions recorded different displays; token savings use the first session's display"
        )
    conditions: dict[str, dict] = {}
    for sc in sidecars:
        for name, table in (sc.get("conditions") or {}).items():
            if isinstance(table, dict):
                conditions.setdefault(str(name), table)
    level_variables = _level_variables(conditions, dataset.trials, defaults)
    protocol = first.get("protocol") if isinstance(first.get("protocol"), dict) else {}
    procedure = protocol.get("procedure", {}) if isinstance(protocol.get("procedure"), dict) else {}
    truth: dict[str, float] = {}
    for sc in sidecars:
        for name, value in (sc.get("true_thresholds") or {}).items():
            if isinstance(value, int | float):
                truth.setdefault(str(name), float(value))
    return (
        Design(
            protocol_name=first.get("protocol_name"),
            task=first.get("TaskName") or (primary[0].task if primary else None),
            display=display,
            image_size_px=image_size,
            patch_px=patch_px,
            conditions=conditions,
            level_variables=level_variables,
            procedure=procedure,
            defaults_used=tuple(defaults),
            true_thresholds=truth,
        ),
        notes,
    )


def _level_variables(conditions: dict[str, dict], trials, defaults: list[str]) -> dict[str, str]:
    """Condition -> level variable: the sidecar's table, else the trials' ``level_variable``
    column (one value per condition), else ``DEFAULT_LEVEL_VARIABLE`` (noted in ``defaults``).

    Raises:
        FoveaError: the trials of a condition the sidecars do not describe name two variables.
    """
    out = {
        name: str(table["level_variable"])
        for name, table in conditions.items()
        if table.get("level_variable") is not None
    }
    named = trials[trials["level_variable"].notna()] if "level_variable" in trials else None
    assumed = []
    for condition in sorted(set(trials["condition"].dropna().astype(str)) | set(conditions)):
        if condition in out:
            continue
        values = (
            sorted(set(named.loc[named["condition"] == condition, "level_variable"].astype(str)))
            if named is not None
            else []
        )
        if len(values) > 1:
            raise FoveaError(
                f"condition {condition!r}: its trials name more than one level variable "
                f"({', '.join(values)}) and no sidecar says which; one condition has one"
            )
        if values:
            out[condition] = values[0]
            defaults.append(f"condition {condition} level variable {values[0]} (from the trials)")
        else:
            out[condition] = DEFAULT_LEVEL_VARIABLE
            assumed.append(condition)
    if assumed:
        defaults.append(f"level variable {DEFAULT_LEVEL_VARIABLE} ({', '.join(assumed)})")
    return out
