"""The seed's numbers: the published SPARKS counts, replicated from the bundled data.

TorrentFreak reported Scene release counts from the Predb.org pre-database around the SPARKS
raid (2020-08-25): 1,944 releases on Wednesday 19 August, 168 a week later, weekly totals of
12,776, 3,680 and 4,463, and 11,759 in the first week of January 2021. ``data/published_counts.csv``
holds those figures with their sources; :func:`replicate` counts the same days and weeks in
the nZEDb data (the feeds named in the file; every copy counts) in two calendar zones: the
build's (UTC by default) and ``Europe/Berlin``, the zone the pre-databases write their times
in and, as the replication shows, the one the published days were counted in.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from raidstudy.data.patterns import dated

__all__ = ["replicate", "load_seed_numbers"]


def replicate(published: pd.DataFrame, days_by_zone: Mapping[str, np.ndarray], feeds: Sequence[str]) -> pd.DataFrame:
    """Count the published periods in the data, per zone.

    Parameters
    ----------
    published : DataFrame
        ``quantity`` (``day`` or ``week``: Monday to Sunday), ``period_start``
        (``YYYY-MM-DD``), ``published`` (int), ``feeds`` (``+``-separated).
    days_by_zone : mapping of zone name to ndarray
        Per zone, the day matrix of :func:`raidstudy.data.patterns.copy_days`.
    feeds : sequence of str
        The matrices' columns.

    Returns
    -------
    DataFrame
        ``quantity, period_start, period_end, feeds, published`` and per zone ``ours (zone)``,
        ``difference (zone)`` and ``difference % (zone)`` (empty when the period lies
        outside the data).
    """
    cols = [c for c in ("event_id", "quantity", "period_start", "feeds", "published") if c in published.columns]
    out = published[cols].copy()
    start = pd.to_datetime(out["period_start"])
    length = np.where(out["quantity"] == "week", 7, 1)
    out.insert(cols.index("period_start") + 1, "period_end", (start + pd.to_timedelta(length - 1, unit="D")).dt.strftime("%Y-%m-%d"))
    lo = start.to_numpy("datetime64[D]").astype(np.int64)
    for zone in dict.fromkeys(days_by_zone):
        days = days_by_zone[zone]
        # per feed set: the dated days and their first and last day (found once)
        cache: dict[str, tuple[np.ndarray, int | None, int]] = {}
        ours: list[object] = []
        for a, n, fs in zip(lo, length, out["feeds"]):
            if fs not in cache:
                d = dated(days, feeds, fs.split("+"))
                dated_any = d[d >= 0]
                cache[fs] = (d, int(dated_any.min()) if len(dated_any) else None, int(d.max()) if len(d) else -1)
            d, first, last = cache[fs]
            inside = first is not None and first <= a and last >= a + n - 1
            ours.append(int(np.count_nonzero((d >= a) & (d < a + n))) if inside else None)
        col = pd.array(ours, dtype="Int64")
        out[f"ours ({zone})"] = col
        out[f"difference ({zone})"] = col - out["published"]
        pct = (col - out["published"]) / out["published"] * 100
        out[f"difference % ({zone})"] = pct.astype("Float64").round(1)
    return out


def load_seed_numbers(data_dir=None) -> pd.DataFrame:
    """The bundled replication table (``seed_numbers.csv``)."""
    from raidstudy.data.indicators import SEED_FILE, _dir

    d = _dir(data_dir)
    p = d / SEED_FILE
    if not p.is_file():
        from raidstudy.errors import DataError

        raise DataError(f"{SEED_FILE} is missing from {d}; rebuild with `raidstudy build` "
                        "(it needs data/published_counts.csv)")
    return pd.read_csv(p, keep_default_na=False, na_values=[""])
