"""Coverage of ITS confidence intervals on simulated series with a known truth.

A *method* is a dict of keyword arguments of :meth:`raidstudy.models.its.ITS.fit` (``{}`` is
the default fit), or ``{"arma": (p, 0, q)}`` for the regression with ARMA errors
(:func:`raidstudy.models.its.arma.fit_arma_errors`). A *scenario* is a dict of keyword
arguments of :func:`raidstudy.models.simulate.simulate_calibrated`; ``sigma="match"``
picks the innovation SD that gives the calibrated series' stationary SD.

For every scenario and replication one series is simulated (seeded by ``(seed, scenario,
replication)``, so the results do not depend on ``n_jobs``), and every method is fitted to
that same series. Reported per method and scenario: the share of 95 % (``1 - alpha``)
intervals of the level change that contain the true level, its Monte Carlo standard error
``sqrt(c (1 - c) / n)``, the median interval width, the share of failed fits, and the same
for the relative effect over the post window (``ITSResults.effects()["relative"]``, true
value ``sum(observed) / sum(true counterfactual mean) - 1`` of that series).

Run ``python -m raidstudy.models.coverage --reps 500 --jobs 2 --out docs/coverage.md``.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import time
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.models.simulate import Calibration, calibrate, simulate_calibrated

__all__ = ["METHODS", "SCENARIOS", "coverage_study", "main", "sparks_calibration", "summarise", "to_markdown",
           "write_report"]

_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: Methods compared (name -> fit keywords).
METHODS: dict[str, dict[str, Any]] = {
    "default": {},
    "hac plug-in": {"cov_type": "hac", "maxlags": None},
    "hac rule": {"cov_type": "hac", "maxlags": "rule"},
    "hac prewhitened": {"cov_type": "hac", "prewhite": True},
    "newey": {"cov_type": "newey"},
    "arma(1,1) errors": {"arma": (1, 0, 1)},
}

#: Scenarios (name -> simulate_calibrated keywords).
SCENARIOS: dict[str, dict[str, Any]] = {
    "sparks": {},
    "ar1 phi=0.37": {"phi": 0.37, "theta": 0.0, "sigma": "match"},
    "post variance x2.3": {"post_innovation_ratio": 2.3},
}

SCENARIO_TEXT = {
    "sparks": "SPARKS-calibrated: truth = the headline negbin fit's linear predictor (its level and slope "
              "planted), the same 485-day grid with the same 34 missing days and 1 excluded transition day, "
              "Poisson counts around exp(eta + u - var(u)/2), u the ARMA(1,1) fitted to the headline log "
              "residuals log((y + 0.5)/mu)",
    "ar1 phi=0.37": "textbook mild autocorrelation: the same truth, grid and missing days, u an AR(1) with "
                    "phi = 0.37 whose stationary SD equals that of the SPARKS ARMA(1,1)",
    "post variance x2.3": "the SPARKS-calibrated ARMA(1,1), but the post-event innovations have 2.3 times "
                          "the pre-event innovation variance",
}


def sparks_calibration(event_id: str = "sparks_2020") -> Calibration:
    """The simulator calibrated on the headline study of ``event_id`` (bundled data)."""
    import raidstudy as rs

    spec = rs.validate_parameters(event_id=event_id)
    model = spec.build_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(cov_type="nonrobust")  # the coefficients do not depend on the covariance
    return calibrate(res)


def _sim_kwargs(cal: Calibration, spec: dict[str, Any]) -> dict[str, Any]:
    kw = dict(spec)
    if kw.get("sigma") == "match":
        phi = kw.get("phi", cal.phi)
        theta = kw.get("theta", cal.theta)
        kw["sigma"] = cal.marginal_sd() / math.sqrt((1 + 2 * phi * theta + theta ** 2) / (1 - phi ** 2))
    return kw


def _seed(seed: int, scenario: str, rep: int) -> list[int]:
    return [int(seed), zlib.crc32(scenario.encode()), int(rep)]


def _one_method(model, method: dict[str, Any], cal: Calibration, y: np.ndarray, rel_truth: float,
                alpha: float, relative: bool, rep: int) -> dict[str, Any]:
    rec: dict[str, Any] = {"failed": False, "estimator": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if "arma" in method:
                from raidstudy.models.its.arma import fit_arma_errors

                r = fit_arma_errors(model, order=tuple(method["arma"]), alpha=alpha, arma_se=False)
                lv = r.level(alpha, term=cal.level_term)
                lo, hi, est = lv["ci_low"], lv["ci_high"], lv["estimate"]
                rec["estimator"] = (f"ARMA{tuple(method['arma'])} errors on log(y + 1): exact ML, coefficients from the "
                                    "SARIMAX Kalman filter (GLS); normal critical values")
                rec["converged"] = r.converged
                rec["phi"] = float(r.params.get("ar.L1", np.nan))
                rel = None
            else:
                r = model.fit(**method)
                ci = r.conf_int(alpha).loc[cal.level_term]
                lo, hi, est = float(ci["lower"]), float(ci["upper"]), float(r.params[cal.level_term])
                rec["estimator"] = r.cov_description
                rec["converged"] = bool(r.converged)
                rel = r.effects(alpha=alpha, n_sim=1000, seed=rep)["relative"] if relative else None
    except Exception as exc:  # noqa: BLE001 - a failed fit is a result of the study
        rec.update(failed=True, error=f"{type(exc).__name__}: {exc}"[:200])
        return rec
    if not (np.isfinite(lo) and np.isfinite(hi)) or not rec.get("converged", True):
        rec["failed"] = True
        return rec
    rec.update(est=est, lo=lo, hi=hi, covered=bool(lo <= cal.level <= hi), width=hi - lo)
    if rel is not None:
        rlo, rhi = float(rel["ci_low"]), float(rel["ci_high"])
        rec.update(rel_est=float(rel["estimate"]), rel_covered=bool(rlo <= rel_truth <= rhi), rel_width=rhi - rlo,
                   rel_truth=rel_truth)
    return rec


def _run_chunk(task: tuple) -> list[dict[str, Any]]:
    cal, scen_name, sim_kw, methods, reps, seed, alpha, relative = task
    out = []
    for rep in reps:
        df = simulate_calibrated(cal, seed=_seed(seed, scen_name, rep), **sim_kw)
        y = df[cal.outcome].to_numpy()
        rel_truth = cal.true_relative(y)
        try:
            model = cal.model(df)
        except Exception as exc:  # noqa: BLE001
            for mname in methods:
                out.append({"scenario": scen_name, "method": mname, "rep": rep, "failed": True,
                            "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        for mname, mkw in methods.items():
            rec = _one_method(model, mkw, cal, y, rel_truth, alpha, relative, rep)
            rec.update(scenario=scen_name, method=mname, rep=rep)
            out.append(rec)
    return out


def coverage_study(
    *,
    scenarios: dict[str, dict[str, Any]] | None = None,
    methods: dict[str, dict[str, Any]] | None = None,
    n_rep: int = 500,
    seed: int = 0,
    alpha: float = 0.05,
    n_jobs: int = 1,
    calibration: Calibration | None = None,
    relative: bool = True,
    chunk: int = 10,
    return_records: bool = False,
    partial_csv: str | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage of the level change (and the relative effect) by method x scenario.

    Parameters
    ----------
    scenarios, methods : dict
        Defaults :data:`SCENARIOS` and :data:`METHODS`.
    n_rep : int
        Replications per scenario (every method sees the same simulated series).
    seed : int
        The study is deterministic given ``seed`` (whatever ``n_jobs``).
    n_jobs : int
        Worker processes (a process pool when > 1). The workers are *spawned* with
        single-threaded BLAS (several processes each running multi-threaded OpenBLAS on shared
        cores made the ARMA fits many times slower), so a script calling this with
        ``n_jobs > 1`` needs the ``if __name__ == "__main__":`` guard.
    calibration : Calibration, optional
        Default: :func:`sparks_calibration`.
    relative : bool
        Also score the relative effect over the post window (ITS methods only).
    partial_csv : str, optional
        Rewrite the per-replication records here after every chunk (for long runs; see
        :func:`summarise` to tabulate them).

    Returns
    -------
    DataFrame
        One row per scenario and method: ``estimator`` (the covariance in words), ``n`` (fits
        that succeeded), ``coverage``, ``mc_se``, ``median_width``, ``failed``, ``median_bias``,
        and ``rel_coverage``, ``rel_mc_se``, ``rel_median_width`` for the relative effect.
        With ``return_records`` also the per-replication records.
    """
    scenarios = dict(SCENARIOS if scenarios is None else scenarios)
    methods = dict(METHODS if methods is None else methods)
    cal = sparks_calibration() if calibration is None else calibration
    # chunks of replications, interleaved over scenarios so that a partial run covers all of them
    tasks = []
    kws = {sname: _sim_kwargs(cal, sspec) for sname, sspec in scenarios.items()}
    for start in range(0, n_rep, chunk):
        for sname in scenarios:
            tasks.append((cal, sname, kws[sname], methods, list(range(start, min(start + chunk, n_rep))), seed,
                          alpha, relative))
    records: list[dict[str, Any]] = []

    def collect(part: list[dict[str, Any]]) -> None:
        records.extend(part)
        if partial_csv is not None:
            pd.DataFrame.from_records(records).to_csv(partial_csv, index=False)

    if n_jobs > 1:
        # fresh worker processes with single-threaded BLAS: n_jobs processes each running a
        # multi-threaded OpenBLAS on shared cores are many times slower than one thread each
        for var in _BLAS_VARS:
            os.environ.setdefault(var, "1")
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("spawn")) as ex:
            for part in ex.map(_run_chunk, tasks):
                collect(part)
    else:
        for task in tasks:
            collect(_run_chunk(task))
    rec = pd.DataFrame.from_records(records)
    table, rec = summarise(rec, cal, scenarios=list(scenarios), methods=list(methods))
    table.attrs.update({"n_rep": n_rep, "seed": seed, "alpha": alpha, "calibration": cal.describe()})
    return (table, rec) if return_records else table


def summarise(rec: pd.DataFrame, cal: Calibration, *, scenarios: list[str] | None = None,
              methods: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The coverage table from per-replication records (also those of a partial run)."""
    scenarios = scenarios or list(dict.fromkeys(rec["scenario"]))
    methods = methods or list(dict.fromkeys(rec["method"]))
    rec = rec.copy()
    rec["scenario"] = pd.Categorical(rec["scenario"], categories=scenarios)
    rec["method"] = pd.Categorical(rec["method"], categories=methods)
    rec = rec.sort_values(["scenario", "method", "rep"]).reset_index(drop=True)
    rows = []
    for (sname, mname), g in rec.groupby(["scenario", "method"], observed=True, sort=True):
        failed = g["failed"].astype(bool)
        ok = g[~failed]
        n = len(ok)
        c = float(ok["covered"].astype(bool).mean()) if n else float("nan")
        row = {"scenario": sname, "method": mname,
               "estimator": ok["estimator"].iloc[0] if n else None,
               "n": n, "coverage": c, "mc_se": math.sqrt(c * (1 - c) / n) if n else float("nan"),
               "median_width": float(ok["width"].median()) if n else float("nan"),
               "median_bias": float((ok["est"] - cal.level).median()) if n else float("nan"),
               "failed": float(failed.mean())}
        if "rel_covered" in ok and ok["rel_covered"].notna().any():
            r = ok[ok["rel_covered"].notna()]
            rc = float(r["rel_covered"].astype(bool).mean())
            row.update(rel_coverage=rc, rel_mc_se=math.sqrt(rc * (1 - rc) / len(r)),
                       rel_median_width=float(r["rel_width"].median()))
        else:
            row.update(rel_coverage=float("nan"), rel_mc_se=float("nan"), rel_median_width=float("nan"))
        rows.append(row)
    return pd.DataFrame(rows), rec


def _fmt(x: float, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def to_markdown(table: pd.DataFrame) -> str:
    """The coverage table as Markdown (one row per scenario and method)."""
    lines = [("| scenario | method | n | coverage (level) | MC SE | median width | failed | "
              "coverage (relative) | MC SE | median width (relative) |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['scenario']} | {r['method']} | {int(r['n'])} | {_fmt(r['coverage'])} | "
                     f"{_fmt(r['mc_se'])} | {_fmt(r['median_width'])} | {_fmt(r['failed'])} | "
                     f"{_fmt(r['rel_coverage'])} | {_fmt(r['rel_mc_se'])} | {_fmt(r['rel_median_width'])} |")
    return "\n".join(lines)


def _estimators(table: pd.DataFrame) -> str:
    seen = {}
    for _, r in table.iterrows():
        seen.setdefault(r["method"], r["estimator"])
    return "\n".join(f"- **{m}**: {METHODS.get(m, '')!s} -> {e}" for m, e in seen.items())


NOTES = """\
- **coverage**: share of the successful fits whose interval contains the true value; **MC SE**:
  its Monte Carlo standard error sqrt(c (1 - c) / n), so an honest 95 % method lies within about
  0.95 +- 2 x 0.0097 with n = 500; **median width**: of the interval of the level change (log
  rate ratio) or of the relative effect; **failed**: share of replications whose fit raised, gave
  non-finite limits or did not converge (left out of the coverage).
- **level**: the coefficient of the level change; true value the planted level of the truth.
- **relative**: `ITSResults.effects()["relative"]` (sum of the observed counts over the post
  window divided by the sum of the model's counterfactual mean, minus 1); true value the same
  ratio with the simulator's true counterfactual mean, for that replication's observed counts.
  Not computed for the ARMA-errors model (a log-scale regression without a count
  counterfactual).
- Every method is fitted to the same simulated series (common random numbers), so differences
  between methods are more precise than the MC SEs suggest.
"""


def write_report(path: str, table: pd.DataFrame, *, reps: int, seed: int, jobs: int, alpha: float,
                 elapsed: float | None, scenarios: dict[str, Any] | None = None, extra: str = "") -> str:
    """Write the Markdown report of a coverage run (``docs/coverage.md``)."""
    from raidstudy.io import atomic_write_text

    cal = table.attrs["calibration"]
    n = int(table["n"].max()) if len(table) else 0
    cmd = f"python -m raidstudy.models.coverage --reps {reps} --seed {seed} --jobs {jobs} --out {path}"
    took = f"; {elapsed / 60:.0f} min with {jobs} processes" if elapsed is not None else ""
    text = "\n".join([
        "# Coverage of ITS intervals on simulated series",
        "",
        (f"Generated by `{cmd}` ({reps} replications per scenario, seed {seed}, "
         f"{100 * (1 - alpha):g} % intervals{took}). Deterministic given the seed, whatever `--jobs`."),
        "",
        "## Calibration",
        "",
        (f"Calibrated on `{cal['source']}` ({cal['family']}, {cal['periods']} periods {cal['start'][:10]} to "
         f"{cal['end'][:10]}, event {cal['event'][:10]}, {cal['n_missing']} missing, {cal['n_excluded']} excluded): "
         f"true level {cal['level']:.4f}, slope {cal['slope']:.5f}; ARMA(1,1) of the log residuals "
         f"phi = {cal['phi']:.3f}, theta = {cal['theta']:.3f}, innovation SD {cal['sigma']:.4f} "
         f"(stationary SD {cal['marginal_sd']:.4f})."),
        "",
        "## Scenarios",
        "",
        *[f"- **{k}**: {SCENARIO_TEXT.get(k, str(v))}" for k, v in (scenarios or SCENARIOS).items()],
        "",
        "## Methods",
        "",
        _estimators(table),
        "",
        f"## Results (n = {n} successful fits per cell at most)",
        "",
        to_markdown(table),
        "",
        "## Definitions",
        "",
        NOTES,
        extra,
    ])
    atomic_write_text(path, text.rstrip("\n") + "\n")
    return text


def _event_study_rep(task: tuple) -> tuple[list[tuple[int, bool]], float]:
    cal, seed, rep, alpha = task
    from raidstudy.models.its import EventStudy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = EventStudy.from_model(cal.model(simulate_calibrated(cal, seed=_seed(seed, "event study", rep)))).fit()
        path = res.path(alpha)
        lead_p = res.lead_test()["p_value"]
    hits = []
    for b in path[path["kind"] == "post"].itertuples():
        k = np.arange(b.first, b.last + 1)
        truth = float(np.mean(cal.level + cal.slope * k))  # the planted log rate ratio, averaged over the bin
        hits.append((int(b.bin), bool(b.ci_low <= truth <= b.ci_high)))
    return hits, float(lead_p)


def event_study_coverage(*, n_rep: int = 200, seed: int = 0, alpha: float = 0.05, n_jobs: int = 1,
                         calibration: Calibration | None = None) -> pd.DataFrame:
    """Coverage of the event-study bins' intervals on the SPARKS-calibrated simulator.

    Each replication simulates a series from the calibration, fits
    :class:`~raidstudy.models.its.EventStudy` with the default covariance and checks, bin by
    bin, whether the interval contains the planted effect averaged over the bin (level plus
    slope times the periods from the event). Returns one row per post-event bin (``bin``,
    ``coverage``, ``mc_se``, ``n``); ``attrs["lead_test_rejection"]`` is the share of
    replications whose lead test rejects at ``alpha`` (the truth has no leads).
    """
    cal = calibration or sparks_calibration()
    tasks = [(cal, seed, rep, alpha) for rep in range(n_rep)]
    if n_jobs > 1:
        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as ex:
            out = list(ex.map(_event_study_rep, tasks, chunksize=max(1, n_rep // (4 * n_jobs))))
    else:
        out = [_event_study_rep(t) for t in tasks]
    hits: dict[int, list[bool]] = {}
    for h, _ in out:
        for b, ok in h:
            hits.setdefault(b, []).append(ok)
    rows = [{"bin": b, "n": len(v), "coverage": float(np.mean(v)),
             "mc_se": float(np.sqrt(np.mean(v) * (1 - np.mean(v)) / len(v)))} for b, v in sorted(hits.items())]
    table = pd.DataFrame(rows)
    table.attrs["lead_test_rejection"] = float(np.mean([p < alpha for _, p in out]))
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m raidstudy.models.coverage", description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--scenarios", nargs="*", default=None, help="subset of: " + ", ".join(SCENARIOS))
    ap.add_argument("--methods", nargs="*", default=None, help="subset of: " + ", ".join(METHODS))
    ap.add_argument("--out", default=None, help="write the report (Markdown) here")
    ap.add_argument("--csv", default=None, help="write the per-replication records here (rewritten after every chunk)")
    ap.add_argument("--from-csv", default=None, help="tabulate the records of an earlier (or partial) run instead")
    ap.add_argument("--event-study", action="store_true",
                    help="coverage of the event-study bins on the SPARKS-calibrated simulator instead")
    a = ap.parse_args(argv)
    if a.event_study:
        t = event_study_coverage(n_rep=a.reps, seed=a.seed, alpha=a.alpha, n_jobs=a.jobs)
        print(t.to_string(index=False))
        print(f"mean coverage {t['coverage'].mean():.3f}, bins {t['coverage'].min():.3f}-{t['coverage'].max():.3f}; "
              f"lead test rejects in {t.attrs['lead_test_rejection']:.3f} of the replications")
        return 0
    scen = {k: SCENARIOS[k] for k in a.scenarios} if a.scenarios else None
    meth = {k: METHODS[k] for k in a.methods} if a.methods else None
    t0 = time.perf_counter()
    if a.from_csv:
        cal = sparks_calibration()
        rec = pd.read_csv(a.from_csv)
        table, rec = summarise(rec, cal, scenarios=list(scen or SCENARIOS), methods=list(meth or METHODS))
        table.attrs.update({"calibration": cal.describe()})
        elapsed = None
    else:
        table, rec = coverage_study(scenarios=scen, methods=meth, n_rep=a.reps, seed=a.seed, alpha=a.alpha,
                                    n_jobs=a.jobs, return_records=True, partial_csv=a.csv)
        elapsed = time.perf_counter() - t0
        if a.csv:
            rec.to_csv(a.csv, index=False)
    print(to_markdown(table))
    if elapsed is not None:
        print(f"\n{a.reps} replications per scenario, {elapsed:.0f} s with {a.jobs} process(es)", file=sys.stderr)
    if a.out:
        write_report(a.out, table, reps=a.reps, seed=a.seed, jobs=a.jobs, alpha=a.alpha, elapsed=elapsed,
                     scenarios=scen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
