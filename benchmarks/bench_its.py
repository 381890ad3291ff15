"""Benchmark: one negative-binomial ITS fit (day-of-week + two Fourier pairs, three years of daily data).

The data are SIMULATED (raidstudy.models.simulate.simulate_its), not real release counts.
Reports the median wall time of the default ``ITS(...).fit()`` with its confidence intervals
(design building, the EWC covariance and the critical values simulated for the design
included; the per-design cache is cleared before every repetition, so each one pays for its
simulation) against a bare statsmodels GLM fit of the same design (NB2 with the alpha the
engine estimated, HAC covariance), measured in the same run.

Run:  python benchmarks/bench_its.py [--reps 30]
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pandas as pd
import statsmodels.api as sm

from raidstudy import ITS
from raidstudy.models.its import critical
from raidstudy.models.simulate import simulate_its


def main(reps: int = 30) -> dict:
    d = simulate_its(family="negbin", n=3 * 365 + 1, event=800, seed=42)  # simulated data
    event = d.index[800]

    def engine():
        critical._REFERENCES.clear()
        critical._chi2_draws.cache_clear()
        r = ITS(d, outcome="y", event=event, family="negbin", fourier=2).fit()
        r.conf_int()
        return r

    def engine_hac():
        return ITS(d, outcome="y", event=event, family="negbin", fourier=2).fit(cov_type="hac")

    res = engine_hac()
    X = pd.DataFrame(res.model.design.X, columns=res.model.design.names, index=d.index)
    alpha = res.dispersion
    lags = res.maxlags

    def bare_glm():
        return sm.GLM(d["y"], X, family=sm.families.NegativeBinomial(alpha=alpha)).fit(
            cov_type="HAC", cov_kwds={"maxlags": lags})

    def bare_nb_mle():
        return sm.NegativeBinomial(d["y"], X, loglike_method="nb2").fit(disp=0, maxiter=100)

    def timeit(fn, n):
        fn()  # warm-up
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1000

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_engine = timeit(engine, reps)
        t_hac = timeit(engine_hac, reps)
        t_glm = timeit(bare_glm, reps)
        t_mle = timeit(bare_nb_mle, max(5, reps // 3))
    out = {"n_periods": len(d), "n_terms": X.shape[1], "reps": reps, "engine_ms": t_engine,
           "engine_hac_ms": t_hac, "statsmodels_glm_fixed_alpha_ms": t_glm, "statsmodels_nb_mle_ms": t_mle,
           "ratio_engine_to_glm": t_engine / t_glm}
    print(f"simulated daily series: {len(d)} periods, {X.shape[1]} terms (dow + 2 Fourier pairs), NB2")
    print(f"ITS(family='negbin', fourier=2).fit() + conf_int() median {t_engine:8.1f} ms  (EWC, critical values "
          "simulated; target < 100 ms)")
    print(f"ITS(...).fit(cov_type='hac')                      median {t_hac:8.1f} ms")
    print(f"statsmodels GLM NB2, alpha fixed, HAC({lags})        median {t_glm:8.1f} ms")
    print(f"statsmodels NegativeBinomial MLE (alpha estimated) median {t_mle:8.1f} ms")
    print(f"ratio engine / bare GLM: {t_engine / t_glm:.2f}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    main(ap.parse_args().reps)
