"""Session data on disk: BIDS paths, the durable trial log, gaze samples, sidecars.

The ``beh.tsv`` format itself (columns, ``n/a``, the reader) is ``protocol.session_data``.
"""

from generator.process_lock import ProcessLock as SessionLock
from study.datalog.atomic import write_json_atomic
from study.datalog.behlog import BehaviourLog
from study.datalog.paths import SessionPaths, check_label
from study.datalog.physio import PhysioLog, physio_sidecar

__all__ = [
    "BehaviourLog",
    "PhysioLog",
    "SessionLock",
    "SessionPaths",
    "check_label",
    "physio_sidecar",
    "write_json_atomic",
]
