"""Every copy counts: dating a release for a chosen set of feeds.

A pre-database learns of a release from several feeds. The ingest keeps one row per release
(its first copy) and, in ``copies.parquet``, each feed that announced it with that feed's
earliest pre time. An indicator over a set of feeds ``S`` counts a release once if *any*
feed of ``S`` announced it, dated by the earliest pre time among those feeds -- not only
when the feed that logged it first is in ``S``. Counting first copies only makes a feed's
count fall whenever another feed logs its releases first: from 2018-09-06 to 2018-10-03
``#pre@corrupt`` lost half its first copies to ``srrdb`` while the releases it announced did
not change, and the default outcome (``#pre@corrupt`` + ``xrel``) fell by about a third
with no raid.

Two feeds do not carry pre times, so they date a release only when no other feed of ``S``
announced it (:data:`SECONDARY_FEEDS`):

* ``srrdb``: the time a release was *uploaded to srrDB*, minutes to years after its pre;
* ``m2v.ru``: a mirror whose clock runs about 8 h behind the others (the difference to
  ``#pre@corrupt`` on the same titles is 7.9-8.5 h in every month, across both daylight-
  saving changes).

The bundled ``daily_patterns.csv.gz`` stores, per day and family, how many releases share
one *pattern*: the day offsets at which each feed announced them, relative to the earliest.
That is all :func:`count_over_feeds` needs to count any set of feeds exactly, and it is
small (a few hundred thousand rows).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["SECONDARY_FEEDS", "NONE", "copy_days", "day_matrix", "utc_offsets", "dated", "pattern_table",
           "count_over_feeds"]

#: Feeds whose times are not pre times: they date a release only when no other selected
#: feed announced it.
SECONDARY_FEEDS = ("srrdb", "m2v.ru")
#: Marker of "this feed did not announce the release" in day matrices and offsets.
NONE = -1


def copy_days(copies: pd.DataFrame, n_releases: int, feeds: Sequence[str], *, zone: str = "UTC") -> np.ndarray:
    """The day each feed announced each release.

    Parameters
    ----------
    copies : DataFrame
        ``release`` (row number in the releases table), ``feed`` (str or categorical),
        ``pre_time`` (tz-aware UTC): the ingest's ``copies.parquet``.
    n_releases : int
        Rows of the releases table.
    feeds : sequence of str
        Column order of the result; copies of other feeds are ignored.
    zone : str
        Zone whose calendar days are counted (default UTC).

    Returns
    -------
    numpy.ndarray
        int32, ``(n_releases, len(feeds))``: days since 1970-01-01 (in ``zone``), or
        :data:`NONE`.

    Examples
    --------
    >>> c = pd.DataFrame({"release": [0, 0, 1], "feed": ["xrel", "srrdb", "srrdb"],
    ...                   "pre_time": pd.to_datetime(["2020-08-25 23:30", "2020-08-26 01:00",
    ...                                               "2020-08-26 12:00"], utc=True)})
    >>> copy_days(c, 2, ["xrel", "srrdb"]).tolist()
    [[18499, 18500], [-1, 18500]]
    >>> copy_days(c, 2, ["xrel", "srrdb"], zone="Europe/Berlin").tolist()[0]
    [18500, 18500]
    """
    t = copies["pre_time"]
    if getattr(t.dt, "tz", None) is None:
        if zone != "UTC":
            raise ValueError(f"copy_days: pre_time has no time zone, so it cannot be counted in {zone!r} days; "
                             "give tz-aware UTC times (the ingest's copies.parquet has them)")
        secs = t.to_numpy().astype("datetime64[s]").astype(np.int64)  # naive: taken as UTC
    else:
        secs = t.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    col = {f: j for j, f in enumerate(feeds)}
    feed = copies["feed"]
    if isinstance(feed.dtype, pd.CategoricalDtype):
        to_col = np.array([col.get(str(c), -1) for c in feed.cat.categories] + [-1], dtype=np.int64)
        j = to_col[feed.cat.codes.to_numpy()]  # code -1 (missing) picks the trailing -1
    else:
        j = np.array([col.get(str(f), -1) for f in feed.to_numpy()], dtype=np.int64)
    return day_matrix(copies["release"].to_numpy(np.int64), j, secs, n_releases, len(feeds), zone=zone)


def day_matrix(release: np.ndarray, column: np.ndarray, utc_seconds: np.ndarray, n_releases: int,
               n_feeds: int, *, zone: str = "UTC") -> np.ndarray:
    """:func:`copy_days` on plain arrays: each copy's release row, its column (-1: ignored)
    and its pre time in UTC seconds.

    Returns
    -------
    numpy.ndarray
        int32, ``(n_releases, n_feeds)``: days since 1970-01-01 in ``zone``, or :data:`NONE`.

    Examples
    --------
    >>> t = np.array([1598398200, 1598403600])  # 2020-08-25 23:30 and 2020-08-26 01:00 UTC
    >>> day_matrix(np.array([0, 0]), np.array([0, 1]), t, 1, 2, zone="Europe/Berlin").tolist()
    [[18500, 18500]]
    """
    out = np.full((n_releases, n_feeds), NONE, dtype=np.int32)
    secs = np.asarray(utc_seconds, dtype=np.int64)
    if zone != "UTC":
        secs = secs + utc_offsets(secs, zone)  # wall-clock time of the zone
    day = (secs // 86400).astype(np.int32)
    column = np.asarray(column, dtype=np.int64)
    flat = np.asarray(release, dtype=np.int64) * n_feeds + column  # one flat index: a cheaper scatter
    if (column < 0).any():
        ok = column >= 0
        flat, day = flat[ok], day[ok]
    out.reshape(-1)[flat] = day
    return out


#: Hours spanned beyond which :func:`utc_offsets` converts every time with pandas.
_MAX_TABLE_HOURS = 4_000_000


def utc_offsets(utc_seconds: np.ndarray, zone: str) -> np.ndarray:
    """The offset of ``zone`` from UTC (seconds, local minus UTC) at each UTC time, exactly
    as pandas' ``tz_convert`` gives it.

    Millions of times span a few tens of thousands of hours: the offset is looked up per
    hour from a table made by pandas, and only times in an hour whose offset differs from
    the next hour's (one that holds a change of offset, at whatever minute) are converted
    one by one -- about 30 times faster than converting every time.

    Examples
    --------
    >>> utc_offsets(np.array([1577836800, 1593561600]), "Europe/Berlin").tolist()  # Jan, Jul 2020
    [3600, 7200]
    """
    secs = np.asarray(utc_seconds, dtype=np.int64)

    def exact(s: np.ndarray) -> np.ndarray:
        idx = pd.DatetimeIndex(s.astype("datetime64[s]")).tz_localize("UTC")
        return idx.tz_convert(zone).tz_localize(None).to_numpy("datetime64[s]").astype(np.int64) - s

    if zone == "UTC" or not len(secs):
        return np.zeros(len(secs), np.int64)
    hour = secs // 3600
    lo, hi = int(hour.min()), int(hour.max())
    if hi - lo > _MAX_TABLE_HOURS:
        return exact(secs)
    table = exact(np.arange(lo, hi + 2, dtype=np.int64) * 3600)
    at = hour - lo
    off = table[at]
    odd = np.flatnonzero(table[at + 1] != off)
    if len(odd):
        off[odd] = exact(secs[odd])
    return off


def dated(days: np.ndarray, feeds: Sequence[str], selected: Sequence[str]) -> np.ndarray:
    """The day of each row for the feed set ``selected`` (:data:`NONE` if none of it announced it).

    The earliest day among the selected feeds that carry pre times; failing those, the
    earliest among the selected :data:`SECONDARY_FEEDS`.

    Examples
    --------
    >>> import numpy as np
    >>> days = np.array([[10, 9, -1], [-1, 12, 11], [-1, -1, -1]])
    >>> dated(days, ["xrel", "srrdb", "#pre@corrupt"], ["xrel", "srrdb"]).tolist()
    [10, 12, -1]
    """
    idx = {f: j for j, f in enumerate(feeds)}
    prim = [idx[f] for f in selected if f in idx and f not in SECONDARY_FEEDS]
    sec = [idx[f] for f in selected if f in idx and f in SECONDARY_FEEDS]
    if days.dtype == np.int32 and len(days) and int(days.min()) >= NONE:
        # Read as unsigned, NONE is the largest value: the minimum over columns is then the
        # earliest day, or NONE when no column has one -- no masking, a quarter of the memory.
        u = days.view(np.uint32)

        def first_day(cols: list[int]) -> np.ndarray:
            out = np.full(len(days), np.uint32(0xFFFFFFFF))
            for j in cols:
                np.minimum(out, u[:, j], out=out)
            return out

        d = first_day(prim)
        if sec:
            np.copyto(d, first_day(sec), where=d == np.uint32(0xFFFFFFFF))
        return d.view(np.int32).astype(np.int64)
    big = np.iinfo(np.int32).max

    def earliest(cols: list[int]) -> np.ndarray:
        if not cols:
            return np.full(len(days), big, dtype=np.int64)
        sub = days[:, cols].astype(np.int64)
        return np.where(sub == NONE, big, sub).min(axis=1)

    d = earliest(prim)
    d = np.where(d == big, earliest(sec), d)
    return np.where(d == big, NONE, d).astype(np.int64)


def pattern_table(days: np.ndarray, feeds: Sequence[str], keys: Mapping[str, np.ndarray],
                  measures: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Releases grouped by day, ``keys`` and pattern of feed offsets, with summed measures.

    Parameters
    ----------
    days : ndarray
        From :func:`copy_days`.
    feeds : sequence of str
        Its columns.
    keys : mapping of str to array
        Further grouping columns (e.g. ``family``), one value per release.
    measures : mapping of str to array
        Per-release values summed within a group (e.g. ``n_releases``: ones).

    Returns
    -------
    DataFrame
        ``day`` (int, the earliest day any feed announced the release), the ``keys``, one
        int column per feed (offset in days from ``day``, :data:`NONE` when the feed did
        not announce it) and the summed ``measures``; sorted by day, keys and offsets.
    """
    has = (days != NONE).any(axis=1)
    every = bool(has.all())  # (every release has a copy: no need to copy the columns)
    d = days if every else days[has]
    if d.dtype == np.int32 and (not len(d) or int(d.min()) >= NONE):
        # in int32, NONE read as unsigned is the largest value: no masking for the minimum
        # (the columns are widened to int64 once grouped, a twentieth of the rows)
        base = d.view(np.uint32).min(axis=1).view(np.int32) if len(d) else np.zeros(0, np.int32)
    else:
        d = d.astype(np.int64)
        base = np.where(d == NONE, np.iinfo(np.int64).max, d).min(axis=1)
    cols: dict[str, np.ndarray] = {"day": base}
    for k, v in keys.items():
        cols[k] = np.asarray(v) if every else np.asarray(v)[has]
    for j, f in enumerate(feeds):
        c = d[:, j]
        cols[f] = np.where(c == NONE, c, c - base)
    del d
    by = ["day", *keys, *feeds]
    # One int64 key per release (the grouping columns in mixed radix), hashed, instead of
    # pandas' groupby over all the columns: the same groups, put in the same (lexicographic)
    # order by sorting the distinct keys only.
    group, first = _sorted_groups([cols[k] for k in by])
    out = {k: cols[k][first] for k in by}
    for k in ("day", *feeds):
        out[k] = out[k].astype(np.int64)
    for k, v in measures.items():
        out[k] = _group_sums(np.asarray(v) if every else np.asarray(v)[has], group, len(first))
    return pd.DataFrame(out)


def _dense(c: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer column -> its values' ranks among the distinct values (same order), and how
    many there are; by a lookup table when the values span little, else by sorting."""
    lo, hi = int(c.min()), int(c.max())
    if hi - lo <= 4 * len(c) + 1024:
        seen = np.zeros(hi - lo + 1, bool)
        seen[c - lo] = True
        rank = np.cumsum(seen) - 1
        return rank[c - lo], int(rank[-1]) + 1
    uniq, inv = np.unique(c, return_inverse=True)
    return inv.reshape(-1).astype(np.int64), len(uniq)


def _sorted_groups(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group (groups numbered in the lexicographic order of ``columns``,
    integers) and the first row of each group.

    Each column is replaced by its dense rank and the ranks packed into one int64 key
    (when the next column would overflow it, the key so far is itself replaced by its
    dense rank); the key is then factorised by hashing and only its distinct values sorted.
    """
    n = len(columns[0]) if columns else 0
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = np.zeros(n, np.int64)
    top = 1  # the number of values the key can take
    for c in columns:
        c, span = _dense(np.asarray(c, dtype=np.int64))
        if top * span > 1 << 62:
            key, top = _dense(key)
        key = key * span + c
        top *= span
    codes, uniq = pd.factorize(key, sort=False)
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(uniq, kind="stable")] = np.arange(len(uniq))
    group = rank[codes]
    first = np.empty(len(uniq), np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)  # the last write wins: each group's first row
    return group, first


def _group_sums(v: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum of ``v`` per group, exact (float64 counts are exact below 2**53)."""
    if v.dtype.kind in "iub" and len(v) and float(np.abs(v).max()) * len(v) < 2.0 ** 53:
        return np.bincount(group, weights=v, minlength=n_groups).astype(v.dtype if v.dtype.kind == "i" else np.int64)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups))
    return np.add.reduceat(v[order], starts) if n_groups else v[:0]


def count_over_feeds(patterns: pd.DataFrame, feeds: Sequence[str], selected: Sequence[str],
                     measure: str, *, by: Sequence[str] = ()) -> pd.Series:
    """Sum ``measure`` per day for the feed set ``selected`` from a :func:`pattern_table`.

    Each pattern row is dated by :func:`dated` applied to its offsets; rows that none of the
    selected feeds announced are left out.

    Returns
    -------
    pandas.Series
        Indexed by ``day`` (int days since 1970-01-01) and the ``by`` columns.
    """
    offs = patterns[list(feeds)].to_numpy(np.int64)
    rel = dated(offs, feeds, selected)
    keep = rel != NONE
    day = patterns["day"].to_numpy(np.int64)[keep] + rel[keep]
    frame = {"day": day}
    for b in by:
        frame[b] = patterns[b].to_numpy()[keep]
    frame[measure] = patterns[measure].to_numpy()[keep]
    return pd.DataFrame(frame).groupby(["day", *by], sort=True)[measure].sum()
