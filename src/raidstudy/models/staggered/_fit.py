"""Least squares with absorbed fixed effects (linearmodels.PanelOLS) and the covariances of the staggered estimators."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from raidstudy.errors import ModelError, ParameterError

__all__ = ["COV_TYPES", "FEFit", "fit_fe"]

COV_TYPES = ("clustered", "kernel", "robust", "unadjusted")
_ALIASES = {"clustered": "clustered", "cluster": "clustered", "cr": "clustered", "kernel": "kernel",
            "driscoll-kraay": "kernel", "dk": "kernel", "robust": "robust", "hc1": "robust",
            "heteroskedastic": "robust", "unadjusted": "unadjusted", "nonrobust": "unadjusted",
            "homoskedastic": "unadjusted"}


def resolve_cov_type(cov_type: str) -> str:
    if not isinstance(cov_type, str) or cov_type.strip().lower() not in _ALIASES:
        raise ParameterError("cov_type", cov_type, "is not a supported covariance", accepted=COV_TYPES)
    return _ALIASES[cov_type.strip().lower()]


@dataclass
class FEFit:
    params: np.ndarray
    cov: np.ndarray  # with the small-sample factor applied
    cov_raw: np.ndarray
    resid: np.ndarray
    nobs: int
    k_full: int  # fixest's K with every fixed effect counted
    k_used: int  # K in the small-sample factor
    ss_factor: float
    n_clusters: int | None
    n_periods: int
    df_ref: int | None  # degrees of freedom of the t reference (None: normal)
    bandwidth: float | None
    r2_within: float


def fit_fe(y: np.ndarray, X: np.ndarray, names: list[str], *, entity: np.ndarray, time: np.ndarray,
           other: np.ndarray | None, clusters: np.ndarray, cov_type: str, small_sample: bool,
           bandwidth: float | None = None, weights: np.ndarray | None = None) -> FEFit:
    """OLS of ``y`` on ``X`` with entity effects and either time effects or ``other`` effects.

    ``entity`` must be nested in ``clusters`` (each entity in one cluster). The small-sample
    factor reproduces fixest's defaults (``ssc(adj = TRUE, fixef.K = "nested",
    cluster.adj = TRUE)``): ``G/(G-1) * (n-1)/(n-K)`` for clustered covariances, with K the
    number of coefficients plus the fixed effects not nested in the clusters (fixest's
    count: all levels of every effect, less one per extra effect, less the nested levels
    but one); ``(n-1)/(n-K)`` with every effect counted for the others.
    """
    from linearmodels.panel import PanelOLS

    n, p = X.shape
    if n <= p + 1:
        raise ModelError(f"{n} observations cannot identify {p} coefficients plus the fixed effects; "
                         "use a longer panel or fewer relative periods")
    ent_codes, ent_u = pd.factorize(entity, sort=True)
    tim_codes, tim_u = pd.factorize(time, sort=True)
    idx = pd.MultiIndex.from_arrays([ent_codes, tim_codes], names=["entity", "time"])
    sizes = [len(ent_u)]
    if other is not None:
        oth_codes, oth_u = pd.factorize(other, sort=True)
        other_df = pd.DataFrame({"other": oth_codes}, index=idx)
        sizes.append(len(oth_u))
    else:
        other_df = None
        sizes.append(len(tim_u))
    k_full = int(p + sum(sizes) - (len(sizes) - 1))
    cl_codes, cl_u = pd.factorize(clusters, sort=True)
    G = len(cl_u)
    w = None if weights is None else pd.Series(np.asarray(weights, dtype=float), index=idx, name="w")
    mod = PanelOLS(pd.Series(y, index=idx, name="y"), pd.DataFrame(X, index=idx, columns=names), weights=w,
                   entity_effects=True, time_effects=other is None, other_effects=other_df,
                   check_rank=False, drop_absorbed=False)
    kw: dict = {"debiased": False, "auto_df": False, "count_effects": False}
    if cov_type == "clustered":
        kw.update(cov_type="clustered", clusters=pd.DataFrame({"c": cl_codes}, index=idx), group_debias=False)
    elif cov_type == "kernel":
        kw.update(cov_type="kernel", kernel="bartlett")
        if bandwidth is not None:
            kw["bandwidth"] = float(bandwidth)
    elif cov_type == "robust":
        kw.update(cov_type="robust")
    else:
        kw.update(cov_type="unadjusted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mod.fit(**kw)
    b = res.params.to_numpy()
    V = res.cov.to_numpy()
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(V))):
        raise ModelError("the fixed-effects fit returned non-finite estimates; the design is singular "
                         "(a covariate constant within units or periods, or an empty relative period)")
    resid = np.asarray(res.resids).ravel()
    if cov_type == "clustered":
        # entity effects are nested in the clusters (checked by the callers' construction)
        k_used = int(k_full - (sizes[0] - 1))
        factor = (G / (G - 1) if G > 1 else 1.0) * (n - 1) / (n - k_used) if small_sample else 1.0
        df_ref = G - 1
    else:
        k_used = k_full
        factor = (n - 1) / (n - k_used) if small_sample else 1.0
        df_ref = (len(tim_u) - 1) if cov_type == "kernel" else (n - k_full)
    if n - k_used <= 0:
        raise ModelError(f"no residual degrees of freedom: {n} observations and {k_used} parameters "
                         "(coefficients plus fixed effects); use a longer panel or fewer relative periods")
    bw = None
    if cov_type == "kernel":
        bw = float(bandwidth) if bandwidth is not None else float(np.floor(4 * (len(tim_u) / 100) ** (2 / 9)))
    return FEFit(params=b, cov=V * factor, cov_raw=V, resid=resid, nobs=int(n), k_full=k_full, k_used=k_used,
                 ss_factor=float(factor), n_clusters=int(G), n_periods=len(tim_u), df_ref=df_ref,
                 bandwidth=bw, r2_within=float(res.rsquared_within) if hasattr(res, "rsquared_within") else float("nan"))
