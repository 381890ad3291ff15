"""Internals of :mod:`raidstudy.its`: data normalisation, design matrix, fitting, covariance.

Nothing here is public API; :class:`raidstudy.its.ITS` is the entry point. The
functions are split out so that the estimator can be tested piece by piece and so
that ``its.py`` stays readable.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from .errors import DataError, ModelError, ParameterError

FAMILIES = ("gaussian", "poisson", "quasipoisson", "negbin")
COUNT_FAMILIES = ("poisson", "quasipoisson", "negbin")
COV_TYPES = ("hac", "robust", "nonrobust")
EFFECT_TERMS = ("level", "slope")
TREATED_TERMS = ("treated", "treated_trend", "treated_level", "treated_slope")
DOW_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ITSWarning(UserWarning):
    """A warning from the ITS engine (dropped term, few periods, weak diagnostics)."""


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
_UNITS = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year", "int": "period"}
_PPY = {"D": 365.25, "W": 365.25 / 7.0, "M": 12.0, "Q": 4.0, "Y": 1.0, "int": None}


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


# --------------------------------------------------------------------------- design
@dataclass
class Design:
    X: np.ndarray  # all rows (stacked for comparative models)
    names: list[str]
    group: np.ndarray  # 0..G-1; the treated series is the last group
    tpos: np.ndarray  # grid position of each row
    y: np.ndarray
    log_offset: np.ndarray  # zeros when no offset
    fit: np.ndarray  # boolean mask of rows used in the fit
    treated_rows: np.ndarray  # boolean mask of the treated series' rows
    missing: np.ndarray  # boolean, rows with no usable outcome (or offset)
    excluded: np.ndarray  # boolean, transition rows
    seasonal_cols: list[int] = field(default_factory=list)
    effect_cols: list[int] = field(default_factory=list)  # zeroed for the counterfactual
    headline: dict[str, str] = field(default_factory=dict)  # "level"/"slope" -> term name


def _fourier_position(frame: SeriesFrame) -> tuple[np.ndarray, float]:
    kind = frame.freq.kind
    idx = frame.periods.to_timestamp(how="start")  # type: ignore[union-attr]
    if kind == "D":
        return np.asarray(idx.day_of_year, dtype=float), 365.25
    if kind == "W":
        return np.asarray(idx.isocalendar().week, dtype=float), 365.25 / 7.0
    if kind == "M":
        return np.asarray(idx.month, dtype=float), 12.0
    if kind == "Q":
        return np.asarray(idx.quarter, dtype=float), 4.0
    raise ParameterError("fourier", "> 0", f"needs a sub-annual frequency; this series is {frame.freq.unit}ly",
                         hint="Set fourier=0 for yearly data")


def _safe_name(s: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(s)).strip("_") or "holiday"


def build_design(
    frame: SeriesFrame,
    *,
    event_pos: int,
    slope: bool,
    dow: bool,
    fourier: int,
    holidays: Any,
    excluded_pos: np.ndarray,
    family: str,
) -> Design:
    n = len(frame.index)
    t = np.arange(n, dtype=float)
    lvl = (t >= event_pos).astype(float)
    base: dict[str, np.ndarray] = {"const": np.ones(n), "trend": t, "level": lvl}
    if slope:
        base["slope"] = (t - event_pos) * lvl

    seas: dict[str, np.ndarray] = {}
    if dow:
        wd = np.asarray(frame.periods.to_timestamp(how="start").day_of_week)  # type: ignore[union-attr]
        for d in range(1, 7):
            seas[f"dow_{DOW_NAMES[d]}"] = (wd == d).astype(float)
    if fourier:
        x, per = _fourier_position(frame)
        for k in range(1, fourier + 1):
            seas[f"fourier_sin{k}"] = np.sin(2 * np.pi * k * x / per)
            seas[f"fourier_cos{k}"] = np.cos(2 * np.pi * k * x / per)
    if holidays is not None:
        hol = holidays if isinstance(holidays, dict) else {"holiday": holidays}
        for name, dates in hol.items():
            col = "holiday" if not isinstance(holidays, dict) else f"holiday_{_safe_name(name)}"
            v = np.zeros(n)
            v[resolve_dates(frame, dates, f"holidays[{name!r}]")] = 1.0
            seas[col] = v

    controls = list(frame.controls)
    comparative = bool(controls)
    excl = np.zeros(n, dtype=bool)
    excl[excluded_pos] = True

    def rows_for(yv: np.ndarray, z: float, g: int):
        cols = dict(base)
        if comparative:
            cols["treated"] = z * base["const"]
            cols["treated_trend"] = z * base["trend"]
            cols["treated_level"] = z * base["level"]
            if slope:
                cols["treated_slope"] = z * base["slope"]
        cols.update(seas)
        names = list(cols)
        X = np.column_stack([cols[c] for c in names])
        return X, names, np.full(n, g), t.astype(int), yv

    blocks = [rows_for(frame.controls[c], 0.0, g) for g, c in enumerate(controls)]
    blocks.append(rows_for(frame.y, 1.0, len(controls)))
    names = blocks[-1][1]
    X = np.vstack([b[0] for b in blocks])
    group = np.concatenate([b[2] for b in blocks])
    tpos = np.concatenate([b[3] for b in blocks])
    y = np.concatenate([b[4] for b in blocks])
    G = len(blocks)
    if frame.offset is not None:
        off_raw = np.tile(frame.offset, G)
        bad = np.isfinite(off_raw) & (off_raw <= 0)
        if bad.any():
            raise DataError(
                f"the offset (exposure) column has {int(bad.sum())} value(s) <= 0, e.g. {off_raw[bad][0]!r}; "
                "an exposure must be positive because its logarithm enters the model"
            )
        log_off = np.log(np.where(np.isfinite(off_raw), off_raw, np.nan))
    else:
        log_off = np.zeros(len(y))
    missing = ~np.isfinite(y) | ~np.isfinite(log_off)
    excluded = np.tile(excl, G)
    fit = ~missing & ~excluded
    treated_rows = group == G - 1
    seasonal_cols = [names.index(c) for c in seas]
    if comparative:
        effect_cols = [names.index(c) for c in ("treated_level", "treated_slope") if c in names]
        headline = {"level": "treated_level"}
        if slope:
            headline["slope"] = "treated_slope"
    else:
        effect_cols = [names.index(c) for c in ("level", "slope") if c in names]
        headline = {"level": "level"}
        if slope:
            headline["slope"] = "slope"
    return Design(X, names, group, tpos, y, np.where(np.isfinite(log_off), log_off, 0.0), fit,
                  treated_rows, missing, excluded, seasonal_cols, effect_cols, headline)


def check_design(d: Design, *, family: str, frame: SeriesFrame, event_pos: int, dow: bool, fourier: int) -> Design:
    """Bad-input checks: each raises an error that names the cause and the way out."""
    fit = d.fit
    tr = d.treated_rows
    n_pre = int(np.sum(fit & tr & (d.tpos < event_pos)))
    n_post = int(np.sum(fit & tr & (d.tpos >= event_pos)))
    if n_pre < 3:
        raise DataError(
            f"only {n_pre} usable period(s) before the event; the pre-event trend needs at least 3. "
            "Move the event later or extend the series backwards"
        )
    if n_post < 1:
        raise DataError(
            "no usable period from the event on (all missing or excluded); "
            "exclude fewer transition periods (exclude= / transition_periods) or extend the series past the event"
        )
    y = d.y[fit]
    yt = d.y[fit & tr]
    if np.ptp(yt) == 0:
        what = "all zero" if yt[0] == 0 else f"constant (every value is {yt[0]:g})"
        raise ModelError(
            f"the outcome {frame.outcome!r} is {what} over the fitted periods, so there is nothing to model; "
            "check the indicator (a feed outage shows as zeros: mark those periods missing) or choose another series"
        )
    if family in COUNT_FAMILIES:
        if np.any(y < 0):
            bad = y[y < 0][0]
            raise DataError(
                f"family={family!r} needs non-negative counts, but the outcome has {int(np.sum(y < 0))} negative "
                f"value(s), e.g. {bad:g}; use family='gaussian' for a signed series"
            )
        if family in ("poisson", "negbin") and np.any(np.abs(y - np.round(y)) > 1e-8):
            bad = y[np.abs(y - np.round(y)) > 1e-8][0]
            raise DataError(
                f"family={family!r} needs integer counts, but the outcome has non-integer values, e.g. {bad:g}; "
                "model rates as counts with offset= (the exposure column), or use family='quasipoisson' "
                "(which accepts non-negative non-integers) or family='gaussian'"
            )
    for name, c in frame.controls.items():
        both = np.isfinite(c) & np.isfinite(frame.y)
        if both.sum() > 0 and np.allclose(c[both], frame.y[both]):
            raise ModelError(
                f"the control series {name!r} is identical to the treated series {frame.outcome!r}, so every "
                "treated-minus-control difference is zero and the comparative design is singular; "
                "choose a control that was not exposed to the event, or drop control="
            )
    if dow:
        wd = np.asarray(frame.periods.to_timestamp(how="start").day_of_week)[d.tpos[fit & tr]]  # type: ignore[union-attr]
        seen = set(np.unique(wd).tolist())
        if n_pre + n_post < 14 or len(seen) < 7:
            raise DataError(
                f"day-of-week effects need every weekday observed and at least 14 usable days; "
                f"got {n_pre + n_post} days covering {len(seen)} weekday(s). Set dow=False or use a longer series"
            )
    if fourier:
        ppy = frame.freq.periods_per_year or 0
        if 2 * fourier >= ppy:
            raise ParameterError(
                "fourier", fourier,
                f"is too many harmonics for {frame.freq.unit}ly data: need 2*fourier < {ppy:g} periods per year",
                hint=f"Use fourier <= {max(int(math.ceil(ppy / 2)) - 1, 0)}",
            )
        if n_pre + n_post < ppy:
            raise DataError(
                f"annual Fourier terms need at least one full year ({ppy:g} {frame.freq.unit}s) of usable data; "
                f"got {n_pre + n_post}. Set fourier=0 or use a longer series"
            )
    # zero columns (e.g. a holiday that never occurs in the fitted periods) are dropped with a warning
    X = d.X[fit]
    keep = [j for j in range(X.shape[1]) if not (np.all(X[:, j] == 0) and d.names[j].startswith("holiday"))]
    if len(keep) < X.shape[1]:
        dropped = [d.names[j] for j in range(X.shape[1]) if j not in keep]
        warnings.warn(f"holiday term(s) {dropped} never occur in the fitted periods and were dropped",
                      ITSWarning, stacklevel=4)
        d = _drop_columns(d, keep)
        X = d.X[fit]
    p = X.shape[1]
    if X.shape[0] <= p:
        raise DataError(
            f"{X.shape[0]} usable period(s) for {p} model terms; the fit needs more periods than terms. "
            "Drop seasonal terms (dow=False, fewer fourier pairs) or use a longer series"
        )
    rank = np.linalg.matrix_rank(X / np.maximum(np.abs(X).max(axis=0), 1e-300))
    if rank < p:
        culprit = None
        for j in range(1, p + 1):
            sub = X[:, :j] / np.maximum(np.abs(X[:, :j]).max(axis=0), 1e-300)
            if np.linalg.matrix_rank(sub) < j:
                culprit = d.names[j - 1]
                break
        raise ModelError(
            f"the design matrix is singular (rank {rank} < {p} terms): term {culprit!r} is a linear "
            f"combination of the terms before it ({', '.join(d.names[:d.names.index(culprit)])}). "
            "Typical causes: no usable period after the event for the slope, a transition exclusion covering the "
            "whole post period, or seasonal terms that repeat another column; drop that term or add data"
        )
    return d


def _drop_columns(d: Design, keep: list[int]) -> Design:
    names = [d.names[j] for j in keep]
    d.X = d.X[:, keep]
    d.names = names
    d.seasonal_cols = [i for i, c in enumerate(names) if c.startswith(("dow_", "fourier_", "holiday"))]
    d.effect_cols = [names.index(c) for c in d.headline.values() if c in names]
    return d


# --------------------------------------------------------------------------- fitting
@dataclass
class FitState:
    params: np.ndarray
    mu: np.ndarray  # fitted means on the fit rows
    alpha: float  # NB2 dispersion (0 for other families)
    scale: float  # dispersion used by the model-based covariance
    loglike: float
    deviance: float
    pearson_chi2: float
    converged: bool
    n_iter: int


def _nb_loglike(y: np.ndarray, mu: np.ndarray, alpha: float) -> float:
    r = 1.0 / alpha
    return float(np.sum(special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1)
                        + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))))


def _pois_loglike(y: np.ndarray, mu: np.ndarray) -> float:
    return float(np.sum(special.xlogy(y, mu) - mu - special.gammaln(y + 1)))


def _deviance(y: np.ndarray, mu: np.ndarray, alpha: float) -> float:
    ylogy = special.xlogy(y, y) - special.xlogy(y, mu)
    if alpha <= 0:
        return float(2 * np.sum(ylogy - (y - mu)))
    r = 1.0 / alpha
    return float(2 * np.sum(ylogy - (y + r) * np.log((1 + alpha * y) / (1 + alpha * mu))))


def _irls_log(X, y, off, alpha, beta0=None, tol=1e-10, maxiter=100):
    if beta0 is None:
        eta = np.log(y + 0.1)
    else:
        eta = X @ beta0 + off
    dev_old = np.inf
    beta = beta0
    converged = False
    it = 0
    for it in range(1, maxiter + 1):
        mu = np.exp(eta)
        w = mu / (1.0 + alpha * mu)
        z = eta - off + (y - mu) / mu
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        eta = np.clip(X @ beta + off, -700, 700)
        dev = _deviance(y, np.exp(eta), alpha)
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1):
            converged = True
            break
        dev_old = dev
    return beta, np.exp(eta), converged, it


def _alpha_ml(y: np.ndarray, mu: np.ndarray) -> float:
    def negll(la: float) -> float:
        return -_nb_loglike(y, mu, math.exp(la))

    res = optimize.minimize_scalar(negll, bounds=(-25.0, 6.0), method="bounded",
                                   options={"xatol": 1e-10, "maxiter": 500})
    return math.exp(float(res.x))


def fit_model(X: np.ndarray, y: np.ndarray, off: np.ndarray, family: str) -> FitState:
    n, p = X.shape
    if family == "gaussian":
        beta = np.linalg.lstsq(X, y - off, rcond=None)[0]
        mu = X @ beta + off
        rss = float(np.sum((y - mu) ** 2))
        sigma2 = rss / (n - p)
        ll = float(-0.5 * n * (np.log(2 * np.pi * rss / n) + 1))
        return FitState(beta, mu, 0.0, sigma2, ll, rss, rss, True, 1)
    if family in ("poisson", "quasipoisson"):
        beta, mu, conv, it = _irls_log(X, y, off, 0.0)
        chi2 = float(np.sum((y - mu) ** 2 / mu))
        scale = chi2 / (n - p) if family == "quasipoisson" else 1.0
        return FitState(beta, mu, 0.0, scale, _pois_loglike(y, mu), _deviance(y, mu, 0.0), chi2, conv, it)
    # negbin: alternate IRLS for beta given alpha and ML for alpha given mu (as R's MASS::glm.nb)
    beta, mu, conv, it = _irls_log(X, y, off, 0.0)
    alpha = _alpha_ml(y, mu)
    total = it
    conv = False
    ll_old = -np.inf
    for _ in range(100):
        beta, mu, c_in, it = _irls_log(X, y, off, alpha, beta0=beta)
        total += it
        a_new = _alpha_ml(y, mu)
        ll = _nb_loglike(y, mu, a_new)
        # converged when alpha settles, or when the likelihood no longer moves (alpha sliding
        # towards 0 along a flat ridge: the data show no overdispersion, NB ~ Poisson)
        if abs(math.log(a_new) - math.log(alpha)) < 1e-8 or abs(ll - ll_old) < 1e-10 * (abs(ll) + 1.0):
            alpha = a_new
            conv = c_in
            break
        alpha, ll_old = a_new, ll
    chi2 = float(np.sum((y - mu) ** 2 / (mu + alpha * mu ** 2)))
    return FitState(beta, mu, alpha, 1.0, _nb_loglike(y, mu, alpha), _deviance(y, mu, alpha), chi2, conv, total)


def score_weights(y: np.ndarray, mu: np.ndarray, family: str, alpha: float):
    """Per-row score factor u (score = x*u), expected weight w, observed-Hessian weight h."""
    if family == "gaussian":
        one = np.ones_like(mu)
        return y - mu, one, one
    if family in ("poisson", "quasipoisson"):
        return y - mu, mu, mu
    den = 1.0 + alpha * mu
    return (y - mu) / den, mu / den, mu * (1.0 + alpha * y) / den ** 2


def nw_auto_lags(nobs: int) -> int:
    """The Newey-West rule of thumb: floor(4 (T/100)^(2/9)) lags.

    It is also the pilot lag of :func:`nw_plugin_lags`.
    """
    return int(math.floor(4.0 * (nobs / 100.0) ** (2.0 / 9.0)))


def nw_plugin_lags(S: np.ndarray, tpos: np.ndarray, group: np.ndarray, n_grid: int, n_t: int,
                   max_lags: int) -> int:
    """Newey-West (1994) data-dependent lag for the Bartlett kernel.

    The scores (all terms but the constant, summed, as in Newey and West 1994, sec. 3)
    are placed on the regular grid of each series; with the pilot lag
    ``n = floor(4 (T/100)^(2/9))`` and their autocovariances ``sigma_j``,
    ``s0 = sigma_0 + 2 sum_j sigma_j``, ``s1 = 2 sum_j j sigma_j`` and the bandwidth is
    ``1.1447 (s1/s0)^(2/3) T^(1/3)``. The lag is its integer part, but never fewer than
    the rule of thumb ``floor(4 (T/100)^(2/9))`` and never more than ``max_lags``: strong
    autocorrelation gets more lags than the rule gives, which keeps the intervals honest,
    and mild autocorrelation keeps the rule's lags.
    """
    pilot = max(1, nw_auto_lags(n_t))
    f = S[:, 1:].sum(axis=1) if S.shape[1] > 1 else S[:, 0]
    sig = np.zeros(pilot + 1)
    for g in np.unique(group):
        sel = group == g
        F = np.zeros(n_grid)
        F[tpos[sel]] = f[sel]
        sig[0] += F @ F
        for j in range(1, pilot + 1):
            sig[j] += F[j:] @ F[:-j]
    sig /= max(n_t, 1)
    s0 = sig[0] + 2.0 * sig[1:].sum()
    s1 = 2.0 * np.sum(np.arange(1, pilot + 1) * sig[1:])
    if not np.isfinite(s0) or s0 <= 0:
        return min(pilot, max_lags)
    bw = 1.1447 * (s1 / s0) ** (2.0 / 3.0) * n_t ** (1.0 / 3.0) if s1 > 0 else 0.0
    # Never fewer lags than the rule of thumb: with mild autocorrelation the plug-in picks
    # one or two lags, and Bartlett HAC with so few is biased towards too-narrow intervals.
    return int(max(1, min(max(math.floor(bw), nw_auto_lags(n_t)), max_lags)))


def covariance(
    X: np.ndarray, u: np.ndarray, w: np.ndarray, h: np.ndarray, *, cov_type: str, maxlags: int,
    small_sample: bool, scale: float, tpos: np.ndarray, group: np.ndarray, n_grid: int,
    prewhite: bool = False,
) -> np.ndarray:
    n, p = X.shape
    if cov_type == "nonrobust":
        V = scale * np.linalg.inv(X.T @ (X * w[:, None]))
    else:
        bread = np.linalg.inv(X.T @ (X * h[:, None]))
        S = X * u[:, None]
        meat = S.T @ S
        if cov_type == "hac" and prewhite:
            meat = _prewhitened_meat(S, maxlags, tpos, group, n_grid)
        elif cov_type == "hac" and maxlags > 0:
            for g in np.unique(group):
                G = np.zeros((n_grid, p))
                sel = group == g
                G[tpos[sel]] = S[sel]
                for lag in range(1, maxlags + 1):
                    wl = 1.0 - lag / (maxlags + 1.0)
                    gam = G[lag:].T @ G[:-lag]
                    meat += wl * (gam + gam.T)
        V = bread @ meat @ bread
    if small_sample:
        V = V * n / (n - p)
    return 0.5 * (V + V.T)


def _prewhitened_meat(S: np.ndarray, maxlags: int, tpos: np.ndarray, group: np.ndarray, n_grid: int) -> np.ndarray:
    """Andrews-Monahan (1992) VAR(1)-prewhitened Bartlett HAC meat (as R sandwich's prewhite=1).

    Scores are placed on the regular grid (zeros where a period is not fitted), a VAR(1)
    without intercept is fitted by OLS pooling the series, the Bartlett HAC of its residuals
    is recoloured with (I - A)^-1. The VAR matrix is shrunk so that its largest eigenvalue
    modulus is at most 0.97 (Andrews-Monahan's adjustment).
    """
    p = S.shape[1]
    grids = []
    for g in np.unique(group):
        G = np.zeros((n_grid, p))
        sel = group == g
        G[tpos[sel]] = S[sel]
        grids.append(G)
    Y = np.vstack([G[1:] for G in grids])
    Z = np.vstack([G[:-1] for G in grids])
    A = np.linalg.lstsq(Z, Y, rcond=None)[0].T  # Y_t = A Z_t
    rho = float(np.max(np.abs(np.linalg.eigvals(A)))) if p else 0.0
    if rho > 0.97:
        A = A * (0.97 / rho)
    meat = np.zeros((p, p))
    for G in grids:
        E = G[1:] - G[:-1] @ A.T
        meat += E.T @ E
        for lag in range(1, maxlags + 1):
            wl = 1.0 - lag / (maxlags + 1.0)
            gam = E[lag:].T @ E[:-lag]
            meat += wl * (gam + gam.T)
    B = np.linalg.inv(np.eye(p) - A)
    return B @ meat @ B.T
