"""The analysis report: ``python analysis/report.py DATA_DIR --out OUT_DIR`` (or ``fovea report``).

Reads every ``*_beh.tsv`` below DATA_DIR (one protocol), applies the quality-control rules, fits a
psychometric function per participant and condition (maximum likelihood with parametric-bootstrap
intervals, and psignifit 4's Bayesian beta-binomial model), computes group statistics, the token
savings at threshold and an indistinguishability statement at an operating level, and writes:

- ``OUT_DIR/report.html``: self-contained (figures embedded), for readers who were not there;
- ``OUT_DIR/thresholds.csv``: participant, condition, threshold, ci_low, ci_high, slope, lapse,
  n_trials (included participants; the pinned contract);
- ``OUT_DIR/summary.json``: the machine-readable summary;
- ``OUT_DIR/figures/*.png`` and ``OUT_DIR/tables/*.csv``: every figure and table of the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script (python analysis/report.py): Python put analysis/ first on the path, where
    # its modules would shadow same-named ones; the repository root goes there instead.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from generator.errors import FoveaError  # noqa: E402

if TYPE_CHECKING:
    from analysis.fits import FitSettings
    from analysis.qc import QCRules

SUMMARY_SCHEMA = 1
DEFAULT_OPERATING_LEVELS = {"strength": 1.0, "radius_shrink": 0.67, "periphery_factor": 2.0}


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """Everything the report's numbers depend on (recorded in summary.json).

    Attributes:
        fit: psychometric fit settings (default ``FitSettings()``).
        qc: exclusion rules (default ``QCRules()``).
        operating_levels: condition name -> level for the indistinguishability statement;
            conditions not named use ``operating_level`` or the default for their level variable
            (strength 1.0, radius_shrink 0.67 = the paper's r = 0.33, periphery_factor 2).
        operating_level: one level for every condition (overrides the defaults).
        equivalence_margin: proportion correct above 0.5 that still counts as indistinguishable.
        alpha: level of each one-sided test.
        protocol: analyse only this protocol (name or sha256 prefix).
        progress: show progress bars on stderr.
        workers: processes for the per-participant fits and figures (default: the usable CPUs,
            at most 4); results do not depend on it.
        title: report title (default: from the protocol name).
    """

    fit: FitSettings | None = None
    qc: QCRules | None = None
    operating_levels: dict[str, float] = field(default_factory=dict)
    operating_level: float | None = None
    equivalence_margin: float = 0.05
    alpha: float = 0.05
    protocol: str | None = None
    progress: bool = True
    workers: int | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        from analysis.fits import FitSettings
        from analysis.qc import QCRules

        if self.fit is None:
            object.__setattr__(self, "fit", FitSettings())
        if self.qc is None:
            object.__setattr__(self, "qc", QCRules())
        if not 0 < self.equivalence_margin < 0.5:
            raise FoveaError(
                f"equivalence margin must lie in (0, 0.5), got {self.equivalence_margin!r}"
            )
        if not 0 < self.alpha < 0.5:
            raise FoveaError(f"alpha must lie in (0, 0.5), got {self.alpha!r}")
        for name, level in {**self.operating_levels, "*": self.operating_level}.items():
            if level is not None and not (math.isfinite(level) and level >= 0):
                raise FoveaError(
                    f"operating level for {name} must be a non-negative number, got {level!r}"
                )


@dataclass
class ReportResult:
    """Paths written and the summary."""

    out_dir: Path
    html: Path
    thresholds_csv: Path
    summary_json: Path
    summary: dict
    seconds: float


def build_report(
    *, data_dir: str | Path, out_dir: str | Path, config: ReportConfig | None = None
) -> ReportResult:
    """Run the whole analysis and write the report (see module docstring).

    Raises:
        FoveaError: unusable data (message names the file and the problem) or bad settings.
    """
    import numpy as np
    import pandas as pd

    from analysis import figures
    from analysis.data import design_of, load_dataset
    from analysis.fits import PsychometricFit
    from analysis.group import (
        group_thresholds,
        indistinguishability,
        pairwise_effects,
        threshold_mixed_model,
        trial_mixed_logistic,
    )
    from analysis.jobs import ParticipantJob, default_workers, run_jobs
    from analysis.qc import run_qc
    from analysis.tokens import token_ratio_curve, token_savings, tokens_per_tested_level

    config = config or ReportConfig()
    t_start = time.perf_counter()
    out = Path(out_dir)
    data_root = Path(data_dir)
    if out.resolve() == data_root.resolve():
        raise FoveaError(
            f"--out {out} is the data directory; write the report to its own directory"
        )
    fit_settings = config.fit
    log_axis = fit_settings.axis == "log"
    say = (lambda msg: print(msg, file=sys.stderr)) if config.progress else (lambda msg: None)

    timings: dict[str, float] = {}
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - mark[0], 3)
        mark[0] = now

    dataset = load_dataset(data_dir=data_root, protocol=config.protocol)
    design, design_notes = design_of(dataset)
    warnings_list: list[str] = list(design_notes)
    for s in dataset.sessions:
        for flag in s.flags:
            warnings_list.append(f"{s.beh_path.relative_to(data_root)}: {flag}")
    for sk in dataset.skipped:
        warnings_list.append(f"{sk.path.relative_to(data_root)}: not analysed: {sk.reason}")
    if design.defaults_used:
        warnings_list.append("assumed (no sidecar said): " + "; ".join(design.defaults_used))

    lap("load")
    qc = run_qc(trials=dataset.trials, sessions=dataset.sessions, rules=config.qc)
    lap("qc")
    trials = qc.trials
    conditions = [c for c in design.conditions if c in set(trials["condition"])]
    conditions += sorted(set(trials["condition"]) - set(conditions))
    excluded = set(qc.excluded_participants)

    # Participant fits: trials that pass the trial rules (participant exclusions are marked but
    # still fitted, so the report can show what was excluded).
    usable = trials["excluded_by"].eq("") | trials["excluded_by"].str.startswith("participant:")
    human = trials[usable & (trials["observer"] != "perceptual")]
    perceptual = trials[usable & (trials["observer"] == "perceptual")]
    if human.empty and not perceptual.empty:
        human, perceptual = perceptual, perceptual.iloc[0:0]
        warnings_list.append(
            "only perceptual-observer sessions: they are analysed as the participants"
        )
    truth_by_p = _truth_by_participant(dataset)
    groups = {k: g for k, g in human.groupby(["participant", "condition"], sort=False)}
    jobs = []
    for p in sorted(human["participant"].astype(str).unique()):
        cells = []
        for c in conditions:
            g = groups.get((p, c))
            observer = str(g["observer"].iloc[0]) if g is not None and len(g) else "human"
            levels = g["level"].to_numpy() if g is not None else np.empty(0)
            correct = g["correct"].to_numpy() if g is not None else np.empty(0)
            cells.append((c, observer, levels, correct))
        jobs.append(
            ParticipantJob(
                participant=p,
                cells=tuple(cells),
                excluded=p in excluded,
                truth=truth_by_p.get(p),
                settings=fit_settings,
            )
        )
    results = run_jobs(jobs, workers=config.workers or default_workers(), progress=config.progress)
    fits: list[PsychometricFit] = [f for job_fits, _ in results for f in job_fits]
    pngs: dict[str, bytes] = {
        f"psychometric_sub-{job.participant}": png
        for job, (_, png) in zip(jobs, results, strict=True)
    }
    lap("fits_and_participant_figures")
    included = [f for f in fits if f.participant not in excluded]
    threshold_rows = pd.DataFrame(
        [f.row() for f in included],
        columns=[
            "participant",
            "condition",
            "threshold",
            "ci_low",
            "ci_high",
            "slope",
            "lapse",
            "n_trials",
        ],
    )
    fit_details = pd.DataFrame(
        [{**f.detail_row(), "included": f.participant not in excluded} for f in fits]
    )

    # Group statistics on included participants.
    say("group statistics")
    group = group_thresholds(
        threshold_rows, log_axis=log_axis, ci_level=fit_settings.ci_level, conditions=conditions
    )
    if not included:
        warnings_list.append("every participant was excluded by QC: no group results")
    lmm = threshold_mixed_model(
        threshold_rows, conditions=conditions, log_axis=log_axis, ci_level=fit_settings.ci_level
    )
    rng_group = np.random.default_rng(np.random.SeedSequence([fit_settings.seed, 7]))
    pairs = pairwise_effects(
        threshold_rows,
        conditions=conditions,
        log_axis=log_axis,
        rng=rng_group,
        ci_level=fit_settings.ci_level,
    )
    analysed_human = human[
        human["excluded_by"].eq("") & ~human["participant"].astype(str).isin(excluded)
    ]
    glmm = trial_mixed_logistic(
        analysed_human, conditions=conditions, log_axis=log_axis, ci_level=fit_settings.ci_level
    )
    op_levels = _operating_levels(config, design, conditions)
    equiv = indistinguishability(
        included,
        operating_levels=op_levels,
        margin=config.equivalence_margin,
        rng=np.random.default_rng(np.random.SeedSequence([fit_settings.seed, 11])),
        alpha=config.alpha,
    )

    lap("group_statistics")
    # Perceptual observer overlay: pooled fits of participants and of the model observer.
    overlay = None
    overlay_table = pd.DataFrame()
    if not perceptual.empty:
        say("perceptual-observer overlay")
        overlay_human, overlay_model, rows = {}, {}, []
        for c in conditions:
            hc = analysed_human[analysed_human["condition"] == c]
            mc = perceptual[perceptual["condition"] == c]
            hf = _pooled_fit(hc, c, participant="pooled", observer="human", settings=fit_settings)
            mf = _pooled_fit(
                mc, c, participant="perceptual", observer="perceptual", settings=fit_settings
            )
            overlay_human[c] = (hf, [f for f in included if f.condition == c])
            if mf is not None:
                overlay_model[c] = mf
            g = group[group["condition"] == c]
            rows.append(
                {
                    "condition": c,
                    "measured_group_threshold": float(g["threshold"].iloc[0]) if len(g) else np.nan,
                    "measured_pooled_threshold": hf.threshold()
                    if hf is not None and hf.fitted
                    else np.nan,
                    "predicted_threshold": mf.threshold()
                    if mf is not None and mf.fitted
                    else np.nan,
                    "predicted_ci_low": mf.ci()[0] if mf is not None and mf.fitted else np.nan,
                    "predicted_ci_high": mf.ci()[1] if mf is not None and mf.fitted else np.nan,
                    "model_trials": int(len(mc)),
                }
            )
        overlay = (overlay_human, overlay_model)
        overlay_table = pd.DataFrame(rows)
        overlay_table["predicted_over_measured"] = (
            overlay_table["predicted_threshold"] / overlay_table["measured_group_threshold"]
        )

    lap("perceptual_overlay")
    # Token savings at threshold.
    say("token savings")
    savings = token_savings(
        group=group,
        conditions=design.conditions,
        display=design.display,
        image_size_px=design.image_size_px,
        patch_px=design.patch_px,
    )
    tested_tokens = tokens_per_tested_level(analysed_human)
    curves = {}
    for c in conditions:
        cond = design.conditions.get(c) or {"name": c, "level_variable": "strength"}
        if cond.get("level_variable", "strength") == "periphery_factor":
            continue
        levels_c = human.loc[human["condition"] == c, "level"]
        levels_c = levels_c[levels_c > 0] if log_axis else levels_c
        if levels_c.empty:
            continue
        lo, hi = float(levels_c.min()), float(levels_c.max())
        grid = np.geomspace(lo, hi, 40) if log_axis and lo > 0 else np.linspace(lo, hi, 40)
        curves[c] = (
            grid,
            token_ratio_curve(
                condition=cond,
                levels=grid,
                display=design.display,
                image_size_px=design.image_size_px,
                patch_px=design.patch_px,
            ),
        )

    lap("tokens")
    # Files.
    say("writing the report")
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    tab_dir = out / "tables"
    fig_dir.mkdir(exist_ok=True)
    tab_dir.mkdir(exist_ok=True)
    # figures/ and tables/ belong to the report: files of an earlier run (a participant since
    # removed, say) would otherwise pass for results of this one.
    for stale in [*fig_dir.glob("*.png"), *tab_dir.glob("*.csv")]:
        stale.unlink()
    pngs["group_thresholds"] = figures.group_thresholds_figure(
        threshold_rows, group, log_axis=log_axis, conditions=conditions
    )
    pngs["qc"] = figures.qc_figure(qc.participants, config.qc)
    if curves:
        pngs["token_ratio"] = figures.token_figure(curves, group, log_axis=log_axis)
    if overlay is not None:
        pngs["perceptual_overlay"] = figures.overlay_figure(
            overlay[0], overlay[1], conditions=conditions
        )
    for name, png in pngs.items():
        (fig_dir / f"{name}.png").write_bytes(png)

    lap("figures")
    sessions_table = _sessions_table(dataset, data_root)
    tables = {
        "fits": fit_details,
        "group_thresholds": group,
        "condition_effects": lmm.effects,
        "pairwise": pairs,
        "glmm_coefficients": glmm.coefficients,
        "glmm_variance": glmm.variance,
        "indistinguishability": equiv,
        "token_savings": savings,
        "tokens_per_level": tested_tokens,
        "qc_participants": qc.participants,
        "qc_exclusions": qc.exclusions,
        "sessions": sessions_table,
    }
    if len(overlay_table):
        tables["perceptual_overlay"] = overlay_table
    for name, frame in tables.items():
        frame.to_csv(tab_dir / f"{name}.csv", index=False)
    thresholds_csv = out / "thresholds.csv"
    threshold_rows.to_csv(thresholds_csv, index=False)

    lap("tables")
    seconds = time.perf_counter() - t_start
    summary = _summary(
        config=config,
        design=design,
        dataset=dataset,
        data_root=data_root,
        qc=qc,
        group=group,
        lmm=lmm,
        glmm=glmm,
        equiv=equiv,
        savings=savings,
        overlay_table=overlay_table,
        warnings_list=warnings_list,
        fits=fits,
        excluded=excluded,
        seconds=seconds,
        files={
            "html": "report.html",
            "thresholds": "thresholds.csv",
            "figures": sorted(f"figures/{n}.png" for n in pngs),
            "tables": sorted(f"tables/{n}.csv" for n in tables),
        },
        timings=timings,
    )
    summary_json = out / "summary.json"
    summary_json.write_text(json.dumps(_jsonable(summary), indent=2) + "\n", encoding="utf-8")

    from analysis.report_html import render

    html_path = out / "report.html"
    html_path.write_text(
        render(
            config=config,
            design=design,
            dataset=dataset,
            data_root=data_root,
            summary=summary,
            qc=qc,
            fits=fits,
            excluded=excluded,
            threshold_rows=threshold_rows,
            fit_details=fit_details,
            group=group,
            lmm=lmm,
            pairs=pairs,
            glmm=glmm,
            equiv=equiv,
            savings=savings,
            tested_tokens=tested_tokens,
            overlay_table=overlay_table,
            pngs=pngs,
            sessions_table=sessions_table,
            warnings_list=warnings_list,
            conditions=conditions,
        ),
        encoding="utf-8",
    )
    seconds = time.perf_counter() - t_start
    say(f"report written to {html_path} ({seconds:.1f} s)")
    return ReportResult(
        out_dir=out,
        html=html_path,
        thresholds_csv=thresholds_csv,
        summary_json=summary_json,
        summary=summary,
        seconds=seconds,
    )


def _pooled_fit(trials, condition: str, *, participant: str, observer: str, settings):
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
    )


def _operating_levels(config: ReportConfig, design, conditions: list[str]) -> dict[str, float]:
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


def _sessions_table(dataset, data_root: Path):
    import pandas as pd

    rows = []
    for s in dataset.sessions:
        t = s.trials
        responded = ((t["fixation_break"] == 0) & t["correct"].notna()).sum()
        rows.append(
            {
                "participant": s.participant,
                "session": s.session,
                "task": s.task,
                "observer": s.observer,
                "tracker": s.sidecar.get("tracker", "") if s.sidecar else "",
                "completed": "unknown"
                if s.completed is None
                else ("yes" if s.completed else "no (partial)"),
                "rows": len(t),
                "responses": int(responded),
                "started_utc": s.sidecar.get("started_utc", "") if s.sidecar else "",
                "file": str(s.beh_path.relative_to(data_root)),
                "flags": "; ".join(s.flags),
            }
        )
    for sk in dataset.skipped:
        rows.append(
            {
                "participant": "",
                "session": "",
                "task": "",
                "observer": "",
                "tracker": "",
                "completed": "",
                "rows": 0,
                "responses": 0,
                "started_utc": "",
                "file": str(sk.path.relative_to(data_root)),
                "flags": f"not analysed: {sk.reason}",
            }
        )
    return pd.DataFrame(rows)


def _summary(
    *,
    config,
    design,
    dataset,
    data_root,
    qc,
    group,
    lmm,
    glmm,
    equiv,
    savings,
    overlay_table,
    warnings_list,
    fits,
    excluded,
    seconds,
    files,
    timings,
) -> dict:
    import numpy as np

    fs = config.fit
    participants = sorted({f.participant for f in fits})
    conditions_out = []
    for rec in group.itertuples(index=False):
        c = rec.condition
        sv = savings[savings["condition"] == c]
        eq = equiv[equiv["condition"] == c]
        entry = {
            "condition": c,
            "level_variable": design.level_variable(c),
            "n_participants": int(rec.n_participants),
            "group_threshold": rec.threshold,
            "ci_low": rec.ci_low,
            "ci_high": rec.ci_high,
            "between_participant_sd_log10": rec.sd_log10,
            "token_ratio_at_threshold": float(sv["token_ratio"].iloc[0]) if len(sv) else None,
            "token_savings_pct": float(sv["savings_pct"].iloc[0]) if len(sv) else None,
            "tokens_at_threshold": float(sv["tokens_at_threshold"].iloc[0]) if len(sv) else None,
            "tokens_full": float(sv["tokens_full"].iloc[0]) if len(sv) else None,
        }
        if len(eq):
            e = eq.iloc[0]
            entry["indistinguishability"] = {
                "level": e["level"],
                "p_correct": e["p_correct"],
                "ci_low": e["ci_low"],
                "ci_high": e["ci_high"],
                "bound": e["bound"],
                "verdict": e["verdict"],
                "statement": e["statement"],
            }
        conditions_out.append(entry)
    summary = {
        "schema_version": SUMMARY_SCHEMA,
        "generated_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software_version": _version(),
        "data_dir": str(data_root),
        "protocol_name": design.protocol_name,
        "task": design.task,
        "design": {
            "display": design.display,
            "image_size_px": list(design.image_size_px),
            "patch_px": design.patch_px,
            "conditions": design.conditions,
            "procedure": design.procedure,
            "assumed": list(design.defaults_used),
        },
        "settings": {
            "fit": {k: v for k, v in asdict(fs).items() if k != "bayes_grid"},
            "bayes_grid": asdict(fs.bayes_grid),
            "qc_rules": config.qc.describe(),
            "equivalence_margin": config.equivalence_margin,
            "alpha": config.alpha,
            "operating_levels": {r["condition"]: r["level"] for r in equiv.to_dict("records")},
            "seed": fs.seed,
            "bootstrap_seeds": {f"{f.participant}/{f.condition}": f.seed for f in fits},
        },
        "counts": {
            "sessions": len(dataset.sessions),
            "files_not_analysed": len(dataset.skipped),
            "participants": len(participants),
            "participants_included": len([p for p in participants if p not in excluded]),
            "participants_excluded": sorted(excluded),
            "trials_presented": int(len(qc.trials)),
            "trials_analysed": int(qc.trials["analysed"].sum()),
            "incomplete_sessions": sum(1 for s in dataset.sessions if s.completed is False),
        },
        "conditions": conditions_out,
        "tests": {
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
            },
        },
        "qc": {
            "exclusions": qc.exclusions.to_dict("records"),
            "participants": qc.participants.to_dict("records"),
        },
        "perceptual_overlay": overlay_table.to_dict("records") if len(overlay_table) else None,
        "warnings": warnings_list,
        "files": files,
        "seconds": seconds,
        "timings_s": timings,
        "workers": config.workers or _default_workers(),
    }
    _ = np
    return summary


def _default_workers() -> int:
    from analysis.jobs import default_workers

    return default_workers()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fovea-kit")
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        return "unknown"


def _jsonable(value):
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------
# Command line (shared by ``python analysis/report.py`` and ``fovea report``)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options (used by this script and by ``fovea report``)."""
    parser.add_argument(
        "data_dir", metavar="DATA_DIR", help="data root holding sub-*/ses-*/beh/*_beh.tsv"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="OUT_DIR",
        help="directory for report.html, thresholds.csv, ...",
    )
    parser.add_argument(
        "--sigmoid",
        choices=("norm", "logistic", "weibull"),
        default="norm",
        help="psychometric function (default: norm, the study's own observer model)",
    )
    parser.add_argument(
        "--axis",
        choices=("log", "linear"),
        default="log",
        help="fit on log level (default) or on the level itself; weibull needs log",
    )
    parser.add_argument(
        "--method",
        choices=("ml", "bayes"),
        default="ml",
        help="estimate written to thresholds.csv: ml (bootstrap intervals, default) or bayes",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap replicates (default 1000)",
    )
    parser.add_argument(
        "--no-bayes", action="store_true", help="skip the Bayesian (psignifit 4) fits"
    )
    parser.add_argument(
        "--lapse-max", type=float, default=0.1, help="upper bound of the lapse rate (default 0.1)"
    )
    parser.add_argument(
        "--ci", type=float, default=0.95, help="interval probability (default 0.95)"
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed of bootstraps (default 0)")
    parser.add_argument(
        "--qc-rules", metavar="FILE", help="JSON or TOML file overriding QC exclusion rules"
    )
    parser.add_argument(
        "--operating-level",
        action="append",
        default=[],
        metavar="[COND=]LEVEL",
        help="level for the indistinguishability statement, for all conditions or one "
        "(repeatable); default: strength 1, radius_shrink 0.67, periphery_factor 2",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.05,
        help="equivalence margin above 50 %% correct (default 0.05)",
    )
    parser.add_argument("--protocol", help="analyse only this protocol (name or sha256 prefix)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for the fits (default: usable CPUs, at most 4)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def config_from_args(args: argparse.Namespace) -> ReportConfig:
    from analysis.fits import FitSettings
    from analysis.qc import QCRules

    fit = FitSettings(
        sigmoid=args.sigmoid,
        axis=args.axis,
        lapse_max=args.lapse_max,
        n_boot=args.bootstrap,
        ci_level=args.ci,
        bayes=not args.no_bayes,
        primary=args.method,
        seed=args.seed,
    )
    qc = QCRules.from_file(args.qc_rules) if args.qc_rules else QCRules()
    levels: dict[str, float] = {}
    single = None
    for item in args.operating_level:
        name, sep, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise FoveaError(
                f"--operating-level {item!r}: {value!r} is not a number (use LEVEL or COND=LEVEL)"
            ) from None
        if sep:
            levels[name] = number
        else:
            single = number
    return ReportConfig(
        fit=fit,
        qc=qc,
        operating_levels=levels,
        operating_level=single,
        equivalence_margin=args.margin,
        protocol=args.protocol,
        progress=not args.quiet,
        workers=args.workers,
    )


def run_from_args(args: argparse.Namespace) -> int:
    result = build_report(data_dir=args.data_dir, out_dir=args.out, config=config_from_args(args))
    if not args.quiet:
        print(f"wrote {result.html}, {result.thresholds_csv} and {result.summary_json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="analysis/report.py", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
