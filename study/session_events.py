"""The session's BIDS events file: each shown interval's onset on the session clock (the physio
file's time line), and its sidecar with ``StimulusPresentation`` (which BEP020 requires of the
events that go with gaze-on-screen eye-tracking data).

Rewritten from ``beh.tsv``'s rows at the end of every run (atomically), so it always matches
the trial log.
"""

from __future__ import annotations

from protocol.session_data import MISSING, MISSING_TOKENS, format_value
from study.datalog import SessionPaths, write_json_atomic
from study.datalog.atomic import write_atomic
from study.trial.dataviewer import image_ref

EVENT_COLUMNS = ("onset", "duration", "trial_type", "trial", "condition", "level", "image_file")


def event_rows(*, rows: list[dict], stimulus_duration_s: float) -> list[dict]:
    """Two events per trial whose images were shown (``onset_s``, ``onset2_s``), in time order.

    ``trial_type`` is ``foveated`` or ``full`` (the image shown in that interval); ``image_file``
    its PNG relative to the EDF's folder (``sourcedata/sub-<p>/ses-<s>/eyetrack``).
    """
    events = []
    for row in rows:
        foveated = int(float(row["interval_foveated"]))
        for number, column in ((1, "onset_s"), (2, "onset2_s")):
            onset = row.get(column)
            if onset is None or str(onset) in MISSING_TOKENS:
                continue
            kind = "foveated" if number == foveated else "full"
            events.append(
                {
                    "onset": float(onset),
                    "duration": float(stimulus_duration_s),
                    "trial_type": kind,
                    "trial": int(float(row["trial"])),
                    "condition": row["condition"],
                    "level": row["level"],
                    "image_file": image_ref(trial=int(float(row["trial"])), kind=kind),
                }
            )
    return sorted(events, key=lambda e: e["onset"])


def events_sidecar(
    *, display: dict, refresh_hz: float, task: str, description: str, instructions: str
) -> dict:
    """The events sidecar: ``TaskName``, ``TaskDescription``, ``Instructions`` (the welcome
    screen's text), column descriptions and ``StimulusPresentation`` (metres, pixels)."""
    return {
        "TaskName": task,
        "TaskDescription": description,
        "Instructions": instructions,
        "onset": {"Description": "interval onset, from the flip (session clock)", "Units": "s"},
        "duration": {"Description": "the protocol's stimulus duration", "Units": "s"},
        "trial_type": {
            "Description": "the image shown in this interval",
            "Levels": {
                "foveated": "the foveated image, generated for the measured gaze",
                "full": "the full-resolution reference",
            },
        },
        "trial": {"Description": "beh.tsv trial number"},
        "condition": {"Description": "the trial's condition (beh.tsv)"},
        "level": {"Description": "the trial's level (beh.tsv)"},
        "image_file": {
            "Description": "the shown image (PNG), relative to "
            "sourcedata/sub-<p>/ses-<s>/eyetrack/ (the EDF copies' folder)"
        },
        "StimulusPresentation": {
            "ScreenDistance": display["distance_cm"] / 100.0,
            "ScreenOrigin": ["center", "center"],
            "ScreenResolution": [display["width_px"], display["height_px"]],
            "ScreenSize": [display["width_cm"] / 100.0, display["height_cm"] / 100.0],
            "ScreenRefreshRate": refresh_hz,
            "SoftwareName": "PsychoPy (fovea-kit)",
        },
    }


def write_events(*, paths: SessionPaths, protocol, rows: list[dict], display: dict) -> None:
    """Write ``<stem>_events.tsv`` and its sidecar (both atomically)."""
    events = event_rows(rows=rows, stimulus_duration_s=protocol.timing.stimulus_duration_s)
    lines = ["\t".join(EVENT_COLUMNS)]
    for event in events:
        lines.append("\t".join(_cell(event[c]) for c in EVENT_COLUMNS))
    paths.events_tsv.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(paths.events_tsv, "\n".join(lines) + "\n")
    write_json_atomic(
        paths.events_json,
        events_sidecar(
            display=display,
            refresh_hz=protocol.display.refresh_hz,
            task=protocol.task,
            description=protocol.description,
            instructions=protocol.instructions.welcome,
        ),
    )


def _cell(value) -> str:
    if isinstance(value, str):
        return value or MISSING
    return format_value(value)
