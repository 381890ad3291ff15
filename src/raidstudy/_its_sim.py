"""Simulated series with planted ITS effects (for validation tests and the benchmark).

Everything produced here is *simulated* and labelled as such; it is not data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_its"]

#: Planted weekly pattern on the log scale (Mon..Sun): weekends busier.
DOW_EFFECT = np.array([0.0, -0.05, 0.0, 0.02, 0.05, 0.20, 0.15])


def simulate_its(
    *,
    family: str = "negbin",
    n: int = 730,
    event: int = 500,
    level: float = -0.5,
    slope: float = 0.002,
    trend: float = 0.0002,
    base: float = 100.0,
    ar: float = 0.3,
    noise_sd: float = 0.05,
    nb_alpha: float = 0.05,
    fourier_amp: float = 0.1,
    start: str = "2018-01-01",
    seed: int = 0,
) -> pd.DataFrame:
    """One simulated daily series with a planted level and slope change.

    The linear predictor (log scale for count families, identity for gaussian) is
    ``log(base) + trend*t + level*L + slope*(t-event)*L + dow + fourier + u_t`` with
    AR(1) errors ``u_t = ar*u_{t-1} + e_t``, ``e_t ~ N(0, noise_sd^2)``. Counts are then
    Poisson (``poisson``/``quasipoisson``) or NB2 with ``nb_alpha`` (``negbin``) around
    ``exp(eta)``; for ``gaussian`` the outcome is ``base * eta_without_log`` on a scale
    where the effects are additive: ``y = base + base*(trend*t + level*L + ...) + base*u_t``.

    Returns a DataFrame indexed by date with ``y`` (simulated) and ``mu`` (the
    conditional mean given the AR errors), with ``attrs["simulated"] = True``.
    """
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq="D")
    t = np.arange(n, dtype=float)
    L = (t >= event).astype(float)
    e = rng.standard_normal(n) * noise_sd
    u = np.empty(n)
    u[0] = e[0] / np.sqrt(1 - ar ** 2) if abs(ar) < 1 else e[0]
    for i in range(1, n):
        u[i] = ar * u[i - 1] + e[i]
    seas = DOW_EFFECT[np.asarray(idx.day_of_week)] + fourier_amp * np.sin(2 * np.pi * np.asarray(idx.day_of_year) / 365.25)
    lin = trend * t + level * L + slope * (t - event) * L + seas
    if family == "gaussian":
        mu = base * (1.0 + lin)
        y = mu + base * u
        out = pd.DataFrame({"y": y, "mu": mu}, index=idx)
    else:
        mu = np.exp(np.log(base) + lin + u)
        if family == "negbin":
            lam = rng.gamma(1.0 / nb_alpha, nb_alpha * mu)
            y = rng.poisson(lam)
        else:
            y = rng.poisson(mu)
        out = pd.DataFrame({"y": y.astype(float), "mu": mu}, index=idx)
    out.index.name = "date"
    out.attrs["simulated"] = True
    return out
