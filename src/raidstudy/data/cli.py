"""The data subcommands of the ``raidstudy`` CLI: ``ingest``, ``build`` and ``fetch``.

:func:`register` adds them to an :mod:`argparse` subparsers object; each handler takes the
parsed Namespace and returns an exit code. User errors raise
:class:`raidstudy.errors.RaidstudyError` subclasses, which the CLI prints as one line.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from raidstudy.errors import ParameterError

__all__ = ["register", "cmd_ingest", "cmd_build", "cmd_fetch"]


def _say(args, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stdout)


def cmd_ingest(args: argparse.Namespace) -> int:
    """``raidstudy ingest [RAW_DIR] [--out DIR] [--skip-unreadable] [--accept-feed F] [--quiet]``."""
    from raidstudy.data import ingest

    t0 = time.perf_counter()
    report = ingest.ingest(
        args.raw_dir, args.out, skip_unreadable=args.skip_unreadable,
        accept_feeds=args.accept_feed or None, quiet=args.quiet, zone=args.zone,
    )
    _say(args, ingest.summarise(report))
    out = Path(args.out) if args.out else None
    _say(args, f"wrote {ingest.display_path((out or _interim()) / ingest.RELEASES_FILE)} and "
               f"{ingest.REPORT_FILE} in {time.perf_counter() - t0:.1f} s")
    return 0


def _interim() -> Path:
    from raidstudy.paths import interim_dir

    return interim_dir()


def cmd_build(args: argparse.Namespace) -> int:
    """``raidstudy build [--releases DIR] [--out DIR] [--raw RAW_DIR] [--min-group-releases N]``.

    Runs ``ingest`` first when the releases table is absent (or with ``--reingest``), so
    ``raidstudy build`` alone rebuilds ``data/processed/`` from the dumps.
    """
    from raidstudy.data import indicators
    from raidstudy.data import ingest

    ingest.check_zone(args.day_zone)  # a bad zone name stops here, before any ingest
    rel_dir = Path(args.releases) if args.releases else _interim()
    rel_path = rel_dir / ingest.RELEASES_FILE
    if args.reingest or not rel_path.is_file():
        why = "--reingest" if args.reingest and rel_path.is_file() else "absent"
        _say(args, f"releases table {ingest.display_path(rel_path)} {why}: running ingest first")
        report = ingest.ingest(args.raw, rel_dir, skip_unreadable=args.skip_unreadable, quiet=args.quiet)
        _say(args, ingest.summarise(report))
    t0 = time.perf_counter()
    prov = indicators.build_processed(rel_path, args.out, min_group_releases=args.min_group_releases,
                                      day_zone=args.day_zone)
    out = Path(args.out) if args.out else None
    from raidstudy.paths import processed_dir

    if out is None or out.resolve() == processed_dir().resolve():
        indicators.write_missing_days()

    _say(args, f"wrote {ingest.display_path(out or processed_dir())}: "
               + ", ".join(f"{k} ({v[:12]})" for k, v in sorted(prov["outputs"].items()))
               + f" in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """``raidstudy fetch nzedb --from DATE --to DATE [--out DIR] [--base-url URL] [--index-url URL]``."""
    from raidstudy.data import fetch

    if args.source != "nzedb":
        raise ParameterError("source", args.source, "unknown source", accepted=["nzedb"])
    res = fetch.fetch_nzedb(
        args.date_from, args.date_to, out_dir=args.out, base_url=args.base_url,
        index_url=args.index_url, retries=args.retries, quiet=args.quiet,
    )
    _say(args, f"fetched {res['downloaded']} file(s), {res['skipped']} already complete, "
               f"{res['resumed']} resumed; checksums in {res['checksums_file']}")
    return 0


def group_floor() -> int:
    from raidstudy.data.indicators import DEFAULT_MIN_GROUP_RELEASES

    return DEFAULT_MIN_GROUP_RELEASES


def ingest_zone() -> str:
    from raidstudy.data.ingest import SOURCE_ZONE

    return SOURCE_ZONE


def register(subparsers) -> None:
    """Add the ``ingest``, ``build`` and ``fetch`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("ingest", help="read raw nZEDb dumps into the releases table (data/interim)")
    p.add_argument("raw_dir", nargs="?", default=None,
                   help="folder of *_predb_dump.csv.gz files (default: ../shared/data/raw/nzedb-predb-dumps "
                        "when present, else data/raw/nzedb)")
    p.add_argument("--out", default=None, help="output folder (default data/interim)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="go on past wholly unreadable files (they are listed in the report and coverage)")
    p.add_argument("--accept-feed", action="append", default=[], metavar="FEED",
                   help="accept this feed besides the known ones (repeatable; '*' accepts any)")
    p.add_argument("--zone", default=ingest_zone(),
                   help="IANA zone the dumps' pre times are written in (default %(default)s, established from "
                        "the dumps: see data/README.md); they are stored in UTC")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_ingest)

    b = subparsers.add_parser("build", help="rebuild data/processed from the releases table (ingests first if needed)")
    b.add_argument("--releases", default=None, help="folder holding releases.parquet (default data/interim)")
    b.add_argument("--raw", default=None, help="dumps folder, used when ingest has to run first")
    b.add_argument("--out", default=None, help="output folder (default data/processed)")
    b.add_argument("--min-group-releases", type=int, default=group_floor(),
                   help="minimum releases over the range for a group to be bundled (default %(default)s)")
    b.add_argument("--day-zone", default="UTC",
                   help="zone whose calendar days the counts use (default UTC; e.g. Europe/Berlin)")
    b.add_argument("--reingest", action="store_true", help="run ingest even if the releases table exists")
    b.add_argument("--skip-unreadable", action="store_true", help="passed to ingest")
    b.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    b.set_defaults(func=cmd_build)

    f = subparsers.add_parser("fetch", help="download upstream dumps into data/raw/nzedb")
    f.add_argument("source", choices=["nzedb"], help="what to fetch")
    f.add_argument("--from", dest="date_from", required=True, help="first day (YYYY-MM-DD, dump creation date, UTC)")
    f.add_argument("--to", dest="date_to", required=True, help="last day (inclusive)")
    f.add_argument("--out", default=None, help="target folder (default data/raw/nzedb)")
    f.add_argument("--base-url", default=None,
                   help="where files are downloaded from (default the GitHub raw URL of the pinned commit)")
    f.add_argument("--index-url", default=None,
                   help="where the file list comes from (default the GitHub contents API)")
    f.add_argument("--retries", type=int, default=4, help="attempts per file after the first (default 4)")
    f.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    f.set_defaults(func=cmd_fetch)
