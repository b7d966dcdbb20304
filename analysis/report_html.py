"""The HTML report's text and layout (the numbers come from analysis.report)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.html_blocks import bullet_list, esc, fmt, image, page, paragraph, table

_VERDICT_CLASS = {
    "equivalent": "verdict-equivalent",
    "detectable": "verdict-detectable",
    "inconclusive": "verdict-inconclusive",
}


def _ci(lo, hi) -> str:
    return f"{fmt(lo)} to {fmt(hi)}"


def render(
    *,
    config,
    design,
    dataset,
    data_root,
    summary,
    qc,
    fits,
    excluded,
    threshold_rows,
    fit_details,
    group,
    lmm,
    pairs,
    glmm,
    equiv,
    savings,
    tested_tokens,
    overlay_table,
    pngs,
    sessions_table,
    warnings_list,
    conditions,
) -> str:
    fs = config.fit
    ci_pct = f"{100 * fs.ci_level:g} %"
    title = config.title or f"Foveation thresholds: {design.protocol_name or 'unnamed protocol'}"
    counts = summary["counts"]
    header = (
        f'<p class="explain">Generated {esc(summary["generated_utc"])} by fovea-kit '
        f"{esc(summary['software_version'])} from <code>{esc(data_root)}</code>: "
        f"{counts['sessions']} session(s), {counts['participants_included']} of {counts['participants']} "
        f"participant(s) included, {counts['trials_analysed']} of {counts['trials_presented']} presented "
        "trials analysed.</p>"
    )
    sections = []

    # 1. The answer.
    items = []
    for c in summary["conditions"]:
        var = c["level_variable"]
        line = (
            f"<li><b>{esc(c['condition'])}</b>: threshold {esc(var)} = <b>{fmt(c['group_threshold'])}</b> "
            f"({ci_pct} interval {_ci(c['ci_low'], c['ci_high'])}; {c['n_participants']} participants)"
        )
        if c.get("token_ratio_at_threshold") is not None and math.isfinite(
            c["token_ratio_at_threshold"] or np.nan
        ):
            line += (
                f". At that level the generator's layout uses {fmt(c['tokens_at_threshold'])} of "
                f"{fmt(c['tokens_full'])} tokens (ratio {fmt(c['token_ratio_at_threshold'])}): "
                f"<b>{fmt(c['token_savings_pct'], 3)} % fewer tokens</b>"
            )
        eq = c.get("indistinguishability")
        if eq:
            cls = _VERDICT_CLASS.get(eq["verdict"], "")
            line += (
                f'. At level {fmt(eq["level"])}: <span class="{cls}">{esc(eq["verdict"])}</span>'
            )
        items.append(line + ".</li>")
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
    if lmm.note == "" and math.isfinite(lmm.omnibus_p):
        answer += paragraph(
            f"Do the conditions differ? Threshold mixed model: chi2({lmm.omnibus_df}) = "
            f"{lmm.omnibus_chi2:.2f}, p = {fmt(lmm.omnibus_p)}; trial-level mixed logistic model: "
            f"chi2({glmm.wald_df}) = {fmt(glmm.wald_chi2)}, p = {fmt(glmm.wald_p)} (details under Group results)."
        )
    sections.append(("answer", "Summary: the answer", answer))

    # 2. Design.
    cond_rows = []
    for c in conditions:
        t = design.conditions.get(c, {})
        fix = t.get("fixation_deg", ["?", "?"])
        cond_rows.append(
            {
                "condition": c,
                "layout_mode": t.get("layout_mode", "?"),
                "level_variable": t.get("level_variable", "strength"),
                "fixation_deg": f"({fix[0]}, {fix[1]})"
                if isinstance(fix, list | tuple) and len(fix) == 2
                else str(fix),
                "tested_levels": int(
                    dataset.trials.loc[dataset.trials["condition"] == c, "level"].nunique()
                ),
            }
        )
    proc = design.procedure or {}
    d = design.display
    ppd = 2 * d["distance_cm"] * math.tan(math.radians(0.5)) / (d["width_cm"] / d["width_px"])
    observers = dataset.trials.groupby("observer")["participant"].nunique().to_dict()
    design_html = (
        paragraph(
            f"Protocol {design.protocol_name or '(unknown)'}, task {design.task or '(unknown)'}. Each trial "
            "showed two images one after the other, one foveated (generated with fewer tokens away from "
            "the fixation point) and one full-resolution twin from the same seed; the participant "
            "fixated a target and reported which interval held the different image (two-interval forced "
            "choice). Fixation breaks aborted the trial; aborted trials are not responses."
        )
        + paragraph(
            f"Procedure: {proc.get('method', 'unknown')}"
            + (
                f", {proc.get('trials_per_condition')} trials per condition"
                if proc.get("trials_per_condition")
                else ""
            )
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
    sections.append(("design", "Design", design_html))

    # 3. Sessions and data problems.
    sess_html = table(
        sessions_table, text_columns=("participant", "session", "file", "flags", "started_utc")
    )
    if warnings_list:
        sess_html += (
            "<h3>Data notes</h3>"
            + paragraph(
                "Things found in the data that the reader should know; none of them silently removed data.",
                cls="explain",
            )
            + bullet_list(warnings_list)
        )
    sections.append(("sessions", "Participants and sessions", sess_html))

    # 4. Psychometric functions.
    curves = paragraph(
        "Each panel is one condition. Grey discs: proportion correct at a level (area proportional to the "
        "number of trials; adaptive procedures spread trials over many levels, so neighbouring levels are "
        "pooled into at most 12 points for display only). Blue line: the fitted psychometric function "
        f"({fs.sigmoid} on a {fs.axis} level axis, guess rate 0.5, lapse rate in [0, {fs.lapse_max:g}]). "
        f"Red marker: threshold with its {ci_pct} interval. Dotted green: the true threshold of a simulated "
        "participant, when the sidecar records it.",
        cls="explain",
    )
    for name in sorted(k for k in pngs if k.startswith("psychometric_")):
        curves += image(pngs[name], alt=name)
    sections.append(("curves", "Psychometric functions per participant", curves))

    # 5. Thresholds.
    cols = [
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
    shown = fit_details[[c for c in cols if c in fit_details.columns]]
    thr_html = paragraph(
        f"thresholds.csv holds the primary estimate ({'maximum likelihood with parametric-bootstrap percentile intervals' if fs.primary == 'ml' else 'Bayesian MAP with posterior percentile intervals'}, "
        f"{fs.n_boot} bootstrap replicates) for included participants. The Bayesian columns are psignifit 4's "
        "model (beta-binomial overdispersion eta; eta near 0 means the data are as variable as a binomial "
        "observer predicts). gof_p: share of bootstrap deviances at least as large as the observed one (small "
        "values mean a poor fit). slope: change in proportion correct per level unit at the threshold.",
        cls="explain",
    ) + table(shown, text_columns=("participant", "condition", "flags"))
    sections.append(("thresholds", "Thresholds", thr_html))

    # 6. Group results.
    grp = (
        paragraph(
            f"Group threshold: geometric mean of the included participants' thresholds with a {ci_pct} t interval "
            "on log thresholds; sd_log10 is the spread between participants (log10 units).",
            cls="explain",
        )
        + table(group)
        + (
            image(pngs["group_thresholds"], alt="group thresholds")
            if "group_thresholds" in pngs
            else ""
        )
    )
    grp += "<h3>Do the conditions differ?</h3>"
    if lmm.note:
        grp += paragraph(f"Threshold mixed model not fitted: {lmm.note}.", cls="warn")
    else:
        grp += paragraph(
            f"Linear mixed model of log threshold on condition with a random intercept per participant "
            f"(reference: {lmm.reference}). Ratios above 1 mean a higher threshold (more degradation tolerated) "
            f"than the reference. Omnibus Wald test that all conditions share one threshold: "
            f"chi2({lmm.omnibus_df}) = {fmt(lmm.omnibus_chi2)}, p = {fmt(lmm.omnibus_p)}."
        ) + table(lmm.effects)
    if len(pairs):
        grp += paragraph(
            "Pairwise comparisons within participants: ratio of thresholds (b / a) with its t interval, "
            "Cohen's d_z of the paired log differences with a bootstrap interval, paired t test, and "
            "Holm-adjusted p values.",
            cls="explain",
        ) + table(pairs)
    if glmm.note:
        grp += paragraph(f"Trial-level mixed logistic model not fitted: {glmm.note}.", cls="warn")
    else:
        grp += (
            paragraph(
                f"Trial-level mixed-effects logistic regression (statsmodels BinomialBayesMixedGLM, variational "
                f"Bayes): logit P(correct) ~ condition x {'log ' if fs.axis == 'log' else ''}level with random "
                f"intercepts and slopes per participant, over {glmm.n_trials} analysed trials. It does not model "
                "the 50 % guess floor, so its coefficients describe the data rather than thresholds; its Wald test "
                f"asks whether the conditions' curves differ at all: chi2({glmm.wald_df}) = {fmt(glmm.wald_chi2)}, "
                f"p = {fmt(glmm.wald_p)} (covariance from the Laplace approximation at the posterior mode)."
            )
            + table(glmm.coefficients, text_columns=("term",))
            + table(glmm.variance, text_columns=("component",))
        )
    sections.append(("group", "Group results", grp))

    # 7. Indistinguishability.
    eq_html = paragraph(
        f"At an operating level, is the foveated image indistinguishable from its twin? Mean fitted proportion "
        f"correct across included participants, with a {100 * (1 - 2 * config.alpha):g} % interval from a "
        "two-stage bootstrap (participants, then each participant's bootstrap fits). 'equivalent' means the "
        f"interval's upper end is below 50 % + {config.equivalence_margin:g} (an equivalence test, TOST): "
        "differences larger than that margin are ruled out; 'detectable': the whole interval lies above that "
        "bound; 'inconclusive': the interval straddles it, which is not evidence of no difference.",
        cls="explain",
    ) + table(equiv.drop(columns=["statement"]), text_columns=("condition", "verdict"))
    for rec in equiv.itertuples(index=False):
        cls = _VERDICT_CLASS.get(rec.verdict, "")
        eq_html += f'<p><span class="{cls}">{esc(rec.verdict)}</span>: {esc(rec.statement)}</p>'
    sections.append(
        ("indistinguishability", "Indistinguishability at the operating level", eq_html)
    )

    # 8. Token savings.
    tok = paragraph(
        "Tokens of the generator's layout (generator.build_layout) at each condition's group threshold, for gaze "
        "at the condition's fixation target, on the recorded display and image size. token_ratio_at_ci_low / "
        "_high: the ratio at the ends of the threshold's interval (the larger level gives fewer tokens).",
        cls="explain",
    ) + table(savings, text_columns=("condition", "level_variable", "fixation_deg", "note"))
    if "token_ratio" in pngs:
        tok += image(pngs["token_ratio"], alt="token ratio vs level")
    if len(tested_tokens):
        tok += "<h3>Tokens recorded per tested level</h3>" + table(tested_tokens, max_rows=60)
    sections.append(("tokens", "Token savings at threshold", tok))

    # 9. Perceptual observer.
    if len(overlay_table):
        ov = paragraph(
            "Sessions run by the perceptual observer (FovVideoVDP's prediction of the visible difference, turned "
            "into a proportion correct) on the same protocol, compared with the participants. Both are pooled "
            "fits (all trials of the group in one function), so the measured curve is shallower than an "
            "individual's.",
            cls="explain",
        ) + table(overlay_table)
        if "perceptual_overlay" in pngs:
            ov += image(pngs["perceptual_overlay"], alt="perceptual overlay")
        sections.append(("perceptual", "Predicted (perceptual observer) vs measured", ov))

    # 10. QC.
    qc_html = paragraph(
        "Per participant: fixation breaks (share of presentations aborted), calibration accuracy (mean "
        "validation error over the session's calibrations), generation latency and deadline misses, dropped "
        "frames, and response times. Exclusion rules are listed below with their settings and what they "
        "excluded; change them with --qc-rules FILE.",
        cls="explain",
    ) + table(qc.participants, text_columns=("participant", "observer", "exclusion_reasons"))
    qc_html += "<h3>Exclusion rules</h3>" + table(
        qc.exclusions, text_columns=("rule", "applies_to", "participants_excluded", "setting")
    )
    if "qc" in pngs:
        qc_html += image(pngs["qc"], alt="quality control")
    sections.append(("qc", "Quality control", qc_html))

    # 11. Methods.
    methods = bullet_list(
        [
            f"Psychometric function: P(correct) = 0.5 + (0.5 - lapse) * F(x), F a {fs.sigmoid} sigmoid on "
            f"x = {'ln(level)' if fs.axis == 'log' else 'level'}; threshold = level where F = 0.5 (psignifit 4's "
            "definition, thresh_PC = 0.5), width = distance from F = 0.05 to F = 0.95.",
            f"Maximum likelihood with the lapse rate in [0, {fs.lapse_max:g}]; {fs.n_boot} parametric-bootstrap "
            f"replicates simulated from the fit at the tested levels; percentile intervals. Seeds derive from the "
            f"master seed {fs.seed} and each participant/condition label (summary.json lists them).",
            "Bayesian fit: psignifit 4's beta-binomial model and default priors (threshold and width priors from "
            f"the tested range, lapse Beta(1, 10) on [0, {fs.lapse_max:g}], overdispersion Beta(1, 10)), posterior "
            "on a grid, MAP estimate, marginal percentile intervals; implemented in analysis/fit_bayes.py and "
            "checked against psignifit itself in the test suite.",
            "Adaptive data: every distinct level is its own binomial observation in the likelihood; pooling of "
            "neighbouring levels is for the plots only.",
            "Trials analysed: responses (not aborted) passing the trial rules, of participants passing the "
            "participant rules; incomplete sessions are analysed and flagged unless a rule excludes them.",
            "Files: thresholds.csv, summary.json, tables/*.csv (every table of this page), figures/*.png.",
        ]
    )
    sections.append(("methods", "Methods", methods))
    return page(title=title, sections=sections, header_html=header)
