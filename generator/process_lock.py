"""One process at a time: an exclusive lock held while a session runs or a model trains.

Two runs of the same participant and session (two terminals, a double start, ``--resume``
twice) would both append to ``beh.tsv``, each from its own replay, so every trial after the
resume point would be logged twice (``sourcedata/sub-<p>/ses-<s>/session.lock``); two trainings
into one folder would overwrite each other's checkpoints (``OUT/train.lock``). The lock is an OS
file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows): the system releases it when the
process ends in any way (``kill -9`` included), so a killed run never leaves a stale lock
behind, and the file itself is never trusted for anything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from generator.errors import FoveaError


class ProcessLock:
    """Hold ``path``'s lock from ``acquire`` to ``release`` (or the ``with`` block).

    Args:
        path: the lock file (made with its folder).
        what: what it guards, for the message (``session sub-01/ses-1``).
        wait_s: how long ``acquire`` waits for another holder to let go (0: not at all; a
            few seconds for locks held only while a small file is rewritten).
        then: what to do once the other process has ended, for the message.

    Raises:
        FoveaError: another process holds it (``acquire``) for longer than ``wait_s``.
    """

    def __init__(
        self, path: Path, *, what: str, wait_s: float = 0.0, then: str = "run the command again"
    ) -> None:
        self.path = path
        self.what = what
        self.wait_s = wait_s
        self.then = then
        self._fd: int | None = None

    def acquire(self) -> ProcessLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                _lock(fd)
                break
            except OSError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                os.close(fd)
                raise FoveaError(
                    f"{self.what} is in use by another running fovea process (lock {self.path}); "
                    f"wait for it to end or stop it, then {self.then}"
                ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ProcessLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


if os.name == "nt":  # pragma: no cover - the lab's Windows machines
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
