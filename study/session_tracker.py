"""A session's tracker files and records: the Host PC EDF name of each run, the local copies under
``sourcedata/``, the fetch of earlier runs' files on a resume, SR's terminate sequence, the
calibrations in the sidecar, and the pause screen after a lost link.

Used by ``study.session_window.SessionRun``; works with every tracker kind (the simulated one has
no EDF, no ``report`` and no ``calibrations`` list: what it lacks is skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from study.datalog import SessionPaths, physio_sidecar, write_json_atomic
from study.trackers.base import TrackerLinkLost
from study.trackers.edf import host_edf_name, local_edf_name

#: Tracker kinds whose Host PC keeps an EDF file (dummy mode stores nothing).
EDF_KINDS = ("eyelink", "eyelink-emulated")

RECORDING_STOPPED_TEXT = (
    "The eye tracker stopped recording; the trial will be repeated.\n\n"
    "Operator: check the Host PC, then press space to record again."
)
RESUME_HINT = "everything up to the last completed trial is saved; continue with --resume"
LINK_LOST_TEXT = (
    "The link to the eye tracker is lost.\n\n"
    "Everything up to trial {trial} is saved.\n\n"
    "Operator: reconnect the cable or restart the Host PC, then press R to reconnect; "
    "press Q to end the session now and continue it later with --resume."
)


class SessionTrackerFiles:
    """The EDF names, copies and records of one run of a session.

    Args:
        paths: the session's paths (EDF copies go to ``paths.eyetrack_dir``, under
            ``sourcedata/``).
        sidecar: the ``beh.json`` sidecar (its ``runs`` and ``calibration`` are updated).
        run_record: this run's record (the last of ``sidecar["runs"]``).
        prefix: the protocol's ``edf_prefix``.
        write_sidecar: writes the sidecar to disk (atomically).
    """

    def __init__(
        self,
        *,
        paths: SessionPaths,
        sidecar: dict,
        run_record: dict,
        prefix: str,
        write_sidecar: Callable[[], None],
    ) -> None:
        self.paths = paths
        self.sidecar = sidecar
        self.run_record = run_record
        self.prefix = prefix
        self.write_sidecar = write_sidecar
        self.run = len(sidecar.get("runs", []))  # 1-based: this run is the last one
        self._calibrations_before = [
            c for c in sidecar.get("calibration", []) if c.get("run") != self.run
        ]
        self._own_results: list[dict] = []

    # ------------------------------------------------------------------ EDF
    def name_run(self) -> str:
        """This run's Host PC EDF name (unique per session and run) and its local copy's name,
        stored in the run record and written to disk before the tracker opens the file."""
        p = self.paths
        host = host_edf_name(
            self.prefix, session_key=f"sub-{p.participant}/ses-{p.session}", run=self.run
        )
        self.run_record["run"] = self.run
        self.run_record["edf_name"] = host
        self.run_record["edf_local_name"] = local_edf_name(
            participant=p.participant, session=p.session, run=self.run, host_name=host
        )
        self.write_sidecar()
        return host

    def fetch_earlier_runs(self, tracker) -> list[str]:
        """On a resume: copy the Host PC files of earlier runs that were never received (their
        run ended with the link down). Returns the local names fetched."""
        if getattr(tracker, "name", None) not in EDF_KINDS:
            return []
        fetched = []
        for record in self.sidecar.get("runs", [])[:-1]:
            host = record.get("edf_name")
            if not host or record.get("edf_file") or not record.get("edf_local_name"):
                continue
            try:
                local = tracker.fetch_host_file(
                    host, dest=self.paths.eyetrack_dir / record["edf_local_name"]
                )
            except Exception as error:  # noqa: BLE001 - the run goes on; the file stays on the Host
                record["edf_fetch_error"] = str(error)
                continue
            if local is not None:
                record["edf_file"] = Path(local).name
                record["edf_fetched_by_run"] = self.run
                fetched.append(Path(local).name)
        self.write_sidecar()
        return fetched

    def close(self, tracker) -> None:
        """Stop recording, then SR's terminate sequence (``close``), each in its own ``try`` so
        a failure of one still lets the next save what it can; the tracker's report goes into
        the run record."""
        before = tracker_report(tracker)  # the clock offset needs the open link
        try:
            tracker.stop_recording()
        except Exception as error:  # noqa: BLE001 - the data are safe; record and go on
            self.run_record["tracker_stop_error"] = str(error)
        try:
            edf = tracker.close(
                dest_dir=self.paths.eyetrack_dir,
                local_name=self.run_record.get("edf_local_name"),
            )
            if edf is not None:
                self.run_record["edf_file"] = Path(edf).name
        except Exception as error:  # noqa: BLE001
            self.run_record["tracker_close_error"] = str(error)
        report = tracker_report(tracker)
        if report.get("clock_offset_ms") is None and "clock_offset_ms" in before:
            report["clock_offset_ms"] = before["clock_offset_ms"]
        self.run_record["tracker"] = report

    # ------------------------------------------------------------------ calibrations
    def record_calibration(self, tracker, result=None) -> None:
        """Bring the sidecar's ``calibration`` list up to date: earlier runs' entries, then this
        run's (every setup the tracker ran, drift-check recalibrations included; a tracker
        without a list contributes the ``result`` it returned)."""
        results = getattr(tracker, "calibrations", None)
        if results is not None:
            own = [c.to_json() for c in results]
        else:
            if result is not None:
                self._own_results.append(result.to_json())
            own = list(self._own_results)
        for entry in own:
            entry["run"] = self.run
        self.sidecar["calibration"] = self._calibrations_before + own
        self.write_sidecar()


def tracker_report(tracker) -> dict:
    """The tracker's report for the run record (strict JSON); a minimal one for trackers without
    ``report``."""
    report = getattr(tracker, "report", None)
    if callable(report):
        return report()
    settings = tracker.settings
    return {
        "tracker": tracker.name,
        "recorded_eye": settings.eye,
        "sampling_rate_hz": float(settings.sampling_rate_hz),
    }


def recorded_eye(tracker) -> str:
    """The eye whose samples the session logs: the tracker's read-back when it is one eye, else
    the protocol's."""
    eye = getattr(tracker, "recorded_eye", None)
    return eye if eye in ("left", "right") else tracker.settings.eye


def sampling_rate_hz(tracker) -> float:
    """The tracker's sampling rate: read back from it where it reports one, else the
    protocol's."""
    rate = getattr(tracker, "sampling_rate_hz", None)
    return float(rate) if rate else float(tracker.settings.sampling_rate_hz)


def write_physio_sidecar(*, paths: SessionPaths, protocol, sidecar: dict, tracker) -> None:
    """The physio file's BEP020 sidecar: the tracker's real sampling rate and recorded eye, and
    the session's calibrations so far."""
    data = physio_sidecar(
        task=protocol.task,
        display=sidecar["display"],
        refresh_hz=protocol.display.refresh_hz,
        tracker=sidecar.get("tracker", tracker.name),
        recorded_eye=recorded_eye(tracker),
        sampling_rate_hz=sampling_rate_hz(tracker),
        start_time_s=0.0,
        calibration_type=protocol.tracker.calibration_type,
        calibrations=sidecar.get("calibration", []),
    )
    write_json_atomic(paths.physio_json, data)


def restart_recording(tracker, presenter) -> None:
    """After the tracker stopped recording mid-trial (or the link came back): tell the operator,
    then record again (TrackerLinkLost when the link is still down)."""
    presenter.text_screen(RECORDING_STOPPED_TEXT, phase="pause")
    tracker.start_recording()


def recover_link(tracker, presenter, *, trial: int) -> bool:
    """After a lost link: the link-lost screen until the operator ends (False) or reconnects and
    recording runs again (True). R with the link still down shows the screen again.

    Args:
        tracker: the session's tracker.
        presenter: the window.
        trial: the last completed trial (named on the screen).
    """
    while link_lost_screen(presenter, trial=trial):
        if not tracker.is_connected():
            continue
        try:
            tracker.start_recording()
        except TrackerLinkLost:
            continue
        return True
    return False


def link_lost_screen(presenter, *, trial: int) -> bool:
    """Tell the operator the link is lost; True when they chose to reconnect (R), False to end
    (Q, Escape; a simulated session always ends)."""
    text = LINK_LOST_TEXT.format(trial=trial)
    presenter.clear_keys()
    while True:
        presenter.draw_text(text)
        presenter.flip(phase="pause")
        if presenter.auto_advance:
            return False
        pressed = presenter.keys(["r", "q", "escape"])
        if "r" in pressed:
            return True
        if "q" in pressed or "escape" in pressed:
            return False
