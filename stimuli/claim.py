"""A set folder claimed by the protocol being built into it (``fovea stimuli build``).

A folder holds one protocol's set (``stimuli.build._check_no_other_protocols_set``), but that
check reads the manifests at start: two builds of different protocols started together both
passed it and left a mixed folder. Each build now holds a claim while it runs: a file
``.build-<protocol name>.<pid>-<token>.lock`` in the folder, locked by its process
(``generator.process_lock``: the system releases it however the process ends, so a killed build
leaves no claim in force). A build finding another protocol's claim locked is refused; claims of
the same protocol (its shards, under ``accelerate launch`` or on several machines) coexist, as
before. Claiming is serialized by a short-held folder lock (``.claim.lock``), so of two builds
started at once exactly the first claims the folder.

A build that fails or is stopped before it stored anything leaves the place as it found it: the
folders it made and the claim lock it made are removed (an empty folder holding only
``.claim.lock`` looked like a set). Anything else in the folder, images above all, stays.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from generator.errors import FoveaError
from generator.process_lock import ProcessLock

#: The lock held while a build looks at the folder's claims and adds its own.
CLAIM_MUTEX = ".claim.lock"
_PREFIX = ".build-"
_SUFFIX = ".lock"


class FolderClaim:
    """This build's claim on ``directory`` for protocol ``name`` (``claim_set_folder``)."""

    def __init__(self, lock: ProcessLock, *, made: list[Path], made_mutex: bool) -> None:
        self._lock = lock
        self._made = made  # the folders the claim made, the set folder first
        self._made_mutex = made_mutex

    def release(self) -> None:
        self._lock.release()
        try:
            self._lock.path.unlink(missing_ok=True)
        except OSError:  # another build removing it as stale (Windows): it is no claim now
            pass

    def __enter__(self) -> FolderClaim:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.release()
        if exc_type is not None:
            self._leave_as_found()

    def _leave_as_found(self) -> None:
        """After a failed build: when the set folder holds nothing but the claim lock this
        build made, remove that lock and the folders this build made (under the lock, so no
        build is claiming the folder meanwhile: ``_acquire_waiting`` retries a removed lock)."""
        directory = self._lock.path.parent
        if not self._made_mutex or not directory.is_dir():
            return
        try:
            mutex = _acquire_waiting(directory / CLAIM_MUTEX, what=str(directory), wait_s=1.0)
        except FoveaError:
            return  # another build is claiming it: the folder is its now
        try:
            if [p.name for p in directory.iterdir()] != [CLAIM_MUTEX]:
                return
            mutex.path.unlink()
        except OSError:  # the build's own error is the one to report
            return
        finally:
            mutex.release()
        for folder in self._made:
            try:
                folder.rmdir()
            except OSError:  # not empty (another build began in it) or not ours to remove
                return


def claim_set_folder(directory: Path, name: str, *, wait_s: float = 30.0) -> FolderClaim:
    """Claim ``directory`` (made if missing) for protocol ``name`` until the claim's release.

    Raises:
        FoveaError: a running build of another protocol holds a claim on the folder (the
            message names it), or the folder's claim lock stayed busy for ``wait_s``.
    """
    if directory.exists() and not directory.is_dir():
        raise FoveaError(f"{directory} is a file: give the set's folder (--out DIR)")
    made = [d for d in (directory, *directory.parents) if not d.exists()]
    made_mutex = not (directory / CLAIM_MUTEX).exists()
    directory.mkdir(parents=True, exist_ok=True)
    mutex = _acquire_waiting(directory / CLAIM_MUTEX, what=f"set folder {directory}", wait_s=wait_s)
    try:
        for path in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}")):
            other = path.name[len(_PREFIX) :].split(".", 1)[0]
            if other == name:
                continue  # the same protocol: its shards build together
            probe = ProcessLock(path, what=str(path))
            try:
                probe.acquire()
            except FoveaError:
                raise FoveaError(
                    f"{directory} is in use by a running build of protocol {other!r}; a set "
                    f"folder holds one protocol's set: give --out another folder for {name!r} "
                    "(or wait until that build ends)"
                ) from None
            probe.release()  # its build ended without removing its claim (killed)
            path.unlink(missing_ok=True)
        own = directory / f"{_PREFIX}{name}.{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        lock = ProcessLock(own, what=f"set folder {directory}").acquire()
        return FolderClaim(lock, made=made, made_mutex=made_mutex)
    finally:
        mutex.release()


def _acquire_waiting(path: Path, *, what: str, wait_s: float) -> ProcessLock:
    """``path``'s lock, waited for (others hold it for a moment only)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lock = ProcessLock(path, what=what).acquire()
        except FoveaError:
            if time.monotonic() >= deadline:
                raise FoveaError(
                    f"{what}: its claim lock {path} stayed busy for {wait_s:.0f} s; try again"
                ) from None
            time.sleep(0.05)
            continue
        if path.exists():
            return lock
        lock.release()  # removed by a failed build while we waited (``FolderClaim``): anew


def running_builds(directory: Path) -> list[str]:
    """The protocols whose builds hold a claim on ``directory`` now (a killed build's claim
    file is no claim: its lock is free)."""
    names = []
    for path in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}")):
        probe = ProcessLock(path, what=str(path))
        try:
            probe.acquire()
        except FoveaError:
            names.append(path.name[len(_PREFIX) :].split(".", 1)[0])
            continue
        except OSError:  # not ours to open (a read-only copy): no build writes there
            continue
        probe.release()
    return names
