"""What ``fovea run`` says when it refuses a session's labels: a session that exists (the next
session's label when it is complete), a new one in a session folder that holds another task's
session, and a resume or close of one that does not (the sessions the data folder holds, so a
mistyped participant label shows)."""

from __future__ import annotations

import json
from pathlib import Path

#: At most this many existing sessions are listed.
LISTED = 12


def exists_refusal(paths) -> str:
    """A new session whose folder holds logged trials: continue it, or, when it is complete, the
    participant's next free session label."""
    if _completed(paths.beh_json):
        free = _next_session(paths.data_dir / f"sub-{paths.participant}")
        return (
            f"session {paths.session_dir} already exists; it is complete: for this "
            f"participant's next session give --session {free} (existing data are never "
            "overwritten)"
        )
    return (
        f"session {paths.session_dir} already exists; continue it with --resume or choose "
        "another --session (existing data are never overwritten)"
    )


def other_task_refusal(paths) -> str | None:
    """A new session in a session folder that holds another task's session (a protocol with
    another ``task``): its shown images (``images/trial-<n>_*.png``) and EDF copies
    (``..._run-<n>_<host-edf>.edf``, the Host name from participant, session and run) are named
    without the task, so the new session's trials would overwrite them. None when there is none."""
    pattern = f"sub-{paths.participant}_ses-{paths.session}_task-*_beh.json"
    others = sorted(
        p.name.split("_task-", 1)[1].removesuffix("_beh.json")
        for p in paths.beh_dir.glob(pattern)
        if p.name.split("_task-", 1)[1].removesuffix("_beh.json") != paths.task
    )
    if not others:
        return None
    free = _next_session(paths.data_dir / f"sub-{paths.participant}")
    return (
        f"session {paths.session_dir} already holds task {others[0]!r}: task {paths.task!r} "
        f"there would overwrite its shown images and EDF copies under {paths.eyetrack_dir} "
        f"(named by trial and run, not task); give it another session: --session {free}"
    )


def missing_refusal(paths, *, close: bool) -> str:
    """A ``--resume`` (``--close``) of a session that does not exist, with the data folder's
    sessions."""
    what = "close" if close else "resume"
    data = Path(paths.data_dir)
    sessions = sorted(
        f"--participant {d.parent.name[4:]} --session {d.name[4:]}"
        for d in data.glob("sub-*/ses-*")
        if d.is_dir()
    )
    if not sessions:
        found = f"{data} holds no session: check --data"
    else:
        more = f" and {len(sessions) - LISTED} more" if len(sessions) > LISTED else ""
        found = f"{data} holds: " + "; ".join(sessions[:LISTED]) + more
    return f"nothing to {what}: there is no session {paths.session_dir} ({found})"


def _completed(beh_json: Path) -> bool:
    try:
        return bool(json.loads(beh_json.read_text(encoding="utf-8")).get("completed"))
    except (OSError, ValueError, AttributeError):
        return False


def _next_session(participant_dir: Path) -> str:
    """The smallest whole-number session label from 1 without a folder."""
    n = 1
    while (participant_dir / f"ses-{n}").exists():
        n += 1
    return str(n)
