"""Simulated series with planted raid effects, for tests, examples and benchmarks.

Everything produced here is labelled as simulated: the series name starts with
``simulated``, ``attrs["simulated"]`` is true, and a study run on such a series says so in
its notebook and in ``results.json``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from raidstudy.io import atomic_write_text

__all__ = ["simulate_its", "write_simulated_csv", "is_simulated"]

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


def write_simulated_csv(
    path,
    *,
    start: str = "2021-01-01",
    n_days: int = 400,
    event: str = "2021-10-01",
    level_ratio: float = 0.5,
    base: float = 200.0,
    seed: int = 0,
    **kwargs,
) -> pd.DataFrame:
    """Write a SIMULATED treated series and a control as a generic ``date,value,series`` CSV.

    ``simulated_counts`` has a planted jump of ``level_ratio`` (a rate ratio) at ``event``;
    ``simulated_control`` has none. Other keywords go to :func:`simulate_its`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "sim.csv"
    >>> df = write_simulated_csv(p, n_days=60, event="2021-02-01")
    >>> sorted(df["series"].unique())
    ['simulated_control', 'simulated_counts']
    """
    pos = int(pd.date_range(start, periods=n_days, freq="D").searchsorted(pd.Timestamp(event)))
    common = dict(n=n_days, event=pos, start=start, base=base, trend=0.0, slope=0.0, fourier_amp=0.0)
    common.update(kwargs)
    treated = simulate_its(level=math.log(level_ratio), seed=seed, **common)
    control = simulate_its(level=0.0, seed=seed + 1, **common)
    frames = [
        pd.DataFrame({"date": d.index.strftime("%Y-%m-%d"), "value": d["y"].round().astype(int), "series": name})
        for name, d in (("simulated_counts", treated), ("simulated_control", control))
    ]
    both = pd.concat(frames, ignore_index=True)
    atomic_write_text(path, both.to_csv(index=False, lineterminator="\n"))
    return both


def is_simulated(series: pd.Series) -> bool:
    """True when a series is labelled as simulated (by ``attrs`` or by its name)."""
    if series.attrs.get("simulated"):
        return True
    return str(series.name or "").lower().startswith("simulated")
