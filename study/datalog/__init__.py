"""Session data on disk: BIDS paths, the trial log, gaze samples, sidecars."""

from study.datalog.atomic import write_json_atomic
from study.datalog.behlog import COLUMNS, PINNED_COLUMNS, BehaviourLog, read_rows
from study.datalog.paths import SessionPaths, check_label
from study.datalog.physio import PhysioLog, physio_sidecar

__all__ = [
    "COLUMNS",
    "PINNED_COLUMNS",
    "BehaviourLog",
    "PhysioLog",
    "SessionPaths",
    "check_label",
    "physio_sidecar",
    "read_rows",
    "write_json_atomic",
]
