"""The user's series on a complete regular grid: frequency, missing periods, event position.

:func:`normalize_data` turns a DataFrame or Series indexed by date, period or integer label
into a :class:`SeriesFrame` with one row per period of a regular grid (absent periods are
NaN, never zero); :func:`resolve_event` and :func:`resolve_dates` map dates to grid positions
by the rule every part of raidstudy uses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.errors import DataError, ParameterError
from raidstudy.models.its.vocabulary import DOW_NAMES


# --------------------------------------------------------------------------- frequency
@dataclass(frozen=True)
class FreqInfo:
    """The regular frequency of a series.

    ``kind`` is one of ``D``, ``W``, ``M``, ``Q``, ``Y`` or ``int`` (an integer
    index of consecutive period labels). ``period_alias`` is the pandas Period
    frequency used to build the regular grid.
    """

    kind: str
    period_alias: str | None
    unit: str
    periods_per_year: float | None

    @property
    def code(self) -> str:
        return self.period_alias or "int"


_KIND_ALIASES = {
    "d": "D", "day": "D", "daily": "D", "b": None,
    "w": "W", "week": "W", "weekly": "W",
    "m": "M", "ms": "M", "me": "M", "month": "M", "monthly": "M",
    "q": "Q", "qs": "Q", "qe": "Q", "quarter": "Q", "quarterly": "Q",
    "y": "Y", "ys": "Y", "ye": "Y", "a": "Y", "as": "Y", "year": "Y", "yearly": "Y",
    "annual": "Y",
}
#: The period unit in words by frequency kind (the one table every part of raidstudy uses).
UNITS = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year", "int": "period"}
_UNITS = UNITS
#: Periods per year by frequency kind (the one table every part of raidstudy uses).
PERIODS_PER_YEAR = {"D": 365.25, "W": 365.25 / 7.0, "M": 12.0, "Q": 4.0, "Y": 1.0, "int": None}
_PPY = PERIODS_PER_YEAR


def _kind_from_alias(freq: str) -> str:
    key = str(freq).strip().lower()
    key = re.sub(r"^\d+", "", key)  # "1D" -> "d"
    base = key.split("-")[0]
    kind = _KIND_ALIASES.get(base)
    if kind is None:
        raise ParameterError(
            "freq", freq, "is not a supported regular frequency",
            accepted=["D", "W", "M", "Q", "Y"],
            hint="Business-day or multi-period frequencies are not supported; resample the series first",
        )
    return kind


def _kind_from_index(idx: pd.DatetimeIndex) -> str:
    if idx.freq is not None:
        try:
            return _kind_from_alias(idx.freqstr)
        except ParameterError:
            pass
    if len(idx) < 2:
        raise DataError(
            f"cannot infer the frequency of a series with {len(idx)} period(s); pass freq= explicitly"
        )
    diffs = np.diff(idx.values.astype("datetime64[ns]").astype(np.int64)) / 86_400e9
    dmin = float(np.min(diffs[diffs > 0])) if np.any(diffs > 0) else 0.0
    if dmin == 1:
        return "D"
    if dmin == 7:
        return "W"
    if 28 <= dmin <= 31:
        return "M"
    if 89 <= dmin <= 92:
        return "Q"
    if 365 <= dmin <= 366:
        return "Y"
    raise DataError(
        f"cannot infer a regular frequency: the smallest gap between dates is {dmin:g} days. "
        "Pass freq= ('D', 'W', 'M', 'Q' or 'Y') or resample the series to a regular frequency"
    )


def _period_alias(kind: str, first: pd.Timestamp) -> str:
    if kind == "W":
        # Weeks that *start* on the weekday of the first observation, so that the
        # period start timestamps are the user's own dates.
        end_day = DOW_NAMES[(first.day_of_week - 1) % 7].upper()
        return f"W-{end_day}"
    if kind == "Q":
        return "Q-DEC"
    if kind == "Y":
        return "Y-DEC"
    return kind


# --------------------------------------------------------------------------- data frame
@dataclass
class SeriesFrame:
    """The user's data on a complete regular grid (one row per period)."""

    index: pd.Index  # timestamps (or integer labels) of the grid
    periods: pd.PeriodIndex | None  # the grid as periods (None for an integer index)
    freq: FreqInfo
    y: np.ndarray  # outcome, NaN where missing
    controls: dict[str, np.ndarray]  # control series, NaN where missing
    offset: np.ndarray | None  # exposure (not logged), NaN where missing
    outcome: str


def normalize_data(
    data: Any,
    *,
    outcome: str | None,
    control: str | list[str] | None,
    offset: str | None,
    freq: str | None,
    period_label: str | None = None,
) -> SeriesFrame:
    if period_label not in (None, "start", "end"):
        raise ParameterError("period_label", period_label, "must be 'start' or 'end' (or None to infer)",
                             accepted=["start", "end", None])
    if isinstance(data, pd.Series):
        name = outcome if outcome is not None else (data.name if data.name is not None else "y")
        if control is not None or offset is not None:
            raise ParameterError(
                "data", "pd.Series", "a Series holds only the outcome, so control= and offset= cannot name columns",
                hint="Pass a DataFrame with the outcome, control and offset columns",
            )
        df = data.to_frame(name=str(name))
        outcome = str(name)
    elif isinstance(data, pd.DataFrame):
        df = data
        if outcome is None:
            if df.shape[1] == 1:
                outcome = df.columns[0]
            else:
                raise ParameterError(
                    "outcome", None, "is required when data has several columns",
                    accepted=list(map(str, df.columns)),
                )
    else:
        raise ParameterError(
            "data", type(data).__name__, "must be a pandas DataFrame or Series indexed by period",
        )
    controls = [] if control is None else ([control] if isinstance(control, str) else list(control))
    for role, col in [("outcome", outcome), *[("control", c) for c in controls], ("offset", offset)]:
        if col is not None and col not in df.columns:
            raise ParameterError(role, col, "is not a column of data", accepted=list(map(str, df.columns)))
    if outcome in controls:
        raise ParameterError("control", control, "names the outcome column itself",
                             hint="Choose a different series as control")
    if len(df) == 0:
        raise DataError("data has no rows; the ITS model needs a series before and after the event")

    idx = df.index
    if isinstance(idx, pd.PeriodIndex):
        kind = _kind_from_alias(freq) if freq else _kind_from_alias(idx.freqstr)
        ts = idx.to_timestamp(how="start")
        idx = pd.DatetimeIndex(ts)
    if isinstance(idx, pd.DatetimeIndex):
        if idx.tz is not None:
            idx = idx.tz_localize(None)
        if idx.hasnans:
            raise DataError("the date index contains missing values (NaT); drop or fill those rows")
        kind = _kind_from_alias(freq) if freq else _kind_from_index(idx.sort_values())
        index_freq = getattr(df.index, "freq", None)
        order = np.argsort(idx.values.astype("datetime64[ns]").astype(np.int64), kind="stable")
        df = df.iloc[order]
        idx = idx[order]
        alias = _period_alias(kind, idx[0])
        if kind == "W":
            # A weekly date is either the first or the last day of its week. pandas reads a
            # date on a W-SUN grid (what resample("W") returns) as the week's *end*; a
            # bare list of dates says nothing, and we read it as the week's start unless
            # told otherwise. Getting this wrong puts the event in the neighbouring week.
            label = period_label
            if label is None:
                anchored = isinstance(index_freq, pd.offsets.Week) and index_freq.weekday is not None
                label = "end" if anchored else "start"
            if label == "end":
                alias = f"W-{DOW_NAMES[idx[0].day_of_week].upper()}"
        per = idx.to_period(alias)
        if per.has_duplicates:
            dup = per[per.duplicated()][0]
            raise DataError(
                f"two rows fall in the same {_UNITS[kind]} ({dup}); the series must have one row per period. "
                "Aggregate (e.g. resample().sum()) before modelling"
            )
        grid = pd.period_range(per.min(), per.max(), freq=alias)
        pos = grid.get_indexer(per)
        starts = grid.to_timestamp(how="start")
        # keep the user's own convention (period start or period end)
        ends = grid.to_timestamp(how="end").normalize()
        if period_label == "start":
            grid_index = pd.DatetimeIndex(starts)
        elif kind != "D" and np.all(idx.normalize() == ends[pos]) and (
                period_label == "end" or not np.all(idx.normalize() == starts[pos])):
            grid_index = pd.DatetimeIndex(ends)
        else:
            grid_index = pd.DatetimeIndex(starts)
        grid_index.name = data.index.name if data.index.name is not None else "date"
        finfo = FreqInfo(kind, alias, _UNITS[kind], _PPY[kind])
        periods = grid
    elif pd.api.types.is_integer_dtype(idx):
        vals = np.asarray(idx, dtype=np.int64)
        order = np.argsort(vals, kind="stable")
        df = df.iloc[order]
        vals = vals[order]
        if len(np.unique(vals)) != len(vals):
            raise DataError("the integer index has duplicate labels; the series must have one row per period")
        grid_vals = np.arange(vals.min(), vals.max() + 1)
        pos = np.searchsorted(grid_vals, vals)
        kind = "int"
        unit = _UNITS[_kind_from_alias(freq)] if freq else "period"
        finfo = FreqInfo("int", None, unit, None)
        grid_index = pd.Index(grid_vals, name=data.index.name if data.index.name is not None else "period")
        periods = None
    else:
        raise ParameterError(
            "data.index", type(idx).__name__,
            "must be a DatetimeIndex, PeriodIndex or integer index of consecutive periods",
            hint="Set the dates as index (df.set_index('date')) or pass an integer period index with freq=",
        )

    n = len(grid_index)

    def on_grid(col: str) -> np.ndarray:
        try:
            v = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise DataError(f"column {col!r} is not numeric ({exc}); convert it to numbers first") from exc
        out = np.full(n, np.nan)
        out[pos] = v
        return out

    y = on_grid(outcome)
    ctrl = {str(c): on_grid(c) for c in controls}
    off = on_grid(offset) if offset is not None else None
    return SeriesFrame(grid_index, periods, finfo, y, ctrl, off, str(outcome))


def resolve_event(frame: SeriesFrame, event: Any) -> int:
    """Grid position of the event period."""
    n = len(frame.index)
    if frame.freq.kind == "int":
        if isinstance(event, (bool, np.bool_)) or not isinstance(event, (int, np.integer)):
            raise ParameterError("event", event, "must be an integer period label for an integer-indexed series")
        pos = int(event) - int(frame.index[0])
    elif isinstance(event, (int, np.integer)) and not isinstance(event, (bool, np.bool_)):
        pos = int(event)
        if not 0 <= pos < n:
            raise ParameterError("event", event, f"as a position must lie in 0..{n - 1}",
                                 hint="Pass the event date instead of a position")
    else:
        try:
            if isinstance(event, pd.Period):
                p = event.asfreq(frame.periods.freq, how="start")  # type: ignore[union-attr]
            else:
                p = pd.Timestamp(event).to_period(frame.periods.freq)  # type: ignore[union-attr]
        except (ValueError, TypeError) as exc:
            raise ParameterError("event", event, f"cannot be read as a date ({exc})",
                                 hint="Pass an ISO date such as '2020-08-25'") from exc
        pos = int(p.ordinal - frame.periods[0].ordinal)  # type: ignore[index]
    if not 0 <= pos < n:
        raise DataError(
            f"event {event!r} falls outside the series ({frame.index[0]} to {frame.index[-1]}); "
            "choose an event inside the data or extend the series"
        )
    return pos


def resolve_dates(frame: SeriesFrame, dates: Any, what: str) -> np.ndarray:
    """Grid positions of a list of dates (dates outside the series are dropped)."""
    if dates is None:
        return np.array([], dtype=int)
    if isinstance(dates, (str, pd.Timestamp, np.datetime64)) or not hasattr(dates, "__iter__"):
        dates = [dates]
    out = []
    for d in dates:
        if frame.freq.kind == "int":
            out.append(int(d) - int(frame.index[0]))
            continue
        try:
            p = pd.Timestamp(d).to_period(frame.periods.freq)  # type: ignore[union-attr]
        except (ValueError, TypeError) as exc:
            raise ParameterError(what, d, f"cannot be read as a date ({exc})") from exc
        out.append(int(p.ordinal - frame.periods[0].ordinal))  # type: ignore[index]
    arr = np.asarray(out, dtype=int)
    return np.unique(arr[(arr >= 0) & (arr < len(frame.index))])


def format_label(x: Any) -> str:
    """A period label as text: ISO date for midnight timestamps, else ``str``."""
    if isinstance(x, pd.Timestamp):
        return x.date().isoformat() if x == x.normalize() else x.isoformat()
    return str(x)
