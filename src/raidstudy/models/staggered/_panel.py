"""Panel preparation shared by the staggered estimators: periods on an integer grid, checks, gap report."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.errors import DataError, ParameterError

__all__ = ["Panel", "as_positions", "plain", "prepare_panel"]


def plain(v: Any) -> Any:
    """A numpy scalar as the Python value (for readable messages)."""
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class Panel:
    """A long unit x period panel with periods as integer positions on a regular grid.

    ``df`` has columns ``unit`` (original labels), ``uid`` (0..N-1), ``pos`` (integer period
    position), the outcome ``y`` and the covariates, one row per observed (unit, period);
    rows with a missing outcome or covariate are already removed and counted in ``report``.
    """

    df: pd.DataFrame
    outcome: str
    covariates: list[str]
    time_kind: str  # "int" or "datetime"
    origin: Any  # first period (label) of the grid
    step: Any  # grid step (1 for integers, a Timedelta for dates)
    report: dict[str, Any] = field(default_factory=dict)

    def label(self, pos: int) -> Any:
        """The period label at grid position ``pos`` (an int or a date string)."""
        if self.time_kind == "int":
            return int(self.origin + int(pos))
        return str((self.origin + int(pos) * self.step).date())


def _check_columns(data: pd.DataFrame, cols: dict[str, Any]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ParameterError("data", type(data).__name__, "must be a long pandas DataFrame (one row per unit and period)")
    for role, col in cols.items():
        if col is None:
            continue
        for c in ([col] if isinstance(col, str) else list(col)):
            if c not in data.columns:
                raise ParameterError(role, c, "is not a column of data", accepted=list(map(str, data.columns)))


def _grid(values: pd.Series, name: str, freq: Any = None) -> tuple[str, Any, Any]:
    """(kind, origin, step) of the period grid of a time column."""
    v = values.dropna()
    if v.empty:
        raise DataError(f"column {name!r} has no non-missing periods; give one period per row")
    if pd.api.types.is_datetime64_any_dtype(v):
        u = np.sort(pd.to_datetime(v.unique()))
        if freq is not None:
            fixed = {"D": pd.Timedelta(days=1), "W": pd.Timedelta(days=7)}
            try:
                step = fixed[str(freq).upper()] if str(freq).upper() in fixed else pd.Timedelta(freq)
            except (ValueError, TypeError):
                raise ParameterError("freq", freq, "is not a fixed period length",
                                     accepted=["D", "W", "a timedelta such as '14D'"]) from None
        elif len(u) < 2:
            step = pd.Timedelta(days=1)
        else:
            step = pd.Timedelta(np.diff(u).min())
        return "datetime", pd.Timestamp(u[0]), step
    if pd.api.types.is_numeric_dtype(v):
        f = v.to_numpy(dtype=float)
        if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
            bad = v[(~np.isfinite(f)) | (f != np.round(f))].iloc[0]
            raise DataError(f"column {name!r} holds the non-integer period {bad!r}; periods must be whole "
                            "numbers (e.g. years or week numbers) or dates")
        return "int", int(f.min()), 1
    raise DataError(f"column {name!r} has dtype {v.dtype}; periods must be integers or datetimes "
                    "(convert with pd.to_datetime)")


def as_positions(values: Any, kind: str, origin: Any, step: Any, name: str, *, allow_outside: bool = True) -> np.ndarray:
    """Grid positions (float, NaN for missing) of period labels; DataError when off the grid."""
    s = pd.Series(values)
    if kind == "int":
        f = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        pos = f - origin
    else:
        ts = pd.to_datetime(s, errors="coerce")
        pos = ((ts - origin) / step).to_numpy(dtype=float)
    fin = np.isfinite(pos)
    off = fin & (np.abs(pos - np.round(pos)) > 1e-9)
    if off.any():
        bad = s[off].iloc[0]
        raise DataError(f"{name} value {bad!r} does not fall on the period grid (first period "
                        f"{origin}, step {step}); give periods on the grid of the time column")
    pos = np.where(fin, np.round(pos), pos)
    return pos


def prepare_panel(data: pd.DataFrame, *, outcome: str, unit: str, time: str,
                  covariates: Sequence[str] | str | None = None, extra: dict[str, str] | None = None,
                  freq: Any = None) -> Panel:
    """Check a long panel, put its periods on an integer grid and report missing cells and gaps.

    Raises
    ------
    ParameterError
        A named column is absent.
    DataError
        Periods that are not integers or dates, or off the grid; a (unit, period) pair that
        occurs twice; no usable observation.
    """
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    roles = dict(extra or {})
    _check_columns(data, {"outcome": outcome, "unit": unit, "time": time, "covariates": covs, **roles})
    extra = list(roles.values())
    if outcome in covs:
        raise ParameterError("covariates", outcome, "is the outcome; a covariate must be another column")
    kind, origin, step = _grid(data[time], time, freq)
    pos = as_positions(data[time], kind, origin, step, f"time column {time!r}")
    df = pd.DataFrame({"unit": data[unit].to_numpy(), "pos": pos, "y": pd.to_numeric(data[outcome], errors="coerce")})
    for c in covs:
        df[c] = pd.to_numeric(data[c], errors="coerce").to_numpy(dtype=float)
    for c in extra:
        df[c] = data[c].to_numpy()
    df = df[np.isfinite(df["pos"].to_numpy(dtype=float)) & df["unit"].notna().to_numpy()]
    dup = df.duplicated(["unit", "pos"])
    if dup.any():
        i = np.flatnonzero(dup.to_numpy())[0]
        u, ps = df["unit"].iloc[i], int(df["pos"].iloc[i])
        lab = ps + origin if kind == "int" else (origin + ps * step).date()
        u = plain(u)
        raise DataError(f"unit {u!r} has more than one row for period {lab} ({int(dup.sum())} duplicate "
                        "(unit, period) rows); aggregate to one row per unit and period first")
    units_all = pd.Index(pd.unique(df["unit"]))
    n_units_in = len(units_all)
    bad = ~np.isfinite(df["y"].to_numpy(dtype=float))
    for c in covs:
        bad |= ~np.isfinite(df[c].to_numpy(dtype=float))
    n_nan = int(bad.sum())
    df = df[~bad].copy()
    if df.empty:
        raise DataError(f"no row has a finite outcome {outcome!r}" + (f" and covariates {covs}" if covs else "")
                        + "; check the columns")
    df["pos"] = df["pos"].astype(np.int64)
    shift = int(df["pos"].min())
    df["pos"] -= shift
    origin = origin + shift * step if kind == "datetime" else origin + shift
    try:
        units = pd.Index(sorted(pd.unique(df["unit"])))
    except TypeError:  # mixed label types
        units = pd.Index(sorted(pd.unique(df["unit"]), key=lambda u: str(u)))
    df["uid"] = units.get_indexer(df["unit"])
    df = df.sort_values(["uid", "pos"], kind="mergesort").reset_index(drop=True)
    n_periods = int(df["pos"].max()) + 1
    span = df.groupby("uid")["pos"].agg(["min", "max", "size"])
    interior_gaps = (span["max"] - span["min"] + 1 - span["size"])
    report = {
        "n_units": len(units),
        "n_units_without_data": int(n_units_in - len(units)),
        "n_periods": n_periods,
        "n_cells": int(len(units) * n_periods),
        "n_obs": len(df),
        "n_missing_cells": int(len(units) * n_periods - len(df)),
        "n_rows_missing_values": n_nan,
        "n_interior_gap_cells": int(interior_gaps.sum()),
        "n_units_with_gaps": int((interior_gaps > 0).sum()),
        "balanced": bool(len(df) == len(units) * n_periods),
    }
    return Panel(df=df, outcome=outcome, covariates=covs, time_kind=kind, origin=origin, step=step, report=report)
