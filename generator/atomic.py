"""Crash-safe file writes, for every package: a file holds either its old or its new content,
never a torn one, and a write stopped half-way (Ctrl-C, a kill, a full disk) leaves no partial
file behind.

The new content goes to a temporary file beside the target (``.<name>.tmp-<pid>``, the name
``study.datalog.atomic.remove_stale_temporaries`` recognises after a kill), is fsynced and
renamed over the target, and the folder is fsynced so that the rename itself survives a power
cut.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def temporary_beside(path: Path) -> Path:
    """Where the new content of ``path`` is written before it replaces ``path``."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_dir(path: Path) -> None:
    """Make a directory entry change (create, rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the new content to; when the block ends it is
    fsynced and renamed over ``path`` (then the folder fsynced), or removed when it raises."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):  # the write's own error is the one to report
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None and error.strerror:
            # A full disk names the file it was writing (an OSError without errno and
            # strerror keeps its own message: a filename would replace it in str()).
            error.filename = str(path)
        raise
    fsync_dir(path.parent)


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` (a writer that needs a path: ``torch.save``, safetensors), then the
    temporary replaces ``path``; removed instead when ``write`` raises."""
    with _replacing(path) as tmp:
        write(tmp)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` when the block
    ends (removed instead when the block raises)."""
    with _replacing(path) as tmp, open(tmp, "wb") as f:
        yield f


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` atomically (``open_atomic``)."""
    with open_atomic(path) as f:
        f.write(content if isinstance(content, bytes) else content.encode("utf-8"))


def save_image_atomic(path: Path, image) -> None:
    """Save a PIL image to ``path`` atomically (``open_atomic``), in the format its extension
    names (as ``Image.save(path)`` picks it: the temporary's own name has no image extension).

    Raises:
        ValueError: the extension names no image format.
    """
    from PIL import Image

    path = Path(path)
    Image.init()
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"unknown file extension: {path.suffix}")
    with open_atomic(path) as f:
        image.save(f, format=image_format)
