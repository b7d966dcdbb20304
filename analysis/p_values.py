"""How the report writes p-values: the one convention for text, tables and fit flags.

APA style: three decimals, and ``< 0.001`` below that (a p-value is never printed as 0: a test
gives an upper bound, not zero). The CSV tables and summary.json keep the numbers unrounded.
"""

from __future__ import annotations

import math

#: p-values below this print as ``< 0.001``.
P_FLOOR = 0.001
#: Table columns that hold p-values (formatted with ``fmt_p``).
P_COLUMNS = frozenset({"p", "p_holm", "gof_p", "interval_bias_p"})


def fmt_p(p) -> str:
    """A p-value as a table cell: ``0.023``, ``< 0.001``; missing or NaN as an en dash."""
    if p is None or not math.isfinite(float(p)):
        return "–"
    p = float(p)
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.3f}"


def p_text(p) -> str:
    """A p-value in running text: ``p = 0.023``, ``p < 0.001``, ``p = –`` when missing."""
    cell = fmt_p(p)
    return f"p {cell}" if cell.startswith("<") else f"p = {cell}"
