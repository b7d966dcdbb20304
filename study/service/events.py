"""Service events: Python logging plus an optional JSON-lines file (one object per line).

Every line has ``event`` (``start``, ``ready``, ``submit``, ``done``, ``cancel``, ``preempt``,
``crash``, ``restart``, ``speculation``, ``close`` ...), ``time_unix`` (wall clock) and ``t_s``
(``time.perf_counter``, the clock tickets use), plus the event's fields.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

logger = logging.getLogger("study.service")

_QUIET = {"submit", "done", "dispatch", "speculation", "cache_hit"}


class EventLog:
    """Writes events to ``logging`` (logger ``study.service``) and to ``path`` if given.

    Args:
        path: JSON-lines file, appended to (created with its parent folder); None for logging only.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def emit(self, event: str, *, level: int | None = None, **fields) -> dict:
        """Record one event; routine per-request events log at DEBUG, the rest at INFO."""
        record = {"event": event, "time_unix": time.time(), "t_s": time.perf_counter(), **fields}
        if level is None:
            level = logging.DEBUG if event in _QUIET else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "%s %s", event, json.dumps(fields, default=str))
        if self._file is not None:
            line = json.dumps(record, default=str)
            with self._lock:
                if self._file is not None:
                    self._file.write(line + "\n")
                    self._file.flush()
        return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
