"""Validation of the fits: threshold recovery from simulated observers.

Simulated observers are the study's parametric observer (a cumulative normal on log10 level with
psignifit's width and a lapse rate), run through constant stimuli or through the study's QUEST+
procedure (``analysis.adaptive``, the same algorithm as ``study.procedures.tracks.QuestPlusTrack``).
Each simulated experiment is fitted exactly as the report fits a participant x condition cell;
over many experiments we measure the threshold's bias and the coverage of its 95 % intervals.

Run ``python -m analysis.validation`` to print the figures (tests/analysis/test_recovery.py
asserts them).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from analysis.adaptive import QuestPlusGrid, run_lockstep
from analysis.fits import FitSettings, fit_cell
from analysis.simulate_data import p_correct_parametric
from generator.arg_types import positive_int, seed_int


@dataclass(frozen=True, kw_only=True)
class RecoverySetting:
    """One simulated design.

    Attributes:
        name: label.
        procedure: ``constant`` or ``questplus``.
        trials: responses per experiment.
        threshold: true threshold (level units).
        width_log10: true width (5-95 % span) on log10 level.
        lapse: true lapse rate.
        levels: constant stimuli's levels.
        level_min, level_max: QUEST+ range (schema defaults: 25 levels, 25 thresholds, SDs 0.05 to
            0.4 log10, lapses 0 / 0.02 / 0.05).
    """

    name: str
    procedure: Literal["constant", "questplus"]
    trials: int
    threshold: float = 1.0
    width_log10: float = 0.6
    lapse: float = 0.02
    levels: tuple[float, ...] = tuple(float(v) for v in np.geomspace(0.25, 4.0, 7))
    level_min: float = 0.1
    level_max: float = 8.0


@dataclass(frozen=True)
class RecoveryResult:
    """Bias and coverage over ``n_experiments``.

    Attributes:
        bias_*: mean relative error of the threshold, mean(estimate / true) - 1.
        coverage_*: share of 95 % intervals containing the true threshold.
        miss_low_* / miss_high_*: intervals entirely below / above the truth.
    """

    setting: str
    n_experiments: int
    seed: int
    bias_ml: float
    coverage_ml: float
    miss_low_ml: int
    miss_high_ml: int
    bias_bayes: float
    coverage_bayes: float
    miss_low_bayes: int
    miss_high_bayes: int
    median_abs_log_error_ml: float
    seconds: float


def simulate_experiments(setting: RecoverySetting, *, n: int, rng: np.random.Generator):
    """(levels, correct), both (n, trials), of ``n`` simulated experiments."""

    def p_fn(lv):
        return p_correct_parametric(
            lv, threshold=setting.threshold, width_log10=setting.width_log10, lapse=setting.lapse
        )

    if setting.procedure == "constant":
        base = np.resize(
            np.repeat(np.asarray(setting.levels), math.ceil(setting.trials / len(setting.levels))),
            setting.trials,
        )
        levels = np.tile(base, (n, 1))
        return levels, rng.random(levels.shape) < p_fn(levels)
    grid = QuestPlusGrid.for_condition(level_min=setting.level_min, level_max=setting.level_max)
    return run_lockstep(grid=grid, n_trials=setting.trials, p_correct_fn=p_fn, rng=rng, n_runs=n)


def _fit_chunk(args):
    levels, correct, settings, offset = args
    out = []
    for i in range(levels.shape[0]):
        fit = fit_cell(
            participant=f"sim{offset + i}",
            condition="c",
            observer="parametric",
            levels=levels[i],
            correct=correct[i].astype(float),
            settings=settings,
        )
        lo, hi = fit.ml_ci_x()
        ml = (
            fit.threshold(),
            float(np.exp(lo)) if fit.sigmoid.log_axis else lo,
            float(np.exp(hi)) if fit.sigmoid.log_axis else hi,
        )
        b = fit.bayes
        if b is not None:
            to = fit.sigmoid.to_level
            by = (
                float(to(b.threshold_x)),
                float(to(b.ci_threshold_x[0])),
                float(to(b.ci_threshold_x[1])),
            )
        else:
            by = (np.nan, np.nan, np.nan)
        out.append(ml + by)
    return out


def recovery_study(
    *,
    setting: RecoverySetting,
    n_experiments: int,
    seed: int,
    settings: FitSettings | None = None,
    workers: int = 1,
) -> RecoveryResult:
    """Simulate and fit ``n_experiments`` experiments; bias and coverage of ML and Bayes.

    Args:
        setting: the design.
        n_experiments: number of experiments.
        seed: simulation seed (the fits' bootstrap seeds derive from ``settings.seed``).
        settings: fit settings (default: the report's, norm sigmoid on a log axis).
        workers: processes (forked) to spread the fits over.
    """
    t0 = time.perf_counter()
    settings = settings or FitSettings()
    levels, correct = simulate_experiments(
        setting, n=n_experiments, rng=np.random.default_rng(seed)
    )
    chunks = np.array_split(np.arange(n_experiments), max(1, workers * 4))
    tasks = [
        (levels[c], correct[c], settings, int(c[0]) if c.size else 0) for c in chunks if c.size
    ]
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            parts = list(pool.map(_fit_chunk, tasks))
    else:
        parts = [_fit_chunk(t) for t in tasks]
    r = np.array([row for part in parts for row in part])
    true = setting.threshold

    def stats(est, lo, hi):
        inside = (lo <= true) & (true <= hi)
        return (
            float(np.mean(est / true) - 1),
            float(np.mean(inside)),
            int(np.sum(hi < true)),
            int(np.sum(lo > true)),
        )

    b_ml, c_ml, lo_ml, hi_ml = stats(r[:, 0], r[:, 1], r[:, 2])
    b_by, c_by, lo_by, hi_by = stats(r[:, 3], r[:, 4], r[:, 5])
    return RecoveryResult(
        setting=setting.name,
        n_experiments=n_experiments,
        seed=seed,
        bias_ml=b_ml,
        coverage_ml=c_ml,
        miss_low_ml=lo_ml,
        miss_high_ml=hi_ml,
        bias_bayes=b_by,
        coverage_bayes=c_by,
        miss_low_bayes=lo_by,
        miss_high_bayes=hi_by,
        median_abs_log_error_ml=float(np.median(np.abs(np.log(r[:, 0] / true)))),
        seconds=time.perf_counter() - t0,
    )


SETTINGS = {
    "constant": RecoverySetting(
        name="constant stimuli, 7 levels x 30", procedure="constant", trials=210
    ),
    "questplus200": RecoverySetting(
        name="study QUEST+, 200 trials", procedure="questplus", trials=200
    ),
    "questplus120": RecoverySetting(
        name="study QUEST+, 120 trials", procedure="questplus", trials=120
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.validation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--setting", choices=sorted(SETTINGS), action="append")
    parser.add_argument("--experiments", type=positive_int, default=200)
    parser.add_argument("--seed", type=seed_int, default=20261128)
    parser.add_argument("--workers", type=positive_int, default=2)
    args = parser.parse_args(argv)
    for key in args.setting or ["constant", "questplus200"]:
        result = recovery_study(
            setting=SETTINGS[key],
            n_experiments=args.experiments,
            seed=args.seed,
            workers=args.workers,
        )
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(result).items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
