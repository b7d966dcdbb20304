"""The HTML report's results sections (6-11: group results, indistinguishability, token
savings, perceptual observer, quality control, methods) of one finished ``Analysis``.

Each function returns one section as (anchor, heading, HTML) for ``html_blocks.page``, or None
when the section has nothing to show.
"""

from __future__ import annotations

import pandas as pd

from analysis.glmm import describe_xc
from analysis.group import MIN_GROUP_PARTICIPANTS
from analysis.html_blocks import (
    VERDICT_CLASS,
    bullet_list,
    esc,
    fmt,
    image,
    paragraph,
    png_size,
    table,
)
from analysis.interval_bias import COLUMNS
from analysis.p_values import P_FLOOR, p_text
from analysis.report_analysis import Analysis
from analysis.report_stages import DEFAULT_OPERATING_LEVELS, models_left_out_note

Section = tuple[str, str, str]


def group_section(a: Analysis) -> Section:
    """6. Group thresholds, the threshold and trial-level mixed models, pairwise effects."""
    fs, lmm, glmm, pngs = a.fit_settings, a.lmm, a.glmm, a.pngs
    grp = (
        paragraph(
            f"Group threshold: geometric mean of the included participants' thresholds with a {a.ci_pct} t interval "
            "on log thresholds; sd_log10 is the spread between participants (log10 units). A group estimate "
            f"is a result only with at least {MIN_GROUP_PARTICIPANTS} participants, none of whose thresholds "
            "sits at a bound of its fit or beyond the tested levels with an interval open to that bound, "
            "and an interval no wider than the condition's whole level range; "
            "otherwise the note says why and the interval is not shown (it is in "
            "tables/group_thresholds.csv).",
            cls="explain",
        )
        + table(_group_table_shown(a.group), text_columns=("condition", "note"))
        + (
            image(pngs["group_thresholds"], alt="group thresholds")
            if "group_thresholds" in pngs
            else ""
        )
    )
    grp += "<h3>Do the conditions differ?</h3>"
    if a.models_left_out:
        note = models_left_out_note(a)
        grp += paragraph(f"{note[0].upper()}{note[1:]}.", cls="warn")
    if lmm.note:
        grp += paragraph(f"Threshold mixed model not fitted: {lmm.note}.", cls="warn")
    else:
        grp += paragraph(
            f"Linear mixed model of log threshold on condition with a random intercept per participant "
            f"(reference: {lmm.reference}). Ratios above 1 mean a higher threshold (more degradation tolerated) "
            f"than the reference. Omnibus Wald test that all conditions share one threshold: "
            f"chi2({lmm.omnibus_df}) = {fmt(lmm.omnibus_chi2)}, {p_text(lmm.omnibus_p)}."
        ) + table(lmm.effects)
    if len(a.pairs):
        grp += paragraph(
            "Pairwise comparisons within participants: ratio of thresholds (b / a) with its t interval, "
            "Cohen's d_z of the paired log differences with a bootstrap interval, paired t test, and "
            "Holm-adjusted p values.",
            cls="explain",
        ) + table(a.pairs)
    if glmm.note:
        grp += paragraph(f"Trial-level mixed logistic model not fitted: {glmm.note}.", cls="warn")
    else:
        grp += (
            paragraph(
                f"Trial-level mixed-effects logistic regression (statsmodels BinomialBayesMixedGLM, variational "
                f"Bayes): logit P(correct) ~ condition x {'log ' if fs.axis == 'log' else ''}level with random "
                f"intercepts and slopes per participant, over {glmm.n_trials} analysed trials. It does not model "
                "the 50 % guess floor, so its coefficients describe the data rather than thresholds; "
                + _glmm_test_text(glmm)
            )
            + paragraph(
                f"Terms (reference condition {glmm.reference}): "
                + describe_xc(log_axis=a.log_axis, zero_level=glmm.xc_zero_level),
                cls="explain",
            )
            + table(glmm.coefficients, text_columns=("term",))
            + table(glmm.variance, text_columns=("component",))
        )
    return ("group", "Group results", grp)


def _glmm_test_text(glmm) -> str:
    """What the trial-level model's Wald test found; with one condition there is none (no
    condition terms): the page said 'chi2(0) = –, p = –'."""
    if glmm.wald_df == 0:
        return (
            f"with one condition ({glmm.reference}) it has no condition terms, so there is no test "
            "of whether conditions differ."
        )
    return (
        f"its Wald test asks whether the conditions' curves differ at all: chi2({glmm.wald_df}) = "
        f"{fmt(glmm.wald_chi2)}, {p_text(glmm.wald_p)} (covariance from the Laplace approximation "
        "at the posterior mode)."
    )


def _group_table_shown(group):
    """The group table as the page shows it: no interval where the note says the estimate is
    not a result yet (the CSV keeps the numbers)."""
    shown = group.copy()
    if "note" in shown.columns:
        pending = shown["note"].astype(str).ne("")
        shown.loc[pending, ["ci_low", "ci_high"]] = float("nan")
    return shown


def _savings_table_shown(a: Analysis):
    """The token-savings table as the page shows it: no ratios at the interval's ends where the
    group estimate is not a result yet (the CSV keeps them), and the note says what the row
    holds instead and why."""
    shown = a.savings.copy()
    if "note" not in a.group.columns or shown.empty:
        return shown
    pending = dict(zip(a.group["condition"], a.group["note"].astype(str), strict=True))
    rows = shown["condition"].map(lambda c: bool(pending.get(c)))
    ends = [c for c in ("token_ratio_at_ci_low", "token_ratio_at_ci_high") if c in shown]
    shown.loc[rows, ends] = float("nan")
    people = a.qc.participants
    everyone_out = bool(len(people)) and bool(people["excluded"].all())
    shown["note"] = [
        _pending_savings_note(rec, pending[rec.condition], everyone_out=everyone_out)
        if pending_row
        else rec.note
        for rec, pending_row in zip(shown.itertuples(index=False), rows, strict=True)
    ]
    return shown


def _pending_savings_note(rec, why: str, *, everyone_out: bool) -> str:
    """A token-savings row's note where the group estimate is not a result (``why``: the group
    table's note): the tokens are at the participants' geometric mean, or there is none."""
    note = str(rec.note)
    if pd.notna(rec.tokens_at_threshold):
        mean = f"at the participants' geometric mean {fmt(rec.threshold)}"
        return f"{note}{mean}, not a group result: {why}"
    if not note.endswith("no group threshold"):
        return note  # no layout at any level (periphery factor, an error): the note says why
    if everyone_out:
        why = "every participant was excluded by quality control"
    return f"{note} ({why}), so no tokens at threshold"


def indistinguishability_section(a: Analysis) -> Section:
    """7. The equivalence test at each condition's operating level."""
    config, equiv = a.config, a.equiv
    eq_html = paragraph(
        "At an operating level (each condition's is in the table; by default "
        + ", ".join(f"{var} {level:g}" for var, level in DEFAULT_OPERATING_LEVELS.items())
        + "; fovea report --operating-level [COND=]LEVEL chooses it), is the foveated image "
        "indistinguishable from its twin? Mean fitted proportion "
        f"correct across included participants, with a {100 * (1 - 2 * config.alpha):g} % interval from a "
        "two-stage bootstrap (participants, then each participant's bootstrap fits). 'equivalent' means the "
        f"interval's upper end is below 50 % + {config.equivalence_margin:g} (an equivalence test, TOST): "
        "differences larger than that margin are ruled out; 'detectable': the whole interval lies above that "
        "bound; 'inconclusive': the interval straddles it, which is not evidence of no difference; 'not "
        f"estimable': fewer than {MIN_GROUP_PARTICIPANTS} fitted participants, or a level outside the tested "
        "levels (the fits' extrapolation is no measurement). The proportions come from the "
        "maximum-likelihood fits, whose bootstrap gives the interval.",
        cls="explain",
    ) + table(equiv.drop(columns=["statement"]), text_columns=("condition", "verdict"))
    for rec in equiv.itertuples(index=False):
        cls = VERDICT_CLASS.get(rec.verdict, "")
        eq_html += f'<p><span class="{cls}">{esc(rec.verdict)}</span>: {esc(rec.statement)}</p>'
    return ("indistinguishability", "Indistinguishability at the operating level", eq_html)


def stimuli_block(a: Analysis) -> str:
    """What the participants saw at each condition's group threshold, with the token-ratio
    figure beside the examples ("" when the report made no examples)."""
    if not a.stimulus_examples:
        return ""
    out = paragraph(
        "What the participants saw at each condition's group threshold: the foveated image (fixation "
        "marked where the measured gaze was), its full-resolution twin and the token layout (blocks "
        "outlined, coloured by level: blue 1x, green 2x, orange 4x, red 8x). Each example takes the seed, "
        "scene and gaze of the analysed trial whose level was nearest the threshold, so its token count is at "
        "that trial's measured gaze (the table below counts at the fixation target); the images are the "
        "session's own when it saved them, else made again with the session's model.",
        cls="explain",
    )
    tiles = []
    for e in a.stimulus_examples:
        caption = (
            f"{e.condition}: level {fmt(e.level)} ({e.level_source}), {e.tokens} of "
            f"{e.tokens_full} tokens; {e.source}"
            if e.png is not None
            else f"{e.condition}: no example"
        )
        body = f"<p><b>{esc(caption)}</b></p>"
        if e.png is not None:
            body += image(e.png, alt=f"stimulus example {e.condition}")
        if e.note:
            body += paragraph(e.note, cls="warn")
        tiles.append(f'<div class="stimulus">{body}</div>')
    token_fig = ""
    if "token_ratio" in a.pngs:
        width, height = png_size(a.pngs["token_ratio"])
        wide = " wide" if width > 1.4 * height else ""  # a panel per level variable: below
        token_fig = (
            f'<div class="token-figure{wide}">'
            + image(a.pngs["token_ratio"], alt="token ratio vs level")
            + "</div>"
        )
    return (
        f'{out}<div class="stimuli-row"><div class="stimuli">{"".join(tiles)}</div>'
        f"{token_fig}</div>"
    )


def tokens_section(a: Analysis) -> Section:
    """8. The stimuli at threshold, token savings at threshold and tokens per tested level."""
    examples = stimuli_block(a)
    tok = (
        ("<h3>The stimuli at the group threshold</h3>" + examples if examples else "")
        + paragraph(
            "Tokens of the generator's layout at each condition's group threshold (by the token rules the sessions "
            "generated with: the kit's, or the release's circle rule with a LoRA; generator.token_rules), for gaze "
            "at the condition's fixation target, on the recorded display and image size. token_ratio_at_ci_low / "
            "_high: the ratio at the ends of the threshold's interval (the larger level gives fewer tokens).",
            cls="explain",
        )
        + table(
            _savings_table_shown(a),
            text_columns=("condition", "level_variable", "fixation_deg", "note"),
        )
    )
    if "token_ratio" in a.pngs and not examples:
        tok += image(a.pngs["token_ratio"], alt="token ratio vs level")
    if len(a.tested_tokens):
        tok += "<h3>Tokens recorded per tested level</h3>" + table(a.tested_tokens, max_rows=60)
    return ("tokens", "Token savings at threshold", tok)


def perceptual_section(a: Analysis) -> Section | None:
    """9. The perceptual observer's predictions against the measured thresholds (None without)."""
    if not len(a.overlay_table):
        return None
    ov = paragraph(
        "Sessions run by the perceptual observer (FovVideoVDP's prediction of the visible difference, turned "
        "into a proportion correct) on the same protocol, compared with the participants. Both are pooled "
        "fits (all trials of the group in one function), so the measured curve is shallower than an "
        "individual's. A threshold the tested levels do not bracket (at a bound of the fit, or beyond the "
        "tested levels) is no estimate: n/a in the table, no dotted line in the figure, and the note and the "
        "panel's title say what the data bound it by.",
        cls="explain",
    ) + table(a.overlay_table)
    if "perceptual_overlay" in a.pngs:
        ov += image(a.pngs["perceptual_overlay"], alt="perceptual overlay")
    return ("perceptual", "Predicted (perceptual observer) vs measured", ov)


def qc_section(a: Analysis) -> Section:
    """10. Quality-control metrics per participant and the exclusion rules."""
    qc = a.qc
    qc_html = paragraph(
        "Per participant: fixation breaks (share of presentations aborted), calibration accuracy (mean "
        "validation error over the calibrations the trials ran under; a rejected setup attempt that was "
        "retried is left out), "
        "generation latency and deadline misses, dropped "
        'frames, response times, and interval bias (a preference for answering "1" or "2"; it lowers '
        "percent correct). Exclusion rules are listed below with their settings and what they "
        "excluded; change them with --qc-rules FILE.",
        cls="explain",
    ) + _interval_bias_explained(a)
    if a.dataset.copies:
        qc_html += "<h3>Duplicated sessions</h3>" + bullet_list([c.note for c in a.dataset.copies])
    qc_html += table(qc.participants, text_columns=("participant", "observer", "exclusion_reasons"))
    qc_html += "<h3>Exclusion rules</h3>" + table(
        qc.exclusions, text_columns=("rule", "applies_to", "participants_excluded", "setting")
    )
    if "qc" in a.pngs:
        qc_html += image(a.pngs["qc"], alt="quality control")
    return ("qc", "Quality control", qc_html)


def _interval_bias_explained(a: Analysis) -> str:
    """The interval-bias columns of the QC table, their definitions and who was flagged."""
    alpha = a.config.qc.interval_bias_alpha
    people = a.qc.participants
    flagged = sorted(people.loc[people["interval_bias_flagged"], "participant"].astype(str))
    level = (
        f"Flagged (analysed all the same) at the two-sided level {alpha:g} (QC rule "
        f"interval_bias_alpha): {', '.join(flagged) if flagged else 'nobody'}."
        if alpha is not None
        else "The flag is off (QC rule interval_bias_alpha = null)."
    )
    return paragraph(
        "Interval bias, from every answered main trial (columns of the table below):",
        cls="explain",
    ) + bullet_list([f"{name}: {text}." for name, text in COLUMNS.items()] + [level])


def _domain_notes(a: Analysis) -> list[str]:
    """The methods' sentence on intervals cut to the possible levels (none when no condition's
    level variable is limited within the levels a fit can reach)."""
    domains = {
        d.variable: d
        for d in a.design.level_domains(a.conditions).values()
        if d.high < float("inf")
    }
    if not domains:
        return []
    limits = "; ".join(f"{d.variable} {d.low:g} to {d.high:g} ({d.why})" for d in domains.values())
    return [
        f"Intervals stop at the ends of the possible levels: {limits}. A participant's bootstrap "
        "interval or a group interval that ran beyond is cut there and flagged (the fit's flags, "
        "the notes): beyond lies no possible level, so a cut end says the data do not rule out a "
        "threshold at that end (at the upper end: or none at any possible level). Thresholds "
        "themselves are not moved; one beyond the possible levels is flagged."
    ]


def methods_section(a: Analysis) -> Section:
    """11. Methods: the fitted function, the estimators, what was analysed, the files."""
    fs = a.fit_settings
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
            *_domain_notes(a),
            f"p-values on this page have three decimals; below {P_FLOOR:g} they read p < {P_FLOOR:g} "
            "(the CSV files and summary.json keep them unrounded).",
            "Files: thresholds.csv, summary.json, tables/*.csv (every table of this page), figures/*.png.",
        ]
    )
    return ("methods", "Methods", methods)
