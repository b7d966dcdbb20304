"""The HTML report's text and layout: ``render`` one finished ``Analysis`` into a page.

This module writes the page's first sections (the answer, the design, sessions, curves,
thresholds); ``analysis.report_html_results`` writes the results sections after them. The
numbers come from the analysis stages (analysis.report_stages, analysis.report_files).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.html_blocks import (
    VERDICT_CLASS,
    bullet_list,
    esc,
    fmt,
    image,
    interval,
    page,
    paragraph,
    table,
)
from analysis.p_values import p_text
from analysis.report_analysis import Analysis
from analysis.report_html_results import (
    group_section,
    indistinguishability_section,
    methods_section,
    perceptual_section,
    qc_section,
    tokens_section,
)


def render(a: Analysis) -> str:
    """The self-contained report page of one finished ``Analysis`` (summary and figures filled)."""
    title = (
        a.config.title or f"Foveation thresholds: {a.design.protocol_name or 'unnamed protocol'}"
    )
    sections = [
        _answer(a),
        _design(a),
        _sessions(a),
        _curves(a),
        _thresholds(a),
        group_section(a),
        indistinguishability_section(a),
        tokens_section(a),
        perceptual_section(a),
        qc_section(a),
        methods_section(a),
    ]
    return page(title=title, sections=[s for s in sections if s], header_html=_header(a))


def _header(a: Analysis) -> str:
    summary = a.summary
    counts = summary["counts"]
    return (
        f'<p class="explain">Generated {esc(summary["generated_utc"])} by fovea-kit '
        f"{esc(summary['software_version'])} from <code>{esc(summary['data_dir'])}</code>: "
        f"{counts['sessions']} session(s){_incomplete(a)}, {counts['participants_included']} of "
        f"{counts['participants']} "
        f"participant(s) included, {counts['trials_analysed']} of {counts['trials_presented']} presented "
        f"main trials analysed{_perceptual(counts)}{_practice(counts)}.</p>"
        + _still_recording(a.dataset.being_recorded)
    )


def _incomplete(a: Analysis) -> str:
    """The header's word on the analysed sessions that did not complete ("" when none)."""
    labels = [s.label for s in a.dataset.sessions if s.completed is False]
    if not labels:
        return ""
    return (
        f" ({len(labels)} incomplete: {esc(', '.join(labels))}; "
        '<a href="#sessions">data notes</a> say why)'
    )


def _sha(design) -> str:
    """The protocol file's sha256 prefix(es), which tell it from an edited protocol of the same
    name ("" when no sidecar recorded one)."""
    shas = ", ".join(sha[:12] for sha in design.protocol_sha256)
    return f" (sha256 {shas})" if shas else ""


def _perceptual(counts: dict) -> str:
    """The header's word on the analysed trials that are the perceptual observer's, not the
    participants' ("" when none)."""
    n = counts.get("perceptual_observer_trials_analysed", 0)
    return f" ({n} of them the perceptual observer's)" if n else ""


def _practice(counts: dict) -> str:
    """The header's word on practice trials ("" when the sessions had none)."""
    n = counts.get("practice_trials", 0)
    return f" (besides {n} practice trial{'s' * (n != 1)}, never fitted)" if n else ""


def _still_recording(labels: list[str]) -> str:
    """The warning that the data set is still being collected ("" when no run is going)."""
    if not labels:
        return ""
    return paragraph(
        f"Data still being collected: {', '.join(labels)} "
        f"{'is' if len(labels) == 1 else 'are'} being recorded now. This report is provisional: "
        "it holds the trials logged when it read the data; run it again when "
        f"{'the session ends' if len(labels) == 1 else 'they end'}.",
        cls="warn",
    )


def _answer(a: Analysis) -> tuple[str, str, str]:
    """1. The answer: each condition's group threshold, token savings and verdict."""
    ci_pct = a.ci_pct
    items = []
    for c in a.summary["conditions"]:
        var = c["level_variable"]
        if c.get("group_note"):
            line = (
                f"<li><b>{esc(c['condition'])}</b>: no group threshold yet: "
                f'<span class="needs-more">{esc(c["group_note"])}</span>'
                + _participant_thresholds(a, c["condition"], var)
            )
        else:
            line = (
                f"<li><b>{esc(c['condition'])}</b>: threshold {esc(var)} = <b>{fmt(c['group_threshold'])}</b> "
                f"({ci_pct} interval {interval(c['ci_low'], c['ci_high'])}; {c['n_participants']} participants)"
            )
        if c.get("token_ratio_at_threshold") is not None and math.isfinite(
            c["token_ratio_at_threshold"] or np.nan
        ):
            where = (
                f"At the participants' geometric mean ({fmt(c['group_threshold'])}, tentative)"
                if c.get("group_note")
                else "At that level"
            )
            line += (
                f". {where} the generator's layout uses {fmt(c['tokens_at_threshold'])} of "
                f"{fmt(c['tokens_full'])} tokens (ratio {fmt(c['token_ratio_at_threshold'])}): "
                f"<b>{fmt(c['token_savings_pct'], 3)} % fewer tokens</b>"
            )
        eq = c.get("indistinguishability")
        if eq:
            cls = VERDICT_CLASS.get(eq["verdict"], "")
            line += (
                f'. At the <a href="#indistinguishability">operating level</a> {fmt(eq["level"])}: '
                f'<span class="{cls}">{esc(eq["verdict"])}</span>'
            )
        items.append(line + ".</li>")
    qc_people = a.qc.participants if a.qc is not None else None
    if qc_people is not None:  # a perceptual observer is no participant (unless it is all there is)
        humans = qc_people[qc_people["observer"] != "perceptual"]
        qc_people = humans if len(humans) else qc_people
    if qc_people is not None and len(qc_people) and bool(qc_people["excluded"].all()):
        reasons = [
            f"{r.participant}: {r.exclusion_reasons}"
            for r in qc_people.itertuples()
            if str(r.exclusion_reasons)
        ]
        items.append(
            '<li>Every participant was excluded by <a href="#qc">quality control</a> ('
            + esc("; ".join(reasons))
            + "), so nothing was fitted for the group.</li>"
        )
    elif qc_people is not None and bool(qc_people["excluded"].any()):
        out = qc_people[qc_people["excluded"]]
        items.append(
            f"<li>{len(out)} of {len(qc_people)} participants excluded by "
            '<a href="#qc">quality control</a>, so not in these results: '
            + esc("; ".join(f"{r.participant} ({r.exclusion_reasons})" for r in out.itertuples()))
            + ".</li>"
        )
    answer = (
        '<div class="answer">'
        "<p>The question: at what foveation level do people start to see the difference between a "
        "foveated image and its full-resolution twin, and how many tokens does that level save?</p>"
        f"<ul>{''.join(items)}</ul></div>"
        + paragraph(
            "The threshold is the level at which a participant who never lapses picks the foveated "
            "image 75 % of the time in the two-interval task (50 % is guessing). Larger levels mean "
            "more degradation and fewer tokens, so the threshold is the most aggressive setting that "
            "is still hard to see; levels below it save fewer tokens but are safer.",
            cls="explain",
        )
    )
    lmm, glmm = a.lmm, a.glmm
    if lmm.note == "" and math.isfinite(lmm.omnibus_p):
        which = (
            f" (the {a.design.level_variable(lmm.reference)} conditions; "
            f"{', '.join(a.models_left_out)} "
            f"{'has' if len(a.models_left_out) == 1 else 'have'} another level variable)"
            if a.models_left_out
            else ""
        )
        answer += paragraph(
            f"Do the conditions differ{which}? Threshold mixed model: chi2({lmm.omnibus_df}) = "
            f"{lmm.omnibus_chi2:.2f}, {p_text(lmm.omnibus_p)}; trial-level mixed logistic model: "
            f"chi2({glmm.wald_df}) = {fmt(glmm.wald_chi2)}, {p_text(glmm.wald_p)} (details under Group results)."
        )
    return ("answer", "Summary: the answer", answer)


def _participant_thresholds(a: Analysis, condition: str, variable: str) -> str:
    """The included participants' own thresholds of a condition, as text ("" when none)."""
    rows = a.threshold_rows[a.threshold_rows["condition"] == condition]
    at_bound = {
        f.participant: f for f in a.included_fits if f.condition == condition and f.unbracketed
    }
    shown = [
        f"{esc(r.participant)}: "
        + (
            at_bound[r.participant].bound_text(fmt)
            if r.participant in at_bound
            else f"{fmt(r.threshold)} ({interval(r.ci_low, r.ci_high)})"
        )
        for r in rows.itertuples(index=False)
        if math.isfinite(r.threshold) or r.participant in at_bound
    ]
    if not shown:
        unfitted = sorted(
            {
                flag
                for f in a.included_fits
                if f.condition == condition
                for flag in f.flags
                if flag.startswith("not fitted")
            }
        )
        return f" ({esc('; '.join(unfitted))})" if unfitted else ""
    return f"; each participant's threshold {esc(variable)} ({a.ci_pct} interval): " + ", ".join(
        shown
    )


def _design(a: Analysis) -> tuple[str, str, str]:
    """2. Design: protocol, procedure, display geometry, observers, one row per condition."""
    design, trials = a.design, a.dataset.trials
    cond_rows = []
    for c in a.conditions:
        t = design.conditions.get(c, {})
        fix = t.get("fixation_deg", ["?", "?"])
        cond_rows.append(
            {
                "condition": c,
                "layout_mode": t.get("layout_mode", "?"),
                "level_variable": design.level_variable(c),
                "fixation_deg": f"({fix[0]}, {fix[1]})"
                if isinstance(fix, list | tuple) and len(fix) == 2
                else str(fix),
                "tested_levels": int(trials.loc[trials["condition"] == c, "level"].nunique()),
            }
        )
    proc = design.procedure or {}
    d = design.display
    ppd = 2 * d["distance_cm"] * math.tan(math.radians(0.5)) / (d["width_cm"] / d["width_px"])
    observers = trials.groupby("observer")["participant"].nunique().to_dict()
    design_html = (
        paragraph(
            f"Protocol {design.protocol_name or '(unknown)'}{_sha(design)}, task "
            f"{design.task or '(unknown)'}. Each trial "
            "showed two images one after the other, one foveated (generated with fewer tokens away from "
            "the fixation point) and one full-resolution twin from the same seed; the participant "
            "fixated a target and reported which interval held the different image (two-interval forced "
            "choice). Fixation breaks aborted the trial; aborted trials are not responses."
        )
        + paragraph(
            f"Procedure: {proc.get('method', 'unknown')}"
            + _trials_per_condition(proc)
            + f". Display {d['width_px']}x{d['height_px']} px, {d['width_cm']} x {d['height_cm']} cm at "
            f"{d['distance_cm']} cm ({ppd:.1f} px/deg at the centre); images {design.image_size_px[0]}x"
            f"{design.image_size_px[1]} px; tokens of {design.patch_px} px."
        )
        + paragraph(
            "Observers: " + ", ".join(f"{k}: {v}" for k, v in sorted(observers.items())) + "."
        )
        + table(pd.DataFrame(cond_rows))
    )
    if design.defaults_used:
        design_html += paragraph(
            "Assumed because no sidecar recorded it: " + "; ".join(design.defaults_used), cls="warn"
        )
    return ("design", "Design", design_html)


def _trials_per_condition(proc: dict) -> str:
    """The design's trials per condition, as the Design paragraph's text after the method.

    Constant stimuli run each level ``[procedure.constant] repeats`` times and ignore
    ``trials_per_condition`` (the schema's default, or an adaptive value left in the file):
    a protocol of 6 levels x 4 repeats said "20 trials per condition" for its 24."""
    constant = proc.get("constant") if isinstance(proc.get("constant"), dict) else {}
    if proc.get("method") == "constant" and constant.get("repeats"):
        return f", each level presented {constant['repeats']} times per condition"
    n = proc.get("trials_per_condition")
    return f", {n} trials per condition" if n else ""


def _sessions(a: Analysis) -> tuple[str, str, str]:
    """3. Sessions and data problems."""
    sess_html = paragraph(
        "rows: the main trials' rows of the session's beh.tsv, each presentation once (a trial "
        "aborted and run again is a row per presentation); practice_rows: its practice rows "
        "(block = practice), never fitted; responses: the answered main trials.",
        cls="explain",
    ) + table(
        a.sessions_table,
        text_columns=("participant", "session", "file", "flags", "started_utc", "software"),
    )
    if a.warnings:
        sess_html += (
            "<h3>Data notes</h3>"
            + paragraph(
                "Things found in the data that the reader should know; none of them silently removed data.",
                cls="explain",
            )
            + bullet_list(a.warnings)
        )
    return ("sessions", "Participants and sessions", sess_html)


def _curves(a: Analysis) -> tuple[str, str, str]:
    """4. Psychometric functions, one figure per participant."""
    fs = a.fit_settings
    curves = paragraph(
        "Each panel is one condition. Grey discs: proportion correct at a level (area proportional to the "
        "number of trials; adaptive procedures spread trials over many levels, so neighbouring levels are "
        "pooled into at most 12 points for display only). Blue line: the fitted psychometric function "
        f"({fs.sigmoid} on a {fs.axis} level axis, guess rate 0.5, lapse rate in [0, {fs.lapse_max:g}]). "
        f"Red marker: threshold with its {a.ci_pct} interval. Dotted green: the true threshold of a simulated "
        "participant, when the sidecar records it."
        + (
            " Below each participant's functions (adaptive procedures): the level of each analysed "
            "trial in the order it ran, one line per track (interleaved staircases or QUEST+ "
            "tracks), filled markers correct and open ones wrong; red line and band: the threshold "
            "and its interval. Tracks that settle around the line are what a reliable threshold "
            "needs; tracks still falling or rising at the end ask for more trials."
            if any(k.startswith("tracks_") for k in a.pngs)
            else ""
        ),
        cls="explain",
    )
    for name in sorted(k for k in a.pngs if k.startswith("psychometric_")):
        curves += image(a.pngs[name], alt=name)
        tracks = name.replace("psychometric_", "tracks_", 1)
        if tracks in a.pngs:
            curves += image(a.pngs[tracks], alt=tracks)
    return ("curves", "Psychometric functions per participant", curves)


_FIT_COLUMNS_SHOWN = [
    "participant",
    "condition",
    "threshold",
    "ci_low",
    "ci_high",
    "ml_threshold",
    "bayes_threshold",
    "bayes_ci_low",
    "bayes_ci_high",
    "slope",
    "lapse",
    "eta",
    "gof_p",
    "n_trials",
    "included",
    "flags",
]


def _thresholds(a: Analysis) -> tuple[str, str, str]:
    """5. Thresholds: every fit, ML and Bayesian."""
    fs, fit_details = a.fit_settings, a.fit_details
    shown = fit_details[[c for c in _FIT_COLUMNS_SHOWN if c in fit_details.columns]]
    cells, notes = flag_notes([f.flags for f in a.fits])  # fit_details: a row per fit
    shown = shown.assign(flags=cells)
    thr_html = paragraph(
        f"thresholds.csv holds the primary estimate ({'maximum likelihood with parametric-bootstrap percentile intervals' if fs.primary == 'ml' else 'Bayesian MAP with posterior percentile intervals'}, "
        f"{fs.n_boot} bootstrap replicates) for included participants; a threshold the tested levels do not "
        "bracket (flags: no threshold estimate) is n/a there and in the threshold column here, its fit's value "
        "in ml_threshold / bayes_threshold. The Bayesian columns are psignifit 4's "
        "model (beta-binomial overdispersion eta; eta near 0 means the data are as variable as a binomial "
        "observer predicts). gof_p: share of bootstrap deviances at least as large as the observed one (small "
        "values mean a poor fit). slope: change in proportion correct per level unit at the threshold.",
        cls="explain",
    ) + table(shown, text_columns=("participant", "condition", "flags"))
    return ("thresholds", "Thresholds", thr_html + notes)


#: A flag this short ("participant excluded by QC") stays in every cell it belongs to.
SHORT_FLAG_CHARS = 60


def flag_notes(flag_lists: list[list[str]]) -> tuple[list[str], str]:
    """The flags column's cells and the notes below the table. A long flag that several fits
    share (with 80 fits, "slope not estimated: ..." filled the table with one paragraph many
    times) is written once, as a numbered note, and its cells give the number and the flag's
    first words (up to its first colon); other flags stay in their cells. fits.csv keeps every
    flag in full."""
    counts: dict[str, int] = {}
    for flags in flag_lists:
        for flag in dict.fromkeys(flags):
            counts[flag] = counts.get(flag, 0) + 1
    numbers: dict[str, int] = {}
    cells = []
    for flags in flag_lists:
        parts = []
        for flag in flags:
            if counts[flag] < 2 or len(flag) <= SHORT_FLAG_CHARS:
                parts.append(flag)
                continue
            number = numbers.setdefault(flag, len(numbers) + 1)
            parts.append(f"[{number}] {flag.split(':', 1)[0]}")
        cells.append("; ".join(parts))
    if not numbers:
        return cells, ""
    items = "".join(f"<li>[{n}] {esc(flag)}</li>" for flag, n in numbers.items())
    return (
        cells,
        f'<p class="explain">Flags shared by several fits:</p><ul>{items}</ul>',
    )
