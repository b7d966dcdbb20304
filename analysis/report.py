"""The analysis report: ``python analysis/report.py DATA_DIR --out OUT_DIR`` (or ``fovea report``).

Reads every ``*_beh.tsv`` below DATA_DIR (one protocol), applies the quality-control rules, fits a
psychometric function per participant and condition (maximum likelihood with parametric-bootstrap
intervals, and psignifit 4's Bayesian beta-binomial model), computes group statistics, the token
savings at threshold and an indistinguishability statement at an operating level, and writes:

- ``OUT_DIR/report.html``: self-contained (figures embedded), for readers who were not there;
- ``OUT_DIR/thresholds.csv``: participant, condition, threshold, ci_low, ci_high, slope, lapse,
  n_trials (included participants; the pinned contract);
- ``OUT_DIR/summary.json``: the machine-readable summary;
- ``OUT_DIR/figures/*.png`` and ``OUT_DIR/tables/*.csv``: every figure and table of the report
  (``figures/stimulus_cache/``: regenerated example images, reused by the next run).
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
import errno  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from analysis.report_analysis import ReportConfig  # noqa: E402
from generator.arg_types import positive_int, seed_int  # noqa: E402
from generator.errors import FoveaError, is_path_error, path_error_message  # noqa: E402


@dataclass
class ReportResult:
    """Paths written and the summary."""

    out_dir: Path
    html: Path
    thresholds_csv: Path
    summary_json: Path
    summary: dict
    seconds: float


class _Stopwatch:
    """Seconds per stage (``laps``, rounded to ms) and since the start."""

    def __init__(self) -> None:
        self.start = self.mark = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.mark, 3)
        self.mark = now

    def total(self) -> float:
        return time.perf_counter() - self.start


def build_report(
    *, data_dir: str | Path, out_dir: str | Path, config: ReportConfig | None = None
) -> ReportResult:
    """Run the whole analysis and write the report (see module docstring).

    The stages fill one ``Analysis`` (analysis.report_analysis): load -> QC -> fits -> group
    statistics -> perceptual overlay -> token savings -> stimulus examples (unless
    ``config.stimuli`` is off) -> figures -> tables -> summary -> page.

    Raises:
        FoveaError: unusable data (message names the file and the problem) or bad settings.
    """
    from analysis import report_files, report_output, report_stages
    from analysis.report_html import render
    from generator.atomic import write_atomic

    config = config or ReportConfig()
    clock = _Stopwatch()
    out, data_root = Path(out_dir), Path(data_dir)
    if out.resolve() == data_root.resolve():
        raise FoveaError(
            f"--out {out} is the data directory; write the report to its own directory"
        )
    _check_out_dir(out)  # a file in the way fails now, not after the fits
    report_output.check_ownership(out)  # so does an analyst's own file the report would replace
    if config.stimuli and config.stimulus_device != "cpu":
        from generator.loading import check_device

        check_device(config.stimulus_device)  # before the fits, not after them
    say = (lambda msg: print(msg, file=sys.stderr)) if config.progress else (lambda msg: None)

    analysis = report_stages.load(config, data_root)
    # Only now: a command that finds no data leaves no empty report folder behind.
    out.mkdir(parents=True, exist_ok=True)
    clock.lap("load")
    report_stages.apply_qc(analysis)
    clock.lap("qc")
    report_stages.fit_participants(analysis)
    clock.lap("fits_and_participant_figures")
    say("group statistics")
    report_stages.group_statistics(analysis)
    clock.lap("group_statistics")
    if not analysis.perceptual.empty:
        say("perceptual-observer overlay")
    report_stages.perceptual_overlay(analysis)
    clock.lap("perceptual_overlay")
    say("token savings")
    report_stages.token_savings_at_threshold(analysis)
    clock.lap("tokens")
    if config.stimuli:
        from analysis.report_stimuli import CACHE_DIR_NAME, stimulus_examples

        say("stimulus examples")
        stimulus_examples(
            analysis, cache_dir=out / "figures" / CACHE_DIR_NAME, device=config.stimulus_device
        )
        clock.lap("stimulus_examples")
    say("writing the report")
    report_files.draw_figures(analysis, out)
    clock.lap("figures")
    thresholds_csv = report_files.write_tables(analysis, out)
    clock.lap("tables")
    analysis.timings_s = clock.laps
    analysis.seconds = clock.total()
    summary_json = report_files.write_summary(analysis, out)
    html_path = out / "report.html"
    write_atomic(html_path, render(analysis))  # last: it says the report is whole
    seconds = clock.total()
    say(f"report written to {html_path} ({seconds:.1f} s)")
    return ReportResult(
        out_dir=out,
        html=html_path,
        thresholds_csv=thresholds_csv,
        summary_json=summary_json,
        summary=analysis.summary,
        seconds=seconds,
    )


def _check_out_dir(out: Path) -> None:
    """The error ``out.mkdir`` would give for a file in the way (``out`` itself, or a folder
    above it), without creating anything."""
    for path in (out, *out.parents):
        if path.is_dir():
            return
        if path.exists():
            code = errno.EEXIST if path == out else errno.ENOTDIR
            error = FileExistsError if path == out else NotADirectoryError
            raise error(code, os.strerror(code), str(out))


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
        help="bootstrap replicates per fit, at least 100 (default 1000)",
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
    parser.add_argument(
        "--seed", type=seed_int, default=0, help="master seed of bootstraps (default 0)"
    )
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
        type=positive_int,
        default=None,
        help="processes for the fits (default: usable CPUs, at most 4)",
    )
    parser.add_argument(
        "--no-stimuli",
        action="store_true",
        help="skip the example images at each condition's group threshold (regenerated with "
        "the sessions' model when they saved none)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device the example images are regenerated on (default cpu; e.g. cuda for "
        "sessions that ran a large FLUX model)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def config_from_args(args: argparse.Namespace) -> ReportConfig:
    from analysis.fits import FitSettings
    from analysis.qc import QCRules

    if args.method == "bayes" and args.no_bayes:
        raise FoveaError("--method bayes reports the Bayesian fits, which --no-bayes skips")
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
        stimuli=not args.no_stimuli,
        stimulus_device=args.device,
    )


def run_from_args(args: argparse.Namespace) -> int:
    result = build_report(data_dir=args.data_dir, out_dir=args.out, config=config_from_args(args))
    if not args.quiet:
        print(f"wrote {result.html}, {result.thresholds_csv} and {result.summary_json}")
        notes = result.summary.get("warnings") or []
        if notes:
            print(
                f"{len(notes)} data note{'s' * (len(notes) != 1)} to read (incomplete sessions, "
                "files not analysed, flagged participants, ...): report.html, 'Data notes'; "
                "summary.json, 'warnings'"
            )
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
    except OSError as error:
        if not is_path_error(error):
            raise
        print(f"error: {path_error_message(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
