"""Counterbalancing across participants: the condition order from the participant number.

``latin_square_row(n, row)`` is row ``row`` of a balanced (Williams) Latin square of ``n``
conditions: over ``n`` participants (``2n`` for odd ``n``) each condition comes at each
position equally often and, for even ``n``, follows each other condition equally often.
"""

from __future__ import annotations

import re
import zlib

from protocol.schema import Protocol


def participant_number(label: str) -> int:
    """The participant's number: the last run of digits in the label (``01`` -> 1, ``sim07`` -> 7,
    ``p2s07`` -> 7); a label
    without digits gets a stable number from its text (crc32)."""
    digits = re.findall(r"\d+", label)
    if digits:
        return int(digits[-1])
    return zlib.crc32(label.encode()) % 10000 + 1


def latin_square_row(n: int, row: int) -> list[int]:
    """Row ``row`` (0-based, taken modulo the square's rows) of a balanced Latin square of
    ``n`` items: 0-based item indices in presentation order.

    Even ``n``: ``n`` rows (Williams 1949); odd ``n``: ``2n`` rows (the square and its mirror).
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    first = [0]
    low, high = 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, ...
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = n if n % 2 == 0 else 2 * n
    r = row % rows
    order = [(item + r) % n for item in first]
    return order[::-1] if r >= n else order


def condition_order(protocol: Protocol, participant: str) -> tuple[list[str], dict]:
    """The session's condition order and its sidecar record (``counterbalancing``)."""
    names = [c.name for c in protocol.conditions]
    scheme = protocol.procedure.counterbalance
    number = participant_number(participant)
    record: dict = {
        "scheme": scheme,
        "order": protocol.procedure.order,
        "participant_number": number,
    }
    if scheme == "latin_square":
        rows = len(names) if len(names) % 2 == 0 else 2 * len(names)
        row = (number - 1) % rows
        names = [names[i] for i in latin_square_row(len(names), row)]
        record["latin_square_row"] = row
        record["latin_square_rows"] = rows
    record["condition_order"] = names
    return names, record
