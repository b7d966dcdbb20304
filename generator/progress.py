"""Progress bars for long work, on a terminal and in a log file alike.

tqdm draws a bar on a terminal. Into a redirected log (``fovea model train ... > train.log``,
a cluster job, ``nohup``) it would write every refresh behind a carriage return, so the log
holds one very long line of ``\\r``-separated bars. tqdm has no line mode, so this module gives
it one: when the stream is not a terminal, each refresh becomes one whole line, at most one
every ``log_every_s`` seconds, and the last state is always written when the bar closes.
"""

from __future__ import annotations

import math
import re
import sys
import time
from typing import IO

LOG_EVERY_S = 60.0  # a line into a log at most this often (the last one is always written)
LOG_NCOLS = 100  # the width of a progress line in a log
# The bar, times and rate (items a second, or seconds an item when slower: "2.83s/run").
_TIMING = re.compile(r"\|[^|]*\||\d+:\d\d(:\d\d)?|[\d.?]+ ?[^\s,\]]*/s|[\d.?]+s/[^\s,\]]+")


def _progress_of(line: str) -> str:
    """``line`` without its bar, times and rate: two lines with the same progress compare equal."""
    return _TIMING.sub("", line)


class _LinesForLogs:
    """A file for tqdm that turns its ``\\r``-led refreshes into whole lines, at most one every
    ``every_s`` seconds (tqdm refreshes at once on ``set_postfix``, whatever its
    ``mininterval``); the latest refresh is written when the bar closes or a message comes."""

    def __init__(self, stream: IO[str], every_s: float) -> None:
        self.stream = stream
        self.every_s = every_s
        self.written_at = -math.inf
        self.pending = ""  # the latest refresh not yet written
        self.last = ""  # the latest line written (a line with no new progress is not repeated)

    def _emit(self, line: str) -> None:
        if line and _progress_of(line) != _progress_of(self.last):
            self.stream.write(line + "\n")
            self.last = line
        self.pending = ""

    def write(self, text: str) -> None:
        if text.startswith("\r"):  # a refresh of the bar (or tqdm clearing it)
            line = text.strip("\r\n").rstrip()
            if not line:
                return
            self.pending = line
            if time.monotonic() - self.written_at >= self.every_s:
                self._emit(line)
                self.written_at = time.monotonic()
            return
        if self.pending:  # the bar closes (a newline) or a message comes: its latest state first
            self._emit(self.pending)
        for part in text.split("\n"):
            if part.strip():
                self._emit(part.rstrip())

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or wrapped stream
        return False


def progress_bar(
    iterable=None,
    *,
    enabled: bool = True,
    stream: IO[str] | None = None,
    log_every_s: float = LOG_EVERY_S,
    **tqdm_kwargs,
):
    """A ``tqdm`` over ``iterable`` (or with ``total=``) on ``stream`` (stderr by default):
    a live bar on a terminal, a line every ``log_every_s`` seconds into a log, nothing when
    not ``enabled``. Other keyword arguments go to tqdm (``total``, ``desc``, ``unit``, ...)."""
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if _is_terminal(stream):
        return tqdm(iterable, disable=not enabled, file=stream, dynamic_ncols=True, **tqdm_kwargs)
    tqdm_kwargs.pop("dynamic_ncols", None)
    return tqdm(
        iterable,
        disable=not enabled,
        file=_LinesForLogs(stream, log_every_s),
        ncols=LOG_NCOLS,
        ascii=True,
        **tqdm_kwargs,
    )
