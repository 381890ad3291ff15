"""Benchmark: the stacked study over every in-window catalogue event, against baselines in the same process.

    python benchmarks/bench_staggered.py [--reps 3]

Prints the median wall time of ``catalogue_study()`` (panel built from data/processed,
event checks, two stacked fits) and of its parts, and two ratios measured in the same
process: the stacked fit against a plain statsmodels OLS of the same stacked design with
the unit x event and period x event effects as dummies (cluster covariance), and the
Sun-Abraham fit on fixest's base_stagg against a statsmodels LSDV fit of the same model.
Target (issue 15): the stacked study under 10 s. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _median_time(fn, reps: int) -> tuple[float, object]:
    out, ts = None, []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def _ols_dummies(design: dict) -> object:
    import statsmodels.api as sm

    ent = pd.get_dummies(pd.Series(design["entity"]).astype(str), drop_first=False).to_numpy(dtype=float)
    oth_key = design["other"] if design.get("other") is not None else design["time"]
    oth = pd.get_dummies(pd.Series(oth_key).astype(str), drop_first=True).to_numpy(dtype=float)
    Z = np.column_stack([design["X"], ent, oth])
    w = design.get("weights")
    mod = sm.WLS(design["y"], Z, weights=w) if w is not None else sm.OLS(design["y"], Z)
    with warnings.catch_warnings():  # the dummies of several stacks are collinear; pinv handles it
        warnings.simplefilter("ignore")
        return mod.fit(method="pinv", cov_type="cluster", cov_kwds={"groups": design["clusters"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    from raidstudy.models.staggered import (
        SunAbraham,
        build_event_panel,
        catalogue_study,
    )

    catalogue_study()  # warm-up: imports and file caches
    t_study, st = _median_time(lambda: catalogue_study(), a.reps)
    t_build, _ = _median_time(lambda: build_event_panel(), a.reps)
    used = st.events[st.events["used"]]
    print(f"stacked study over {len(st.events)} in-window events ({len(used)} estimable: "
          f"{', '.join(used['event'])}): median {t_study:.2f} s of {a.reps} (panel build {t_build:.2f} s); "
          f"target < 10 s: {'met' if t_study < 10 else 'MISSED'}")
    model = st.by_target.model
    t_fit, _ = _median_time(lambda: model.fit(), a.reps)
    t_ols, ols = _median_time(lambda: _ols_dummies(model._design), a.reps)
    p = model._design["X"].shape[1]
    diff = float(np.max(np.abs(np.asarray(ols.params)[:p] - st.by_target._fit.params)))
    print(f"by-target stacked fit (linearmodels PanelOLS, {st.by_target.nobs} rows): {1e3 * t_fit:.0f} ms; "
          f"statsmodels WLS with dummies: {1e3 * t_ols:.0f} ms; ratio {t_fit / t_ols:.2f}x; "
          f"largest coefficient difference {diff:.1e}")
    csv = Path(__file__).resolve().parents[1] / "tests/models/validation/fixest_base_stagg/base_stagg.csv"
    if csv.is_file():
        df = pd.read_csv(csv)
        sa = SunAbraham(df, outcome="y", unit="id", time="year", cohort="year_treated", covariates="x1")
        t_sa, _ = _median_time(lambda: sa.fit(), a.reps)
        t_sm, _ = _median_time(lambda: _ols_dummies(sa._design), a.reps)
        print(f"Sun-Abraham on base_stagg (950 rows, 82 coefficients): {1e3 * t_sa:.0f} ms; statsmodels LSDV "
              f"{1e3 * t_sm:.0f} ms; ratio {t_sa / t_sm:.2f}x")


if __name__ == "__main__":
    main()
