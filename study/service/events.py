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
        self.write_error: str | None = None  # why the file was given up (a full disk)
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
                    try:
                        self._file.write(line + "\n")
                        self._file.flush()
                    except OSError as error:
                        self._stop_writing(error)
        return record

    def _stop_writing(self, error: OSError) -> None:
        """Give up the file after a failed write (a full disk): the service goes on, logging
        only. Raised from the thread that watches the generator, the error stopped that thread
        silently, and the next trial gave up minutes later saying the generator hangs."""
        self.write_error = f"{error.strerror or error}"
        logger.warning(
            "the service's event log %s could not be written (%s); its later events go to the "
            "console log only",
            self.path,
            self.write_error,
        )
        try:
            self._file.close()
        except OSError:
            pass
        self._file = None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
