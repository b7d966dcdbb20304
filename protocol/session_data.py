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
- ``beh_sidecar``: the sidecar's fields in their order.
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
        numeric: read as a number by the analysis (``n/a`` -> NaN); else text.
        allowed: the only valid values: numbers of a numeric column (None: any finite number),
            texts of a text column (None: any text).
        never_missing: every presented trial (aborted ones included) has a value.
        description: for the sidecar's ``columns`` table (None: the name says it).
    """

    name: str
    numeric: bool = False
    allowed: tuple[float, ...] | tuple[str, ...] | None = None
    never_missing: bool = False
    description: str | None = None


_BINARY = (0, 1)
_INTERVAL = (1, 2)

PINNED = (
    Column("participant"),
    Column("session"),
    Column("trial", numeric=True, never_missing=True),
    Column("condition", never_missing=True),
    Column(
        "level",
        numeric=True,
        never_missing=True,
        description="manipulated value; larger = more degradation (see level_variable per "
        "condition)",
    ),
    Column(
        "interval_foveated",
        numeric=True,
        allowed=_INTERVAL,
        never_missing=True,
        description="1 or 2: the interval that held the foveated image",
    ),
    Column(
        "response",
        numeric=True,
        allowed=_INTERVAL,
        description="interval chosen as different (n/a: aborted)",
    ),
    Column("correct", numeric=True, allowed=_BINARY, description="1/0 (n/a: aborted)"),
    Column("rt_s", numeric=True, description="response time from the response screen's onset, s"),
    Column(
        "fixation_break",
        numeric=True,
        allowed=_BINARY,
        never_missing=True,
        description="1: aborted by a fixation break (re-queued)",
    ),
    Column(
        "gaze_x_deg",
        numeric=True,
        description="measured gaze at generation time, deg from screen centre, x right",
    ),
    Column(
        "gaze_y_deg",
        numeric=True,
        description="measured gaze at generation time, deg from screen centre, y up",
    ),
    Column("seed", numeric=True),
    Column("tokens", numeric=True),
    Column(
        "gen_latency_s",
        numeric=True,
        description="foveated generation request-to-result latency, s (real time)",
    ),
    Column(
        "onset_s",
        numeric=True,
        description="first-interval onset, s since session start (session clock)",
    ),
)
OPTIONAL = (
    Column("tokens_full", numeric=True),
    Column(
        "deadline_missed",
        numeric=True,
        allowed=_BINARY,
        description="1: the foveated image missed the generation deadline",
    ),
    Column(
        "cached_stimulus",
        numeric=True,
        allowed=_BINARY,
        description="1: the foveated image missed the deadline and a cached one, generated earlier "
        "for the same plan within cache_gaze_tolerance_deg of the measured gaze, was shown",
    ),
    Column(
        "dropped_frames",
        numeric=True,
        description="frame intervals > 1.5 refresh periods during the trial",
    ),
    Column("fixation_x_deg", numeric=True),
    Column("fixation_y_deg", numeric=True),
    Column("observer", allowed=OBSERVERS),
    Column("p_correct_model", numeric=True),
)
# Numbers the analysis does not analyse are read as text (numeric=False): twin_latency_s,
# gaze_to_flip_median_s, speculation_kept.
EXTRA = (
    Column("track", description="procedure track (condition, or condition/sN for staircase N)"),
    Column(
        "attempt", numeric=True, description="presentation number of this plan (re-queues count up)"
    ),
    Column(
        "abort_reason",
        description="fixation_break | deadline | no_response | generator_crash | "
        "dropped_frame | recording_stopped | link_lost | escape (n/a: completed trial)",
    ),
    Column("level_variable"),  # strength | radius_shrink | periphery_factor
    Column("conditioning"),  # class label or prompt
    Column("token_ratio", numeric=True),
    Column("twin_latency_s"),  # full-resolution twin's request-to-result latency (cached: 0)
    Column("gaze_to_flip_median_s"),  # per-trial median gaze-sample-to-flip latency
    Column("speculation_kept"),  # 1: the image started at the target was used; 0: regenerated
    Column(
        "scene",
        description="sha256 of the trial's scene (the low-resolution photograph the foveated "
        "image and its reference were made from; scene models only, else n/a)",
    ),
    Column(
        "reference",
        description="what the foveated image was compared with: generated (the full-resolution "
        "twin of the same scene and seed) or original (the photograph the scene came from)",
    ),
    Column(
        "onset2_s",
        numeric=True,
        description="second-interval onset, s since session start (session clock, from the flip)",
    ),
    *(
        Column(
            f"dropped_frames_{phase}",
            numeric=True,
            description=f"frame intervals > 1.5 refresh periods while the {what} was shown",
        )
        for phase, what in (
            ("fixation", "fixation mark before onset (hold and wait for the images)"),
            ("interval1", "first interval's image"),
            ("mask", "mask"),
            ("isi", "ISI's mark"),
            ("interval2", "second interval's image"),
        )
    ),
    Column(
        "fixation_window_deg",
        numeric=True,
        description="radius of the fixation window around the measured gaze from the generation "
        "on (the layout's padding, within [0.5, tolerance_deg]; no padding: tolerance_deg)",
    ),
    Column(
        "blink_in_interval",
        numeric=True,
        allowed=_BINARY,
        description="1: an invalid gaze sample (blink) while interval 1 or 2 was shown, shorter "
        "than max_invalid_s (not a break)",
    ),
    Column(
        "given_up",
        numeric=True,
        allowed=_BINARY,
        description="1: this aborted trial's plan reached [procedure] max_attempts and is not "
        "presented again",
    ),
    Column(
        "refixated",
        numeric=True,
        allowed=_BINARY,
        description="1: a blink while waiting for the images; the gaze was held again before "
        "the onset",
    ),
    Column(
        "block",
        description="practice | main: practice trials (easy levels, before the main trials) are "
        "excluded from the fits (n/a in files written before the column existed: main)",
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

    Raises:
        FoveaError: the header is not this version's column list.
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
    header = lines[0].split("\t") if lines and lines[0] else []
    if tuple(header) != COLUMNS:
        raise FoveaError(
            f"{path}: header does not match this version's beh.tsv columns; cannot resume it "
            "(start a new session)"
        )
    return [dict(zip(COLUMNS, line.split("\t"), strict=True)) for line in lines[1:] if line]


def column_descriptions() -> dict[str, str]:
    """The sidecar's ``columns`` table: the columns whose name does not say it all."""
    return {c.name: c.description for c in COLUMN_TYPES.values() if c.description is not None}


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

    The session adds ``counterbalancing`` (condition order) and ``practice`` records, ``runs``
    records as it goes (with their ``breaks``), ``procedure_estimates`` and
    ``session_duration_s`` at the end and ``true_thresholds`` for simulated observers.
    """
    level_variables = sorted(
        {str(c.get("level_variable", "strength")) for c in conditions.values()}
    )
    return {
        "TaskName": task,
        "TaskDescription": task_description,
        "protocol_name": protocol_name,
        "protocol_file": protocol_file,
        "protocol_sha256": protocol_sha256,
        "protocol_settings_sha256": protocol_settings_sha256,
        "protocol": protocol,
        "level_variable": level_variables[0] if len(level_variables) == 1 else "per_condition",
        "display": dict(display),
        "image_size_px": [int(v) for v in image_size_px],
        "patch_px": patch_px,
        "conditions": conditions,
        "scenes": scenes,
        "reference": reference,
        "observer": observer,
        "tracker": tracker,
        "seed": seed,
        "started_utc": started_utc,
        "completed": completed,
        "calibration": list(calibration or []),
        "runs": [],
        "software_version": software_version,
        "columns": column_descriptions(),
    }


def _check_names(row: dict) -> None:
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown beh.tsv columns: {sorted(unknown)}")
