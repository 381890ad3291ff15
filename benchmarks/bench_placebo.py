"""Benchmark: the batched in-time placebo set against a loop of statsmodels refits.

On the SPARKS study (real data: the Scene release counts in data/processed, the study's
default design: NB2, day of week, 365 + 120 daily periods, one transition period) it times
``raidstudy.models.placebo.in_time_placebos`` over the whole history (every independent
window AND the dense set of 500 overlapping windows, the real fit and the table included),
then refits the very same windows one by one with statsmodels' discrete
``NegativeBinomial(loglike_method="nb2")``, the joint maximum-likelihood fit of beta and
alpha that the engine's NB2 computes (Newton, tight tolerance, HAC covariance with the
rule-of-thumb lags, since statsmodels has no EWC), in the same process. It prints both
times, their ratio and the largest absolute difference of the ``level`` estimates.
The statsmodels loop gets its design matrices built in advance (not timed).

Run:  .venv/bin/python benchmarks/bench_placebo.py [--reps 3] [--engine-loop]

``--engine-loop`` also times ``ITS(window).fit()`` per window and reports the largest
differences of the estimates and standard errors against the batched ones.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm

import raidstudy as rs
from raidstudy.data.events import load_events
from raidstudy.models.its import ITS
from raidstudy.models.placebo import in_time_placebos


def main(reps: int = 3, engine_loop: bool = False) -> dict:
    warnings.simplefilter("ignore")
    spec = rs.validate_parameters(event_id="sparks_2020")
    p = spec.parameters
    full = pd.DataFrame({spec.outcome_column: spec.full_outcome})
    its_kw, fit_kw = spec.its_kwargs(), {k: v for k, v in spec.fit_kwargs().items() if k != "maxlags"}
    fit_kw["cov_type"] = "ewc"
    events = load_events()

    def batched():
        return in_time_placebos(full, event=spec.event_date, pre_periods=p["pre_periods"],
                                post_periods=p["post_periods"], its_kwargs=its_kw, fit_kwargs=fit_kw,
                                other_events=events, other_events_rule="flag")

    res = batched()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        batched()
        times.append(time.perf_counter() - t0)
    t_batch = statistics.median(times)

    fitted = res.table[res.table["estimate"].notna()].reset_index(drop=True)
    W = p["pre_periods"] + p["post_periods"]
    idx = full.index
    designs = []
    for r in fitted.itertuples():
        s = idx.get_loc(r.start)
        m = ITS(full.iloc[s:s + W], event=r.date, **its_kw)
        d = m.design
        designs.append((d.y[d.fit], d.X[d.fit], d.names, m))

    def sm_fit(y, X):
        # columns scaled to a maximum of 1 (the trend runs to 484): Newton from statsmodels'
        # Poisson start then converges on every window; the estimates are scaled back
        sc = np.abs(X).max(axis=0)
        lags = int(np.floor(4 * (len(y) / 100) ** (2 / 9)))
        model = sm.NegativeBinomial(y, X / sc, loglike_method="nb2")
        cov = {"cov_type": "HAC", "cov_kwds": {"maxlags": lags}}
        f = model.fit(method="newton", maxiter=100, tol=1e-12, disp=0, **cov)
        if not np.all(np.isfinite(f.params)):  # Newton from the Poisson start overshot: BFGS first
            fallbacks.append(1)
            b = model.fit(method="bfgs", maxiter=2000, gtol=1e-8, disp=0)
            f = model.fit(start_params=b.params, method="newton", maxiter=100, tol=1e-12, disp=0, **cov)
        return f.params[:-1] / sc

    fallbacks: list[int] = []

    t0 = time.perf_counter()
    sm_level = [sm_fit(y, X)[names.index("level")] for y, X, names, _ in designs]
    t_sm = time.perf_counter() - t0
    dd = np.abs(np.asarray(sm_level) - fitted["estimate"].to_numpy())
    diff = float(np.max(dd))  # NaN if statsmodels failed on a window

    out = {"windows": len(fitted), "n_independent": res.n_independent, "n_dense": res.n_dense,
           "batched_s": t_batch, "statsmodels_loop_s": t_sm, "ratio": t_sm / t_batch,
           "max_abs_diff_level_vs_statsmodels": diff, "statsmodels_newton_restarts": len(fallbacks)}
    print(f"SPARKS (real data): {len(fitted)} placebo windows of {W} daily periods "
          f"({res.n_independent} independent, {res.n_dense} dense), NB2, dow, EWC covariance")
    print(f"batched in_time_placebos (median of {reps}): {t_batch:8.3f} s")
    print(f"statsmodels NegativeBinomial nb2 loop:   {t_sm:8.3f} s")
    print(f"ratio statsmodels / batched:             {t_sm / t_batch:8.1f} x")
    print(f"max |level(batched) - level(statsmodels)|: {diff:.2e} ({len(fallbacks)} windows "
          f"needed statsmodels' BFGS start)")
    if engine_loop:
        t0 = time.perf_counter()
        fits = [m.fit(**fit_kw) for *_, m in designs]
        t_eng = time.perf_counter() - t0
        de = float(np.max(np.abs([f.params["level"] for f in fits] - fitted["estimate"].to_numpy())))
        ds = float(np.max(np.abs([f.std_errors["level"] for f in fits] - fitted["std_error"].to_numpy())))
        out.update(engine_loop_s=t_eng, max_abs_diff_vs_engine_estimate=de, max_abs_diff_vs_engine_se=ds)
        print(f"engine loop ITS(window).fit():           {t_eng:8.3f} s ({t_eng / t_batch:.1f} x the batch)")
        print(f"max |batched - engine|: estimate {de:.2e}, std error {ds:.2e}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--engine-loop", action="store_true")
    a = ap.parse_args()
    main(a.reps, a.engine_loop)
