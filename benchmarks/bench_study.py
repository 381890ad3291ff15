"""Benchmark: the whole SPARKS study (notebook 02 through `raidstudy run`) against a baseline revision.

Times ``raidstudy run notebooks/02-event-study.ipynb`` (papermill, the kernel, every fit,
placebo and figure, the HTML report) for the working tree and, interleaved, for a baseline
git revision checked out in a temporary worktree and run with the same Python environment
(its ``src/`` first on ``PYTHONPATH``), so both are measured on the same machine in the same
minutes. Each run writes into a temporary folder.

Run:  python benchmarks/bench_study.py [--baseline REV] [--runs 3]
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

ROOT = Path(__file__).resolve().parents[1]


def _run(src_root: Path, out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(src_root / "src"), MPLBACKEND="Agg")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "raidstudy.cli", "run", "notebooks/02-event-study.ipynb",
                    "-p", "output_dir", str(out)], cwd=src_root, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(baseline: str, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), baseline], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            now, then = [], []
            for i in range(runs):
                then.append(_run(base, Path(tmp) / f"b{i}"))
                now.append(_run(ROOT, Path(tmp) / f"n{i}"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    m_now, m_then = statistics.median(now), statistics.median(then)
    print(f"SPARKS study, working tree : {', '.join(f'{t:.1f}' for t in now)} s (median {m_now:.1f} s)")
    print(f"SPARKS study, {baseline[:12]:12s}: {', '.join(f'{t:.1f}' for t in then)} s (median {m_then:.1f} s)")
    print(f"ratio working tree / baseline: {m_now / m_then:.2f} (target <= 1.5)")
    return {"now": now, "baseline": then, "ratio": m_now / m_then}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="b49b26a", help="git revision to compare with (default: the "
                    "revision before issue 12)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    main(a.baseline, a.runs)
