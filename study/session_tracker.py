"""A session's tracker files and records: the Host PC EDF name of each run, the local copies under
``sourcedata/``, the fetch of earlier runs' files on a resume (also of a completed session, over a
link opened only for that), SR's terminate sequence, the calibrations in the sidecar, and the
screen after a lost link.

Used by ``study.session_window.SessionRun``; works with every tracker kind (the simulated one has
no EDF, no ``report`` and no ``calibrations`` list: what it lacks is skipped).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.session_data import session_field
from study.datalog import SessionPaths, physio_sidecar, write_json_atomic
from study.session_setup import ABRUPT_END, derive_seed, utc_now
from study.trackers.edf import host_edf_name, local_edf_name

if TYPE_CHECKING:
    from study.session import SessionConfig

#: Tracker kinds whose Host PC keeps an EDF file (dummy mode stores nothing).
EDF_KINDS = ("eyelink", "eyelink-emulated")

RECORDING_STOPPED_TEXT = (
    "The eye tracker stopped recording; the trial will be repeated.\n\n"
    "Operator: check the Host PC, then press space to record again."
)
RESUME_HINT = "everything up to the last completed trial is saved; continue with --resume"
# No "reconnect" key: pylink does not reopen a closed link, and a Host PC that lost the link has
# closed this run's EDF, so recording on would write the next trials into no file. A --resume
# is a new run with its own EDF, and it first fetches this run's file from the Host PC.
LINK_LOST_TEXT = (
    "The link to the eye tracker is lost.\n\n"
    "Everything up to trial {trial} is saved.\n\n"
    "Operator: press Q to end the session now. Then reconnect the cable or restart the Host PC "
    "and continue the session with --resume: it opens a new eye-tracking file and first "
    "fetches this run's file from the Host PC."
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
        records_edf: the tracker writes an EDF (``EDF_KINDS``); the run record of one that
            does not (the simulated participant, dummy mode) names none.
    """

    def __init__(
        self,
        *,
        paths: SessionPaths,
        sidecar: dict,
        run_record: dict,
        prefix: str,
        write_sidecar: Callable[[], None],
        records_edf: bool,
    ) -> None:
        self.paths = paths
        self.records_edf = records_edf
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
        stored in the run record and written to disk before the tracker opens the file. A
        tracker without an EDF still gets the name (it checks it, as a tracker would), but the
        record names no file that will never exist."""
        p = self.paths
        host = host_edf_name(
            self.prefix, session_key=f"sub-{p.participant}/ses-{p.session}", run=self.run
        )
        self.run_record["run"] = self.run
        if self.records_edf:
            self.run_record["edf_name"] = host
            self.run_record["edf_local_name"] = local_edf_name(
                participant=p.participant, session=p.session, run=self.run, host_name=host
            )
        self.write_sidecar()
        return host

    def fetch_earlier_runs(self, tracker) -> list[str]:
        """On a resume: copy the Host PC files of earlier runs that were never received (their
        run ended with the link down, or the transfer failed; ``runs_missing_edf``: not those of
        runs that never opened the link, e.g. the Host PC was unreachable). Returns the local
        names fetched."""
        if getattr(tracker, "name", None) not in EDF_KINDS:
            return []
        records = [r for r in runs_missing_edf(self.sidecar) if r is not self.run_record]
        fetched = fetch_run_files(tracker, records, paths=self.paths, fetched_by_run=self.run)
        self.write_sidecar()
        return fetched

    def earlier_runs_on_host(self) -> list[str]:
        """The earlier runs' Host PC files a resume could not fetch (``fetch_earlier_runs``), as
        the operator is told at the run's end: ``NAME.EDF of run n (why)``."""
        return [
            f"{r['edf_name']}.EDF of run {r.get('run', '?')} "
            f"({r.get('edf_fetch_error') or 'not fetched'})"
            for r in runs_missing_edf(self.sidecar)
            if r is not self.run_record
        ]

    def edf_left_on_host(self, tracker) -> str | None:
        """After ``close``: when this run's Host PC file was not received (the link was down,
        the transfer failed or was cancelled), what the operator is told (``NAME.EDF of run
        n was not received (why)``); None when it was received or there is none."""
        record = self.run_record
        if getattr(tracker, "name", None) not in EDF_KINDS or record.get("edf_file"):
            return None
        if not record.get("edf_name"):
            return None
        steps = (record.get("tracker") or {}).get("close_steps") or {}
        failed = [f"{step} {result}" for step, result in steps.items() if result != "ok"]
        why = record.get("tracker_close_error") or "; ".join(failed) or "not received"
        return f"{record['edf_name']}.EDF of run {self.run} was not received ({why})"

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
    """After the Host PC stopped recording mid-trial (the link is up): tell the operator, then
    record again (TrackerLinkLost when the link went down meanwhile)."""
    presenter.text_screen(RECORDING_STOPPED_TEXT, phase="pause")
    tracker.start_recording()


def link_lost_screen(presenter, *, trial: int) -> None:
    """After a lost link: tell the operator, until they end the run (Q, Escape; a simulated
    session ends at once). The run never continues on the lost link (``LINK_LOST_TEXT``):
    ``--resume`` continues the session in a new run with its own EDF."""
    text = LINK_LOST_TEXT.format(trial=trial)
    presenter.clear_keys()
    while True:
        presenter.draw_text(text)
        presenter.flip(phase="pause")
        if presenter.auto_advance or presenter.keys(["q", "escape"]):
            return


# ---------------------------------------------------------------------- files left on the Host PC
def fetch_run_files(tracker, records: list[dict], *, paths: SessionPaths, fetched_by_run=None):
    """Fetch each record's Host PC file into ``paths.eyetrack_dir`` (under its
    ``edf_local_name``) over the open ``tracker``; a fetched record gets ``edf_file`` and
    ``edf_fetched_utc`` (and ``edf_fetched_by_run`` when a run fetched it), one that failed
    ``edf_fetch_error``. Returns the local names fetched (the caller writes the sidecar)."""
    fetched = []
    for record in records:
        try:
            local = tracker.fetch_host_file(
                record["edf_name"], dest=paths.eyetrack_dir / record["edf_local_name"]
            )
        except Exception as error:  # noqa: BLE001 - the file stays on the Host; say why
            record["edf_fetch_error"] = str(error)
            continue
        if local is None:
            steps = getattr(tracker, "close_steps", {}) or {}
            record["edf_fetch_error"] = steps.get("receiveDataFile") or "not received"
            continue
        record.pop("edf_fetch_error", None)
        record["edf_file"] = Path(local).name
        record["edf_fetched_utc"] = utc_now()
        if fetched_by_run is not None:
            record["edf_fetched_by_run"] = fetched_by_run
        fetched.append(Path(local).name)
    return fetched


def runs_missing_edf(sidecar: dict) -> list[dict]:
    """The run records of an EyeLink session whose Host PC file was opened but never reached
    ``sourcedata/`` (its run ended with the tracker closed, or was killed)."""
    if sidecar.get("tracker") not in EDF_KINDS:
        return []
    return [
        record
        for record in sidecar.get("runs", [])
        if record.get("edf_name")
        and record.get("edf_local_name")
        and not record.get("edf_file")
        and ("tracker" in record or record.get("status") == ABRUPT_END)
    ]


def fetch_command(config: SessionConfig) -> str:
    """The command that continues this session, or, once it is complete, fetches the
    eye-tracking files its runs left on the Host PC (``--resume``)."""
    protocol = shlex.quote(str(config.loaded.path))
    data = shlex.quote(str(config.data_dir))
    if config.observer != "human":  # `fovea simulate` runs participants sim01, sim02, ...
        number = config.participant[3:] if config.participant.startswith("sim") else ""
        seed = (config.seed_source or "").split(" (")[0]
        parts = [f"fovea simulate {protocol} --data {data} --session {config.session}"]
        if number.isdigit():
            parts.append(f"--participants {int(number)}")
        if seed.startswith("--seed "):
            parts.append(seed)
        parts.append(f"--observer {config.observer} --tracker {config.tracker}")
        parts.extend(_source_options(config))
        if config.full_window:
            parts.append("--full-window")
        parts.append("--resume")
        return " ".join(parts)
    parts = [
        f"fovea run {protocol} --participant {config.participant} "
        f"--session {config.session} --data {data}"
    ]
    if config.tracker != config.loaded.protocol.tracker.kind:
        parts.append(f"--tracker {config.tracker}")
    parts.extend(_source_options(config))
    if config.fullscreen is False:
        parts.append("--windowed")
    if config.allow_virtual_display:
        parts.append("--allow-virtual-display")
    parts.append("--resume")
    return " ".join(parts)


def _source_options(config: SessionConfig) -> list[str]:
    """Where the session's images come from: without its ``--stimulus-set`` a resume would
    generate the full-resolution twins in the trials instead of taking them from the set."""
    options = []
    if config.stimulus_set is not None:
        options.append(f"--stimulus-set {shlex.quote(str(config.stimulus_set))}")
    if config.scenes is not None:
        options.append(f"--scenes {shlex.quote(str(config.scenes))}")
    return options


def fetch_left_files(*, config: SessionConfig, paths: SessionPaths, sidecar: dict, say) -> int:
    """A ``--resume`` of a session with no trials left to run: connect to the Host PC (no window,
    no data file, no recording), fetch the files its runs left there (``runs_missing_edf``),
    record them in the sidecar and disconnect. Tells the operator what was fetched and what
    still is on the Host PC. Returns how many files still are."""
    from study.trackers import make_tracker

    records = runs_missing_edf(sidecar)
    if not records:
        return 0
    names = ", ".join(f"{r['edf_name']}.EDF (run {r.get('run', '?')})" for r in records)
    say(f"{paths.session_dir}: fetching {names} from the Host PC")
    protocol = config.loaded.protocol
    try:
        if config.tracker not in EDF_KINDS:
            raise RuntimeError(f"--tracker {config.tracker} cannot fetch EyeLink files")
        tracker = make_tracker(
            config.tracker,
            settings=protocol.tracker,
            seed=derive_seed(int(session_field(sidecar, "seed")), "tracker"),
            clock=time.monotonic,
            display=protocol.display.geometry(),
            refresh_hz=protocol.display.refresh_hz,
        )
        tracker.connect_for_transfer(session_dir=paths.eyetrack_dir)
    except Exception as error:  # noqa: BLE001 - nothing fetched; the files stay on the Host
        for record in records:
            record["edf_fetch_error"] = str(error)
    else:
        try:
            fetch_run_files(tracker, records, paths=paths)
        finally:
            tracker.disconnect()
    write_json_atomic(paths.beh_json, sidecar)
    left = [r for r in records if not r.get("edf_file")]
    for record in records:
        if record.get("edf_file"):
            say(f"{paths.session_dir}: fetched {record['edf_name']}.EDF as {record['edf_file']}")
    for record in left:
        say(
            f"{paths.session_dir}: warning: {record['edf_name']}.EDF (run {record.get('run', '?')})"
            f" is still only on the Host PC ({record.get('edf_fetch_error')}); do not delete it "
            f"there, and fetch it once the Host PC is reachable with: {fetch_command(config)}"
        )
    return len(left)
