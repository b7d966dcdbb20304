"""The report's output folder: it replaces and removes only files a report wrote there."""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis.report_output import LEDGER
from fovea_cli.main import main

QUICK = ["--no-stimuli", "--quiet", "--bootstrap", "100", "--no-bayes", "--workers", "1"]


def _report(data: Path, out: Path) -> int:
    return main(["report", str(data), "--out", str(out), *QUICK])


def test_an_analysts_own_figures_and_tables_are_refused_and_left_untouched(
    small_data, tmp_path, capsys
):
    """``fovea report data --out .`` in a paper's folder removed every ``figures/*.png`` and
    ``tables/*.csv`` there (the analyst's own, silently) and overwrote their thresholds.csv;
    now the run is refused with one line before the fits and nothing is touched."""
    paper = tmp_path / "paper"
    own = {
        paper / "thresholds.csv": b"participant,threshold\nP1,1.2\n",
        paper / "figures" / "fig1.png": b"the paper's figure 1",
        paper / "tables" / "stats.csv": b"a,b\n1,2\n",
    }
    for path, content in own.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    assert _report(small_data, paper) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --out {paper} holds files no report wrote (thresholds.csv, figures/fig1.png, "
        "tables/stats.csv), which the report would overwrite or remove: choose a new or empty "
        "folder"
    )
    assert {p: p.read_bytes() for p in own} == own
    assert sorted(p.name for p in paper.rglob("*")) == [
        "fig1.png",
        "figures",
        "stats.csv",
        "tables",
        "thresholds.csv",
    ]


def test_a_report_folder_is_rewritten_and_its_stale_files_removed(small_data, tmp_path, capsys):
    """A report's own folder is still rewritten: a participant since removed loses its figure,
    a folder written before the ledger existed (no ledger, its summary.json) is adopted, and a
    file the analyst added to it later is refused."""
    out = tmp_path / "out"
    assert _report(small_data, out) == 0
    assert (out / "figures" / "psychometric_sub-03.png").is_file()

    shutil.rmtree(small_data / "sub-03")
    (out / LEDGER).unlink()  # as a report before the ledger left it
    assert _report(small_data, out) == 0
    assert not (out / "figures" / "psychometric_sub-03.png").exists()
    assert (out / "figures" / "psychometric_sub-02.png").is_file()
    assert "figures/psychometric_sub-02.png" in (out / LEDGER).read_text(encoding="utf-8")

    (out / "tables" / "my_anova.csv").write_text("F,p\n", encoding="utf-8")
    capsys.readouterr()
    assert _report(small_data, out) == 2
    assert "(tables/my_anova.csv)" in capsys.readouterr().err
    assert (out / "report.html").is_file()  # refused before anything was removed
