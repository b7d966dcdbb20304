"""Interval bias in the QC: the share of answers "1", its exact binomial test against 0.5 and the
criterion c, flagged (not excluded) at the QC rules' interval_bias_alpha."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, norm

from analysis.fits import FitSettings
from analysis.interval_bias import COLUMNS, interval_bias
from analysis.qc import QCRules
from analysis.report import ReportConfig, build_report
from generator.errors import FoveaError


def _favour_interval_1(root: Path, participant: str) -> int:
    """Rewrites a session as a participant who favours "1" would have answered: every second
    answer "2" becomes "1", and ``correct`` follows (right when the foveated image was in
    interval 1, wrong when it was in 2). Returns how many answers changed."""
    path = next((root / f"sub-{participant}").rglob("*_beh.tsv"))
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    response, foveated, correct = (
        header.index(c) for c in ("response", "interval_foveated", "correct")
    )
    changed = seen = 0
    for k, line in enumerate(lines[1:], start=1):
        cells = line.split("\t")
        if len(cells) != len(header) or cells[response] != "2":
            continue
        seen += 1
        if seen % 2:
            cells[response] = "1"
            cells[correct] = "1" if cells[foveated] == "1" else "0"
            lines[k] = "\t".join(cells)
            changed += 1
    path.write_text("\n".join(lines), encoding="utf-8")
    return changed


def test_a_participant_who_favours_interval_1_is_flagged_and_not_excluded(small_data, tmp_path):
    assert _favour_interval_1(small_data, "01") > 20
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    summary = json.loads((report.out_dir / "summary.json").read_text())
    people = {p["participant"]: p for p in summary["qc"]["participants"]}
    biased = people["01"]
    assert biased["interval1_answer_rate"] > 0.65
    assert biased["interval_bias_p"] < 1e-3
    assert biased["interval_bias_c"] < -0.3  # negative c: favours "1"
    assert biased["interval_bias_flagged"] is True
    assert biased["excluded"] is False  # a flag, not an exclusion
    for unbiased in ("02", "03"):
        assert people[unbiased]["interval_bias_flagged"] is False
        assert people[unbiased]["interval_bias_p"] > 0.05
        assert abs(people[unbiased]["interval1_answer_rate"] - 0.5) < 0.1
    assert summary["qc"]["interval_bias"] == {
        "alpha": 0.05,
        "columns": COLUMNS,
        "flagged": ["01"],
    }
    table = pd.read_csv(
        report.out_dir / "tables" / "qc_participants.csv", dtype={"participant": str}
    )
    assert set(COLUMNS) <= set(table.columns)
    assert table.set_index("participant").loc["01", "interval_bias_flagged"]
    assert "01" in set(pd.read_csv(report.out_dir / "thresholds.csv", dtype=str)["participant"])
    # The page: the note in the data notes, the definitions and who is flagged in the QC section.
    html = report.html.read_text(encoding="utf-8")
    assert "sub-01: interval bias: answered &quot;1&quot; on " in html
    qc = html.split('<section id="qc">')[1].split("</section>")[0]
    assert "<li>interval_bias_c: criterion c = -(z(H) + z(F)) / 2 in z units" in qc
    assert "interval_bias_alpha): 01.</li>" in qc
    assert "interval_<wbr>bias_<wbr>p</th>" in qc


def test_the_columns_by_hand():
    # 40 answers: foveated image in interval 1 on 20 (18 answered "1"), in 2 on 20 (12 "1").
    fov = np.repeat([1, 2], 20)
    resp = np.concatenate([np.repeat([1, 2], [18, 2]), np.repeat([1, 2], [12, 8])])
    got = interval_bias(pd.DataFrame({"response": resp, "interval_foveated": fov}), alpha=0.05)
    assert got["interval1_answer_rate"] == 30 / 40
    assert got["interval_bias_p"] == pytest.approx(binomtest(30, 40).pvalue)
    c = -(norm.ppf(18.5 / 21) + norm.ppf(12.5 / 21)) / 2
    assert got["interval_bias_c"] == pytest.approx(c)
    assert got["interval_bias_flagged"] is True  # p = 0.0022
    off = interval_bias(pd.DataFrame({"response": resp, "interval_foveated": fov}), alpha=None)
    assert off["interval_bias_flagged"] is False


def test_the_level_is_checked():
    with pytest.raises(FoveaError, match="interval_bias_alpha is a level in"):
        QCRules(interval_bias_alpha=1.5)
