"""Which clock the dumps' pre times are written in: the evidence, from the dumps themselves.

Each nZEDb dump is written at its creation time, a Unix time in its file name (UTC), and
holds the pres of the preceding 24 hours. The newest pre in a dump therefore happened a few
minutes before the file was written. Read as UTC, the newest ``#pre@corrupt`` pre lies about
one hour *after* the file's creation in winter and two hours after it in summer, switching
on the European daylight-saving dates: the pre times are Central European wall-clock times
(``Europe/Berlin``). :func:`clock_table` lists, per dump and feed, the newest pre as written;
:func:`zone_evidence` scores zone hypotheses on it: under the right zone the newest pre falls
shortly *before* the dump was written, never after.

The ingest stores pre times in UTC (:data:`raidstudy.data.ingest.SOURCE_ZONE`); the bundled
``dump_clock.csv.gz`` keeps the evidence, and ``tests/data/test_clock.py`` checks it.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["clock_table", "zone_evidence", "HYPOTHESES"]

#: Zone hypotheses scored by :func:`zone_evidence`: fixed offsets and zones with daylight saving.
HYPOTHESES = ("UTC", "UTC+1", "UTC+2", "Europe/Berlin", "Europe/London", "America/New_York")


def clock_table(dumps: pd.DataFrame) -> pd.DataFrame:
    """Per dump and feed: when the file was written and the newest pre time it holds.

    Parameters
    ----------
    dumps : DataFrame
        The ingest's ``dumps.parquet`` (``origin, created_unix, status, feed,
        rows_valid, newest_pre_local``).

    Returns
    -------
    DataFrame
        ``created_utc`` (``YYYY-MM-DD HH:MM:SS``), ``feed``, ``rows``, ``newest_pre`` (as
        written in the dump), ``hours_after_creation`` (``newest_pre`` read as UTC, minus the
        creation time, in hours, 3 decimals), sorted by creation time and feed.
    """
    d = dumps[(dumps["feed"] != "") & dumps["newest_pre_local"].notna() & (dumps["status"] != "unreadable")]
    created = d["created_unix"].to_numpy(np.int64)
    newest = d["newest_pre_local"].to_numpy(np.int64)
    out = pd.DataFrame({
        "created_utc": pd.to_datetime(created, unit="s").strftime("%Y-%m-%d %H:%M:%S"),
        "feed": d["feed"].to_numpy(),
        "rows": d["rows_valid"].to_numpy(np.int64),
        "newest_pre": pd.to_datetime(newest, unit="s").strftime("%Y-%m-%d %H:%M:%S"),
        "hours_after_creation": np.round((newest - created) / 3600.0, 3),
    })
    return out.sort_values(["created_utc", "feed"], kind="stable").reset_index(drop=True)


def _offset_hours(created_utc: pd.Series, zone: str) -> np.ndarray:
    if zone == "UTC":
        return np.zeros(len(created_utc))
    if zone.startswith("UTC+"):
        return np.full(len(created_utc), float(zone[4:]))
    t = pd.DatetimeIndex(pd.to_datetime(created_utc)).tz_localize("UTC").tz_convert(zone)
    return np.array([x.utcoffset().total_seconds() / 3600 for x in t])


def zone_evidence(table: pd.DataFrame, *, feed: str = "#pre@corrupt", zones: Iterable[str] = HYPOTHESES,
                  min_rows: int = 200, tolerance_minutes: float = 5, recent_minutes: float = 60) -> pd.DataFrame:
    """Score zone hypotheses on the newest pre of each dump.

    Parameters
    ----------
    table : DataFrame
        From :func:`clock_table` (or ``dump_clock.csv.gz``).
    feed : str
        The feed to read (a busy one: its newest pre is minutes old when a dump is written).
    zones : iterable of str
        Hypotheses: ``UTC``, ``UTC+H`` or IANA names.
    min_rows : int
        Dumps where the feed has fewer rows are left out (an idle feed's newest pre is old).
    tolerance_minutes : float
        A newest pre up to this long after the creation time still counts as "before".
    recent_minutes : float
        "Recent": the newest pre at most this long before the creation time.

    Returns
    -------
    DataFrame
        One row per zone: ``dumps``, ``share_after`` (share of dumps whose newest pre,
        read in that zone, lies after the file was written: impossible under the right
        zone), ``share_recent`` and ``median_minutes_before``.

    Examples
    --------
    >>> t = pd.DataFrame({"created_utc": ["2020-01-15 10:00:00", "2020-07-15 10:00:00"],
    ...                   "feed": "f", "rows": 500, "hours_after_creation": [0.95, 1.95]})
    >>> ev = zone_evidence(t, feed="f", zones=["UTC", "Europe/Berlin"])
    >>> ev["share_after"].tolist()
    [1.0, 0.0]
    """
    t = table[(table["feed"] == feed) & (table["rows"] >= min_rows)]
    rows = []
    for z in zones:
        # minutes from the newest pre (converted to UTC under z) to the file's creation
        before = (_offset_hours(t["created_utc"], z) - t["hours_after_creation"].to_numpy()) * 60
        rows.append({"zone": z, "dumps": len(t),
                     "share_after": float(np.mean(before < -tolerance_minutes)) if len(t) else np.nan,
                     "share_recent": float(np.mean((before >= -tolerance_minutes) & (before <= recent_minutes)))
                     if len(t) else np.nan,
                     "median_minutes_before": float(np.median(before)) if len(t) else np.nan})
    return pd.DataFrame(rows).set_index("zone")
