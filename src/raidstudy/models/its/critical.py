r"""Critical values for the EWC covariance, simulated for the model's own design.

With few cosine terms the EWC variance estimate is noisy, and how noisy depends on the
design: a step at the event, a trend and a slope change are not the constant regressor for
which the fixed-b limit is Student's t with ``B`` degrees of freedom. This module derives
the reference distribution of the t (and Wald) statistic for the fitted design itself,
under independent errors, which is also the fixed-b limit for weakly dependent errors
(Kiefer and Vogelsang 2005; Lazarus, Lewis, Stock and Watson 2018).

The derivation makes the simulation tiny. Write :math:`\tilde X = W^{1/2} X` (the working
weights of the fit; the identity for OLS), :math:`A = (\tilde X'\tilde X)^{-1}` and
:math:`M = I - \tilde X A \tilde X'`. For a contrast :math:`c` with :math:`g = \tilde X A c`,
the estimate's error is :math:`g'e` and the EWC variance is :math:`\frac1B\sum_j (k_j'e)^2`
with :math:`k_j = M(\phi_j \odot g)` (:math:`\phi_j` the cosine weights). Because
:math:`M g = 0`, numerator and denominator are independent and, with :math:`\lambda_i` the
eigenvalues of :math:`K K' / g'g`,

.. math::

    t = \frac{Z}{\sqrt{\frac1B \sum_i \lambda_i \chi^2_{1,i}}}, \qquad Z \sim N(0, 1),

so only ``B`` (times the number of series) chi-square draws per replication are needed and
the probability over :math:`Z` is exact: :math:`P(|t| > q) = E[2\bar\Phi(q\sqrt{Q})]`.
When every :math:`\lambda_i = 1` (a mean) this is exactly :math:`t_B`.
"""
from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
from scipy import optimize, special

from raidstudy.errors import ModelError
from raidstudy.models.its.covariance import ewc_basis

__all__ = ["FixedBReference", "reference_for"]

#: Replications of the chi-square mixture (common to every contrast of a design).
N_DRAWS = 8_192
#: Replications for joint (Wald) tests, which need a matrix inverse per replication.
N_DRAWS_WALD = 10_000


@functools.lru_cache(maxsize=16)
def _chi2_draws(m: int, seed: int) -> np.ndarray:
    """``N_DRAWS`` x ``m`` chi-square(1) draws from a scrambled Sobol sequence (read-only, shared).

    Quasi-Monte Carlo draws carry far less simulation noise than as many pseudo-random ones
    (the tail probability is a smooth function of ``Q``); they depend only on the number
    of terms and the seed, so every design with those shares them.
    """
    from scipy.stats import norm, qmc

    u = qmc.Sobol(d=m, scramble=True, seed=np.random.default_rng([seed, 0])).random(N_DRAWS)
    out = norm.ppf(np.clip(u, 1e-12, 1 - 1e-12)) ** 2
    out.flags.writeable = False
    return out


def _sf2(x: np.ndarray) -> np.ndarray:
    """Two-sided normal tail probability ``2 (1 - Phi(x))`` for ``x >= 0``."""
    return special.erfc(x / np.sqrt(2.0))


def solve_critical_values(rq: np.ndarray, q0: np.ndarray, alpha: float) -> np.ndarray:
    """Solve ``E[2 (1 - Phi(q sqrt(Q)))] = alpha`` for each row of ``rq = sqrt(Q draws)``.

    Newton's method from the starting values ``q0`` (non-finite or non-positive ones start
    at 2); rows stop moving once their step is below ``1e-10 q``. Shared by
    :meth:`FixedBReference.critical_values` and the specification curve, which solves the
    rows of many designs at once.
    """
    q = np.where(np.isfinite(q0) & (q0 > 0), q0, 2.0).astype(float)
    act = np.arange(len(q))
    for _ in range(50):
        x = q[act, None] * rq[act]
        f = np.mean(_sf2(x), axis=1) - alpha
        fprime = -np.mean(np.sqrt(2.0 / np.pi) * np.exp(-0.5 * x * x) * rq[act], axis=1)
        step = f / fprime
        q[act] = np.maximum(q[act] - step, 0.5 * q[act])
        act = act[np.abs(step) >= 1e-10 * q[act]]
        if not len(act):
            break
    return q


def tail_probabilities(rq: np.ndarray, tstats: np.ndarray) -> np.ndarray:
    """Two-sided p-values ``E[2 (1 - Phi(|t| sqrt(Q)))]`` for each row of ``rq`` (NaN for NaN t)."""
    t = np.abs(np.asarray(tstats, dtype=float))
    p = np.mean(_sf2(np.where(np.isfinite(t), t, 0.0)[:, None] * rq), axis=1)
    return np.where(np.isfinite(t), p, np.nan)


class FixedBReference:
    """The reference distribution of EWC t and Wald statistics for one fitted design.

    Parameters
    ----------
    Xw : ndarray, shape (n, p)
        Design rows of the fit, multiplied by the square root of the working weights.
    tpos, group : ndarray, shape (n,)
        Grid position and series of each row (as for :func:`~raidstudy.models.its.covariance.ewc_meat`).
    n_terms : int
        Cosine terms ``B`` of the EWC estimator.
    seed : int
        Seed of the chi-square draws; the same seed gives the same critical values.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> n = 200
    >>> ref = FixedBReference(np.ones((n, 1)), np.arange(n), np.zeros(n, int), n_terms=8)
    >>> bool(abs(ref.critical_value(np.array([1.0])) - stats.t.ppf(0.975, 8)) < 0.02)  # a mean: Student t(8)
    True
    """

    def __init__(self, Xw: np.ndarray, tpos: np.ndarray, group: np.ndarray, *, n_terms: int, seed: int = 0):
        self.Xw = np.asarray(Xw, dtype=float)
        self.n_terms = int(n_terms)
        self.seed = int(seed)
        self._basis = ewc_basis(np.asarray(tpos), np.asarray(group), self.n_terms)
        self._A = np.linalg.inv(self.Xw.T @ self.Xw)
        self._chi2 = _chi2_draws(self.n_terms * len(self._basis), self.seed)
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------------ contrasts
    def _K(self, G: np.ndarray) -> np.ndarray:
        """``M (phi_j * G)`` for every series and cosine term, stacked: shape (m, n, q)."""
        Xw, A = self.Xw, self._A
        XA = Xw @ A
        blocks = []
        for rows, Phi in self._basis:
            raw = np.zeros((Phi.shape[0], Xw.shape[0], G.shape[1]))
            raw[:, rows, :] = Phi[:, :, None] * G[rows][None, :, :]
            # M applied on the left of each (n, q) block
            proj = np.einsum("jnq,np->jpq", raw, Xw, optimize=True)
            raw -= np.einsum("np,jpq->jnq", XA, proj, optimize=True)
            blocks.append(raw)
        return np.concatenate(blocks, axis=0)

    def _eigen(self, C: np.ndarray) -> np.ndarray:
        """Eigenvalues ``lambda`` (one row per contrast) of ``K K' / g'g`` for the rows of ``C``."""
        G = self.Xw @ (self._A @ C.T)  # (n, k)
        gg = np.einsum("nk,nk->k", G, G)
        if np.any(gg <= 0):
            raise ModelError("a contrast is zero on the fitted design, so it has no reference distribution")
        K = self._K(G)  # (m, n, k)
        gram = np.einsum("jnk,lnk->kjl", K, K, optimize=True) / gg[:, None, None]
        return np.clip(np.linalg.eigvalsh(gram), 0.0, None)

    def mixtures(self, C: np.ndarray) -> np.ndarray:
        """Draws of ``Q`` (the EWC variance over the true variance), one row per contrast in ``C``."""
        C = np.atleast_2d(np.asarray(C, dtype=float))
        keys = [("Q", c.tobytes()) for c in C]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            lam = self._eigen(C[todo])
            Q = lam @ self._chi2[:, : lam.shape[1]].T / self.n_terms  # (k, N)
            for i, row in zip(todo, Q):
                self._cache[keys[i]] = row
        return np.vstack([self._cache[k] for k in keys])

    def mixture(self, contrast: np.ndarray) -> np.ndarray:
        """Draws of ``Q`` for one contrast."""
        return self.mixtures(np.asarray(contrast, dtype=float).ravel()[None, :])[0]

    def critical_values(self, C: np.ndarray, alpha: float = 0.05, *, n_draws: int | None = None) -> np.ndarray:
        """Two-sided ``1 - alpha`` critical values of the t statistics of the rows of ``C``.

        Solves ``E[2 (1 - Phi(q sqrt(Q)))] = alpha`` over the draws of ``Q`` by Newton's
        method from the Satterthwaite value (:meth:`satterthwaite_critical_values`).
        ``n_draws`` uses only the first draws of the Sobol sequence (a power of two keeps
        it balanced), for bands of many contrasts.
        """
        C = np.atleast_2d(np.asarray(C, dtype=float))
        keys = [("q", c.tobytes(), float(alpha), n_draws) for c in C]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            rq = np.sqrt(self.mixtures(C[todo])[:, :n_draws])  # (k, N)
            q = solve_critical_values(rq, self.satterthwaite_critical_values(C[todo], alpha), alpha)
            for i, v in zip(todo, q):
                self._cache[keys[i]] = float(v)
        return np.array([self._cache[k] for k in keys])

    def critical_value(self, contrast: np.ndarray, alpha: float = 0.05) -> float:
        """The two-sided ``1 - alpha`` critical value of the t statistic of ``contrast``."""
        return float(self.critical_values(np.asarray(contrast, dtype=float).ravel()[None, :], alpha)[0])

    def pvalues(self, C: np.ndarray, tstats: np.ndarray) -> np.ndarray:
        """Two-sided p-values of the t statistics ``tstats`` of the contrasts in the rows of ``C``."""
        return tail_probabilities(np.sqrt(self.mixtures(C)), tstats)

    def pvalue(self, contrast: np.ndarray, tstat: float) -> float:
        """Two-sided p-value of a t statistic of ``contrast``."""
        return float(self.pvalues(np.asarray(contrast, dtype=float).ravel()[None, :], np.array([tstat]))[0])

    def effective_df(self, contrast: np.ndarray) -> float:
        """Degrees of freedom of the Student t with the same 97.5 % quantile (a summary for reports)."""
        from scipy import stats

        q = self.critical_value(contrast, 0.05)
        if q <= stats.norm.ppf(0.975) + 1e-9:
            return float("inf")
        return float(optimize.brentq(lambda v: stats.t.ppf(0.975, v) - q, 0.05, 1e7))

    def satterthwaite_critical_values(self, C: np.ndarray, alpha: float = 0.05) -> np.ndarray:
        """Critical values for the rows of ``C`` from a two-moment (Satterthwaite) fit.

        ``Q`` is replaced by a scaled chi-square with the same mean ``m = sum(lambda)/B`` and
        variance, i.e. ``nu = sum(lambda)^2 / sum(lambda^2)`` degrees of freedom, so the
        critical value is ``t_nu^-1(1 - alpha/2) / sqrt(m)``. Vectorised over contrasts, for
        bands and as the start of :meth:`critical_values`.
        """
        from scipy import stats

        C = np.atleast_2d(np.asarray(C, dtype=float))
        out = np.full(C.shape[0], np.nan)
        for lo in range(0, C.shape[0], 256):  # bounded memory for long series
            sl = slice(lo, min(lo + 256, C.shape[0]))
            lam = self._eigen(C[sl])
            s1, s2 = lam.sum(axis=1), (lam ** 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[sl] = stats.t.ppf(1 - alpha / 2, s1 ** 2 / s2) / np.sqrt(s1 / self.n_terms)
        return out

    # ------------------------------------------------------------------ joint tests
    def wald_pvalue(self, R: np.ndarray, stat: float) -> float:
        """p-value of the Wald statistic ``(R b)' (R V R')^-1 (R b) / q`` for restrictions ``R``."""
        R = np.atleast_2d(np.asarray(R, dtype=float))
        q = R.shape[0]
        m = self.n_terms * len(self._basis)
        if q > m:
            raise ModelError(
                f"a joint test of {q} restrictions needs at least {q} cosine terms; this EWC covariance has "
                f"{m}. Test fewer restrictions (coarser bins), or fit with more terms (ewc_terms={q} or more)"
            )
        key = ("W", R.tobytes())
        if key not in self._cache:
            G = self.Xw @ (self._A @ R.T)  # (n, q)
            K = self._K(G)  # (m, n, q)
            Kall = K.transpose(1, 0, 2).reshape(K.shape[1], -1)  # (n, m q)
            cov_z = Kall.T @ Kall
            cov_u = G.T @ G
            rng = np.random.default_rng([self.seed, 1])
            z = _mvn(rng, cov_z, N_DRAWS_WALD).reshape(N_DRAWS_WALD, m, q)
            u = _mvn(rng, cov_u, N_DRAWS_WALD)
            S = np.einsum("rjq,rjk->rqk", z, z) / self.n_terms
            W = np.einsum("rq,rq->r", u, np.linalg.solve(S, u[:, :, None])[:, :, 0]) / q
            self._cache[key] = np.sort(W)
        W = self._cache[key]
        return float((1 + np.sum(W >= stat)) / (1 + len(W)))


def _mvn(rng: np.random.Generator, cov: np.ndarray, n: int) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    L = vecs * np.sqrt(np.clip(vals, 0.0, None))
    return rng.standard_normal((n, len(vals))) @ L.T


_REFERENCES: "OrderedDict[str, FixedBReference]" = OrderedDict()
_MAX_CACHED = 32


def reference_for(Xw: np.ndarray, tpos: np.ndarray, group: np.ndarray, *, n_terms: int,
                  seed: int = 0) -> FixedBReference:
    """The :class:`FixedBReference` of a design, cached by the design's bytes.

    Refits of the same design (a summary after a fit, a report that refits the study)
    reuse the same object, so its critical values are computed once.
    """
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(Xw, dtype=float), np.asarray(tpos, dtype=np.int64),
              np.asarray(group, dtype=np.int64)):
        h.update(a.tobytes())
        h.update(str(a.shape).encode())
    h.update(f"{n_terms}|{seed}".encode())
    key = h.hexdigest()
    ref = _REFERENCES.get(key)
    if ref is None:
        ref = FixedBReference(Xw, tpos, group, n_terms=n_terms, seed=seed)
        _REFERENCES[key] = ref
        while len(_REFERENCES) > _MAX_CACHED:
            _REFERENCES.popitem(last=False)
    else:
        _REFERENCES.move_to_end(key)
    return ref
