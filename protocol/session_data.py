"""The session data contract: ``beh.tsv`` (one row per presented trial) and its ``beh.json`` sidecar.

The one definition of the format documented in docs/data_format.md, used by the session runner
(``study.datalog.behlog`` appends rows durably), the data simulator (``analysis.simulate_data``)
and the analysis (``analysis.data``):

- ``COLUMNS``: every column, in file order (pinned, then optional, then extra columns), with its
  type in ``COLUMN_TYPES`` (numeric or text, allowed values, never missing) and its description;
- ``MISSING``: ``n/a`` marks a missing value (the analysis also accepts an empty cell);
- ``new_row``, ``format_value``, ``format_row``, ``write_beh_tsv``: a row and its TSV text;
- ``read_rows``: the rows of a file as text (the resume path; the analysis' typed reader,
  ``analysis.data.read_beh_table``, checks values against ``COLUMN_TYPES``);
- ``beh_sidecar``: the sidecar's fields in their order, each column described at its top level
  as BIDS says (``column_descriptions``); ``session_field`` reads the session-wide fields of a
  sidecar of this or an older layout, ``upgrade_sidecar`` brings an older one to this layout.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from generator.errors import FoveaError

#: The report's default QC minimum of analysed (main, responded) trials in each condition for a
#: participant to be fitted (``analysis.qc.QCRules.min_trials_per_condition``); ``fovea check``
#: says when a protocol's sessions give fewer.
REPORT_MIN_TRIALS_PER_CONDITION = 20
#: The fewest analysed trials of one participant in one condition that the report fits at all
#: (``analysis.fits.FitSettings.min_trials``), whatever the QC rules.
REPORT_MIN_TRIALS_PER_FIT = 10

#: Who answered a session's trials (the ``observer`` column and the sidecar's ``observer``): a
#: person at the keyboard or a simulated observer (``study.observers``).
ObserverKind = Literal["human", "parametric", "perceptual"]
OBSERVERS: tuple[str, ...] = get_args(ObserverKind)
#: The observers ``fovea simulate`` can stand in for a participant.
SIMULATED_OBSERVERS: tuple[str, ...] = tuple(o for o in OBSERVERS if o != "human")

MISSING = "n/a"
#: Cell texts read as a missing value.
MISSING_TOKENS = (MISSING, "")


@dataclass(frozen=True)
class Column:
    """One ``beh.tsv`` column.

    Attributes:
        name: header text.
        description: what a value means (the sidecar's BIDS ``Description``).
        numeric: read as a number by the analysis (``n/a`` -> NaN); else text.
        allowed: the only valid values: numbers of a numeric column (None: any finite number),
            texts of a text column (None: any text).
        never_missing: every presented trial (aborted ones included) has a value.
        units: the unit of a number (BIDS ``Units``: ``s``, ``deg``); None for counts, ratios,
            labels and codes.
        levels: value -> meaning of a column of codes (BIDS ``Levels``); complete when given
            (the BIDS validator reports any other value as an error).
    """

    name: str
    description: str
    numeric: bool = False
    allowed: tuple[float, ...] | tuple[str, ...] | None = None
    never_missing: bool = False
    units: str | None = None
    levels: dict[str, str] | None = None

    def bids(self) -> dict:
        """The column's BIDS description (a top-level key of the sidecar)."""
        out: dict = {"Description": self.description}
        if self.units is not None:
            out["Units"] = self.units
        if self.levels is not None:
            out["Levels"] = dict(self.levels)
        return out


_BINARY = (0, 1)
_INTERVAL = (1, 2)


def _flag(meaning: str) -> dict[str, str]:
    """The levels of a 0/1 column: 1 = ``meaning``."""
    return {"0": "no", "1": meaning}


_INTERVALS = {"1": "first interval", "2": "second interval"}
#: The ``abort_reason`` of an aborted trial (``study.trial``: ``TrialAborted``).
ABORT_REASONS = {
    "fixation_break": "the gaze left the fixation window (fixation_break 1)",
    "deadline": "the foveated image missed the generation deadline",
    "no_response": "no answer within the response time limit",
    "generator_crash": "the generator failed; it was restarted",
    "dropped_frame": "a frame was dropped between interval 1 and interval 2",
    "recording_stopped": "the eye tracker stopped recording",
    "escape": "Escape pressed while the images were shown",
}
_LEVEL_VARIABLES = {
    "strength": "acuity layout's foveation strength",
    "radius_shrink": "circle layout: 1 - the full-resolution circle's radius (fraction of the "
    "half-diagonal)",
    "periphery_factor": "circle layout: the periphery's downsampling factor",
}
_GAZE = "deg from the screen centre, {axis}"

#: Trial phases with a column of their own dropped frames (``drop_column``), by what was shown.
DROP_PHASES = {
    "fixation": "fixation mark before onset (hold and wait for the images)",
    "interval1": "first interval's image",
    "mask": "mask",
    "isi": "ISI's mark",
    "interval2": "second interval's image",
}
#: The phases from the first image's onset to the second image's end: a drop there changes what
#: the participant saw (``fovea run`` re-queues such a trial; the QC rule
#: ``max_dropped_frames_per_trial`` counts these).
STIMULUS_DROP_PHASES = ("interval1", "mask", "isi", "interval2")


def drop_column(phase: str) -> str:
    """The ``beh.tsv`` column of ``phase``'s dropped frames (``DROP_PHASES``)."""
    return f"dropped_frames_{phase}"


PINNED = (
    Column("participant", "participant label (without sub-)"),
    Column("session", "session label (without ses-)"),
    Column(
        "trial",
        "1-based running index of presented trials in the session (aborted ones included)",
        numeric=True,
        never_missing=True,
    ),
    Column("condition", "condition name from the protocol", never_missing=True),
    Column(
        "level",
        "manipulated value; larger = more degradation (its meaning and unit: level_variable, "
        "per condition)",
        numeric=True,
        never_missing=True,
    ),
    Column(
        "interval_foveated",
        "the interval that held the foveated image",
        numeric=True,
        allowed=_INTERVAL,
        never_missing=True,
        levels=_INTERVALS,
    ),
    Column(
        "response",
        "interval chosen as different (n/a: aborted)",
        numeric=True,
        allowed=_INTERVAL,
        levels=_INTERVALS,
    ),
    Column(
        "correct",
        "the response named the foveated interval (n/a: aborted)",
        numeric=True,
        allowed=_BINARY,
        levels={"0": "incorrect", "1": "correct"},
    ),
    Column(
        "rt_s",
        "response time from the response screen's onset",
        numeric=True,
        units="s",
    ),
    Column(
        "fixation_break",
        "aborted by a fixation break (re-queued)",
        numeric=True,
        allowed=_BINARY,
        never_missing=True,
        levels=_flag("aborted by a fixation break"),
    ),
    Column(
        "gaze_x_deg",
        "measured gaze at generation time (the foveated image was requested for it), "
        + _GAZE.format(axis="x right"),
        numeric=True,
        units="deg",
    ),
    Column(
        "gaze_y_deg",
        "measured gaze at generation time (the foveated image was requested for it), "
        + _GAZE.format(axis="y up"),
        numeric=True,
        units="deg",
    ),
    Column(
        "seed", "generation seed of both images (for scene models it picks the scene)", numeric=True
    ),
    Column("tokens", "tokens of the foveated image's layout", numeric=True),
    Column(
        "gen_latency_s",
        "foveated generation request-to-result latency (real time)",
        numeric=True,
        units="s",
    ),
    Column(
        "onset_s",
        "first-interval onset since the session's start (session clock, from the flip)",
        numeric=True,
        units="s",
    ),
)
OPTIONAL = (
    Column("tokens_full", "tokens of the full-resolution grid", numeric=True),
    Column(
        "deadline_missed",
        "the foveated image missed the generation deadline",
        numeric=True,
        allowed=_BINARY,
        levels=_flag("deadline missed"),
    ),
    Column(
        "cached_stimulus",
        "the foveated image missed the deadline and a stand-in, generated earlier for the same "
        "plan within cache_gaze_tolerance_deg of the measured gaze, was shown (where it was "
        "made: stand_in_gaze_x_deg, stand_in_gaze_y_deg)",
        numeric=True,
        allowed=_BINARY,
        levels=_flag("a stand-in was shown"),
    ),
    Column(
        "dropped_frames",
        "frame intervals > 1.5 refresh periods during the trial",
        numeric=True,
    ),
    Column(
        "fixation_x_deg",
        "the condition's fixation target, " + _GAZE.format(axis="x right"),
        numeric=True,
        units="deg",
    ),
    Column(
        "fixation_y_deg",
        "the condition's fixation target, " + _GAZE.format(axis="y up"),
        numeric=True,
        units="deg",
    ),
    Column(
        "observer",
        "who answered",
        allowed=OBSERVERS,
        levels={
            "human": "a person at the keyboard",
            "parametric": "simulated: a psychometric function of the level",
            "perceptual": "simulated: a perceptual model (FovVideoVDP) of the two images",
        },
    ),
    Column(
        "p_correct_model",
        "a simulated observer's probability of a correct answer (n/a: human)",
        numeric=True,
    ),
)
# Numbers the analysis does not analyse are read as text (numeric=False): twin_latency_s,
# gaze_to_flip_median_s, speculation_kept.
EXTRA = (
    Column("track", "procedure track (condition, or condition/sN for staircase N)"),
    Column("attempt", "presentation number of this plan (re-queues count up)", numeric=True),
    Column(
        "abort_reason",
        "why the trial was aborted and re-queued (n/a: completed trial)",
        levels=ABORT_REASONS,
    ),
    Column("level_variable", "what level means", levels=_LEVEL_VARIABLES),
    Column("conditioning", "class label or prompt of the generation"),
    Column("token_ratio", "tokens / tokens_full", numeric=True),
    Column(
        "twin_latency_s",
        "full-resolution twin's request-to-result latency (0: cached or from a stimulus set)",
        units="s",
    ),
    Column(
        "gaze_to_flip_median_s",
        "per-trial median latency from a gaze sample to the flip that used it",
        units="s",
    ),
    Column(
        "speculation_kept",
        "the image started at the fixation target was used (n/a: no speculation)",
        levels={"0": "regenerated at the measured gaze", "1": "kept"},
    ),
    Column(
        "scene",
        "sha256 of the trial's scene (the low-resolution photograph the foveated image and its "
        "reference were made from; scene models only, else n/a)",
    ),
    Column(
        "reference",
        "what the foveated image was compared with",
        levels={
            "generated": "the full-resolution twin of the same scene and seed",
            "original": "the photograph the scene came from",
        },
    ),
    Column(
        "onset2_s",
        "second-interval onset since the session's start (session clock, from the flip)",
        numeric=True,
        units="s",
    ),
    *(
        Column(
            drop_column(phase),
            f"frame intervals > 1.5 refresh periods while the {what} was shown",
            numeric=True,
        )
        for phase, what in DROP_PHASES.items()
    ),
    Column(
        "fixation_window_deg",
        "radius of the fixation window around the measured gaze from the generation on (the "
        "layout's padding, within [0.5, tolerance_deg]; no padding: tolerance_deg)",
        numeric=True,
        units="deg",
    ),
    Column(
        "blink_in_interval",
        "an invalid gaze sample (blink) while interval 1 or 2 was shown, shorter than "
        "max_invalid_s (not a break)",
        numeric=True,
        allowed=_BINARY,
        levels=_flag("a blink during an interval"),
    ),
    Column(
        "given_up",
        "this aborted trial's plan reached [procedure] max_attempts and is not presented again",
        numeric=True,
        allowed=_BINARY,
        levels=_flag("given up"),
    ),
    Column(
        "refixated",
        "a blink while waiting for the images; the gaze was held again before the onset",
        numeric=True,
        allowed=_BINARY,
        levels=_flag("refixated"),
    ),
    Column(
        "block",
        "practice trials (easy levels, before the main trials) are excluded from the fits (n/a "
        "in files written before the column existed: main)",
        levels={"practice": "practice trial", "main": "main trial"},
    ),
    Column(
        "stand_in_gaze_x_deg",
        "where the shown stand-in (cached_stimulus 1) was generated: the gaze its foveated "
        "layout was made for, " + _GAZE.format(axis="x right") + " (n/a: no stand-in; "
        "compare gaze_x_deg)",
        numeric=True,
        units="deg",
    ),
    Column(
        "stand_in_gaze_y_deg",
        "where the shown stand-in (cached_stimulus 1) was generated: the gaze its foveated "
        "layout was made for, " + _GAZE.format(axis="y up") + " (n/a: no stand-in; compare "
        "gaze_y_deg)",
        numeric=True,
        units="deg",
    ),
)
PINNED_COLUMNS: tuple[str, ...] = tuple(c.name for c in PINNED)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in OPTIONAL)
EXTRA_COLUMNS: tuple[str, ...] = tuple(c.name for c in EXTRA)
#: Every column in file order.
COLUMNS: tuple[str, ...] = PINNED_COLUMNS + OPTIONAL_COLUMNS + EXTRA_COLUMNS
COLUMN_TYPES: dict[str, Column] = {c.name: c for c in PINNED + OPTIONAL + EXTRA}
#: Columns read as numbers.
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMN_TYPES.values() if c.numeric)
#: Columns every presented trial has (aborted trials included).
NEVER_MISSING: tuple[str, ...] = tuple(c.name for c in COLUMN_TYPES.values() if c.never_missing)
#: The only valid values of some numeric columns (the analysis' reader checks them).
ALLOWED_VALUES: dict[str, tuple[float, ...]] = {
    c.name: c.allowed for c in COLUMN_TYPES.values() if c.numeric and c.allowed is not None
}


def new_row(**values) -> dict:
    """A trial row: every column, ``None`` (written ``n/a``) where ``values`` gives none.

    Raises:
        ValueError: a name that is not a column.
    """
    _check_names(values)
    return {name: values.get(name) for name in COLUMNS}


def format_value(value) -> str:
    """TSV cell text: ``n/a`` for None/NaN, 1/0 for bools, shortest round-trip repr for floats
    (numpy scalars as Python's), tabs and newlines of free text (prompts) as spaces."""
    if value is None:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating):
        return MISSING if math.isnan(value) else repr(float(value))
    text = str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def format_row(row: dict) -> list[str]:
    """The cells of ``row`` in ``COLUMNS`` order (absent columns ``n/a``).

    Raises:
        ValueError: a name that is not a column.
    """
    _check_names(row)
    return [format_value(row.get(name)) for name in COLUMNS]


def header_line() -> str:
    """The header line, newline included."""
    return "\t".join(COLUMNS) + "\n"


def write_beh_tsv(path: Path, rows: list[dict]) -> None:
    """Write a whole ``beh.tsv`` at once (simulated data; sessions append through
    ``study.datalog.BehaviourLog``). Refuses an existing file."""
    if path.exists():
        raise FoveaError(f"{path} already exists; simulate into an empty directory")
    lines = [header_line()] + ["\t".join(format_row(row)) + "\n" for row in rows]
    path.write_text("".join(lines), encoding="utf-8")


def read_rows(path: Path, *, repair: bool = False) -> list[dict[str, str]]:
    """Read ``beh.tsv`` rows as text.

    Args:
        path: the file.
        repair: cut off a torn last line (no newline) left by a crash.

    A file written before columns were added at the end (an older version's header, a prefix of
    this version's) reads with ``n/a`` in the columns it lacks; ``older_header`` says whether a
    file has such a header.

    Raises:
        FoveaError: the header is neither this version's column list nor an older one's.
    """
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if repair:
            with open(path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
        data = data[:cut]
    lines = data.decode("utf-8").split("\n")
    header = tuple(lines[0].split("\t")) if lines and lines[0] else ()
    if header != COLUMNS and not _older_header(header):
        raise FoveaError(
            f"{path}: header does not match this version's beh.tsv columns; cannot resume it "
            "(start a new session)"
        )
    added = dict.fromkeys(COLUMNS[len(header) :], MISSING)
    return [
        {**dict(zip(header, line.split("\t"), strict=True)), **added} for line in lines[1:] if line
    ]


def _older_header(header: tuple[str, ...]) -> bool:
    """Columns are only ever added at the end: an older version's header is a proper prefix
    holding at least the pinned columns."""
    return len(PINNED_COLUMNS) <= len(header) < len(COLUMNS) and COLUMNS[: len(header)] == header


def older_header(path: Path) -> bool:
    """Whether ``path`` (a ``beh.tsv``) has an older version's header (see ``read_rows``)."""
    with open(path, encoding="utf-8", newline="") as f:
        return _older_header(tuple(f.readline().rstrip("\n").split("\t")))


def column_descriptions() -> dict[str, dict]:
    """Every column's BIDS description (``Description``, ``Units``, ``Levels``), keyed by its
    name: top-level keys of the sidecar, as BIDS describes a tabular file's columns."""
    return {c.name: c.bids() for c in COLUMN_TYPES.values()}


#: Session-wide sidecar fields named like a column (the column's description holds the name at
#: the sidecar's top level): stored as ``session_<name>``. Files written before the column
#: descriptions moved to the top level (they sat under ``columns``) hold them as ``<name>``.
SESSION_FIELDS = ("seed", "observer", "reference", "level_variable")


def session_field(sidecar: dict, name: str, default=None):
    """The session-wide ``name`` (one of ``SESSION_FIELDS``) of a sidecar, new or old layout."""
    if name not in SESSION_FIELDS:
        raise ValueError(f"{name!r} is not one of {SESSION_FIELDS}")
    if f"session_{name}" in sidecar:
        return sidecar[f"session_{name}"]
    old = sidecar.get(name)
    return default if old is None or isinstance(old, dict) else old


def upgrade_sidecar(sidecar: dict) -> dict:
    """A sidecar of an older layout brought to this one, in place (a resume rewrites it): the
    session-wide fields as ``session_<name>``, the column descriptions at the top level."""
    for name in SESSION_FIELDS:
        if f"session_{name}" not in sidecar and name in sidecar:
            value = sidecar.pop(name)
            if not isinstance(value, dict):
                sidecar[f"session_{name}"] = value
    sidecar.pop("columns", None)
    sidecar.update(column_descriptions())
    return sidecar


def beh_sidecar(
    *,
    task: str,
    task_description: str,
    protocol_name: str,
    protocol_file: str | None,
    protocol_sha256: str,
    protocol_settings_sha256: str,
    protocol: dict,
    conditions: dict[str, dict],
    display: dict,
    image_size_px: tuple[int, int],
    patch_px: int | None,
    scenes: dict | None,
    reference: str,
    observer: str,
    tracker: str,
    seed: int,
    started_utc: str,
    software_version: str,
    completed: bool = False,
    calibration: list[dict] | None = None,
    instructions: str | None = None,
) -> dict:
    """The ``beh.json`` sidecar of a session, fields in their documented order.

    Args:
        task, task_description: BIDS ``TaskName`` and ``TaskDescription``.
        protocol_name, protocol_file, protocol_sha256: the protocol's name, file (None when
            there is none) and the sha256 of its bytes.
        protocol_settings_sha256: the sha256 of its settings as written
            (``protocol.identity.settings_sha256``: comments and layout left out).
        protocol: the validated protocol as JSON (``Protocol.model_dump(mode="json")``).
        conditions: condition name -> condition table (``protocol.levels.condition_summary``).
        display: ``protocol.geometry.display_record``.
        image_size_px: stimulus (width, height).
        patch_px: image pixels per fine token (None until the generator says).
        scenes: the checked scene source's record, or None (models without scenes).
        reference: ``generated`` or ``original``.
        observer, tracker: what answered and what measured the gaze.
        seed: the session seed.
        started_utc: ``YYYY-MM-DDTHH:MM:SSZ``.
        software_version: the kit's version.
        completed: the session ran to its end.
        calibration: calibration records (``time_s``, ``avg_error_deg``, ``max_error_deg``).
        instructions: BIDS ``Instructions``, the text shown to the participant (None: left out).

    The session adds ``counterbalancing`` (condition order) and ``practice`` records, ``runs``
    records as it goes (with their ``breaks``), ``procedure_estimates`` and
    ``session_duration_s`` at the end and ``true_thresholds`` for simulated observers.

    ``reference``, ``observer``, ``seed`` and the conditions' level variable (one, or
    ``per_condition``) are written as ``session_<name>`` (``SESSION_FIELDS``; read them with
    ``session_field``); every column's description follows the session's fields at the top level
    (``column_descriptions``).
    """
    level_variables = sorted(
        {str(c.get("level_variable", "strength")) for c in conditions.values()}
    )
    fields = {
        "TaskName": task,
        "TaskDescription": task_description,
        **({} if instructions is None else {"Instructions": instructions}),
        "protocol_name": protocol_name,
        "protocol_file": protocol_file,
        "protocol_sha256": protocol_sha256,
        "protocol_settings_sha256": protocol_settings_sha256,
        "protocol": protocol,
        "session_level_variable": (
            level_variables[0] if len(level_variables) == 1 else "per_condition"
        ),
        "display": dict(display),
        "image_size_px": [int(v) for v in image_size_px],
        "patch_px": patch_px,
        "conditions": conditions,
        "scenes": scenes,
        "session_reference": reference,
        "session_observer": observer,
        "tracker": tracker,
        "session_seed": seed,
        "started_utc": started_utc,
        "completed": completed,
        "calibration": list(calibration or []),
        "runs": [],
        "software_version": software_version,
    }
    clash = set(fields) & set(COLUMNS)
    if clash:  # BIDS: a column's description is the top-level key of its name (SESSION_FIELDS)
        raise ValueError(f"sidecar fields named like columns: {sorted(clash)}")
    return {**fields, **column_descriptions()}


def _check_names(row: dict) -> None:
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown beh.tsv columns: {sorted(unknown)}")
