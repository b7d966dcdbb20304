"""Reading session data, and what bad input does: a clear FoveaError naming the file and the
problem, or (for data that are still usable) a flag the report shows — never a silent drop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.data import load_dataset
from analysis.design import design_of
from analysis.session_reader import REQUIRED_COLUMNS
from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset
from generator.errors import FoveaError


def _beh(root: Path, participant: str = "01") -> Path:
    return next((root / f"sub-{participant}").rglob("*_beh.tsv"))


def _rewrite(path: Path, edit) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join(edit(lines)), encoding="utf-8")


def test_reads_every_session_with_typed_columns(small_data):
    ds = load_dataset(data_dir=small_data)
    assert [s.participant for s in ds.sessions] == ["01", "02", "03"]  # labels keep leading zeros
    assert set(REQUIRED_COLUMNS) <= set(ds.trials.columns)
    assert ds.trials["level"].dtype == float
    assert set(ds.trials["fixation_break"].unique()) <= {0.0, 1.0}
    broke = ds.trials[ds.trials["fixation_break"] == 1]
    assert broke["correct"].isna().all()  # n/a read as missing
    design, notes = design_of(ds)
    assert design.protocol_name == "sim_2afc" and design.image_size_px == (1024, 1024) and not notes


def test_missing_directory_and_no_files(tmp_path):
    with pytest.raises(FoveaError, match="does not exist"):
        load_dataset(data_dir=tmp_path / "nope")
    with pytest.raises(FoveaError, match=r"no \*_beh.tsv files below"):
        load_dataset(data_dir=tmp_path)


def test_missing_column_names_file_and_column(small_data):
    path = _beh(small_data)
    _rewrite(
        path,
        lambda lines: (
            ["\t".join(c if c != "rt_s" else "reaction" for c in lines[0].split("\t"))] + lines[1:]
        ),
    )
    with pytest.raises(FoveaError) as info:
        load_dataset(data_dir=small_data)
    message = str(info.value)
    assert str(path) in message and "rt_s" in message and "missing required column" in message


def test_comma_separated_file_gets_a_hint(small_data):
    path = _beh(small_data)
    _rewrite(path, lambda lines: [ln.replace("\t", ",") for ln in lines])
    with pytest.raises(FoveaError, match="tab-separated"):
        load_dataset(data_dir=small_data)


def test_bad_value_names_line_and_column(small_data):
    path = _beh(small_data)

    def edit(lines):
        header = lines[0].split("\t")
        row = lines[3].split("\t")
        row[header.index("level")] = "strong"
        lines[3] = "\t".join(row)
        return lines

    _rewrite(path, edit)
    with pytest.raises(FoveaError, match=r"line 4, column 'level': 'strong' is not a number"):
        load_dataset(data_dir=small_data)


def test_out_of_range_value(small_data):
    path = _beh(small_data)

    def edit(lines):
        header = lines[0].split("\t")
        row = lines[5].split("\t")
        row[header.index("interval_foveated")] = "3"
        lines[5] = "\t".join(row)
        return lines

    _rewrite(path, edit)
    with pytest.raises(FoveaError, match=r"line 6, column 'interval_foveated'.*1 or 2"):
        load_dataset(data_dir=small_data)


def test_observer_names_come_from_the_session_data_contract(small_data):
    """One list of observers (protocol.session_data): the beh.tsv column's allowed values, the
    session's ``ObserverKind``, the analysis' check and ``--observer``'s choices."""
    import argparse
    import typing

    from protocol.session_data import COLUMN_TYPES, OBSERVERS, SIMULATED_OBSERVERS, ObserverKind
    from study.commands import add_observer_option
    from study.session import SessionConfig

    assert COLUMN_TYPES["observer"].allowed == OBSERVERS == typing.get_args(ObserverKind)
    assert OBSERVERS == ("human", *SIMULATED_OBSERVERS)
    hints = typing.get_type_hints(SessionConfig)
    assert typing.get_args(hints["observer"]) == OBSERVERS
    parser = argparse.ArgumentParser()
    add_observer_option(parser)
    (action,) = [a for a in parser._actions if a.dest == "observer"]
    assert tuple(action.choices) == SIMULATED_OBSERVERS

    path = _beh(small_data)

    def edit(lines):
        column = lines[0].split("\t").index("observer")
        out = [lines[0]]
        for line in lines[1:]:
            row = line.split("\t")
            if len(row) > column:
                row[column] = "robot"
            out.append("\t".join(row))
        return out

    _rewrite(path, edit)
    with pytest.raises(
        FoveaError, match="observer 'robot' is not one of human, parametric, perceptual"
    ):
        load_dataset(data_dir=small_data)


def test_wrong_field_count_in_the_middle_is_an_error(small_data):
    path = _beh(small_data)
    _rewrite(path, lambda lines: lines[:4] + [lines[4] + "\textra"] + lines[5:])
    with pytest.raises(FoveaError, match=r"line 5 has \d+ tab-separated fields, the header has"):
        load_dataset(data_dir=small_data)


def test_unreadable_and_binary_files(small_data):
    path = _beh(small_data)
    path.write_bytes(b"\xff\xfe\x00garbage\x89PNG")
    with pytest.raises(FoveaError, match=f"cannot read {path}: not UTF-8"):
        load_dataset(data_dir=small_data)
    path.unlink()
    path.mkdir()  # a directory where a file should be: unreadable as a file
    with pytest.raises(FoveaError, match=f"cannot read {path}"):
        load_dataset(data_dir=small_data)


def test_invalid_sidecar_names_the_sidecar(small_data):
    sidecar = next((small_data / "sub-02").rglob("*_beh.json"))
    sidecar.write_text('{"TaskName": "fovea2afc",', encoding="utf-8")
    with pytest.raises(FoveaError, match=f"sidecar {sidecar} is not valid JSON"):
        load_dataset(data_dir=small_data)


def test_empty_and_header_only_sessions_are_listed_not_dropped_silently(small_data):
    _beh(small_data, "02").write_text("", encoding="utf-8")
    path3 = _beh(small_data, "03")
    _rewrite(path3, lambda lines: lines[:1] + [""])
    ds = load_dataset(data_dir=small_data)
    assert [s.participant for s in ds.sessions] == ["01"]
    reasons = {p.path.name: p.reason for p in ds.skipped}
    assert all("empty session" in r for r in reasons.values()) and len(reasons) == 2


def test_all_sessions_empty_is_an_error(small_data):
    for p in small_data.rglob("*_beh.tsv"):
        p.write_text("", encoding="utf-8")
    with pytest.raises(FoveaError, match="no analysable trials"):
        load_dataset(data_dir=small_data)


def test_partial_session_is_analysed_and_flagged(tmp_path):
    root = tmp_path / "d"
    simulate_dataset(
        out_dir=root,
        spec=SimulationSpec(participants=2, trials_per_condition=40, incomplete=("02",), seed=3),
    )
    # and a torn last line, as a kill mid-write leaves it
    path = _beh(root, "02")
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "02\t1\t999\tacuity_centre\t1.0", encoding="utf-8")
    ds = load_dataset(data_dir=root)
    s2 = next(s for s in ds.sessions if s.participant == "02")
    assert s2.completed is False
    assert any("incomplete session" in f for f in s2.flags)
    assert any("incomplete (session interrupted mid-write)" in f for f in s2.flags)
    assert (ds.trials["participant"] == "02").sum() > 0
    assert 999 not in set(ds.trials["trial"])


def test_torn_last_line_inside_a_multibyte_character_is_dropped_not_fatal(small_data):
    """A crash mid-write can cut a row inside a UTF-8 character of the prompt text (the
    ``conditioning`` column): the torn line is flagged and dropped, the rest is read."""
    path = _beh(small_data)
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    column = lines[0].split("\t").index("conditioning")
    fields = lines[-1].split("\t")
    fields[column] = "a café at dusk ☕"
    lines[-1] = "\t".join(fields)  # a whole row with multi-byte text is read as written
    whole = ("\n".join(lines) + "\n").encode("utf-8")
    torn = "\t".join([*fields[:column], "a café at dusk ☕"]).encode("utf-8")[:-2]
    with pytest.raises(UnicodeDecodeError):
        torn.decode("utf-8")  # the cut is inside the character
    path.write_bytes(whole + torn)
    ds = load_dataset(data_dir=small_data)
    s1 = next(s for s in ds.sessions if s.participant == "01")
    assert f"last line {len(lines) + 1} is incomplete (session interrupted mid-write): ignored" in (
        s1.flags
    )
    assert len(s1.trials) == len(lines) - 1
    assert s1.trials["conditioning"].iloc[-1] == "a café at dusk ☕"


def test_participant_column_must_match_the_file_name(small_data):
    path = _beh(small_data)
    _rewrite(
        path,
        lambda lines: (
            [lines[0]] + [ln.replace("01\t", "07\t", 1) if ln else ln for ln in lines[1:]]
        ),
    )
    with pytest.raises(
        FoveaError, match=r"column 'participant' holds '07' but the file name says '01'"
    ):
        load_dataset(data_dir=small_data)


def test_duplicate_session_is_an_error(small_data):
    src = _beh(small_data).parent
    dst = small_data / "copy" / "sub-01" / "ses-1" / "beh"
    shutil.copytree(src, dst)
    with pytest.raises(FoveaError, match="appears twice"):
        load_dataset(data_dir=small_data)


def test_renamed_copy_of_a_session_is_an_error_not_its_trials_twice(small_data):
    # A backup beside the session under a non-BIDS name: labels from the table, task unknown.
    beh = _beh(small_data)
    shutil.copy(beh, beh.with_name("old_beh.tsv"))
    with pytest.raises(
        FoveaError, match="participant 01 session 1 .*task is unknown.* appears twice"
    ) as info:
        load_dataset(data_dir=small_data)
    assert "old_beh.tsv" in str(info.value) and beh.name in str(info.value)


def test_non_bids_file_name_alone_is_read_with_labels_from_the_table(small_data):
    beh = _beh(small_data, "02")
    beh.rename(beh.with_name("pilot_beh.tsv"))
    ds = load_dataset(data_dir=small_data)
    assert [(s.participant, s.task) for s in ds.sessions][1] == ("02", "unknown")
    assert any("file name is not BIDS" in f for f in ds.sessions[1].flags)


def test_mixed_protocols_are_refused_with_both_named_and_can_be_selected(small_data):
    sidecar = next((small_data / "sub-03").rglob("*_beh.json"))
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    data["protocol_name"] = "other_protocol"
    data["protocol_sha256"] = "f" * 64
    data["protocol_settings_sha256"] = "e" * 64
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FoveaError) as info:
        load_dataset(data_dir=small_data)
    message = str(info.value)
    assert (
        "different protocols" in message and "other_protocol" in message and "sim_2afc" in message
    )
    assert "--protocol" in message
    ds = load_dataset(data_dir=small_data, protocol="sim_2afc")
    assert [s.participant for s in ds.sessions] == ["01", "02"]
    assert any("other_protocol" in s.reason for s in ds.skipped)
    ds = load_dataset(data_dir=small_data, protocol="ffff")
    assert [s.participant for s in ds.sessions] == ["03"]
    with pytest.raises(FoveaError, match="no session of protocol 'nope'"):
        load_dataset(data_dir=small_data, protocol="nope")


def test_a_session_of_another_protocol_is_listed_with_its_labels_and_trials(small_data):
    """With --protocol picking one of two protocols, the sessions table listed the other
    protocol's session with blank labels and 0 rows, 0 responses (it has 120 trials), and the
    reason named only the protocol's name, the same for an edited copy of the selected protocol.
    The row has the session's labels and counts, and the reason the protocol's sha256 prefix."""
    from analysis.report_files import sessions_table

    _edit_sidecar(small_data, "03", protocol_sha256="f" * 64, protocol_settings_sha256="e" * 64)
    lines = _beh(small_data, "03").read_text(encoding="utf-8").strip().split("\n")
    sidecar = next((small_data / "sub-01").rglob("*_beh.json"))
    selected = json.loads(sidecar.read_text(encoding="utf-8"))["protocol_sha256"][:8]
    ds = load_dataset(data_dir=small_data, protocol=selected)
    assert [s.participant for s in ds.sessions] == ["01", "02"]
    table = sessions_table(ds, small_data)
    other = table[table["flags"].str.startswith("not analysed")]
    assert len(other) == 1
    row = other.iloc[0]
    assert (row["participant"], row["session"], row["completed"]) == ("03", "1", "yes")
    assert row["rows"] == len(lines) - 1 > 0 and 0 < row["responses"] <= row["rows"]
    assert row["flags"] == (
        f"not analysed: protocol 'sim_2afc' (sha256 ffffffffffff; not the selected '{selected}')"
    )
    # a folder not read has no counts rather than 0 of each
    shutil.copytree(_beh(small_data).parent, small_data / "derivatives" / "x" / "beh")
    table = sessions_table(load_dataset(data_dir=small_data, protocol=selected), small_data)
    folder = table[table["file"] == "derivatives"].iloc[0]
    assert folder["rows"] is pd.NA and folder["responses"] is pd.NA
    assert str(table["rows"].dtype) == "Int64"  # numbers, right-aligned on the page


def test_protocols_of_one_name_with_other_settings_say_which_setting_and_prefix(small_data):
    """The protocol file edited mid-study (small_data, seed 7; sub-03 ran with 32 trials per
    condition): 'pass --protocol NAME' could not pick one, as both carry the name, and
    --protocol sim_2afc gave the same error again. The error names the changed setting and
    the sha256 prefixes that do pick one."""
    sidecar = next((small_data / "sub-03").rglob("*_beh.json"))
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    data["protocol"]["procedure"]["trials_per_condition"] = 32
    data["protocol_sha256"] = "f" * 64
    data["protocol_settings_sha256"] = "e" * 64
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    for protocol in (None, "sim_2afc"):
        with pytest.raises(FoveaError) as info:
            load_dataset(data_dir=small_data, protocol=protocol)
        message = str(info.value)
        assert "both are named 'sim_2afc', but their settings differ" in message
        assert "(procedure.trials_per_condition: 60 -> 32)" in message, message
        assert "pass --protocol with a sha256 prefix (" in message and "ffffffffffff)" in message
    assert [s.participant for s in load_dataset(data_dir=small_data, protocol="ffff").sessions] == [
        "03"
    ]


def _edit_sidecar(root: Path, participant: str, **fields) -> None:
    sidecar = next((root / f"sub-{participant}").rglob("*_beh.json"))
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    for key, value in fields.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    sidecar.write_text(json.dumps(data), encoding="utf-8")


def test_sessions_with_the_same_settings_are_one_protocol_whatever_their_files_bytes(small_data):
    # 01 ran before settings were recorded (file X only); 02 ran with file X; 03 with file Y, a
    # comment added: same settings S. One protocol, linked through 02.
    _edit_sidecar(small_data, "01", protocol_sha256="a" * 64, protocol_settings_sha256=None)
    _edit_sidecar(small_data, "02", protocol_sha256="a" * 64, protocol_settings_sha256="5" * 64)
    _edit_sidecar(small_data, "03", protocol_sha256="b" * 64, protocol_settings_sha256="5" * 64)
    assert [s.participant for s in load_dataset(data_dir=small_data).sessions] == ["01", "02", "03"]
    assert [s.participant for s in load_dataset(data_dir=small_data, protocol="555").sessions] == [
        "02",
        "03",
    ]
    # Without 02's link, 01 (file X, settings unknown) and 03 (file Y) cannot be told the same.
    _edit_sidecar(small_data, "02", protocol_sha256="b" * 64)
    with pytest.raises(FoveaError, match="different protocols"):
        load_dataset(data_dir=small_data)


def test_missing_sidecar_uses_defaults_and_says_so(small_data):
    for sc in small_data.rglob("*_beh.json"):
        sc.unlink()
    ds = load_dataset(data_dir=small_data)
    assert all(any("no beh.json sidecar" in f for f in s.flags) for s in ds.sessions)
    design, _ = design_of(ds)
    assert design.image_size_px == (1024, 1024) and design.display["distance_cm"] == 60.0
    assert any("image size" in d for d in design.defaults_used)


def test_a_completed_session_whose_file_ends_mid_row_counts_as_incomplete(tmp_path):
    """A finished session (sidecar completed=true) whose beh.tsv was cut off mid-row later (a
    truncated copy): rows are missing, so it is an incomplete session, not a completed one."""
    root = tmp_path / "d"
    simulate_dataset(out_dir=root, spec=SimulationSpec(participants=2, trials_per_condition=40))
    path = _beh(root, "02")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2 + 17])
    ds = load_dataset(data_dir=root)
    s1 = next(s for s in ds.sessions if s.participant == "01")
    s2 = next(s for s in ds.sessions if s.participant == "02")
    assert s1.completed is True
    assert s2.completed is False
    assert any("completed=true, but beh.tsv ends mid-row" in f for f in s2.flags), s2.flags
    assert not any("completed=false" in f for f in s2.flags)


def test_levels_differing_only_in_the_last_bits_are_one_tested_level(tmp_path):
    """Two staircase tracks reach 0.67 by different log steps and write 0.67 and
    0.6700000000002678 (a real fovea simulate session): one tested level, not two, so the fit's
    table, the design's tested-level count and the plotted proportions are not split."""
    root = tmp_path / "d"
    simulate_dataset(out_dir=root, spec=SimulationSpec(participants=1, trials_per_condition=70))
    path = _beh(root)
    lines = path.read_text(encoding="utf-8").split("\n")
    col = lines[0].split("\t").index("level")
    clean = load_dataset(data_dir=root).trials
    for i in range(1, len(lines), 2):  # every other row: the same level, other last bits
        cells = lines[i].split("\t")
        if len(cells) > col and cells[col] != "n/a":
            cells[col] = repr(float(cells[col]) * (1 + 4e-13))
            lines[i] = "\t".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    noisy = load_dataset(data_dir=root).trials
    assert noisy.groupby("condition")["level"].nunique().to_dict() == (
        clean.groupby("condition")["level"].nunique().to_dict()
    )
    assert noisy.groupby("condition")["level"].nunique().max() == 7
    np.testing.assert_allclose(noisy["level"], clean["level"], rtol=1e-11)


def _copy_session(root: Path, participant: str, to_session: str) -> Path:
    """Copy sub-<participant>'s ses-1 folder to ses-<to_session>: file names and the ``session``
    column relabelled, trials, seeds and sidecar otherwise identical."""
    src = root / f"sub-{participant}" / "ses-1" / "beh"
    dst = root / f"sub-{participant}" / f"ses-{to_session}" / "beh"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        target = dst / f.name.replace("ses-1", f"ses-{to_session}")
        target.write_bytes(f.read_bytes())
        if target.suffix == ".tsv":
            _rewrite(
                target,
                lambda lines: (
                    [lines[0]]
                    + [
                        "\t".join(
                            c if i != 1 else to_session for i, c in enumerate(line.split("\t"))
                        )
                        if line
                        else line
                        for line in lines[1:]
                    ]
                ),
            )
    return dst


def test_a_session_folder_copied_under_another_number_is_analysed_once(small_data):
    trials_before = len(load_dataset(data_dir=small_data).trials)
    _copy_session(small_data, "02", "2")
    ds = load_dataset(data_dir=small_data)
    assert len(ds.trials) == trials_before
    assert [s.label for s in ds.sessions if s.participant == "02"] == ["sub-02 ses-1"]
    assert [(c.copy.label, c.original.label) for c in ds.copies] == [
        ("sub-02 ses-2", "sub-02 ses-1")
    ]
    note = ds.copies[0].note
    assert note.startswith("sub-02 ses-2 is an exact copy of sub-02 ses-1 (identical trials")
    assert "same sidecar start time" in note and note.endswith("analysed once, as sub-02 ses-1")
    assert [s.reason for s in ds.skipped] == [note]


def test_a_second_session_with_other_trials_is_not_a_copy(small_data):
    dst = _copy_session(small_data, "02", "2")
    beh = next(dst.glob("*_beh.tsv"))
    # One response changed: another session, analysed with the first.
    _rewrite(beh, lambda lines: [lines[0], lines[1].replace("\t1\t", "\t2\t", 1), *lines[2:]])
    ds = load_dataset(data_dir=small_data)
    assert ds.copies == [] and len([s for s in ds.sessions if s.participant == "02"]) == 2


def test_an_incomplete_session_killed_mid_run_says_how_to_continue_or_close_it(tmp_path):
    """A last run without a status (its end records were never written, as after a kill) gets
    the hint: --resume continues it, --close writes them; a run that ended cleanly does not."""
    import json

    root = tmp_path / "d"
    spec = SimulationSpec(participants=2, trials_per_condition=20, incomplete=("02",), seed=3)
    print("seed", spec.seed)
    simulate_dataset(out_dir=root, spec=spec)
    sidecar_path = _beh(root, "02").with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    for runs, hinted in (([{"started_utc": "x"}], True), ([{"status": "stopped"}], False)):
        sidecar_path.write_text(json.dumps({**sidecar, "runs": runs}), encoding="utf-8")
        s2 = next(s for s in load_dataset(data_dir=root).sessions if s.participant == "02")
        (flag,) = [f for f in s2.flags if f.startswith("incomplete session")]
        assert ("`fovea run --close`" in flag) == hinted, flag


def test_an_incomplete_session_says_why_its_last_run_stopped(tmp_path):
    """Sessions stopped by a lost tracker link, by 10 aborted trials in a row, or closed
    without resuming were all flagged 'incomplete session (sidecar completed=false)': the
    report did not say why, though each run's sidecar record says it. The flag quotes the last
    run's status."""
    root = tmp_path / "d"
    spec = SimulationSpec(participants=2, trials_per_condition=20, incomplete=("02",), seed=3)
    simulate_dataset(out_dir=root, spec=spec)
    sidecar_path = _beh(root, "02").with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    stopped = "stopped: 10 trials in a row were aborted (no_response 5, deadline 4)"
    runs = [{"status": "completed"}, {"status": stopped}]
    sidecar_path.write_text(json.dumps({**sidecar, "runs": runs}), encoding="utf-8")
    s2 = next(s for s in load_dataset(data_dir=root).sessions if s.participant == "02")
    (flag,) = [f for f in s2.flags if f.startswith("incomplete session")]
    assert flag == (
        f"incomplete session (sidecar completed=false; its last run: {stopped}): analysed with "
        "the trials it has"
    )


def _without_sidecars(root: Path) -> None:
    for sidecar in root.rglob("*_beh.json"):
        sidecar.unlink()


def test_level_variable_without_a_sidecar_comes_from_the_trials(tmp_path):
    """No sidecar: each condition's level variable is its trials' ``level_variable`` column
    (noted as assumed), not ``strength``; mixed values are an error; no column: strength."""
    root = tmp_path / "d"
    print("level-variable data set: seed 5")
    conditions = (
        SimCondition(name="acuity_centre", threshold=1.5),
        SimCondition(
            name="circle",
            threshold=0.4,
            layout_mode="circle",
            level_variable="radius_shrink",
            level_min=0.05,
            level_max=0.9,
        ),
    )
    simulate_dataset(
        out_dir=root,
        spec=SimulationSpec(participants=2, trials_per_condition=30, conditions=conditions, seed=5),
    )
    _without_sidecars(root)
    design, _ = design_of(load_dataset(data_dir=root))
    assert design.level_variable("circle") == "radius_shrink"
    assert design.level_variable("acuity_centre") == "strength"
    assert design.condition_table("circle") == {"name": "circle", "level_variable": "radius_shrink"}
    assert "condition circle level variable radius_shrink (from the trials)" in design.defaults_used
    assert set(design.level_domains(["circle", "acuity_centre"])) == {"circle", "acuity_centre"}

    # One condition's trials naming two variables (and no sidecar to say which): an error.
    path = _beh(root, "02")
    lines = path.read_text(encoding="utf-8").split("\n")
    column = lines[0].split("\t").index("level_variable")
    row = next(i for i, ln in enumerate(lines) if "\tcircle\t" in ln)
    fields = lines[row].split("\t")
    fields[column] = "periphery_factor"
    lines[row] = "\t".join(fields)
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(FoveaError, match="condition 'circle': its trials name more than one"):
        design_of(load_dataset(data_dir=root))

    # No column either: strength, and said so.
    for beh in root.rglob("*_beh.tsv"):
        lines = beh.read_text(encoding="utf-8").split("\n")
        column = lines[0].split("\t").index("level_variable")
        kept = ["\t".join(f for j, f in enumerate(ln.split("\t")) if j != column) for ln in lines]
        beh.write_text("\n".join(kept), encoding="utf-8")
    design, _ = design_of(load_dataset(data_dir=root))
    assert design.level_variable("circle") == "strength"
    assert "level variable strength (acuity_centre, circle)" in design.defaults_used


def test_a_byte_order_mark_is_read_past_not_taken_for_the_first_column(small_data):
    """A beh.tsv re-saved by Excel or Notepad, a sidecar edited in Notepad, starts with a UTF-8
    byte-order mark: before, "missing required column(s) participant" (the first header name
    read as "\\ufeffparticipant")."""
    before = load_dataset(data_dir=small_data)
    for path in (small_data / "sub-01").rglob("*_beh.*"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    after = load_dataset(data_dir=small_data)
    assert [s.flags for s in after.sessions] == [s.flags for s in before.sessions]
    assert [s.sidecar for s in after.sessions] == [s.sidecar for s in before.sessions]
    assert after.trials.equals(before.trials)
    # the byte named for a file that is not UTF-8 is still the file's own byte
    raw = _beh(small_data).read_bytes()
    _beh(small_data).write_bytes(raw[:40] + b"\xff" + raw[40:])
    with pytest.raises(FoveaError, match=r"not UTF-8 text \(byte 40\)"):
        load_dataset(data_dir=small_data)


def test_hand_edited_runs_and_completed_in_a_sidecar_are_flagged_not_fatal(small_data):
    """``"runs": "x"`` crashed the report (AttributeError in the sessions table); ``completed:
    "yes"`` was ignored silently. Both are flagged, naming the sidecar, and the report's tables
    are made."""
    from analysis.report_files import sessions_table

    record = {"software_version": "9.9", "status": "completed"}
    _edit_sidecar(small_data, "01", runs="x", completed="yes")
    _edit_sidecar(small_data, "02", runs=[1, record, "two"])
    ds = load_dataset(data_dir=small_data)
    s1, s2, s3 = ds.sessions
    name1, name2 = s1.sidecar_path.name, s2.sidecar_path.name
    assert f"{name1}: 'runs' is str 'x', not a list of run records: ignored" in s1.flags
    assert (
        f"{name1}: 'completed' is 'yes', not true or false: whether the session completed is "
        "unknown"
    ) in s1.flags
    assert s1.completed is None and s1.sidecar["runs"] == []
    assert (
        f"{name2}: 2 of 3 'runs' entries are not run records (JSON objects), e.g. 1: ignored"
        in s2.flags
    )
    assert s2.sidecar["runs"] == [record] and s2.completed is True
    assert not any("runs" in f or "'completed'" in f for f in s3.flags)
    table = sessions_table(ds, small_data)
    assert list(table["completed"]) == ["unknown", "yes", "yes"]
    assert "9.9" in table["software"].iloc[1]


def test_bids_derivatives_and_sourcedata_are_not_read_as_sessions(small_data, capsys):
    """A BIDS data set with a cleaned copy of a session in ``derivatives/`` (and another
    pipeline's table) was refused ("appears twice", or a missing column of the other table);
    those folders hold no sessions: they are listed as not read, and the sessions are analysed.
    A folder with sessions only there names the folder to report on instead."""
    from fovea_cli.main import main

    cleaned = small_data / "derivatives" / "cleaned" / "sub-01" / "ses-1" / "beh"
    shutil.copytree(_beh(small_data).parent, cleaned)
    _rewrite(next(cleaned.glob("*_beh.tsv")), lambda lines: lines[:20])
    (small_data / "derivatives" / "other_beh.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    ds = load_dataset(data_dir=small_data)
    assert [s.participant for s in ds.sessions] == ["01", "02", "03"]
    assert [(s.path.name, s.reason) for s in ds.skipped] == [
        ("derivatives", "BIDS derived data, not sessions (2 *_beh.tsv files)")
    ]

    only = small_data / "derivatives"
    shutil.move(only, small_data.parent / "only" / "derivatives")
    args = ["report", str(small_data.parent / "only"), "--out", str(small_data.parent / "out")]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(
        f"error: no *_beh.tsv files below {small_data.parent / 'only'} outside derivatives/ (BIDS "
        "derived data, not sessions (2 *_beh.tsv files); to report on those, name their folder)"
    )


def test_a_report_on_one_of_two_protocols_of_one_name_says_which_it_analysed(small_data, tmp_path):
    """Reports on the two versions of an edited protocol (same name, other settings; picked with
    --protocol PREFIX) were both titled and described as 'Protocol sim_2afc', and summary.json
    did not say which version either: nothing told the two reports apart. The design line and
    summary.json name the analysed sessions' protocol sha256."""
    from analysis.fits import FitSettings
    from analysis.report import ReportConfig, build_report

    sidecar = next((small_data / "sub-03").rglob("*_beh.json"))
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    data["protocol"]["procedure"]["trials_per_condition"] = 32
    data["protocol_sha256"] = "f" * 64
    data["protocol_settings_sha256"] = "e" * 64
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    first = json.loads(next((small_data / "sub-01").rglob("*_beh.json")).read_text("utf-8"))
    sha = first["protocol_sha256"]
    config = ReportConfig(
        fit=FitSettings(n_boot=100, bayes=False), progress=False, stimuli=False, protocol=sha[:8]
    )
    report = build_report(data_dir=small_data, out_dir=tmp_path / "rep", config=config)
    assert report.summary["protocol_sha256"] == [sha]
    html = report.html.read_text(encoding="utf-8")
    assert f"Protocol sim_2afc (sha256 {sha[:12]}), task " in html
