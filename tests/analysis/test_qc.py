"""Quality control: metrics per participant and explicit, configurable exclusion rules."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from analysis.data import load_dataset
from analysis.qc import QCRules, run_qc, unchecked_notes
from analysis.simulate_data import SimulationSpec, simulate_dataset
from generator.errors import FoveaError

SEED = 11


@pytest.fixture(scope="module")
def qc_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("qc") / "data"
    print(f"qc data set: seed {SEED}")
    simulate_dataset(
        out_dir=root,
        spec=SimulationSpec(
            participants=4,
            trials_per_condition=50,
            seed=SEED,
            overrides={"02": {"fixation_break_rate": 0.5}, "03": {"calibration_error_deg": 1.6}},
        ),
    )
    return load_dataset(data_dir=root)


def test_metrics_and_default_exclusions(qc_data):
    qc = run_qc(trials=qc_data.trials, sessions=qc_data.sessions, rules=QCRules())
    p = qc.participants.set_index("participant")
    assert p.loc["02", "fixation_break_rate"] > 0.3
    assert p.loc["03", "calibration_error_deg"] == pytest.approx(1.6 * 1.05)  # mean of 1.6 and 1.76
    assert qc.excluded_participants == ["02", "03"]
    assert "fixation breaks" in p.loc["02", "exclusion_reasons"]
    assert "calibration error 1.68 deg > 1 deg" in p.loc["03", "exclusion_reasons"]
    ex = qc.exclusions.set_index("rule")
    assert ex.loc["max_fixation_break_rate", "participants_excluded"] == "02"
    assert ex.loc["max_calibration_error_deg", "participants_excluded"] == "03"
    # Every trial of an excluded participant is marked, and counted once.
    t = qc.trials
    assert not t.loc[t["participant"].isin(["02", "03"]), "analysed"].any()
    assert (
        ex["trials_excluded"].sum()
        + (~t["analysed"] & t["excluded_by"].str.startswith("aborted")).sum()
        == (~t["analysed"]).sum()
    )
    assert t.loc[t["participant"].isin(["01", "04"]) & (t["fixation_break"] == 0), "analysed"].all()


def test_rules_can_be_switched_off_and_tightened(qc_data, tmp_path):
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(
        json.dumps(
            {
                "max_fixation_break_rate": None,
                "max_calibration_error_deg": 2.0,
                "rt_max_s": 0.7,
                "max_rt_outlier_rate": None,
            }
        ),
        encoding="utf-8",
    )
    rules = QCRules.from_file(rules_file)
    qc = run_qc(trials=qc_data.trials, sessions=qc_data.sessions, rules=rules)
    assert qc.excluded_participants == []
    ex = qc.exclusions.set_index("rule")
    assert ex.loc["max_fixation_break_rate", "setting"] == "off"
    slow = qc.trials[(qc.trials["rt_s"] > 0.7)]
    assert len(slow) > 0 and (slow["excluded_by"] == "rt_max_s").all()
    assert ex.loc["rt_max_s", "trials_excluded"] == len(slow)


def test_missing_response_times_and_calibration_are_named_not_passed_silently(qc_data):
    """A missing value passes every rule; the notes say which participant went unchecked."""
    trials = qc_data.trials.copy()
    answered = (trials["participant"] == "01") & trials["correct"].notna()
    trials.loc[answered, "rt_s"] = float("nan")
    sessions = [s for s in qc_data.sessions if s.participant != "04"]  # 04: no calibration known
    qc = run_qc(trials=trials, sessions=sessions, rules=QCRules())
    assert "01" not in qc.excluded_participants  # analysed, as before
    notes = unchecked_notes(qc, QCRules())
    n = int(answered.sum())
    assert notes == [
        f"sub-01: {n} of {n} responses have no response time (rt_s n/a): rt_min_s, rt_max_s, "
        "max_rt_outlier_rate could not check them; they are analysed",
        "sub-04: no calibration error recorded (sidecar 'calibration'): "
        "max_calibration_error_deg could not check this participant",
    ]
    off = QCRules(
        rt_min_s=None, rt_max_s=None, max_rt_outlier_rate=None, max_calibration_error_deg=None
    )
    assert unchecked_notes(run_qc(trials=trials, sessions=sessions, rules=off), off) == []
    assert (
        unchecked_notes(
            run_qc(trials=qc_data.trials, sessions=qc_data.sessions, rules=QCRules()), QCRules()
        )
        == []
    )


def test_toml_rules_and_bad_rules(tmp_path):
    good = tmp_path / "rules.toml"
    good.write_text("rt_min_s = 0.2\nexclude_deadline_missed_trials = true\n", encoding="utf-8")
    rules = QCRules.from_file(good)
    assert rules.rt_min_s == 0.2 and rules.exclude_deadline_missed_trials
    bad = tmp_path / "bad.json"
    bad.write_text('{"max_fixation_rate": 0.2}', encoding="utf-8")
    with pytest.raises(FoveaError, match=f"QC rules {bad}: unknown rule.*max_fixation_rate"):
        QCRules.from_file(bad)
    bad.write_text('{"max_fixation_break_rate": 1.5}', encoding="utf-8")
    with pytest.raises(FoveaError, match="max_fixation_break_rate is a proportion"):
        QCRules.from_file(bad)
    with pytest.raises(FoveaError, match="rt_min_s .* must be below rt_max_s"):
        QCRules(rt_min_s=2.0, rt_max_s=1.0)
    with pytest.raises(FoveaError, match="cannot read QC rules"):
        QCRules.from_file(tmp_path / "missing.json")


def test_retried_rejected_calibration_attempts_are_not_averaged(qc_data):
    """The study records every setup attempt; a rejected one that was retried (accepted: false,
    then a later attempt) is not the calibration the trials ran under. Entries without
    ``accepted`` (older files) count; a rejected attempt the study gave up on and went on with
    counts too."""
    rejected = {"avg_error_deg": 2.6, "max_error_deg": 4.0, "accepted": False, "run": 1}
    good = {"avg_error_deg": 0.35, "max_error_deg": 0.8, "accepted": True, "run": 1}
    calibrations = {
        "01": [{**rejected, "attempts": 1}, {**good, "attempts": 2}],
        "02": [rejected, good],  # without attempt numbers: the next entry of the run retried it
        "04": [{"avg_error_deg": 0.5}, {"avg_error_deg": 0.7}],  # older files: no ``accepted``
    }
    sessions = [
        replace(s, sidecar={**s.sidecar, "calibration": calibrations[s.participant]})
        if s.participant in calibrations
        else s
        for s in qc_data.sessions
    ]
    qc = run_qc(trials=qc_data.trials, sessions=sessions, rules=QCRules())
    p = qc.participants.set_index("participant")
    assert p.loc["01", "calibrations"] == 1
    assert p.loc["01", "calibration_error_deg"] == pytest.approx(0.35)
    assert p.loc["01", "calibration_error_max_deg"] == pytest.approx(0.35)
    assert p.loc["02", "calibration_error_deg"] == pytest.approx(0.35)
    assert p.loc["04", "calibration_error_deg"] == pytest.approx(0.6)
    assert "01" not in qc.excluded_participants and "04" not in qc.excluded_participants
    assert "calibration" not in p.loc["02", "exclusion_reasons"]
    # Three rejected attempts, then the study went on with the last: that one counts.
    gave_up = [{**rejected, "attempts": n, "avg_error_deg": 2.0 + n} for n in (1, 2, 3)]
    gave_up_then_good = [*gave_up, {**good, "attempts": 1}]  # a later recalibration
    for cal, expected in ((gave_up, [5.0]), (gave_up_then_good, [5.0, 0.35])):
        sessions = [
            replace(s, sidecar={**s.sidecar, "calibration": cal}) if s.participant == "01" else s
            for s in qc_data.sessions
        ]
        qc = run_qc(trials=qc_data.trials, sessions=sessions, rules=QCRules())
        row = qc.participants.set_index("participant").loc["01"]
        assert row["calibrations"] == len(expected)
        assert row["calibration_error_deg"] == pytest.approx(sum(expected) / len(expected))
        assert "01" in qc.excluded_participants


def test_perceptual_observer_sessions_get_the_rules_but_no_unchecked_notes(tmp_path):
    """run_qc applies the rules to perceptual-observer sessions as to the others (their metrics
    are in the QC table); unchecked_notes names no perceptual observer (a model has no response
    times or calibration to check)."""
    root = tmp_path / "data"
    print("perceptual qc data set: seed 12")
    simulate_dataset(
        out_dir=root,
        spec=SimulationSpec(
            participants=3, trials_per_condition=20, perceptual_participants=1, seed=12
        ),
    )
    data = load_dataset(data_dir=root)
    model = data.trials["observer"] == "perceptual"
    names = set(data.trials.loc[model, "participant"])
    assert names
    sessions = [s for s in data.sessions if s.observer != "perceptual"]  # no calibration known
    rules = QCRules(rt_max_s=0.5)
    qc = run_qc(trials=data.trials, sessions=sessions, rules=rules)
    p = qc.participants.set_index("participant")
    assert (p.loc[sorted(names), "observer"] == "perceptual").all()
    assert (qc.trials.loc[model, "excluded_by"] == "rt_max_s").any()  # a trial rule reached them
    trials = data.trials.copy()
    trials.loc[model, "rt_s"] = float("nan")
    qc = run_qc(trials=trials, sessions=sessions, rules=rules)
    assert not any(name in note for note in unchecked_notes(qc, rules) for name in names)


@pytest.mark.parametrize(
    "name, text",
    [("rules.json", '{"rt_min_s": 0.2}\n'), ("rules.toml", "rt_min_s = 0.2\n")],
)
def test_rules_saved_with_a_byte_order_mark_are_read(tmp_path, name, text):
    """Notepad's UTF-8 starts with a byte-order mark: before, "Unexpected UTF-8 BOM"."""
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert QCRules.from_file(path).rt_min_s == 0.2


def test_dropped_frames_rule_counts_the_drops_while_the_images_were_shown(qc_data):
    """``max_dropped_frames_per_trial`` excluded trials for drops between trials, while waiting
    for the images or during the answer (``dropped_frames`` counts the whole trial), where
    nothing the participant saw changed; it counts interval 1 to interval 2. Data without the
    per-phase columns keep the whole trial's count."""
    trials = qc_data.trials.copy()
    answered = trials.index[trials["correct"].notna()]
    phases = ["fixation", "interval1", "mask", "isi", "interval2"]
    for phase in phases:
        trials[f"dropped_frames_{phase}"] = 0
    trials["dropped_frames"] = 0
    waiting, shown = answered[0], answered[1]
    trials.loc[waiting, ["dropped_frames", "dropped_frames_fixation"]] = 4  # before the onset
    trials.loc[shown, ["dropped_frames", "dropped_frames_isi"]] = 1  # between the two images
    rules = QCRules(max_dropped_frames_per_trial=0)
    t = run_qc(trials=trials, sessions=qc_data.sessions, rules=rules).trials
    assert t.loc[shown, "excluded_by"] == "max_dropped_frames_per_trial"
    assert t.loc[waiting, "excluded_by"] != "max_dropped_frames_per_trial"
    older = trials.drop(columns=[f"dropped_frames_{p}" for p in phases])
    t = run_qc(trials=older, sessions=qc_data.sessions, rules=rules).trials
    assert (t.loc[[waiting, shown], "excluded_by"] == "max_dropped_frames_per_trial").all()


def _answer(path, correct_of) -> None:
    """Rewrites every answered trial of a beh.tsv: ``correct_of(i)`` for the i-th answer, and
    the response that makes it so."""
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    ir, ic, iv = (header.index(c) for c in ("response", "correct", "interval_foveated"))
    i = 0
    for k, line in enumerate(lines[1:], start=1):
        row = line.split("\t")
        if len(row) != len(header) or row[ir] == "n/a":
            continue
        right = correct_of(i)
        i += 1
        row[ic] = str(right)
        row[ir] = row[iv] if right else str(3 - int(row[iv]))
        lines[k] = "\t".join(row)
    path.write_text("\n".join(lines), encoding="utf-8")


def test_a_participant_at_chance_and_one_always_right_are_named(tmp_path):
    """A participant who answered at chance (18 of 40 correct in the lab's data) got a
    threshold inside the tested levels in one condition and no word anywhere in the report
    that their answers were at chance; one right on every trial was named only fit by fit.
    Each gets a data note (a flag, not an exclusion); a participant above chance none."""
    from analysis.qc import performance_notes
    from analysis.report_analysis import ReportConfig
    from analysis.report_stages import apply_qc, load

    root = tmp_path / "data"
    simulate_dataset(
        out_dir=root, spec=SimulationSpec(participants=3, trials_per_condition=30, seed=SEED)
    )
    _answer(next((root / "sub-02").rglob("*_beh.tsv")), lambda i: i % 2)  # 0, 1, 0, 1, ...
    _answer(next((root / "sub-03").rglob("*_beh.tsv")), lambda i: 1)
    a = load(ReportConfig(progress=False), root)
    apply_qc(a)
    answered = a.qc.trials[a.qc.trials["correct"].notna()]
    n2 = int((answered["participant"] == "02").sum())
    n3 = int((answered["participant"] == "03").sum())
    notes = performance_notes(a.qc.trials)
    assert [n.split(":")[0] for n in notes] == ["sub-02", "sub-03"]
    assert notes[0].startswith(
        f"sub-02: {n2 // 2} of {n2} answered main trials correct ({100 * (n2 // 2) / n2:.0f} %), "
        "not above chance (one-sided exact binomial test against 50 %: p = "
    )
    assert notes[0].endswith("response keys (a flag, not an exclusion)")
    assert notes[1].startswith(f"sub-03: all {n3} answered main trials correct (ceiling)")
    assert set(notes) <= set(a.warnings) and a.excluded == set()


def test_nothing_is_said_of_chance_or_ceiling_from_a_handful_of_answers(tmp_path):
    """A session stopped after 10 aborted trials in a row with one answer, right: the report
    said 'all 1 answered main trials correct (ceiling)'. Below 10 answers (never fitted) the
    performance notes say nothing; from 10 on they do."""
    from analysis.qc import PERFORMANCE_MIN_ANSWERS, performance_notes

    root = tmp_path / "data"
    simulate_dataset(
        out_dir=root, spec=SimulationSpec(participants=1, trials_per_condition=30, seed=SEED)
    )
    _answer(next((root / "sub-01").rglob("*_beh.tsv")), lambda i: 1)
    trials = run_qc(
        trials=(ds := load_dataset(data_dir=root)).trials, sessions=ds.sessions, rules=QCRules()
    ).trials
    answered = trials.index[trials["correct"].notna()]
    few = trials.drop(answered[PERFORMANCE_MIN_ANSWERS - 1 :])
    assert performance_notes(few) == []
    enough = trials.drop(answered[PERFORMANCE_MIN_ANSWERS:])
    (note,) = performance_notes(enough)
    assert note.startswith(f"sub-01: all {PERFORMANCE_MIN_ANSWERS} answered main trials correct")


def test_a_perceptual_session_under_a_participants_label_leaves_their_qc_alone(tmp_path):
    """fovea simulate labels perceptual-observer sessions sim01, ... as the parametric ones, so
    both went in one data folder as sub-sim01/ses-1 and sub-sim01/ses-vdp. The QC row of sim01
    then mixed both (observer 'parametric,perceptual', 99 presentations, the model's dropped
    frames): a participant who broke fixation on 40 % of presentations had, with the model's
    session (none), a rate under the 0.25 limit and was analysed. Their metrics, rules and
    chance/ceiling note now come from their own sessions; the model's trials still meet the
    trial rules and stay in the overlay."""
    from analysis.qc import performance_notes

    root = tmp_path / "data"
    seed = 13
    print(f"shared-label qc data set: seed {seed}")
    simulate_dataset(
        out_dir=root,
        spec=SimulationSpec(
            participants=3,
            trials_per_condition=30,
            perceptual_participants=1,
            perceptual_threshold_factor=0.001,  # the model is right at every level
            overrides={"01": {"fixation_break_rate": 0.4}, "vdp01": {"fixation_break_rate": 0.0}},
            seed=seed,
        ),
    )
    # The model's session moves under participant 01's label, as session "vdp".
    src = root / "sub-vdp01" / "ses-1" / "beh"
    dst = root / "sub-01" / "ses-vdp" / "beh"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        text = f.read_text(encoding="utf-8")
        if f.suffix == ".tsv":
            lines = text.split("\n")
            text = "\n".join(
                [lines[0]]
                + [
                    "\t".join(["01", "vdp", *line.split("\t")[2:]]) if line else line
                    for line in lines[1:]
                ]
            )
        name = f.name.replace("sub-vdp01_ses-1", "sub-01_ses-vdp")
        (dst / name).write_text(text, encoding="utf-8")
        f.unlink()
    shutil.rmtree(root / "sub-vdp01")
    data = load_dataset(data_dir=root)
    assert sorted({(s.participant, s.observer) for s in data.sessions}) == [
        ("01", "parametric"),
        ("01", "perceptual"),
        ("02", "parametric"),
        ("03", "parametric"),
    ]
    qc = run_qc(trials=data.trials, sessions=data.sessions, rules=QCRules())
    p = qc.participants.set_index("participant")
    own = data.trials[
        (data.trials["participant"] == "01") & (data.trials["observer"] != "perceptual")
    ]
    assert p.loc["01", "observer"] == "parametric"
    assert p.loc["01", "sessions"] == 1
    assert p.loc["01", "presentations"] == len(own)
    assert p.loc["01", "fixation_break_rate"] == pytest.approx(own["fixation_break"].mean())
    assert p.loc["01", "fixation_break_rate"] > 0.25
    assert qc.excluded_participants == ["01"]
    model = qc.trials["observer"] == "perceptual"
    assert model.sum() > 0 and (qc.trials.loc[model, "participant"] == "01").all()
    # a note on performance speaks of the participant's own answers, not the model's
    assert not any(n.startswith("sub-01: all") for n in performance_notes(qc.trials))
    # the participant rule removed 01's own trials, not the model's
    assert (qc.trials.loc[model, "excluded_by"] == "").all()
