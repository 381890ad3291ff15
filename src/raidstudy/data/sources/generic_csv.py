"""Generic indicator CSV: ``date,value[,series]`` for any series a user has.

Torrent uploads, traffic estimates, search interest, ...: one row per period, a header
line naming the columns (case and surrounding spaces ignored). Example::

    date,value,series
    2020-08-17,1520,torrent_uploads
    2020-08-24,1210,torrent_uploads
    2020-08-17,88,search_interest

Dates are ISO (``YYYY-MM-DD``). The frequency is inferred from the dates: daily, weekly
(all dates on one weekday, 7-day multiples apart), monthly (all first or all last days of a
month) or yearly (all 1 January or all 31 December). Missing periods become NaN on a regular
index of that frequency; an empty ``value`` (or ``NA``/``NaN``) is NaN too. An infinite value
(``inf``) is refused with its line: it is neither a count nor a missing period.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from raidstudy.io import sha256_file
from raidstudy.errors import DataError, ParameterError

__all__ = ["read_indicator_csv", "infer_frequency"]


def infer_frequency(dates: pd.DatetimeIndex) -> str:
    """Pandas frequency alias for sorted, unique, midnight ``dates`` ('D', 'W-MON', 'MS', 'ME', 'YS', 'YE').

    Raises
    ------
    DataError
        If the dates carry a time of day (sub-daily data is not supported).
    """
    if len(dates) and (dates != dates.normalize()).any():
        bad = dates[dates != dates.normalize()][0]
        raise DataError(f"date {bad} has a time of day; indicators are daily or coarser. "
                        "Aggregate to days first")
    if len(dates) < 2:
        return "D"
    if (dates.month == 1).all() and (dates.day == 1).all():
        return "YS"
    if (dates.month == 12).all() and (dates.day == 31).all():
        return "YE"
    if (dates.day == 1).all():
        return "MS"
    if dates.is_month_end.all():
        return "ME"
    diffs = np.diff(dates.asi8) // (86400 * 10**9) if dates.asi8.dtype == np.int64 else None
    days = np.diff(dates.values.astype("datetime64[D]").astype(np.int64))
    if (days % 7 == 0).all():
        return "W-" + dates[0].day_name()[:3].upper()
    del diffs
    return "D"


def read_indicator_csv(path: str | os.PathLike, *, series: str | None = None) -> pd.Series:
    """Read a ``date,value[,series]`` CSV into a regular indicator series.

    Parameters
    ----------
    path : path
        The CSV file.
    series : str, optional
        Which series to return when the file has a ``series`` column with several values.

    Returns
    -------
    pandas.Series
        float64 values on a regular ``DatetimeIndex`` named ``date`` of the inferred
        frequency, NaN where a period is missing. ``name`` is the series name (or the file
        stem); ``attrs["provenance"]`` holds the file name, its SHA-256 and the frequency.

    Raises
    ------
    DataError
        Missing file or columns, an unparsable date or value or an infinite value (with
        its line number), duplicate dates.
    ParameterError
        Several series and ``series`` not given, or ``series`` not in the file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"indicator file {p} not found")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{p.name} is not a readable CSV ({exc}); expected a header 'date,value[,series]'") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("date", "value") if c not in df.columns]
    if missing:
        raise DataError(f"{p.name} lacks column(s) {', '.join(missing)}; found {list(df.columns)}. "
                        "Expected a header 'date,value[,series]'")
    df["_line"] = np.arange(len(df)) + 2  # line 1 is the header
    if "series" in df.columns:
        df["series"] = df["series"].str.strip()
        names = sorted(df["series"].unique().tolist())
        if series is None:
            if len(names) > 1:
                raise ParameterError("series", None, f"{p.name} holds several series", accepted=names,
                                     hint="choose one with series=")
            series = names[0] if names else None
        elif series not in names:
            raise ParameterError("series", series, f"not in {p.name}", accepted=names)
        df = df[df["series"] == series]
    elif series is not None:
        raise ParameterError("series", series, f"{p.name} has no 'series' column", accepted=[],
                             hint="leave series=None")
    dates = pd.to_datetime(df["date"].str.strip(), errors="coerce", format="ISO8601")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{p.name} line {df['_line'].iloc[i]}: cannot parse date {df['date'].iloc[i]!r}; "
                        "use YYYY-MM-DD")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    vals_raw = df["value"].str.strip()
    vals = pd.to_numeric(vals_raw.replace("", np.nan), errors="coerce")
    bad = vals.isna() & (vals_raw != "") & ~vals_raw.str.lower().isin(["nan", "na"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{p.name} line {df['_line'].iloc[i]}: value {vals_raw.iloc[i]!r} is not a number")
    inf = np.isinf(vals.to_numpy(dtype="float64"))
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise DataError(f"{p.name} line {df['_line'].iloc[i]}, column value: {vals_raw.iloc[i]!r} is not a finite "
                        f"number ({int(inf.sum())} such row(s)); leave the value empty for a missing period")
    dup = dates.duplicated(keep=False)
    if dup.any():
        lines = df["_line"][dup].tolist()[:6]
        raise DataError(f"{p.name}: duplicate date(s) {sorted(set(dates[dup].dt.strftime('%Y-%m-%d')))[:3]} "
                        f"on lines {lines}; keep one row per date (and per series)")
    s = pd.Series(vals.to_numpy(dtype="float64"), index=pd.DatetimeIndex(dates.to_numpy()), dtype="float64")
    s = s.sort_index()
    if len(s) == 0:
        raise DataError(f"{p.name} has no data rows" + (f" for series {series!r}" if series else ""))
    freq = infer_frequency(s.index)
    idx = pd.date_range(s.index[0], s.index[-1], freq=freq, name="date")
    if not s.index.isin(idx).all():  # pragma: no cover - infer_frequency guarantees this
        raise DataError(f"{p.name}: dates do not fit a regular {freq} grid")
    out = s.reindex(idx)
    out.index.freq = freq
    out.name = series or p.stem
    out.attrs["provenance"] = {"file": p.name, "sha256": sha256_file(p), "series": series, "freq": freq}
    return out
