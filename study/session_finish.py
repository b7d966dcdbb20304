"""A resumed session whose last trial was already logged: the run that logged it ended (killed,
interrupted) before its end records, so the resume writes them without opening a window. And a
session the lab will not resume (``fovea run --close``): the same records, marked incomplete,
so its folder is valid BIDS and reads like every other stopped session.

What the window's cleanup (``study.session_window``) would have written: the gaze file repaired
and rewritten as one gzip member (a torn last member cut off), the events file, the timing report
over every trial, and the sidecar marked complete with a run record saying what happened.
"""

from __future__ import annotations

from protocol.provenance import software_version
from study.datalog import SessionPaths, write_json_atomic
from study.session_events import write_events
from study.session_setup import reopen_gaze_log, utc_now
from study.timing import TimingCollector

#: The run record's status of a resume that only wrote the end records.
FINISHED_STATUS = "completed (the previous run ended after the last trial; end records written)"
#: The run record's status of ``fovea run --close``.
CLOSED_STATUS = "closed without resuming (end records written; the session stays incomplete)"


def finish_logged_session(
    *,
    paths: SessionPaths,
    protocol,
    rows: list[dict],
    sidecar: dict,
    summary: dict,
    simulated: bool,
) -> None:
    """Write a fully logged session's end records (see the module docstring).

    Args:
        paths: the session's files.
        protocol: the validated protocol.
        rows: every ``beh.tsv`` row (as text).
        sidecar: the session's ``beh.json`` (updated and written here, last).
        summary: the procedure's estimates (``SessionPlan.summary()``).
        simulated: a simulated-clock session (the timing report says so).
    """
    _write_end_records(
        paths=paths,
        protocol=protocol,
        rows=rows,
        sidecar=sidecar,
        simulated=simulated,
        status=FINISHED_STATUS,
        summary=summary,
    )


def close_incomplete_session(
    *, paths: SessionPaths, protocol, rows: list[dict], sidecar: dict, simulated: bool
) -> None:
    """Write a stopped session's end records without running trials (``fovea run --close``):
    the gaze file as one gzip member, the events file and the timing report over the logged
    trials, and a run record saying so; the sidecar stays incomplete and ``--resume`` still
    continues it. Arguments as :func:`finish_logged_session`'s."""
    _write_end_records(
        paths=paths,
        protocol=protocol,
        rows=rows,
        sidecar=sidecar,
        simulated=simulated,
        status=CLOSED_STATUS,
        summary=None,
    )


def _write_end_records(
    *, paths, protocol, rows, sidecar, simulated, status: str, summary: dict | None
) -> None:
    """The end records; ``summary`` None: the session stays incomplete."""
    started = utc_now()
    run = {"started_utc": started, "software_version": software_version()}
    if paths.physio_tsv_gz.exists():
        reopen_gaze_log(paths, last_trial=len(rows), run_record=run).close()
    write_events(paths=paths, protocol=protocol, rows=rows, display=sidecar["display"])
    timing = TimingCollector(
        refresh_hz=protocol.display.refresh_hz,
        simulated=simulated,
        speed=protocol.simulation.speed if simulated else 1,
    )
    timing.write(path=paths.timing_json, rows=rows, presenter=None, run_record=None)
    run.update(first_trial=len(rows) + 1, ended_utc=utc_now(), status=status)
    sidecar.setdefault("runs", []).append(run)
    if summary is not None:
        sidecar["completed"] = True
        sidecar["procedure_estimates"] = summary
    write_json_atomic(paths.beh_json, sidecar)
