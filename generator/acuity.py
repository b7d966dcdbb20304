"""Acuity models: the highest spatial frequency the eye resolves at a given eccentricity.

Linear minimum angle of resolution (Guenter et al. 2012): ``MAR(e) = mar0 + slope * e`` arcmin,
highest visible frequency ``30 / MAR`` cycles/deg (one cycle spans two MARs of 1/60 deg each).
Geisler & Perry (1998): ``f_c(e) = e2 * ln(1 / CT0) / (alpha * (e + e2))`` cycles/deg.

The foveation *strength* ``s`` scales eccentricity: ``cutoff_s(e) = cutoff(s * max(e - pad, 0))``.
``s = 1`` is nominal acuity, ``s < 1`` conservative (resolution falls more slowly), ``s > 1``
aggressive; ``pad`` (degrees) widens the full-acuity fovea to absorb eye-tracker error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from generator.errors import FoveaError

AcuityKind = Literal["linear", "geisler_perry"]


@dataclass(frozen=True)
class AcuityModel:
    """Cutoff frequency as a function of eccentricity, with its inverse."""

    kind: AcuityKind = "linear"
    mar0_arcmin: float = 1.0
    mar_slope_arcmin_per_deg: float = 1.5
    gp_ct0: float = 1.0 / 64.0
    gp_alpha: float = 0.106
    gp_e2_deg: float = 2.3

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "geisler_perry"):
            raise FoveaError(f"acuity model must be 'linear' or 'geisler_perry', got {self.kind!r}")
        for name in ("mar0_arcmin", "mar_slope_arcmin_per_deg", "gp_alpha", "gp_e2_deg"):
            if not getattr(self, name) > 0:
                raise FoveaError(f"acuity {name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.gp_ct0 < 1:
            raise FoveaError(f"acuity gp_ct0 must lie in (0, 1), got {self.gp_ct0!r}")

    def _cutoff_at(self, e_deg):
        if self.kind == "linear":
            return 30.0 / (self.mar0_arcmin + self.mar_slope_arcmin_per_deg * e_deg)
        k = self.gp_e2_deg * math.log(1.0 / self.gp_ct0) / self.gp_alpha
        return k / (e_deg + self.gp_e2_deg)

    def cutoff_cpd(self, ecc_deg, *, strength: float = 1.0, padding_deg: float = 0.0):
        """Highest visible frequency (cycles/deg) at eccentricity ``ecc_deg`` (array or scalar)."""
        e = np.maximum(np.asarray(ecc_deg, dtype=float) - padding_deg, 0.0) * strength
        return self._cutoff_at(e)

    def eccentricity_for_cutoff(
        self, cutoff_cpd: float, *, strength: float = 1.0, padding_deg: float = 0.0
    ) -> float:
        """Smallest eccentricity (deg) beyond which nothing above ``cutoff_cpd`` is visible.

        Returns ``inf`` when the strength is 0 (no foveation) and 0 when even the fovea cannot
        see ``cutoff_cpd``.
        """
        if cutoff_cpd >= self._cutoff_at(0.0):
            return 0.0
        if strength <= 0:
            return math.inf
        if self.kind == "linear":
            e = (30.0 / cutoff_cpd - self.mar0_arcmin) / self.mar_slope_arcmin_per_deg
        else:
            e = self.gp_e2_deg * math.log(1.0 / self.gp_ct0) / (self.gp_alpha * cutoff_cpd)
            e -= self.gp_e2_deg
        return e / strength + padding_deg
