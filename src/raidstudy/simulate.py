"""Simulated indicator series with a planted raid effect, for tests, examples and benchmarks.

Everything produced here is labelled as simulated: the series name starts with
``simulated``, ``attrs["simulated"]`` is true, and a study run on such a series says so in
its notebook and in ``results.json``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._io import atomic_write_text

__all__ = ["simulate_daily_counts", "write_simulated_csv", "is_simulated"]


def simulate_daily_counts(
    *,
    start: str = "2021-01-01",
    n_days: int = 400,
    event: str = "2021-10-01",
    baseline: float = 200.0,
    level_ratio: float = 0.5,
    slope_ratio_per_day: float = 1.0,
    dow_amplitude: float = 0.2,
    ar: float = 0.3,
    sigma: float = 0.05,
    nb_alpha: float = 0.01,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate daily counts with a planted level (and slope) effect at ``event``.

    Parameters
    ----------
    start, n_days : str, int
        First day and length of the series.
    event : str
        Date of the planted event (period 0).
    baseline : float
        Mean count before the event on an average weekday.
    level_ratio : float
        Rate ratio of the jump at the event: 0.5 halves the mean.
    slope_ratio_per_day : float
        Rate ratio per day of the post-event trend change (1: none).
    dow_amplitude : float
        Size of the weekly cycle on the log scale.
    ar, sigma : float
        AR(1) coefficient and innovation s.d. of a latent log-scale error.
    nb_alpha : float
        NB2 overdispersion of the counts given the latent mean.
    seed : int
        Seed of the random generator.

    Returns
    -------
    DataFrame
        Columns ``date``, ``value`` (counts), ``series`` (``"simulated_counts"``) and
        ``mu`` (the true mean); ``attrs`` records the truth and ``simulated=True``.

    Notes
    -----
    .. math:: \\log \\mu_t = \\log b + \\beta_L D_t + \\beta_S (t - t_0) D_t
              + a \\sin(2 \\pi\\, \\mathrm{dow}_t / 7) + u_t,\\quad u_t = \\rho u_{t-1} + e_t

    with :math:`D_t = 1` from the event on, and :math:`y_t \\sim \\mathrm{NB2}(\\mu_t, \\alpha)`.

    Examples
    --------
    >>> df = simulate_daily_counts(n_days=60, event="2021-02-01", seed=1)
    >>> df["series"].iloc[0]
    'simulated_counts'
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n_days, freq="D")
    t0 = int(dates.searchsorted(pd.Timestamp(event)))
    t = np.arange(n_days)
    post = (t >= t0).astype(float)
    u = np.zeros(n_days)
    e = rng.normal(0.0, sigma, n_days)
    for i in range(1, n_days):
        u[i] = ar * u[i - 1] + e[i]
    log_mu = (
        np.log(baseline)
        + np.log(level_ratio) * post
        + np.log(slope_ratio_per_day) * (t - t0) * post
        + dow_amplitude * np.sin(2 * np.pi * dates.day_of_week.to_numpy() / 7)
        + u
    )
    mu = np.exp(log_mu)
    if nb_alpha > 0:
        lam = rng.gamma(shape=1.0 / nb_alpha, scale=mu * nb_alpha)
    else:
        lam = mu
    y = rng.poisson(lam)
    df = pd.DataFrame({"date": dates, "value": y.astype(int), "series": "simulated_counts", "mu": mu})
    df.attrs.update(
        simulated=True, event=str(pd.Timestamp(event).date()), level_ratio=level_ratio,
        slope_ratio_per_day=slope_ratio_per_day, seed=seed,
    )
    return df


def write_simulated_csv(path, **kwargs) -> pd.DataFrame:
    """Write :func:`simulate_daily_counts` as a generic ``date,value,series`` CSV (atomically).

    A second series, ``simulated_control``, with no effect and the same seasonality, is
    added for comparative designs.
    """
    treated = simulate_daily_counts(**kwargs)
    ctrl_kwargs = dict(kwargs)
    ctrl_kwargs.update(level_ratio=1.0, slope_ratio_per_day=1.0, seed=int(kwargs.get("seed", 0)) + 1)
    control = simulate_daily_counts(**ctrl_kwargs).assign(series="simulated_control")
    both = pd.concat([treated, control], ignore_index=True)[["date", "value", "series"]]
    text = both.assign(date=both["date"].dt.strftime("%Y-%m-%d")).to_csv(index=False, lineterminator="\n")
    atomic_write_text(path, text)
    return both


def is_simulated(series: pd.Series) -> bool:
    """True when a series is labelled as simulated (by ``attrs`` or by its name)."""
    if series.attrs.get("simulated"):
        return True
    return str(series.name or "").lower().startswith("simulated")
