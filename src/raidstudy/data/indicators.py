"""Daily indicators from the releases table, with a coverage mask, and the bundled data.

The bundled tables in ``data/processed/`` (written by :func:`build_processed`, read by
:func:`load_daily`, :func:`load_coverage`, :func:`indicator_series`):

``daily_feed_family.csv.gz``
    ``date, feed, family, n_releases, n_nuked``: unique releases per UTC pre day, feed
    and section family (every date x feed x family of the covered range, zeros explicit).
``daily_group.csv.gz``
    ``date, group, n_releases``: releases per day of each group with at least
    ``min_group_releases`` releases over the whole range (all feeds together).
``coverage.csv``
    ``date, feed, covered, reason, n_dumps, feed_rows, min_share_ratio``: whether a feed has
    data on a day (see *Coverage rule*).
``PROVENANCE.json``
    upstream repository and commit, input checksums, output checksums, rebuild command,
    package version.

Coverage rule
-------------
Each nZEDb dump holds the last 24 hours of pres at its creation time ``c`` (the number in
its file name), so it covers the window ``(c - 24 h, c]`` (widened by :data:`WINDOW_SLACK`,
30 minutes, because the daily job drifts by seconds a day). A feed ``F`` is *present* in a
dump when its share of the dump's valid rows is at least :data:`SHARE_THRESHOLD` (0.2) times
its usual share (the median share over the :data:`SHARE_WINDOW` dumps either side). Using
the share rather than the count keeps a real collapse of the whole Scene (the SPARKS raid,
when every Scene feed fell together and corrupt's share stayed at 0.36-0.72 of normal)
*covered*, while an outage of one feed (corrupt's share falls to 0.00-0.20 while the other
feeds carry on, e.g. 2019-09-15..24, 2020-01-04..08, 2020-04-02..03) is not.

A day ``D`` (UTC) is covered for ``F`` when (a) the windows of the readable dumps cover all
of ``[D, D + 1)``, and (b) ``F`` is present in every dump whose window overlaps that day.
Otherwise it is missing, with a ``reason``: ``no dump`` (a collection gap such as
2020-01-12..22, or outside the dumps' range), ``unreadable dump`` (a file skipped with
``--skip-unreadable``) or ``feed absent``. A feed whose usual share is zero (it has not
started yet or has stopped, like ``m2v.ru`` from 2023-04; an absence longer than about
:data:`SHARE_WINDOW` dumps counts as such) is ``feed inactive``: covered, with zero counts,
because that is a change in what nZEDb collected rather than a gap.

A second check catches outages that the dump shares miss (a dump can hold a feed's older
rows while the feed announces nothing new, as ``#pre@corrupt`` did on 2021-02-09..13): a
covered feed-day is set to ``feed vanished`` when the feed's own count that day is below
:data:`VANISH_RATIO` (5%) of its median over the :data:`VANISH_WINDOW` (29) days centred on
it, that median is at least :data:`VANISH_MIN_MEDIAN` (100; a near-zero day of a small
feed is noise), and at least one other feed with a median of 20 or more stands at half its
median or above that day. The last condition keeps a raid covered: after SPARKS every
Scene feed fell together (corrupt to 13% of its median on 2020-08-26, xrel to 32%), so no
feed vanished *alone*.

Missing days are never zero: every indicator is NaN on them, and a total over several
feeds is NaN on a day where *any* of them is missing.

Feeds
-----
``#pre@corrupt``, ``xrel``: Scene pre feeds. ``xrelp2p``: P2P (non-Scene) releases, a natural
control series. ``srrdb``: the time is when the release was *uploaded to srrDB*, not its pre
time. ``m2v.ru``: a mirror whose clock is about 8 h behind; most of its rows repeat titles
already seen on another feed, so after deduplication it has few releases except when
another feed is down. Because duplicates keep the first row seen, an outage of one feed
moves some of its releases to ``srrdb``/``m2v.ru``: totals over all feeds are more stable
than any single feed.
"""
from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from raidstudy import __version__
from raidstudy.io import atomic_write_bytes, sha256_bytes, sha256_file, write_json
from raidstudy.errors import DataError, ParameterError
from raidstudy.paths import display_path, processed_dir
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
    "daily_counts",
    "build_processed",
]

MEASURES = ("n_releases", "n_nuked")
SHARE_THRESHOLD = 0.2
SHARE_WINDOW = 14
MIN_REF_DUMPS = 5
#: Seconds of jitter allowed between consecutive daily dumps (the job runs every 24 h and a
#: few seconds); a larger gap between two windows makes the days it touches "no dump".
WINDOW_SLACK = 1800
VANISH_RATIO = 0.05
VANISH_MIN_MEDIAN = 100
VANISH_OTHERS_RATIO = 0.5
VANISH_OTHERS_MIN_MEDIAN = 20
VANISH_WINDOW = 29
DAILY_FILE = "daily_feed_family.csv.gz"
GROUP_FILE = "daily_group.csv.gz"
COVERAGE_FILE = "coverage.csv"
PROVENANCE_FILE = "PROVENANCE.json"
LICENSE_FILE = "LICENSE-GPL-3.0.txt"
DATA_FILES = (DAILY_FILE, GROUP_FILE, COVERAGE_FILE)
UPSTREAM_REPO = "https://github.com/nZEDb/nZEDbPre_Dumps"
UPSTREAM_COMMIT = "837207b065a1856e1b012fd1c61bedf81eb843e2"
DEFAULT_MIN_GROUP_RELEASES = 1000


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


def load_daily(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The bundled long table of daily counts.

    Parameters
    ----------
    data_dir : path, optional
        Folder of processed files (default ``data/processed``).

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64, UTC day, tz-naive), ``feed`` (str), ``family`` (str),
        ``n_releases`` (int64), ``n_nuked`` (int64). Counts on days that are not covered
        (see :func:`load_coverage`) are what the dumps hold and must not be read as zeros.
    """
    d = _dir(data_dir)
    df = _cached_csv(d / DAILY_FILE, dtype={"feed": str, "family": str, "n_releases": "int64",
                                             "n_nuked": "int64"}, keep_default_na=False)
    df["date"] = pd.to_datetime(df["date"])
    return df


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
    """Daily releases per group (``date``, ``group``, ``n_releases``); see :func:`group_series`."""
    d = _dir(data_dir)
    if not (d / GROUP_FILE).is_file():
        raise DataError(f"{GROUP_FILE} is missing from {_rel(d)}; rebuild with `raidstudy build`")
    df = _cached_csv(d / GROUP_FILE, dtype={"group": str, "n_releases": "int64"}, keep_default_na=False)
    df["date"] = pd.to_datetime(df["date"])
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
    """A daily indicator: the sum over the selected feeds and families, NaN where not covered.

    Parameters
    ----------
    feeds : str or list of str, optional
        Feeds to add up; ``None`` means all feeds (:func:`available_feeds`). Note that
        ``srrdb`` times are upload times, not pre times, and ``xrelp2p`` is P2P, not Scene.
    families : str or list of str, optional
        Section families (:data:`raidstudy.data.releases.FAMILIES`); ``None`` means all.
    measure : {"n_releases", "n_nuked"}
        Releases, or releases currently nuked.
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
                             hint="n_releases counts releases, n_nuked nuked ones")
    fams = _check_list("families", families, FAMILIES, "families are the harmonised section families")
    start_ts, end_ts = _date("start", start), _date("end", end)
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise ParameterError("start", start, f"is after end={end!r}", hint="swap them")
    d = _dir(data_dir)
    cov = load_coverage(d)
    feed_list = _check_list("feeds", feeds, sorted(cov["feed"].unique().tolist()),
                            "see raidstudy.data.indicators.available_feeds()")
    daily = load_daily(d)
    sel = daily[daily["feed"].isin(feed_list) & daily["family"].isin(fams)]
    s = sel.groupby("date")[measure].sum().astype("float64")
    cv = cov[cov["feed"].isin(feed_list)].pivot(index="date", columns="feed", values="covered")
    idx = pd.date_range(cv.index.min(), cv.index.max(), freq="D", name="date")
    cv = cv.reindex(idx).reindex(columns=feed_list).fillna(False).astype(bool)
    s = s.reindex(idx).fillna(0.0)
    s[~cv.all(axis=1)] = np.nan
    if start_ts is not None or end_ts is not None:
        s = s.loc[start_ts:end_ts]
        s = s.asfreq("D") if len(s) else s
    s.index.name = "date"
    s.index.freq = "D" if len(s) else None
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
    start=None,
    end=None,
    data_dir: str | os.PathLike | None = None,
) -> pd.Series:
    """Daily releases of one group (all feeds), NaN on days where any feed is not covered.

    Parameters
    ----------
    group : str
        Group name as in the titles (case-sensitive); only groups above the build's
        minimum volume are bundled.
    start, end : date-like, optional
        Inclusive bounds.
    data_dir : path, optional
        Folder of processed files.

    Returns
    -------
    pandas.Series
        Like :func:`indicator_series`.
    """
    d = _dir(data_dir)
    g = load_groups(d)
    groups = sorted(g["group"].unique().tolist())
    if group not in groups:
        raise ParameterError("group", group, "not among the bundled groups", accepted=groups,
                             hint="groups below the minimum volume are not bundled; rebuild with a lower "
                                  "--min-group-releases")
    cov = load_coverage(d)
    cv = cov.pivot(index="date", columns="feed", values="covered")
    idx = pd.date_range(cv.index.min(), cv.index.max(), freq="D", name="date")
    ok = cv.reindex(idx).fillna(False).astype(bool).all(axis=1)
    s = g[g["group"] == group].groupby("date")["n_releases"].sum().astype("float64").reindex(idx).fillna(0.0)
    s[~ok] = np.nan
    s = s.loc[_date("start", start):_date("end", end)]
    s.index.name = "date"
    s.index.freq = "D" if len(s) else None
    s.name = f"n_releases (group {group}; all feeds)"
    s.attrs["provenance"] = {"data_dir": _rel(d), "files": {n: _cached_sha256(d / n) for n in (GROUP_FILE, COVERAGE_FILE)},
                             "feeds": sorted(cv.columns.tolist()), "group": group, "measure": "n_releases"}
    return s


# --------------------------------------------------------------------------- building


def compute_coverage(
    dumps: pd.DataFrame,
    feeds: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    threshold: float = SHARE_THRESHOLD,
    window: int = SHARE_WINDOW,
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
        A feed is absent from a dump whose share is below ``threshold`` x its usual share.
    window : int
        Dumps either side used for the usual (median) share.

    Returns
    -------
    pandas.DataFrame
        ``date, feed, covered, reason, n_dumps, feed_rows, min_share_ratio``.
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
    active = (ref > 0).fillna(False)
    present = ((ratio >= threshold).fillna(False) & (wide > 0)) | ~active
    c_end = readable["created_unix"].to_numpy(dtype="int64")
    c_start = c_end - 86400 - WINDOW_SLACK
    unread = files[files["status"] == "unreadable"]["created_unix"].to_numpy(dtype="int64")

    days = pd.date_range(start, end, freq="D")
    rows = []
    day_s = np.array([int(d.timestamp()) for d in days], dtype="int64")
    # Merge the windows into disjoint intervals; a day is fully inside the windows iff it
    # lies inside one merged interval.
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
    for d0 in day_s:
        d1 = d0 + 86400
        ov = np.nonzero((c_start < d1) & (c_end > d0))[0]
        full = bool(np.any((m_start <= d0) & (m_end >= d1)))
        unreadable_hit = bool(np.any((unread - 86400 < d1) & (unread > d0)))
        date = pd.Timestamp(d0, unit="s")
        for f in feeds:
            fr = int(wide_np[f][ov].sum())
            rs = ratio_np[f][ov]
            pr = present_np[f][ov]
            if not full:
                reason = "unreadable dump" if unreadable_hit else "no dump"
            elif not pr.all():
                reason = "feed absent"
            elif not active_np[f][ov].any():
                reason = "feed inactive"
            else:
                reason = "ok"
            finite = rs[np.isfinite(rs)] if len(rs) else rs
            rows.append((date, f, reason in ("ok", "feed inactive"), reason, len(ov), fr,
                         float(np.round(finite.min(), 3)) if len(finite) else np.nan))
    return pd.DataFrame(rows, columns=["date", "feed", "covered", "reason", "n_dumps", "feed_rows",
                                       "min_share_ratio"])


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


def daily_counts(releases: pd.DataFrame) -> pd.DataFrame:
    """Counts per UTC pre day x feed x family (``n_releases``, ``n_nuked``) from releases."""
    day = releases["pre_time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("D")
    g = pd.DataFrame({"date": day, "feed": releases["feed"].astype(str), "family": releases["family"].astype(str),
                      "nuked": releases["nuked"].astype("int64")})
    out = g.groupby(["date", "feed", "family"], observed=True).agg(n_releases=("nuked", "size"),
                                                                    n_nuked=("nuked", "sum"))
    return out.reset_index()


def _gzip_csv(df: pd.DataFrame) -> bytes:
    text = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text)
    return buf.getvalue()


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
) -> dict[str, Any]:
    """Write the processed tables (deterministically: byte-identical on a rerun).

    Parameters
    ----------
    releases_path : path
        ``releases.parquet`` from the ingest.
    out_dir : path, optional
        Output folder (default ``data/processed``).
    dumps_path : path, optional
        The ingest's ``dumps.parquet`` (default: beside ``releases_path``).
    start, end : str, optional
        First and last day. Default: the first and last day fully inside the dumps' windows.
    min_group_releases : int
        Groups with fewer releases over the range are left out of ``daily_group.csv.gz``.
    ingest_report : dict, optional
        The ingest report (default: ``ingest_report.json`` beside ``releases_path``);
        its input checksums go into ``PROVENANCE.json``.
    input_checksums : dict, optional
        Override the input checksums recorded.

    Returns
    -------
    dict
        The provenance written to ``PROVENANCE.json``.
    """
    import json

    import pyarrow.parquet as pq

    releases_path = Path(releases_path)
    if not releases_path.is_file():
        raise DataError(f"releases table {releases_path} not found; run `raidstudy ingest` first")
    if min_group_releases < 1:
        raise ParameterError("min_group_releases", min_group_releases, "must be at least 1")
    out = Path(out_dir) if out_dir is not None else processed_dir()
    dumps_path = Path(dumps_path) if dumps_path is not None else releases_path.parent / "dumps.parquet"
    if not dumps_path.is_file():
        raise DataError(f"dumps table {dumps_path} not found; rerun `raidstudy ingest`")
    if ingest_report is None:
        rp = releases_path.parent / "ingest_report.json"
        ingest_report = json.loads(rp.read_text()) if rp.is_file() else {}
    dumps = pd.read_parquet(dumps_path)
    rel = pq.read_table(releases_path, columns=["pre_time", "feed", "family", "nuked", "group"]).to_pandas()

    files = dumps.drop_duplicates("origin")
    ok_files = files[files["status"] != "unreadable"]
    if start is None:
        first = int(ok_files["created_unix"].min())
        start_ts = (pd.Timestamp(first, unit="s").floor("D") + pd.Timedelta(days=1))
    else:
        start_ts = pd.Timestamp(start)
    if end is None:
        last = int(ok_files["created_unix"].max())
        end_ts = pd.Timestamp(last, unit="s").floor("D") - pd.Timedelta(days=1)
    else:
        end_ts = pd.Timestamp(end)
    feeds = sorted(set(dumps["feed"].unique()) - {""})
    cov = compute_coverage(dumps, feeds, start_ts, end_ts)

    counts = daily_counts(rel)
    days = pd.date_range(start_ts, end_ts, freq="D")
    grid = pd.MultiIndex.from_product([days, feeds, list(FAMILIES)], names=["date", "feed", "family"])
    daily = counts.set_index(["date", "feed", "family"]).reindex(grid, fill_value=0).reset_index()
    daily["n_releases"] = daily["n_releases"].astype("int64")
    daily["n_nuked"] = daily["n_nuked"].astype("int64")
    cov = flag_vanished_feeds(cov, daily)
    daily["date"] = daily["date"].dt.strftime("%Y-%m-%d")

    day = rel["pre_time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("D")
    inr = (day >= start_ts) & (day <= end_ts) & (rel["group"] != "")
    gdf = pd.DataFrame({"date": day[inr], "group": rel["group"][inr].astype(str)})
    tot = gdf["group"].value_counts()
    keep = set(tot[tot >= min_group_releases].index)
    gdf = gdf[gdf["group"].isin(keep)]
    groups = gdf.groupby(["date", "group"]).size().rename("n_releases").reset_index()
    groups = groups.sort_values(["date", "group"], kind="stable")
    groups["date"] = groups["date"].dt.strftime("%Y-%m-%d")

    cov_out = cov.copy()
    cov_out["date"] = cov_out["date"].dt.strftime("%Y-%m-%d")
    cov_out["covered"] = cov_out["covered"].map({True: "true", False: "false"})
    cov_out["min_share_ratio"] = cov_out["min_share_ratio"].map(lambda x: "" if pd.isna(x) else f"{x:.3f}")

    out.mkdir(parents=True, exist_ok=True)
    blobs = {
        DAILY_FILE: _gzip_csv(daily[["date", "feed", "family", "n_releases", "n_nuked"]]),
        GROUP_FILE: _gzip_csv(groups[["date", "group", "n_releases"]]),
        COVERAGE_FILE: cov_out.to_csv(index=False, lineterminator="\n").encode("utf-8"),
    }
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
            "skipped": ingest_report.get("skipped"),
        },
        "range": {"start": start_ts.strftime("%Y-%m-%d"), "end": end_ts.strftime("%Y-%m-%d")},
        "feeds": feeds,
        "families": list(FAMILIES),
        "coverage_rule": {"share_threshold": SHARE_THRESHOLD, "share_window_dumps": SHARE_WINDOW,
                          "vanish_ratio": VANISH_RATIO, "vanish_min_median": VANISH_MIN_MEDIAN,
                          "vanish_others_ratio": VANISH_OTHERS_RATIO,
                          "vanish_others_min_median": VANISH_OTHERS_MIN_MEDIAN, "vanish_window_days": VANISH_WINDOW,
                          "uncovered_feed_days": {f: int((uncovered["feed"] == f).sum()) for f in feeds}},
        "min_group_releases": int(min_group_releases),
        "n_groups": len(keep),
        "outputs": {name: sha256_bytes(data) for name, data in blobs.items()},
        "rebuild_command": "raidstudy build   (or: make data)",
        "package": {"name": "raidstudy", "version": __version__},
    }
    write_json(out / PROVENANCE_FILE, prov)
    atomic_write_bytes(out / "INPUT_SHA256SUMS", sums_text.encode())
    _CACHE.clear()
    return prov


def _licence_source() -> Path | None:
    from raidstudy.paths import shared_dir

    sh = shared_dir()
    if sh is not None:
        p = sh / "data" / "raw" / "nzedb-predb-dumps" / LICENSE_FILE
        if p.is_file():
            return p
    return None
