"""The emulated EDF: a readable text stand-in in the layout of SR Research's ASC export.

The pylink emulator (``study.trackers.pylink_emulator``) writes it on its emulated Host PC while a
data file is open, and ``receiveDataFile`` copies it like a real EDF. Lines (tab separated, times
in tracker milliseconds):

- ``** ...``: header (preamble text).
- ``MSG <t> <text>``: a message (``sendMessage``, or one the Host writes itself: ``!CAL ...``,
  ``DRIFTCORRECT ...``, ``!MODE RECORD ...``).
- ``START <t> RIGHT SAMPLES EVENTS`` / ``END <t> SAMPLES EVENTS``: a recording block.
- ``SAMPLES GAZE RIGHT RATE 1000.00 ...``: the block's eye and sampling rate.
- ``<t> <x_px> <y_px> <pupil> ...``: a sample; ``.`` for x/y and 0 pupil while the eye is lost.

``read_edf_text`` parses the file back for tests and checks (messages, samples, blocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO


def _time_text(t_ms: float) -> str:
    return f"{t_ms:.0f}" if float(t_ms).is_integer() else f"{t_ms:.1f}"


class EdfTextWriter:
    """Appends one emulated EDF on the emulated Host PC's disk.

    Args:
        path: the file (created; an existing file with this name is replaced, as the Host PC
            does when ``openDataFile`` names an existing file).
        header: preamble lines (without the leading ``**``).
    """

    def __init__(self, path: Path, *, header: list[str]) -> None:
        self.path = Path(path)
        self._file: TextIO | None = self.path.open("w", encoding="utf-8", newline="\n")
        for line in header:
            self._file.write(f"** {line}\n")
        self._file.write("**\n\n")
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file is None

    def _write(self, line: str) -> None:
        if self._file is None:
            raise RuntimeError(f"emulated EDF {self.path.name} is closed")
        self._file.write(line + "\n")

    def message(self, t_ms: float, text: str) -> None:
        self._write(f"MSG\t{_time_text(t_ms)} {text}")

    def start_block(self, t_ms: float, *, eye: str, rate_hz: float) -> None:
        """``START`` and the ``SAMPLES`` line of a recording block (``eye``: LEFT or RIGHT)."""
        self._write(f"START\t{_time_text(t_ms)} \t{eye}\tSAMPLES\tEVENTS")
        self._write(f"SAMPLES\tGAZE\t{eye}\tRATE\t{rate_hz:8.2f}\tTRACKING\tCR\tFILTER\t2")

    def sample(self, t_ms: float, gaze_px: tuple[float, float] | None, pupil: float) -> None:
        """One sample; ``gaze_px`` None while the eye is lost (blink, track loss)."""
        if gaze_px is None:
            self._write(f"{_time_text(t_ms)}\t   .\t   .\t    0.0\t...")
        else:
            x_px, y_px = gaze_px
            self._write(f"{_time_text(t_ms)}\t{x_px:7.1f}\t{y_px:7.1f}\t{pupil:7.1f}\t...")

    def end_block(self, t_ms: float) -> None:
        self._write(f"END\t{_time_text(t_ms)} \tSAMPLES\tEVENTS")
        self.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class EdfText:
    """An emulated EDF read back.

    Attributes:
        header: the ``**`` lines, without the marker.
        messages: ``(t_ms, text)`` in file order.
        samples: ``(t_ms, x_px, y_px, pupil)``; x/y None while the eye was lost.
        blocks: ``(start_ms, end_ms)`` of each recording block; end None when the file ended
            inside a block (the link was lost while recording).
        rates_hz: the sampling rate of each block.
        eyes: the recorded eye of each block (``LEFT`` or ``RIGHT``).
    """

    header: list[str] = field(default_factory=list)
    messages: list[tuple[float, str]] = field(default_factory=list)
    samples: list[tuple[float, float | None, float | None, float]] = field(default_factory=list)
    blocks: list[tuple[float, float | None]] = field(default_factory=list)
    rates_hz: list[float] = field(default_factory=list)
    eyes: list[str] = field(default_factory=list)

    def texts(self, prefix: str = "") -> list[str]:
        """Message texts starting with ``prefix``."""
        return [text for _, text in self.messages if text.startswith(prefix)]

    def message_time(self, text: str) -> float:
        """Time (ms) of the first message equal to ``text``; KeyError when there is none."""
        for t_ms, message in self.messages:
            if message == text:
                return t_ms
        raise KeyError(text)

    def sample_times(self, start_ms: float = float("-inf"), end_ms: float = float("inf")):
        """Sample times (ms) within ``[start_ms, end_ms]``."""
        return [t for t, *_ in self.samples if start_ms <= t <= end_ms]


def _parse_line(out: EdfText, line: str) -> None:
    head, _, rest = line.partition("\t")
    if head == "MSG":
        t_text, _, text = rest.partition(" ")
        out.messages.append((float(t_text), text))
    elif head == "START":
        fields = rest.split()
        out.blocks.append((float(fields[0]), None))
        out.eyes.append(fields[1])
    elif head == "END":
        start, _ = out.blocks[-1]
        out.blocks[-1] = (start, float(rest.split()[0]))
    elif head == "SAMPLES":
        fields = rest.split("\t")
        out.rates_hz.append(float(fields[fields.index("RATE") + 1]))
    elif head[:1].isdigit():
        fields = line.split("\t")
        x = None if fields[1].strip() == "." else float(fields[1])
        y = None if fields[2].strip() == "." else float(fields[2])
        out.samples.append((float(fields[0]), x, y, float(fields[3])))


def read_edf_text(path: Path) -> EdfText:
    """Parse an emulated EDF (see the module docstring for the layout)."""
    out = EdfText()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("**"):
            text = line[2:].strip()
            if text:
                out.header.append(text)
        elif line.strip():
            _parse_line(out, line)
    return out
