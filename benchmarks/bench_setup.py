"""Set-up from a fresh clone: uv against pip, in the same run, with the package caches warm.

Each measurement copies the working tree (tracked files and untracked, not-ignored ones:
the state a commit of it would have) into a new folder, so nothing from ``.venv`` carries
over, and times one command there:

* ``make setup`` with uv (the default) and with ``RAIDSTUDY_INSTALLER=pip``;
* ``make run`` from a fresh clone (set-up included) to ``results/sparks-2020/report.html``;
* ``make test`` from a fresh clone (set-up included);
* the first study run in a new environment against a later one (``make run`` twice after
  ``make setup``), whose ratio the set-up's warming keeps below 1.3.

A warm-up set-up of each installer runs first and is not timed, so both read from warm
caches (uv's and pip's). Usage::

    python benchmarks/bench_setup.py                    # everything, both installers
    python benchmarks/bench_setup.py --only setup       # just the two set-ups
    python benchmarks/bench_setup.py --installers uv    # skip the pip path
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("setup", "run", "test", "first-run")


def fresh_clone(dest: Path) -> Path:
    """Copy the working tree's tracked and untracked-not-ignored files into ``dest`` and git-init it."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.split(b"\0")
    for f in filter(None, files):
        src = ROOT / os.fsdecode(f)
        if src.is_file():
            (dest / os.fsdecode(f)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(f))
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def timed(cmd: list[str], cwd: Path, installer: str, *, check: bool = True) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "RAIDSTUDY_"))}
    env["RAIDSTUDY_INSTALLER"] = installer
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0 and not check:
        print(f"     ({' '.join(cmd)} exited {proc.returncode}: {proc.stdout.strip().splitlines()[-1:]}; timed anyway)")
    elif proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd)} failed ({installer}) in {cwd}")
    return dt


def show(inst: str, res: dict[str, float], shown: int) -> int:
    """Print the measurements not yet printed, as they come."""
    for k, v in list(res.items())[shown:]:
        print(f"{inst:>3}  {k:<45} {v:8.2f}{'' if k == 'first / later' else ' s'}", flush=True)
    return len(res)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--installers", default="uv,pip", help="comma-separated: uv, pip")
    ap.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps of {STEPS}")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed set-ups (caches already warm)")
    args = ap.parse_args(argv)
    installers = [i for i in args.installers.split(",") if i]
    steps = [s for s in args.only.split(",") if s]
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp:
        tmp = Path(tmp)
        n = 0

        def clone() -> Path:
            nonlocal n
            n += 1
            return fresh_clone(tmp / f"clone{n}")

        for inst in [] if args.no_warmup else installers:  # warm the package caches, untimed
            timed(["make", "setup"], clone(), inst)
        for inst in installers:
            res = out.setdefault(inst, {})
            shown = 0
            if "setup" in steps:
                res["make setup (fresh clone)"] = timed(["make", "setup"], clone(), inst)
            shown = show(inst, res, shown)
            if "run" in steps:
                c = clone()
                res["make run (fresh clone, set-up included)"] = timed(["make", "run"], c, inst)
                assert (c / "results/sparks-2020/report.html").is_file()
            shown = show(inst, res, shown)
            if "test" in steps:
                res["make test (fresh clone, set-up included)"] = timed(["make", "test"], clone(), inst, check=False)
            shown = show(inst, res, shown)
            if "first-run" in steps:
                c = clone()
                timed(["make", "setup"], c, inst)
                first = timed(["make", "run"], c, inst)
                later = min(timed(["make", "run"], c, inst) for _ in range(2))
                res["make run, first in a new environment"] = first
                res["make run, later (best of 2)"] = later
                res["first / later"] = first / later
                shown = show(inst, res, shown)
            shown = show(inst, res, shown)
    for k in out.get("uv", {}):
        if "pip" in out and k in out["pip"] and k != "first / later":
            print(f"pip / uv  {k:<45} {out['pip'][k] / out['uv'][k]:6.2f}x")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
