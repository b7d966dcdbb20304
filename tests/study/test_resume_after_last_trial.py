"""A session killed after its last trial was logged but before its end records (the window's
cleanup): ``--resume`` writes them instead of only marking the sidecar complete. The gaze file
left as one gzip member per trial with a torn last member becomes one clean member, the events
file and the timing report are written, and the run record says what the resume did."""

from __future__ import annotations

import dataclasses
import gzip
import json
import zlib

import pytest

from generator.errors import FoveaError
from protocol.session_data import read_rows
from study.session import run_session
from study.session_finish import FINISHED_STATUS
from study.session_setup import ABRUPT_END
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def _as_killed_after_the_last_trial(paths) -> list[str]:
    """Put a completed session's files back as a kill right after its last row leaves them;
    returns the gaze lines the kill would keep."""
    lines = gzip.decompress(paths.physio_tsv_gz.read_bytes()).decode().splitlines()
    members = [gzip.compress((line + "\n").encode(), mtime=0) for line in lines]
    torn = gzip.compress(b"1.0\t0.0\t0.0\t1\tn/a\tgoodbye\n", mtime=0)[:12]
    paths.physio_tsv_gz.write_bytes(b"".join(members) + torn)
    for path in (paths.events_tsv, paths.events_json, paths.timing_json):
        path.unlink()
    sidecar = json.loads(paths.beh_json.read_text())
    sidecar["completed"] = False
    sidecar.pop("procedure_estimates")
    for key in ("status", "ended_utc"):
        sidecar["runs"][-1].pop(key)
    paths.beh_json.write_text(json.dumps(sidecar))
    return lines


def test_resume_writes_the_end_records_of_a_fully_logged_session(virtual_x, tmp_path):
    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data")
    first = run_session(config)
    assert first.completed
    paths = first.paths
    rows = read_rows(paths.beh_tsv)
    lines = _as_killed_after_the_last_trial(paths)

    resumed = run_session(dataclasses.replace(config, resume=True))

    assert resumed.completed and resumed.n_rows == len(rows)
    data = paths.physio_tsv_gz.read_bytes()
    assert gzip.decompress(data).decode().splitlines() == lines  # the torn member cut off
    assert _members(data) == 1  # the BIDS validator reads only the first member
    events = paths.events_tsv.read_text().splitlines()
    shown = sum(r[c] != "n/a" for r in rows for c in ("onset_s", "onset2_s"))
    assert len(events) == 1 + shown
    assert json.loads(paths.events_json.read_text())["StimulusPresentation"]
    assert json.loads(paths.timing_json.read_text())["trials"] == len(rows)
    sidecar = json.loads(paths.beh_json.read_text())
    assert sidecar["completed"] and sidecar["procedure_estimates"]
    assert sidecar["runs"][-1]["status"] == FINISHED_STATUS
    assert sidecar["runs"][0]["status"] == ABRUPT_END  # the killed run wrote no status
    assert "physio_damaged_copy" not in sidecar["runs"][-1]  # a torn end is no damage
    assert sidecar["runs"][-1]["first_trial"] == len(rows) + 1
    assert read_rows(paths.beh_tsv) == rows  # the trial log untouched
    # Another seed is refused, in the words the user gave it.
    with pytest.raises(
        FoveaError,
        match=r"^--seed 4 differs from the session's seed 3; resume without --seed \(a resume "
        r"keeps the session's seed\)$",
    ):  # before: "resume with the seed the session started with", a number no one typed
        run_session(dataclasses.replace(config, resume=True, seed=4))
    simulated = dataclasses.replace(
        config, resume=True, seed=4, seed_source="--seed 2 (participant seed 4)"
    )
    with pytest.raises(FoveaError, match=r"^--seed 2 \(participant seed 4\) differs"):
        run_session(simulated)


def _members(data: bytes) -> int:
    count, offset = 0, 0
    while offset < len(data):
        decoder = zlib.decompressobj(wbits=31)
        decoder.decompress(data[offset:])
        assert decoder.eof
        offset = len(data) - len(decoder.unused_data)
        count += 1
    return count
