"""The segmented-regression design matrix and the checks that refuse a design the data cannot carry."""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.its.data import PERIODS_PER_YEAR, SeriesFrame, resolve_dates
from raidstudy.models.its.vocabulary import COUNT_FAMILIES, DOW_NAMES, ITSWarning


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


def headline_terms(*, comparative: bool, slope: bool) -> dict[str, str]:
    """The terms the headline effects use: ``{"level": ..., "slope": ...}`` (the one source).

    A comparative model's effect is the treated-minus-control difference (``treated_level``,
    ``treated_slope``); a single series' is ``level`` and ``slope``. Without a slope change
    there is no ``"slope"`` entry. Results expose it as ``res.model.design.headline``.

    >>> headline_terms(comparative=True, slope=False)
    {'level': 'treated_level'}
    """
    prefix = "treated_" if comparative else ""
    out = {"level": f"{prefix}level"}
    if slope:
        out["slope"] = f"{prefix}slope"
    return out


def _fourier_position(frame: SeriesFrame) -> tuple[np.ndarray, float]:
    kind = frame.freq.kind
    idx = frame.periods.to_timestamp(how="start")  # type: ignore[union-attr]
    if kind == "D":
        return np.asarray(idx.day_of_year, dtype=float), PERIODS_PER_YEAR["D"]
    if kind == "W":
        return np.asarray(idx.isocalendar().week, dtype=float), PERIODS_PER_YEAR["W"]
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
    headline = headline_terms(comparative=comparative, slope=slope)
    effect_cols = [names.index(c) for c in headline.values()]
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
