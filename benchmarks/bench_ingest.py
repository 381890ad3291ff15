"""Benchmark the full ingest against zcat, in one run.

Usage::

    python benchmarks/bench_ingest.py [RAW_DIR] [--runs N]

Times (1) ``zcat`` of every dump to /dev/null, (2) the full ingest (parse, deduplicate, write
the releases, copies and dumps tables) and (3) the rebuild of the processed tables from them
(``build_processed`` reads ``copies.parquet`` and ``dumps.parquet`` beside the releases table).
Steps 2 and 3 run in child processes so that their peak RSS (``wait4`` rusage) is honest.
Each run times zcat and then the ingest, so the ratio compares the two on the machine as it
is at that moment (shared VMs drift by 10-20 % within minutes); the verdict uses the median
ratio of the runs. Targets (issue 4): ingest <= 2 x zcat, peak RSS < 4 GB, rebuild < 10 s.
Nothing is written outside a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from raidstudy.paths import default_dumps_dir  # noqa: E402
from raidstudy.data.sources.nzedb import list_dumps  # noqa: E402


def run_child(argv: list[str]) -> tuple[float, float]:
    """Run a child process; return (wall seconds, peak RSS in GB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv[:4])} ...")
    return wall, ru.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw_dir", nargs="?", default=None)
    ap.add_argument("--runs", type=int, default=3, help="runs; the ratio is judged on their median")
    a = ap.parse_args()
    raw = Path(a.raw_dir) if a.raw_dir else default_dumps_dir()
    dumps = list_dumps(raw)
    paths = [str(d.path) for d in dumps]
    size = sum(os.path.getsize(p) for p in paths)
    print(f"{len(paths)} dumps, {size / 1e6:.0f} MB gzip, in {raw.name}")
    # warm the page cache so that the first step is not charged for disk reads
    for p in paths:
        with open(p, "rb") as fh:
            fh.read()
    py = sys.executable
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            t0 = time.perf_counter()
            with open(os.devnull, "wb") as null:
                for j in range(0, len(paths), 500):
                    subprocess.run(["zcat", *paths[j:j + 500]], stdout=null, check=True)
            run = {"zcat": time.perf_counter() - t0}
            run["ingest"], run["ingest_rss"] = run_child(
                [py, "-c", "import sys; from raidstudy.data import ingest; "
                 "ingest.ingest(sys.argv[1], sys.argv[2], quiet=True)", str(raw), tmp])
            run["rebuild"], run["rebuild_rss"] = run_child(
                [py, "-c", "import sys; from raidstudy.data import indicators as I; "
                 "I.build_processed(sys.argv[1] + '/releases.parquet', sys.argv[1] + '/processed')", tmp])
            if i == 0:
                sizes = {n: os.path.getsize(Path(tmp) / n) / 1e6 for n in ("releases.parquet", "copies.parquet")}
                print("ingest outputs: " + ", ".join(f"{n} {mb:.0f} MB" for n, mb in sizes.items()))
            run["ratio"] = run["ingest"] / run["zcat"]
            runs.append(run)
            print(f"run {i + 1}: zcat {run['zcat']:5.2f} s, ingest {run['ingest']:5.2f} s "
                  f"({run['ratio']:.2f} x zcat), rebuild {run['rebuild']:5.2f} s", flush=True)
    ratios = sorted(r["ratio"] for r in runs)
    median = statistics.median(ratios)
    rss = max(r["ingest_rss"] for r in runs)
    rebuild = min(r["rebuild"] for r in runs)
    print(f"full ingest / zcat, same run: median {median:.2f} x (runs: {', '.join(f'{x:.2f}' for x in ratios)}; "
          f"target <= 2)")
    print(f"full ingest peak RSS      : {rss:.2f} GB (target < 4)")
    print(f"rebuild data/processed    : {rebuild:.2f} s best (target < 10), peak RSS "
          f"{max(r['rebuild_rss'] for r in runs):.2f} GB")
    print(f"cpus: {os.cpu_count()}")
    ok = median <= 2 and rss < 4 and rebuild < 10
    print("all targets met (median ratio)" if ok else "some targets missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
