"""A disk that fills up while a named file is being written, for tests of what a full disk
leaves behind: ``disk_fills_while_writing(monkeypatch, "o.png")``."""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path


class _FillingFile:
    """A file opened for writing that takes ``room`` more bytes (or characters), then fails
    as a full disk does: the part that fitted is written, the write raises ENOSPC."""

    def __init__(self, file, room: int) -> None:
        self._file, self._room = file, room

    def write(self, data):
        if len(data) > self._room:
            self._file.write(data[: self._room])
            self._file.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def fileno(self):  # PIL would write past ``write`` into the file descriptor
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def __iter__(self):
        return iter(self._file)


def disk_fills_while_writing(monkeypatch, name: str, *, room: int = 64) -> list[str]:
    """Every file whose name contains ``name`` opened for writing (``open``, ``Path.open``,
    ``Path.write_*``) from now on gets ``room`` bytes, then ENOSPC. Returns the list of the
    paths that hit the full disk (filled in as they do)."""
    real_open = builtins.open
    filled: list[str] = []

    def open_on_a_filling_disk(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if isinstance(file, str | os.PathLike) and name in Path(file).name:
            if not mode.startswith("r") and any(m in mode for m in "wax"):
                filled.append(os.fspath(file))
                return _FillingFile(handle, room)
        return handle

    monkeypatch.setattr(builtins, "open", open_on_a_filling_disk)
    monkeypatch.setattr(io, "open", open_on_a_filling_disk)
    return filled
