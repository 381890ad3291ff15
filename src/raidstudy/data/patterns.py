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

__all__ = ["SECONDARY_FEEDS", "NONE", "copy_days", "dated", "pattern_table", "count_over_feeds"]

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
        ``release`` (row number in the releases table), ``feed``, ``pre_time`` (tz-aware
        UTC): the ingest's ``copies.parquet``.
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
    """
    out = np.full((n_releases, len(feeds)), NONE, dtype=np.int32)
    t = pd.DatetimeIndex(copies["pre_time"])
    if zone != "UTC":
        t = t.tz_convert(zone).tz_localize(None)
    else:
        t = t.tz_localize(None) if t.tz is not None else t
    day = (t.to_numpy("datetime64[s]").astype(np.int64) // 86400).astype(np.int32)
    feed = copies["feed"].astype(str).to_numpy()
    rel = copies["release"].to_numpy(np.int64)
    for j, f in enumerate(feeds):
        m = feed == f
        out[rel[m], j] = day[m]
    return out


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
    d = days[has].astype(np.int64)
    base = np.where(d == NONE, np.iinfo(np.int64).max, d).min(axis=1)
    cols: dict[str, np.ndarray] = {"day": base}
    for k, v in keys.items():
        cols[k] = np.asarray(v)[has]
    for j, f in enumerate(feeds):
        cols[f] = np.where(d[:, j] == NONE, NONE, d[:, j] - base)
    for k, v in measures.items():
        cols[k] = np.asarray(v)[has]
    df = pd.DataFrame(cols)
    by = ["day", *keys, *feeds]
    out = df.groupby(by, sort=True, observed=True)[list(measures)].sum().reset_index()
    return out


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
