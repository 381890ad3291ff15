"""QLR (sup-Wald) scan over every admissible date of a three-year daily series (SIMULATED data).

Measures BreakScan (gaussian, trend + day of week, Bartlett HAC Wald at each date) against a
naive loop that refits the OLS model with statsmodels at every admissible date (HAC covariance,
same lags), in the same run. Target (issue 16): the scan under 2 s.

    .venv/bin/python benchmarks/bench_breaks.py [--naive-dates N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm

from raidstudy.models.breaks import BreakScan


def series(n: int = 1096, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2018-01-01", periods=n, freq="D")
    t = np.arange(n)
    e = np.zeros(n)
    z = rng.standard_normal(n)
    for i in range(n):
        e[i] = (0.6 * e[i - 1] if i else 0.0) + z[i]
    mu = 7.0 + 0.0003 * t + 0.2 * (idx.day_of_week.to_numpy() >= 5) - 0.5 * (t >= 700)
    return pd.Series(mu + 0.3 * e, index=idx, name="y")


def naive(y: pd.Series, dates: np.ndarray, lags: int) -> np.ndarray:
    n = len(y)
    t = np.arange(n, dtype=float)
    wd = y.index.day_of_week.to_numpy()
    base = np.column_stack([np.ones(n), t] + [(wd == d).astype(float) for d in range(1, 7)])
    out = np.empty(len(dates))
    for i, k in enumerate(dates):
        X = np.column_stack([base, (t >= k).astype(float)])
        r = sm.OLS(y.to_numpy(), X).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
        out[i] = r.params[-1] ** 2 / r.cov_params()[-1, -1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--naive-dates", type=int, default=0, help="refit only this many dates (0 = all)")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    y = series()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        res = BreakScan(y, maxlags=None).fit()
        times.append(time.perf_counter() - t0)
    scan = res.scan
    lags = res.lags
    dates = scan.breakpoint.to_numpy()
    if a.naive_dates:
        dates = dates[np.linspace(0, len(dates) - 1, a.naive_dates).astype(int)]
    t0 = time.perf_counter()
    ref = naive(y, dates, lags)
    t_naive = time.perf_counter() - t0
    t_naive_all = t_naive * len(scan) / len(dates)
    mine = scan.set_index("breakpoint").loc[dates, "statistic"].to_numpy()
    err = float(np.max(np.abs(mine / ref - 1)))
    med = statistics.median(times)
    print(f"series: {len(y)} days, day of week, {len(scan)} admissible dates, Bartlett HAC with {lags} lags")
    print(f"BreakScan.fit (median of {a.runs}): {med:.3f} s  (target < 2 s)")
    print(f"naive statsmodels refits: {t_naive:.2f} s for {len(dates)} dates"
          + (f" (-> {t_naive_all:.1f} s for all)" if len(dates) < len(scan) else ""))
    print(f"speed-up: {t_naive_all / med:.0f}x; max relative difference of the statistics: {err:.1e}")


if __name__ == "__main__":
    main()
