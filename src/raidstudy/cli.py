"""The ``raidstudy`` command: ``run | batch | events | ingest | build | fetch``.

User errors (bad parameters, missing data, a failed cell) are printed as one readable
line on standard error with exit status 2; a traceback means a bug.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from raidstudy import __version__
from raidstudy.errors import RaidstudyError

__all__ = ["main", "build_parser"]

DEFAULT_NOTEBOOK = "notebooks/02-event-study.ipynb"


#: Parameters that name files or folders: on the command line they are relative to the
#: current directory (``~`` expanded), as for every command-line tool.
PATH_PARAMETERS = ("output_dir", "series_csv", "data_dir")


def _cwd_path(value: str) -> str:
    """A path typed on the command line, for the runner: ``~`` expanded, resolved against the
    current directory, then written relative to the repository when it lies inside it (the
    runner's kernels start there), else absolute. An empty value stays empty."""
    import os
    from pathlib import Path

    from raidstudy.paths import display_path

    if not str(value).strip():
        return value
    path = Path(os.path.abspath(os.path.expanduser(str(value))))
    return display_path(path, keep_absolute=True)


def _cmd_run(args: argparse.Namespace) -> int:
    from raidstudy.study.runs import execute_notebook
    from raidstudy.study.parameters import PARAMETERS

    if args.list_parameters:
        for p in PARAMETERS.values():
            print(f"{p.name:<20} {p.type.__name__:<6} default {p.default!r:<24} {p.help}")
        return 0
    params: dict[str, str] = {}
    for name, value in args.parameters or []:
        params[name] = _cwd_path(value) if name in PATH_PARAMETERS else value
    notebook = args.notebook if args.notebook == DEFAULT_NOTEBOOK else _cwd_path(args.notebook)
    rec = execute_notebook(notebook, params, progress=not args.quiet and sys.stderr.isatty(),
                           log_output=args.log_output, force=args.force)
    if not args.quiet:
        from raidstudy.study.runs import _relpath

        print(f"results: {_relpath(rec.output_dir)}/ (results.json, report.html, figures/, tables/) "
              f"in {rec.seconds:.1f} s")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from raidstudy.study.runs import BatchInterrupted, _relpath, _resolve, expand_plan, load_plan, plan_roles, \
        run_batch, write_batch_summary

    plan = load_plan(args.plan)
    # output_root takes paths as `run -p output_dir` does: ~ expanded, relative to the
    # current directory, absolute allowed
    plan["output_root"] = _cwd_path(str(plan.get("output_root", "results/batch")))
    runs = expand_plan(plan)
    notebook = _cwd_path(args.notebook) if args.notebook else plan.get("notebook", DEFAULT_NOTEBOOK)
    interrupted = False
    try:
        status = run_batch(notebook, runs, workers=args.workers, scheduler=args.scheduler,
                           progress=None if not args.quiet else False, force=args.force, rerun=args.rerun)
    except BatchInterrupted as stop:
        status, interrupted = stop.rows, True
    root = plan.get("output_root", "results/batch")
    paths = write_batch_summary([r["output_dir"] for r in runs], root, roles=plan_roles(plan, runs),
                                batch_rows=status)
    counts = {k: sum(s["status"] == k for s in status) for k in
              ("complete", "skipped", "failed", "interrupted", "not started", "cancelled")}
    where = _relpath(_resolve(root))
    if interrupted:
        print(f"raidstudy: interrupted: {counts['complete']} runs completed, {counts['interrupted']} stopped and "
              f"marked interrupted, {counts['not started'] + counts['cancelled']} not started; "
              f"summary: {where}/index.html", file=sys.stderr)
        return 130
    failed = [s for s in status if s["status"] == "failed"]
    if not args.quiet:
        if counts["skipped"]:
            n = counts["skipped"]
            print(f"skipped {n} run{'s' if n != 1 else ''} already complete for the same parameters, data and "
                  "raidstudy version (--rerun runs them again)")
        print(f"{counts['complete'] + counts['skipped']} of {len(status)} runs complete "
              f"({counts['complete']} run now); summary: {where}/index.html "
              f"({', '.join(sorted(p for p in paths if p != 'index.html'))})")
        for f in failed:
            print(f"failed: {f['output_dir']}: {f.get('error')}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_events(args: argparse.Namespace) -> int:
    from raidstudy.data.events import format_events_table, load_events

    print(format_events_table(load_events(args.path)))
    return 0


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse prints one usage line otherwise)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1 worker (leave it out to use every CPU)")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raidstudy",
        description="Interrupted-time-series evidence on what anti-piracy raids do to pirated supply.",
    )
    parser.add_argument("--version", action="version", version=f"raidstudy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a study notebook with papermill into its run directory")
    run.add_argument("notebook", nargs="?", default=DEFAULT_NOTEBOOK, help=f"notebook (default {DEFAULT_NOTEBOOK})")
    run.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a parameter (repeatable); `--list-parameters` shows them. Paths (output_dir, "
                          "series_csv, data_dir) are relative to the current directory; without output_dir "
                          "the run directory follows the study (results/<event>[-<indicator>][-<model>])")
    run.add_argument("--list-parameters", action="store_true", help="list the parameters and their defaults")
    run.add_argument("--log-output", action="store_true", help="show the cells' output while running")
    run.add_argument("--force", action="store_true",
                     help="replace a run of another study (event, indicator, model) in the run directory")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    run.set_defaults(func=_cmd_run)

    batch = sub.add_parser("batch", help="run a plan of many event x indicator x specification runs in parallel")
    batch.add_argument("plan", help="plan file (YAML or JSON): base, grid, output_root, controls; the summary "
                                    "goes to output_root/index.html (docs/batch.md)")
    batch.add_argument("--notebook", default=None, help=f"notebook (default: the plan's, else {DEFAULT_NOTEBOOK})")
    batch.add_argument("--workers", type=_positive_int, default=None, help="local worker processes (default: CPUs)")
    batch.add_argument("--scheduler", default=None, help="a dask.distributed scheduler address, e.g. tcp://host:8786")
    batch.add_argument("--force", action="store_true",
                       help="replace runs of other studies found in the plan's run directories")
    batch.add_argument("--rerun", action="store_true",
                       help="run again the runs already complete for the same parameters, data and raidstudy "
                            "version (skipped by default)")
    batch.add_argument("-q", "--quiet", action="store_true")
    batch.set_defaults(func=_cmd_batch)

    ev = sub.add_parser("events", help="list the enforcement events in the catalogue")
    ev.add_argument("--path", default=None, help="catalogue CSV (default data/events.csv)")
    ev.set_defaults(func=_cmd_events)

    try:
        from raidstudy.data import cli as datacli
    except ImportError:  # pragma: no cover - the data commands are part of the package
        datacli = None
    if datacli is not None:
        datacli.register(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line for the user, without the module path of the code that raised them."""
    print(f"raidstudy: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe surfaces here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`raidstudy events | head`): stop quietly, as Unix tools do.
        # Point stdout at /dev/null so that the interpreter's final flush does not complain.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except RaidstudyError as err:
        print(f"raidstudy: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raidstudy: interrupted; the run directory is marked as not complete", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
