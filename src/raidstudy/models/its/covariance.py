"""Covariance of the ITS coefficients: model-based, robust, EWC and HAC sandwiches, lag choice.

The scores live on the regular grid of each series (missing and excluded periods contribute
zero), so autocovariances pair periods the right number of periods apart, and the cosine
weights of the EWC estimator follow calendar time, not the row count.
"""
from __future__ import annotations

import math

import numpy as np


def nw_auto_lags(nobs: int) -> int:
    """The Newey-West rule of thumb: floor(4 (T/100)^(2/9)) lags.

    It is also the pilot lag of :func:`nw_plugin_lags`.
    """
    return int(math.floor(4.0 * (nobs / 100.0) ** (2.0 / 9.0)))


def nw_plugin_lags(S: np.ndarray, tpos: np.ndarray, group: np.ndarray, n_grid: int, n_t: int,
                   max_lags: int) -> int:
    """Newey-West (1994) data-dependent lag for the Bartlett kernel.

    The scores (all terms but the constant, summed, as in Newey and West 1994, sec. 3)
    are placed on the regular grid of each series; with the pilot lag
    ``n = floor(4 (T/100)^(2/9))`` and their autocovariances ``sigma_j``,
    ``s0 = sigma_0 + 2 sum_j sigma_j``, ``s1 = 2 sum_j j sigma_j`` and the bandwidth is
    ``1.1447 (s1/s0)^(2/3) T^(1/3)``. The lag is its integer part, but never fewer than
    the rule of thumb ``floor(4 (T/100)^(2/9))`` and never more than ``max_lags``: strong
    autocorrelation gets more lags than the rule gives, which keeps the intervals honest,
    and mild autocorrelation keeps the rule's lags.
    """
    pilot = max(1, nw_auto_lags(n_t))
    f = S[:, 1:].sum(axis=1) if S.shape[1] > 1 else S[:, 0]
    sig = np.zeros(pilot + 1)
    for g in np.unique(group):
        sel = group == g
        F = np.zeros(n_grid)
        F[tpos[sel]] = f[sel]
        sig[0] += F @ F
        for j in range(1, pilot + 1):
            sig[j] += F[j:] @ F[:-j]
    sig /= max(n_t, 1)
    s0 = sig[0] + 2.0 * sig[1:].sum()
    s1 = 2.0 * np.sum(np.arange(1, pilot + 1) * sig[1:])
    if not np.isfinite(s0) or s0 <= 0:
        return min(pilot, max_lags)
    bw = 1.1447 * (s1 / s0) ** (2.0 / 3.0) * n_t ** (1.0 / 3.0) if s1 > 0 else 0.0
    # Never fewer lags than the rule of thumb: with mild autocorrelation the plug-in picks
    # one or two lags, and Bartlett HAC with so few is biased towards too-narrow intervals.
    return int(max(1, min(max(math.floor(bw), nw_auto_lags(n_t)), max_lags)))


def ewc_basis(tpos: np.ndarray, group: np.ndarray, n_terms: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cosine weights of the EWC estimator, one ``(rows, Phi)`` pair per series.

    For a series whose fitted periods span grid positions ``lo..hi`` (``T = hi - lo + 1``
    periods, gaps included), ``Phi[j - 1, i] = sqrt(2) cos(pi j (t_i - lo + 1/2) / T)`` for
    ``j = 1..B`` and the series' rows ``i``.
    """
    out = []
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        t = tpos[rows]
        lo, T = int(t.min()), int(t.max() - t.min() + 1)
        j = np.arange(1, n_terms + 1)[:, None]
        out.append((rows, math.sqrt(2.0) * np.cos(np.pi * j * ((t - lo) + 0.5)[None, :] / T)))
    return out


def ewc_meat(S: np.ndarray, tpos: np.ndarray, group: np.ndarray, *, n_terms: int) -> np.ndarray:
    r"""Equal-weighted cosine (EWC) estimate of the long-run variance of the summed scores.

    Parameters
    ----------
    S : ndarray, shape (n, p)
        Scores of the fitted rows.
    tpos, group : ndarray, shape (n,)
        Grid position and series of each row.
    n_terms : int
        Number ``B`` of cosine terms.

    Returns
    -------
    ndarray, shape (p, p)

    Notes
    -----
    For each series with fitted periods spanning ``T`` grid periods,

    .. math::

        \Lambda_j = \sum_t \sqrt{2} \cos\left(\pi j \frac{t + 1/2}{T}\right) s_t,
        \qquad \hat\Omega = \frac{1}{B} \sum_{j=1}^{B} \Lambda_j \Lambda_j',

    summed over series (Lazarus, Lewis, Stock and Watson 2018; Müller 2004). Periods
    without a fitted row contribute zero. With few terms the estimate is noisy but its
    noise is known: the t statistic has a fixed-b reference distribution (Student t with
    ``B`` degrees of freedom for a mean; for a regression, one simulated for the design by
    :mod:`raidstudy.models.its.critical`).

    Examples
    --------
    >>> import numpy as np
    >>> S = np.ones((4, 1)); t = np.arange(4); g = np.zeros(4, int)
    >>> float(ewc_meat(S, t, g, n_terms=2)[0, 0]) < 1e-20   # a constant has no cosine content
    True
    """
    p = S.shape[1]
    meat = np.zeros((p, p))
    for rows, Phi in ewc_basis(tpos, group, n_terms):
        Lam = Phi @ S[rows]
        meat += Lam.T @ Lam
    return meat / n_terms


def covariance(
    X: np.ndarray, u: np.ndarray, w: np.ndarray, h: np.ndarray, *, cov_type: str, maxlags: int,
    small_sample: bool, scale: float, tpos: np.ndarray, group: np.ndarray, n_grid: int,
    prewhite: bool = False, ewc_terms: int = 6,
) -> np.ndarray:
    n, p = X.shape
    if cov_type == "ewc":
        bread = np.linalg.inv(X.T @ (X * h[:, None]))
        meat = ewc_meat(X * u[:, None], tpos, group, n_terms=ewc_terms)
        V = bread @ meat @ bread
    elif cov_type == "nonrobust":
        V = scale * np.linalg.inv(X.T @ (X * w[:, None]))
    else:
        bread = np.linalg.inv(X.T @ (X * h[:, None]))
        S = X * u[:, None]
        meat = S.T @ S
        if cov_type == "hac" and prewhite:
            meat = _prewhitened_meat(S, maxlags, tpos, group, n_grid)
        elif cov_type == "hac" and maxlags > 0:
            for g in np.unique(group):
                G = np.zeros((n_grid, p))
                sel = group == g
                G[tpos[sel]] = S[sel]
                for lag in range(1, maxlags + 1):
                    wl = 1.0 - lag / (maxlags + 1.0)
                    gam = G[lag:].T @ G[:-lag]
                    meat += wl * (gam + gam.T)
        V = bread @ meat @ bread
    if small_sample:
        V = V * n / (n - p)
    return 0.5 * (V + V.T)


def _prewhitened_meat(S: np.ndarray, maxlags: int, tpos: np.ndarray, group: np.ndarray, n_grid: int) -> np.ndarray:
    """Andrews-Monahan (1992) VAR(1)-prewhitened Bartlett HAC meat (as R sandwich's prewhite=1).

    Scores are placed on the regular grid (zeros where a period is not fitted), a VAR(1)
    without intercept is fitted by OLS pooling the series, the Bartlett HAC of its residuals
    is recoloured with (I - A)^-1. The VAR matrix is shrunk so that its largest eigenvalue
    modulus is at most 0.97 (Andrews-Monahan's adjustment).
    """
    p = S.shape[1]
    grids = []
    for g in np.unique(group):
        G = np.zeros((n_grid, p))
        sel = group == g
        G[tpos[sel]] = S[sel]
        grids.append(G)
    Y = np.vstack([G[1:] for G in grids])
    Z = np.vstack([G[:-1] for G in grids])
    A = np.linalg.lstsq(Z, Y, rcond=None)[0].T  # Y_t = A Z_t
    rho = float(np.max(np.abs(np.linalg.eigvals(A)))) if p else 0.0
    if rho > 0.97:
        A = A * (0.97 / rho)
    meat = np.zeros((p, p))
    for G in grids:
        E = G[1:] - G[:-1] @ A.T
        meat += E.T @ E
        for lag in range(1, maxlags + 1):
            wl = 1.0 - lag / (maxlags + 1.0)
            gam = E[lag:].T @ E[:-lag]
            meat += wl * (gam + gam.T)
    B = np.linalg.inv(np.eye(p) - A)
    return B @ meat @ B.T
