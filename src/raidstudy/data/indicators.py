"""Daily indicators from the releases table, with a coverage mask, and the bundled data.

The bundled tables in ``data/processed/`` (written by :func:`build_processed`; documented in
``data/README.md``):

``daily_patterns.csv.gz``
    Releases per day, family and *pattern* of feed offsets (:mod:`raidstudy.data.patterns`):
    enough to count any set of feeds with every copy counting. Read with
    :func:`indicator_series` (a set of feeds, each release once) or :func:`load_daily` (each
    feed's own counts).
``daily_group.csv.gz``, ``groups.csv.gz``
    Releases per day of every group with at least ``min_group_releases`` releases in a feed
    set (:data:`GROUP_FEED_SETS`), and one summary row per group (first and last dates).
``coverage.csv``
    Whether a feed has data on a day (see *Coverage rule*), with the reason.
``dump_clock.csv.gz``
    The newest pre of every dump and feed: the evidence for the dumps' time zone
    (:mod:`raidstudy.data.clock`).
``seed_numbers.csv``
    The published SPARKS counts replicated (:mod:`raidstudy.data.seed`).
``PROVENANCE.json``
    Upstream repository and commit, input checksums, output checksums, rebuild command,
    package version.

Coverage rule
-------------
Each nZEDb dump holds the last 24 hours of pres at its creation time ``c`` (the number in
its file name), so it covers the window ``(c - 24 h, c]`` (widened by :data:`WINDOW_SLACK`).
A feed ``F`` is *present* in a dump when its share of the dump's valid rows is at least
:data:`SHARE_THRESHOLD` (0.2) times its usual share **or** its row count is at least
:data:`COUNT_THRESHOLD` (0.5) times its usual count (medians over the :data:`SHARE_WINDOW`
dumps either side). The share keeps a real collapse of the whole Scene covered (SPARKS); the
count keeps a feed covered when another feed surges (an srrDB backfill).

A day ``D`` is covered for ``F`` when (a) the windows of the readable dumps leave at most
:data:`MAX_GAP_MINUTES` of it uncovered, and (b) ``F`` is present in every dump whose window
overlaps it. Otherwise it is missing, with a ``reason``: ``no dump``, ``unreadable dump`` or
``feed absent``. A feed with no row in any dump within :data:`SHARE_WINDOW` dumps either side
is ``feed inactive`` (it had not started or had stopped): covered, zero counts.
Two checks on each feed's own daily counts follow: ``feed vanished``
(:func:`flag_vanished_feeds`: a feed at almost nothing while another carries on) and ``feed
displaced`` (:func:`flag_displaced_feeds`: a Scene pre feed far below its usual count while the
Scene total holds). A raid lowers every Scene feed and the total together and stays covered.

Missing days are never zero: every indicator is NaN on them, and a total over several feeds
is NaN on a day where *any* of them is missing.

Feeds
-----
``#pre@corrupt``, ``xrel``: Scene pre feeds. ``xrelp2p``: P2P (non-Scene) releases, a natural
control series. ``srrdb``: the time is when the release was *uploaded to srrDB*, not its pre
time. ``m2v.ru``: a mirror whose clock runs about 8 h behind. The last two date a release
only when no other selected feed announced it (:data:`raidstudy.data.patterns.SECONDARY_FEEDS`).
"""
from __future__ import annotations

import gzip
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from raidstudy import __version__
from raidstudy.io import atomic_write_bytes, sha256_bytes, sha256_file, write_json
from raidstudy.errors import DataError, ParameterError
from raidstudy.paths import display_path, processed_dir
from raidstudy.data.patterns import NONE, SECONDARY_FEEDS, count_over_feeds, dated, day_matrix, pattern_table
from raidstudy.data.releases import FAMILIES

__all__ = [
    "MEASURES",
    "SHARE_THRESHOLD",
    "SHARE_WINDOW",
    "DAILY_FILE",
    "GROUP_FILE",
    "COVERAGE_FILE",
    "PROVENANCE_FILE",
    "UPSTREAM_REPO",
    "UPSTREAM_COMMIT",
    "load_daily",
    "load_coverage",
    "load_groups",
    "available_feeds",
    "indicator_series",
    "group_series",
    "data_checksum",
    "compute_coverage",
    "flag_vanished_feeds",
    "flag_displaced_feeds",
    "missing_days_markdown",
    "write_missing_days",
    "load_group_summary",
    "build_processed",
]

#: Daily measures: releases; releases nuked (status from every copy); releases whose size is
#: stated; their total size in MB (decimal, as the feeds state it).
MEASURES = ("n_releases", "n_nuked", "n_sized", "size_mb")
SHARE_THRESHOLD = 0.2
#: A feed whose share of a dump is low still counts as present when its own row count is
#: at least this share of its usual count (a surge of another feed, such as a srrDB
#: backfill, lowers every other feed's share without any of them missing anything).
COUNT_THRESHOLD = 0.5
SHARE_WINDOW = 14
MIN_REF_DUMPS = 5
#: Seconds of jitter allowed between consecutive daily dumps (the job runs every 24 h and a
#: few seconds); a larger gap between two windows leaves a hole in the days it touches.
WINDOW_SLACK = 1800
#: A hole of at most this many minutes in a day's windows leaves the day covered (its
#: length is in ``gap_minutes``, measured after :data:`WINDOW_SLACK`: a hole between two dumps of
#: up to 90 minutes, about 1/16 of a day's pres).
MAX_GAP_MINUTES = 60
VANISH_RATIO = 0.05
VANISH_MIN_MEDIAN = 100
VANISH_OTHERS_RATIO = 0.5
VANISH_OTHERS_MIN_MEDIAN = 20
VANISH_WINDOW = 29
#: Displacement (a feed collapses while the others carry its releases): the feed's 7-day
#: mean under DISPLACE_RATIO of its 91-day median while the Scene total's 7-day mean stays
#: at DISPLACE_TOTAL_RATIO of its median or above. Checked for the Scene pre feeds only
#: (:data:`DISPLACE_FEEDS`): the P2P feed has no other feed to be displaced to, and the
#: upload-time feeds are volatile by nature.
DISPLACE_RATIO = 0.65
DISPLACE_TOTAL_RATIO = 0.8
DISPLACE_MIN_MEDIAN = 100
DISPLACE_SHORT = 7
DISPLACE_LONG = 91
DISPLACE_FEEDS = ("#pre@corrupt", "xrel")
#: Feeds that make the Scene total of the displacement check (every feed but P2P).
NON_SCENE_FEEDS = ("xrelp2p",)
DAILY_FILE = "daily_patterns.csv.gz"
GROUP_FILE = "daily_group.csv.gz"
GROUP_SUMMARY_FILE = "groups.csv.gz"
COVERAGE_FILE = "coverage.csv"
CLOCK_FILE = "dump_clock.csv.gz"
SEED_FILE = "seed_numbers.csv"
PROVENANCE_FILE = "PROVENANCE.json"
LICENSE_FILE = "LICENSE-GPL-3.0.txt"
DATA_FILES = (DAILY_FILE, GROUP_FILE, GROUP_SUMMARY_FILE, COVERAGE_FILE)
UPSTREAM_REPO = "https://github.com/nZEDb/nZEDbPre_Dumps"
UPSTREAM_COMMIT = "837207b065a1856e1b012fd1c61bedf81eb843e2"
#: Groups with fewer releases than this over the range (in a feed set) are not bundled.
DEFAULT_MIN_GROUP_RELEASES = 20
#: Feed sets of the group tables (None: every feed).
GROUP_FEED_SETS: dict[str, tuple[str, ...] | None] = {
    "scene": ("#pre@corrupt", "xrel"),
    "p2p": ("xrelp2p",),
    "all": None,
}


# --------------------------------------------------------------------------- reading


def _dir(data_dir) -> Path:
    d = Path(data_dir) if data_dir is not None else processed_dir()
    if not (d / DAILY_FILE).is_file() or not (d / COVERAGE_FILE).is_file():
        raise DataError(
            f"no processed data in {_rel(d)} (expected {DAILY_FILE} and {COVERAGE_FILE}); "
            "rebuild it with `raidstudy build` (reads the nZEDb dumps) or pass data_dir="
        )
    return d


def _rel(p: Path) -> str:
    return display_path(p)


_CACHE: dict[tuple, Any] = {}


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_mtime_ns, st.st_size)


def _cached_csv(path: Path, **kw) -> pd.DataFrame:
    key = (*_file_key(path), tuple(sorted(kw)))
    if key not in _CACHE:
        _CACHE[key] = pd.read_csv(path, **kw)
    return _CACHE[key].copy()


def _cached_sha256(path: Path) -> str:
    """The file's checksum, computed once per version of the file (as the tables are read once)."""
    key = ("sha256", *_file_key(path))
    if key not in _CACHE:
        _CACHE[key] = sha256_file(path)
    return _CACHE[key]


def _patterns(d: Path) -> tuple[pd.DataFrame, list[str]]:
    """The pattern table (see :mod:`raidstudy.data.patterns`) with integer ``day`` and the
    feeds' offset columns, and the feeds in column order; read once per file version."""
    path = d / DAILY_FILE
    key = ("patterns", *_file_key(path))
    if key not in _CACHE:
        df = pd.read_csv(path, dtype={"family": str}, keep_default_na=False)
        feeds = [c for c in df.columns if c not in _PATTERN_FIXED and c not in MEASURES]
        for f in feeds:
            df[f] = pd.to_numeric(df[f].replace("", NONE)).astype("int32")
        df["day"] = (pd.to_datetime(df["date"]).to_numpy("datetime64[D]").astype(np.int64)).astype(np.int64)
        for m in MEASURES:
            df[m] = df[m].astype("int64")
        _CACHE[key] = (df, feeds)
    return _CACHE[key]


_PATTERN_FIXED = ("date", "family")


def _day_index(days: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[ns]"), name="date")


def load_daily(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Each feed's own daily counts: every release the feed announced, dated by its own copy.

    Parameters
    ----------
    data_dir : path, optional
        Folder of processed files (default ``data/processed``).

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64, day in the build's zone, UTC by default, tz-naive),
        ``feed`` (str), ``family`` (str) and the :data:`MEASURES` (int64), every date x
        feed x family of the range with zeros explicit. A release announced by two feeds
        counts for both: **do not add rows over feeds**; use :func:`indicator_series`, which
        counts a release once for a set of feeds. Counts on days that are not covered (see
        :func:`load_coverage`) must not be read as zeros.
    """
    d = _dir(data_dir)
    key = ("daily", *_file_key(d / DAILY_FILE))
    if key not in _CACHE:
        pat, feeds = _patterns(d)
        cov = load_coverage(d)
        days = np.sort(cov["date"].unique())
        frames = []
        for f in feeds:
            parts = {m: count_over_feeds(pat, feeds, [f], m, by=["family"]) for m in MEASURES}
            frames.append(pd.DataFrame(parts).reset_index().assign(feed=f))
        long = pd.concat(frames, ignore_index=True)
        long["date"] = _day_index(long["day"].to_numpy())
        grid = pd.MultiIndex.from_product([pd.DatetimeIndex(days, name="date"), feeds, list(FAMILIES)],
                                          names=["date", "feed", "family"])
        out = long.set_index(["date", "feed", "family"])[list(MEASURES)].reindex(grid, fill_value=0)
        _CACHE[key] = out.astype("int64").reset_index()
    return _CACHE[key].copy()


def load_coverage(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Which days each feed has data.

    Returns
    -------
    pandas.DataFrame
        ``date`` (datetime64), ``feed`` (str), ``covered`` (bool), ``reason`` (``ok``,
        ``no dump``, ``unreadable dump``, ``feed absent``), ``n_dumps`` (dumps whose window
        overlaps the day), ``feed_rows`` (the feed's rows in those dumps, before
        deduplication), ``min_share_ratio`` (lowest share of the feed in those dumps relative
        to its usual share; the feed is absent from a dump below 0.2).
    """
    d = _dir(data_dir)
    df = _cached_csv(d / COVERAGE_FILE, dtype={"feed": str, "reason": str}, keep_default_na=False)
    df["date"] = pd.to_datetime(df["date"])
    df["covered"] = df["covered"].astype(str).str.lower().isin(["true", "1"])
    df["min_share_ratio"] = pd.to_numeric(df["min_share_ratio"].replace("", np.nan))
    return df


def load_groups(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Daily releases per group, long: ``date``, ``feed_set``, ``group``, ``family``,
    ``n_releases`` (days without a release are absent rows); see :func:`group_series` and
    :func:`load_group_summary`. The file holds one row per day, group and family with a count
    column per feed set (``n_scene``, ``n_p2p``, ``n_all``)."""
    d = _dir(data_dir)
    if not (d / GROUP_FILE).is_file():
        raise DataError(f"{GROUP_FILE} is missing from {_rel(d)}; rebuild with `raidstudy build`")
    key = ("groups-long", *_file_key(d / GROUP_FILE))
    if key not in _CACHE:
        wide = pd.read_csv(d / GROUP_FILE, dtype={"group": str, "family": str}, keep_default_na=False)
        parts = []
        for set_name in sorted(GROUP_FEED_SETS):
            col = f"n_{set_name}"
            sub = wide.loc[wide[col] > 0, ["date", "group", "family", col]].rename(columns={col: "n_releases"})
            sub.insert(1, "feed_set", set_name)
            parts.append(sub)
        long = pd.concat(parts, ignore_index=True)
        long["n_releases"] = long["n_releases"].astype("int64")
        long["date"] = pd.to_datetime(long["date"])
        _CACHE[key] = long
    return _CACHE[key].copy()


def load_group_summary(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per bundled group and feed set: ``feed_set, group, n_releases, first_date,
    last_date, n_days, family`` (the family of most of its releases)."""
    d = _dir(data_dir)
    if not (d / GROUP_SUMMARY_FILE).is_file():
        raise DataError(f"{GROUP_SUMMARY_FILE} is missing from {_rel(d)}; rebuild with `raidstudy build`")
    df = _cached_csv(d / GROUP_SUMMARY_FILE, dtype={"feed_set": str, "group": str, "family": str}, keep_default_na=False)
    for c in ("first_date", "last_date"):
        df[c] = pd.to_datetime(df[c])
    return df


def available_feeds(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Feeds in the processed data, sorted."""
    return sorted(load_coverage(data_dir)["feed"].unique().tolist())


def data_checksum(data_dir: str | os.PathLike | None = None) -> str:
    """SHA-256 over the processed data files (name and content hash of each, sorted)."""
    d = _dir(data_dir)
    lines = [f"{name}  {sha256_file(d / name)}" for name in sorted(DATA_FILES) if (d / name).is_file()]
    return sha256_bytes(("\n".join(lines) + "\n").encode())


def _check_list(name: str, values, accepted: Sequence[str], hint: str) -> list[str]:
    if values is None:
        return list(accepted)
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not values:
        raise ParameterError(name, values, "is empty", accepted=accepted, hint=hint)
    for v in values:
        if v not in accepted:
            raise ParameterError(name, v, f"unknown {name[:-1] if name.endswith('s') else name}",
                                 accepted=accepted, hint=hint)
    return sorted(dict.fromkeys(values))


def _date(name: str, v):
    if v is None:
        return None
    try:
        return pd.Timestamp(v).tz_localize(None) if pd.Timestamp(v).tzinfo else pd.Timestamp(v)
    except (ValueError, TypeError) as exc:
        raise ParameterError(name, v, f"is not a date ({exc})", hint="use YYYY-MM-DD") from None


def indicator_series(
    *,
    feeds: Iterable[str] | str | None = None,
    families: Iterable[str] | str | None = None,
    measure: str = "n_releases",
    start=None,
    end=None,
    data_dir: str | os.PathLike | None = None,
) -> pd.Series:
    """A daily indicator over a set of feeds and families, NaN where not covered.

    Every copy counts: a release counts once if *any* selected feed announced it, dated by
    the earliest pre time among the selected feeds (``srrdb`` upload times and ``m2v.ru``'s
    shifted clock only when no other selected feed announced it; see
    :mod:`raidstudy.data.patterns`). Days are calendar days of the build's zone (UTC unless
    built with ``--day-zone``).

    Parameters
    ----------
    feeds : str or list of str, optional
        Feeds to add up; ``None`` means all feeds (:func:`available_feeds`). Note that
        ``srrdb`` times are upload times, not pre times, and ``xrelp2p`` is P2P, not Scene.
    families : str or list of str, optional
        Section families (:data:`raidstudy.data.releases.FAMILIES`); ``None`` means all.
    measure : {"n_releases", "n_nuked", "n_sized", "size_mb"}
        Releases; releases nuked (the status of the latest copy that states one); releases
        whose size is stated; their total size in MB.
    start, end : date-like, optional
        Inclusive bounds (default: the whole processed range).
    data_dir : path, optional
        Folder of processed files (default ``data/processed``).

    Returns
    -------
    pandas.Series
        float64, indexed by a daily ``DatetimeIndex`` named ``date`` with ``freq="D"``. A day
        is NaN when any selected feed is not covered on it (never zero for a missing day).
        ``attrs["provenance"]`` records the data folder, file checksums, feeds, families and
        measure.

    Raises
    ------
    ParameterError
        Unknown feed, family or measure, or start after end (before any data is read
        beyond the coverage table).
    """
    if measure not in MEASURES:
        raise ParameterError("measure", measure, "unknown measure", accepted=MEASURES,
                             hint="n_releases counts releases, n_nuked nuked ones, size_mb adds their sizes")
    fams = _check_list("families", families, FAMILIES, "families are the harmonised section families")
    start_ts, end_ts = _date("start", start), _date("end", end)
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise ParameterError("start", start, f"is after end={end!r}", hint="swap them")
    d = _dir(data_dir)
    cov = load_coverage(d)
    feed_list = _check_list("feeds", feeds, sorted(cov["feed"].unique().tolist()),
                            "see raidstudy.data.indicators.available_feeds()")
    pat, pfeeds = _patterns(d)
    sel = pat[pat["family"].isin(fams)]
    counted = count_over_feeds(sel, pfeeds, feed_list, measure)
    s = pd.Series(counted.to_numpy(dtype="float64"), index=_day_index(counted.index.to_numpy()))
    cv = cov[cov["feed"].isin(feed_list)].pivot(index="date", columns="feed", values="covered")
    idx = pd.date_range(cv.index.min(), cv.index.max(), freq="D", name="date")
    cv = cv.reindex(idx).reindex(columns=feed_list).fillna(False).astype(bool)
    s = s.reindex(idx).fillna(0.0)
    if start_ts is None and end_ts is None and not (s > 0).any():
        raise ParameterError("feeds", feed_list, f"announced no release{'' if families is None else ' of ' + '+'.join(fams)} "
                             "in the whole range", accepted=sorted(cov["feed"].unique().tolist()),
                             hint="choose feeds that carry these families (see load_daily())")
    s[~cv.all(axis=1)] = np.nan
    if start_ts is not None or end_ts is not None:
        s = s.loc[start_ts:end_ts]
        s = s.asfreq("D") if len(s) else s
    s.index.name = "date"
    s.index.freq = "D" if len(s) else None
    if (start_ts is not None or end_ts is not None) and len(s) and s.isna().all():
        raise ParameterError("start", start, f"to end={end!r}: no day of the window is covered for feeds "
                             f"{'+'.join(feed_list)} (a collection gap or a feed outage; see load_coverage())",
                             hint="choose a window with collected days")
    if (start_ts is not None or end_ts is not None) and len(s) and not (s.fillna(0) > 0).any():
        raise ParameterError("feeds", feed_list, f"announced no release between {start} and {end}",
                             accepted=sorted(cov["feed"].unique().tolist()),
                             hint="check the feeds, families and dates (an all-zero series cannot show an effect)")
    fam_label = "all families" if families is None else "+".join(fams)
    feed_label = "all feeds" if feeds is None else "+".join(feed_list)
    s.name = f"{measure} ({feed_label}; {fam_label})"
    s.attrs["provenance"] = {
        "data_dir": _rel(d),
        "files": {n: _cached_sha256(d / n) for n in (DAILY_FILE, COVERAGE_FILE)},
        "feeds": feed_list,
        "families": fams,
        "measure": measure,
    }
    return s


def group_series(
    group: str,
    *,
    feed_set: str = "scene",
    families: Iterable[str] | str | None = None,
    start=None,
    end=None,
    data_dir: str | os.PathLike | None = None,
) -> pd.Series:
    """Daily releases of one group, NaN on days where a feed of the feed set is not covered.

    Parameters
    ----------
    group : str
        Group name as in the titles (case-sensitive). Groups with fewer than the build's
        ``min_group_releases`` releases in the feed set are not bundled.
    feed_set : {"scene", "p2p", "all"}
        :data:`GROUP_FEED_SETS`: ``scene`` is the default outcome's feeds (``#pre@corrupt``
        and ``xrel``), ``p2p`` is ``xrelp2p``, ``all`` every feed. A release counts once if
        any feed of the set announced it (:mod:`raidstudy.data.patterns`).
    families : str or list of str, optional
        Section families (default all).
    start, end : date-like, optional
        Inclusive bounds.
    data_dir : path, optional
        Folder of processed files.

    Returns
    -------
    pandas.Series
        Like :func:`indicator_series`.
    """
    if feed_set not in GROUP_FEED_SETS:
        raise ParameterError("feed_set", feed_set, "unknown feed set", accepted=list(GROUP_FEED_SETS))
    fams = _check_list("families", families, FAMILIES, "families are the harmonised section families")
    d = _dir(data_dir)
    g = load_groups(d)
    g = g[g["feed_set"] == feed_set]
    groups = sorted(g["group"].unique().tolist())
    if group not in groups:
        close = [x for x in groups if x.lower() == str(group).lower()]
        raise ParameterError("group", group, f"not among the {len(groups)} groups bundled for feed set {feed_set!r}",
                             accepted=close or None,
                             hint=("names are case-sensitive" if close else
                                   "groups below the build's minimum volume are not bundled; see "
                                   "load_group_summary() or rebuild with a lower --min-group-releases"))
    cov = load_coverage(d)
    set_feeds = _feed_set(feed_set, sorted(cov["feed"].unique().tolist()))
    cv = cov[cov["feed"].isin(set_feeds)].pivot(index="date", columns="feed", values="covered")
    idx = pd.date_range(cv.index.min(), cv.index.max(), freq="D", name="date")
    ok = cv.reindex(idx).fillna(False).astype(bool).all(axis=1)
    sel = g[(g["group"] == group) & g["family"].isin(fams)]
    s = sel.groupby("date")["n_releases"].sum().astype("float64").reindex(idx).fillna(0.0)
    s[~ok] = np.nan
    s = s.loc[_date("start", start):_date("end", end)]
    s.index.name = "date"
    s.index.freq = "D" if len(s) else None
    s.name = f"n_releases (group {group}; feed set {feed_set})"
    s.attrs["provenance"] = {"data_dir": _rel(d), "files": {n: _cached_sha256(d / n) for n in (GROUP_FILE, COVERAGE_FILE)},
                             "feeds": set_feeds, "feed_set": feed_set, "group": group, "families": fams,
                             "measure": "n_releases"}
    return s


def _feed_set(name: str, feeds: Sequence[str]) -> list[str]:
    members = GROUP_FEED_SETS[name]
    return sorted(feeds) if members is None else [f for f in members if f in feeds]


# --------------------------------------------------------------------------- building


def _day_bounds(days: pd.DatetimeIndex, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC seconds of the start and end of each calendar day of ``zone`` (23 or 25 hours on
    the days daylight saving changes)."""
    def secs(ix: pd.DatetimeIndex) -> np.ndarray:
        if zone != "UTC":
            ix = ix.tz_localize(zone, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC").tz_localize(None)
        return ix.to_numpy("datetime64[s]").astype(np.int64)

    return secs(days), secs(days + pd.Timedelta(days=1))


def compute_coverage(
    dumps: pd.DataFrame,
    feeds: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    threshold: float = SHARE_THRESHOLD,
    window: int = SHARE_WINDOW,
    zone: str = "UTC",
) -> pd.DataFrame:
    """Apply the coverage rule (module docs) to the per-dump x feed row counts.

    Parameters
    ----------
    dumps : pandas.DataFrame
        The ingest's ``dumps.parquet``: ``origin, created_unix, status, feed, rows_valid``.
    feeds : sequence of str
        Feeds to report.
    start, end : Timestamp
        First and last day of the table.
    threshold : float
        A feed is absent from a dump whose share is below ``threshold`` x its usual share
        and whose row count is below :data:`COUNT_THRESHOLD` x its usual count.
    window : int
        Dumps either side used for the usual (median) share and count.
    zone : str
        Zone whose calendar days are reported (default UTC).

    Returns
    -------
    pandas.DataFrame
        ``date, feed, covered, reason, n_dumps, feed_rows, min_share_ratio, gap_minutes``.
    """
    feeds = list(feeds)
    files = dumps.drop_duplicates("origin").set_index("origin")[["created_unix", "status"]]
    files = files.sort_values(["created_unix"], kind="stable")
    readable = files[files["status"] != "unreadable"]
    wide = dumps[dumps["status"] != "unreadable"].pivot_table(
        index="origin", columns="feed", values="rows_valid", aggfunc="sum", fill_value=0)
    wide = wide.reindex(index=readable.index, columns=feeds, fill_value=0).astype("int64")
    tot = dumps[dumps["status"] != "unreadable"].groupby("origin")["rows_valid"].sum().reindex(readable.index).fillna(0)
    share = wide.div(tot.replace(0, np.nan), axis=0)
    ref = share.rolling(2 * window + 1, center=True, min_periods=MIN_REF_DUMPS).median()
    ratio = share / ref.replace(0, np.nan)
    ref_n = wide.rolling(2 * window + 1, center=True, min_periods=MIN_REF_DUMPS).median()
    count_ratio = wide / ref_n.replace(0, np.nan)
    # a feed is active while it has rows within the window either side: a long outage (more
    # than half the window) stays "feed absent" instead of turning into "feed inactive"
    active = wide.rolling(2 * window + 1, center=True, min_periods=1).max() > 0
    present = ((((ratio >= threshold) | (count_ratio >= COUNT_THRESHOLD)).fillna(False)) & (wide > 0)) | ~active
    c_end = readable["created_unix"].to_numpy(dtype="int64")
    c_start = c_end - 86400 - WINDOW_SLACK
    unread = files[files["status"] == "unreadable"]["created_unix"].to_numpy(dtype="int64")

    days = pd.date_range(start, end, freq="D")
    d_start, d_end = _day_bounds(days, zone)
    rows = []
    # Merge the windows into disjoint intervals; the hole in a day is what they leave of it.
    merged: list[list[int]] = []
    for k in np.argsort(c_start, kind="stable"):
        if merged and c_start[k] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], int(c_end[k]))
        else:
            merged.append([int(c_start[k]), int(c_end[k])])
    m_start = np.array([m[0] for m in merged], dtype="int64")
    m_end = np.array([m[1] for m in merged], dtype="int64")
    wide_np = {f: wide[f].to_numpy() for f in feeds}
    ratio_np = {f: ratio[f].to_numpy() for f in feeds}
    present_np = {f: present[f].to_numpy() for f in feeds}
    active_np = {f: active[f].to_numpy() for f in feeds}
    for date, d0, d1 in zip(days, d_start, d_end):
        ov = np.nonzero((c_start < d1) & (c_end > d0))[0]
        inside = np.clip(np.minimum(m_end, d1) - np.maximum(m_start, d0), 0, None).sum()
        gap = int(round(((d1 - d0) - inside) / 60))
        full = gap <= MAX_GAP_MINUTES
        unreadable_hit = bool(np.any((unread - 86400 < d1) & (unread > d0)))
        for f in feeds:
            fr = int(wide_np[f][ov].sum())
            rs = ratio_np[f][ov]
            pr = present_np[f][ov]
            if not full or not len(ov):
                reason = "unreadable dump" if unreadable_hit else "no dump"
            elif not pr.all():
                reason = "feed absent"
            elif not active_np[f][ov].any():
                reason = "feed inactive"
            else:
                reason = "ok"
            finite = rs[np.isfinite(rs)] if len(rs) else rs
            rows.append((date, f, reason in ("ok", "feed inactive"), reason, len(ov), fr,
                         float(np.round(finite.min(), 3)) if len(finite) else np.nan, gap))
    return pd.DataFrame(rows, columns=["date", "feed", "covered", "reason", "n_dumps", "feed_rows",
                                       "min_share_ratio", "gap_minutes"])


def flag_vanished_feeds(coverage: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Mark covered feed-days on which the feed alone vanished from the daily counts.

    Parameters
    ----------
    coverage : DataFrame
        From :func:`compute_coverage` (``date`` as datetime, ``feed``, ``covered``, ``reason``).
    daily : DataFrame
        Daily counts with ``date`` (datetime), ``feed`` and ``n_releases`` (any extra
        breakdown, such as family, is summed).

    Returns
    -------
    DataFrame
        A copy of ``coverage`` with ``covered=False, reason="feed vanished"`` on the
        flagged days (rule in the module docs).

    Examples
    --------
    >>> import pandas as pd
    >>> days = pd.date_range("2021-01-01", periods=60)
    >>> daily = pd.DataFrame({"date": list(days) * 2, "feed": ["a"] * 60 + ["b"] * 60,
    ...                       "n_releases": [500] * 30 + [0] + [500] * 29 + [300] * 60})
    >>> cov = daily[["date", "feed"]].assign(covered=True, reason="ok")
    >>> out = flag_vanished_feeds(cov, daily)
    >>> out.loc[~out["covered"], ["feed", "reason"]].to_dict("records")
    [{'feed': 'a', 'reason': 'feed vanished'}]
    """
    counts = daily.groupby(["date", "feed"])["n_releases"].sum().unstack("feed").sort_index()
    cov = coverage.pivot(index="date", columns="feed", values="covered").reindex(
        index=counts.index, columns=counts.columns).fillna(False).astype(bool)
    med = counts.where(cov).rolling(VANISH_WINDOW, center=True, min_periods=VANISH_WINDOW // 2).median()
    ratio = counts / med
    out = coverage.copy()
    key = out.set_index(["date", "feed"]).index
    for f in counts.columns:
        others = [g for g in counts.columns if g != f]
        carry_on = ((ratio[others] >= VANISH_OTHERS_RATIO) & (med[others] >= VANISH_OTHERS_MIN_MEDIAN)).any(axis=1)
        flag = cov[f] & (med[f] >= VANISH_MIN_MEDIAN) & (ratio[f] < VANISH_RATIO) & carry_on
        hit = key.isin(pd.MultiIndex.from_arrays([counts.index[flag.to_numpy()], [f] * int(flag.sum())]))
        out.loc[hit, "covered"] = False
        out.loc[hit, "reason"] = "feed vanished"
    return out


def flag_displaced_feeds(coverage: pd.DataFrame, daily: pd.DataFrame, total: pd.Series,
                         feeds: Sequence[str] = DISPLACE_FEEDS) -> pd.DataFrame:
    """Mark covered feed-days on which a feed collapsed while the others carried its releases.

    Parameters
    ----------
    coverage : DataFrame
        ``date`` (datetime), ``feed``, ``covered``, ``reason``.
    daily : DataFrame
        Each feed's own counts: ``date``, ``feed``, ``n_releases`` (other columns summed).
    total : Series
        The Scene total per day (every release any non-P2P feed announced, counted once).
    feeds : sequence of str
        Feeds checked (default :data:`DISPLACE_FEEDS`).

    Returns
    -------
    DataFrame
        A copy of ``coverage`` with ``covered=False, reason="feed displaced"`` on the days
        where the feed's 7-day mean is under :data:`DISPLACE_RATIO` of its 91-day median
        (median at least :data:`DISPLACE_MIN_MEDIAN`) while the total's 7-day mean stays at
        :data:`DISPLACE_TOTAL_RATIO` of its median or above.

    Notes
    -----
    A raid lowers the total with the feed (after SPARKS the Scene total's 7-day mean stayed at
    0.34-0.72 of its median from 2020-08-25 to 09-19), so it is not flagged; a partial outage
    of one feed whose
    releases other feeds logged instead (``#pre@corrupt`` in September 2018: about 45 % of
    its usual count while the total held) is.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> days = pd.date_range("2021-01-01", periods=200)
    >>> a = np.full(200, 1000); a[100:120] = 400          # feed a collapses ...
    >>> total = pd.Series(2000.0, index=days)            # ... while the total holds
    >>> daily = pd.DataFrame({"date": days, "feed": "a", "n_releases": a})
    >>> cov = daily[["date", "feed"]].assign(covered=True, reason="ok")
    >>> out = flag_displaced_feeds(cov, daily, total, feeds=["a"])
    >>> int((out["reason"] == "feed displaced").sum()) > 10
    True
    """
    counts = daily.groupby(["date", "feed"])["n_releases"].sum().unstack("feed").sort_index()
    tot = total.reindex(counts.index).astype(float)
    t_med = tot.rolling(DISPLACE_LONG, center=True, min_periods=DISPLACE_LONG // 3).median()
    t_ratio = tot.rolling(DISPLACE_SHORT, center=True, min_periods=DISPLACE_SHORT // 2 + 1).mean() / t_med
    out = coverage.copy()
    key = out.set_index(["date", "feed"]).index
    for f in feeds:
        if f not in counts.columns:
            continue
        x = counts[f].astype(float)
        med = x.rolling(DISPLACE_LONG, center=True, min_periods=DISPLACE_LONG // 3).median()
        r = x.rolling(DISPLACE_SHORT, center=True, min_periods=DISPLACE_SHORT // 2 + 1).mean() / med
        flag = (r < DISPLACE_RATIO) & (med >= DISPLACE_MIN_MEDIAN) & (t_ratio >= DISPLACE_TOTAL_RATIO)
        hit_days = counts.index[flag.fillna(False).to_numpy()]
        hit = key.isin(pd.MultiIndex.from_arrays([hit_days, [f] * len(hit_days)])) & out["covered"].to_numpy()
        out.loc[hit, "covered"] = False
        out.loc[hit, "reason"] = "feed displaced"
    return out


def _gzip_csv(df: pd.DataFrame) -> bytes:
    return _gzip_bytes(_csv_bytes(df))


_CSV_SPECIAL = r'[,"\r\n]'


def _csv_bytes(df: pd.DataFrame, *, header: bool = True) -> bytes:
    """``df.to_csv(index=False)`` bytes, written by Arrow's CSV writer (seven times faster on
    the group table) when that gives the same bytes: integer and text columns only, and no
    text that needs quoting; otherwise by pandas."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    simple = df.shape[1] > 1 and not any(re.search(_CSV_SPECIAL, str(c)) for c in df.columns)
    for c in df.columns if simple else ():
        if pd.api.types.is_integer_dtype(df[c].dtype) and not df[c].isna().any():
            continue
        # text only (no floats, bools or dates hiding in an object column, no missing value),
        # and nothing that needs quoting
        if pd.api.types.infer_dtype(df[c], skipna=False) != "string":
            simple = False
            break
        text = df[c].astype(str)
        if text.str.contains(_CSV_SPECIAL, regex=True).any() or (text == "").any():
            simple = False
            break
    if not simple or not len(df):
        return df.to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")
    table = pa.Table.from_pandas(df, preserve_index=False)
    buf = io.BytesIO()
    if header:
        buf.write((",".join(map(str, df.columns)) + "\n").encode("utf-8"))
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return buf.getvalue()


#: gzip level of the processed tables: level 6 writes the 26 MB group table four times faster
#: than level 9 (0.75 s against 3 s here) for 3 % more bytes (4.1 MB against 4.0 MB).
GZIP_LEVEL = 6


def _gzip_bytes(text: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=GZIP_LEVEL) as gz:
        gz.write(text)
    return buf.getvalue()


class _GzipStream:
    """:func:`_gzip_bytes` of text handed over in pieces, compressed in order by one worker
    thread while the caller makes the next piece (zlib releases the GIL, and its output does
    not depend on how the input is cut): the same bytes as one call on the whole text."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._buf, mtime=0, compresslevel=GZIP_LEVEL)
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._jobs: list = []
        self.fed = False

    def feed(self, text: bytes) -> None:
        self.fed = True
        self._jobs.append(self._pool.submit(self._gz.write, text))

    def result(self) -> bytes:
        for job in self._jobs:
            job.result()
        self._pool.submit(self._gz.close).result()
        return self._buf.getvalue()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), unit="D")


def missing_days_markdown(coverage: pd.DataFrame) -> str:
    """Every day a feed is not covered, as Markdown: runs of consecutive days per feed and
    reason (the list in ``data/README.md``)."""
    miss = coverage[~coverage["covered"]].sort_values(["feed", "date"])
    lines = ["| feed | days | n | reason |", "| --- | --- | --- | --- |"]
    for (feed, reason), grp in miss.groupby(["feed", "reason"], sort=True):
        ds = pd.DatetimeIndex(grp["date"]).sort_values()
        run_start = prev = None
        runs = []
        for d in ds:
            if prev is not None and (d - prev).days == 1:
                prev = d
                continue
            if run_start is not None:
                runs.append((run_start, prev))
            run_start = prev = d
        if run_start is not None:
            runs.append((run_start, prev))
        for a, b in runs:
            span = a.strftime("%Y-%m-%d") if a == b else f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"
            lines.append(f"| `{feed}` | {span} | {(b - a).days + 1} | {reason} |")
    order = lines[:2] + sorted(lines[2:], key=lambda ln: (ln.split("|")[2].split("..")[0], ln))
    return "\n".join(order) + "\n"


_MISSING_START, _MISSING_END = "<!-- missing-days:start -->\n", "<!-- missing-days:end -->"


def write_missing_days(readme: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> Path:
    """Write :func:`missing_days_markdown` of the bundled coverage into ``data/README.md``,
    between its ``missing-days`` markers (``raidstudy build`` does this for the default
    folder)."""
    from raidstudy.paths import repo_root

    path = Path(readme) if readme is not None else repo_root() / "data" / "README.md"
    text = path.read_text()
    a, b = text.find(_MISSING_START), text.find(_MISSING_END)
    if a < 0 or b < a:
        raise DataError(f"{path} lacks the markers {_MISSING_START.strip()} ... {_MISSING_END}")
    body = missing_days_markdown(load_coverage(data_dir))
    atomic_write_bytes(path, (text[:a + len(_MISSING_START)] + body + text[b:]).encode())
    return path


def build_processed(
    releases_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    dumps_path: str | os.PathLike | None = None,
    start: str | None = None,
    end: str | None = None,
    min_group_releases: int = DEFAULT_MIN_GROUP_RELEASES,
    ingest_report: dict | None = None,
    input_checksums: dict[str, str] | None = None,
    day_zone: str = "UTC",
    published: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write the processed tables (deterministically: byte-identical on a rerun).

    Parameters
    ----------
    releases_path : path
        ``releases.parquet`` from the ingest (``copies.parquet`` and ``dumps.parquet`` are
        read beside it).
    out_dir : path, optional
        Output folder (default ``data/processed``).
    dumps_path : path, optional
        The ingest's ``dumps.parquet`` (default: beside ``releases_path``).
    start, end : str, optional
        First and last day. Default: the first and last day fully inside the dumps' windows.
    min_group_releases : int
        Groups with fewer releases over the range in a feed set are left out of that feed
        set's group tables.
    ingest_report : dict, optional
        The ingest report (default: ``ingest_report.json`` beside ``releases_path``);
        its input checksums go into ``PROVENANCE.json``.
    input_checksums : dict, optional
        Override the input checksums recorded.
    day_zone : str
        Zone whose calendar days are counted (default UTC).
    published : path, optional
        Published counts to replicate (default ``data/published_counts.csv``); the
        replication goes to ``seed_numbers.csv``. Skipped when the file is absent.

    Returns
    -------
    dict
        The provenance written to ``PROVENANCE.json``.
    """
    import json

    import pyarrow.parquet as pq

    from raidstudy.data.ingest import COPIES_FILE, check_zone

    day_zone = check_zone(day_zone)
    releases_path = Path(releases_path)
    if not releases_path.is_file():
        raise DataError(f"releases table {releases_path} not found; run `raidstudy ingest` first")
    if min_group_releases < 1:
        raise ParameterError("min_group_releases", min_group_releases, "must be at least 1")
    out = Path(out_dir) if out_dir is not None else processed_dir()
    dumps_path = Path(dumps_path) if dumps_path is not None else releases_path.parent / "dumps.parquet"
    if not dumps_path.is_file():
        raise DataError(f"dumps table {dumps_path} not found; rerun `raidstudy ingest`")
    copies_path = releases_path.parent / COPIES_FILE
    if not copies_path.is_file():
        raise DataError(f"copies table {copies_path} not found (the releases table comes from an older raidstudy); "
                        "rerun `raidstudy ingest` (or `raidstudy build --reingest`)")
    if ingest_report is None:
        rp = releases_path.parent / "ingest_report.json"
        ingest_report = json.loads(rp.read_text()) if rp.is_file() else {}
    import pyarrow.compute as pc

    dumps = pd.read_parquet(dumps_path)
    tbl = pq.read_table(releases_path, columns=["family", "nuked", "group", "size_mb"])
    n_rel = tbl.num_rows
    # the copies stay Arrow/numpy columns: pandas' tz-aware conversion of 6 million times
    # cost more than the day computation itself
    release, feed_names, feed_codes, pre_secs = _copy_columns(copies_path)

    files = dumps.drop_duplicates("origin")
    ok_files = files[files["status"] != "unreadable"]
    first, last = int(ok_files["created_unix"].min()), int(ok_files["created_unix"].max())
    start_ts = pd.Timestamp(start) if start is not None else \
        pd.Timestamp(first, unit="s").floor("D") + pd.Timedelta(days=1)
    end_ts = pd.Timestamp(end) if end is not None else pd.Timestamp(last, unit="s").floor("D") - pd.Timedelta(days=1)
    present = np.bincount(feed_codes, minlength=len(feed_names)) > 0
    feeds = sorted((set(dumps["feed"].unique()) | {feed_names[i] for i in np.flatnonzero(present)}) - {""})

    # every copy counts: the day each feed announced each release
    column = np.array([feeds.index(f) if f in feeds else -1 for f in feed_names] + [-1], np.int64)[feed_codes]
    del feed_codes
    days = day_matrix(release, column, pre_secs, n_rel, len(feeds), zone=day_zone)
    fam_enc = pc.dictionary_encode(tbl.column("family").combine_chunks())
    fam_names = fam_enc.dictionary.to_pylist()
    unknown = sorted(set(fam_names) - set(FAMILIES))
    if unknown:  # pragma: no cover - the ingest only writes known families
        raise DataError(f"unknown families in {releases_path}: {unknown}")
    fam_codes = np.array([FAMILIES.index(f) for f in fam_names] or [0], np.int8)[
        fam_enc.indices.to_numpy(zero_copy_only=False)]
    grp_enc = pc.dictionary_encode(tbl.column("group").combine_chunks())
    grp_names = np.array(grp_enc.dictionary.to_pylist(), dtype=object)
    grp_codes = grp_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    size = pc.fill_null(tbl.column("size_mb"), np.nan).to_numpy()
    nuked = tbl.column("nuked").to_numpy().astype(np.int64)
    del tbl
    measures = {"n_releases": np.ones(n_rel, np.int64), "n_nuked": nuked,
                "n_sized": (~np.isnan(size)).astype(np.int64),
                # whole MB per release: sums stay exact integers (sizes are stated in MB)
                "size_mb": np.rint(np.nan_to_num(size)).astype(np.int64)}
    lo, hi = _day_number(start_ts), _day_number(end_ts)
    # groups first: their CSV takes the longest to compress, which a second thread does while
    # the rest is computed (zlib releases the GIL); the pattern table is grouped meanwhile in
    # a third (its sort and sums release it too)
    pool = ThreadPoolExecutor(max_workers=1)
    pat_pool = ThreadPoolExecutor(max_workers=1)
    pat_job = pat_pool.submit(pattern_table, days, feeds, {"family": fam_codes}, measures)
    group_zip = _GzipStream()
    try:
        # groups: every group with at least min_group_releases releases in a feed set; each
        # feed set's part is compressed while the next is made
        def on_daily(part: pd.DataFrame) -> None:
            for i in range(0, max(len(part), 1), 100_000):  # (small pieces: the compressor starts sooner)
                group_zip.feed(_csv_bytes(part.iloc[i:i + 100_000], header=not group_zip.fed))

        _, summary_out = _group_tables(days, feeds, grp_codes, grp_names, fam_codes, lo, hi, min_group_releases,
                                       on_daily=on_daily)
        zipped = {GROUP_FILE: group_zip,
                  GROUP_SUMMARY_FILE: pool.submit(_gzip_bytes, summary_out.to_csv(
                      index=False, lineterminator="\n").encode("utf-8"))}
        cov = compute_coverage(dumps, feeds, start_ts, end_ts, zone=day_zone)
        pat = pat_job.result()
        pat_pool.shutdown()
        del measures
        reach = pat[feeds].to_numpy().max(axis=1)
        pat = pat[(pat["day"] <= hi) & (pat["day"] + reach >= lo)].reset_index(drop=True)

        # each feed's own counts (coverage checks) and the Scene total
        day_ix = pd.date_range(start_ts, end_ts, freq="D", name="date")
        own = []
        for f in feeds:
            c = count_over_feeds(pat, feeds, [f], "n_releases")
            own.append(pd.DataFrame({"date": _day_index(c.index.to_numpy()), "feed": f, "n_releases": c.to_numpy()}))
        own_df = pd.concat(own, ignore_index=True)
        own_df = own_df[(own_df["date"] >= start_ts) & (own_df["date"] <= end_ts)]
        grid = pd.MultiIndex.from_product([day_ix, feeds], names=["date", "feed"])
        own_df = own_df.set_index(["date", "feed"]).reindex(grid, fill_value=0).reset_index()
        scene = [f for f in feeds if f not in NON_SCENE_FEEDS]
        tot = count_over_feeds(pat, feeds, scene, "n_releases")
        total = pd.Series(tot.to_numpy(dtype=float), index=_day_index(tot.index.to_numpy())).reindex(day_ix, fill_value=0.0)
        cov = flag_vanished_feeds(cov, own_df)
        cov = flag_displaced_feeds(cov, own_df, total)

        pat_out = pat.copy()
        pat_out.insert(0, "date", _iso(pat_out.pop("day").to_numpy()))
        pat_out["family"] = np.asarray(FAMILIES)[pat_out["family"].to_numpy()]
        for f in feeds:
            pat_out[f] = pat_out[f].astype("int64").astype(str).replace(str(NONE), "")
        pat_out = pat_out[["date", "family", *feeds, *MEASURES]]
        zipped[DAILY_FILE] = pool.submit(_gzip_bytes, pat_out.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        del pat_out

        cov_out = cov.copy()
        cov_out["date"] = cov_out["date"].dt.strftime("%Y-%m-%d")
        cov_out["covered"] = cov_out["covered"].map({True: "true", False: "false"})
        cov_out["min_share_ratio"] = cov_out["min_share_ratio"].map(lambda x: "" if pd.isna(x) else f"{x:.3f}")

        from raidstudy.data.clock import clock_table

        made = {
            COVERAGE_FILE: cov_out.to_csv(index=False, lineterminator="\n").encode("utf-8"),
            CLOCK_FILE: _gzip_csv(clock_table(dumps)),
        }
        pub_path = Path(published) if published is not None else _published_default()
        if pub_path is not None and pub_path.is_file():
            from raidstudy.data.seed import replicate

            # the published counts are compared in both zones
            berlin = days if day_zone == "Europe/Berlin" else \
                day_matrix(release, column, pre_secs, n_rel, len(feeds), zone="Europe/Berlin")
            table = replicate(pd.read_csv(pub_path, keep_default_na=False), {day_zone: days, "Europe/Berlin": berlin},
                              feeds)
            made[SEED_FILE] = table.to_csv(index=False, lineterminator="\n").encode("utf-8")
            del berlin
        blobs = {name: made[name] if name in made else zipped[name].result()
                 for name in (DAILY_FILE, GROUP_FILE, GROUP_SUMMARY_FILE, COVERAGE_FILE, CLOCK_FILE, SEED_FILE)
                 if name in made or name in zipped}
    finally:
        group_zip.close()
        pool.shutdown(wait=True, cancel_futures=True)
        pat_pool.shutdown(wait=True, cancel_futures=True)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in blobs.items():
        atomic_write_bytes(out / name, data)
    lic = _licence_source()
    if lic is not None:
        atomic_write_bytes(out / LICENSE_FILE, lic.read_bytes())
    per_file = ingest_report.get("per_file", [])
    if input_checksums is None:
        input_checksums = {f["origin"]: f["sha256"] for f in per_file if f.get("sha256")}
    sums_text = "".join(f"{v}  {k}\n" for k, v in sorted(input_checksums.items()))
    uncovered = cov[~cov["covered"]]
    prov = {
        "upstream": {"repository": UPSTREAM_REPO, "commit": UPSTREAM_COMMIT, "licence": "GPL-3.0-only",
                     "licence_file": LICENSE_FILE},
        "inputs": {
            "raw_dir": ingest_report.get("raw_dir"),
            "n_files": len(files),
            "first_file": files.sort_values("created_unix")["origin"].iloc[0] if len(files) else None,
            "last_file": files.sort_values("created_unix")["origin"].iloc[-1] if len(files) else None,
            "sha256_of_sha256_list": sha256_bytes(sums_text.encode()),
            "sha256_list_format": "sha256sum lines '<sha256>  <path relative to raw_dir>', sorted by path",
            "unreadable_files": sorted(files[files["status"] == "unreadable"]["origin"].tolist()),
            "lines_read": ingest_report.get("lines_read"),
            "unique_releases": ingest_report.get("rows_kept"),
            "duplicates": ingest_report.get("duplicates"),
            "copies": ingest_report.get("copies"),
            "skipped": ingest_report.get("skipped"),
            "source_zone": ingest_report.get("source_zone"),
            "titles_nuke_status_from_later_copy": ingest_report.get("titles_nuke_status_from_later_copy"),
        },
        "range": {"start": start_ts.strftime("%Y-%m-%d"), "end": end_ts.strftime("%Y-%m-%d")},
        "day_zone": day_zone,
        "feeds": feeds,
        "secondary_feeds": [f for f in SECONDARY_FEEDS if f in feeds],
        "families": list(FAMILIES),
        "measures": list(MEASURES),
        "coverage_rule": {"share_threshold": SHARE_THRESHOLD, "count_threshold": COUNT_THRESHOLD,
                          "share_window_dumps": SHARE_WINDOW, "max_gap_minutes": MAX_GAP_MINUTES,
                          "vanish_ratio": VANISH_RATIO, "vanish_min_median": VANISH_MIN_MEDIAN,
                          "vanish_others_ratio": VANISH_OTHERS_RATIO,
                          "vanish_others_min_median": VANISH_OTHERS_MIN_MEDIAN, "vanish_window_days": VANISH_WINDOW,
                          "displace_ratio": DISPLACE_RATIO, "displace_total_ratio": DISPLACE_TOTAL_RATIO,
                          "displace_min_median": DISPLACE_MIN_MEDIAN, "displace_windows_days": [DISPLACE_SHORT, DISPLACE_LONG],
                          "displace_feeds": list(DISPLACE_FEEDS),
                          "uncovered_feed_days": {f: int((uncovered["feed"] == f).sum()) for f in feeds}},
        "min_group_releases": int(min_group_releases),
        "n_groups": {k: int((summary_out["feed_set"] == k).sum()) for k in GROUP_FEED_SETS},
        "outputs": {name: sha256_bytes(data) for name, data in blobs.items()},
        "rebuild_command": "raidstudy build   (or: make data)",
        "package": {"name": "raidstudy", "version": __version__},
    }
    write_json(out / PROVENANCE_FILE, prov)
    atomic_write_bytes(out / "INPUT_SHA256SUMS", sums_text.encode())
    _CACHE.clear()
    return prov


def _copy_columns(path: Path) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """The copies table's columns as numpy: release row, feed names and each copy's code
    into them, pre time in UTC seconds (floored, as pandas' conversion to seconds does)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["release", "feed", "pre_time"])
    feed = t.column("feed").combine_chunks()
    if not isinstance(feed, pa.DictionaryArray):
        feed = pc.dictionary_encode(feed)
    names = [str(v) for v in feed.dictionary.to_pylist()]
    codes = feed.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pre = t.column("pre_time")
    unit = pre.type.unit if pa.types.is_timestamp(pre.type) else "s"
    raw = pc.cast(pre, pa.int64()).to_numpy()
    secs = raw // {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    return t.column("release").to_numpy().astype(np.int64), names, codes, secs


def _unique_counts(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_counts=True)``, by hashing the keys and sorting only the
    distinct ones (several times fewer than the keys here)."""
    codes, uniq = pd.factorize(key, sort=False)
    counts = np.bincount(codes, minlength=len(uniq))
    order = np.argsort(uniq, kind="stable")
    return np.asarray(uniq)[order], counts[order]


def _group_tables(days: np.ndarray, feeds: Sequence[str], grp_codes: np.ndarray, grp_names: np.ndarray,
                  fam_codes: np.ndarray, lo: int, hi: int, min_releases: int,
                  on_daily=None) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The daily group table and the group summary, for every feed set (integer codes
    throughout). The daily table has one row per day, group and family (sorted so) and a count
    column ``n_<feed set>`` per feed set; the summary one row per feed set and group.

    With ``on_daily``, the daily table is handed to it as soon as it is made, and the daily
    table returned is None (see :class:`_GzipStream`).
    """
    order = np.argsort(grp_names.astype(str), kind="stable")
    rank = np.empty(len(grp_names), np.int64)
    rank[order] = np.arange(len(grp_names))
    names_sorted = grp_names[order]
    empty = np.flatnonzero(grp_names == "")
    n_g, n_f = len(grp_names), len(FAMILIES)
    per_set: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    summaries = []
    for set_name in sorted(GROUP_FEED_SETS):  # table order (the tables are sorted by feed set)
        dd = dated(days, feeds, _feed_set(set_name, feeds))
        inr = (dd >= lo) & (dd <= hi)
        if len(empty):
            inr &= grp_codes != empty[0]
        g = rank[grp_codes[inr]]
        keep = np.bincount(g, minlength=n_g) >= min_releases
        sel = keep[g]
        day, g, f = dd[inr][sel] - lo, g[sel], fam_codes[inr][sel].astype(np.int64)
        key, n = _unique_counts((day * n_g + g) * n_f + f)
        k_day, rest = np.divmod(key, n_g * n_f)
        k_g, k_f = np.divmod(rest, n_f)
        per_set[set_name] = (key, n)
        # per group: releases, first and last day, active days, the family of most releases,
        # from the distinct (day, group, family) keys and their counts (not every release)
        total = np.bincount(k_g, weights=n, minlength=n_g).astype(np.int64)
        gs = np.flatnonzero(total)
        total = total[gs]
        # the keys are sorted by day: a group's first key holds its first day, its last its last
        seen, at_first = np.unique(k_g, return_index=True)
        at_last = len(k_g) - 1 - np.unique(k_g[::-1], return_index=True)[1]
        first = np.zeros(n_g, np.int64)
        last = np.zeros(n_g, np.int64)
        first[seen] = k_day[at_first]
        last[seen] = k_day[at_last]
        # each (day, group) pair is one run of the sorted keys
        new_pair = np.concatenate(([True], (k_day[1:] != k_day[:-1]) | (k_g[1:] != k_g[:-1])))
        n_days = np.bincount(k_g[new_pair], minlength=n_g)[gs]
        by_fam = np.bincount(k_g * n_f + k_f, weights=n, minlength=n_g * n_f).reshape(n_g, n_f)[gs]
        summaries.append(pd.DataFrame({
            "feed_set": set_name, "group": names_sorted[gs], "n_releases": total.astype(np.int64),
            "first_date": _iso(first[gs] + lo), "last_date": _iso(last[gs] + lo), "n_days": n_days.astype(np.int64),
            "family": np.asarray(FAMILIES)[by_fam.argmax(axis=1)]}))
    # one row per (day, group, family) with a count column per feed set: half the rows of a
    # long table and no repeated feed-set names (the table is the build's largest)
    key = np.unique(np.concatenate([k for k, _ in per_set.values()]))
    k_day, rest = np.divmod(key, n_g * n_f)
    k_g, k_f = np.divmod(rest, n_f)
    daily = pd.DataFrame({"date": _iso(k_day + lo), "group": names_sorted[k_g], "family": np.asarray(FAMILIES)[k_f]})
    for set_name in GROUP_FEED_SETS:
        k, n = per_set[set_name]
        col = np.zeros(len(key), np.int64)
        col[np.searchsorted(key, k)] = n
        daily[f"n_{set_name}"] = col
    if on_daily is not None:
        on_daily(daily)
        daily = None
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary.iloc[np.lexsort((np.arange(len(summary)), summary["feed_set"].to_numpy()))].reset_index(drop=True)
    return daily, summary


def _day_number(ts: pd.Timestamp) -> int:
    return int(np.datetime64(ts.strftime("%Y-%m-%d"), "D").astype(np.int64))


def _published_default() -> Path | None:
    from raidstudy.paths import repo_root

    p = repo_root() / "data" / "published_counts.csv"
    return p if p.is_file() else None


def _licence_source() -> Path | None:
    from raidstudy.paths import shared_dir

    sh = shared_dir()
    if sh is not None:
        p = sh / "data" / "raw" / "nzedb-predb-dumps" / LICENSE_FILE
        if p.is_file():
            return p
    return None
