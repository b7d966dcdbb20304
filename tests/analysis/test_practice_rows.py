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


def _as_practice(path: Path, n: int, *, keep: int | None = None) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    column = lines[0].split("\t").index("block")
    for k in range(1, 1 + n):
        cells = lines[k].split("\t")
        cells[column] = "practice"
        lines[k] = "\t".join(cells)
    kept = lines if keep is None else lines[: keep + 1] + [""]
    path.write_text("\n".join(kept), encoding="utf-8")


def test_the_report_counts_practice_rows_beside_the_main_ones(small_data, tmp_path):
    """A session with 5 practice trials before its main ones (the lab's messy data: 46 rows in
    beh.tsv) was listed with 41 rows, and no line of the report said that the 5 others were
    practice: an analyst counting beh.tsv could not account for them. The sessions table has
    practice_rows (one stopped during the practice too), and the header counts them apart."""
    from analysis.fits import FitSettings
    from analysis.report import ReportConfig, build_report

    rows_01 = len(_beh(small_data, "01").read_text(encoding="utf-8").strip().split("\n")) - 1
    _as_practice(_beh(small_data, "01"), 5)
    _as_practice(_beh(small_data, "02"), 4, keep=4)
    config = ReportConfig(fit=FitSettings(n_boot=100, bayes=False), progress=False, stimuli=False)
    report = build_report(data_dir=small_data, out_dir=tmp_path / "rep", config=config)
    sessions = pd.read_csv(tmp_path / "rep" / "tables" / "sessions.csv", dtype={"participant": str})
    by = sessions.set_index("participant")
    assert (by.loc["01", "rows"], by.loc["01", "practice_rows"]) == (rows_01 - 5, 5)
    assert (by.loc["02", "rows"], by.loc["02", "practice_rows"]) == (0, 4)
    assert by.loc["03", "practice_rows"] == 0
    assert report.summary["counts"]["practice_trials"] == 5  # of the analysed sessions
    html = report.html.read_text(encoding="utf-8")
    presented = report.summary["counts"]["trials_presented"]
    assert f"of {presented} presented main trials analysed (besides 5 practice trials, " in html
