"""The base of every protocol table: unknown keys are errors, values keep their TOML types (a
quoted ``"57"`` is not a number, ``"yes"`` not a boolean), no number is ``inf`` or ``nan`` (TOML
floats, never a setting), validated tables are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictTable(BaseModel):
    """A protocol table: ``extra="forbid"`` (a typo must not fall back to a default),
    ``strict`` (no string is read as a number or a boolean; integers are numbers), finite
    numbers only, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
