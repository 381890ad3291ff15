"""`raidstudy batch` stops and resumes cleanly (issue 14, parts 3 and 5).

Real batches of a small notebook run in a subprocess: killed with SIGKILL, stopped with
Ctrl-C (SIGINT), resumed, and run on a Dask LocalCluster started here. The notebook is
small but real: it validates its parameters, fits the study's model on a simulated series
and writes its results with ``write_study``, as the study notebooks do.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from raidstudy.paths import repo_root
from raidstudy.study.runs import run_is_complete, summarise_runs

psutil = pytest.importorskip("psutil")

BODY = '''\
import os, pathlib, time
from raidstudy.study.parameters import PARAMETERS, validate_parameters
from raidstudy.study.artefacts import study_results, write_study
spec = validate_parameters({k: globals()[k] for k in PARAMETERS})
if seed == 13:
    raise RuntimeError("planted failure")
write_study(spec, study_results(spec, spec.fit()))
markers = os.environ.get("RAIDSTUDY_TEST_MARKERS")
if markers:
    pathlib.Path(markers, f"{seed}.pid").write_text(str(os.getpid()))
if str(seed) in os.environ.get("RAIDSTUDY_TEST_SLOW_SEEDS", "").split(","):
    time.sleep(120)  # results written, run not finished: the moment an interruption hurts most
'''


def tiny_notebook(path: Path) -> Path:
    """A papermill notebook: the parameters cell, then a cell that runs the study's model and
    writes its results (``write_study``), fails when seed == 13, and sleeps after writing its
    results for the seeds listed in RAIDSTUDY_TEST_SLOW_SEEDS."""
    import nbformat

    from raidstudy.study.parameters import PARAMETERS

    params = nbformat.v4.new_code_cell("\n".join(f"{k} = {v.default!r}" for k, v in PARAMETERS.items()))
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(BODY)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def base_parameters(sim_csv) -> dict:
    return dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                event_date="2021-10-01", pre_periods=200, post_periods=90, n_sim=100, fourier=0, n_placebos=0)


@pytest.fixture
def batch_root():
    """A batch folder under results/ (plans must write inside the repository), removed afterwards."""
    rel = f"results/.test-batch-{uuid.uuid4().hex[:10]}"
    yield rel
    shutil.rmtree(repo_root() / rel, ignore_errors=True)


def write_plan(tmp_path, root, sim_csv, seeds) -> Path:
    plan = {"output_root": root, "base": base_parameters(sim_csv), "grid": {"seed": list(seeds)}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def start_batch(plan, nb, *args, env=None):
    cmd = [sys.executable, "-m", "raidstudy.cli", "batch", str(plan), "--notebook", str(nb), *args]
    return subprocess.Popen(cmd, cwd=repo_root(), env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the batch ended before {what} (exit {proc.returncode}):\n{out}\n{err}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def descendants(pid):
    return psutil.Process(pid).children(recursive=True)


def assert_all_gone(procs, timeout=20.0):
    """Every process in ``procs`` (workers, kernels) has ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    assert not alive, f"left running: {[(p.pid, ' '.join(p.cmdline()[:4])) for p in alive]}"


def run_dir(root, seed) -> Path:
    return repo_root() / root / str(seed)


def status_of(d: Path):
    return json.loads((d / "run.json").read_text())["status"] if (d / "run.json").exists() else None


@pytest.mark.heavy(seconds=20)
def test_sigkill_leaves_no_process_and_no_complete_looking_result_and_a_rerun_completes_the_rest(
        sim_csv, tmp_path, batch_root):
    nb = tiny_notebook(tmp_path / "tiny.ipynb")
    plan = write_plan(tmp_path, batch_root, sim_csv, [1, 2, 3, 4])
    markers = tmp_path / "markers"
    markers.mkdir()
    # 2 workers: seed 1 finishes, 2 and 3 write their results and hang, 4 waits in the queue
    proc = start_batch(plan, nb, "--workers", "2", "-q",
                       env={"RAIDSTUDY_TEST_SLOW_SEEDS": "2,3", "RAIDSTUDY_TEST_MARKERS": str(markers)})
    try:
        wait_for(lambda: all((markers / f"{s}.pid").exists() for s in (2, 3)), 90, "runs 2 and 3 to hang", proc)
        kernels = [psutil.Process(int((markers / f"{s}.pid").read_text())) for s in (2, 3)]
        procs = descendants(proc.pid)
        assert {k.pid for k in kernels} <= {p.pid for p in procs}
        for s in (2, 3):  # the notebook wrote its results, but the run is not finished: nothing visible yet
            assert status_of(run_dir(batch_root, s)) == "running"
            assert not (run_dir(batch_root, s) / "results.json").exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert_all_gone(procs)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(1.0)  # had a queued run been handed to a surviving worker, it would start now
    assert run_is_complete(run_dir(batch_root, 1))
    for s in (2, 3):
        d = run_dir(batch_root, s)
        assert status_of(d) == "interrupted" and not (d / "results.json").exists() and not run_is_complete(d)
    assert not run_dir(batch_root, 4).exists(), "a queued run started after the batch was killed"
    table = summarise_runs([run_dir(batch_root, s) for s in (1, 2, 3, 4)])
    assert list(table["status"]) == ["complete", "interrupted", "interrupted", "missing"]
    assert table.loc[1:, "level"].isna().all()

    # The rerun skips what is complete for the same inputs and runs the rest.
    kept = (run_dir(batch_root, 1) / "run.json").read_bytes()
    done = start_batch(plan, nb, "--workers", "2")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert "skipped 1 run already complete" in out
    assert (run_dir(batch_root, 1) / "run.json").read_bytes() == kept, "a complete run was run again"
    for s in (2, 3, 4):
        assert run_is_complete(run_dir(batch_root, s)), s
    summary = pd.read_csv(repo_root() / batch_root / "summary.csv")
    assert list(summary["status"]) == ["complete"] * 4 and list(summary["reused"]) == [True, False, False, False]


@pytest.mark.heavy(seconds=7)
def test_ctrl_c_stops_queued_runs_marks_the_running_one_and_writes_the_summary(sim_csv, tmp_path, batch_root):
    nb = tiny_notebook(tmp_path / "tiny.ipynb")
    plan = write_plan(tmp_path, batch_root, sim_csv, [1, 2, 3])
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = start_batch(plan, nb, "--workers", "1",
                       env={"RAIDSTUDY_TEST_SLOW_SEEDS": "1", "RAIDSTUDY_TEST_MARKERS": str(markers)})
    try:
        wait_for(lambda: (markers / "1.pid").exists(), 60, "run 1 to hang", proc)
        procs = descendants(proc.pid)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 20
    assert "interrupted" in err and "Traceback" not in err
    assert_all_gone(procs)
    d1 = run_dir(batch_root, 1)
    rec = json.loads((d1 / "run.json").read_text())
    assert rec["status"] == "interrupted" and "interrupted" in rec["error"]
    assert not (d1 / "results.json").exists()
    for s in (2, 3):
        assert not run_dir(batch_root, s).exists(), "a queued run started after Ctrl-C"
    root = repo_root() / batch_root
    index = (root / "index.html").read_text()
    assert index.count("not started") == 2 and "interrupted" in index
    assert (root / "summary.md").exists() and (root / "forest.png").exists()


# ------------------------------------------------------------------------------ Dask

@pytest.mark.slow  # 20-30 s on the shared 2-core host: the default new set must stay under a minute
def test_dask_local_cluster_gives_the_local_runners_results_byte_for_byte(sim_csv, tmp_path):
    from distributed import LocalCluster

    from raidstudy.study.runs import run_batch

    nb = tiny_notebook(tmp_path / "tiny.ipynb")
    runs = [dict(base_parameters(sim_csv), seed=s) for s in (1, 13)]
    local = [dict(runs[0], output_dir=str(tmp_path / "local" / "1"))]
    dask = [dict(r, output_dir=str(tmp_path / "dask" / str(r["seed"]))) for r in runs]
    assert run_batch(nb, local, workers=1, progress=False)[0]["status"] == "complete"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rows_dask = run_batch(nb, dask, scheduler=cluster.scheduler_address, progress=False)
    assert [r["status"] for r in rows_dask] == ["complete", "failed"]
    assert "planted failure" in rows_dask[1]["error"]
    a, b = (tmp_path / x / "1" / "results.json" for x in ("local", "dask"))
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(b.read_text())["effects"]["level"]["p_value"] is not None


@pytest.mark.heavy(seconds=2)
def test_an_unreachable_scheduler_fails_in_seconds_with_one_line(sim_csv, tmp_path, monkeypatch, capsys):
    import socket

    from raidstudy import cli
    from raidstudy.study import runs

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(runs, "SCHEDULER_TIMEOUT", 2)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"output_root": "results/.never-written", "base": base_parameters(sim_csv)}))
    t0 = time.monotonic()
    code = cli.main(["batch", str(plan), "--scheduler", f"tcp://127.0.0.1:{port}", "-q"])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2 and elapsed < 2 + 5
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("raidstudy: error: cannot reach the Dask scheduler at tcp://127.0.0.1:") and "2 s" in err
    assert not (repo_root() / "results/.never-written").exists()


@pytest.mark.slow
def test_dask_and_local_runs_of_the_study_notebook_are_identical(sim_csv, tmp_path):
    """The same check with the real study notebook (about 15 s a run)."""
    from distributed import LocalCluster

    from raidstudy.study.runs import run_batch

    run = dict(base_parameters(sim_csv), seed=1)
    nb = "notebooks/02-event-study.ipynb"
    assert run_batch(nb, [dict(run, output_dir=str(tmp_path / "local"))], workers=1)[0]["status"] == "complete"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rows = run_batch(nb, [dict(run, output_dir=str(tmp_path / "dask"))], scheduler=cluster.scheduler_address)
    assert rows[0]["status"] == "complete"
    assert (tmp_path / "local" / "results.json").read_bytes() == (tmp_path / "dask" / "results.json").read_bytes()
