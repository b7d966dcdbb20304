"""Reading one session's files for the analysis: the typed ``beh.tsv`` table and the sidecar.

Values are checked against the session data contract (``protocol.session_data``: which columns
are numbers, their allowed values, ``n/a``, the columns never missing). A problem that makes the
file unusable raises ``FoveaError`` naming the file, the line or column and what would be valid; a
problem that leaves it usable (a torn last line, a header-only file) is returned as a flag.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.qc import responded
from generator.errors import FoveaError
from protocol.session_data import (
    ALLOWED_VALUES,
    MISSING_TOKENS,
    NEVER_MISSING,
    NUMERIC_COLUMNS,
    PINNED_COLUMNS,
)

#: The pinned beh.tsv columns (docs/data_format.md): every file has them.
REQUIRED_COLUMNS: tuple[str, ...] = PINNED_COLUMNS


def read_sidecar(path: Path) -> dict:
    """The ``_beh.json`` sidecar as a dict (FoveaError if unreadable or not a JSON object); a
    UTF-8 byte-order mark (a sidecar saved by Notepad) is allowed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise FoveaError(f"cannot read sidecar {path}: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FoveaError(
            f"sidecar {path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(data, dict):
        raise FoveaError(f"sidecar {path} must hold a JSON object, got {type(data).__name__}")
    return data


# The flag of a beh.tsv whose last line is cut off mid-row (its rows after it are lost).
TORN_LAST_LINE = "is incomplete (session interrupted mid-write): ignored"


def read_beh_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Parse and type-check one ``beh.tsv``.

    Returns:
        The typed table (rows in file order; numeric columns as floats with ``n/a`` as NaN, text
        columns as objects with None; plus ``line``, the file line) and flags. A header-only or
        zero-byte file gives an empty table (the caller reports it as an empty session).

    Raises:
        FoveaError: unreadable file, missing required columns, malformed rows or values.
    """
    flags: list[str] = []
    text = _read_text(path, flags)
    if text is None:
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS)), flags
    _check_layout(path, text)
    table = pd.read_csv(
        io.StringIO(text),
        sep="\t",
        dtype=str,
        keep_default_na=False,
        na_values=[],
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
    )
    if table.empty:
        flags.append("header only: no trials")
        return table, flags
    line_numbers = np.arange(2, 2 + len(table))
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        out[column] = _typed_column(path, column, table[column], line_numbers)
    _check_trials(path, out, line_numbers)
    out["level"] = same_level(out["level"].to_numpy(dtype=float))
    flags += _consistency_flags(out)
    out["line"] = line_numbers
    return out.reset_index(drop=True), flags


def same_level(levels: np.ndarray) -> np.ndarray:
    """Levels within a relative 1e-9 of each other as one level: the one of them written with
    the fewest digits (0.67, not 0.6700000000002678), level units; NaN stays NaN.

    Adaptive procedures step on log10(level), so two tracks reaching one level by different
    paths write it with different last bits (0.67 and 0.6700000000002678): as they are, they
    are two tested levels, split in the fits' tables, counted twice and plotted as two
    proportions.
    """
    out = np.array(levels, dtype=float)
    finite = np.isfinite(out)
    values = np.unique(out[finite])
    if values.size < 2:
        return out
    group = np.cumsum(np.r_[True, np.diff(values) > 1e-9 * np.abs(values[1:])]) - 1
    shortest = {}
    for g, v in zip(group.tolist(), values.tolist(), strict=True):
        if g not in shortest or len(repr(v)) < len(repr(shortest[g])):
            shortest[g] = v
    out[finite] = np.array([shortest[g] for g in group.tolist()])[
        np.searchsorted(values, out[finite])
    ]
    return out


def _read_text(path: Path, flags: list[str]) -> str | None:
    """The file's text without a torn last line (flagged) or a UTF-8 byte-order mark (a file
    re-saved by Excel or Notepad); None for an empty file."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise FoveaError(f"cannot read {path}: {error.strerror or error}") from None
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    if not raw[bom:].strip():
        flags.append("empty file (zero bytes)")
        return None
    cut = raw.rfind(b"\n")
    if cut >= 0 and cut < len(raw) - 1:
        # A crash mid-write leaves a partial last line (the study fsyncs whole rows), possibly
        # inside a multi-byte character (prompt text): cut it off before decoding.
        torn_line = raw.count(b"\n") + 1
        flags.append(f"last line {torn_line} {TORN_LAST_LINE}")
        raw = raw[: cut + 1]
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise FoveaError(
            f"cannot read {path}: not UTF-8 text (byte {error.start + bom}); is it really a "
            "beh.tsv?"
        ) from None


def _check_layout(path: Path, text: str) -> None:
    """The header has every required column once; every line has the header's field count."""
    header = text.split("\n", 1)[0].split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        if len(header) == 1 and "," in header[0]:
            hint = " (the header has commas: beh.tsv must be tab-separated)"
        else:
            hint = ""
        raise FoveaError(
            f"{path}: missing required column(s) {', '.join(missing)}{hint}; a beh.tsv needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise FoveaError(
            f"{path}: column(s) {', '.join(duplicated)} appear more than once in the header"
        )
    for number, line in enumerate(text.split("\n")[1:], start=2):
        if line == "":
            continue
        n_fields = line.count("\t") + 1
        if n_fields != len(header):
            raise FoveaError(
                f"{path}: line {number} has {n_fields} tab-separated fields, the header has "
                f"{len(header)}"
            )


def _typed_column(path: Path, column: str, values: pd.Series, line_numbers) -> pd.Series:
    """A column as the contract types it: numbers (checked finite and allowed) or text."""
    is_missing = values.isin(MISSING_TOKENS)
    if column not in NUMERIC_COLUMNS:
        return values.where(~is_missing, None).astype(object)
    numbers = pd.to_numeric(values.where(~is_missing), errors="coerce").astype(float)
    bad = numbers.isna() & ~is_missing
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FoveaError(
            f"{path}: line {line_numbers[i]}, column {column!r}: {values.iloc[i]!r} is not a "
            "number (write n/a for a missing value)"
        )
    finite = numbers.dropna()
    if not np.isfinite(finite.to_numpy()).all():
        i = int(np.flatnonzero(~np.isfinite(numbers.fillna(0).to_numpy()))[0])
        raise FoveaError(f"{path}: line {line_numbers[i]}, column {column!r}: value must be finite")
    allowed = ALLOWED_VALUES.get(column)
    if allowed is not None:
        wrong = numbers.notna() & ~numbers.isin(allowed)
        if wrong.any():
            i = int(np.flatnonzero(wrong.to_numpy())[0])
            raise FoveaError(
                f"{path}: line {line_numbers[i]}, column {column!r}: {values.iloc[i]!r}; "
                f"valid values are {' or '.join(str(v) for v in allowed)} (or n/a)"
            )
    return numbers


def _check_trials(path: Path, out: pd.DataFrame, line_numbers) -> None:
    """Every presented trial has the never-missing columns and a level >= 0."""
    for column in NEVER_MISSING:
        missing_rows = out[column].isna()
        if missing_rows.any():
            i = int(np.flatnonzero(missing_rows.to_numpy())[0])
            raise FoveaError(
                f"{path}: line {line_numbers[i]}, column {column!r} is missing (n/a); every presented "
                "trial needs it"
            )
    levels = out["level"].to_numpy()
    if (levels < 0).any():
        i = int(np.flatnonzero(levels < 0)[0])
        raise FoveaError(
            f"{path}: line {line_numbers[i]}: level {levels[i]!r} is negative; levels are >= 0"
        )


def _consistency_flags(out: pd.DataFrame) -> list[str]:
    """Usable but odd: ``correct`` against the response, answers on fixation breaks."""
    flags = []
    answered = responded(out)
    if "response" in out:
        both = answered & out["response"].notna()
        agree = (out["response"] == out["interval_foveated"]) == (out["correct"] == 1)
        inconsistent = int((both & ~agree).sum())
        if inconsistent:
            flags.append(
                f"{inconsistent} trial(s) where 'correct' disagrees with response == interval_foveated; "
                "'correct' was used"
            )
    broke_with_answer = (out["fixation_break"] == 1) & out["correct"].notna()
    if broke_with_answer.any():
        flags.append(
            f"{int(broke_with_answer.sum())} trial(s) flagged fixation_break=1 also have a response; "
            "not analysed as responses (the contract: a fixation break is not a response)"
        )
    return flags
