"""The report's computing stages, each filling its part of one ``Analysis``.

In order: ``load`` (beh.tsv files and sidecars) -> ``apply_qc`` (exclusion rules) ->
``fit_participants`` (psychometric fits and each participant's figure) -> ``group_statistics``
-> ``perceptual_overlay`` -> ``token_savings_at_threshold``. Writing files is
``analysis.report_files``; the page is ``analysis.report_html``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.report_analysis import Analysis, ReportConfig
from generator.errors import FoveaError

DEFAULT_OPERATING_LEVELS = {"strength": 1.0, "radius_shrink": 0.67, "periphery_factor": 2.0}
THRESHOLD_COLUMNS = [
    "participant",
    "condition",
    "threshold",
    "ci_low",
    "ci_high",
    "slope",
    "lapse",
    "n_trials",
]


def load(config: ReportConfig, data_root: Path) -> Analysis:
    """Read every session of one protocol below ``data_root``; notes what was odd or assumed."""
    from analysis.data import INCOMPLETE_ANALYSED, load_dataset
    from analysis.design import design_of

    dataset = load_dataset(data_dir=data_root, protocol=config.protocol)
    if config.qc.exclude_incomplete_sessions:  # its trials are not analysed (apply_qc)
        excluded = ": not analysed (QC rule exclude_incomplete_sessions)"
        for s in dataset.sessions:
            s.flags = [
                f.replace(INCOMPLETE_ANALYSED, excluded)
                if f.startswith("incomplete session")
                else f
                for f in s.flags
            ]
    design, design_notes = design_of(dataset)
    warnings = list(design_notes)
    for s in dataset.sessions:
        for flag in s.flags:
            warnings.append(f"{s.beh_path.relative_to(data_root)}: {flag}")
    for sk in dataset.skipped:
        warnings.append(f"{sk.path.relative_to(data_root)}: not analysed: {sk.reason}")
    if design.defaults_used:
        warnings.append("assumed (no sidecar said): " + "; ".join(design.defaults_used))
    return Analysis(
        config=config, data_root=data_root, dataset=dataset, design=design, warnings=warnings
    )


def apply_qc(a: Analysis) -> None:
    """Fills ``qc``, ``conditions`` (report order) and ``excluded``."""
    from analysis.interval_bias import flag_notes
    from analysis.qc import performance_notes, run_qc, unchecked_notes

    a.qc = run_qc(trials=a.dataset.trials, sessions=a.dataset.sessions, rules=a.config.qc)
    a.warnings.extend(unchecked_notes(a.qc, a.config.qc))
    a.warnings.extend(flag_notes(a.qc.participants, alpha=a.config.qc.interval_bias_alpha))
    a.warnings.extend(performance_notes(a.qc.trials))
    present = set(a.qc.trials["condition"])
    a.conditions = [c for c in a.design.conditions if c in present]
    a.conditions += sorted(present - set(a.conditions))
    a.excluded = set(a.qc.excluded_participants)
    # A perceptual observer is no participant: a participant rule it fails (the simulated
    # fixation breaks of fovea simulate's sessions, say) is a note, and its sessions still give
    # the overlay's predictions. Only when every session is a perceptual observer's are they
    # analysed (and excluded) as the participants (fit_participants).
    people = a.qc.participants
    model = people["observer"] == "perceptual"
    if not model.all():
        for r in people[model & people["excluded"]].itertuples():
            a.warnings.append(
                f"sub-{r.participant} (perceptual observer) fails participant QC rules "
                f"({r.exclusion_reasons}); a model is not a participant: its sessions still give "
                "the perceptual observer's predictions"
            )
            a.excluded.discard(str(r.participant))
            t = a.qc.trials
            mine = (t["participant"].astype(str) == str(r.participant)) & t[
                "excluded_by"
            ].str.startswith("participant:")
            t.loc[mine, "excluded_by"] = ""
            t.loc[mine, "analysed"] = True


#: Procedures whose levels follow the responses (their tracks are drawn trial by trial).
ADAPTIVE_METHODS = ("staircase", "questplus")


def _tracks(g: pd.DataFrame) -> np.ndarray:
    """Each trial's track label (``track``; one track when the column is missing)."""
    if "track" not in g:
        return np.full(len(g), "", dtype=object)
    return g["track"].astype(str).to_numpy(dtype=object)


def fit_participants(a: Analysis) -> None:
    """Fits every participant x condition and draws each participant's figure.

    Fills ``human``, ``perceptual``, ``fits``, ``pngs`` (``psychometric_sub-*``, and for
    adaptive procedures ``tracks_sub-*``),
    ``threshold_rows`` and ``fit_details``. Trials that pass the trial rules are fitted;
    participant exclusions are marked but still fitted, so the report can show what was excluded.
    """
    from analysis.jobs import ParticipantJob, default_workers, run_jobs

    trials = a.qc.trials
    usable = trials["excluded_by"].eq("") | trials["excluded_by"].str.startswith("participant:")
    human = trials[usable & (trials["observer"] != "perceptual")]
    perceptual = trials[usable & (trials["observer"] == "perceptual")]
    if human.empty and not perceptual.empty:
        human, perceptual = perceptual, perceptual.iloc[0:0]
        a.warnings.append(
            "only perceptual-observer sessions: they are analysed as the participants"
        )
    a.human, a.perceptual = human, perceptual
    truth_by_participant = _truth_by_participant(a.dataset)
    groups = {k: g for k, g in human.groupby(["participant", "condition"], sort=False)}
    adaptive = a.design.procedure.get("method") in ADAPTIVE_METHODS
    jobs = []
    for participant in sorted(human["participant"].astype(str).unique()):
        cells = []
        for c in a.conditions:
            g = groups.get((participant, c))
            observer = str(g["observer"].iloc[0]) if g is not None and len(g) else "human"
            levels = g["level"].to_numpy() if g is not None else np.empty(0)
            correct = g["correct"].to_numpy() if g is not None else np.empty(0)
            track = _tracks(g) if g is not None else np.empty(0, dtype=object)
            cells.append((c, observer, levels, correct, track))
        jobs.append(
            ParticipantJob(
                participant=participant,
                cells=tuple(cells),
                excluded=participant in a.excluded,
                truth=truth_by_participant.get(participant),
                settings=a.fit_settings,
                tracks=adaptive,
                level_labels=a.design.level_labels(a.conditions),
                level_domains=a.design.level_domains(a.conditions),
            )
        )
    config = a.config
    results = run_jobs(jobs, workers=config.workers or default_workers(), progress=config.progress)
    a.fits = [f for job_fits, _ in results for f in job_fits]
    a.pngs = {
        f"{kind}_sub-{job.participant}": png
        for job, (_, pngs) in zip(jobs, results, strict=True)
        for kind, png in pngs.items()
    }
    a.threshold_rows = pd.DataFrame([f.row() for f in a.included_fits], columns=THRESHOLD_COLUMNS)
    a.fit_details = pd.DataFrame(
        [{**f.detail_row(), "included": f.participant not in a.excluded} for f in a.fits]
    )


def unbracketed_thresholds(a: Analysis) -> dict[str, list[str]]:
    """Condition -> included participants whose threshold the tested levels do not bracket (at a
    bound of its fit, or beyond the tested levels with its interval open to that bound)."""
    out: dict[str, list[str]] = {}
    for f in a.included_fits:
        if f.fitted and f.unbracketed:
            out.setdefault(f.condition, []).append(f.participant)
    return out


def group_statistics(a: Analysis) -> None:
    """Group thresholds, mixed models, pairwise effects and indistinguishability on included
    participants. Fills ``analysed_human``, ``group``, ``lmm``, ``pairs``, ``glmm``, ``equiv``."""
    from analysis.equivalence import indistinguishability
    from analysis.glmm import trial_mixed_logistic
    from analysis.group import (
        comparable_conditions,
        group_thresholds,
        pairwise_effects,
        threshold_mixed_model,
    )

    fs, log_axis, conditions = a.fit_settings, a.log_axis, a.conditions
    rows = a.threshold_rows
    at_bound = unbracketed_thresholds(a)
    a.group = group_thresholds(
        rows,
        log_axis=log_axis,
        ci_level=fs.ci_level,
        conditions=conditions,
        level_ranges=level_ranges(a),
        at_bound=at_bound,
    )
    _cut_group_intervals(a)
    if not a.included_fits:
        a.warnings.append("every participant was excluded by QC: no group results")
    if at_bound:
        cells = ", ".join(f"{c}: {', '.join(ps)}" for c, ps in at_bound.items())
        a.warnings.append(
            f"thresholds at a bound of their fit or beyond the tested levels with an interval open "
            f"to that bound, not estimates ({cells}): the tested levels did "
            "not bracket them; thresholds.csv has n/a for them, there is no group threshold for "
            "those conditions, and the threshold mixed model and pairwise comparisons below "
            "leave them out"
        )
    variables = {c: a.design.level_variable(c) for c in conditions}
    compared, a.models_left_out = comparable_conditions(conditions, variables)
    if a.models_left_out:
        a.warnings.append(models_left_out_note(a))
    a.lmm = threshold_mixed_model(
        rows[rows["condition"].isin(compared)],
        conditions=compared,
        log_axis=log_axis,
        ci_level=fs.ci_level,
    )
    a.pairs = pairwise_effects(
        rows,
        conditions=conditions,
        log_axis=log_axis,
        rng=np.random.default_rng(np.random.SeedSequence([fs.seed, 7])),
        ci_level=fs.ci_level,
        level_variables=variables,
    )
    human = a.human
    a.analysed_human = human[
        human["excluded_by"].eq("") & ~human["participant"].astype(str).isin(a.excluded)
    ]
    a.glmm = trial_mixed_logistic(
        a.analysed_human[a.analysed_human["condition"].isin(compared)],
        conditions=compared,
        log_axis=log_axis,
        ci_level=fs.ci_level,
    )
    a.equiv = indistinguishability(
        a.included_fits,
        operating_levels=_operating_levels(a.config, a.design, conditions),
        margin=a.config.equivalence_margin,
        rng=np.random.default_rng(np.random.SeedSequence([fs.seed, 11])),
        alpha=a.config.alpha,
    )


def models_left_out_note(a: Analysis) -> str:
    """Which conditions the models comparing conditions leave out, and why (data notes and the
    group section)."""
    first = a.conditions[0]
    left = ", ".join(f"{c} ({a.design.level_variable(c)})" for c in a.models_left_out)
    return (
        f"the conditions' level variables differ: the threshold mixed model and the trial-level "
        f"mixed logistic model compare only the {a.design.level_variable(first)} conditions "
        f"(those of the reference, {first}), and the pairwise comparisons only conditions that "
        f"share a level variable; left out of the models: {left}, whose levels are in other units"
    )


def perceptual_overlay(a: Analysis) -> None:
    """Pooled fits of the participants and of the perceptual observer, per condition.

    Fills ``overlay_fits`` (None without perceptual-observer trials) and ``overlay_table``
    (empty without).
    """
    a.overlay_table = pd.DataFrame()
    if a.perceptual.empty:
        return
    fs = a.fit_settings
    domains = a.design.level_domains(a.conditions)
    overlay_human, overlay_model, rows = {}, {}, []
    for c in a.conditions:
        hc = a.analysed_human[a.analysed_human["condition"] == c]
        mc = a.perceptual[a.perceptual["condition"] == c]
        d = domains.get(c)
        hf = _pooled_fit(hc, c, participant="pooled", observer="human", settings=fs, level_domain=d)
        mf = _pooled_fit(
            mc, c, participant="perceptual", observer="perceptual", settings=fs, level_domain=d
        )
        overlay_human[c] = (hf, [f for f in a.included_fits if f.condition == c])
        if mf is not None:
            overlay_model[c] = mf
        g = a.group[a.group["condition"] == c]
        # A threshold the tested levels do not bracket is no estimate (as in thresholds.csv):
        # n/a in the table, and the note says what the data bound it by.
        model_estimate = mf is not None and mf.fitted and not mf.unbracketed
        notes = [
            f"{who}: {f.bound_text()}"
            for who, f in (("measured (pooled)", hf), ("predicted", mf))
            if f is not None and f.fitted and f.unbracketed
        ]
        rows.append(
            {
                "condition": c,
                "measured_group_threshold": float(g["threshold"].iloc[0]) if len(g) else np.nan,
                "measured_pooled_threshold": hf.threshold()
                if hf is not None and hf.fitted and not hf.unbracketed
                else np.nan,
                "predicted_threshold": mf.threshold() if model_estimate else np.nan,
                "predicted_ci_low": mf.ci()[0] if model_estimate else np.nan,
                "predicted_ci_high": mf.ci()[1] if model_estimate else np.nan,
                "model_trials": int(len(mc)),
                "note": "; ".join(notes),
            }
        )
    a.overlay_fits = (overlay_human, overlay_model)
    table = pd.DataFrame(rows)
    table["predicted_over_measured"] = (
        table["predicted_threshold"] / table["measured_group_threshold"]
    )
    a.overlay_table = table[[*(k for k in table if k != "note"), "note"]]


def token_savings_at_threshold(a: Analysis) -> None:
    """The generator's token counts at each group threshold and along the tested range.

    Fills ``savings``, ``tested_tokens`` and ``token_curves`` (no curve for periphery_factor
    conditions or conditions without tested levels).
    """
    from analysis.tokens import token_ratio_curve, token_savings, tokens_per_tested_level

    design = a.design
    a.savings = token_savings(
        group=a.group,
        conditions=design.conditions,
        display=design.display,
        image_size_px=design.image_size_px,
        patch_px=design.patch_px,
        level_variables=design.level_variables,
        token_rules=design.token_rules,
    )
    a.tested_tokens = tokens_per_tested_level(a.analysed_human)
    a.token_curves = {}
    for c in a.conditions:
        cond = design.condition_table(c)
        if cond["level_variable"] == "periphery_factor":
            continue
        levels_c = a.human.loc[a.human["condition"] == c, "level"]
        levels_c = levels_c[levels_c > 0] if a.log_axis else levels_c
        if levels_c.empty:
            continue
        lo, hi = float(levels_c.min()), float(levels_c.max())
        grid = np.geomspace(lo, hi, 40) if a.log_axis and lo > 0 else np.linspace(lo, hi, 40)
        a.token_curves[c] = (
            grid,
            token_ratio_curve(
                condition=cond,
                levels=grid,
                display=design.display,
                image_size_px=design.image_size_px,
                patch_px=design.patch_px,
                token_rules=design.token_rules,
            ),
        )


def level_ranges(a: Analysis) -> dict[str, tuple[float, float]]:
    """Condition -> (lowest, highest) level it could be tested at: the protocol's ``levels``
    or ``level_min``/``level_max`` from the sidecar, else the levels the trials tested."""
    out = {}
    for c in a.conditions:
        table = a.design.conditions.get(c) or {}
        listed = [float(v) for v in table.get("levels") or []]
        if len(listed) >= 2:
            out[c] = (min(listed), max(listed))
        elif table.get("level_min") is not None and table.get("level_max") is not None:
            out[c] = (float(table["level_min"]), float(table["level_max"]))
        else:
            tested = a.qc.trials.loc[a.qc.trials["condition"] == c, "level"].dropna()
            tested = tested[tested > 0] if a.log_axis else tested
            if tested.nunique() >= 2:
                out[c] = (float(tested.min()), float(tested.max()))
    return out


def _cut_group_intervals(a: Analysis) -> None:
    """Group intervals cut to the possible levels of their condition's level variable
    (``Design.level_domains``), with a warning naming each cut; the participants' intervals are
    cut by their fits (``PsychometricFit.ci``)."""
    for c, domain in a.design.level_domains(a.conditions).items():
        on = a.group["condition"] == c
        for i in a.group.index[on]:
            lo, hi = a.group.at[i, "ci_low"], a.group.at[i, "ci_high"]
            if not (np.isfinite(lo) and np.isfinite(hi)):
                continue
            lo_cut, hi_cut, cut = domain.clip(float(lo), float(hi))
            if cut:
                a.group.loc[i, ["ci_low", "ci_high"]] = [lo_cut, hi_cut]
                a.warnings.append(
                    f"{c}: the group interval ran beyond the possible {domain.variable} levels "
                    f"({domain.why}) and is cut there ({', '.join(cut)} end); the data do not rule "
                    "out a group threshold at that end"
                )


def _pooled_fit(
    trials, condition: str, *, participant: str, observer: str, settings, level_domain=None
):
    """One fit of all of a condition's trials (the overlay's pooled curves); None if none."""
    from analysis.fits import fit_cell

    if not len(trials):
        return None
    return fit_cell(
        participant=participant,
        condition=condition,
        observer=observer,
        levels=trials["level"].to_numpy(),
        correct=trials["correct"].to_numpy(),
        settings=settings,
        level_domain=level_domain,
    )


def _operating_levels(config: ReportConfig, design, conditions: list[str]) -> dict[str, float]:
    """Condition -> the level of its indistinguishability statement (see ``ReportConfig``)."""
    out = {}
    unknown = sorted(set(config.operating_levels) - set(conditions))
    if unknown:
        raise FoveaError(
            f"--operating-level names unknown condition(s) {', '.join(unknown)}; conditions: {', '.join(conditions)}"
        )
    for c in conditions:
        if c in config.operating_levels:
            out[c] = float(config.operating_levels[c])
        elif config.operating_level is not None:
            out[c] = float(config.operating_level)
        else:
            out[c] = DEFAULT_OPERATING_LEVELS.get(design.level_variable(c), 1.0)
    return out


def _truth_by_participant(dataset) -> dict[str, dict[str, float]]:
    """Simulated participants' true thresholds from their sidecars (``true_thresholds``)."""
    out: dict[str, dict[str, float]] = {}
    for s in dataset.sessions:
        truth = s.sidecar.get("true_thresholds") if s.sidecar else None
        if isinstance(truth, dict):
            out.setdefault(s.participant, {}).update(
                {str(k): float(v) for k, v in truth.items() if isinstance(v, int | float)}
            )
    return out
