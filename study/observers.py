"""Simulated participants that answer 2AFC trials.

- ``ParametricObserver``: P(correct) is a known psychometric function of the level (psignifit's
  parametrisation), so the analysis can be checked against the truth.
- ``PerceptualObserver``: P(correct) follows from FovVideoVDP's prediction for the two images
  actually shown, at the measured fixation, on the protocol's display. FovVideoVDP's JOD scale is
  built so that 1 JOD is 75 % of observers choosing one image in a 2AFC; with the difference read
  as a Thurstone case-V distance, ``P(correct) = Phi(z75 * dJOD)`` with ``z75 = Phi^-1(0.75)``.

Both draw the answer and a response time from the per-trial generator they are given, so a trial
gives the same answer whenever it runs (also after ``--resume``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from protocol.schema import DisplaySettings, SimulationSettings

Z75 = float(norm.ppf(0.75))
_C_WIDTH = 2.0 * float(norm.ppf(0.95))  # psignifit: width spans S = 0.05 .. 0.95


@dataclass(frozen=True)
class ObserverTrial:
    """What a simulated observer sees of one trial.

    Attributes:
        condition: condition name.
        level: the trial's level.
        interval_foveated: 1 or 2 (the correct answer).
        foveated: (H, W, 3) uint8 foveated image.
        twin: (H, W, 3) uint8 full-resolution image.
        gaze_px: mean gaze during the intervals, image pixels (x right, y down), or None.
    """

    condition: str
    level: float
    interval_foveated: int
    foveated: np.ndarray | None
    twin: np.ndarray | None
    gaze_px: tuple[float, float] | None


@dataclass(frozen=True)
class ObserverResponse:
    """A simulated answer: chosen interval, response time, and the model's P(correct)."""

    response: int
    rt_s: float
    p_correct: float
    jod_difference: float | None = None


def _answer(
    *, p_correct: float, trial: ObserverTrial, rng: np.random.Generator, rt_median_s: float
) -> tuple[int, float]:
    correct = bool(rng.random() < p_correct)
    response = trial.interval_foveated if correct else 3 - trial.interval_foveated
    rt_s = float(rt_median_s * math.exp(0.3 * rng.standard_normal()))
    return response, rt_s


class ParametricObserver:
    """``P = 0.5 + (0.5 - lapse) * S(level)``, S a cumulative normal (see ``SimulationSettings``).

    Args:
        settings: the protocol's ``[simulation]`` table.
    """

    name = "parametric"

    def __init__(self, *, settings: SimulationSettings) -> None:
        self._s = settings

    def threshold(self, condition: str) -> float:
        """True threshold (S = 0.5), level units."""
        return self._s.thresholds.get(condition, self._s.threshold)

    def p_correct(self, *, condition: str, level: float) -> float:
        s = self._s
        m = self.threshold(condition)
        x, mx = (math.log10(level), math.log10(m)) if s.log_scale else (level, m)
        sig = float(norm.cdf(_C_WIDTH * (x - mx) / s.width))
        return 0.5 + (0.5 - s.lapse) * sig

    def respond(self, *, trial: ObserverTrial, rng: np.random.Generator) -> ObserverResponse:
        p = self.p_correct(condition=trial.condition, level=trial.level)
        response, rt_s = _answer(p_correct=p, trial=trial, rng=rng, rt_median_s=self._s.rt_median_s)
        return ObserverResponse(response=response, rt_s=rt_s, p_correct=p)


class PerceptualObserver:
    """FovVideoVDP (``pyfvvdp``, foveated) on the shown images at the measured fixation.

    Args:
        display: the protocol's display (resolution, size, distance set the pixels per degree).
        settings: the protocol's ``[simulation]`` table (lapse, response times).
        device: torch device for the metric.
    """

    name = "perceptual"

    def __init__(
        self, *, display: DisplaySettings, settings: SimulationSettings, device: str = "cpu"
    ) -> None:
        from generator.evaluation.quality_metrics import JodMetric

        self._metric = JodMetric(display.geometry(), device=device)
        self._s = settings
        self.pixels_per_degree = self._metric.pixels_per_degree

    def jod_difference(
        self, *, foveated: np.ndarray, twin: np.ndarray, gaze_px: tuple[float, float] | None
    ) -> float:
        """10 - JOD(foveated vs twin) at the fixation (image px; None = image centre)."""
        h, w = twin.shape[:2]
        gx, gy = (w / 2, h / 2) if gaze_px is None else gaze_px
        return max(0.0, 10.0 - self._metric.jod(foveated, twin, (gx, gy)))

    def p_correct_from_jod(self, jod_difference: float) -> float:
        return (1.0 - self._s.perceptual_lapse) * float(
            norm.cdf(Z75 * jod_difference)
        ) + 0.5 * self._s.perceptual_lapse

    def respond(self, *, trial: ObserverTrial, rng: np.random.Generator) -> ObserverResponse:
        if trial.foveated is None or trial.twin is None:
            raise ValueError("the perceptual observer needs both images")
        d_jod = self.jod_difference(foveated=trial.foveated, twin=trial.twin, gaze_px=trial.gaze_px)
        p = self.p_correct_from_jod(d_jod)
        response, rt_s = _answer(p_correct=p, trial=trial, rng=rng, rt_median_s=self._s.rt_median_s)
        return ObserverResponse(response=response, rt_s=rt_s, p_correct=p, jod_difference=d_jod)


def make_observer(kind: str, *, display: DisplaySettings, settings: SimulationSettings):
    """``parametric`` or ``perceptual``."""
    if kind == "parametric":
        return ParametricObserver(settings=settings)
    if kind == "perceptual":
        return PerceptualObserver(display=display, settings=settings)
    raise ValueError(f"unknown observer {kind!r}")
