"""The whole report on a fixed simulated data set: outputs, golden tables, entry points."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.fits import FitSettings
from analysis.report import ReportConfig, build_report
from tests.analysis.conftest import copy_tree

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
PINNED = [
    "participant",
    "condition",
    "threshold",
    "ci_low",
    "ci_high",
    "slope",
    "lapse",
    "n_trials",
]
# Report tables pinned by golden files (token savings depend on the generator's layout code and
# are checked against build_layout in test_tokens.py instead).
GOLDEN_TABLES = {
    "thresholds": "thresholds.csv",
    "fits": "tables/fits.csv",
    "group_thresholds": "tables/group_thresholds.csv",
    "condition_effects": "tables/condition_effects.csv",
    "pairwise": "tables/pairwise.csv",
    "glmm_coefficients": "tables/glmm_coefficients.csv",
    "indistinguishability": "tables/indistinguishability.csv",
    "qc_participants": "tables/qc_participants.csv",
    "qc_exclusions": "tables/qc_exclusions.csv",
    "perceptual_overlay": "tables/perceptual_overlay.csv",
}
UPDATE = os.environ.get("FOVEA_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def golden_report(golden_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    config = ReportConfig(fit=FitSettings(n_boot=200, seed=0), progress=False, workers=2)
    return build_report(data_dir=golden_data, out_dir=out, config=config)


def test_outputs_exist_and_thresholds_csv_has_the_pinned_columns(golden_report):
    out = golden_report.out_dir
    for name in ("report.html", "thresholds.csv", "summary.json"):
        assert (out / name).is_file()
    t = pd.read_csv(out / "thresholds.csv", dtype={"participant": str})
    assert list(t.columns) == PINNED
    # QC excluded participant 05 (fixation breaks); the model observer is not a participant.
    assert sorted(t["participant"].unique()) == ["01", "02", "03", "04"]
    assert (t["ci_low"] < t["threshold"]).all() and (t["threshold"] < t["ci_high"]).all()
    assert ((t["lapse"] >= 0) & (t["lapse"] <= 0.1)).all()
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "group_thresholds.png" in figures and "perceptual_overlay.png" in figures
    assert "psychometric_sub-05.png" in figures  # excluded participants are still shown


def test_html_is_self_contained_and_readable(golden_report):
    html = golden_report.html.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', html)
    images = re.findall(r'<img alt="[^"]*" src="([^"]+)"', html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert len(images) == len(list((golden_report.out_dir / "figures").glob("*.png")))
    for heading in (
        "Summary: the answer",
        "Design",
        "Participants and sessions",
        "Psychometric functions",
        "Thresholds",
        "Group results",
        "Indistinguishability",
        "Token savings",
        "Quality control",
        "Predicted (perceptual observer) vs measured",
        "Methods",
    ):
        assert heading in html
    assert "incomplete session" in html  # participant 02's partial session is flagged
    assert "fewer tokens" in html


def test_a_flag_shared_by_several_fits_is_written_once_below_the_thresholds_table(
    golden_report,
):
    """With many fits the same long flag ("slope not estimated: ...") filled the thresholds
    table once per fit: a shared flag is a numbered note below it, its cells give the number
    and the flag's first words; fits.csv keeps every flag in full."""
    import html as html_lib

    from analysis.report_html import flag_notes

    page = html_lib.unescape(golden_report.html.read_text(encoding="utf-8"))
    thresholds = page.split('id="thresholds"', 1)[1].split("</section>", 1)[0]
    fits = pd.read_csv(golden_report.out_dir / "tables" / "fits.csv", keep_default_na=False)
    per_fit = [[f for f in flags.split("; ") if f] for flags in fits["flags"]]
    counts = pd.Series([f for flags in per_fit for f in dict.fromkeys(flags)]).value_counts()
    shared = [f for f, n in counts.items() if n >= 2 and len(f) > 60 and ";" not in f]
    assert shared, counts  # the golden data have shared flags
    for flag in shared:
        assert thresholds.count(flag) == 1, flag  # the note, not every cell
    long = "a: " + "x" * 60
    cells, notes = flag_notes([[long, "b"], [long, "b"], ["c"]])
    assert cells == ["[1] a; b", "[1] a; b", "c"] and notes.count("<li>") == 1


def test_summary_json(golden_report):
    s = json.loads(golden_report.summary_json.read_text(encoding="utf-8"))
    assert s["protocol_name"] == "sim_2afc"
    assert (
        s["counts"]["participants_excluded"] == ["05"] and s["counts"]["incomplete_sessions"] == 1
    )
    names = [c["condition"] for c in s["conditions"]]
    assert names == ["acuity_centre", "acuity_right8"]
    for c in s["conditions"]:
        assert (
            0 < c["token_ratio_at_threshold"] < 1
            and c["ci_low"] < c["group_threshold"] < c["ci_high"]
        )
        assert c["indistinguishability"]["verdict"] in ("equivalent", "detectable", "inconclusive")
    assert s["settings"]["fit"]["n_boot"] == 200 and len(s["settings"]["bootstrap_seeds"]) == 10
    assert any("incomplete session" in w for w in s["warnings"])
    assert s["perceptual_overlay"][0]["predicted_threshold"] > 0


def _compare(name: str, actual: pd.DataFrame) -> None:
    path = GOLDEN / f"{name}.csv"
    if UPDATE or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        actual.to_csv(path, index=False)
        if not UPDATE:
            pytest.fail(f"golden file {path} was missing and has been written; rerun")
        return
    expected = pd.read_csv(path, dtype=str, keep_default_na=False)
    actual = pd.read_csv(_to_csv(actual), dtype=str, keep_default_na=False)
    assert list(actual.columns) == list(expected.columns), name
    assert len(actual) == len(expected), name
    for col in expected.columns:
        a, e = actual[col], expected[col]
        a_num, e_num = pd.to_numeric(a, errors="coerce"), pd.to_numeric(e, errors="coerce")
        numeric = e_num.notna() | (e == "")
        if numeric.all() and a_num.notna().sum() == e_num.notna().sum():
            np.testing.assert_allclose(
                a_num.to_numpy(float),
                e_num.to_numpy(float),
                rtol=1e-4,
                atol=1e-8,
                err_msg=f"{name}.{col}",
                equal_nan=True,
            )
        else:
            assert a.tolist() == e.tolist(), f"{name}.{col}"


def _to_csv(frame: pd.DataFrame):
    import io

    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    buf.seek(0)
    return buf


def test_the_glmm_level_covariate_xc_is_explained_where_it_appears(golden_data, golden_report):
    """The trial-level model's term ``xc`` was on the page without a word of what it is: it is
    ln(level) centred on the analysed trials' mean, so xc = 0 at their geometric mean level."""
    from analysis.data import load_dataset
    from analysis.qc import QCRules, run_qc

    data = load_dataset(data_dir=golden_data)
    t = run_qc(trials=data.trials, sessions=data.sessions, rules=QCRules()).trials
    t = t[t["analysed"] & (t["observer"] != "perceptual")]
    zero = float(np.exp(np.log(t["level"]).mean()))  # the analysed trials' geometric mean
    s = json.loads(golden_report.summary_json.read_text(encoding="utf-8"))
    glmm = s["tests"]["trial_mixed_logistic"]
    assert glmm["xc_zero_level"] == pytest.approx(zero)
    assert glmm["xc"].startswith(
        f"xc is the level covariate: ln(level) minus its mean over the analysed trials, so "
        f"xc = 0 at level {zero:.3g} (their geometric mean level)"
    )
    group = golden_report.html.read_text(encoding="utf-8").split('<section id="group">')[1]
    terms = "Terms (reference condition acuity_centre): " + glmm["xc"].replace("'", "&#x27;")
    assert terms in group.split("</section>")[0]
    assert group.index(terms) < group.index('<td class="text">xc</td>')


@pytest.mark.parametrize("name", sorted(GOLDEN_TABLES))
def test_golden_tables(golden_report, name):
    """Report tables on the fixed data set (seed in conftest.py) against tests/analysis/golden/.
    After an intended change, regenerate with FOVEA_UPDATE_GOLDEN=1 and review the diff."""
    frame = pd.read_csv(
        golden_report.out_dir / GOLDEN_TABLES[name], dtype=str, keep_default_na=False
    )
    _compare(name, frame)


def test_results_do_not_depend_on_the_number_of_workers(golden_data, golden_report, tmp_path):
    config = ReportConfig(fit=FitSettings(n_boot=200, seed=0), progress=False, workers=1)
    single = build_report(data_dir=golden_data, out_dir=tmp_path / "one", config=config)
    a = (golden_report.out_dir / "thresholds.csv").read_text()
    b = (single.out_dir / "thresholds.csv").read_text()
    assert a == b


def test_script_entry_point_from_the_repo_root(small_data, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "analysis/report.py",
        str(small_data),
        "--out",
        str(out),
        "--bootstrap",
        "100",
        "--no-bayes",
        "--quiet",
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").is_file() and (out / "thresholds.csv").is_file()
    bad = subprocess.run(
        [sys.executable, "analysis/report.py", str(tmp_path / "missing"), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: data directory")


def test_fovea_report_command(small_data, tmp_path, capsys):
    from fovea_cli.main import main

    status = main(
        [
            "report",
            str(small_data),
            "--out",
            str(tmp_path / "o"),
            "--bootstrap",
            "100",
            "--no-bayes",
            "--sigmoid",
            "weibull",
            "--operating-level",
            "acuity_centre=0.5",
            "--quiet",
        ]
    )
    assert status == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert s["settings"]["fit"]["sigmoid"] == "weibull"
    assert s["settings"]["operating_levels"]["acuity_centre"] == 0.5
    status = main(
        [
            "report",
            str(small_data),
            "--out",
            str(tmp_path / "o2"),
            "--operating-level",
            "nosuch=1",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "unknown condition(s) nosuch" in err


def test_fovea_bench_report_writes_records(tmp_path, capsys):
    from fovea_cli.main import main

    path = tmp_path / "bench.json"
    status = main(
        [
            "bench",
            "report",
            "--json",
            str(path),
            "--participants",
            "2",
            "--conditions",
            "2",
            "--trials",
            "30",
            "--bootstrap",
            "100",
            "--workers",
            "1",
        ]
    )
    assert status == 0
    records = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(records, list) and len(records) == 1
    r = records[0]
    for key in ("seconds", "participants", "conditions", "trials_per_condition"):
        assert key in r
    assert (r["participants"], r["conditions"], r["trials_per_condition"]) == (2, 2, 30) and r[
        "seconds"
    ] > 0
    # The command that made it (records carried none): what to run again to compare.
    assert r["command"] == (
        f"fovea bench report --json {path} --participants 2 --conditions 2 --trials 30 "
        "--bootstrap 100 --workers 1"
    )
    # It showed nothing until the end (minutes at its defaults): now what it does, the report's
    # own progress, and that its temporary report is gone.
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        "simulating 2 participants x 2 conditions x 30 trials",
        "report 1 of 1 (timed)",
    ]
    assert "group statistics" in err
    assert err[-1] == "(the simulated data and reports are removed: --keep DIR keeps them)"


def test_a_report_where_qc_excludes_everyone_still_completes(small_data, tmp_path):
    from analysis.qc import QCRules

    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False),
        qc=QCRules(min_trials_per_condition=10_000),
        progress=False,
        workers=1,
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    thresholds = pd.read_csv(report.out_dir / "thresholds.csv")
    assert thresholds.empty and "threshold" in thresholds.columns
    summary = json.loads((report.out_dir / "summary.json").read_text())
    assert any("every participant was excluded" in w for w in summary["warnings"])
    assert (report.out_dir / "report.html").is_file()
    # Everyone has a threshold in fits.csv; what the group lacks is an *included* participant.
    group = pd.read_csv(report.out_dir / "tables" / "group_thresholds.csv")
    assert (group["note"] == "no included participant has a threshold").all()
    # The summary said only 'no included participant has a threshold' and 'At level 1: not
    # estimable'; it now says why (QC, with the reason) and what level 1 is.
    html = (report.out_dir / "report.html").read_text(encoding="utf-8")
    answer = html.split('<section id="design">')[0]
    assert 'Every participant was excluded by <a href="#qc">quality control</a> (' in answer
    assert "analysed trials in a condition (&lt; 10000)" in answer
    # Each participant's reasons were listed without the participant (the lab's data: three
    # 'fixation breaks 43 % > 25 %'-like reasons, nobody named); each is named now.
    for p in ("01", "02", "03"):
        assert f"; {p}: only " in answer or f"quality control</a> ({p}: only " in answer, p
    assert 'At the <a href="#indistinguishability">operating level</a> ' in answer
    assert "by default strength 1, radius_shrink 0.67, periphery_factor 2; fovea report" in html
    # Each condition's 'not estimable' line said only 'no fitted participants in this
    # condition', the same words once per condition; it now names the condition and its level.
    equiv = html.split('<section id="indistinguishability">')[1].split("</section>")[0]
    for condition in summary["design"]["conditions"]:
        assert (
            f'<span class="">not estimable</span>: {condition} at level 1: no included '
            "participant has a fitted psychometric function in this condition"
        ) in equiv
    # The token-savings note said "at the participants' geometric mean" beside empty cells: there
    # is no mean; it now says so, and why.
    tokens = html.split('<section id="tokens">')[1].split("</section>")[0]
    assert "geometric mean" not in tokens
    assert tokens.count(
        "no group threshold (every participant was excluded by quality control), so no tokens "
        "at threshold"
    ) == len(summary["design"]["conditions"])


def test_the_answer_names_a_participant_qc_excluded(small_data, tmp_path):
    """A session stopped part-way (sub-03: its first 30 trials) leaves too few trials, so QC
    excludes the participant. The answer said "2 participants" with no word of the third (only
    the header's "2 of 3 included" and the QC section far below); it now names them and why."""
    beh = next((small_data / "sub-03").rglob("*_beh.tsv"))
    lines = beh.read_text(encoding="utf-8").splitlines(keepends=True)
    beh.write_text("".join(lines[:31]), encoding="utf-8")
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    answer = report.html.read_text(encoding="utf-8").split('<section id="design">')[0]
    assert re.search(
        r'<li>1 of 3 participants excluded by <a href="#qc">quality control</a>, so not in these '
        r"results: 03 \(only \d+ analysed trials in a condition \(&lt; 20\)\)\.</li>",
        answer,
    ), answer


def test_a_summary_without_thresholds_says_the_fits_had_too_few_trials(small_data, tmp_path):
    """With QC passing everyone but too few trials to fit, the summary said only 'no included
    participant has a threshold'; it now gives the fitter's reason."""
    from analysis.qc import QCRules

    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False, min_trials=10_000),
        qc=QCRules(min_trials_per_condition=None),
        progress=False,
        workers=1,
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    html = (report.out_dir / "report.html").read_text(encoding="utf-8")
    answer = html.split('<section id="design">')[0]
    assert "no included participant has a threshold</span> (not fitted: " in answer
    assert "analysed trials (&lt; 10000))" in answer


def test_a_participant_correct_on_every_trial_has_no_threshold_estimate_on_the_page(
    small_data, tmp_path
):
    """sub-01 answers every trial correctly: its 'threshold' is the fit's lower bound. The page
    says 'at most about' for it, gives no group threshold and says why in the data notes."""
    beh = next((small_data / "sub-01").rglob("*_beh.tsv"))
    table = pd.read_csv(beh, sep="\t", dtype=str, keep_default_na=False)
    answered = table["correct"] != "n/a"
    table.loc[answered, "correct"] = "1"
    table.loc[answered, "response"] = table.loc[answered, "interval_foveated"]
    table.to_csv(beh, sep="\t", index=False)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    html = report.html.read_text(encoding="utf-8")
    assert "01: at most about" in html and "lower bound, not an estimate)" in html
    group = pd.read_csv(report.out_dir / "tables" / "group_thresholds.csv")
    assert group["note"].str.contains("sit at a bound of the fit").all()
    assert group["note"].str.startswith("1 of 3 participants' thresholds (01)").all()
    assert any("thresholds at a bound of their fit" in w for w in report.summary["warnings"])
    # thresholds.csv: the pinned columns, n/a (empty) for sub-01's threshold and interval; the
    # condition effects leave them out.
    thresholds = pd.read_csv(report.out_dir / "thresholds.csv", dtype={"participant": str})
    assert list(thresholds.columns) == PINNED
    sub01 = thresholds[thresholds["participant"] == "01"]
    assert len(sub01) == 2 and sub01[["threshold", "ci_low", "ci_high"]].isna().all().all()
    assert thresholds.loc[thresholds["participant"] != "01", "threshold"].notna().all()
    lines = (report.out_dir / "thresholds.csv").read_text().splitlines()
    assert all(ln.split(",")[2:5] == ["", "", ""] for ln in lines if ln.startswith("01,"))
    pairs = pd.read_csv(report.out_dir / "tables" / "pairwise.csv")
    assert (pairs["n"] == 2).all()
    assert any("pairwise comparisons below leave them out" in w for w in report.summary["warnings"])


def test_data_merged_from_two_machines_reported_from_another_folder(small_data, tmp_path):
    """Sessions copied from two lab PCs into one folder (both roots' dataset_description.json and
    .bidsignore overlapping), reported with relative paths from another working directory; the
    report folder then moved: its page keeps every figure and link, and says where the data were
    by an absolute path."""
    analyst = tmp_path / "analyst ü"
    merged = analyst / "merged data"
    merged.mkdir(parents=True)
    participants = sorted(p.name for p in small_data.glob("sub-*"))
    for machine, keep in (("a", participants[:1]), ("b", participants[1:])):
        root = copy_tree(small_data, tmp_path / f"lab {machine}")
        (root / "dataset_description.json").write_text(json.dumps({"Name": machine}))
        (root / ".bidsignore").write_text("*_timing.json\n")
        for sub in root.glob("sub-*"):
            if sub.name not in keep:
                shutil.rmtree(sub)
        shutil.copytree(root, merged, dirs_exist_ok=True)
    cmd = [sys.executable, str(REPO / "analysis" / "report.py"), "merged data", "--out", "rep"]
    options = ["--bootstrap", "100", "--no-bayes", "--no-stimuli", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        cmd + options, cwd=analyst, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    moved = shutil.move(analyst / "rep", tmp_path / "sent" / "report ü")
    summary = json.loads((Path(moved) / "summary.json").read_text(encoding="utf-8"))
    assert summary["data_dir"] == str(merged)
    sessions = pd.read_csv(Path(moved) / "tables" / "sessions.csv")
    assert sorted(set(sessions["participant"].astype(str).str.zfill(2))) == sorted(
        p.removeprefix("sub-") for p in participants
    )
    html = (Path(moved) / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert str(merged) in html and str(tmp_path / "sent") not in html


def test_a_rerun_stopped_half_way_leaves_no_earlier_results_beside_its_own(
    small_data, tmp_path, monkeypatch
):
    """A second report into the same --out, stopped while writing its tables (Ctrl-C): none
    of the first run's top-level results (report.html, thresholds.csv, summary.json) is left to
    pass for this run's; run to its end, the report is whole again."""
    import analysis.report_files as report_files

    config = ReportConfig(fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False)
    out = tmp_path / "out"
    build_report(data_dir=small_data, out_dir=out, config=config)
    assert {p.name for p in out.iterdir()} >= {"report.html", "thresholds.csv", "summary.json"}

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_files, "write_tables", stopped)
    with pytest.raises(KeyboardInterrupt):
        build_report(data_dir=small_data, out_dir=out, config=config)
    assert not {"report.html", "thresholds.csv", "summary.json"} & {p.name for p in out.iterdir()}
    monkeypatch.undo()
    build_report(data_dir=small_data, out_dir=out, config=config)
    assert {p.name for p in out.iterdir()} >= {"report.html", "thresholds.csv", "summary.json"}


def test_a_copied_session_is_named_in_the_qc_section_and_summary(small_data, tmp_path):
    from tests.analysis.test_data import _copy_session

    _copy_session(small_data, "01", "2")
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    line = "sub-01 ses-2 is an exact copy of sub-01 ses-1"
    assert [n for n in report.summary["qc"]["duplicate_sessions"] if n.startswith(line)]
    assert report.summary["counts"]["sessions"] == 3
    qc = report.html.read_text(encoding="utf-8").split('<section id="qc">')[1]
    assert "<h3>Duplicated sessions</h3><ul><li>" + line in qc.split("</section>")[0]


@pytest.mark.parametrize("name", ["group_thresholds.png", "report.html"])
def test_a_full_disk_leaves_no_torn_file_of_the_report(
    small_data, tmp_path, monkeypatch, capsys, name
):
    """A disk that fills while a figure (or report.html, the file that says the report is
    whole) is written leaves no part of it: before, a torn PNG (or page) stayed, though the
    message says "what was written whole is kept"."""
    from fovea_cli.main import main
    from tests.disk_full import disk_fills_while_writing

    out = tmp_path / "out"
    filled = disk_fills_while_writing(monkeypatch, name)
    args = ["report", str(small_data), "--out", str(out), "--no-stimuli", "--quiet"]
    assert main([*args, "--bootstrap", "100", "--no-bayes"]) == 2
    assert filled, f"{name} was never written"
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {out / name if name == 'report.html' else out / 'figures' / name}: no space left "
        "on the device (free some, then run the same command again: what was written whole is "
        "kept)"
    )
    written = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert not [w for w in written if name in w], written  # neither the file nor a temporary
    assert "report.html" not in written


def test_a_report_of_a_folder_without_data_creates_no_output_folder(tmp_path, capsys):
    from fovea_cli.main import main

    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "rep")]) == 2
    assert "no *_beh.tsv files below" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_method_bayes_with_no_bayes_is_refused_in_the_options_words(small_data, tmp_path, capsys):
    # Before: "primary method 'bayes' needs the Bayesian fit (bayes=True)", the API's words.
    from fovea_cli.main import main

    out = tmp_path / "out"
    args = ["report", str(small_data), "--out", str(out), "--method", "bayes", "--no-bayes"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --method bayes reports the Bayesian fits, which --no-bayes skips"
    )
    assert not out.exists()


def test_an_operating_level_below_the_tested_levels_gets_no_equivalence_verdict(
    small_data, tmp_path
):
    """small_data (seed 7) tested levels from 0.1 up. At --operating-level 0.03, below them, the
    report said 'equivalent ... performance is within 0.050 of chance' (interval 0.500 to 0.50x):
    that was the fitted functions' extrapolation, which approaches 50 % below the tested levels
    whatever the data, not a measurement. It is now 'not estimable' and says why; a level inside
    the tested range keeps its verdict."""
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False),
        progress=False,
        workers=1,
        stimuli=False,
        operating_level=0.03,
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "out", config=config)
    equiv = pd.read_csv(report.out_dir / "tables" / "indistinguishability.csv")
    print(equiv[["condition", "level", "p_correct", "ci_low", "ci_high", "verdict"]])
    assert (equiv["verdict"] == "not estimable").all()
    assert (
        equiv["statement"]
        .str.contains(
            "Level 0.03 lies outside the levels the participants were tested at (0.1 to ",
            regex=False,
        )
        .all()
    )
    html = report.html.read_text(encoding="utf-8")
    assert "equivalent</span>" not in html
    tested = pd.concat(pd.read_csv(p, sep="\t") for p in small_data.rglob("*_beh.tsv"))
    inside = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False),
        progress=False,
        workers=1,
        stimuli=False,
        operating_level=float(tested["level"].min()),
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "inside", config=inside)
    equiv = pd.read_csv(report.out_dir / "tables" / "indistinguishability.csv")
    assert (equiv["verdict"] != "not estimable").all(), equiv


def test_a_one_condition_study_says_the_trial_level_model_tests_no_difference(tmp_path):
    """One condition (3 simulated participants, seed 5): the trial-level model has no condition
    terms, and the page said 'its Wald test asks whether the conditions' curves differ at all:
    chi2(0) = –, p = –'. It now says there is no such test."""
    from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset

    print("one-condition data set: seed 5")
    data = tmp_path / "data"
    spec = SimulationSpec(
        participants=3,
        conditions=(SimCondition(name="acuity_right3", threshold=1.2, fixation_deg=(3.0, 0.0)),),
        trials_per_condition=60,
        seed=5,
    )
    simulate_dataset(out_dir=data, spec=spec)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=data, out_dir=tmp_path / "out", config=config)
    group = report.html.read_text(encoding="utf-8").split('<section id="group">')[1]
    group = group.split("</section>")[0]
    assert "chi2(0)" not in group
    assert (
        "with one condition (acuity_right3) it has no condition terms, so there is no test of "
        "whether conditions differ."
    ) in group


def test_conditions_with_different_level_variables_are_not_compared(tmp_path):
    """Two strength conditions and a radius_shrink one (as in protocols/threshold_2afc.toml; 3
    simulated participants, seed 5): the threshold mixed model, the pairwise comparisons and the
    trial-level model compared them all, so 'Do the conditions differ?' reported ratios such as
    circle / acuity_centre = 0.52 of thresholds in different units. The models now compare the
    reference's (strength) conditions only, pairs share a level variable, and the page says which
    conditions were left out and why."""
    from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset

    print("mixed level variables data set: seed 5")
    data = tmp_path / "data"
    conditions = (
        SimCondition(name="acuity_centre", threshold=1.5),
        SimCondition(name="acuity_right8", threshold=1.0, fixation_deg=(8.0, 0.0)),
        SimCondition(
            name="circle",
            threshold=0.4,
            layout_mode="circle",
            level_variable="radius_shrink",
            level_min=0.05,
            level_max=0.9,
        ),
    )
    spec = SimulationSpec(participants=3, trials_per_condition=60, conditions=conditions, seed=5)
    simulate_dataset(out_dir=data, spec=spec)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, seed=0, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=data, out_dir=tmp_path / "out", config=config)
    tables = report.out_dir / "tables"
    pairs = pd.read_csv(tables / "pairwise.csv")
    print(pairs[["condition_a", "condition_b", "ratio"]])
    assert pairs[["condition_a", "condition_b"]].values.tolist() == [
        ["acuity_centre", "acuity_right8"]
    ]
    assert pd.read_csv(tables / "condition_effects.csv")["condition"].tolist() == ["acuity_right8"]
    terms = pd.read_csv(tables / "glmm_coefficients.csv")["term"]
    assert not terms.str.contains("circle").any() and terms.str.contains("acuity_right8").any()
    note = (
        "the threshold mixed model and the trial-level mixed logistic model compare only the "
        "strength conditions (those of the reference, acuity_centre), and the pairwise "
        "comparisons only conditions that share a level variable; left out of the models: "
        "circle (radius_shrink), whose levels are in other units"
    )
    assert any(note in w for w in report.summary["warnings"])
    html = report.html.read_text(encoding="utf-8")
    assert note in html.split('<section id="group">')[1].split("</section>")[0]
    answer = html.split('<section id="design">')[0]
    assert (
        "Do the conditions differ (the strength conditions; circle has another level "
        "variable)? Threshold mixed model: chi2(1) = "
    ) in answer


def test_the_header_names_the_sessions_that_did_not_complete(tmp_path):
    """A data set with a session stopped for good half-way: the report's first line said '2
    session(s), ...' and only the data notes, far below, that one of them was unfinished. The
    header names the incomplete sessions."""
    from analysis.simulate_data import SimulationSpec, simulate_dataset

    root = tmp_path / "d"
    spec = SimulationSpec(participants=2, trials_per_condition=20, incomplete=("02",), seed=3)
    simulate_dataset(out_dir=root, spec=spec)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, bayes=False), progress=False, workers=1, stimuli=False
    )
    report = build_report(data_dir=root, out_dir=tmp_path / "out", config=config)
    header = report.html.read_text(encoding="utf-8").split("<section")[0]
    assert (
        '2 session(s) (1 incomplete: sub-02 ses-1; <a href="#sessions">data notes</a> say why), '
    ) in header


def test_incomplete_sessions_excluded_by_the_rule_are_not_said_to_be_analysed(tmp_path):
    """--qc-rules exclude_incomplete_sessions = true on a data set whose sub-02 stopped half-way
    (its only session): the data notes still said 'incomplete session (...): analysed with the
    trials it has', and the header said '1 of 1 participant(s) included' while the answer said
    '1 of 2 participants excluded by quality control: 02'. The note says the session was not
    analysed, and the header counts the participant QC removed before any fit."""
    from analysis.qc import QCRules
    from analysis.simulate_data import SimulationSpec, simulate_dataset

    root = tmp_path / "d"
    spec = SimulationSpec(participants=2, trials_per_condition=20, incomplete=("02",), seed=3)
    simulate_dataset(out_dir=root, spec=spec)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, bayes=False),
        qc=QCRules(exclude_incomplete_sessions=True),
        progress=False,
        workers=1,
        stimuli=False,
    )
    report = build_report(data_dir=root, out_dir=tmp_path / "out", config=config)
    (note,) = [w for w in report.summary["warnings"] if "incomplete session" in w]
    assert note.endswith("): not analysed (QC rule exclude_incomplete_sessions)"), note
    counts = report.summary["counts"]
    assert (counts["participants"], counts["participants_included"]) == (2, 1)
    assert counts["participants_excluded"] == ["02"]
    assert "1 of 2 participant(s) included" in report.html.read_text(encoding="utf-8")


def test_the_command_says_how_many_data_notes_there_are(tmp_path, capsys):
    """fovea report on data with a session stopped half-way ended with 'wrote report.html, ...'
    and nothing else: an analyst at the terminal was not told that the report holds notes on
    the data (an unfinished session here). The command's last line counts them."""
    from analysis.simulate_data import SimulationSpec, simulate_dataset
    from fovea_cli.main import main

    root = tmp_path / "d"
    spec = SimulationSpec(participants=2, trials_per_condition=20, incomplete=("02",), seed=3)
    simulate_dataset(out_dir=root, spec=spec)
    args = ["report", str(root), "--out", str(tmp_path / "o"), "--bootstrap", "100"]
    assert main([*args, "--no-bayes", "--no-stimuli"]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    n = len(s["warnings"])
    assert n >= 1 and any("incomplete session" in w for w in s["warnings"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"{n} data note{'s' * (n != 1)} to read (incomplete sessions, ")


def test_the_design_says_how_often_constant_stimuli_showed_each_level(small_data):
    """A fovea simulate protocol of constant stimuli, 6 levels x 4 repeats (24 trials per
    condition), kept the schema's trials_per_condition = 20, which constant stimuli ignore; the
    Design section said 'Procedure: constant, 20 trials per condition'. It now gives the repeats
    (the table beside it gives each condition's tested levels). Small data set, seed 7; the
    sidecars' procedure is what fovea simulate wrote for that protocol."""
    from analysis.report_html import _design
    from analysis.report_stages import load

    procedure = {
        "method": "constant",
        "trials_per_condition": 20,
        "constant": {"repeats": 4, "n_levels": 6},
    }
    for sidecar in small_data.rglob("*_beh.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        meta["protocol"]["procedure"] = procedure
        sidecar.write_text(json.dumps(meta), encoding="utf-8")
    config = ReportConfig(fit=FitSettings(n_boot=100, bayes=False), progress=False, workers=1)
    _, _, html = _design(load(config, small_data))
    assert "Procedure: constant, each level presented 4 times per condition." in html
    assert "20 trials per condition" not in html
    # an adaptive procedure still gives its trials per condition
    procedure = {"method": "questplus", "trials_per_condition": 20}
    for sidecar in small_data.rglob("*_beh.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        meta["protocol"]["procedure"] = procedure
        sidecar.write_text(json.dumps(meta), encoding="utf-8")
    _, _, html = _design(load(config, small_data))
    assert "Procedure: questplus, 20 trials per condition." in html


def test_a_perceptual_observer_failing_a_qc_rule_is_not_an_excluded_participant(tmp_path):
    """A perceptual observer whose sessions had fixation breaks on half the presentations
    (fovea simulate draws them for the model too): the answer said '1 of 4 participants excluded
    by quality control, so not in these results: vdp01' and summary.json's participants_excluded
    named vdp01, while the header counted 3 of 3 participants included and the overlay used its
    sessions. A model is no participant: a data note names the rule it failed, and its sessions
    still give the predictions (seed 3)."""
    from analysis.simulate_data import SimulationSpec, simulate_dataset

    root = tmp_path / "data"
    print("perceptual observer with fixation breaks: seed 3")
    simulate_dataset(
        out_dir=root,
        spec=SimulationSpec(
            participants=3,
            trials_per_condition=40,
            perceptual_participants=1,
            overrides={"vdp01": {"fixation_break_rate": 0.5}},
            seed=3,
        ),
    )
    config = ReportConfig(
        fit=FitSettings(n_boot=100, bayes=False), progress=False, workers=1, stimuli=False
    )
    result = build_report(data_dir=root, out_dir=tmp_path / "out", config=config)
    summary = json.loads((result.out_dir / "summary.json").read_text(encoding="utf-8"))
    counts = summary["counts"]
    assert (counts["participants"], counts["participants_included"]) == (3, 3)
    assert counts["participants_excluded"] == []
    html = (result.out_dir / "report.html").read_text(encoding="utf-8")
    assert "so not in these results" not in html
    (note,) = [w for w in summary["warnings"] if w.startswith("sub-vdp01")]
    assert note.startswith("sub-vdp01 (perceptual observer) fails participant QC rules (fixation")
    assert all(r["model_trials"] > 0 for r in summary["perceptual_overlay"])
    # Its trials were counted not analysed (the participant rule) though the overlay used them;
    # and the header's analysed trials never said how many of them are the model's.
    model_trials = sum(r["model_trials"] for r in summary["perceptual_overlay"])
    assert counts["perceptual_observer_trials_analysed"] == model_trials
    fits = pd.read_csv(result.out_dir / "tables" / "fits.csv", dtype={"participant": str})
    assert counts["trials_analysed"] == int(fits["n_trials"].sum()) + model_trials
    assert (
        f"{counts['trials_analysed']} of {counts['trials_presented']} presented main trials "
        f"analysed ({model_trials} of them the perceptual observer's)."
    ) in html
