"""The report's files from one ``Analysis``: figures/*.png, tables/*.csv, thresholds.csv and
summary.json (the page itself is ``analysis.report_html``)."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analysis import interval_bias, report_output
from analysis.glmm import describe_xc
from analysis.qc import responded
from analysis.report_analysis import Analysis
from analysis.report_stages import unbracketed_thresholds
from generator.atomic import write_atomic
from protocol.json_values import strict_json
from protocol.provenance import software_version

SUMMARY_SCHEMA = 1


def draw_figures(a: Analysis, out: Path) -> None:
    """Draws the group, QC, token and overlay figures into ``a.pngs`` and writes every figure
    to ``out/figures/NAME.png`` (earlier runs' figures and tables removed first)."""
    from analysis import figures, group_figures

    fig_dir, tab_dir = out / "figures", out / "tables"
    fig_dir.mkdir(parents=True, exist_ok=True)
    tab_dir.mkdir(exist_ok=True)
    report_output.remove_earlier_results(out)
    a.pngs["group_thresholds"] = group_figures.group_thresholds_figure(
        _figure_threshold_rows(a),
        a.group,
        log_axis=a.log_axis,
        conditions=a.conditions,
        level_labels=a.design.level_labels(a.conditions),
        not_estimates=unbracketed_thresholds(a),
    )
    a.pngs["qc"] = group_figures.qc_figure(a.qc.participants, a.config.qc)
    if a.token_curves:
        a.pngs["token_ratio"] = group_figures.token_figure(
            a.token_curves,
            a.group,
            log_axis=a.log_axis,
            level_labels=a.design.level_labels(a.conditions),
        )
    if a.overlay_fits is not None:
        a.pngs["perceptual_overlay"] = figures.overlay_figure(
            a.overlay_fits[0],
            a.overlay_fits[1],
            conditions=a.conditions,
            level_labels=a.design.level_labels(a.conditions),
        )
    report_output.enter(out, [fig_dir / f"{name}.png" for name in a.pngs])
    for name, png in a.pngs.items():
        write_atomic(fig_dir / f"{name}.png", png)


def write_tables(a: Analysis, out: Path) -> Path:
    """Writes ``out/tables/*.csv`` (every table of the page) and ``out/thresholds.csv``.

    Fills ``sessions_table`` and ``table_names``; returns the thresholds.csv path.
    """
    a.sessions_table = sessions_table(a.dataset, a.data_root)
    tables = {
        "fits": a.fit_details,
        "group_thresholds": a.group,
        "condition_effects": a.lmm.effects,
        "pairwise": a.pairs,
        "glmm_coefficients": a.glmm.coefficients,
        "glmm_variance": a.glmm.variance,
        "indistinguishability": a.equiv,
        "token_savings": a.savings,
        "tokens_per_level": a.tested_tokens,
        "qc_participants": a.qc.participants,
        "qc_exclusions": a.qc.exclusions,
        "sessions": a.sessions_table,
    }
    if len(a.overlay_table):
        tables["perceptual_overlay"] = a.overlay_table
    thresholds_csv = out / "thresholds.csv"
    report_output.enter(out, [thresholds_csv, *(out / "tables" / f"{n}.csv" for n in tables)])
    for name, frame in tables.items():
        write_atomic(out / "tables" / f"{name}.csv", frame.to_csv(index=False))
    a.table_names = list(tables)
    write_atomic(thresholds_csv, a.threshold_rows.to_csv(index=False))
    return thresholds_csv


def write_summary(a: Analysis, out: Path) -> Path:
    """Fills ``a.summary`` and writes it to ``out/summary.json`` (non-finite numbers as null)."""
    a.summary = summary_of(a)
    path = out / "summary.json"
    report_output.enter(out, [path, out / "report.html"])
    write_atomic(path, json.dumps(strict_json(a.summary), indent=2) + "\n")
    return path


def _figure_threshold_rows(a: Analysis) -> pd.DataFrame:
    """``threshold_rows`` for the thresholds figure: a threshold the tested levels do not bracket
    (n/a in thresholds.csv) gets the value the page gives it ("at most" / "at least" about,
    ``PsychometricFit.bound_level``), which the figure draws hollow without an interval."""
    rows = a.threshold_rows.copy()
    for f in a.included_fits:
        if f.fitted and f.unbracketed:
            at = (rows["participant"] == f.participant) & (rows["condition"] == f.condition)
            rows.loc[at, "threshold"] = f.bound_level()
    return rows


def sessions_table(dataset, data_root: Path) -> pd.DataFrame:
    """One row per analysed session (labels, completion, rows, responses, flags) and one per
    file found but not analysed: with the labels and counts of the session read from it (another
    protocol's, a copy), blank counts where none was read (a folder not read)."""
    rows = [_session_row(s, data_root, flags="; ".join(s.flags)) for s in dataset.sessions]
    for sk in dataset.skipped:
        flags = f"not analysed: {sk.reason}"
        if sk.session is not None:
            rows.append(_session_row(sk.session, data_root, flags=flags))
            continue
        rows.append(
            {
                "participant": "",
                "session": "",
                "task": "",
                "observer": "",
                "tracker": "",
                "completed": "",
                "rows": None,
                "practice_rows": None,
                "responses": None,
                "started_utc": "",
                "software": "",
                "file": str(sk.path.relative_to(data_root)),
                "flags": flags,
            }
        )
    table = pd.DataFrame(rows)
    for column in ("rows", "practice_rows", "responses"):  # <NA> (shown as -): none was read
        table[column] = pd.array([row[column] for row in rows], dtype="Int64")
    return table


def _session_row(s, data_root: Path, *, flags: str) -> dict:
    """A session's row of the sessions table."""
    t = s.trials
    return {
        "participant": s.participant,
        "session": s.session,
        "task": s.task,
        "observer": s.observer,
        "tracker": s.sidecar.get("tracker", "") if s.sidecar else "",
        "completed": "no (being recorded now)"
        if s.running
        else "unknown"
        if s.completed is None
        else ("yes" if s.completed else "no (partial)"),
        "rows": len(t),
        "practice_rows": s.practice_trials,
        "responses": int(responded(t).sum()),
        "started_utc": s.sidecar.get("started_utc", "") if s.sidecar else "",
        "software": session_software(s.sidecar),
        "file": str(s.beh_path.relative_to(data_root)),
        "flags": flags,
    }


def session_software(sidecar: dict | None) -> str:
    """The kit versions that ran a session, oldest first: the start's, then any other a resume
    ran (``runs[].software_version``)."""
    if not sidecar:
        return ""
    versions = [sidecar.get("software_version")]
    runs = sidecar.get("runs")  # analysis.data keeps only run records; a hand-made dict may not
    runs = runs if isinstance(runs, list) else []
    versions += [run.get("software_version") for run in runs if isinstance(run, dict)]
    return ", ".join(dict.fromkeys(str(v) for v in versions if v))


def summary_of(a: Analysis) -> dict:
    """The machine-readable summary (summary.json, schema ``SUMMARY_SCHEMA``)."""
    from analysis.jobs import default_workers

    design = a.design
    return {
        "schema_version": SUMMARY_SCHEMA,
        "generated_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software_version": software_version(),
        "data_dir": str(Path(a.data_root).absolute()),
        "protocol_name": design.protocol_name,
        "protocol_sha256": list(design.protocol_sha256),
        "task": design.task,
        "design": {
            "display": design.display,
            "image_size_px": list(design.image_size_px),
            "patch_px": design.patch_px,
            "conditions": design.conditions,
            "procedure": design.procedure,
            "assumed": list(design.defaults_used),
        },
        "settings": _settings(a),
        "counts": _counts(a),
        "conditions": [_condition_entry(a, rec) for rec in a.group.itertuples(index=False)],
        "tests": _tests(a),
        "qc": {
            "exclusions": a.qc.exclusions.to_dict("records"),
            "participants": a.qc.participants.to_dict("records"),
            "interval_bias": _interval_bias(a),
            "duplicate_sessions": [c.note for c in a.dataset.copies],
        },
        "perceptual_overlay": a.overlay_table.to_dict("records") if len(a.overlay_table) else None,
        "stimulus_examples": [_example_entry(e) for e in a.stimulus_examples],
        "warnings": a.warnings,
        "files": {
            "html": "report.html",
            "thresholds": "thresholds.csv",
            "figures": sorted(f"figures/{n}.png" for n in a.pngs),
            "tables": sorted(f"tables/{n}.csv" for n in a.table_names),
        },
        "seconds": a.seconds,
        "timings_s": a.timings_s,
        "workers": a.config.workers or default_workers(),
    }


def _interval_bias(a: Analysis) -> dict:
    """The interval-bias columns of ``qc.participants``: their definitions, the flag's level and
    who was flagged."""
    people = a.qc.participants
    return {
        "alpha": a.config.qc.interval_bias_alpha,
        "columns": dict(interval_bias.COLUMNS),
        "flagged": sorted(people.loc[people["interval_bias_flagged"], "participant"].astype(str)),
    }


def _settings(a: Analysis) -> dict:
    fs, config = a.fit_settings, a.config
    return {
        "fit": {k: v for k, v in asdict(fs).items() if k != "bayes_grid"},
        "bayes_grid": asdict(fs.bayes_grid),
        "qc_rules": config.qc.describe(),
        "equivalence_margin": config.equivalence_margin,
        "alpha": config.alpha,
        "operating_levels": {r["condition"]: r["level"] for r in a.equiv.to_dict("records")},
        "seed": fs.seed,
        "bootstrap_seeds": {f"{f.participant}/{f.condition}": f.seed for f in a.fits},
    }


def _counts(a: Analysis) -> dict:
    # Every participant analysed as one: those fitted, and those QC removed before any fit (a
    # session rule took all their trials), of the observers fitted as participants.
    people = a.qc.participants
    observers = set(a.human["observer"]) if a.human is not None and len(a.human) else set()
    observers = observers or (set(people["observer"]) - {"perceptual"}) or set(people["observer"])
    unfitted = people.loc[people["excluded"] & people["observer"].isin(observers), "participant"]
    participants = sorted({f.participant for f in a.fits} | set(unfitted.astype(str)))
    sessions = a.dataset.sessions
    return {
        "sessions": len(sessions),
        "files_not_analysed": len(a.dataset.skipped),
        "participants": len(participants),
        "participants_included": len([p for p in participants if p not in a.excluded]),
        "participants_excluded": sorted(a.excluded),
        "trials_presented": int(len(a.qc.trials)),
        "practice_trials": sum(s.practice_trials for s in sessions),
        "trials_analysed": int(a.qc.trials["analysed"].sum()),
        # of them the perceptual observer's (0 when its sessions are analysed as participants)
        "perceptual_observer_trials_analysed": int(len(a.perceptual))
        if a.perceptual is not None
        else 0,
        "incomplete_sessions": sum(1 for s in sessions if s.completed is False),
        "sessions_being_recorded": a.dataset.being_recorded,
    }


def _condition_entry(a: Analysis, rec) -> dict:
    """One condition's group threshold, token savings and indistinguishability verdict."""
    c = rec.condition
    sv = a.savings[a.savings["condition"] == c]
    eq = a.equiv[a.equiv["condition"] == c]
    entry = {
        "condition": c,
        "level_variable": a.design.level_variable(c),
        "n_participants": int(rec.n_participants),
        "group_threshold": rec.threshold,
        "ci_low": rec.ci_low,
        "ci_high": rec.ci_high,
        "between_participant_sd_log10": rec.sd_log10,
        "group_note": rec.note,
        "token_ratio_at_threshold": float(sv["token_ratio"].iloc[0]) if len(sv) else None,
        "token_savings_pct": float(sv["savings_pct"].iloc[0]) if len(sv) else None,
        "tokens_at_threshold": float(sv["tokens_at_threshold"].iloc[0]) if len(sv) else None,
        "tokens_full": float(sv["tokens_full"].iloc[0]) if len(sv) else None,
    }
    if len(eq):
        e = eq.iloc[0]
        keys = ("level", "p_correct", "ci_low", "ci_high", "bound", "verdict", "statement")
        entry["indistinguishability"] = {k: e[k] for k in keys}
    return entry


def _example_entry(example) -> dict:
    """One condition's stimulus example (analysis.report_stimuli) without its picture."""
    entry = {
        k: getattr(example, k)
        for k in ("condition", "level", "level_source", "participant", "session", "trial")
    }
    entry.update(
        seed=example.seed,
        gaze_deg=list(example.gaze_deg),
        source=example.source,
        tokens=example.tokens,
        tokens_full=example.tokens_full,
        figure=f"figures/{example.figure_name}.png" if example.png is not None else None,
        note=example.note,
    )
    return entry


def _tests(a: Analysis) -> dict:
    lmm, glmm = a.lmm, a.glmm
    return {
        "threshold_mixed_model": {
            "reference": lmm.reference,
            "omnibus_chi2": lmm.omnibus_chi2,
            "df": lmm.omnibus_df,
            "p": lmm.omnibus_p,
            "participant_sd_log": lmm.participant_sd_log,
            "note": lmm.note,
            "effects": lmm.effects.to_dict("records"),
        },
        "trial_mixed_logistic": {
            "reference": glmm.reference,
            "wald_chi2": glmm.wald_chi2,
            "df": glmm.wald_df,
            "p": glmm.wald_p,
            "note": glmm.note,
            "n_trials": glmm.n_trials,
            "xc_zero_level": glmm.xc_zero_level,
            "xc": ""
            if glmm.note
            else describe_xc(log_axis=a.log_axis, zero_level=glmm.xc_zero_level),
        },
    }
