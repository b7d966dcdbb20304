"""Session files: the trial log survives torn writes, gzip gaze blocks survive kills, sidecars are
atomic, an existing session is never overwritten."""

from __future__ import annotations

import gzip
import json
import math
import zlib

import numpy as np
import pandas as pd
import pytest

from generator.errors import FoveaError
from protocol.session_data import COLUMNS, PINNED_COLUMNS, read_rows
from study.datalog import BehaviourLog, PhysioLog, SessionPaths, write_json_atomic


def _row(trial: int, **extra) -> dict:
    row = {
        "participant": "01",
        "session": "1",
        "trial": trial,
        "condition": "c",
        "level": 0.1 + trial,
        "correct": 1,
    }
    row.update(extra)
    return row


def test_paths_follow_the_bids_layout(tmp_path):
    paths = SessionPaths(data_dir=tmp_path, participant="01", session="2", task="fovea2afc")
    assert paths.beh_tsv == tmp_path / "sub-01/ses-2/beh/sub-01_ses-2_task-fovea2afc_beh.tsv"
    # BIDS eye-tracking (BEP020): the physio file beside the data it goes with, with its
    # recording label; raw files (EDFs, shown images) under sourcedata/.
    assert (
        paths.physio_tsv_gz
        == tmp_path / "sub-01/ses-2/beh/sub-01_ses-2_task-fovea2afc_recording-eye1_physio.tsv.gz"
    )
    assert paths.events_tsv == tmp_path / "sub-01/ses-2/beh/sub-01_ses-2_task-fovea2afc_events.tsv"
    assert paths.eyetrack_dir == tmp_path / "sourcedata/sub-01/ses-2/eyetrack"
    assert paths.images_dir == tmp_path / "sourcedata/sub-01/ses-2/eyetrack/images"
    with pytest.raises(FoveaError, match="letters and digits"):
        SessionPaths(data_dir=tmp_path, participant="p_1", session="1", task="t")


def test_trial_log_has_the_pinned_columns_and_never_overwrites(tmp_path):
    assert COLUMNS[: len(PINNED_COLUMNS)] == PINNED_COLUMNS
    path = tmp_path / "beh" / "x_beh.tsv"
    log = BehaviourLog.create(path)
    log.append(_row(1, rt_s=0.5))
    log.append(_row(2, response=None, rt_s=math.nan, conditioning="a\tcat\nsat"))
    log.close()
    frame = pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["trial"].tolist() == [1, 2]
    assert frame["rt_s"].isna().tolist() == [False, True]
    assert frame["conditioning"][1] == "a cat sat"
    with pytest.raises(FoveaError, match="already exists"):
        BehaviourLog.create(path)
    assert len(read_rows(path)) == 2


def test_a_torn_last_line_is_cut_on_reopen(tmp_path):
    path = tmp_path / "x_beh.tsv"
    log = BehaviourLog.create(path)
    log.append(_row(1))
    log.close()
    with open(path, "a") as f:
        f.write("01\t1\t2\tc\t0.5")  # a kill in the middle of a write
    assert len(read_rows(path)) == 1
    log = BehaviourLog.reopen(path)
    log.append(_row(2))
    log.close()
    assert [r["trial"] for r in read_rows(path)] == ["1", "2"]


def test_a_foreign_header_is_refused(tmp_path):
    path = tmp_path / "x_beh.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(FoveaError, match="header does not match"):
        BehaviourLog.reopen(path)


def test_a_session_started_before_a_kit_update_resumes(tmp_path):
    """A lab updates the kit while a session is interrupted; the new version added columns at
    the end: the resume keeps every logged row as it was, gives it ``n/a`` in the new columns
    and writes this version's header, so the rows appended next line up with it."""
    path = tmp_path / "x_beh.tsv"
    log = BehaviourLog.create(path)
    log.append(_row(1))
    log.close()
    old_columns = COLUMNS[:-2]  # as written before the last two columns existed
    lines = path.read_text().splitlines()
    older = ["\t".join(line.split("\t")[: len(old_columns)]) for line in lines]
    path.write_text("\n".join(older) + "\n")
    assert [r[COLUMNS[-1]] for r in read_rows(path)] == ["n/a"]  # readable as it is
    log = BehaviourLog.reopen(path)
    log.append(_row(2))
    log.close()
    upgraded = path.read_text().splitlines()
    assert upgraded[0].split("\t") == list(COLUMNS)
    assert upgraded[1].startswith(older[1] + "\t")  # the logged row, unchanged
    assert [r["trial"] for r in read_rows(path)] == ["1", "2"]


def test_a_header_shorter_than_the_pinned_columns_is_refused(tmp_path):
    path = tmp_path / "x_beh.tsv"
    path.write_text("participant\tsession\ttrial\n01\t1\t1\n")
    with pytest.raises(FoveaError, match="header does not match"):
        BehaviourLog.reopen(path)


def _samples(log: PhysioLog, trial, n=5, t0=0.0):
    for i in range(n):
        log.add(
            time_s=t0 + i / 60,
            x_deg=0.1 * i,
            y_deg=-0.1 * i,
            valid=i != 2,
            trial=trial,
            phase="fixation",
        )


def test_physio_blocks_survive_a_torn_member_and_later_trials_are_dropped(tmp_path):
    path = tmp_path / "p_physio.tsv.gz"
    log = PhysioLog.create(path)
    for trial in (1, 2, 3):
        _samples(log, trial, t0=trial)
        log.flush_block()
    log._file.close()
    complete = path.read_bytes()
    # A kill while writing the 4th block: half a gzip member at the end.
    _samples(log := PhysioLog(path), 4)
    payload = gzip.compress(b"x" * 1000)
    log._file.write(payload[: len(payload) // 2])
    log._file.close()
    # beh.tsv holds trials 1-2 only: trial 3's gaze goes too (it will run again).
    log = PhysioLog.reopen(path, last_trial=2)
    _samples(log, 3, t0=10.0)
    log.close()
    assert len(complete) > 0
    # Closed: one gzip member (the BIDS validator reads only the first).
    decoder = zlib.decompressobj(wbits=31)
    decoder.decompress(path.read_bytes())
    assert decoder.eof and decoder.unused_data == b""
    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=["t", "x", "y", "valid", "trial", "phase"],
        na_values="n/a",
    )
    assert frame["trial"].tolist() == [1] * 5 + [2] * 5 + [3] * 5
    assert frame["t"].iloc[-1] == pytest.approx(10.0 + 4 / 60, abs=1e-6)
    assert frame["x"].isna().sum() == 3  # invalid samples have no coordinates
    assert log.damaged_copy is None and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_damaged_physio_block_mid_file_loses_only_that_block_and_the_file_is_kept(tmp_path):
    path = tmp_path / "p_physio.tsv.gz"
    log = PhysioLog.create(path)
    offsets = []
    for trial in (1, 2, 3, 4):
        offsets.append(path.stat().st_size)
        _samples(log, trial, t0=trial)
        log.flush_block()
    log._file.close()
    found = bytearray(path.read_bytes())
    # Bit rot inside trial 2's block (a kill only ever tears the last block).
    middle = (offsets[1] + offsets[2]) // 2
    found[middle : middle + 8] = b"\x00" * 8
    path.write_bytes(bytes(found))
    backup = tmp_path / "sourcedata"
    log = PhysioLog.reopen(path, last_trial=4, backup_dir=backup)
    log.close()
    trials = pd.read_csv(path, sep="\t", header=None, na_values="n/a")[4].tolist()
    assert trials == [1] * 5 + [3] * 5 + [4] * 5  # trials 3 and 4 were not dropped with 2
    assert log.damaged_copy is not None and log.damaged_copy.parent == backup
    assert log.damaged_copy.read_bytes() == bytes(found)  # the file as found, for recovery


def test_physio_blocks_larger_than_the_decoders_chunk_keep_every_sample_in_order(tmp_path):
    """Blocks of noisy gaze, each compressing to more than the 64 KiB the repair decodes at a
    time, and a torn last block: every complete block's samples survive, in order (seed 5)."""
    rng = np.random.default_rng(5)
    path = tmp_path / "p_physio.tsv.gz"
    log = PhysioLog.create(path)
    for trial in (1, 2, 3):
        for i in range(8000):
            x, y = rng.normal(size=2)
            log.add(time_s=trial + i / 1000, x_deg=x, y_deg=y, valid=True, trial=trial, phase="s")
        log.flush_block()
    log._file.close()
    blocks = path.read_bytes()
    assert len(blocks) > 3 * 65536  # three blocks of about 90 KiB
    with path.open("ab") as f:
        f.write(gzip.compress(b"1.0\t0\t0\t1\t4\ts\n" * 9000)[:5000])  # a kill mid-block
    log = PhysioLog.reopen(path, last_trial=3)
    log.close()
    assert path.read_bytes() != blocks and log.damaged_copy is None
    assert gzip.decompress(path.read_bytes()) == gzip.decompress(blocks)


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from study.datalog.atomic import open_atomic

    path = tmp_path / "x_physio.tsv.gz"
    path.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        with open_atomic(path) as f:
            f.write(b"half of the new")
            raise OSError("disk full")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_json_is_replaced_atomically(tmp_path):
    path = tmp_path / "s.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2, "b": [1.5]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_json_is_strict_nan_becomes_null(tmp_path):
    path = tmp_path / "s.json"
    write_json_atomic(path, {"a": float("nan"), "b": [np.float64("inf"), 1.0], "c": np.int64(3)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": 3}


def test_temporaries_of_a_killed_atomic_write_are_removed_and_nothing_else(tmp_path):
    from study.datalog.atomic import remove_stale_temporaries

    kept = [tmp_path / "x_beh.json", tmp_path / "x_beh.tsv", tmp_path / ".bidsignore"]
    stale = [tmp_path / ".x_beh.json.tmp-123", tmp_path / ".x_physio.tsv.gz.tmp-9"]
    for path in kept + stale:
        path.write_text("{")
    assert remove_stale_temporaries(tmp_path) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_a_damaged_sidecar_is_one_clear_error_on_resume(tmp_path):
    from types import SimpleNamespace

    from study.session_setup import resumable_sidecar

    paths = SessionPaths(data_dir=tmp_path, participant="01", session="1", task="t")
    paths.beh_dir.mkdir(parents=True)
    config = SimpleNamespace(loaded=SimpleNamespace(sha256="0" * 64, path="p.toml"))
    for text, message in (('{"seed": 1, "proto', "not readable JSON"), ("[1]", "not a session")):
        paths.beh_json.write_text(text)
        with pytest.raises(FoveaError, match=message):
            resumable_sidecar(config, paths, scenes="pool")


def test_dataset_files_are_written_atomically(tmp_path, monkeypatch):
    import study.session_setup as session_setup

    written = []
    monkeypatch.setattr(session_setup, "write_atomic", lambda p, text: written.append(p.name))
    session_setup.ensure_dataset_files(tmp_path, participant="01")
    # never torn files that later runs keep
    assert written == ["README", ".bidsignore", "participants.tsv"]


def _sidecar(**overrides) -> dict:
    from protocol.session_data import beh_sidecar

    fields = dict(
        task="t",
        task_description="d",
        protocol_name="p",
        protocol_file=None,
        protocol_sha256="0" * 64,
        protocol_settings_sha256="1" * 64,
        protocol={},
        conditions={"c": {"level_variable": "strength"}},
        display={},
        image_size_px=(64, 64),
        patch_px=None,
        scenes=None,
        reference="original",
        observer="parametric",
        tracker="sim",
        seed=7,
        started_utc="2026-01-01T00:00:00Z",
        software_version="0",
    )
    fields.update(overrides)
    return beh_sidecar(**fields)


def test_every_column_is_described_at_the_sidecars_top_level_as_bids_says():
    """BIDS tabular files: each column is a top-level key of the sidecar holding its
    ``Description`` (``Units``, ``Levels``); a ``columns`` table is invisible to BIDS tools."""
    from protocol.session_data import COLUMN_TYPES, format_value

    sidecar = _sidecar()
    assert "columns" not in sidecar
    for name in COLUMNS:
        described = sidecar[name]
        assert isinstance(described, dict) and described["Description"], name
        assert set(described) <= {"Description", "Units", "Levels"}, name
        # units in every name that has one, and in its description
        for suffix, unit in (("_s", "s"), ("_deg", "deg")):
            if name.endswith(suffix):
                assert described.get("Units") == unit, name
        # the validator refuses a value missing from Levels: they are a column's allowed values
        allowed = COLUMN_TYPES[name].allowed
        if allowed is not None:
            assert set(described["Levels"]) == {format_value(v) for v in allowed}, name
    # the session-wide values named like columns keep their own keys
    assert (sidecar["session_seed"], sidecar["session_observer"]) == (7, "parametric")
    assert sidecar["session_reference"] == "original"
    assert sidecar["session_level_variable"] == "strength"


def test_sidecars_of_the_older_layout_read_and_upgrade():
    from protocol.session_data import session_field, upgrade_sidecar

    new = _sidecar()
    old = {"seed": 7, "observer": "human", "reference": "original", "columns": {"rt_s": "s"}}
    assert [session_field(s, "seed") for s in (new, old)] == [7, 7]
    assert session_field(old, "observer") == "human"
    assert session_field({}, "observer", "human") == "human"
    upgrade_sidecar(old)
    assert "columns" not in old and old["session_seed"] == 7 and old["session_observer"] == "human"
    assert old["seed"]["Description"] and old["rt_s"]["Units"] == "s"
    assert session_field(old, "reference") == "original"
    assert upgrade_sidecar(dict(new)) == new


def test_every_abort_reason_the_trial_loop_writes_has_a_level():
    """``abort_reason`` Levels are complete (the validator refuses any other value): every
    reason the trial code gives is listed."""
    import re
    from pathlib import Path

    from protocol.session_data import ABORT_REASONS

    trial_code = Path(__file__).resolve().parents[2] / "study" / "trial"
    written = set()
    for path in trial_code.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        written |= set(re.findall(r'TrialAborted\("(\w+)"\)', text))
        written |= set(re.findall(r'\["abort_reason"\] = "(\w+)"', text))
    assert written and written <= set(ABORT_REASONS), written - set(ABORT_REASONS)


@pytest.mark.parametrize(
    "on_disk",
    [
        b"participant\tsession\ttri",  # a power cut while the header was written
        b"participant\tsession\ttrial\n",  # the header of an older version, no trial logged
    ],
)
def test_a_log_without_a_complete_row_starts_afresh_on_reopen(tmp_path, on_disk):
    """Nothing was logged yet, so nothing can be lost: the resume writes this version's header
    (it refused the first time, and only a second try went on)."""
    path = tmp_path / "x_beh.tsv"
    path.write_bytes(on_disk)
    log = BehaviourLog.reopen(path)
    log.append(_row(1))
    log.close()
    assert path.read_text().splitlines()[0].split("\t") == list(COLUMNS)
    assert [r["trial"] for r in read_rows(path)] == ["1"]


def test_participants_tsv_lists_each_participant_once_and_keeps_the_labs_columns(tmp_path):
    """BIDS ``participants.tsv``: one row per participant, however many sessions; the lab's own
    columns (age, ...) and line endings are kept, a new participant gets ``n/a`` in them."""
    from study.session_setup import ensure_dataset_files

    table = tmp_path / "participants.tsv"
    (tmp_path / "sub-00" / "ses-1").mkdir(parents=True)  # recorded before the table existed
    ensure_dataset_files(tmp_path, participant="01")
    ensure_dataset_files(tmp_path, participant="01")  # its second session
    assert table.read_text() == "participant_id\nsub-00\nsub-01\n"
    described = json.loads((tmp_path / "participants.json").read_text())
    assert described["participant_id"]["Description"]
    table.write_bytes(b"participant_id\tage\r\nsub-01\t31")  # edited in a spreadsheet
    ensure_dataset_files(tmp_path, participant="02")
    ensure_dataset_files(tmp_path, participant="01")
    ensure_dataset_files(tmp_path, participant="02")
    assert table.read_bytes() == b"participant_id\tage\r\nsub-01\t31\r\nsub-02\tn/a\r\n"
    table.write_text("subject\nS1\n")  # not a participants table: left alone, with a note
    note = ensure_dataset_files(tmp_path, participant="03")
    assert table.read_text() == "subject\nS1\n"
    assert note == (  # before: left alone without a word
        f"note: {table} was left as it is and does not list sub-03: its first column is "
        "'subject', and BIDS wants participant_id first (add the row yourself, or rename the "
        "column)"
    )
    table.write_text("")  # emptied: a new table (it was left empty, listing no one)
    assert ensure_dataset_files(tmp_path, participant="03") == ""
    assert table.read_text() == "participant_id\nsub-00\nsub-03\n"  # sub-00 has a folder


def test_participants_tsv_saved_by_a_spreadsheet_gets_the_new_participant(tmp_path):
    """A table a spreadsheet saved as UTF-8 starts with a byte order mark: the new participant is
    still added (it was left out as 'not a participants table', and the BIDS validator then
    reports its folder); one saved in another encoding is refused in one line, before any of
    the session's files is written (it raised UnicodeDecodeError)."""
    from study.session_setup import ensure_dataset_files

    table = tmp_path / "participants.tsv"
    table.write_bytes(b"\xef\xbb\xbfparticipant_id\tage\r\nsub-01\t23\r\n")
    ensure_dataset_files(tmp_path, participant="02")
    assert table.read_bytes() == (
        b"\xef\xbb\xbfparticipant_id\tage\r\nsub-01\t23\r\nsub-02\tn/a\r\n"
    )
    table.write_bytes(b"participant_id\tsite\nsub-01\tK\xf6ln\n")  # cp1252
    with pytest.raises(FoveaError, match=r"participants.tsv is not UTF-8 text .* save it as UTF-8"):
        ensure_dataset_files(tmp_path, participant="03")
    assert table.read_bytes() == b"participant_id\tsite\nsub-01\tK\xf6ln\n"


def test_participants_tsv_is_rewritten_by_one_session_at_a_time(tmp_path):
    """Two rigs starting sessions in one data folder at once: the second waits for the first's
    rewrite (it would read the table before the first's row was in and write it back without)."""
    import threading

    from generator.process_lock import ProcessLock
    from study.session_setup import PARTICIPANTS_LOCK, add_participant

    table = tmp_path / "participants.tsv"
    add_participant(tmp_path, "01")
    other = ProcessLock(tmp_path / PARTICIPANTS_LOCK, what="the other rig's rewrite").acquire()
    adding = threading.Thread(target=add_participant, args=(tmp_path, "02"))
    adding.start()
    adding.join(timeout=0.5)
    assert adding.is_alive() and table.read_text() == "participant_id\nsub-01\n"
    table.write_text("participant_id\nsub-01\nsub-03\n")  # the other rig's row
    other.release()
    adding.join(timeout=10)
    assert not adding.is_alive()
    assert table.read_text() == "participant_id\nsub-01\nsub-03\nsub-02\n"
    held = ProcessLock(tmp_path / PARTICIPANTS_LOCK, what="x").acquire()
    with pytest.raises(FoveaError, match="participants.tsv of"):
        ProcessLock(
            tmp_path / PARTICIPANTS_LOCK, what=f"participants.tsv of {tmp_path}", wait_s=0.1
        ).acquire()
    held.release()


def test_a_session_says_when_participants_tsv_is_not_the_kits(virtual_x, tmp_path):
    """A real simulated session into a data folder whose participants.tsv is the lab's own table
    (first column 'subject'): the table is kept and the experimenter told that the participant
    is not listed (before: not a word, and the BIDS validator later reported the folder)."""
    from study.session import run_session
    from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

    data = tmp_path / "data"
    data.mkdir()
    (data / "participants.tsv").write_text("subject\tage\nS1\t30\n")
    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "p.toml")
    lines: list[str] = []
    result = run_session(simulated_session(protocol, data), log=lines.append)
    assert result.completed
    assert (data / "participants.tsv").read_text() == "subject\tage\nS1\t30\n"
    notes = [line for line in lines if "participants.tsv" in line]
    assert notes == [
        f"note: {data / 'participants.tsv'} was left as it is and does not list sub-sim01: its "
        "first column is 'subject', and BIDS wants participant_id first (add the row yourself, "
        "or rename the column)"
    ]
