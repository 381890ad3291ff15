"""Benchmark: the batch runner (`raidstudy batch`) against bare papermill, 2 workers against 1, Dask against local.

Every number is measured in this process, on the same fixture, in the same minutes:

1. Per-run overhead: the study notebook (``notebooks/02-event-study.ipynb``) run by a bare
   ``papermill.execute_notebook`` call (the baseline), by the runner's ``execute_notebook``
   (parameter validation, run record, staged results, HTML report) and by a one-run batch
   on one local worker (the worker process's start-up included). Interleaved, ``--reps`` times.
   The 10-run plan on one worker below gives the overhead a run pays inside a plan.
2. A ``--runs``-run plan (10 by default) on 1 local worker and on 2 (target >= 1.7 x).
3. The same plan on a ``dask.distributed.LocalCluster`` of 2 single-threaded worker
   processes against 2 local workers (target: within 20 %); the cluster's start-up is
   timed apart, since a real cluster is already running when a batch is sent to it.

The data are a SIMULATED daily series (400 days, written to a temporary folder), with
small study settings (``n_sim=100``, no placebos, no Fourier terms), so the whole benchmark
takes a few minutes.

Run:  .venv/bin/python benchmarks/bench_batch.py [--runs 10] [--reps 3] [--skip-dask]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/02-event-study.ipynb"


def study(sim_csv: Path, seed: int, out: Path) -> dict:
    return dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                event_date="2021-10-01", pre_periods=200, post_periods=90, n_sim=100, fourier=0, n_placebos=0,
                seed=seed, output_dir=str(out))


def bare_papermill(params: dict, out: Path) -> float:
    """The baseline: papermill alone, with the kernel settings the runner uses."""
    import papermill as pm

    from raidstudy.study.parameters import coerce_parameters
    from raidstudy.study.runs import INLINE_BACKEND, KERNEL, _kernel_env

    p = coerce_parameters(params)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with _kernel_env(MPLBACKEND=INLINE_BACKEND):
        pm.execute_notebook(str(ROOT / NOTEBOOK), str(out / "notebook.ipynb"), parameters=p, kernel_name=KERNEL,
                            progress_bar=False, cwd=str(ROOT), extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    return time.perf_counter() - t0


def timed(fn, *args, **kw) -> float:
    t0 = time.perf_counter()
    res = fn(*args, **kw)
    if isinstance(res, list):
        bad = [r for r in res if r["status"] != "complete"]
        if bad:
            raise SystemExit(f"benchmark run failed: {bad[0]}")
    return time.perf_counter() - t0


def main(runs: int, reps: int, skip_dask: bool) -> dict:
    from raidstudy.models.simulate import write_simulated_csv
    from raidstudy.study.runs import execute_notebook, run_batch

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        sim = tmp / "simulated_counts.csv"
        write_simulated_csv(sim, start="2021-01-01", n_days=400, event="2021-10-01", level_ratio=0.5, seed=3)
        # one warm-up run so that the first measurement does not pay for cold caches
        bare_papermill(study(sim, 1, tmp / "warm"), tmp / "warm")

        bare, runner, batch1 = [], [], []
        for i in range(reps):
            bare.append(bare_papermill(study(sim, 1, tmp / f"bare{i}"), tmp / f"bare{i}"))
            runner.append(timed(execute_notebook, NOTEBOOK, study(sim, 1, tmp / f"runner{i}")))
            batch1.append(timed(run_batch, NOTEBOOK, [study(sim, 1, tmp / f"batch{i}")], workers=1, progress=False))
        mb, mr, m1 = (statistics.median(x) for x in (bare, runner, batch1))
        print(f"one run, bare papermill        : {_fmt(bare)} s (median {mb:.2f} s)  <- baseline")
        print(f"one run, execute_notebook      : {_fmt(runner)} s (median {mr:.2f} s)  "
              f"{mr / mb:.2f} x, overhead {mr - mb:+.2f} s")
        print(f"one run, batch of 1, 1 worker  : {_fmt(batch1)} s (median {m1:.2f} s)  "
              f"{m1 / mb:.2f} x, overhead {m1 - mb:+.2f} s")
        out.update(bare=bare, runner=runner, batch1=batch1)

        plan = [study(sim, s, tmp / "w1" / str(s)) for s in range(1, runs + 1)]
        t1 = timed(run_batch, NOTEBOOK, plan, workers=1, progress=False, rerun=True)
        plan2 = [dict(r, output_dir=str(tmp / "w2" / str(r["seed"]))) for r in plan]
        t2 = timed(run_batch, NOTEBOOK, plan2, workers=2, progress=False, rerun=True)
        print(f"{runs}-run plan, 1 local worker   : {t1:.1f} s ({t1 / runs:.2f} s a run: {t1 / runs / mb:.2f} x bare "
              f"papermill, overhead {t1 / runs - mb:+.2f} s a run, the worker's start-up shared by the plan)")
        print(f"{runs}-run plan, 2 local workers  : {t2:.1f} s  speed-up {t1 / t2:.2f} x (target >= 1.7)")
        out.update(plan_1_worker=t1, plan_2_workers=t2, speedup=t1 / t2)

        if not skip_dask:
            from distributed import LocalCluster

            t0 = time.perf_counter()
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                t_up = time.perf_counter() - t0
                plan3 = [dict(r, output_dir=str(tmp / "dask" / str(r["seed"]))) for r in plan]
                td = timed(run_batch, NOTEBOOK, plan3, scheduler=cluster.scheduler_address, progress=False,
                           rerun=True)
            same = all((tmp / "dask" / str(s) / "results.json").read_bytes()
                       == (tmp / "w2" / str(s) / "results.json").read_bytes() for s in range(1, runs + 1))
            print(f"{runs}-run plan, Dask LocalCluster (2 worker processes): {td:.1f} s  "
                  f"{td / t2:.2f} x the 2 local workers (target <= 1.2); cluster start-up {t_up:.1f} s apart; "
                  f"results.json identical to the local runs: {same}")
            out.update(dask=td, dask_ratio=td / t2, cluster_startup=t_up, dask_identical=same)
    print(f"host: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    return out


def _fmt(xs) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="runs in the plan (default 10)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the one-run measurements (default 3)")
    ap.add_argument("--skip-dask", action="store_true", help="leave out the Dask comparison")
    a = ap.parse_args()
    os.chdir(ROOT)
    sys.exit(0 if main(a.runs, a.reps, a.skip_dask) else 1)
