"""Ending an EyeLink session the way SR Research's templates do, each step on its own.

``terminate_task`` in SR's PsychoPy template: if the link is up, stop recording, go offline,
clear the Host screen, close the data file, receive it; then close the link. Here every step
has its own ``try``, so a failure (a lost link, a tracker that already stopped) still lets the
later steps save what they can; ``close_steps`` records how each went. The local copy never
replaces an existing file.

A transfer counts only when ``receiveDataFile`` returns the file's size (> 0): SR's API returns
0 when the transfer was cancelled and a negative code for an error (-1 ... -6), and the partial
file is then removed (the Host PC keeps the whole file; a resume fetches it). A received file is
fsynced and renamed into place, then its folder fsynced, before anyone records it.

Mixed into ``EyeLinkTracker``; uses its ``el``, ``_pylink``, ``edf_name``, ``recording``,
``is_connected``, ``_command`` and ``_connect``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from generator.atomic import fsync_dir
from study.trackers.base import finite_or_none
from study.trackers.edf import unused_path, validate_edf_name
from study.trackers.eyelink_config import clock_offset_ms
from study.trackers.link_samples import import_pylink

log = logging.getLogger(__name__)


class TerminateMixin:
    """``close`` (SR's terminate sequence), ``fetch_host_file`` (resume), a transfer-only link
    (``connect_for_transfer`` / ``disconnect``) and ``report``."""

    close_steps: dict[str, str]
    local_edf: Path | None = None

    def _step(self, name: str, action) -> bool:
        try:
            action()
        except Exception as error:  # noqa: BLE001 - every step is tried; the failure is kept
            self.close_steps[name] = f"failed: {error}"
            log.error("EyeLink %s failed: %s", name, error)
            return False
        self.close_steps[name] = "ok"
        return True

    def close(self, *, dest_dir: Path, local_name: str | None = None) -> Path | None:
        """Stop recording, go offline, close the EDF and copy it into ``dest_dir``.

        Args:
            dest_dir: folder of the local copy (created).
            local_name: the copy's file name (``edf.local_edf_name``: participant, session,
                run); default ``<edf_name>.EDF``. An existing file is never replaced: the copy
                then gets ``_2``, ``_3``, ... (``edf.unused_path``).

        Returns:
            The local EDF path, or None when nothing could be received (the file stays on the
            Host PC under ``edf_name``; ``fetch_host_file`` gets it later). ``close_steps``
            says which step failed.
        """
        if self.el is None:
            return None
        el, pylink = self.el, self._pylink
        self.close_steps = {}
        self.local_edf = None
        try:
            connected = self.is_connected()
            self.close_steps["isConnected"] = "ok" if connected else "failed: link down"
            if not connected:
                # close_steps and the caller's message report it (the console said it 3 times)
                log.info("EyeLink link down: %s.EDF stays on the Host PC", self.edf_name)
                return None
            if self.recording or self._host_recording():
                self._step("stopRecording", lambda: (pylink.pumpDelay(100), el.stopRecording()))
                self.recording = False
            self._step("setOfflineMode", el.setOfflineMode)
            self._step("clear_screen", lambda: self._command("clear_screen 0"))
            pylink.msecDelay(500)
            if not self._step("closeDataFile", el.closeDataFile):
                return None
            dest_dir = Path(dest_dir)
            dest_dir.mkdir(parents=True, exist_ok=True)
            target = unused_path(dest_dir / (local_name or f"{self.edf_name}.EDF"))
            self.local_edf = self._receive(f"{self.edf_name}.EDF", target)
            return self.local_edf
        finally:
            self._step("close", el.close)
            pylink.closeGraphics()
            self.el = None

    def _host_recording(self) -> bool:
        try:
            return self.el.isRecording() == self._pylink.TRIAL_OK
        except RuntimeError:
            return False

    def _receive(self, host_file: str, target: Path) -> Path | None:
        """Receive ``host_file`` into ``target`` through a partial file, renamed only after a
        complete transfer (a size > 0) and made durable (file, then folder, fsynced); None
        when the transfer failed, was cancelled (0) or returned an error code (< 0)."""
        partial = target.with_name(target.name + ".part")
        # A .part left by a transfer that was killed (Ctrl-C, power) must go first: pylink
        # never replaces a local file, it writes to another name, and the old .part would
        # then be taken for the copy.
        partial.unlink(missing_ok=True)
        size = None

        def receive():
            nonlocal size
            size = self.el.receiveDataFile(host_file, str(partial))

        if not self._step("receiveDataFile", receive):
            partial.unlink(missing_ok=True)
            return None
        complete = isinstance(size, int) and not isinstance(size, bool) and size > 0
        if not complete or not partial.exists():
            why = "cancelled (code 0)" if size == 0 else f"code {size}"
            self.close_steps["receiveDataFile"] = f"failed: {why}"
            # close_steps keeps it; the session's warning names the file and the fetch command
            log.info("EDF transfer of %s failed (%s); it stays on the Host PC", host_file, why)
            partial.unlink(missing_ok=True)  # a cut copy: the Host PC keeps the whole file
            return None
        if not self._step("saveDataFile", lambda: _commit(partial, target)):
            return None
        return target

    def fetch_host_file(self, host_name: str, *, dest: Path) -> Path | None:
        """Copy an earlier run's file ``<host_name>.EDF`` from the Host PC (a resumed session
        first fetches the files its earlier runs could not receive).

        Args:
            host_name: the Host PC name (8-character rule), without extension.
            dest: the local path wanted; an existing file is not replaced (``_2``, ...).

        Returns:
            The local path, or None when the Host PC has no such file or the transfer failed
            (``close_steps["receiveDataFile"]`` says why).
        """
        self._require_open()
        validate_edf_name(host_name)
        self.close_steps = getattr(self, "close_steps", {})
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        return self._receive(f"{host_name}.EDF", unused_path(Path(dest)))

    def connect_for_transfer(self, *, session_dir: Path) -> None:
        """Connect to the Host PC only to fetch files (no data file, no window, no recording):
        a ``--resume`` of a completed session whose runs lack their EDF. ``disconnect`` ends it.

        Raises:
            FoveaError: the tracker cannot be reached.
        """
        if self._pylink is None:
            self._pylink = import_pylink()
        self.session_dir = Path(session_dir)
        self.close_steps = {}
        self.el = self._connect()
        self._step("setOfflineMode", self.el.setOfflineMode)

    def disconnect(self) -> None:
        """Close a link opened by ``connect_for_transfer``."""
        if self.el is not None:
            self._step("close", self.el.close)
            self.el = None

    def report(self) -> dict:
        """What the tracker did, as strict JSON (None for missing numbers): for the sidecar."""
        return {
            "tracker": self.name,
            "edf_host_name": self.edf_name,
            "local_edf": self.local_edf.name if self.local_edf is not None else None,
            "recorded_eye": self.recorded_eye,
            "requested_eye": self.settings.eye,
            "sampling_rate_hz": finite_or_none(self.sampling_rate_hz),
            "requested_sampling_rate_hz": float(self.settings.sampling_rate_hz),
            "refused_commands": list(self.refused_commands),
            "calibrations": [c.to_json() for c in self.calibrations],
            "drift_checks": [d.to_json() for d in self.drift_checks],
            "close_steps": dict(getattr(self, "close_steps", {})),
            "clock_offset_ms": clock_offset_ms(self) if self.el is not None else None,
        }


def _commit(partial: Path, target: Path) -> None:
    """Make a received file durable under its final name: fsync it, rename it, fsync the folder
    (the sidecar that names it is written after this)."""
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    fsync_dir(target.parent)
