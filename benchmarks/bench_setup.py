"""Set-up from a fresh clone: uv against pip, in the same run, with the package caches warm.

Each measurement copies the working tree (tracked files and untracked, not-ignored ones:
the state a commit of it would have) into a new folder, so nothing from ``.venv`` carries
over, and times one command there:

* ``make setup`` with uv (the default) and with ``RAIDSTUDY_INSTALLER=pip``;
* ``make run`` from a fresh clone (set-up included): the time until
  ``results/sparks-2020/report.html`` appears and the time until ``make run`` ends (it
  also runs the robustness notebook);
* ``make test`` from a fresh clone (set-up included);
* the first study run in a new environment against later ones (``raidstudy run
  notebooks/02-event-study.ipynb`` three times after ``make setup``), whose ratio the
  set-up's warming keeps below 1.3.

Beside each wall time the CPU time (user + system of every descendant) is printed: when
other work shares the host, it moves much less than the wall time.

A warm-up set-up of each installer runs first and is not timed, so both read from warm
caches (uv's and pip's). Every step is repeated ``--repeat`` times with the installers
interleaved (uv, pip, uv, pip, ...), so both see the same load; each measurement prints the
load average beside it, and the summary gives the range. ``--baseline REV`` adds a third
variant, uv with the Makefile of revision REV, to compare set-up changes in the same run.
Usage::

    python benchmarks/bench_setup.py                    # everything, both installers
    python benchmarks/bench_setup.py --only setup       # just the two set-ups
    python benchmarks/bench_setup.py --installers uv    # skip the pip path
    python benchmarks/bench_setup.py --only setup,run --baseline HEAD --repeat 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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


LAST_CPU = 0.0  # CPU seconds (user + system, all descendants) of the last timed command


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _env(installer: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "RAIDSTUDY_"))}
    env["RAIDSTUDY_INSTALLER"] = installer
    return env


def timed(cmd: list[str], cwd: Path, installer: str, *, check: bool = True, appears: str | None = None):
    """Seconds ``cmd`` took; with ``appears``, also the seconds until that file existed."""
    global LAST_CPU
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(installer), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = None
    if appears:
        while proc.poll() is None and seen is None:
            if (cwd / appears).exists():
                seen = time.perf_counter() - t0
            time.sleep(0.1)
    out, _ = proc.communicate()
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if proc.returncode != 0 and not check:
        print(f"     ({' '.join(cmd)} exited {proc.returncode}: {out.strip().splitlines()[-1:]}; timed anyway)")
    elif proc.returncode != 0:
        sys.stderr.write(out[-6000:])
        raise SystemExit(f"{' '.join(cmd)} failed ({installer}) in {cwd}")
    if appears:
        return dt, (seen if seen is not None else dt)
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--installers", default="uv,pip", help="comma-separated: uv, pip")
    ap.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps of {STEPS}")
    ap.add_argument("--repeat", type=int, default=2, help="measurements of each step and variant (interleaved)")
    ap.add_argument("--baseline", metavar="REV", help="also time uv with the Makefile of this git revision")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed set-ups (caches already warm)")
    args = ap.parse_args(argv)
    variants = [(i, i, None) for i in args.installers.split(",") if i]
    if args.baseline:
        mk = subprocess.run(["git", "show", f"{args.baseline}:Makefile"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
        variants.append((f"uv@{args.baseline}", "uv", mk))
    steps = [s for s in args.only.split(",") if s]
    out: dict[str, dict[str, list[float]]] = {}
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp:
        tmp = Path(tmp)
        n = 0

        def clone(makefile: str | None) -> Path:
            nonlocal n
            n += 1
            c = fresh_clone(tmp / f"clone{n}")
            if makefile is not None:
                (c / "Makefile").write_text(makefile)
            return c

        def record(label: str, key: str, value: float, cpu: float | None = None) -> None:
            out.setdefault(label, {}).setdefault(key, []).append(value)
            unit = "" if key == "first / later" else " s"
            extra = ""
            if cpu is not None:  # CPU time moves less than wall time when others share the host
                out[label].setdefault(f"{key} [CPU s]", []).append(cpu)
                extra = f", {cpu:.1f} s CPU"
            print(f"{label:>9}  {key:<48} {value:8.2f}{unit}   (load {load()}{extra})", flush=True)

        for label, inst, mk in [] if args.no_warmup else variants:  # warm the package caches, untimed
            timed(["make", "setup"], clone(mk), inst)
        for step in steps:
            for _ in range(args.repeat):
                for label, inst, mk in variants:
                    if step == "setup":
                        record(label, "make setup (fresh clone)", timed(["make", "setup"], clone(mk), inst), LAST_CPU)
                    elif step == "run":
                        c = clone(mk)
                        total, report = timed(["make", "run"], c, inst, appears="results/sparks-2020/report.html")
                        assert (c / "results/sparks-2020/report.html").is_file()
                        record(label, "fresh clone to sparks-2020/report.html", report)
                        record(label, "make run (fresh clone, set-up included)", total, LAST_CPU)
                    elif step == "test":
                        record(label, "make test (fresh clone, set-up included)",
                               timed(["make", "test"], clone(mk), inst, check=False), LAST_CPU)
                    elif step == "first-run":
                        c = clone(mk)
                        timed(["make", "setup"], c, inst)
                        study = [".venv/bin/raidstudy", "run", "notebooks/02-event-study.ipynb"]
                        first = timed(study, c, inst)
                        first_cpu = LAST_CPU
                        later, later_cpu = min((timed(study, c, inst), LAST_CPU) for _ in range(2))
                        record(label, "study run, first in a new environment", first, first_cpu)
                        record(label, "study run, later (best of 2)", later, later_cpu)
                        record(label, "first / later", first / later)
    print(f"\nload average at end: {load()}\n{'':>9}  {'':<48} {'min':>8} {'median':>8} {'max':>8}")
    for label, res in out.items():
        for key, vals in res.items():
            v = sorted(vals)
            print(f"{label:>9}  {key:<48} {v[0]:8.2f} {v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2:8.2f} {v[-1]:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
