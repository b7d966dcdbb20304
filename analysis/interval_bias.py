"""Interval bias: a participant's preference for answering "1" or "2" in the 2AFC task.

A bias lowers percent correct without any change in sensitivity, so it is reported per
participant and flagged (never excluded): the share of main-trial answers "1" with a two-sided
exact binomial test against 0.5, and the criterion ``c`` of the 2AFC decision (Macmillan &
Creelman 2005, ch. 7) from the answers conditional on the interval that held the foveated image.
``COLUMNS`` is the one definition of the columns (the QC table, summary.json and the page's
explanation all use it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm

from analysis.p_values import p_text

#: The QC table's interval-bias columns and what each holds (with its units).
COLUMNS = {
    "interval1_answer_rate": (
        'proportion (0 to 1) of the answered main trials answered "1" (first interval); '
        "0.5: no preference"
    ),
    "interval_bias_p": (
        'two-sided exact binomial test of the number of answers "1" against 0.5 '
        "(scipy.stats.binomtest)"
    ),
    "interval_bias_c": (
        "criterion c = -(z(H) + z(F)) / 2 in z units (standard-normal deviates), "
        'H = P(answer "1" | foveated image in interval 1), F = P(answer "1" | foveated image '
        'in interval 2), each (k + 0.5) / (n + 1); negative: favours "1", positive: favours "2", '
        "0: none; independent of how often the foveated image was found"
    ),
    "interval_bias_flagged": (
        "interval_bias_p below the QC rules' interval_bias_alpha (a flag: the participant "
        "is analysed)"
    ),
}


def interval_bias(answers: pd.DataFrame, *, alpha: float | None) -> dict:
    """One participant's interval-bias columns (``COLUMNS``).

    Args:
        answers: the participant's answered main trials (practice rows and aborts left out),
            with ``response`` and ``interval_foveated`` (1 or 2); rows where either is missing
            are ignored.
        alpha: the two-sided level of the flag; ``None``: never flagged.
    """
    both = answers[["response", "interval_foveated"]].dropna()
    both = both[both["response"].isin([1, 2]) & both["interval_foveated"].isin([1, 2])]
    n = len(both)
    if n == 0:
        return {
            "interval1_answer_rate": np.nan,
            "interval_bias_p": np.nan,
            "interval_bias_c": np.nan,
            "interval_bias_flagged": False,
        }
    said_1 = both["response"] == 1
    p = float(binomtest(int(said_1.sum()), n, 0.5, alternative="two-sided").pvalue)
    return {
        "interval1_answer_rate": float(said_1.mean()),
        "interval_bias_p": p,
        "interval_bias_c": _criterion(said_1, both["interval_foveated"] == 1),
        "interval_bias_flagged": alpha is not None and p < alpha,
    }


def _criterion(said_1: pd.Series, foveated_1: pd.Series) -> float:
    """c = -(z(H) + z(F)) / 2 with the log-linear correction (Hautus 1995), NaN when one of the
    two intervals never held the foveated image."""
    n_h, n_f = int(foveated_1.sum()), int((~foveated_1).sum())
    if n_h == 0 or n_f == 0:
        return float("nan")
    hit = (int((said_1 & foveated_1).sum()) + 0.5) / (n_h + 1)
    false_alarm = (int((said_1 & ~foveated_1).sum()) + 0.5) / (n_f + 1)
    return float(-(norm.ppf(hit) + norm.ppf(false_alarm)) / 2)


def flag_notes(participants: pd.DataFrame, *, alpha: float | None) -> list[str]:
    """A data note per flagged participant of the QC table (``run_qc``'s ``participants``)."""
    notes = []
    for row in participants[participants["interval_bias_flagged"]].itertuples(index=False):
        favoured = "1" if row.interval1_answer_rate > 0.5 else "2"
        notes.append(
            f'sub-{row.participant}: interval bias: answered "1" on '
            f"{100 * row.interval1_answer_rate:.0f} % of {row.responses} answered main trials "
            f"(exact binomial test against 50 %: {p_text(row.interval_bias_p)}, level {alpha:g}; "
            f'c = {row.interval_bias_c:+.2f} z, favours "{favoured}"); flagged, not excluded'
        )
    return notes
