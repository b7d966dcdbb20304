"""Hints for protocol errors: the keys a table allows, a "did you mean" for a misspelt key or
value, and the table a key put under the wrong header belongs to.

The allowed keys come from the schema itself (``protocol.schema.Protocol``), so the hints never
drift from it. The full list of keys, with units and defaults, is ``docs/protocol.md``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing

from pydantic import BaseModel

DOCS = "docs/protocol.md"


def table_model(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The schema model of the table at ``loc`` (``('conditions', 0)`` -> ``Condition``), or
    None when ``loc`` does not lead to a table."""
    model: type[BaseModel] | None = root
    for key in loc:
        if isinstance(key, int):
            continue  # an item of an array of tables: the list's item type was taken already
        field = model.model_fields.get(key) if model is not None else None
        if field is None:
            return None
        model = _model_of(field.annotation)
    return model


def _model_of(annotation) -> type[BaseModel] | None:
    """The BaseModel inside ``annotation`` (itself, or the item type of ``list[...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def table_name(loc: tuple) -> str:
    """``('procedure', 'staircase')`` -> ``[procedure.staircase]``; ``()`` -> the top level."""
    keys = [str(k) for k in loc if not isinstance(k, int)]
    if not keys:
        return "the top level"
    if keys == ["conditions"]:
        return "[[conditions]]"
    return "[" + ".".join(keys) + "]"


def _close(word: str, options) -> str | None:
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_hint(root: type[BaseModel], loc: tuple) -> str:
    """Why the key at ``loc`` is unknown and what would be right."""
    key, parent = str(loc[-1]), loc[:-1]
    model = table_model(root, parent)
    allowed = list(model.model_fields) if model is not None else []
    where = table_name(parent)
    if key == "conditions":
        return (
            f"unknown field in {where}; conditions are [[conditions]] tables (a key after a "
            "[table] header belongs to that table)"
        )
    home = _home_table(root, key, skip=parent)
    if home is not None:
        return (
            f"unknown field in {where}; {key} belongs in {table_name(home)} (a key after a "
            f"[table] header belongs to that table: move it)"
        )
    guess = _close(key, allowed)
    if guess is not None:
        return f"unknown field in {where}; did you mean {guess}?"
    return f"unknown field in {where}; its keys: {', '.join(allowed)} ({DOCS})"


def _home_table(root: type[BaseModel], key: str, *, skip: tuple) -> tuple | None:
    """The table (a path of keys) whose schema has ``key``, other than ``skip``; None if none
    or more than one does."""
    homes = [path for path in _tables(root, ()) if path != skip and key in _fields(root, path)]
    return homes[0] if len(homes) == 1 else None


def _fields(root: type[BaseModel], path: tuple) -> dict:
    model = table_model(root, path)
    return model.model_fields if model is not None else {}


def _tables(model: type[BaseModel], path: tuple):
    yield path
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is not None:
            yield from _tables(sub, (*path, name))


def value_hint(got, expected: str) -> str:
    """``did you mean 'strength'?`` for a misspelt choice (``expected`` is pydantic's list of
    the allowed values, e.g. ``'strength', 'radius_shrink' or 'periphery_factor'``)."""
    if not isinstance(got, str):
        return ""
    guess = _close(got, re.findall(r"'([^']*)'", expected))
    return f"; did you mean {guess!r}?" if guess is not None else ""
