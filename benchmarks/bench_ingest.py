"""Benchmark the full ingest against zcat, in one run.

Usage::

    python benchmarks/bench_ingest.py [RAW_DIR] [--runs N]

Times (1) ``zcat`` of every dump to /dev/null, (2) the full ingest (parse, deduplicate, write
the releases table) and (3) the rebuild of the processed tables from the releases table.
Steps 2 and 3 run in child processes so that their peak RSS (``wait4`` rusage) is honest.
Targets (issue 4): ingest <= 2 x zcat, peak RSS < 4 GB, rebuild < 10 s. Nothing is written
outside a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from raidstudy.paths import default_dumps_dir  # noqa: E402
from raidstudy.sources.nzedb import list_dumps  # noqa: E402


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
    ap.add_argument("--runs", type=int, default=1, help="repeat and keep the best time of each step")
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
    best = {"zcat": 1e9, "ingest": 1e9, "rebuild": 1e9}
    rss = {"ingest": 0.0, "rebuild": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.runs):
            t0 = time.perf_counter()
            with open(os.devnull, "wb") as null:
                for i in range(0, len(paths), 500):
                    subprocess.run(["zcat", *paths[i:i + 500]], stdout=null, check=True)
            best["zcat"] = min(best["zcat"], time.perf_counter() - t0)
            w, r = run_child([py, "-c", "import sys; from raidstudy import ingest; "
                              "ingest.ingest(sys.argv[1], sys.argv[2], quiet=True)", str(raw), tmp])
            best["ingest"], rss["ingest"] = min(best["ingest"], w), max(rss["ingest"], r)
            w, r = run_child([py, "-c", "import sys; from raidstudy import indicators as I; "
                              "I.build_processed(sys.argv[1] + '/releases.parquet', sys.argv[1] + '/processed')", tmp])
            best["rebuild"], rss["rebuild"] = min(best["rebuild"], w), max(rss["rebuild"], r)
    ratio = best["ingest"] / best["zcat"]
    print(f"zcat to /dev/null     : {best['zcat']:6.2f} s")
    print(f"full ingest           : {best['ingest']:6.2f} s  ({ratio:.2f} x zcat; target <= 2)  "
          f"peak RSS {rss['ingest']:.2f} GB (target < 4)")
    print(f"rebuild data/processed: {best['rebuild']:6.2f} s  (target < 10)  peak RSS {rss['rebuild']:.2f} GB")
    print(f"cpus: {os.cpu_count()}")
    ok = ratio <= 2 and rss["ingest"] < 4 and best["rebuild"] < 10
    print("all targets met" if ok else "some targets missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
