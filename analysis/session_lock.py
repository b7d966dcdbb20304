"""Whether a session is being recorded right now: a run of it (``fovea run`` or ``fovea
simulate``) holds the session's lock (``study.datalog.paths.SessionPaths.lock_file``) for as
long as it goes on, and the system lets go of it when the run ends in any way.

The probe takes the lock and lets go at once (a lock file cannot be asked who holds it); a
lock file that is not there is never created.
"""

from __future__ import annotations

from pathlib import Path

from generator.errors import FoveaError
from generator.process_lock import ProcessLock
from study.datalog.paths import SessionPaths


def lock_path(data_dir: Path, participant: str, session: str, task: str) -> Path | None:
    """The session's lock file, or None for labels a session run never has (not BIDS)."""
    try:
        return SessionPaths(Path(data_dir), participant, session, task).lock_file
    except FoveaError:
        return None


def is_running(data_dir: Path, participant: str, session: str, task: str) -> bool:
    """True while a run of the session holds its lock."""
    path = lock_path(data_dir, participant, session, task)
    if path is None or not path.is_file():
        return False
    lock = ProcessLock(path, what="")
    try:
        lock.acquire()
    except FoveaError:
        return True
    except OSError:  # a read-only copy of the data: nobody records into it
        return False
    lock.release()
    return False
