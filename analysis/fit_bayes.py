"""Bayesian psychometric fits with beta-binomial overdispersion: psignifit 4's model.

Schütt, Harmeling, Macke & Wichmann (2016), "Painfree and accurate Bayesian estimation of
psychometric functions for (potentially) overdispersed data", Vision Research 122. The model and
its default priors are re-implemented here (psignifit itself is only a test dependency, used to
cross-check): the number correct at each level is beta-binomial around the psychometric function,
with overdispersion ``eta`` (0 = binomial); the posterior over (threshold, width, lapse, eta) is
evaluated on a grid that is first laid out coarsely over the prior's support, then tightened to
where the posterior mass lies; estimates are the MAP (refined by Nelder-Mead, as psignifit does)
and the posterior mean; intervals are percentiles of the marginal posterior.

Priors (psignifit's defaults, with the stimulus range = tested range on the fitting axis):
threshold uniform over the range with cosine fall-off over half the range on each side; width
uniform from twice the smallest level gap to the range, cosine fall-offs to the gap and to three
times the range; lapse Beta(1, 10) on [0, lapse_max]; eta Beta(1, 10) on [0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

from analysis.psychometric import GUESS_2AFC, WIDTH_ALPHA, Sigmoid

_ETA_MAX = 1.0 - 1e-10


@dataclass(frozen=True, kw_only=True)
class BayesGrid:
    """Grid sizes: the coarse pass (whole prior support) and the fine pass (where the mass is).

    psignifit's nAFC defaults are threshold 30/40, width 40/40, lapse 10/20, eta 20/20; the grids
    are smaller here (the lapse range is [0, 0.1], not [0, 0.5]) to keep the whole report fast,
    which changes thresholds by far less than their intervals (checked against psignifit in
    tests/analysis/test_psignifit_agreement.py).
    """

    coarse: dict[str, int] = field(
        default_factory=lambda: {"threshold": 30, "width": 30, "lapse": 6, "eta": 10}
    )
    fine: dict[str, int] = field(
        default_factory=lambda: {"threshold": 40, "width": 30, "lapse": 8, "eta": 10}
    )
    max_bound_value: float = 1e-5
    beta_prior: float = 10.0


@dataclass(frozen=True)
class BayesFit:
    """Posterior summary on the fitting axis.

    Attributes:
        threshold_x, width_x, lapse, eta: MAP estimates.
        threshold_x_mean: posterior mean of the threshold.
        ci_threshold_x: (low, high) percentile interval of the threshold's marginal.
        ci_width_x, ci_lapse, ci_eta: the same for the other parameters.
        ci_level: the interval's probability.
        threshold_grid, threshold_marginal: the threshold's marginal posterior density.
    """

    threshold_x: float
    width_x: float
    lapse: float
    eta: float
    threshold_x_mean: float
    ci_threshold_x: tuple[float, float]
    ci_width_x: tuple[float, float]
    ci_lapse: tuple[float, float]
    ci_eta: tuple[float, float]
    ci_level: float
    threshold_grid: np.ndarray
    threshold_marginal: np.ndarray


class _Posterior:
    """Log posterior of psignifit's model for one data set."""

    def __init__(
        self, *, x, k, n, sigmoid: Sigmoid, lapse_max: float, guess: float, beta_prior: float
    ):
        self.x = np.asarray(x, dtype=float)
        self.k = np.asarray(k, dtype=float)
        self.n = np.asarray(n, dtype=float)
        self.sig = sigmoid
        self.guess = guess
        xs = np.unique(self.x)
        self.lo, self.hi = float(xs[0]), float(xs[-1])
        self.spread = self.hi - self.lo
        self.width_min = float(np.diff(xs).min())
        self.beta_prior = beta_prior
        norminv = stats.norm.ppf
        # psignifit rescales widths for alpha != 0.05; 1 for the default alpha.
        self._width_rescale = (norminv(0.95) - norminv(0.05)) / (
            norminv(1 - WIDTH_ALPHA) - norminv(WIDTH_ALPHA)
        )
        self.bounds = {
            "threshold": (self.lo - self.spread / 2, self.hi + self.spread / 2),
            "width": (self.width_min, 3 * self.spread / self._width_rescale),
            "lapse": (0.0, float(lapse_max)),
            "eta": (0.0, _ETA_MAX),
        }
        self.lapse_max = float(lapse_max)

    # -- priors (psignifit's defaults) ---------------------------------------------------------
    def log_prior_threshold(self, t):
        t = np.asarray(t, dtype=float)
        s0, s1, sp = self.lo, self.hi, self.spread
        p = np.zeros_like(t)
        p[(s0 < t) & (t < s1)] = 1.0
        left = ((s0 - sp / 2) <= t) & (t <= s0)
        p[left] = (1 + np.cos(2 * np.pi * (s0 - t[left]) / sp)) / 2
        right = (s1 <= t) & (t <= (s1 + sp / 2))
        p[right] = (1 + np.cos(2 * np.pi * (t[right] - s1) / sp)) / 2
        with np.errstate(divide="ignore"):
            return np.log(p)

    def log_prior_width(self, w):
        y = np.asarray(w, dtype=float) * self._width_rescale
        wmin, wmax = self.width_min, self.spread
        p = np.zeros_like(y)
        p[((2 * wmin) < y) & (y < wmax)] = 1.0
        left = (wmin <= y) & (y <= (2 * wmin))
        p[left] = (1 - np.cos(np.pi * (y[left] - wmin) / wmin)) / 2
        right = (wmax <= y) & (y <= (3 * wmax))
        p[right] = (1 + np.cos(np.pi / 2 * (y[right] - wmax) / wmax)) / 2
        with np.errstate(divide="ignore"):
            return np.log(p)

    def log_prior_lapse(self, lam):
        lam = np.asarray(lam, dtype=float)
        inside = (lam >= 0) & (lam <= self.lapse_max)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(inside, _log_beta1(lam, 10.0), -np.inf)

    def log_prior_eta(self, eta):
        eta = np.asarray(eta, dtype=float)
        inside = (eta >= 0) & (eta <= _ETA_MAX)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(inside, _log_beta1(eta, self.beta_prior), -np.inf)

    # -- likelihood -----------------------------------------------------------------------------
    def log_posterior(self, eta, lam, t, w) -> np.ndarray:
        """Log posterior on the outer product of the four 1-D arrays -> (E, Lam, T, W)."""
        eta, lam, t, w = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (eta, lam, t, w))
        lam4 = lam[:, None, None, None]
        z = self.sig.z(self.x[None, None, None, :], t[None, :, None, None], w[None, None, :, None])
        cdf = self.sig.cdf(z)
        psi = self.guess + (1 - self.guess - lam4) * cdf  # (Lam, T, W, L)
        q = (1 - self.guess) * self.sig.sf(z) + lam4 * cdf
        psi = np.clip(psi, 1e-300, 1.0)
        q = np.clip(q, 1e-300, 1.0)
        k, n = self.k, self.n
        binom = (k * np.log(psi) + (n - k) * np.log(q)).sum(axis=-1)  # (Lam, T, W)
        out = np.empty((eta.size,) + binom.shape)
        for i, e in enumerate(eta):
            var = e * e
            if var <= 1e-9:
                out[i] = binom
                continue
            # Beta-binomial with mean psi and variance inflation eta^2 (psignifit eq. A.4).
            nu = 1.0 / var - 1.0
            a = np.maximum(psi * nu, 1e-300)
            b = np.maximum(q * nu, 1e-300)
            # Levels with k = 0 or k = n contribute exactly 0 through the a or b pair; skipping
            # them avoids inf - inf where a or b underflows (as psignifit does).
            ll = np.where(k > 0, special.gammaln(k + a) - special.gammaln(a), 0.0)
            ll = ll + np.where(n - k > 0, special.gammaln(n - k + b) - special.gammaln(b), 0.0)
            ll = ll.sum(axis=-1)
            ll += (special.gammaln(nu) - special.gammaln(n + nu)).sum()
            out[i] = ll
        out += self.log_prior_eta(eta)[:, None, None, None]
        out += self.log_prior_lapse(lam)[None, :, None, None]
        out += self.log_prior_threshold(t)[None, None, :, None]
        out += self.log_prior_width(w)[None, None, None, :]
        return out

    def log_posterior_point(self, eta: float, lam: float, t: float, w: float) -> float:
        """Log posterior at one parameter vector (the optimiser's objective: scalar fast path)."""
        if not (0.0 <= lam <= self.lapse_max and 0.0 <= eta <= _ETA_MAX and w > 0):
            return -math.inf
        lp_t = self._scalar_prior_threshold(t)
        lp_w = self._scalar_prior_width(w)
        if lp_t == -math.inf or lp_w == -math.inf:
            return -math.inf
        z = self.sig.z(self.x, t, w)
        cdf = self.sig.cdf(z)
        psi = np.clip(self.guess + (1 - self.guess - lam) * cdf, 1e-300, 1.0)
        q = np.clip((1 - self.guess) * self.sig.sf(z) + lam * cdf, 1e-300, 1.0)
        k, n = self.k, self.n
        var = eta * eta
        if var <= 1e-9:
            ll = float((k * np.log(psi) + (n - k) * np.log(q)).sum())
        else:
            nu = 1.0 / var - 1.0
            a = np.maximum(psi * nu, 1e-300)
            b = np.maximum(q * nu, 1e-300)
            terms = np.where(k > 0, special.gammaln(k + a) - special.gammaln(a), 0.0)
            terms = terms + np.where(
                n - k > 0, special.gammaln(n - k + b) - special.gammaln(b), 0.0
            )
            ll = float(terms.sum() + (special.gammaln(nu) - special.gammaln(n + nu)).sum())
        b_eta = self.beta_prior
        lp = ll + lp_t + lp_w
        lp += math.log(10.0) + 9.0 * math.log1p(-lam)
        lp += math.log(b_eta) + (b_eta - 1.0) * math.log1p(-eta)
        return lp

    def _scalar_prior_threshold(self, t: float) -> float:
        s0, s1, sp = self.lo, self.hi, self.spread
        if s0 < t < s1:
            p = 1.0
        elif s0 - sp / 2 <= t <= s0:
            p = (1 + math.cos(2 * math.pi * (s0 - t) / sp)) / 2
        elif s1 <= t <= s1 + sp / 2:
            p = (1 + math.cos(2 * math.pi * (t - s1) / sp)) / 2
        else:
            p = 0.0
        return math.log(p) if p > 0 else -math.inf

    def _scalar_prior_width(self, w: float) -> float:
        y = w * self._width_rescale
        wmin, wmax = self.width_min, self.spread
        if 2 * wmin < y < wmax:
            p = 1.0
        elif wmin <= y <= 2 * wmin:
            p = (1 - math.cos(math.pi * (y - wmin) / wmin)) / 2
        elif wmax <= y <= 3 * wmax:
            p = (1 + math.cos(math.pi / 2 * (y - wmax) / wmax)) / 2
        else:
            p = 0.0
        return math.log(p) if p > 0 else -math.inf


def _log_beta1(v, b: float):
    """log pdf of Beta(1, b) (closed form; scipy.stats is slow for scalar calls)."""
    return np.log(b) + (b - 1.0) * np.log1p(-np.clip(v, 0.0, 1.0))


def _grid(bounds: dict[str, tuple[float, float]], steps: dict[str, int]) -> dict[str, np.ndarray]:
    out = {}
    for name in ("eta", "lapse", "threshold", "width"):
        lo, hi = bounds[name]
        out[name] = np.array([lo]) if np.isclose(lo, hi) else np.linspace(lo, hi, steps[name])
    return out


def _mass(log_post: np.ndarray, grid: dict[str, np.ndarray]) -> np.ndarray:
    """Normalised posterior mass per grid cell (trapezoid weights, as psignifit)."""
    p = np.exp(log_post - np.max(log_post))
    weights = 1.0
    for axis, name in enumerate(("eta", "lapse", "threshold", "width")):
        values = grid[name]
        if values.size <= 1:
            d = np.ones(1)
        else:
            d = np.empty_like(values)
            d[1:] = np.diff(values)
            d[0] = d[1] / 2
            d[-1] = d[-1] / 2
        shape = [1, 1, 1, 1]
        shape[axis] = values.size
        weights = weights * d.reshape(shape)
    vol = p * weights
    return vol / vol.sum()


def fit_bayes(
    *,
    x: np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    sigmoid: Sigmoid,
    lapse_max: float = 0.1,
    ci_level: float = 0.95,
    guess: float = GUESS_2AFC,
    grid: BayesGrid | None = None,
) -> BayesFit:
    """psignifit 4's Bayesian fit of one data set.

    Args:
        x: (L,) finite levels on the fitting axis (at least two distinct).
        k: (L,) correct counts; n: (L,) trial counts.
        sigmoid: the sigmoid family.
        lapse_max: upper end of the lapse prior's support.
        ci_level: probability of the percentile intervals.
        guess: guess rate (0.5 for 2AFC).
        grid: grid sizes.

    Returns:
        MAP and mean estimates with marginal percentile intervals.
    """
    grid = grid or BayesGrid()
    post = _Posterior(
        x=x, k=k, n=n, sigmoid=sigmoid, lapse_max=lapse_max, guess=guess, beta_prior=grid.beta_prior
    )
    coarse = _grid(post.bounds, grid.coarse)
    mass = _mass(post.log_posterior(*(coarse[nm] for nm in _NAMES)), coarse)
    fine = _grid(_tight_bounds(mass, coarse, grid.max_bound_value), grid.fine)
    log_post = post.log_posterior(*(fine[nm] for nm in _NAMES))
    mass = _mass(log_post, fine)

    marginals = {}
    for axis, name in enumerate(_NAMES):
        other = tuple(a for a in range(4) if a != axis)
        marginals[name] = mass.sum(axis=other)
    mean = {name: float((marginals[name] * fine[name]).sum()) for name in _NAMES}
    alpha = 1.0 - ci_level

    def interval(name: str) -> tuple[float, float]:
        values = fine[name]
        if values.size == 1:
            return float(values[0]), float(values[0])
        lo, hi = np.interp([alpha / 2, 1 - alpha / 2], np.cumsum(marginals[name]), values)
        return float(lo), float(hi)

    eta_map, lapse_map, t_map, w_map = _map_estimate(post, fine, log_post)
    t_values = fine["threshold"]
    if t_values.size > 1:
        density = marginals["threshold"] / np.trapezoid(marginals["threshold"], t_values)
    else:
        density = np.ones(1)
    return BayesFit(
        threshold_x=t_map,
        width_x=w_map,
        lapse=lapse_map,
        eta=eta_map,
        threshold_x_mean=mean["threshold"],
        ci_threshold_x=interval("threshold"),
        ci_width_x=interval("width"),
        ci_lapse=interval("lapse"),
        ci_eta=interval("eta"),
        ci_level=ci_level,
        threshold_grid=t_values,
        threshold_marginal=density,
    )


#: The posterior's axes, in the grid's order.
_NAMES = ("eta", "lapse", "threshold", "width")


def _tight_bounds(mass: np.ndarray, coarse: dict, max_bound_value: float) -> dict:
    """Each axis tightened to the cells holding mass >= ``max_bound_value``, one cell wider each
    side: name -> (low, high)."""
    idx = np.nonzero(mass >= max_bound_value)
    tight = {}
    for axis, name in enumerate(_NAMES):
        values = coarse[name]
        lo, hi = 0, values.size - 1
        if idx[axis].size:
            lo = max(lo, int(idx[axis].min()) - 1)
            hi = min(hi, int(idx[axis].max()) + 1)
        tight[name] = (float(values[lo]), float(values[hi]))
    return tight


def _map_estimate(post: _Posterior, fine: dict, log_post: np.ndarray) -> tuple[float, ...]:
    """(eta, lapse, threshold, width) at the posterior's mode.

    Starts at the best grid point and polishes on the continuous posterior. psignifit uses
    Nelder-Mead; the mode usually sits on the eta = 0 / lapse = 0 boundary, where a simplex
    crawls (thousands of evaluations), so a bounded quasi-Newton search is used instead. Bounds
    stay a hair inside the priors' support, where the log prior is finite.
    """
    best = np.unravel_index(np.argmax(log_post), log_post.shape)
    start = np.array([fine[nm][i] for nm, i in zip(_NAMES, best, strict=True)])
    free = [i for i, nm in enumerate(_NAMES) if fine[nm].size > 1]
    eps = 1e-7
    support = {
        "eta": (0.0, _ETA_MAX - eps),
        "lapse": (0.0, post.lapse_max),
        "threshold": (
            post.bounds["threshold"][0] + eps * post.spread,
            post.bounds["threshold"][1] - eps * post.spread,
        ),
        "width": (post.width_min * (1 + eps), post.bounds["width"][1] * (1 - eps)),
    }
    box = [support[_NAMES[i]] for i in free]
    x0 = np.clip(start[free], [b[0] for b in box], [b[1] for b in box])

    def objective(v):
        params = start.copy()
        params[free] = v
        value = post.log_posterior_point(*(float(p) for p in params))
        return -value if math.isfinite(value) else 1e300

    map_params = start.copy()
    res = optimize.minimize(
        objective,
        x0,
        method="L-BFGS-B",
        bounds=box,
        options={"maxiter": 200, "ftol": 1e-11, "gtol": 1e-7},
    )
    if np.isfinite(res.fun) and res.fun <= objective(start[free]):
        map_params[free] = res.x
    return tuple(float(v) for v in map_params)
