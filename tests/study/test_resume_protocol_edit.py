"""Resuming with an edited protocol file: an edit that changes no setting (a comment, CRLF line
endings after a copy through Windows) is accepted and recorded; a changed setting is refused,
naming the setting (tiny model, simulated participant, real PsychoPy window)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from protocol.identity import settings_differences
from protocol.session_data import read_rows
from study.session import run_session
from study.session_finish import CLOSED_STATUS
from tests.study.conftest import (
    simulated_session,
    small_protocol_dict,
    stop_with_a_full_disk_at_trial_3,
    write_toml,
)

pytestmark = pytest.mark.display


def test_a_comment_and_crlf_line_endings_do_not_stop_a_resume(virtual_x, tmp_path, monkeypatch):
    path = write_toml(small_protocol_dict(method="constant", trials=4), tmp_path / "p.toml")
    config = simulated_session(path, tmp_path / "data")
    started_with = config.loaded.sha256
    stop_with_a_full_disk_at_trial_3(config, monkeypatch)

    text = path.read_text(encoding="utf-8")
    path.write_bytes(("# pilot, room 2\n" + text).replace("\n", "\r\n").encode("utf-8"))
    edited = load_protocol(path)
    assert edited.sha256 != started_with
    assert edited.settings_sha256 == config.loaded.settings_sha256
    said = []
    result = run_session(
        dataclasses.replace(config, loaded=edited, resume=True, quiet=False), log=said.append
    )
    accepted = f"{path} changed since the session started, but none of its settings did"
    assert any(line.startswith(accepted) for line in said), said

    assert result.completed
    rows = read_rows(result.paths.beh_tsv)
    assert [r["trial"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    sidecar = json.loads(result.paths.beh_json.read_text(encoding="utf-8"))
    assert sidecar["protocol_sha256"] == edited.sha256
    assert sidecar["protocol_sha256_earlier"] == [started_with]
    assert sidecar["protocol_settings_sha256"] == edited.settings_sha256

    # A changed setting is refused, and the message names it with both values.
    data = small_protocol_dict(method="constant", trials=5)
    changed = load_protocol(write_toml(data, path))
    with pytest.raises(FoveaError) as info:
        run_session(dataclasses.replace(config, loaded=changed, resume=True))
    message = str(info.value)
    assert "settings changed: procedure.trials_per_condition: 4 -> 5" in message
    assert "start a new session" in message


def test_settings_differences_name_each_changed_field_in_order():
    old = {"name": "a", "trials": {"n": 4}, "conditions": [{"x": 1}, {"x": 2}]}
    new = {"name": "a", "trials": {"n": 4, "m": True}, "conditions": [{"x": 1}, {"x": 3.0}]}
    assert settings_differences(old, new) == [
        "trials.m: (not set) -> true",
        "conditions[1].x: 2 -> 3.0",
    ]
    assert settings_differences(old, old) == []
    many = {f"k{i}": i for i in range(9)}
    assert len(settings_differences(many, {}, limit=3)) == 3


def test_close_after_a_settings_edit_uses_the_protocol_the_session_started_with(
    virtual_x, tmp_path, monkeypatch
):
    """--close writes a stopped session's end records; no trial runs. After the protocol file was
    edited for later participants (more trials, a new goodbye text) it was refused as a resume
    is, and the lab had to restore the old file. It now closes with the protocol recorded in
    beh.json (its replay and end records need the session's own settings) and says so; a
    recorded protocol that no longer validates here is refused, naming the edit."""
    path = write_toml(small_protocol_dict(method="constant", trials=4), tmp_path / "p.toml")
    config = simulated_session(path, tmp_path / "data")
    stop_with_a_full_disk_at_trial_3(config, monkeypatch)
    data = small_protocol_dict(method="constant", trials=5)
    data["instructions"] = {"goodbye": "Thank you, that is all."}
    edited = load_protocol(write_toml(data, path))
    said: list[str] = []
    shots = tmp_path / "shots"  # --close --screenshots made this folder and left it empty
    closing = dataclasses.replace(
        config, loaded=edited, resume=True, close=True, quiet=False, screenshots_dir=shots
    )
    result = run_session(closing, log=said.append)
    assert not result.completed and result.status.startswith("closed incomplete: 2 of ")
    assert not shots.exists()  # no window, no screenshots
    assert any(
        line.startswith(
            f"{path} has changed since the session started (procedure.trials_per_condition: "
            "4 -> 5; instructions.goodbye: "
        )
        and line.endswith(
            "closing it with the protocol it started with, as its beh.json records it"
        )
        for line in said
    ), said
    sidecar = json.loads(result.paths.beh_json.read_text(encoding="utf-8"))
    assert sidecar["protocol_sha256"] == config.loaded.sha256  # the session's, not the edit's
    assert sidecar["runs"][-1]["status"] == CLOSED_STATUS

    # A recorded protocol that does not validate here (its model folder moved) is refused.
    sidecar["protocol"]["stimulus"]["model"] = str(tmp_path / "moved-model")
    result.paths.beh_json.write_text(json.dumps(sidecar), encoding="utf-8")
    with pytest.raises(FoveaError) as info:
        run_session(closing)
    message = str(info.value)
    assert message.startswith(f"{path} differs from the protocol this session started with")
    assert "the protocol recorded in the session's beh.json" in message
    assert message.endswith("close it with the protocol file as it was")
