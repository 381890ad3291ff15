"""Benchmark: a 300-specification curve for SPARKS against a loop of ``validate_parameters(...).fit()``.

On the SPARKS study (bundled data, the study's parameters otherwise) it times
``raidstudy.models.speccurve.specification_curve`` over a 300-specification grid
(5 pre-period lengths x 5 post-period lengths x 3 families x 2 inference methods x
2 control choices), then estimates a sample of the same specifications one by one, as a
user would without the curve: ``validate_parameters({...})`` (which loads the indicator),
``.fit()`` and the headline effects (``effects()``, its simulation draws cut to 100), in the
same process, and extrapolates the loop to all 300. It prints both times, their ratio and
the largest difference of the estimates between the two. Target: under 15 s for the curve.

BLAS threads: the curve solves hundreds of small least-squares problems; with OpenBLAS's
default of one thread per core they run many times slower on a machine whose cores are
busy (measured here: a 900 x 20 ``lstsq`` took 39 ms with the default threads under load,
0.2 ms with one thread). This script therefore sets ``OPENBLAS_NUM_THREADS=1`` (and its
OpenMP / MKL twins) unless they are already set, for both sides of the comparison;
``--blas-threads default`` leaves them alone.

Run:  .venv/bin/python benchmarks/bench_speccurve.py [--reps 3] [--loop 30] [--blas-threads default]
"""
from __future__ import annotations

import os
import sys

if "--blas-threads" not in sys.argv or sys.argv[sys.argv.index("--blas-threads") + 1] != "default":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import statistics
import time
import warnings

import numpy as np

GRID = {
    "pre_periods": [120, 180, 270, 365, 540],
    "post_periods": [30, 60, 90, 120, 180],
    "model_family": ["negbin", "quasipoisson", "gaussian"],
    "cov_type": ["ewc", "hac"],
    "control_feeds": ["", "xrelp2p"],
}


def main(reps: int = 3, n_loop: int = 30, blas: str = "1") -> dict:
    warnings.simplefilter("ignore")
    import raidstudy as rs
    from raidstudy.models.speccurve import specification_curve

    spec = rs.validate_parameters(event_id="sparks_2020")
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        curve = specification_curve(spec, GRID)
        times.append(time.perf_counter() - t)
    n = curve.n_specifications
    assert n == 300, n
    t_curve = statistics.median(times)

    rows = curve.table.iloc[np.linspace(0, n - 1, n_loop).round().astype(int)]
    diffs = []
    t = time.perf_counter()
    for _, r in rows.iterrows():
        choices = {c: r[c] for c in curve.choices}
        s = rs.validate_parameters({**spec.parameters, **choices})
        res = s.fit()
        eff = res.effects(alpha=spec.parameters["alpha"], n_sim=100)
        diffs.append(max(abs(eff["relative"]["pct"] - r["relative_estimate"]),
                         abs(eff["relative"]["pct_ci_low"] - r["relative_ci_low"]),
                         abs(eff["level"]["estimate"] - r["level_coef"]),
                         abs(eff["level"]["ci_high"] - r["level_coef_ci_high"])))
    t_loop = (time.perf_counter() - t) / len(rows) * n
    out = {"specifications": n, "estimated": curve.n_estimated("relative"), "curve_s": t_curve,
           "curve_s_all": times, "loop_s_extrapolated": t_loop, "loop_sample": len(rows),
           "ratio": t_loop / t_curve, "max_abs_diff": max(diffs),
           "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
           "median_relative_pct": curve.median("relative"),
           "share_excluding_zero": curve.share_excluding_zero("relative")}
    print(f"specification curve, SPARKS, {n} specifications ({out['estimated']} estimated), "
          f"BLAS threads: {out['blas_threads']}")
    print(f"  curve (one call):            {t_curve:7.2f} s  (median of {reps}: "
          + ", ".join(f"{x:.2f}" for x in times) + ")")
    print(f"  loop of validate().fit():    {t_loop:7.2f} s  (extrapolated from {len(rows)} specifications)")
    print(f"  ratio:                       {out['ratio']:7.1f}x")
    print(f"  largest difference (percent points / coefficient): {out['max_abs_diff']:.2e}")
    print(f"  target: curve under 15 s -> {'met' if t_curve < 15 else 'NOT met'}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--loop", type=int, default=30, help="specifications fitted one by one for the baseline")
    ap.add_argument("--blas-threads", default="1", choices=["1", "default"])
    a = ap.parse_args()
    main(a.reps, a.loop, a.blas_threads)
