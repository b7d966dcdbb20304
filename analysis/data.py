"""Reading session data: every ``*_beh.tsv`` below a data directory, with its JSON sidecar.

The format is pinned in docs/data_format.md and defined in ``protocol.session_data``; one file is
read by ``analysis.session_reader``. Problems that make a file unusable (unreadable, not a table,
a required column missing, a value that is not what the column holds, two protocols mixed) raise ``FoveaError`` naming the file, the line or column and
what would be valid. Problems that leave the data usable (no sidecar, an incomplete session, a torn
last line, a header-only file) are recorded as flags on the session and shown in the report:
nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.session_reader import TORN_LAST_LINE, read_beh_table, read_sidecar
from generator.errors import FoveaError
from protocol.identity import settings_differences
from protocol.session_data import OBSERVERS, session_field

_NAME = re.compile(
    r"^sub-(?P<participant>[^_/]+)_ses-(?P<session>[^_/]+)_task-(?P<task>[^_/]+)_beh\.tsv$"
)
#: How an incomplete session's flag ends (the report's QC rule exclude_incomplete_sessions
#: replaces it, ``analysis.report_stages.load``).
INCOMPLETE_ANALYSED = ": analysed with the trials it has"
#: The task of a file whose name is not BIDS and whose sidecar does not name one.
UNKNOWN_TASK = "unknown"
#: BIDS folders of the data root that hold no sessions, and what they hold: their ``*_beh.tsv``
#: (a cleaned copy of a session, another pipeline's table) are not read.
NOT_RAW_DATA = {
    "derivatives": "BIDS derived data",
    "sourcedata": "BIDS source data (before conversion)",
}


@dataclass
class Session:
    """One ``beh.tsv`` with its sidecar.

    Attributes:
        beh_path: the table.
        sidecar_path: the ``_beh.json`` beside it, or None when there is none.
        participant, session, task: labels (without ``sub-`` / ``ses-`` / ``task-``).
        sidecar: the sidecar's content ({} when absent).
        trials: typed trial table (numeric columns as floats, ``n/a`` as NaN).
        flags: human-readable notes shown in the report (incomplete, torn line, ...).
        observer: ``human``, ``parametric`` or ``perceptual``.
        completed: the sidecar's ``completed`` (None when unknown); False also when the
            sidecar says True but ``beh.tsv`` ends mid-row (rows lost after the session).
        running: an unfinished session a run is recording right now (the data set is still
            being collected).
        practice_trials: rows of the practice (``block = practice``), dropped from ``trials``.
    """

    beh_path: Path
    sidecar_path: Path | None
    participant: str
    session: str
    task: str
    sidecar: dict
    trials: pd.DataFrame
    flags: list[str] = field(default_factory=list)
    observer: str = "human"
    completed: bool | None = None
    running: bool = False
    practice_trials: int = 0

    @property
    def label(self) -> str:
        return f"sub-{self.participant} ses-{self.session}"

    @property
    def protocol_name(self) -> str | None:
        name = self.sidecar.get("protocol_name")
        return str(name) if name is not None else None

    @property
    def protocol_sha256(self) -> str | None:
        sha = self.sidecar.get("protocol_sha256")
        return str(sha) if sha else None

    @property
    def protocol_keys(self) -> set[str]:
        """What identifies this session's protocol: its settings' sha256 and its file's (with the
        file's earlier ones, when a resume accepted an edited comment), else its name. Sessions
        sharing a key ran the same protocol (``protocol.identity``; sessions recorded before the
        settings' sha256 existed share the file's with later ones)."""
        keys = {f"file:{self.protocol_sha256}"} if self.protocol_sha256 else set()
        earlier = self.sidecar.get("protocol_sha256_earlier")
        keys |= {f"file:{sha}" for sha in earlier or [] if isinstance(sha, str) and sha}
        settings = self.sidecar.get("protocol_settings_sha256")
        if isinstance(settings, str) and settings:
            keys.add(f"settings:{settings}")
        if not keys and self.protocol_name is not None:
            keys.add(f"name:{self.protocol_name}")
        return keys

    def has_protocol_sha(self, prefix: str) -> bool:
        """Whether one of the protocol's sha256 values (file or settings) starts with ``prefix``."""
        return any(
            key.split(":", 1)[1].startswith(prefix)
            for key in self.protocol_keys
            if not key.startswith("name:")
        )


@dataclass
class SkippedFile:
    """A file found but not analysed, and why (listed in the report).

    Attributes:
        path: the file (or a folder of files not read).
        reason: why it was not analysed.
        session: the session read from it, when it was read (another protocol's, a copy, an
            empty one): the report's sessions table gives its labels and counts.
    """

    path: Path
    reason: str
    session: Session | None = None


@dataclass
class CopiedSession:
    """A session file whose trials are an exact copy of an earlier session's (same participant and
    task; every column but ``session`` identical, seeds included): analysed once, as the original.

    Attributes:
        copy: the copy (not analysed).
        original: the session analysed in its place.
    """

    copy: Session
    original: Session

    @property
    def note(self) -> str:
        """One line naming both sessions (QC section, summary.json, the sessions table)."""
        started = self.copy.sidecar.get("started_utc")
        same_start = (
            f", same sidecar start time {started}"
            if started and started == self.original.sidecar.get("started_utc")
            else ""
        )
        return (
            f"{self.copy.label} is an exact copy of {self.original.label} (identical trials and "
            f"seeds{same_start}): analysed once, as {self.original.label}"
        )


@dataclass
class Dataset:
    """All sessions of one protocol below a data directory.

    Attributes:
        data_dir: the directory searched.
        sessions: analysed sessions (all observers), sorted by participant, session.
        skipped: files found but not analysed (empty, another protocol's model observer, a copy).
        trials: all analysed sessions' trials in one table, plus ``observer`` and ``source``
            (file path relative to ``data_dir``).
        being_recorded: labels (``sub-<p> ses-<s>``) of the sessions a run is recording now,
            analysed or not yet with a trial: the data set is still being collected.
    """

    data_dir: Path
    sessions: list[Session]
    skipped: list[SkippedFile]
    trials: pd.DataFrame
    copies: list[CopiedSession] = field(default_factory=list)
    being_recorded: list[str] = field(default_factory=list)

    def sessions_of(self, *, observers: tuple[str, ...]) -> list[Session]:
        return [s for s in self.sessions if s.observer in observers]


def load_dataset(*, data_dir: str | Path, protocol: str | None = None) -> Dataset:
    """Read every ``*_beh.tsv`` below ``data_dir``.

    Args:
        data_dir: the data root (``DATA`` in the layout).
        protocol: keep only sessions of this protocol (name or sha256 prefix); needed when the
            directory holds several.

    Raises:
        FoveaError: no data, an unusable file, or mixed protocols (see module docstring).
    """
    root = Path(data_dir)
    if not root.exists():
        raise FoveaError(f"data directory {root} does not exist")
    if not root.is_dir():
        raise FoveaError(f"data directory {root} is not a directory")
    found = sorted(
        p
        for p in root.rglob("*_beh.tsv")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    paths = [p for p in found if p.relative_to(root).parts[0] not in NOT_RAW_DATA]
    not_raw = [
        SkippedFile(root / folder, f"{what}, not sessions ({n} *_beh.tsv file{'s' * (n > 1)})")
        for folder, what in NOT_RAW_DATA.items()
        if (n := sum(p.relative_to(root).parts[0] == folder for p in found))
    ]
    if not paths:
        besides = "".join(
            f" outside {s.path.name}/ ({s.reason}; to report on those, name their folder)"
            for s in not_raw[:1]
        )
        raise FoveaError(
            f"no *_beh.tsv files below {root}{besides}; expected "
            "sub-<participant>/ses-<session>/beh/sub-<participant>_ses-<session>_task-<task>_beh.tsv"
        )
    sessions: list[Session] = []
    skipped: list[SkippedFile] = list(not_raw)
    being_recorded: list[str] = []
    for path in paths:
        session = read_session(path)
        if session.running:
            being_recorded.append(session.label)
        if session.trials.empty:
            what = "being recorded now" if session.running else "empty session"
            n = session.practice_trials
            recorded = (
                f"no main trials recorded, only {n} practice trial{'s' * (n > 1)} (never fitted)"
                if n
                else "no trials recorded"
            )
            skipped.append(SkippedFile(path, f"{what}: {recorded}", session))
            continue
        sessions.append(session)
    _check_duplicates(sessions)
    sessions, copies = _without_copies(sessions)
    skipped.extend(SkippedFile(c.copy.beh_path, c.note, c.copy) for c in copies)
    sessions, other = _select_protocol(sessions, protocol=protocol)
    skipped.extend(other)
    if not sessions:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped)
        raise FoveaError(f"no analysable trials below {root} ({reasons})")
    sessions.sort(key=lambda s: (s.participant, s.session, s.task))
    frames = []
    for s in sessions:
        t = s.trials.copy()
        t["observer"] = s.observer
        t["source"] = str(s.beh_path.relative_to(root))
        t["session_key"] = f"{s.participant}/{s.session}/{s.task}"
        frames.append(t)
    trials = pd.concat(frames, ignore_index=True)
    return Dataset(
        data_dir=root,
        sessions=sessions,
        skipped=skipped,
        trials=trials,
        copies=copies,
        being_recorded=sorted(being_recorded),
    )


def read_session(path: Path) -> Session:
    """Read one ``beh.tsv`` and its sidecar (see module docstring for what is an error)."""
    match = _NAME.match(path.name)
    flags: list[str] = []
    sidecar_path = path.with_name(path.name[: -len("_beh.tsv")] + "_beh.json")
    sidecar: dict = {}
    if sidecar_path.exists():
        sidecar = read_sidecar(sidecar_path)
        flags.extend(_checked_runs(sidecar_path, sidecar))
    else:
        sidecar_path = None
        flags.append(
            "no beh.json sidecar: protocol, display and completion unknown (defaults used)"
        )
    trials, table_flags = read_beh_table(path)
    flags.extend(table_flags)
    main = without_practice(trials)
    practice_trials, trials = len(trials) - len(main), main
    if match:
        participant, session, task = match["participant"], match["session"], match["task"]
    else:
        if trials.empty:
            raise FoveaError(
                f"{path}: file name is not sub-<participant>_ses-<session>_task-<task>_beh.tsv "
                "and the table has no rows to take the labels from"
            )
        participant = str(trials["participant"].iloc[0])
        session = str(trials["session"].iloc[0])
        task = str(sidecar.get("TaskName", UNKNOWN_TASK))
        flags.append(
            "file name is not BIDS (sub-*_ses-*_task-*_beh.tsv): labels taken from the table"
        )
    for column, expected in (("participant", participant), ("session", session)):
        values = sorted(set(trials[column].astype(str)))
        wrong = [v for v in values if v != expected]
        if wrong:
            raise FoveaError(
                f"{path}: column {column!r} holds {', '.join(map(repr, wrong[:3]))} but the file "
                f"name says {expected!r}; every row of a session file must belong to that session"
            )
    observer = _observer(path, trials, sidecar)
    completed = sidecar.get("completed") if sidecar_path is not None else None
    running = completed is not True and _is_running(path, participant, session, task)
    if running:
        flags.append(
            "being recorded now (a run of this session holds its lock): analysed with the "
            "trials logged when the report read it; the report is provisional"
        )
    elif completed is True and any(f.endswith(TORN_LAST_LINE) for f in table_flags):
        # The session wrote whole rows to its end, so the file lost rows after it completed
        # (a truncated copy): it holds less than the session ran.
        completed = False
        flags.append(
            "incomplete session (sidecar completed=true, but beh.tsv ends mid-row: rows were "
            f"lost after the session){INCOMPLETE_ANALYSED}"
        )
    elif completed is False:
        runs = sidecar.get("runs") or []
        last = runs[-1] if runs and isinstance(runs[-1], dict) else None
        killed = last is not None and last.get("status") is None
        status = last.get("status") if last is not None else None
        flags.append(
            "incomplete session (sidecar completed=false"
            + (
                "; its last run ended without its end records, as after a kill: `fovea run "
                "--resume` continues it, `fovea run --close` writes them so the folder is valid "
                "BIDS"
                if killed
                else f"; its last run: {status.strip()[:300]}"
                if isinstance(status, str) and status.strip()
                else ""
            )
            + f"){INCOMPLETE_ANALYSED}"
        )
    elif completed is None and sidecar_path is not None:
        flags.append("sidecar does not say whether the session completed")
    elif completed is not None and not isinstance(completed, bool):
        flags.append(
            f"{sidecar_path.name}: 'completed' is {_short(completed)}, not true or false: "
            "whether the session completed is unknown"
        )
    return Session(
        beh_path=path,
        sidecar_path=sidecar_path,
        participant=participant,
        session=session,
        task=task,
        sidecar=sidecar,
        trials=trials,
        flags=flags,
        observer=observer,
        completed=completed if isinstance(completed, bool) else None,
        running=running,
        practice_trials=practice_trials,
    )


def _is_running(path: Path, participant: str, session: str, task: str) -> bool:
    """Whether a run of the session holds its lock now (``analysis.session_lock``); only a file
    in the layout's place (``DATA/sub-<p>/ses-<s>/beh/``) has one."""
    from analysis.session_lock import is_running

    parents = path.absolute().parents
    if len(parents) < 4:
        return False
    beh, ses, sub, root = parents[:4]
    if (beh.name, ses.name, sub.name) != ("beh", f"ses-{session}", f"sub-{participant}"):
        return False
    return is_running(root, participant, session, task)


def without_practice(trials: pd.DataFrame) -> pd.DataFrame:
    """The main trials: rows with ``block = practice`` are dropped (they are never fitted);
    files without a ``block`` column hold main trials only."""
    return (
        trials[trials["block"] != "practice"].reset_index(drop=True)
        if "block" in trials
        else trials
    )


def _checked_runs(path: Path, sidecar: dict) -> list[str]:
    """Keeps only the run records (JSON objects) of the sidecar's ``runs`` list, in place; a flag
    naming the sidecar for what was dropped (a hand-edited ``"runs": "x"``)."""
    runs = sidecar.get("runs")
    if runs is None:
        return []
    if not isinstance(runs, list):
        sidecar["runs"] = []
        return [
            f"{path.name}: 'runs' is {type(runs).__name__} {_short(runs)}, not a list of run "
            "records: ignored"
        ]
    records = [run for run in runs if isinstance(run, dict)]
    if len(records) == len(runs):
        return []
    sidecar["runs"] = records
    others = [run for run in runs if not isinstance(run, dict)]
    return [
        f"{path.name}: {len(others)} of {len(runs)} 'runs' entries are not run records "
        f"(JSON objects), e.g. {_short(others[0])}: ignored"
    ]


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _observer(path: Path, trials: pd.DataFrame, sidecar: dict) -> str:
    values: set[str] = set()
    if "observer" in trials and not trials.empty:
        values = {str(v) for v in trials["observer"].dropna().unique()}
    if len(values) > 1:
        raise FoveaError(
            f"{path}: column 'observer' mixes {', '.join(sorted(values))}; one session has one observer"
        )
    observer = next(iter(values)) if values else str(session_field(sidecar, "observer", "human"))
    if observer not in OBSERVERS:
        raise FoveaError(f"{path}: observer {observer!r} is not one of {', '.join(OBSERVERS)}")
    return observer


def _check_duplicates(sessions: list[Session]) -> None:
    """One file per participant, session and task. A file of unknown task (a non-BIDS name such
    as a renamed backup copy, no sidecar) clashes with every file of its participant and session:
    it would otherwise count that session's trials twice."""
    seen: dict[tuple[str, str], list[Session]] = {}
    for s in sessions:
        for other in seen.setdefault((s.participant, s.session), []):
            if UNKNOWN_TASK in (s.task, other.task) or s.task == other.task:
                what = (
                    f"task {s.task}"
                    if s.task == other.task
                    else "(one file's task is unknown: its name is not BIDS and it has no sidecar)"
                )
                raise FoveaError(
                    f"participant {s.participant} session {s.session} {what} appears twice: "
                    f"{other.beh_path} and {s.beh_path}; remove or relabel one"
                )
        seen[(s.participant, s.session)].append(s)


def _without_copies(sessions: list[Session]) -> tuple[list[Session], list[CopiedSession]]:
    """Drop sessions whose trials repeat an earlier session's of the same participant and task
    (a session folder copied under another session number): such a copy would count the same
    trials twice. ``sessions`` are in path order, so the lower-numbered session is kept."""
    originals: dict[tuple[str, str, str], Session] = {}
    kept: list[Session] = []
    copies: list[CopiedSession] = []
    for s in sessions:
        content = s.trials.drop(columns=["session"], errors="ignore").to_csv(index=False)
        key = (s.participant, s.task, hashlib.sha256(content.encode()).hexdigest())
        if key in originals:
            copies.append(CopiedSession(copy=s, original=originals[key]))
            continue
        originals[key] = s
        kept.append(s)
    return kept, copies


def _protocol_groups(sessions: list[Session]) -> dict[int, int]:
    """``id(session)`` -> its protocol group (0, 1, ...) for sessions with protocol keys: sessions
    sharing any key (``Session.protocol_keys``), directly or through others, are one group."""
    parent = list(range(len(sessions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, s in enumerate(sessions):
        for key in s.protocol_keys:
            if key in owner:
                parent[root(i)] = root(owner[key])
            else:
                owner[key] = i
    roots: dict[int, int] = {}
    return {
        id(s): roots.setdefault(root(i), len(roots))
        for i, s in enumerate(sessions)
        if s.protocol_keys
    }


def _select_protocol(
    sessions: list[Session], *, protocol: str | None
) -> tuple[list[Session], list[SkippedFile]]:
    """Keep one protocol's sessions; refuse a silent mix of protocols."""
    skipped: list[SkippedFile] = []
    if protocol is not None:
        keep = [
            s
            for s in sessions
            if not s.protocol_keys or s.protocol_name == protocol or s.has_protocol_sha(protocol)
        ]
        if not any(s.protocol_keys for s in keep):
            names = sorted(
                {f"{s.protocol_name} ({(s.protocol_sha256 or '')[:12]})" for s in sessions}
            )
            raise FoveaError(
                f"no session of protocol {protocol!r}; the data hold {', '.join(names) or 'no named protocol'}"
            )
        for s in sessions:
            if s not in keep:
                sha = f"sha256 {s.protocol_sha256[:12]}; " if s.protocol_sha256 else ""
                skipped.append(
                    SkippedFile(
                        s.beh_path,
                        f"protocol {s.protocol_name!r} ({sha}not the selected {protocol!r})",
                        s,
                    )
                )
        sessions = keep
    primary = [s for s in sessions if s.observer != "perceptual"] or sessions
    groups = _protocol_groups(sessions)
    first_of_group: dict[int, Session] = {}
    for s in primary:
        if id(s) in groups:
            first_of_group.setdefault(groups[id(s)], s)
    if len(first_of_group) > 1:
        examples = list(first_of_group.values())[:3]
        described = "; ".join(
            f"{s.beh_path} is protocol {s.protocol_name!r} (sha256 {(s.protocol_sha256 or 'n/a')[:12]})"
            for s in examples
        )
        how = "pass --protocol NAME (or a sha256 prefix)"
        if len({s.protocol_name for s in examples}) == 1:
            # The name cannot pick one: --protocol NAME kept them all and gave this error again.
            a, b = (s.sidecar.get("protocol") for s in examples[:2])
            both = isinstance(a, dict) and isinstance(b, dict)
            changed = settings_differences(a, b, limit=3) if both else []
            how = (
                f"both are named {examples[0].protocol_name!r}, but their settings differ"
                + (f" ({'; '.join(changed)})" if changed else "")
                + ": pass --protocol with a sha256 prefix ("
                + ", ".join((s.protocol_sha256 or "n/a")[:12] for s in examples)
                + ")"
            )
        raise FoveaError(
            f"sessions from different protocols are mixed: {described}. Analyse one protocol at a "
            f"time: {how}, or split the data directory"
        )
    main_group = next(iter(first_of_group), None)
    kept = []
    for s in sessions:
        if (
            s.observer == "perceptual"
            and s not in primary
            and main_group is not None
            and groups.get(id(s), main_group) != main_group
        ):
            skipped.append(
                SkippedFile(
                    s.beh_path,
                    f"perceptual-observer session of another protocol ({s.protocol_name!r})",
                    s,
                )
            )
            continue
        kept.append(s)
    return kept, skipped
