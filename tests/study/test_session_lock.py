"""One process per session: a second run of a running session is refused before it writes
anything, and a killed run (``kill -9``) leaves no stale lock."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from generator.errors import FoveaError
from study.datalog import SessionLock, SessionPaths
from study.session import SessionConfig, run_session
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml


def _config(tmp_path, *, resume: bool) -> SessionConfig:
    protocol = write_toml(small_protocol_dict(), tmp_path / "p.toml")
    return simulated_session(
        protocol, tmp_path / "data", participant="01", seed=None, resume=resume, new_if_missing=True
    )


def _paths(config: SessionConfig) -> SessionPaths:
    return SessionPaths(
        data_dir=config.data_dir, participant="01", session="1", task=config.loaded.protocol.task
    )


@pytest.mark.parametrize("resume", [False, True])
def test_a_session_running_in_another_process_is_refused(tmp_path, resume):
    config = _config(tmp_path, resume=resume)
    paths = _paths(config)
    with SessionLock(paths.lock_file, what="the other run"):
        with pytest.raises(FoveaError, match="in use by another running fovea process") as error:
            run_session(config)
    assert not paths.exists()  # nothing of the session was written
    # Before: "then continue with --resume", for --close and for training folders too.
    assert str(error.value).endswith(
        "then run the same command again (with --resume to continue a session it left unfinished)"
    )


def test_the_lock_is_free_again_after_its_holder_was_killed(tmp_path):
    lock = tmp_path / "sourcedata" / "session.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from study.datalog import SessionLock; "
            f"SessionLock(Path({str(lock)!r}), what='x').acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FoveaError, match="in use"):
            SessionLock(lock, what="x").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with SessionLock(lock, what="x"):  # no stale lock after kill -9
        pass
