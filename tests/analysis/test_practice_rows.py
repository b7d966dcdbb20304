"""Practice trials (``block = practice``) are never fitted: the analysis drops them where it
reads a session (``analysis.data.without_practice``), and files without the column (written
before it existed) keep every row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.data import load_dataset, without_practice


def _beh(root: Path, participant: str = "01") -> Path:
    return next((root / f"sub-{participant}").rglob("*_beh.tsv"))


def test_without_practice_keeps_main_and_unlabelled_rows():
    trials = pd.DataFrame({"trial": [1, 2, 3, 4], "block": ["practice", "main", None, "main"]})
    assert without_practice(trials)["trial"].tolist() == [2, 3, 4]
    old = pd.DataFrame({"trial": [1, 2]})
    assert without_practice(old) is old


def test_practice_rows_are_dropped_when_a_dataset_is_loaded(small_data):
    before = load_dataset(data_dir=small_data)
    path = _beh(small_data, "01")
    lines = path.read_text(encoding="utf-8").split("\n")
    column = lines[0].split("\t").index("block")
    n_practice = 5
    for k in range(1, 1 + n_practice):  # the first five trials were practice
        cells = lines[k].split("\t")
        cells[column] = "practice"
        lines[k] = "\t".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    after = load_dataset(data_dir=small_data)
    assert len(after.trials) == len(before.trials) - n_practice
    first = after.trials[after.trials["participant"] == "01"]["trial"].min()
    assert first == n_practice + 1
    assert "practice" not in set(after.trials["block"].dropna())


def test_a_session_stopped_during_the_practice_is_not_called_empty(small_data):
    """small_data (seed 7), sub-02 cut to its first five rows, all practice (a session stopped
    during the practice): the report listed it as 'empty session: no trials recorded', though
    five trials were; it now says they were practice trials."""
    path = _beh(small_data, "02")
    lines = path.read_text(encoding="utf-8").split("\n")
    column = lines[0].split("\t").index("block")
    for k in range(1, 6):
        cells = lines[k].split("\t")
        cells[column] = "practice"
        lines[k] = "\t".join(cells)
    path.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    data = load_dataset(data_dir=small_data)
    reasons = {s.path: s.reason for s in data.skipped}
    assert reasons[path] == (
        "empty session: no main trials recorded, only 5 practice trials (never fitted)"
    )
    assert "02" not in set(data.trials["participant"])
