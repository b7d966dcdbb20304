"""Quality control per participant, and explicit, configurable exclusion rules.

Trial rules remove single trials from the fits (response times outside a window, deadline
misses, dropped frames); participant rules remove a participant from the fits and the group
statistics (too many fixation breaks, poor calibration, too many deadline misses or response-time
outliers, a fit with too few trials). Every rule is a field of ``QCRules``; ``None`` switches it
off. The report lists each rule, its setting, and what it excluded.

Rules can be read from a JSON or TOML file (``--qc-rules FILE``) holding any subset of the fields.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.interval_bias import interval_bias
from generator.errors import FoveaError
from protocol.session_data import (
    REPORT_MIN_TRIALS_PER_CONDITION,
    STIMULUS_DROP_PHASES,
    drop_column,
)


@dataclass(frozen=True, kw_only=True)
class QCRules:
    """Exclusion rules (``None`` disables a rule).

    Attributes:
        rt_min_s: trial rule: responses faster than this are anticipations.
        rt_max_s: trial rule: responses slower than this are inattentive.
        exclude_deadline_missed_trials: trial rule: drop trials whose foveated image missed the
            generation deadline (a cached image was shown instead).
        max_dropped_frames_per_trial: trial rule: drop trials with more dropped frames while
            the images were shown (``stimulus_dropped_frames``: interval 1 to interval 2; a drop
            between trials or during the answer changes nothing the participant saw).
        exclude_incomplete_sessions: session rule: drop sessions that did not complete
            (default: analysed and flagged).
        max_fixation_break_rate: participant rule: share of presentations aborted by a fixation
            break.
        max_calibration_error_deg: participant rule: mean validation error over the accepted
            calibrations (a rejected setup attempt that was retried is skipped).
        max_deadline_miss_rate: participant rule: share of trials with a missed deadline.
        max_rt_outlier_rate: participant rule: share of responses outside [rt_min_s, rt_max_s].
        min_trials_per_condition: participant rule: analysed trials each condition needs.
        interval_bias_alpha: flag, never an exclusion: the two-sided level at which a
            participant's share of answers "1" differs from 0.5 (``analysis.interval_bias``).
    """

    rt_min_s: float | None = 0.15
    rt_max_s: float | None = 10.0
    exclude_deadline_missed_trials: bool = False
    max_dropped_frames_per_trial: int | None = None
    exclude_incomplete_sessions: bool = False
    max_fixation_break_rate: float | None = 0.25
    max_calibration_error_deg: float | None = 1.0
    max_deadline_miss_rate: float | None = 0.2
    max_rt_outlier_rate: float | None = 0.2
    min_trials_per_condition: int | None = REPORT_MIN_TRIALS_PER_CONDITION
    interval_bias_alpha: float | None = 0.05

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.type.startswith("bool"):
                if not isinstance(value, bool):
                    raise FoveaError(f"QC rule {f.name} must be true or false, got {value!r}")
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise FoveaError(
                    f"QC rule {f.name} must be a non-negative number or null, got {value!r}"
                )
        if (
            self.rt_min_s is not None
            and self.rt_max_s is not None
            and self.rt_min_s >= self.rt_max_s
        ):
            raise FoveaError(
                f"QC rules: rt_min_s ({self.rt_min_s}) must be below rt_max_s ({self.rt_max_s})"
            )
        for name in ("max_fixation_break_rate", "max_deadline_miss_rate", "max_rt_outlier_rate"):
            value = getattr(self, name)
            if value is not None and value > 1:
                raise FoveaError(f"QC rule {name} is a proportion in [0, 1], got {value!r}")
        if self.interval_bias_alpha is not None and not 0 < self.interval_bias_alpha < 1:
            raise FoveaError(
                f"QC rule interval_bias_alpha is a level in (0, 1), got {self.interval_bias_alpha!r}"
            )

    @classmethod
    def from_file(cls, path: str | Path) -> QCRules:
        """Rules from a JSON or TOML file; unknown keys are errors (a typo must not pass)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # a BOM: a file saved by Notepad
        except OSError as error:
            raise FoveaError(f"cannot read QC rules {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise FoveaError(f"QC rules {path}: not a text file (JSON or TOML)") from None
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            raise FoveaError(f"QC rules {path}: cannot parse: {error}") from None
        if not isinstance(data, dict):
            raise FoveaError(f"QC rules {path}: expected a table of rule = value")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FoveaError(
                f"QC rules {path}: unknown rule(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**data)
        except FoveaError as error:
            raise FoveaError(f"QC rules {path}: {error}") from None

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class QCResult:
    """What QC found and what it excluded.

    Attributes:
        trials: all trials with ``analysed`` (bool) and ``excluded_by`` (rule name or "")
            columns; ``analysed`` is the final set used by the fits.
        participants: one row per participant: metrics, ``excluded`` and ``exclusion_reasons``.
        exclusions: one row per rule: rule, applies_to, setting, trials_excluded,
            participants_excluded.
    """

    trials: pd.DataFrame
    participants: pd.DataFrame
    exclusions: pd.DataFrame

    @property
    def excluded_participants(self) -> list[str]:
        p = self.participants
        return sorted(p.loc[p["excluded"], "participant"].astype(str))


def responded(trials: pd.DataFrame) -> pd.Series:
    """Trials that are responses (not aborted): fixation_break 0 and ``correct`` present."""
    return (trials["fixation_break"] == 0) & trials["correct"].notna()


def unchecked_notes(qc: QCResult, rules: QCRules) -> list[str]:
    """What a rule could not check, one note per participant: a missing value passes every rule,
    so responses without ``rt_s`` and participants without a recorded calibration are analysed
    unchecked. Perceptual-observer sessions get no such note (a model has neither response
    times nor a calibration); ``run_qc`` applies the rules to them as to the others."""
    notes = []
    t = qc.trials[qc.trials["observer"] != "perceptual"]
    rt_rules = [
        n for n in ("rt_min_s", "rt_max_s", "max_rt_outlier_rate") if getattr(rules, n) is not None
    ]
    if rt_rules:
        resp = responded(t)
        total = t[resp].groupby("participant").size()
        missing = t[resp & t["rt_s"].isna()].groupby("participant").size()
        for participant, n in missing.items():
            notes.append(
                f"sub-{participant}: {n} of {total[participant]} responses have no response time "
                f"(rt_s n/a): {', '.join(rt_rules)} could not check them; they are analysed"
            )
    if rules.max_calibration_error_deg is not None:
        humans = qc.participants[qc.participants["participant"].isin(set(t["participant"]))]
        for participant in humans.loc[humans["calibration_error_deg"].isna(), "participant"]:
            notes.append(
                f"sub-{participant}: no calibration error recorded (sidecar 'calibration'): "
                "max_calibration_error_deg could not check this participant"
            )
    return notes


#: One-sided level below which a participant's proportion correct counts as above chance.
CHANCE_ALPHA = 0.05
#: Answers a participant needs before ``performance_notes`` says anything (fewer are never
#: fitted: the report's floor of ``min_trials_per_condition``); 10 of 10 correct is p = 0.001.
PERFORMANCE_MIN_ANSWERS = 10


def performance_notes(trials: pd.DataFrame) -> list[str]:
    """A note per participant whose answers were at chance or all correct, over every answered
    main trial (a flag, never an exclusion; ``trials``: ``run_qc``'s, practice left out), from
    ``PERFORMANCE_MIN_ANSWERS`` answers on.

    At chance: the number correct is not above half (one-sided exact binomial test against 50 %,
    ``CHANCE_ALPHA``): every tested level was too hard for the participant (in a study of
    foveation that cannot be seen, the finding itself), or they misunderstood the task or the
    response keys; such a participant can still get a threshold inside the
    tested levels from noise. All correct: every tested level was too easy. The per-fit notes
    say the same per condition only where a fit ends at a bound."""
    from scipy.stats import binomtest

    from analysis.p_values import p_text

    notes = []
    answered = trials[responded(trials) & own_trials(trials)]
    for participant, g in answered.groupby("participant", sort=True):
        n, k = len(g), int((g["correct"] == 1).sum())
        if n < PERFORMANCE_MIN_ANSWERS:
            continue
        if k == n:
            notes.append(
                f"sub-{participant}: all {n} answered main trials correct (ceiling): every tested "
                "level was easy for this participant, so their thresholds lie below the tested "
                "levels (a flag, not an exclusion)"
            )
            continue
        p = float(binomtest(k, n, 0.5, alternative="greater").pvalue)
        if p >= CHANCE_ALPHA:
            notes.append(
                f"sub-{participant}: {k} of {n} answered main trials correct "
                f"({100 * k / n:.0f} %), not above chance (one-sided exact binomial test against "
                f"50 %: {p_text(p)}): either no tested level let this participant tell the "
                "images apart (the levels were too hard, or the foveation is invisible to them), "
                "or they misunderstood the task or the response keys (a flag, not an exclusion)"
            )
    return notes


def _calibration_errors(sessions) -> dict[str, list[float]]:
    """Participant -> the mean validation errors of the calibrations the trials ran under.

    The study records every setup attempt in the sidecar's ``calibration`` list. A rejected
    attempt (``accepted: false``) followed by a later attempt of the same setup is skipped; one
    that ended its setup (the study gave up after ``max_setup_attempts`` and went on with it)
    counts. Entries without ``accepted`` (older files) count."""
    out: dict[str, list[float]] = {}
    for s in sessions:
        cal = s.sidecar.get("calibration") if s.sidecar else None
        entries = [c for c in cal if isinstance(c, dict)] if isinstance(cal, list) else []
        values = []
        for i, c in enumerate(entries):
            error = c.get("avg_error_deg")
            if isinstance(error, bool) or not isinstance(error, int | float):
                continue
            if c.get("accepted") is False and _retried(c, entries[i + 1 : i + 2]):
                continue
            values.append(float(error))
        out.setdefault(s.participant, []).extend(values)
    return out


def _retried(entry: dict, following: list[dict]) -> bool:
    """Whether the next entry is another attempt of the same setup (same run, a later attempt;
    without attempt numbers, any next entry of the same run)."""
    if not following or following[0].get("run") != entry.get("run"):
        return False
    this, next_ = entry.get("attempts"), following[0].get("attempts")
    if isinstance(this, int) and isinstance(next_, int):
        return next_ > this
    return True


def own_trials(trials: pd.DataFrame) -> pd.Series:
    """Trials that count for their participant label's QC metrics and notes: all but the
    perceptual-observer trials of a label that also has participant (human or parametric)
    trials. ``fovea simulate --observer perceptual`` labels its sessions sim01, sim02, ... as
    the parametric ones, so a lab puts them in the same data folder under another session label
    (sub-sim01/ses-vdp); the model's session then says nothing about the participant sim01."""
    perceptual = trials["observer"] == "perceptual"
    shared = trials["participant"].isin(set(trials.loc[~perceptual, "participant"]))
    return ~(perceptual & shared)


def run_qc(*, trials: pd.DataFrame, sessions, rules: QCRules) -> QCResult:
    """Apply the rules to the trials of every session, perceptual-observer ones included (their
    metrics are in the QC table; ``unchecked_notes`` leaves them out). A perceptual-observer
    session under a participant's label (``own_trials``) goes through the trial rules only: the
    participant's metrics and rules leave it out.

    Trial rules first (each trial is excluded by the first rule that matches), then the
    participant metrics on what is left, then the participant rules.

    Args:
        trials: the dataset's trial table (``load_dataset(...).trials``).
        sessions: the dataset's sessions (for sidecar calibration and completion).
        rules: exclusion rules.
    """
    t = trials.copy()
    resp = responded(t)
    t["excluded_by"] = ""
    t.loc[~resp, "excluded_by"] = np.where(
        t.loc[~resp, "fixation_break"] == 1, "aborted: fixation break", "aborted"
    )
    exclusion_rows = _apply_trial_rules(t, resp, sessions, rules)
    own = own_trials(t)
    labels_with_participant = set(t.loc[own & (t["observer"] != "perceptual"), "participant"])
    participants = participant_metrics(
        t[own],
        [
            s
            for s in sessions
            if not (s.observer == "perceptual" and s.participant in labels_with_participant)
        ],
        rules,
    )
    reasons = _apply_participant_rules(participants, rules, exclusion_rows)
    participants["exclusion_reasons"] = ["; ".join(reasons[p]) for p in participants["participant"]]
    participants["excluded"] = participants["exclusion_reasons"] != ""
    excluded = set(participants.loc[participants["excluded"], "participant"])
    # Count the trials each participant rule removed (the first rule that names a participant).
    counted: set[str] = set()
    final_rows = []
    for name, applies, setting, n, who in exclusion_rows:
        if applies == "participant" and who:
            people = [p for p in who.split(", ") if p not in counted]
            counted.update(people)
            mask = t["participant"].astype(str).isin(people) & own & (t["excluded_by"] == "")
            t.loc[mask, "excluded_by"] = f"participant: {name}"
            n = int(mask.sum())
        final_rows.append(
            {
                "rule": name,
                "applies_to": applies,
                "setting": "off" if setting is None else setting,
                "trials_excluded": n,
                "participants_excluded": who,
            }
        )
    t["analysed"] = t["excluded_by"] == ""
    assert excluded == counted
    return QCResult(trials=t, participants=participants, exclusions=pd.DataFrame(final_rows))


# One exclusion rule's row before the participant rules' trials are counted:
# (rule, applies_to, setting, trials_excluded, participants_excluded).
_RuleRow = tuple[str, str, object, int, str]


def _apply_trial_rules(
    t: pd.DataFrame, resp: pd.Series, sessions, rules: QCRules
) -> list[_RuleRow]:
    """Marks ``excluded_by`` of the trials each trial (and session) rule removes, in order."""

    def exclude(mask: pd.Series, rule: str) -> int:
        new = mask & (t["excluded_by"] == "")
        t.loc[new, "excluded_by"] = rule
        return int(new.sum())

    exclusion_rows: list[_RuleRow] = []
    rt = t["rt_s"]
    if rules.exclude_incomplete_sessions:
        incomplete = {
            f"{s.participant}/{s.session}/{s.task}" for s in sessions if s.completed is False
        }
        n = exclude(t["session_key"].isin(incomplete), "exclude_incomplete_sessions")
        exclusion_rows.append(("exclude_incomplete_sessions", "session", True, n, ""))
    if rules.rt_min_s is not None:
        n = exclude(resp & rt.notna() & (rt < rules.rt_min_s), "rt_min_s")
        exclusion_rows.append(("rt_min_s", "trial", rules.rt_min_s, n, ""))
    if rules.rt_max_s is not None:
        n = exclude(resp & rt.notna() & (rt > rules.rt_max_s), "rt_max_s")
        exclusion_rows.append(("rt_max_s", "trial", rules.rt_max_s, n, ""))
    if rules.exclude_deadline_missed_trials and "deadline_missed" in t:
        n = exclude(resp & (t["deadline_missed"] == 1), "exclude_deadline_missed_trials")
        exclusion_rows.append(("exclude_deadline_missed_trials", "trial", True, n, ""))
    if rules.max_dropped_frames_per_trial is not None and "dropped_frames" in t:
        n = exclude(
            resp & (stimulus_dropped_frames(t) > rules.max_dropped_frames_per_trial),
            "max_dropped_frames_per_trial",
        )
        exclusion_rows.append(
            ("max_dropped_frames_per_trial", "trial", rules.max_dropped_frames_per_trial, n, "")
        )
    return exclusion_rows


def stimulus_dropped_frames(t: pd.DataFrame) -> pd.Series:
    """Each trial's dropped frames from the first image's onset to the second's end: the sum of
    its ``dropped_frames_interval1``, ``_mask``, ``_isi`` and ``_interval2``. Data without those
    columns count every drop of the trial (``dropped_frames``)."""
    columns = [drop_column(phase) for phase in STIMULUS_DROP_PHASES]
    if not all(c in t for c in columns):
        return t["dropped_frames"]
    return t[columns].sum(axis=1, min_count=1)


def participant_metrics(t: pd.DataFrame, sessions, rules: QCRules) -> pd.DataFrame:
    """One row per participant: sessions, aborts, calibration error (deg), generation latency
    (s), deadline misses, dropped frames, response times (s), interval bias (of every answered
    main trial) and analysed trials (after the trial rules marked ``excluded_by``)."""
    cal = _calibration_errors(sessions)
    incomplete_by_p: dict[str, int] = {}
    sessions_by_p: dict[str, int] = {}
    for s in sessions:
        sessions_by_p[s.participant] = sessions_by_p.get(s.participant, 0) + 1
        if s.completed is False:
            incomplete_by_p[s.participant] = incomplete_by_p.get(s.participant, 0) + 1
    all_conditions = sorted(t["condition"].astype(str).unique())
    rows = []
    for participant, g in t.groupby("participant", sort=True):
        p = str(participant)
        errors = cal.get(p, [])
        analysed = g["excluded_by"] == ""
        per_cond = g[analysed].groupby("condition").size().reindex(all_conditions, fill_value=0)
        rows.append(
            {
                "participant": p,
                "observer": ",".join(sorted(set(g["observer"]))),
                "sessions": sessions_by_p.get(p, 0),
                "incomplete_sessions": incomplete_by_p.get(p, 0),
                **_trial_metrics(g, rules, errors),
                **interval_bias(g[responded(g)], alpha=rules.interval_bias_alpha),
                "analysed_trials": int(analysed.sum()),
                "min_trials_in_a_condition": int(per_cond.min()) if len(per_cond) else 0,
            }
        )
    return pd.DataFrame(rows)


def _trial_metrics(g: pd.DataFrame, rules: QCRules, errors: list[float]) -> dict:
    """One participant's presentation, calibration, generation and response-time metrics."""
    r = responded(g)
    n_pres = len(g)
    rt_r = g.loc[r, "rt_s"].dropna()
    rt_out = 0
    if len(rt_r):
        lo = rules.rt_min_s if rules.rt_min_s is not None else -np.inf
        hi = rules.rt_max_s if rules.rt_max_s is not None else np.inf
        rt_out = int(((rt_r < lo) | (rt_r > hi)).sum())
    lat = g["gen_latency_s"].dropna()
    dl = g["deadline_missed"].dropna() if "deadline_missed" in g else pd.Series(dtype=float)
    dropped = g["dropped_frames"].dropna() if "dropped_frames" in g else pd.Series(dtype=float)
    return {
        "presentations": n_pres,
        "responses": int(r.sum()),
        "fixation_breaks": int((g["fixation_break"] == 1).sum()),
        "fixation_break_rate": float((g["fixation_break"] == 1).mean()) if n_pres else np.nan,
        "other_aborts": int(((g["fixation_break"] == 0) & g["correct"].isna()).sum()),
        "calibrations": len(errors),
        "calibration_error_deg": float(np.mean(errors)) if errors else np.nan,
        "calibration_error_max_deg": float(np.max(errors)) if errors else np.nan,
        "gen_latency_median_s": float(lat.median()) if len(lat) else np.nan,
        "gen_latency_p95_s": float(lat.quantile(0.95)) if len(lat) else np.nan,
        "deadline_miss_rate": float(dl.mean()) if len(dl) else np.nan,
        "dropped_frames": int(dropped.sum()) if len(dropped) else 0,
        "trials_with_dropped_frames": int((dropped > 0).sum()) if len(dropped) else 0,
        "rt_median_s": float(rt_r.median()) if len(rt_r) else np.nan,
        "rt_outliers": rt_out,
        "rt_outlier_rate": rt_out / len(rt_r) if len(rt_r) else np.nan,
    }


def _apply_participant_rules(
    participants: pd.DataFrame, rules: QCRules, exclusion_rows: list[_RuleRow]
) -> dict[str, list[str]]:
    """Participant -> the reasons it is excluded; appends each participant rule's row."""
    reasons: dict[str, list[str]] = {p: [] for p in participants["participant"]}

    def participant_rule(name: str, column: str, limit, describe) -> None:
        if limit is None:
            exclusion_rows.append((name, "participant", None, 0, ""))
            return
        values = participants.set_index("participant")[column]
        bad = (
            values[values.notna() & (values > limit)]
            if name != "min_trials_per_condition"
            else values[values < limit]
        )
        for p, v in bad.items():
            reasons[p].append(describe(v))
        exclusion_rows.append((name, "participant", limit, 0, ", ".join(bad.index)))

    participant_rule(
        "max_fixation_break_rate",
        "fixation_break_rate",
        rules.max_fixation_break_rate,
        lambda v: f"fixation breaks {100 * v:.0f} % > {100 * rules.max_fixation_break_rate:.0f} %",
    )
    participant_rule(
        "max_calibration_error_deg",
        "calibration_error_deg",
        rules.max_calibration_error_deg,
        lambda v: f"calibration error {v:.2f} deg > {rules.max_calibration_error_deg:g} deg",
    )
    participant_rule(
        "max_deadline_miss_rate",
        "deadline_miss_rate",
        rules.max_deadline_miss_rate,
        lambda v: f"deadline misses {100 * v:.0f} % > {100 * rules.max_deadline_miss_rate:.0f} %",
    )
    participant_rule(
        "max_rt_outlier_rate",
        "rt_outlier_rate",
        rules.max_rt_outlier_rate,
        lambda v: f"RT outliers {100 * v:.0f} % > {100 * rules.max_rt_outlier_rate:.0f} %",
    )
    participant_rule(
        "min_trials_per_condition",
        "min_trials_in_a_condition",
        rules.min_trials_per_condition,
        lambda v: (
            f"only {int(v)} analysed trials in a condition (< {rules.min_trials_per_condition})"
        ),
    )
    return reasons
