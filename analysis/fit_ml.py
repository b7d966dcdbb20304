"""Maximum-likelihood fits of 2AFC psychometric functions, many data sets at once.

The parametric bootstrap needs thousands of fits per participant and condition; instead of
looping an optimiser, every data set in a batch is fitted together: a coarse grid picks each
one's starting point (one matrix product), then a vectorised Levenberg-Marquardt Fisher-scoring
iteration with box constraints (active-set projection) polishes them all at once.

Free parameters, per data set: ``threshold_x`` (fitting axis), ``log_scale`` (log of the
standard-distribution scale, so the width stays positive) and ``lapse`` in ``[0, lapse_max]``.
The guess rate is fixed (0.5 for 2AFC). The parametric bootstrap around these fits is
:mod:`analysis.fit_bootstrap`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.psychometric import GUESS_2AFC, Sigmoid

_P_FLOOR = 1e-12


@dataclass(frozen=True, kw_only=True)
class FitBounds:
    """Box constraints on the fitting axis.

    Attributes:
        threshold_x: (low, high) threshold on the fitting axis.
        width_x: (low, high) width (5-95 % span) on the fitting axis.
        lapse: (low, high) lapse rate.
    """

    threshold_x: tuple[float, float]
    width_x: tuple[float, float]
    lapse: tuple[float, float]


def default_bounds(*, x_levels: np.ndarray, lapse_max: float) -> FitBounds:
    """psignifit 4's parameter ranges for the tested levels.

    Threshold: the tested range extended by half its spread on both sides. Width: from the
    smallest gap between tested levels (at least 1 % of the range, so adaptive data with near-
    duplicate levels keep a sane floor) to three times the range.

    Args:
        x_levels: finite tested values on the fitting axis, at least two distinct ones.
        lapse_max: upper bound of the lapse rate.
    """
    xs = np.unique(np.asarray(x_levels, dtype=float))
    lo, hi = float(xs[0]), float(xs[-1])
    spread = hi - lo
    gap = float(np.diff(xs).min())
    w_min = max(gap, spread / 100.0)
    return FitBounds(
        threshold_x=(lo - spread / 2, hi + spread / 2),
        width_x=(w_min, 3.0 * spread),
        lapse=(0.0, float(lapse_max)),
    )


@dataclass(frozen=True)
class MLBatch:
    """Fits of B data sets. All arrays have shape (B,).

    Attributes:
        threshold_x, width_x, lapse: parameter estimates.
        loglik: maximised log likelihood (binomial coefficients omitted).
        deviance: 2 * (saturated - fitted) log likelihood.
        converged: the iteration met its tolerance.
        se_threshold_x: asymptotic standard error of ``threshold_x`` from the information
            matrix (parameters held at a bound count as fixed); NaN where singular.
    """

    threshold_x: np.ndarray
    width_x: np.ndarray
    lapse: np.ndarray
    loglik: np.ndarray
    deviance: np.ndarray
    converged: np.ndarray
    se_threshold_x: np.ndarray


def saturated_loglik(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log likelihood of the saturated model (P = k / n per level), summed over levels."""
    k = np.asarray(k, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), k.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / np.where(n > 0, n, 1.0), 0.5)
        a = np.where(k > 0, k * np.log(np.where(p > 0, p, 1.0)), 0.0)
        b = np.where(n - k > 0, (n - k) * np.log(np.where(p < 1, 1.0 - p, 1.0)), 0.0)
    return (a + b).sum(axis=-1)


class _Model:
    """P(correct), its complement and derivatives for a batch of parameter vectors."""

    def __init__(self, sigmoid: Sigmoid, x: np.ndarray, guess: float) -> None:
        self.sig = sigmoid
        self.x = x
        self.guess = guess
        self.z50 = sigmoid.z50
        self.c = sigmoid.width_factor

    def evaluate(self, theta: np.ndarray):
        t, ls, lam = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        s = np.exp(ls)
        z = (self.x - t) / s + self.z50
        f_cdf = self.sig.cdf(z)
        f_sf = self.sig.sf(z)
        a = 1.0 - self.guess - lam
        p = self.guess + a * f_cdf
        q = (1.0 - self.guess) * f_sf + lam * f_cdf  # 1 - p without cancellation
        return z, s, f_cdf, a, np.maximum(p, _P_FLOOR), np.maximum(q, _P_FLOOR)

    def loglik(self, theta: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
        _, _, _, _, p, q = self.evaluate(theta)
        return (k * np.log(p) + (n - k) * np.log(q)).sum(axis=1)

    def score_and_info(self, theta, k, n):
        """Log likelihood, score and information for each parameter vector.

        The information is the observed one (negative Hessian) where that is positive
        definite, the expected (Fisher) one elsewhere: along the threshold-width-lapse ridges of
        psychometric likelihoods the expected information alone makes Newton steps zig-zag.
        """
        z, s, f_cdf, a, p, q = self.evaluate(theta)
        dens = self.sig.pdf(z)
        ddens = self.sig.pdf_derivative(z)
        u = z - self.z50
        g = (-a * dens / s, -a * dens * u, -f_cdf)  # dP / d(t, log s, lapse), each (B, L)
        w_score = (k - n * p) / (p * q)
        score = np.stack([(w_score * gi).sum(axis=1) for gi in g], axis=1)
        # Second derivatives of P; d2P / dlapse2 = 0.
        h_tl_common = ddens * u + dens
        hess_p = {
            (0, 0): a * ddens / s**2,
            (0, 1): a * h_tl_common / s,
            (1, 1): a * u * h_tl_common,
            (0, 2): dens / s,
            (1, 2): dens * u,
        }
        w_fisher = n / (p * q)
        curv = k / p**2 + (n - k) / q**2
        fisher = np.empty((theta.shape[0], 3, 3))
        observed = np.empty_like(fisher)
        for i in range(3):
            for j in range(i, 3):
                gg = g[i] * g[j]
                fisher[:, i, j] = fisher[:, j, i] = (w_fisher * gg).sum(axis=1)
                obs = curv * gg
                if (i, j) in hess_p:
                    obs = obs - w_score * hess_p[(i, j)]
                observed[:, i, j] = observed[:, j, i] = obs.sum(axis=1)
        info = np.where(_positive_definite(observed)[:, None, None], observed, fisher)
        ll = (k * np.log(p) + (n - k) * np.log(q)).sum(axis=1)
        return ll, score, info


def _positive_definite(m: np.ndarray) -> np.ndarray:
    """Sylvester's criterion for a batch of symmetric 3x3 matrices (B, 3, 3) -> (B,) bool."""
    scale = np.abs(m).max(axis=(1, 2)) + 1e-300
    m = m / scale[:, None, None]
    d1 = m[:, 0, 0]
    d2 = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] ** 2
    d3 = np.linalg.det(m)
    return (d1 > 1e-10) & (d2 > 1e-12) & (d3 > 1e-14)


def fit_ml_batch(
    *,
    x: np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    sigmoid: Sigmoid,
    bounds: FitBounds,
    guess: float = GUESS_2AFC,
    anchor: np.ndarray | None = None,
    max_iter: int = 80,
    tol: float = 1e-7,
) -> MLBatch:
    """Maximum-likelihood fits of B data sets observed at the same levels.

    Psychometric likelihoods can have separate local maxima (a steep function with a large lapse
    rate against a shallow one with none), so each data set is fitted from several starts and
    the best end point is kept: one data set (the observed one) from the best grid point of
    every lapse value of a fine grid; a bootstrap batch from its best lapse-free and best lapsing
    coarse-grid points and from ``anchor`` (the observed data's fit).

    Args:
        x: (L,) finite level values on the fitting axis.
        k: (B, L) or (L,) correct counts.
        n: (L,) trial counts.
        sigmoid: the sigmoid family.
        bounds: box constraints.
        guess: guess rate (0.5 for 2AFC).
        anchor: optional (3,) extra start (threshold_x, width_x, lapse) for every data set.
        max_iter: iteration cap of the scoring loop.
        tol: convergence tolerance on the log-likelihood change.

    Returns:
        One fit per data set.
    """
    x = np.asarray(x, dtype=float)
    k = np.atleast_2d(np.asarray(k, dtype=float))
    n = np.asarray(n, dtype=float)
    n_sets = k.shape[0]
    model = _Model(sigmoid, x, guess)
    c = sigmoid.width_factor
    lower = np.array([bounds.threshold_x[0], math.log(bounds.width_x[0] / c), bounds.lapse[0]])
    upper = np.array([bounds.threshold_x[1], math.log(bounds.width_x[1] / c), bounds.lapse[1]])

    starts = _grid_starts(model, k, n, lower, upper)  # (S, B, 3)
    if anchor is not None:
        a = np.array([anchor[0], math.log(anchor[1] / c), anchor[2]])
        starts = np.concatenate([starts, np.broadcast_to(np.clip(a, lower, upper), (1, n_sets, 3))])
    n_starts = starts.shape[0]
    theta, ll, converged = _maximise(
        model,
        starts.reshape(-1, 3).copy(),
        np.tile(k, (n_starts, 1)),
        n,
        lower,
        upper,
        max_iter,
        tol,
    )
    best = np.argmax(ll.reshape(n_starts, n_sets), axis=0)
    pick = best * n_sets + np.arange(n_sets)
    theta, ll, converged = theta[pick], ll[pick], converged[pick]
    se = _threshold_se(model, theta, k, n, lower, upper)
    sat = saturated_loglik(k, n)
    return MLBatch(
        threshold_x=theta[:, 0].copy(),
        width_x=np.exp(theta[:, 1]) * c,
        lapse=theta[:, 2].copy(),
        loglik=ll,
        deviance=np.maximum(2.0 * (sat - ll), 0.0),
        converged=converged,
        se_threshold_x=se,
    )


def _threshold_se(model: _Model, theta, k, n, lower, upper) -> np.ndarray:
    """SE of the threshold from the inverse information, bound-held parameters removed."""
    _, score, info = model.score_and_info(theta, k, n)
    fixed = ((theta <= lower + 1e-9) & (score <= 0)) | ((theta >= upper - 1e-9) & (score >= 0))
    fixed[:, 0] = False
    eye = np.eye(3)
    keep = (~fixed).astype(float)
    m = info * keep[:, :, None] * keep[:, None, :] + eye * fixed[:, :, None]
    out = np.full(theta.shape[0], np.nan)
    ok = np.linalg.det(m) > 0
    if ok.any():
        inv = np.linalg.inv(m[ok])
        var = inv[:, 0, 0]
        out[ok] = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)
    return out


def _maximise(model: _Model, theta, k, n, lower, upper, max_iter: int, tol: float):
    """Vectorised Levenberg-Marquardt (Newton / Fisher scoring) with box constraints."""
    n_sets = theta.shape[0]
    mu = np.full(n_sets, 1e-3)
    ll, score, info = model.score_and_info(theta, k, n)
    converged = np.zeros(n_sets, dtype=bool)
    eye = np.eye(3)
    for _ in range(max_iter):
        active = ~converged
        if not active.any():
            break
        idx = np.flatnonzero(active)
        th, g, fi, m = theta[idx], score[idx].copy(), info[idx].copy(), mu[idx]
        # Active set: a parameter at a bound whose gradient points outward is held fixed.
        at_lo = (th <= lower + 1e-12) & (g < 0)
        at_hi = (th >= upper - 1e-12) & (g > 0)
        fixed = at_lo | at_hi
        g[fixed] = 0.0
        keep = (~fixed).astype(float)
        fi = fi * keep[:, :, None] * keep[:, None, :] + eye * fixed[:, :, None]
        diag = np.einsum("bii->bi", fi)
        system = fi + (m[:, None] * np.maximum(diag, 1e-12))[:, :, None] * eye + 1e-12 * eye
        step = np.linalg.solve(system, g[:, :, None])[:, :, 0]
        proposal = np.clip(th + step, lower, upper)
        ll_new, score_new, info_new = model.score_and_info(proposal, k[idx], n)
        better = ll_new >= ll[idx] - 1e-12
        gain = ll_new - ll[idx]
        moved = np.abs(proposal - th).max(axis=1)
        acc = idx[better]
        theta[acc] = proposal[better]
        ll[acc], score[acc], info[acc] = ll_new[better], score_new[better], info_new[better]
        mu[acc] = np.maximum(mu[acc] / 3.0, 1e-9)
        rej = idx[~better]
        mu[rej] = mu[rej] * 5.0
        # Converged: no meaningful gain left, and either a small step or none at all to gain
        # (flat ridges, e.g. a width at its bound, otherwise crawl for dozens of iterations).
        done = better & (((np.abs(gain) < tol) & (moved < 1e-4)) | (np.abs(gain) < 1e-3 * tol))
        # A data set whose damping exploded cannot improve any more: it sits at an optimum
        # (or a flat ridge) to machine precision.
        done |= ~better & (mu[idx] > 1e8)
        converged[idx[done]] = True
    return theta, ll, converged


def _grid_starts(model: _Model, k, n, lower, upper) -> np.ndarray:
    """Starting points from a parameter grid (one matrix product for the whole batch).

    Returns:
        Starts (S, B, 3): for a single data set, the best grid point of each lapse value (S = 8);
        for a batch, each data set's best lapse-free and best lapsing grid point (S = 2).
    """
    single = k.shape[0] == 1
    t_grid = np.linspace(lower[0], upper[0], 41 if single else 25)
    ls_grid = np.linspace(lower[1], upper[1], 24 if single else 12)
    lam_grid = np.linspace(lower[2], upper[2], 8 if single else 4)
    tt, ss, lam = np.meshgrid(t_grid, ls_grid, lam_grid, indexing="ij")
    grid = np.stack([tt.ravel(), ss.ravel(), lam.ravel()], axis=1)
    _, _, _, _, p, q = model.evaluate(grid)  # (G, L)
    scores = k @ np.log(p).T + (n - k) @ np.log(q).T  # (B, G)
    per_lapse = scores.reshape(k.shape[0], -1, lam_grid.size)  # lapse is the fastest grid axis
    best = np.argmax(per_lapse, axis=1)  # (B, n_lapse): flat index over (t, ls)
    flat = best * lam_grid.size + np.arange(lam_grid.size)[None, :]
    rows = np.arange(k.shape[0])
    if single:
        return grid[flat[0]][:, None, :].copy()
    # Batch: the best point with no lapse and the best with a lapse (the two regimes whose
    # modes differ); a separate start per lapse value buys little more.
    lapse_free = flat[:, 0]
    with_lapse = flat[rows, 1 + np.argmax(np.take_along_axis(scores, flat[:, 1:], axis=1), axis=1)]
    return np.stack([grid[lapse_free], grid[with_lapse]])
