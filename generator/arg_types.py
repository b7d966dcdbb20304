"""argparse types for the commands' numeric options and output files: a bad value is a one-line
usage error."""

from __future__ import annotations

import argparse


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (strengths, radii in degrees)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


SEED_MAX = 2**32 - 1


def seed_int(text: str) -> int:
    """argparse type: a seed, 0 to ``SEED_MAX`` (torch and numpy take no larger seed)."""
    value = nonnegative_int(text)
    if value > SEED_MAX:
        raise argparse.ArgumentTypeError(f"{value} is too large for a seed (at most {SEED_MAX})")
    return value


def size_list(text: str) -> list[int]:
    """argparse type: comma-separated image sizes in px, e.g. ``512,1024``."""
    return [positive_int(part) for part in text.split(",")]


def output_file(text: str, *, example: str = "out.json") -> str:
    """argparse type: a file to write later (JSON records): refused at once, before any work,
    when a folder has that name (suggesting ``example`` in it), a file stands where its folder
    must go, or the folder it goes in (or would be made in) takes no file (read-only, no
    permission: a file is made there and removed to see)."""
    import tempfile
    from pathlib import Path

    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file, e.g. {path / example}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(
                    f"{text}: {parent} is a file, not a folder it could go in"
                )
            try:
                tempfile.NamedTemporaryFile(dir=parent, prefix=".fovea-write-check-").close()
            except OSError as error:
                raise argparse.ArgumentTypeError(
                    f"{text}: cannot write in {parent} ({error.strerror or error}); give a "
                    "writable place"
                ) from None
            break
    return text


def output_file_like(example: str):
    """argparse type: ``output_file`` whose message for a folder suggests ``example`` in it
    (``events.jsonl`` for an event log, ``out.png`` for a figure)."""

    def check(text: str) -> str:
        return output_file(text, example=example)

    check.__name__ = "output_file"
    return check
