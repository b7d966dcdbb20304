"""The report's output folder (``--out``): which of its files are the report's own.

The report writes ``report.html``, ``thresholds.csv``, ``summary.json``, ``figures/*.png`` and
``tables/*.csv`` and removes an earlier run's before each run. It may do that only to files a
report wrote: a ledger in the folder (``LEDGER``, one relative path a line) lists every file a
report has written there, entered before the file is written. A file of those kinds that the
ledger does not list (an analyst's own figures or tables, the folder being a paper's or the
project's) is neither overwritten nor removed: the run is refused before the fits, naming it.

A folder written by a report before the ledger existed is recognised by its ``summary.json``
(its `schema_version` and `data_dir`) and adopted.
"""

from __future__ import annotations

import json
from pathlib import Path

from generator.atomic import write_atomic
from generator.errors import FoveaError

#: The report's top-level files; ``report.html`` is written last, so a run stopped half-way
#: leaves none of an earlier run's beside its own.
RESULT_FILES = ("report.html", "thresholds.csv", "summary.json")
#: The ledger of the files reports wrote in the folder.
LEDGER = ".fovea-report-files"
_HEADER = "# files fovea's report wrote in this folder (it removes only these)\n"


def _kinds(out: Path) -> list[Path]:
    """The existing files of the kinds the report writes and removes."""
    top = [out / name for name in RESULT_FILES if (out / name).is_file()]
    return [*top, *sorted((out / "figures").glob("*.png")), *sorted((out / "tables").glob("*.csv"))]


def _ledger(out: Path) -> set[str]:
    try:
        text = (out / LEDGER).read_text(encoding="utf-8")
    except FileNotFoundError:
        return _adopted(out)
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def _adopted(out: Path) -> set[str]:
    """A folder a report wrote before the ledger existed: all its files of the report's kinds."""
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not (isinstance(summary, dict) and "schema_version" in summary and "data_dir" in summary):
        return set()
    return {p.relative_to(out).as_posix() for p in _kinds(out)}


def check_ownership(out: Path) -> None:
    """Refuses an ``out`` holding a file of the report's kinds that no report wrote there.

    Raises:
        FoveaError: naming the first few such files.
    """
    if not out.is_dir():
        return
    own = _ledger(out)
    foreign = [p.relative_to(out).as_posix() for p in _kinds(out)]
    foreign = [name for name in foreign if name not in own]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise FoveaError(
            f"--out {out} holds files no report wrote ({', '.join(foreign[:3])}{more}), which the "
            "report would overwrite or remove: choose a new or empty folder"
        )


def remove_earlier_results(out: Path) -> None:
    """Removes an earlier run's files (the ledger's), so none passes for this run's: a
    participant since removed, or all of them when this run is stopped half-way."""
    own = _ledger(out)
    for path in _kinds(out):
        if path.relative_to(out).as_posix() in own:
            path.unlink()


def enter(out: Path, paths: list[Path]) -> None:
    """Enters ``paths`` (below ``out``) in the ledger; before they are written."""
    own = _ledger(out) | {Path(p).relative_to(out).as_posix() for p in paths}
    write_atomic(out / LEDGER, _HEADER + "".join(f"{name}\n" for name in sorted(own)))
