"""Psychometric fits per participant x condition: data aggregation, ML + bootstrap, Bayes.

``FitSettings`` chooses the model (sigmoid family, level axis, lapse bound) and which estimate
fills ``thresholds.csv`` (``primary``: the maximum-likelihood fit with parametric-bootstrap
percentile intervals, or the Bayesian MAP with posterior percentile intervals). Both are computed
by default and both appear in the report.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from analysis.fit_bayes import BayesFit, BayesGrid, fit_bayes
from analysis.fit_bootstrap import BootstrapResult, bootstrap_ml
from analysis.fit_ml import FitBounds, default_bounds
from analysis.p_values import p_text
from analysis.psychometric import SIGMOID_NAMES, AxisName, Sigmoid, SigmoidName
from generator.errors import FoveaError
from generator.levels import LevelDomain
from protocol.session_data import REPORT_MIN_TRIALS_PER_FIT

PrimaryMethod = Literal["ml", "bayes"]


#: The flag of a threshold estimated beyond the tested levels (its interval bounded): drawn, and
#: the figures' level axis reaches it.
EXTRAPOLATED = "threshold outside the tested levels (extrapolated)"


@dataclass(frozen=True, kw_only=True)
class FitSettings:
    """How psychometric functions are fitted.

    Attributes:
        sigmoid: ``norm`` (cumulative normal; the study's own observer model), ``logistic`` or
            ``weibull``.
        axis: ``log`` (fit on log level; default) or ``linear``.
        lapse_max: the lapse rate is estimated within [0, lapse_max].
        n_boot: parametric-bootstrap replicates for the ML intervals.
        ci_level: interval probability (both methods).
        bayes: also compute psignifit 4's Bayesian posterior.
        primary: the estimate written to thresholds.csv: ``ml`` or ``bayes``.
        min_trials: participant x condition cells with fewer analysed trials are not fitted.
        seed: master seed; each cell's bootstrap seed derives from it and the cell's labels.
    """

    sigmoid: SigmoidName = "norm"
    axis: AxisName = "log"
    lapse_max: float = 0.1
    n_boot: int = 1000
    ci_level: float = 0.95
    bayes: bool = True
    primary: PrimaryMethod = "ml"
    min_trials: int = REPORT_MIN_TRIALS_PER_FIT
    seed: int = 0
    bayes_grid: BayesGrid = field(default_factory=BayesGrid)

    def __post_init__(self) -> None:
        if self.sigmoid not in SIGMOID_NAMES:
            raise FoveaError(
                f"fit sigmoid must be one of {', '.join(SIGMOID_NAMES)}, got {self.sigmoid!r}"
            )
        Sigmoid(name=self.sigmoid, axis=self.axis)
        if not 0.0 <= self.lapse_max < 0.5:
            raise FoveaError(f"lapse_max must lie in [0, 0.5), got {self.lapse_max!r}")
        if not (isinstance(self.n_boot, int) and self.n_boot >= 0):
            raise FoveaError(
                f"bootstrap replicates must be a non-negative integer, got {self.n_boot!r}"
            )
        if not 0.5 < self.ci_level < 1.0:
            raise FoveaError(f"ci_level must lie in (0.5, 1), got {self.ci_level!r}")
        if self.primary not in ("ml", "bayes"):
            raise FoveaError(f"primary method must be 'ml' or 'bayes', got {self.primary!r}")
        if self.primary == "bayes" and not self.bayes:
            raise FoveaError("primary method 'bayes' needs the Bayesian fit (bayes=True)")
        if self.primary == "ml" and self.n_boot < 100:
            raise FoveaError(
                f"ML intervals need at least 100 bootstrap replicates, got {self.n_boot}"
            )

    @property
    def sigmoid_obj(self) -> Sigmoid:
        return Sigmoid(name=self.sigmoid, axis=self.axis)


def cell_seed(master: int, *labels: str) -> int:
    """A reproducible seed for one fit cell, independent of the order cells are fitted in."""
    key = "\x00".join(labels).encode("utf-8")
    return int(np.random.SeedSequence([int(master), zlib.crc32(key)]).generate_state(1)[0])


def aggregate(levels: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Trials -> one row per distinct level: level, n (trials), k (correct)."""
    frame = pd.DataFrame(
        {"level": np.asarray(levels, dtype=float), "correct": np.asarray(correct, dtype=float)}
    )
    grouped = frame.groupby("level", sort=True)["correct"].agg(["size", "sum"]).reset_index()
    grouped.columns = ["level", "n", "k"]
    grouped["n"] = grouped["n"].astype(int)
    grouped["k"] = grouped["k"].astype(int)
    return grouped


def pool_for_display(
    table: pd.DataFrame, *, sigmoid: Sigmoid, max_points: int = 12
) -> pd.DataFrame:
    """Adaptive data are spread thinly over many levels: for plots, merge neighbouring levels
    (on the fitting axis) into at most ``max_points`` groups of similar trial counts.

    The fits use the unpooled levels (the likelihood is exact either way); pooling only makes
    the plotted proportions readable. Each pooled point sits at the trial-weighted mean level.
    """
    if len(table) <= max_points:
        return table[["level", "n", "k"]].copy()
    x = sigmoid.to_x(table["level"].to_numpy())
    order = np.argsort(x)
    n = table["n"].to_numpy()[order]
    k = table["k"].to_numpy()[order]
    xs = x[order]
    cum = np.cumsum(n)
    groups = np.minimum((cum - 1) * max_points // cum[-1], max_points - 1)
    rows = []
    for g in np.unique(groups):
        sel = groups == g
        nn = n[sel].sum()
        rows.append(
            {
                "level": float(sigmoid.to_level((xs[sel] * n[sel]).sum() / nn)),
                "n": int(nn),
                "k": int(k[sel].sum()),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class PsychometricFit:
    """The fit of one participant x condition (or a pooled observer group).

    Attributes:
        participant, condition, observer: labels.
        table: per-level data (level, n, k), all analysed trials.
        sigmoid: the model family.
        settings: fit settings.
        seed: this cell's bootstrap seed.
        ml: ML fit with bootstrap (None when not fitted).
        bayes: Bayesian fit (None when not computed or not fitted).
        flags: notes for the report (too few trials, unconstrained threshold, ...).
        threshold_bound: ``"lower"`` or ``"upper"`` when the maximum-likelihood threshold sits
            at that bound of the threshold fit (all correct from the lowest tested level on, or
            near chance up to the highest): the data only bound the threshold there, and the
            primary value is not an estimate (the ML one is the fitting range's end, a Bayesian
            one where the prior puts it); ``""`` otherwise.
        level_domain: the possible levels of the condition's level variable
            (``generator.levels.LEVEL_DOMAINS``), or None when unlimited; ``ci`` is cut to it.
        threshold_open: ``"lower"`` or ``"upper"`` when the threshold is not at a bound but
            lies beyond the tested levels on that side and its interval runs into the fit's bound
            there (``threshold_open``): the data do not limit it on that side either, so it is
            not an estimate; ``""`` otherwise.
    """

    participant: str
    condition: str
    observer: str
    table: pd.DataFrame
    sigmoid: Sigmoid
    settings: FitSettings
    seed: int
    ml: BootstrapResult | None = None
    bayes: BayesFit | None = None
    flags: list[str] = field(default_factory=list)
    threshold_bound: str = ""
    threshold_open: str = ""
    level_domain: LevelDomain | None = None

    @property
    def unbracketed(self) -> str:
        """The side (``"lower"``/``"upper"``) on which the tested levels do not bracket the
        threshold (``threshold_bound`` or ``threshold_open``): not an estimate; ``""`` if none."""
        return self.threshold_bound or self.threshold_open

    @property
    def n_trials(self) -> int:
        return int(self.table["n"].sum()) if len(self.table) else 0

    @property
    def fitted(self) -> bool:
        return self.ml is not None

    # -- primary estimate ----------------------------------------------------------------------
    def params_x(self) -> tuple[float, float, float]:
        """(threshold_x, width_x, lapse) of the primary estimate."""
        if self.settings.primary == "bayes" and self.bayes is not None:
            return self.bayes.threshold_x, self.bayes.width_x, self.bayes.lapse
        if self.ml is None:
            return (np.nan, np.nan, np.nan)
        f = self.ml.fit
        return float(f.threshold_x[0]), float(f.width_x[0]), float(f.lapse[0])

    def ml_ci_x(self) -> tuple[float, float]:
        if self.ml is None or self.ml.boot.threshold_x.size == 0:
            return (np.nan, np.nan)
        a = 1.0 - self.settings.ci_level
        lo, hi = np.quantile(self.ml.boot.threshold_x, [a / 2, 1 - a / 2])
        return float(lo), float(hi)

    def ci_x(self) -> tuple[float, float]:
        if self.settings.primary == "bayes" and self.bayes is not None:
            return self.bayes.ci_threshold_x
        return self.ml_ci_x()

    def threshold(self) -> float:
        return float(self.sigmoid.to_level(self.params_x()[0]))

    def bound_level(self) -> float:
        """The level the threshold is at most (``unbracketed`` lower) or at least (upper)
        about, level units: the maximum-likelihood threshold at the fit's bound
        (``threshold_bound``), or the lowest / highest tested level (``threshold_open``); NaN
        when the threshold is bracketed."""
        if not self.unbracketed or self.ml is None:
            return float("nan")
        if self.threshold_bound:
            return float(self.sigmoid.to_level(self.ml.fit.threshold_x[0]))
        x = self.sigmoid.to_x(self.table["level"].to_numpy())
        x = x[np.isfinite(x)]
        return float(self.sigmoid.to_level(x.min() if self.threshold_open == "lower" else x.max()))

    def bound_text(self, number=lambda value: f"{value:.3g}") -> str:
        """An unbracketed threshold as the report words it, e.g. ``at most about 0.302 (at the
        fit's lower bound, not an estimate)`` (``number`` formats ``bound_level``)."""
        side = self.unbracketed
        where = (
            f"at the fit's {side} bound"
            if self.threshold_bound
            else f"beyond the {'lowest' if side == 'lower' else 'highest'} tested level"
        )
        bound = "at most" if side == "lower" else "at least"
        return f"{bound} about {number(self.bound_level())} ({where}, not an estimate)"

    def ci(self) -> tuple[float, float]:
        """The primary interval in level units, cut to ``level_domain`` (no interval reaches
        levels without a layout; ``ci_cut`` says which end was cut)."""
        return self._in_domain(*self.ci_x())

    def _in_domain(self, lo_x: float, hi_x: float) -> tuple[float, float]:
        """An interval on the fit's axis in level units, cut to ``level_domain``."""
        lo, hi = float(self.sigmoid.to_level(lo_x)), float(self.sigmoid.to_level(hi_x))
        if self.level_domain is not None and np.isfinite(lo) and np.isfinite(hi):
            lo, hi, _ = self.level_domain.clip(lo, hi)
        return lo, hi

    def ci_cut(self) -> list[str]:
        """The ends (``"lower"``, ``"upper"``) of the primary interval that ran beyond the
        possible levels (``level_domain``) and were cut there."""
        lo_x, hi_x = self.ci_x()
        lo, hi = float(self.sigmoid.to_level(lo_x)), float(self.sigmoid.to_level(hi_x))
        if self.level_domain is None or not (np.isfinite(lo) and np.isfinite(hi)):
            return []
        return self.level_domain.clip(lo, hi)[2]

    def p_correct(self, levels) -> np.ndarray:
        t, w, lam = self.params_x()
        return self.sigmoid.p_correct(levels, t, w, lam)

    def ml_p_correct(self, level: float) -> float:
        """P(correct) at ``level`` under the maximum-likelihood fit (NaN when not fitted): the
        point estimate that goes with ``boot_p_correct``, whatever ``settings.primary``."""
        if self.ml is None:
            return float("nan")
        f = self.ml.fit
        return float(
            self.sigmoid.p_correct(
                level, float(f.threshold_x[0]), float(f.width_x[0]), float(f.lapse[0])
            )
        )

    def boot_p_correct(self, level: float) -> np.ndarray:
        """P(correct) at ``level`` under each bootstrap replicate (empty when none)."""
        if self.ml is None:
            return np.empty(0)
        b = self.ml.boot
        return self.sigmoid.p_correct(level, b.threshold_x, b.width_x, b.lapse)

    def row(self) -> dict:
        """The pinned thresholds.csv columns. ``threshold``, ``ci_low`` and ``ci_high`` are NaN
        (n/a) for a threshold the tested levels do not bracket (``unbracketed``): not an estimate;
        the fit's values stay in fits.csv (``ml_threshold``, ``bayes_threshold``, ``flags``)."""
        t, w, lam = self.params_x()
        lo, hi = self.ci()
        slope = float(self.sigmoid.slope_at_threshold(t, w, lam)) if self.fitted else np.nan
        estimate = self.fitted and not self.unbracketed
        return {
            "participant": self.participant,
            "condition": self.condition,
            "threshold": self.threshold() if estimate else np.nan,
            "ci_low": lo if estimate else np.nan,
            "ci_high": hi if estimate else np.nan,
            "slope": slope,
            "lapse": lam,
            "n_trials": self.n_trials,
        }

    def detail_row(self) -> dict:
        """Everything about the fit (fits.csv): both methods, goodness of fit, seed, flags."""
        out = self.row()
        out["observer"] = self.observer
        out["method"] = self.settings.primary
        out["sigmoid"] = self.settings.sigmoid
        out["axis"] = self.settings.axis
        out["n_levels"] = int(len(self.table))
        if self.ml is not None:
            f = self.ml.fit
            lo, hi = self._in_domain(*self.ml_ci_x())
            out.update(
                ml_threshold=float(self.sigmoid.to_level(f.threshold_x[0])),
                ml_ci_low=lo,
                ml_ci_high=hi,
                ml_width=float(f.width_x[0]),
                ml_lapse=float(f.lapse[0]),
                deviance=float(f.deviance[0]),
                gof_p=self.ml.gof_p,
                n_boot=int(self.ml.boot.threshold_x.size),
            )
        if self.bayes is not None:
            b = self.bayes
            b_lo, b_hi = self._in_domain(*b.ci_threshold_x)
            out.update(
                bayes_threshold=float(self.sigmoid.to_level(b.threshold_x)),
                bayes_ci_low=b_lo,
                bayes_ci_high=b_hi,
                bayes_threshold_mean=float(self.sigmoid.to_level(b.threshold_x_mean)),
                bayes_width=b.width_x,
                bayes_lapse=b.lapse,
                eta=b.eta,
            )
        out["seed"] = self.seed
        out["flags"] = "; ".join(self.flags)
        return out


def fit_cell(
    *,
    participant: str,
    condition: str,
    observer: str,
    levels: np.ndarray,
    correct: np.ndarray,
    settings: FitSettings,
    level_domain: LevelDomain | None = None,
) -> PsychometricFit:
    """Fit one participant x condition from its analysed trials.

    Args:
        participant, condition, observer: labels (the seed derives from the first two).
        levels: (N,) level of each analysed trial.
        correct: (N,) 1/0.
        settings: fit settings.
        level_domain: the possible levels (``generator.levels.LEVEL_DOMAINS``): the interval is
            cut to them, and flagged where it was.
    """
    sigmoid = settings.sigmoid_obj
    table = aggregate(levels, correct)
    seed = cell_seed(settings.seed, participant, condition)
    fit = PsychometricFit(
        participant=participant,
        condition=condition,
        observer=observer,
        table=table,
        sigmoid=sigmoid,
        settings=settings,
        seed=seed,
        level_domain=level_domain,
    )
    x_all = sigmoid.to_x(table["level"].to_numpy())
    usable = np.isfinite(x_all)
    if (~usable).any():
        fit.flags.append(
            f"{int(table['n'][~usable].sum())} trial(s) at level 0 carry no information on a log axis "
            "(P(correct) is the guess rate there) and are not part of the fit"
        )
    x = x_all[usable]
    n = table["n"].to_numpy()[usable]
    k = table["k"].to_numpy()[usable]
    if n.sum() < settings.min_trials:
        fit.flags.append(f"not fitted: {int(n.sum())} analysed trials (< {settings.min_trials})")
        return fit
    if np.unique(x).size < 2:
        fit.flags.append("not fitted: fewer than two distinct levels")
        return fit
    bounds = _within_domain(
        default_bounds(x_levels=x, lapse_max=settings.lapse_max), sigmoid, level_domain
    )
    rng = np.random.default_rng(seed)
    fit.ml = bootstrap_ml(
        x=x, k=k, n=n, sigmoid=sigmoid, bounds=bounds, n_boot=settings.n_boot, rng=rng
    )
    if settings.bayes:
        fit.bayes = fit_bayes(
            x=x,
            k=k,
            n=n,
            sigmoid=sigmoid,
            lapse_max=settings.lapse_max,
            ci_level=settings.ci_level,
            grid=settings.bayes_grid,
        )
    _flag(fit, bounds, x)
    return fit


def _within_domain(bounds: FitBounds, sigmoid: Sigmoid, domain: LevelDomain | None) -> FitBounds:
    """psignifit's threshold range (the tested levels extended by half their spread) cut to the
    possible levels: a threshold beyond them names no layout (radius_shrink 1.2), so the fit
    does not look there, and one that runs into that end is flagged at it."""
    if domain is None:
        return bounds
    lo, hi = bounds.threshold_x
    low_x, high_x = (float(sigmoid.to_x(v)) for v in (domain.low, domain.high))
    return dataclasses.replace(bounds, threshold_x=(max(lo, low_x), min(hi, high_x)))


def _flag(fit: PsychometricFit, bounds, x: np.ndarray) -> None:
    fit.threshold_bound = threshold_at_bound(fit, bounds)
    if fit.threshold_bound:
        side = fit.threshold_bound
        value = float(fit.sigmoid.to_level(bounds.threshold_x[side == "upper"]))
        fit.flags.append(
            f"no threshold estimate: the maximum-likelihood threshold sits at the fit's {side} bound "
            f"{value:.3g} "
            + (
                "(near ceiling at every tested level), so the threshold is at most about that"
                if side == "lower"
                else "(near chance at every tested level), so the threshold is at least about that"
            )
            + "; the tested levels did not bracket it"
            + (
                f" (the Bayesian estimate {fit.threshold():.3g} is where the prior puts it)"
                if fit.settings.primary == "bayes" and fit.bayes is not None
                else ""
            )
        )
    bound_flag = threshold_bound_flag(fit, bounds, x)
    if bound_flag:
        fit.flags.append(bound_flag)
    fit.threshold_open = "" if fit.threshold_bound else threshold_open(fit, bounds, x)
    t = fit.params_x()[0]
    if fit.threshold_open:
        fit.flags.append(
            f"no threshold estimate: the threshold {fit.threshold():.3g} lies beyond the "
            f"{'lowest' if fit.threshold_open == 'lower' else 'highest'} tested level "
            f"{fit.bound_level():.3g} and its interval runs into the fit's {fit.threshold_open} "
            f"bound, so the threshold is {'at most' if fit.threshold_open == 'lower' else 'at least'}"
            " about that level; the tested levels did not bracket it"
        )
    elif not fit.threshold_bound and not (x.min() <= t <= x.max()):
        fit.flags.append(EXTRAPOLATED)
    width_x = float(fit.ml.fit.width_x[0])
    if not fit.threshold_bound and width_x <= bounds.width_x[0] * (1 + 1e-6):
        fit.flags.append(
            "slope not estimated: the width is at its lower bound (the smallest gap between "
            "tested levels), so the slope is only a lower limit and the ML interval may be too "
            "narrow (simulated constant-stimuli data: 88 % coverage instead of 95 %); the "
            "Bayesian interval, or levels closer together near the threshold, say more"
        )
    lam = fit.params_x()[2]
    if lam >= fit.settings.lapse_max - 1e-6:
        fit.flags.append(f"lapse rate at its bound {fit.settings.lapse_max:g}")
    if np.isfinite(fit.ml.gof_p) and fit.ml.gof_p < 0.05:
        fit.flags.append(f"poor fit: deviance bootstrap {p_text(fit.ml.gof_p)}")
    for end in fit.ci_cut():
        d = fit.level_domain
        edge = d.high if end == "upper" else d.low
        fit.flags.append(
            f"interval cut at {edge:g}, the {end} end of the possible {d.variable} levels "
            f"({d.why}): the bootstrap interval ran beyond it, so the data do not rule out a "
            f"threshold at that end{' or none at any possible level' if end == 'upper' else ''}"
        )
    t_level = fit.threshold()
    if fit.level_domain is not None and not fit.level_domain.contains(t_level):
        fit.flags.append(
            f"threshold {t_level:.3g} is not among the possible {fit.level_domain.variable} "
            f"levels ({fit.level_domain.why}): not a level any stimulus can have"
        )
    if fit.bayes is not None and fit.bayes.eta > 0.2:
        fit.flags.append(
            f"overdispersed data (eta = {fit.bayes.eta:.2f}): intervals may be too narrow"
        )
    if not bool(fit.ml.fit.converged[0]):
        fit.flags.append("ML iteration did not converge")


def threshold_at_bound(fit: PsychometricFit, bounds) -> str:
    """``"lower"``/``"upper"`` when the maximum-likelihood threshold is at that bound of the
    threshold fit (``bounds.threshold_x``), else ``""``. The likelihood, not the primary
    estimate, says whether the data bracket the threshold: with all trials correct a Bayesian
    estimate lands inside the range, where the prior falls off, and would pass for a result."""
    assert fit.ml is not None
    lo_b, hi_b = bounds.threshold_x
    tol = 1e-6 * (hi_b - lo_b)
    t = float(fit.ml.fit.threshold_x[0])
    if t <= lo_b + tol:
        return "lower"
    if t >= hi_b - tol:
        return "upper"
    return ""


def _bound_shares(fit: PsychometricFit, bounds) -> dict[str, float]:
    """Side -> share of the bootstrap thresholds at that bound of the threshold fit."""
    assert fit.ml is not None
    boot_t = fit.ml.boot.threshold_x
    if not boot_t.size:
        return {"lower": 0.0, "upper": 0.0}
    lo_b, hi_b = bounds.threshold_x
    tol = 1e-6 * (hi_b - lo_b)
    return {
        "lower": float(np.mean(boot_t <= lo_b + tol)),
        "upper": float(np.mean(boot_t >= hi_b - tol)),
    }


def threshold_open(fit: PsychometricFit, bounds, x: np.ndarray) -> str:
    """``"lower"``/``"upper"`` when the primary threshold lies beyond the tested levels ``x``
    (fitting axis) on that side and more than the interval's tail share of the bootstrap
    thresholds sit at that side's bound, else ``""``.

    Such a threshold is not at the bound (the ML fit put a steep function somewhere between the
    last tested level and the bound: e.g. near chance at every tested level), but nothing in the
    data limits it on that side, so like one at the bound it is not an estimate.
    """
    t = fit.params_x()[0]
    side = "lower" if t < x.min() else "upper" if t > x.max() else ""
    if side and _bound_shares(fit, bounds)[side] > (1.0 - fit.settings.ci_level) / 2:
        return side
    return ""


def _bound_part(
    fit: PsychometricFit, column: str, level: float, side: str, share: float, at_edge: bool
) -> str:
    """One end of ``threshold_bound_flag``: the interval's ``side`` end ``column`` sits at the
    fit's bound ``level``; ``at_edge``: that bound is the end of the possible levels."""
    ends = f"({100 * share:.0f} % of bootstrap fits end there)"
    if not at_edge:
        higher = "higher" if side == "upper" else "lower"
        return f"{column} = {level:.3g} is the {side} bound of the fit {ends}, so the data allow a {higher} threshold"
    d = fit.level_domain
    none = " or none at any possible level" if side == "upper" else ""
    return (
        f"{column} = {level:.3g} is the {side} bound of the fit, the {side} end of the possible "
        f"{d.variable} levels ({d.why}) {ends}, so the data do not rule out a threshold "
        f"there{none}"
    )


def threshold_bound_flag(fit: PsychometricFit, bounds, x: np.ndarray) -> str:
    """The note for a threshold interval cut off by the threshold's fitting bound ("" if none).

    The ML threshold is fitted within ``bounds.threshold_x``: the tested levels' range extended
    by half its spread on the fitting axis (psignifit 4's range; ``default_bounds``), which is
    not the protocol's level range. When more than the interval's tail share (``(1 - ci_level)
    / 2``) of the bootstrap thresholds sit at a bound, the percentile interval's end *is* that
    bound: the data do not limit the threshold on that side. Only the threshold bound counts
    here; a lapse rate at its bound has its own flag.

    Args:
        fit: a fitted cell (``fit.ml`` set).
        bounds: the fit's ``FitBounds``.
        x: (L,) the tested levels on the fitting axis.
    """
    assert fit.ml is not None
    if not fit.ml.boot.threshold_x.size:
        return ""
    tail = (1.0 - fit.settings.ci_level) / 2
    lo_b, hi_b = bounds.threshold_x
    share = _bound_shares(fit, bounds)
    value = {"lower": lo_b, "upper": hi_b}
    prefix = "" if fit.settings.primary == "ml" else "ml_"
    column = {"lower": f"{prefix}ci_low", "upper": f"{prefix}ci_high"}
    sides = [side for side in ("lower", "upper") if share[side] > tail]
    if not sides:
        return ""
    to_level = fit.sigmoid.to_level
    d = fit.level_domain
    possible = {"lower": d.low, "upper": d.high} if d is not None else {}
    at_edge = {e: e in possible and float(to_level(value[e])) == possible[e] for e in value}
    parts = [
        _bound_part(fit, column[s], float(to_level(value[s])), s, share[s], at_edge[s])
        for s in sides
    ]
    tested = f"{float(to_level(np.min(x))):.3g} to {float(to_level(np.max(x))):.3g}"
    cut = ", cut to the possible levels" if any(at_edge.values()) else ""
    return (
        "threshold interval cut off by the fitting bound: "
        + "; ".join(parts)
        + f" (bounds: the tested levels {tested} extended by half their spread on the"
        f" {fit.settings.axis} axis{cut}, not the protocol's level range)"
    )
