"""The base of every protocol table: unknown keys are errors, validated tables are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictTable(BaseModel):
    """A protocol table: ``extra="forbid"`` (a typo must not fall back to a default), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
