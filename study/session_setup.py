"""A session's setup on disk: its seeds, the sidecar of a new session, the checks before a resume,
the stimulus set's record and the data root's BIDS files.

``beh.json`` fields are ``protocol.session_data.beh_sidecar``'s; this module fills them from a
``SessionConfig``.
"""

from __future__ import annotations

import datetime as _dt
import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generator.errors import FoveaError
from generator.process_lock import ProcessLock
from protocol.geometry import display_record
from protocol.identity import settings_differences
from protocol.levels import condition_summary
from protocol.provenance import software_version
from protocol.scenes import POOL
from protocol.session_data import (
    MISSING,
    MISSING_TOKENS,
    beh_sidecar,
    session_field,
    upgrade_sidecar,
)
from study.datalog import PhysioLog, SessionPaths, write_json_atomic
from study.datalog.atomic import write_atomic
from study.procedures import LoggedTrial

if TYPE_CHECKING:
    from protocol import LoadedProtocol
    from study.session import SessionConfig


def default_seed(participant: str, session: str) -> int:
    """A reproducible seed from the labels (different participants get different orders)."""
    return zlib.crc32(f"{participant}/{session}".encode())


def derive_seed(seed: int, purpose: str) -> int:
    """An independent seed for ``purpose`` (scheduler, tracker) from the session seed."""
    return int(np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]).generate_state(1)[0])


def logged_trials(rows: list[dict[str, str]]) -> list[LoggedTrial]:
    """``beh.tsv`` rows as the scheduler's replay input."""
    out = []
    for row in rows:
        responded = row["correct"] not in MISSING_TOKENS
        out.append(
            LoggedTrial(
                trial=int(row["trial"]),
                track=row["track"],
                condition=row["condition"],
                level=float(row["level"]),
                seed=int(row["seed"]),
                interval_foveated=int(row["interval_foveated"]),
                outcome="response" if responded else "requeue",
                correct=(row["correct"] == "1") if responded else None,
            )
        )
    return out


#: The sidecar's UTC time stamps (``started_utc``, ``ended_utc``).
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime(UTC_FORMAT)


def stimulus_set_record(stimulus_set, info: dict) -> dict:
    """The stimulus set's record for the sidecar; refuses a set made with other weights."""
    made_with = stimulus_set.manifest["model"].get("weights_sha256")
    running = info.get("weights_sha256")
    if running is not None and made_with is not None and running != made_with:
        raise FoveaError(
            f"stimulus set {stimulus_set.directory} was generated with other weights "
            f"(sha256 {made_with[:12]}...) than the session's generator ({running[:12]}...); "
            "rebuild it with `fovea stimuli build`"
        )
    return {
        "directory": str(Path(stimulus_set.directory).absolute()),
        "entries": len(stimulus_set.entries),
        "weights_sha256": made_with,
        "weights_checked": running is not None,
        "reference": stimulus_set.manifest.get("reference", "generated"),
    }


def resumable_sidecar(
    config: SessionConfig, paths: SessionPaths, *, scenes: str, say=lambda *args: None
) -> dict:
    """The sidecar of the session to resume; refuses a changed protocol, seed, setup or scenes
    (``say`` tells the experimenter when an edit to the protocol file was accepted)."""
    if not paths.beh_json.exists():
        raise FoveaError(f"{paths.beh_json} is missing; cannot resume {paths.session_dir}")
    try:
        sidecar = json.loads(paths.beh_json.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        # Written atomically by the session, so only a copy or an edit can have cut it.
        raise FoveaError(
            f"{paths.beh_json} is not readable JSON ({error}); it was damaged outside fovea "
            f"(a copy, an edit): restore it from a backup to resume {paths.session_dir}"
        ) from None
    if not isinstance(sidecar, dict):
        raise FoveaError(f"{paths.beh_json} is not a session sidecar; cannot resume it")
    upgrade_sidecar(sidecar)  # written back by this run in this version's layout
    if config.close and changed_settings(sidecar, config.loaded):
        pass  # closed with the session's own protocol (session_protocol): no trial runs
    elif _check_same_protocol(sidecar, config.loaded):
        say(
            f"{config.loaded.path} changed since the session started, but none of its settings "
            "did (comments, layout or line endings): resuming"
        )
    seed = session_field(sidecar, "seed")
    if config.seed is not None and config.seed != seed:
        given = config.seed_source or f"--seed {config.seed}"
        how = (
            "resume with the seed the session started with"
            if config.seed_source  # fovea simulate: each participant's seed comes from --seed
            else "resume without --seed (a resume keeps the session's seed)"
        )
        raise FoveaError(f"{given} differs from the session's seed {seed}; {how}")
    if config.close:  # no trial runs: the gaze source and the scenes do not matter
        return _mark_abrupt_runs(sidecar)
    observer = session_field(sidecar, "observer")
    if config.observer != observer or config.tracker != sidecar.get("tracker"):
        tracker = sidecar.get("tracker")
        how = (
            f"fovea run ... --tracker {tracker} --resume"
            if observer == "human"
            else f"--tracker {tracker} --observer {observer} (a simulated session: fovea "
            "simulate, or the fovea demo that recorded it)"
        )
        raise FoveaError(
            f"session {paths.session_dir} ran with tracker {tracker} and observer {observer}; "
            f"resume it with the same: {how}"
        )
    started = (sidecar.get("scenes") or {}).get("spec", POOL)
    if started != scenes:
        if not same_scenes_elsewhere(sidecar, paths, scenes=scenes, protocol=config.loaded):
            raise FoveaError(
                f"session {paths.session_dir} started with scenes {started!r}, not {scenes!r} "
                "(its logged trials' scenes differ, or none was logged yet); resume it with the "
                "same scenes (--scenes)"
            )
        record = sidecar["scenes"]
        record["earlier_specs"] = [*record.get("earlier_specs", []), started]
        record["spec"] = scenes
    return _mark_abrupt_runs(sidecar)


def _mark_abrupt_runs(sidecar: dict) -> dict:
    for run in sidecar.get("runs") or []:
        if run.get("status") is None:  # it never wrote its end records
            run["status"] = ABRUPT_END
    return sidecar


def same_scenes_elsewhere(sidecar: dict, paths: SessionPaths, *, scenes: str, protocol) -> bool:
    """Whether ``scenes`` (a folder or file) is the session's scene source at another path (the
    project folder moved, or the data resumed on another PC): the scene it makes for every seed
    of the logged trials is the one each trial recorded (``beh.tsv`` ``scene``). False when no
    trial recorded a scene, when either source is the pool, or when ``scenes`` cannot be read."""
    from generator.scene_sources import scene_source
    from protocol.session_data import read_rows

    record = sidecar.get("scenes") or {}
    if POOL in (scenes, record.get("spec", POOL)) or not paths.beh_tsv.is_file():
        return False
    logged = {}
    for row in read_rows(paths.beh_tsv):
        if len(row.get("scene", "")) == 64 and row.get("seed", "").isdigit():
            logged[int(row["seed"])] = row["scene"]
    if not logged:
        return False
    stimulus = getattr(protocol, "protocol", protocol).stimulus
    try:
        source = scene_source(scenes)
        return all(
            source.scene(
                seed=seed,
                width_px=stimulus.image_width_px,
                height_px=stimulus.image_height_px,
                factor=int(record["factor"]),
            ).sha256
            == sha256
            for seed, sha256 in logged.items()
        )
    except Exception:  # noqa: BLE001 - an unreadable source is another source: refused
        return False


#: The status a resume gives an earlier run that ended without its end records.
ABRUPT_END = (
    "ended abruptly (killed, crashed or powered off): no end records; beh.tsv kept its trials"
)


def _check_same_protocol(sidecar: dict, loaded: LoadedProtocol) -> bool:
    """Refuse a protocol whose settings differ from the session's (naming what changed); accept
    one whose bytes alone differ (a comment, the layout, CRLF line endings: the same settings as
    written, or the same validated protocol) and record the file's earlier sha256 in
    ``protocol_sha256_earlier``. Returns whether the file's bytes had changed."""
    started_with = sidecar.get("protocol_sha256")
    if started_with == loaded.sha256:
        return False
    changed = changed_settings(sidecar, loaded)
    if not changed:
        sidecar["protocol_sha256_earlier"] = [
            *sidecar.get("protocol_sha256_earlier", []),
            started_with,
        ]
        sidecar["protocol_sha256"] = loaded.sha256
        sidecar["protocol_settings_sha256"] = loaded.settings_sha256
        return True
    raise FoveaError(
        f"{loaded.path} differs from the protocol this session started with (settings changed: "
        f"{'; '.join(changed)}); resume "
        "with the protocol as it was, or start a new session"
    )


def changed_settings(sidecar: dict, loaded: LoadedProtocol) -> list[str]:
    """The settings of ``loaded`` that differ from those the session started with (``[]`` when
    the file is the same, or only its comments, layout or line endings changed)."""
    if sidecar.get("protocol_sha256") == loaded.sha256:
        return []
    if sidecar.get("protocol_settings_sha256") == loaded.settings_sha256:
        return []
    validated = loaded.protocol.model_dump(mode="json")
    return settings_differences(sidecar.get("protocol") or {}, validated)


def session_protocol(sidecar: dict, loaded: LoadedProtocol) -> LoadedProtocol:
    """The protocol a session started with, from its sidecar, for ``--close`` after the file was
    edited (its end records and the replay of its trials need the session's own settings, not
    the file's new ones; no trial runs, so nothing the edit changed reaches a participant).

    Raises:
        FoveaError: the recorded protocol no longer validates here (a model folder it names
            has moved, say): the edited file's settings are named, as a resume names them.
    """
    from protocol.load import LoadedProtocol, validate_protocol

    try:
        protocol = validate_protocol(
            sidecar.get("protocol") or {},
            source="the protocol recorded in the session's beh.json",
            protocol_dir=loaded.path.parent,
        )
    except FoveaError as error:
        raise FoveaError(
            f"{loaded.path} differs from the protocol this session started with (settings "
            f"changed: {'; '.join(changed_settings(sidecar, loaded))}), and {error}: close it "
            "with the protocol file as it was"
        ) from None
    return LoadedProtocol(
        protocol=protocol,
        path=loaded.path,
        sha256=sidecar.get("protocol_sha256") or loaded.sha256,
        settings_sha256=sidecar.get("protocol_settings_sha256") or loaded.settings_sha256,
    )


def new_sidecar(config: SessionConfig, *, seed: int, scenes: dict | None) -> dict:
    """The ``beh.json`` sidecar of a new session."""
    protocol = config.loaded.protocol
    sidecar = beh_sidecar(
        task=protocol.task,
        task_description=protocol.description,
        instructions=protocol.instructions.welcome,
        protocol_name=protocol.name,
        protocol_file=str(Path(config.loaded.path).absolute()),
        protocol_sha256=config.loaded.sha256,
        protocol_settings_sha256=config.loaded.settings_sha256,
        protocol=protocol.model_dump(mode="json"),
        conditions={c.name: condition_summary(c) for c in protocol.conditions},
        display=display_record(protocol.display),
        image_size_px=(protocol.stimulus.image_width_px, protocol.stimulus.image_height_px),
        patch_px=None,
        scenes=scenes,
        reference=protocol.stimulus.reference,
        observer=config.observer,
        tracker=config.tracker,
        seed=seed,
        started_utc=utc_now(),
        software_version=software_version(),
    )
    if config.observer == "parametric":
        from study.observers import ParametricObserver

        obs = ParametricObserver(settings=protocol.simulation)
        sidecar["true_thresholds"] = {c.name: obs.threshold(c.name) for c in protocol.conditions}
    return sidecar


def reopen_gaze_log(paths: SessionPaths, *, last_trial: int, run_record: dict) -> PhysioLog:
    """The session's gaze file reopened after ``last_trial`` (``PhysioLog.reopen``); a damaged
    block skipped on the way is named in ``run_record["physio_damaged_copy"]``: the file as
    found, kept under ``sourcedata/`` (relative to the data folder)."""
    physio = PhysioLog.reopen(
        paths.physio_tsv_gz, last_trial=last_trial, backup_dir=paths.sourcedata_dir
    )
    if physio.damaged_copy is not None:
        run_record["physio_damaged_copy"] = str(physio.damaged_copy.relative_to(paths.data_dir))
    return physio


#: The data root's ``README`` as first written: BIDS recommends one; the lab completes it.
DATASET_README = """Two-interval forced-choice sessions recorded with fovea-kit: in each trial a
foveated image (generated for the participant's measured gaze) and its full-resolution reference
were shown one after the other, and the participant said which one was different.

Layout (BIDS, beh and BEP020 eye-tracking): sub-<participant>/ses-<session>/beh/ holds each
session's trials (*_beh.tsv, each column described in *_beh.json), gaze samples
(*_physio.tsv.gz) and events (*_events.tsv); sourcedata/ holds the EyeLink EDF files and the
images shown. The protocol of each session is in its *_beh.json ("protocol"). participants.tsv
lists each participant once; add columns (age, group, ...) and describe them in
participants.json.

Complete this file and dataset_description.json (Authors, License, Funding, ...) before sharing
the data.
"""


def ensure_dataset_files(data_dir: Path, *, participant: str) -> str:
    """BIDS dataset files at the data root, written once (the lab edits them; never
    overwritten): ``dataset_description.json``, a ``README`` to complete, a ``.bidsignore``
    for the timing reports (not a BIDS suffix) and ``participants.json``; ``participant`` is
    added to ``participants.tsv`` (``add_participant``). Returns ``add_participant``'s note."""
    data_dir.mkdir(parents=True, exist_ok=True)
    description = data_dir / "dataset_description.json"
    if not description.exists():
        write_json_atomic(
            description,
            {
                "Name": "fovea-kit 2AFC sessions",
                "BIDSVersion": "1.10.0",
                "DatasetType": "raw",
                "GeneratedBy": [{"Name": "fovea-kit", "Version": software_version()}],
            },
        )
    readme = data_dir / "README"
    if not readme.exists():
        write_atomic(readme, DATASET_README)
    ignore = data_dir / ".bidsignore"
    if not ignore.exists():
        write_atomic(ignore, "*_timing.json\n")  # a torn one would be kept for good
    note = add_participant(data_dir, participant)
    described = data_dir / "participants.json"
    if not described.exists():
        write_json_atomic(described, PARTICIPANTS_SIDECAR)
    return note


#: ``participants.json`` as first written (the lab describes the columns it adds).
PARTICIPANTS_SIDECAR = {
    "participant_id": {
        "Description": "participant label: sub-<label>, the name of the participant's folder"
    }
}


def add_participant(data_dir: Path, participant: str) -> str:
    """Add ``sub-<participant>`` to the data root's ``participants.tsv`` (BIDS) unless listed:
    one row per participant, whatever its sessions. The lab's own columns (age, group, ...) and
    line endings are kept (``n/a`` in a new row); a table whose first column is not
    ``participant_id`` is not the kit's to change and is left alone, with a note (returned; ""
    otherwise) for the experimenter. Rewritten atomically, under ``PARTICIPANTS_LOCK`` (two rigs
    starting sessions in one data folder at once each keep their row)."""
    lock = ProcessLock(
        data_dir / PARTICIPANTS_LOCK, what=f"participants.tsv of {data_dir}", wait_s=10.0
    )
    with lock:
        return _add_participant(data_dir, participant)


#: Held while ``participants.tsv`` is rewritten; ``sourcedata/`` is outside BIDS validation.
PARTICIPANTS_LOCK = "sourcedata/participants.lock"


def _add_participant(data_dir: Path, participant: str) -> str:
    path = data_dir / "participants.tsv"
    label = f"sub-{participant}"
    if not path.exists() or not path.read_bytes().strip():  # none (or an empty file): a new one
        # also lists the sessions recorded before the kit wrote the table
        found = {p.name for p in data_dir.glob("sub-*") if p.is_dir()}
        write_atomic(
            path, "".join(f"{name}\n" for name in ["participant_id", *sorted(found | {label})])
        )
        return ""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise FoveaError(
            f"{path} is not UTF-8 text (BIDS requires UTF-8; a spreadsheet may have saved it in "
            "another encoding): save it as UTF-8, tab-separated, then start the session again"
        ) from None
    lines = text.removeprefix("\ufeff").splitlines()  # a spreadsheet's byte order mark: kept
    header = lines[0].split("\t") if lines else []
    if header[:1] != ["participant_id"]:
        return (
            f"note: {path} was left as it is and does not list {label}: its first column is "
            f"{header[0]!r}, and BIDS wants participant_id first (add the row yourself, or "
            "rename the column)"
        )
    if any(line.split("\t")[0] == label for line in lines[1:]):
        return ""
    newline = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith(("\n", "\r")):
        text += newline
    row = "\t".join([label] + [MISSING] * (len(header) - 1))
    write_atomic(path, text + row + newline)
    return ""
