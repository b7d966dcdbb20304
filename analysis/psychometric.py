"""Psychometric functions for 2AFC data, in psignifit 4's parametrisation.

A psychometric function ``psi(level) = guess + (1 - guess - lapse) * F(x)`` where ``F`` is a
sigmoid (the *unscaled* function) on the fitting axis ``x``: ``log(level)`` (axis ``log``, the
default: foveation strengths are ratio-scaled and the study's procedures space them
logarithmically) or the level itself (axis ``linear``). ``weibull`` is always on the log axis: a
Weibull in level is a Gumbel in log level, which is how psignifit handles it too. ``norm`` on the
log axis is the study's own observer and QUEST+ model (a cumulative normal on log10 level; the
log base only rescales the width). ``F`` is parametrised like psignifit: ``threshold`` is where ``F = 0.5``
(psignifit's ``thresh_PC = 0.5``; for a lapse-free 2AFC observer, the 75 %-correct point) and
``width`` is the distance on ``x`` from ``F = 0.05`` to ``F = 0.95`` (``width_alpha = 0.05``).

Internally every function is written as ``F = cdf(z)`` with ``z = (x - threshold) / scale + z50``,
``scale = width / c`` and ``z50`` the standard distribution's median, so the fitting code shares
one set of derivatives across families.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

SigmoidName = Literal["weibull", "logistic", "norm"]
SIGMOID_NAMES: tuple[str, ...] = ("weibull", "logistic", "norm")
AxisName = Literal["log", "linear"]
#: psignifit's default: width spans F = alpha .. 1 - alpha.
WIDTH_ALPHA = 0.05
#: 2AFC guess rate.
GUESS_2AFC = 0.5


@dataclass(frozen=True)
class Sigmoid:
    """One sigmoid family; all methods broadcast over numpy arrays.

    Attributes:
        name: ``weibull`` (Gumbel on log level), ``logistic`` or ``norm`` (cumulative normal).
        axis: ``log`` (fit on the natural log of the level) or ``linear``.
    """

    name: SigmoidName
    axis: AxisName = "log"

    def __post_init__(self) -> None:
        from generator.errors import FoveaError

        if self.name not in SIGMOID_NAMES:
            raise FoveaError(
                f"sigmoid must be one of {', '.join(SIGMOID_NAMES)}, got {self.name!r}"
            )
        if self.axis not in ("log", "linear"):
            raise FoveaError(f"level axis must be 'log' or 'linear', got {self.axis!r}")
        if self.name == "weibull" and self.axis != "log":
            raise FoveaError(
                "the weibull sigmoid is defined on log levels; use axis 'log' (or sigmoid "
                "logistic/norm for a linear axis)"
            )

    # -- axis ---------------------------------------------------------------------------------
    @property
    def log_axis(self) -> bool:
        """True when the fitting axis is log(level)."""
        return self.axis == "log"

    def to_x(self, level):
        """Level -> fitting axis (natural log on the log axis, where level <= 0 maps to -inf)."""
        level = np.asarray(level, dtype=float)
        if not self.log_axis:
            return level
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(level > 0, np.log(np.where(level > 0, level, 1.0)), -np.inf)

    def to_level(self, x):
        """Fitting axis -> level."""
        x = np.asarray(x, dtype=float)
        return np.exp(x) if self.log_axis else x

    # -- standard distribution ------------------------------------------------------------------
    def cdf(self, z):
        if self.name == "logistic":
            return special.expit(z)
        if self.name == "norm":
            return special.ndtr(z)
        return -np.expm1(-np.exp(z))  # Gumbel (minimum): 1 - exp(-exp(z))

    def sf(self, z):
        """1 - cdf(z), computed without cancellation (matters for P(correct) near 1)."""
        if self.name == "logistic":
            return special.expit(-z)
        if self.name == "norm":
            return special.ndtr(-z)
        return np.exp(-np.exp(z))

    def pdf(self, z):
        if self.name == "logistic":
            e = special.expit(z)
            return e * (1.0 - e)
        if self.name == "norm":
            return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)
        with np.errstate(over="ignore"):
            return np.exp(z - np.exp(z))

    def pdf_derivative(self, z):
        """d pdf / dz (for Newton steps of the fits)."""
        if self.name == "logistic":
            e = special.expit(z)
            return e * (1.0 - e) * (1.0 - 2.0 * e)
        if self.name == "norm":
            return -z * self.pdf(z)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.nan_to_num(self.pdf(z) * (1.0 - np.exp(z)))

    def ppf(self, p):
        if self.name == "logistic":
            return special.logit(p)
        if self.name == "norm":
            return special.ndtri(p)
        return np.log(-np.log1p(-np.asarray(p, dtype=float)))

    @property
    def z50(self) -> float:
        """Median of the standard distribution (0 for symmetric families)."""
        return float(self.ppf(0.5))

    @property
    def width_factor(self) -> float:
        """``c`` in ``scale = width / c``: the standard distribution's 5-95 % span."""
        return float(self.ppf(1.0 - WIDTH_ALPHA) - self.ppf(WIDTH_ALPHA))

    # -- psychometric function ---------------------------------------------------------------
    def z(self, x, threshold_x, width_x):
        """Standardised abscissa; ``-inf`` where ``x`` is ``-inf`` (level 0 on a log axis)."""
        x = np.asarray(x, dtype=float)
        scale = np.asarray(width_x, dtype=float) / self.width_factor
        with np.errstate(invalid="ignore"):
            out = (x - threshold_x) / scale + self.z50
        return np.where(np.isneginf(x), -np.inf, out)

    def unscaled(self, x, threshold_x, width_x):
        """F(x): the sigmoid without guess and lapse rates."""
        return self.cdf(self.z(x, threshold_x, width_x))

    def p_correct(self, level, threshold_x, width_x, lapse, guess: float = GUESS_2AFC):
        """P(correct) at ``level`` (level units) for parameters on the fitting axis."""
        zz = self.z(self.to_x(level), threshold_x, width_x)
        return guess + (1.0 - guess - lapse) * self.cdf(zz)

    def threshold_level(self, threshold_x):
        """Threshold on the fitting axis -> level units."""
        return self.to_level(threshold_x)

    def slope_at_threshold(self, threshold_x, width_x, lapse, guess: float = GUESS_2AFC):
        """dP(correct)/d(level) at the threshold, per level unit (psignifit's scaled slope,
        converted from the fitting axis to level units on the log axis)."""
        scale = np.asarray(width_x, dtype=float) / self.width_factor
        dp_dx = (1.0 - guess - lapse) * self.pdf(self.z50) / scale
        if self.log_axis:
            return dp_dx / np.exp(threshold_x)
        return dp_dx

    def level_at_p(self, p_correct, threshold_x, width_x, lapse, guess: float = GUESS_2AFC):
        """Inverse: the level where P(correct) = ``p_correct`` (NaN where unreachable)."""
        p = np.asarray(p_correct, dtype=float)
        f = (p - guess) / (1.0 - guess - np.asarray(lapse, dtype=float))
        with np.errstate(invalid="ignore"):
            f = np.where((f > 0) & (f < 1), f, np.nan)
            scale = np.asarray(width_x, dtype=float) / self.width_factor
            x = threshold_x + (self.ppf(f) - self.z50) * scale
        return self.to_level(x)


def weibull_params_to_fitting(*, alpha: float, beta: float) -> tuple[float, float]:
    """Classic Weibull ``F = 1 - exp(-(level / alpha) ** beta)`` -> (threshold_x, width_x).

    Args:
        alpha: Weibull scale in level units (F(alpha) = 1 - 1/e).
        beta: Weibull shape (steepness).

    Returns:
        ``(threshold_x, width_x)`` on the log-level axis.
    """
    sig = Sigmoid(name="weibull", axis="log")
    scale = 1.0 / beta
    threshold_x = math.log(alpha) + sig.z50 * scale
    return threshold_x, scale * sig.width_factor
