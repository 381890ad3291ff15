r"""In-time placebos: would any other stretch of the series have looked as extreme?

:func:`in_time_placebos` refits the study's own model (same family, seasonality, window
lengths, transition rule and covariance) on windows cut from the **whole history** of the
indicator outside the real event's estimation window, each with a fake event at the same
position as the real one, and ranks the real estimate among them:

* **independent** placebo windows tile the history back to back, outward from the real
  event's window, so no two of them share a period; only these enter the p-values, and
  their number bounds how small a p-value can be (``min_attainable_p = 1 / (1 + n)``);
* **dense** placebo dates (by default 500, spread evenly over every admissible window
  start, overlapping) show the shape of the placebo distribution in a figure; they are
  descriptive and never enter a p-value.

All windows share one grid and one design apart from the event columns, so they are
fitted together: the IRLS iterations, the NB2 dispersion step and the covariance
(EWC, HAC, robust or model-based) run on arrays of shape ``(K, n, p)`` for all ``K``
windows at once (``benchmarks/bench_placebo.py`` measures it against a loop of
statsmodels refits). Each window's estimates equal those of
``ITS(window, ...).fit(...)``; a window the batch cannot handle (a dropped holiday term,
no convergence) is refitted that way, one by one.

:func:`placebo_in_time` is the earlier pre-period-only check, kept unchanged until its
callers move to :func:`in_time_placebos`.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from raidstudy.errors import DataError, ParameterError, RaidstudyError
from raidstudy.io import json_number

__all__ = ["PlaceboResult", "in_time_placebos"]

#: Half-width in days of the period an ``approx`` catalogue date may fall in.
APPROX_DAYS = 7
OTHER_EVENT_RULES = ("exclude", "flag")
TABLE_COLUMNS = ["kind", "date", "start", "end", "estimate", "std_error", "statistic", "n_missing",
                 "other_events", "used", "note"]


# =========================================================================== results
@dataclasses.dataclass
class PlaceboResult:
    r"""In-time placebo estimates and the rank of the real estimate among them.

    Built by :func:`in_time_placebos`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per candidate window, independent windows first, then the dense set, each
        by date. Columns: ``kind`` (``independent`` or ``dense``), ``date`` (the placebo
        event), ``start`` and ``end`` (first and last period of the window), ``estimate``
        (the placebo's ``term``), ``std_error`` (same covariance as the real fit),
        ``statistic`` (``estimate / std_error``), ``n_missing`` (missing periods in the
        window), ``other_events`` (catalogued events inside the window, ``;``-separated),
        ``used`` (counted in the p-values) and ``note`` (why a window was skipped, flagged
        or refitted one by one; empty otherwise). Skipped windows have NaN estimates.
    real : dict
        ``estimate``, ``std_error`` and ``statistic`` of the real fit.
    term : str
        The coefficient compared (``level``, or ``treated_level`` in a comparative model).
    family, cov_type : str
        The model's family and covariance (placebos use the same).
    pre_periods, post_periods, transition_periods : int
        The window design shared by the real fit and every placebo.
    other_events_rule : {"exclude", "flag"}
        What happened to independent windows holding a catalogued event.
    real_window_events : list of str
        Catalogued events (other than the real one) inside the real event's own window.

    Notes
    -----
    With :math:`n` fitted independent windows, placebo estimates :math:`\hat\beta_k`,
    standard errors :math:`\widehat{se}_k` and statistics
    :math:`t_k = \hat\beta_k / \widehat{se}_k`, and the real fit's
    :math:`\hat\beta, t`,

    .. math::

        p_{\text{raw}} = \frac{1 + \#\{k : |\hat\beta_k| \ge |\hat\beta|\}}{1 + n}, \qquad
        p_{\text{stud}} = \frac{1 + \#\{k : |t_k| \ge |t|\}}{1 + n}.

    Both are two-sided ranks; neither can fall below ``min_attainable_p`` :math:`= 1/(1+n)`
    (``p_at_floor`` says when it sits there: the real estimate beat every placebo, which
    with few windows is weak evidence). The studentized version accounts for windows
    whose estimates are noisier; the raw version does not lean on the standard errors.
    """

    table: pd.DataFrame
    real: dict[str, float]
    term: str
    family: str
    cov_type: str
    pre_periods: int
    post_periods: int
    transition_periods: int
    other_events_rule: str = "exclude"
    real_window_events: list[str] = dataclasses.field(default_factory=list)

    # -------------------------------------------------------------- the p-values
    def _used(self) -> pd.DataFrame:
        t = self.table
        return t[(t["kind"] == "independent") & t["used"]]

    @property
    def n_independent(self) -> int:
        """Number of fitted independent placebo windows (the ``n`` of the p-values)."""
        return len(self._used())

    @property
    def min_attainable_p(self) -> float:
        """The smallest p-value ``n_independent`` windows can give: ``1 / (1 + n)``."""
        return 1.0 / (1.0 + self.n_independent)

    def _p(self, col: str, real: float) -> tuple[float, int]:
        v = self._used()[col].to_numpy(dtype=float)
        k = int(np.sum(np.abs(v) >= abs(real)))
        return (1.0 + k) / (1.0 + len(v)), k

    @property
    def p_value(self) -> float:
        """Rank p-value of the raw jump ``|estimate|`` among the independent windows."""
        return self._p("estimate", self.real["estimate"])[0]

    @property
    def p_value_studentized(self) -> float:
        """Rank p-value of ``|estimate / std_error|`` among the independent windows."""
        return self._p("statistic", self.real["statistic"])[0]

    @property
    def p_at_floor(self) -> bool:
        """True when either p-value equals ``min_attainable_p`` (no placebo was as extreme)."""
        return bool(min(self.p_value, self.p_value_studentized) <= self.min_attainable_p * (1 + 1e-12))

    @property
    def dense(self) -> pd.DataFrame:
        """The dense (descriptive, overlapping) placebo rows that were fitted."""
        t = self.table
        return t[(t["kind"] == "dense") & t["estimate"].notna()]

    @property
    def n_dense(self) -> int:
        """Number of fitted dense placebo dates."""
        return len(self.dense)

    def caution(self) -> str:
        """A plain-language reading of the p-values' resolution, for reports."""
        n = self.n_independent
        floor = self.min_attainable_p
        text = (f"{n} independent placebo window{'s' if n != 1 else ''}: the smallest attainable "
                f"p-value is {floor:.3g}")
        if floor > 0.05:
            text += ", so this check cannot reach the 5% level whatever the data"
        if self.p_at_floor:
            text += ("; the real estimate beat every independent placebo (the p-value is at its floor, "
                     "which is as strong as this check can say, not evidence stronger than 1/(1+n))")
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly and deterministic (dates as ISO text, NaN as None).

        Keys: ``method``, ``term``, ``family``, ``cov_type``, ``window`` (``pre_periods``,
        ``post_periods``, ``transition_periods``), ``real`` (``estimate``, ``std_error``,
        ``statistic``), ``n_independent``, ``n_candidates``, ``n_skipped``, ``p_value``,
        ``p_value_studentized``, ``n_as_extreme``, ``n_as_extreme_studentized``,
        ``min_attainable_p``, ``p_at_floor``, ``can_reach_5pct``, ``caution``,
        ``other_events_rule``, ``real_window_events``, ``independent`` (rows),
        ``dense`` (``n``, ``description``, ``estimate_quantiles``, ``statistic_sd``,
        ``rows``).
        """
        p_raw, k_raw = self._p("estimate", self.real["estimate"])
        p_st, k_st = self._p("statistic", self.real["statistic"])
        ind = self.table[self.table["kind"] == "independent"]
        dense = self.dense
        est, stat = dense["estimate"].to_numpy(float), dense["statistic"].to_numpy(float)
        return {
            "method": ("in-time placebos: the same model refitted on non-overlapping windows of the whole "
                       "history outside the event's window, each with a fake event at the real event's "
                       "position; p-values rank the real estimate among these independent windows"),
            "term": self.term,
            "family": self.family,
            "cov_type": self.cov_type,
            "window": {"pre_periods": self.pre_periods, "post_periods": self.post_periods,
                       "transition_periods": self.transition_periods},
            "real": {k: _num(v) for k, v in sorted(self.real.items())},
            "n_independent": self.n_independent,
            "n_candidates": len(ind),
            "n_skipped": int(len(ind) - self.n_independent),
            "p_value": p_raw,
            "p_value_studentized": p_st,
            "n_as_extreme": k_raw,
            "n_as_extreme_studentized": k_st,
            "min_attainable_p": self.min_attainable_p,
            "p_at_floor": self.p_at_floor,
            "can_reach_5pct": bool(self.min_attainable_p <= 0.05),
            "caution": self.caution(),
            "other_events_rule": self.other_events_rule,
            "real_window_events": list(self.real_window_events),
            "independent": _rows(ind),
            "dense": {
                "n": len(dense),
                "description": ("descriptive only (overlapping windows, not used for any p-value); "
                                "windows holding a catalogued event are kept and flagged"),
                "estimate_quantiles": ({str(q): float(np.quantile(est, q)) for q in (0.025, 0.5, 0.975)}
                                       if len(est) else {}),
                "statistic_sd": float(np.std(stat, ddof=1)) if len(stat) > 1 else None,
                "rows": _rows(self.table[self.table["kind"] == "dense"]),
            },
        }


_num = json_number


def _label(x: Any) -> Any:
    if isinstance(x, pd.Timestamp):
        return x.date().isoformat() if x == x.normalize() else x.isoformat()
    return _num(x) if isinstance(x, (int, float, np.number)) else str(x)


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in df[TABLE_COLUMNS].itertuples(index=False):
        d = r._asdict()
        out.append({k: (_label(v) if k in ("date", "start", "end") else
                        v if isinstance(v, str) else _num(v)) for k, v in d.items()})
    return out


# =========================================================================== the public function
def in_time_placebos(
    data: pd.DataFrame | pd.Series,
    *,
    event: Any,
    pre_periods: int,
    post_periods: int,
    its_kwargs: Mapping[str, Any] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    other_events: Any = None,
    other_events_rule: str = "exclude",
    n_dense: int = 500,
    max_missing: float = 0.1,
) -> PlaceboResult:
    r"""Placebo events over the whole history, outside the real event's window.

    Parameters
    ----------
    data : DataFrame or Series
        The **whole** indicator (and ``control`` / offset columns when the model uses them)
        on its regular index, not just the estimation window; missing periods as NaN.
    event : date-like
        The real event. Its estimation window is ``[t0 - pre_periods, t0 + post_periods)``
        (cut at the ends of the data, as the study does); no placebo window reaches into it.
    pre_periods, post_periods : int
        The window design of the real fit; every placebo window has exactly
        ``pre_periods`` periods before its fake event and ``post_periods`` from it on.
    its_kwargs, fit_kwargs : mapping
        Passed to :class:`raidstudy.models.its.ITS` (``outcome``, ``family``, ``dow``,
        ``exclude`` = the transition rule, ...) and to its ``fit`` (``cov_type``, ...),
        exactly as for the real fit. An integer ``exclude`` excludes the same number of
        periods from each fake event on; a list of dates is shifted with the event.
    other_events : DataFrame or list of dates, optional
        The event catalogue (:func:`raidstudy.data.events.load_events`, columns ``date``
        and optionally ``event_id`` and ``date_precision``) or plain dates. An event with
        ``month`` precision occupies its whole month, ``approx`` +/- 7 days. The real event
        (same date) is ignored.
    other_events_rule : {"exclude", "flag"}
        Independent windows holding another catalogued event: ``exclude`` (default)
        leaves them out of the p-values, because a real enforcement action inside a window
        makes it a treated window, not a placebo; ``flag`` keeps them, with a note. Dense
        (descriptive) windows are always kept and flagged.
    n_dense : int
        Number of dense placebo dates (0: none), spread evenly over every admissible window
        start; fewer when fewer starts exist.
    max_missing : float
        Largest share of missing periods in a window; windows with more are skipped.

    Returns
    -------
    PlaceboResult

    Raises
    ------
    ParameterError
        A window length, rule or count out of range.
    DataError
        No independent placebo window fits in the history, or every one is blocked
        (catalogued events, missing data, a fit that failed); the message names the
        parameter to change.

    Notes
    -----
    For window :math:`k` with fake event :math:`d_k` the model is the real one on
    :math:`[d_k - \text{pre}, d_k + \text{post})`, and the placebo statistic is
    :math:`t_k = \hat\beta_k / \widehat{se}_k` for the ``level`` term (``treated_level``
    in a comparative model), with the real fit's covariance. Independent windows tile the
    history outward from the real window, back to back, and the p-values

    .. math::

        p_{\text{stud}} = \frac{1 + \#\{k : |t_k| \ge |t|\}}{1 + n}, \qquad
        p_{\text{raw}} = \frac{1 + \#\{k : |\hat\beta_k| \ge |\hat\beta|\}}{1 + n}

    use only them (:math:`n` fitted independent windows). Adjacent windows still share
    the series' persistence across their boundary, and the history may hold changes the
    catalogue does not know about; read the p-values as a calibration of the real jump
    against the series' own jumps, at a resolution of :math:`1/(1+n)`.

    Examples
    --------
    >>> from raidstudy.models.simulate import simulate_its
    >>> d = simulate_its(family="poisson", n=1100, event=500, level=-0.8, seed=2)  # simulated
    >>> res = in_time_placebos(d[["y"]], event=d.index[500], pre_periods=90, post_periods=30,
    ...                        its_kwargs={"outcome": "y", "family": "poisson"}, n_dense=20)
    >>> res.n_independent, res.p_value_studentized == res.min_attainable_p
    (7, True)
    """
    from raidstudy.models.its import ITS

    its_kwargs = dict(its_kwargs or {})
    fit_kwargs = dict(fit_kwargs or {})
    for name, v in (("pre_periods", pre_periods), ("post_periods", post_periods)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ParameterError(name, v, "must be a positive whole number of periods (the real fit's window)")
    if other_events_rule not in OTHER_EVENT_RULES:
        raise ParameterError("other_events_rule", other_events_rule, "is not a rule for windows holding "
                             "another catalogued event", accepted=OTHER_EVENT_RULES)
    if not isinstance(n_dense, (int, np.integer)) or isinstance(n_dense, bool) or n_dense < 0:
        raise ParameterError("n_dense", n_dense, "must be a whole number >= 0 (0: no dense placebo set)")
    if not (isinstance(max_missing, (int, float)) and 0 <= max_missing < 1):
        raise ParameterError("max_missing", max_missing, "must be a share in [0, 1)")
    pre, post = int(pre_periods), int(post_periods)
    W = pre + post
    exclude = its_kwargs.pop("exclude", 0)

    # The whole history on its grid, once: seasonal columns, outcome, controls, offset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = ITS(data, event=event, **its_kwargs)
    frame, N = full.frame, len(full.frame.index)
    t0 = int(full.event_pos)
    if isinstance(exclude, (int, np.integer)) and not isinstance(exclude, bool):
        excl_rel = np.arange(int(exclude))
        transition = int(exclude)
    else:  # dates relative to the real event, shifted with each placebo event
        from raidstudy.models.its.data import resolve_dates
        excl_rel = resolve_dates(frame, exclude, "exclude") - t0
        transition = len(excl_rel)
    lo, hi = max(0, t0 - pre), min(N, t0 + post)
    cov = _resolve_cov(ITS.fit, fit_kwargs)

    # The real fit, by the engine itself, on the study's window.
    real_frame = _window_frame(full, lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real_res = ITS(real_frame, event=frame.index[t0], exclude=_shift_exclude(exclude, excl_rel, frame, t0),
                       **_window_its_kwargs(its_kwargs, full)).fit(**fit_kwargs)
    term = real_res.model.design.headline["level"]
    r_est, r_se = float(real_res.params[term]), float(real_res.std_errors[term])
    real = {"estimate": r_est, "std_error": r_se, "statistic": r_est / r_se}

    # Candidate windows: back to back outward from the real window; dense: every admissible start.
    ind_starts = list(range(hi, N - W + 1, W)) + list(range(lo - W, -1, -W))
    if not ind_starts:
        raise DataError(
            f"no placebo window fits: each needs pre_periods + post_periods = {W} periods outside the event's "
            f"window, and the history has {lo} period(s) before it and {N - hi} after it. Pass the whole "
            "indicator as data (not the estimation window), or shorten pre_periods / post_periods"
        )
    admissible = np.array([s for s in range(N - W + 1) if s + W <= lo or s >= hi], dtype=int)
    if n_dense and len(admissible):
        pick = np.unique(np.linspace(0, len(admissible) - 1, num=min(n_dense, len(admissible))).round().astype(int))
        dense_starts = admissible[pick].tolist()
    else:
        dense_starts = []
    kinds = ["independent"] * len(ind_starts) + ["dense"] * len(dense_starts)
    starts = np.array(ind_starts + dense_starts, dtype=int)

    ev_int, ev_names, real_window_events = _event_intervals(other_events, frame, event, t0, lo, hi)
    # window bookkeeping: missing share, other events, design checks
    ymiss = ~np.isfinite(frame.y)
    rows = []
    todo = []
    for i, (kind, s) in enumerate(zip(kinds, starts)):
        e = s + pre
        inside = [ev_names[j] for j, (a, b) in enumerate(ev_int) if a <= s + W - 1 and b >= s]
        n_miss = int(ymiss[s:s + W].sum())
        row = {"kind": kind, "date": frame.index[e], "start": frame.index[s], "end": frame.index[s + W - 1],
               "estimate": np.nan, "std_error": np.nan, "statistic": np.nan, "n_missing": n_miss,
               "other_events": ";".join(inside), "used": False, "note": ""}
        notes = []
        skip = False
        if n_miss > max_missing * W:
            notes.append(f"skipped: {n_miss} of {W} periods missing (more than max_missing={max_missing:g})")
            skip = True
        if inside:
            if kind == "independent" and other_events_rule == "exclude":
                notes.append(f"excluded: catalogued event(s) {', '.join(inside)} inside the window")
                skip = True
            else:
                notes.append(f"flagged: catalogued event(s) {', '.join(inside)} inside the window")
        row["note"] = "; ".join(notes)
        rows.append(row)
        if not skip:
            todo.append(i)

    # The batched fit of every window that is not skipped.
    if todo:
        est, se, notes = _fit_windows(full, starts[np.array(todo)], pre, W, excl_rel, cov, term,
                                      its_kwargs, fit_kwargs, exclude)
        for j, i in enumerate(todo):
            r = rows[i]
            if notes[j]:
                r["note"] = "; ".join(x for x in (r["note"], notes[j]) if x)
            if np.isfinite(est[j]) and np.isfinite(se[j]) and se[j] > 0:
                r["estimate"], r["std_error"], r["statistic"] = float(est[j]), float(se[j]), float(est[j] / se[j])
                r["used"] = r["kind"] == "independent"
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["_o"] = table["kind"].map({"independent": 0, "dense": 1})
    table = table.sort_values(["_o", "date"], kind="stable").drop(columns="_o").reset_index(drop=True)
    res = PlaceboResult(table=table, real=real, term=term, family=full.family, cov_type=cov["cov_type"],
                        pre_periods=pre, post_periods=post, transition_periods=transition,
                        other_events_rule=other_events_rule, real_window_events=real_window_events)
    if res.n_independent == 0:
        ind = table[table["kind"] == "independent"]
        reasons = "; ".join(f"{_label(r.date)}: {r.note or 'not fitted'}" for r in ind.itertuples())
        raise DataError(
            f"none of the {len(ind)} independent placebo window(s) could be used ({reasons}). "
            "Set other_events_rule='flag' to keep windows holding other catalogued events, raise max_missing, "
            "or shorten pre_periods / post_periods so that more windows fit"
        )
    return res


# =========================================================================== helpers
def _resolve_cov(fit, fit_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The covariance settings ``ITS.fit`` would use, defaults read from its signature."""
    from raidstudy.models.its import vocabulary as voc

    sig = inspect.signature(fit).parameters
    ct = fit_kwargs.get("cov_type", sig["cov_type"].default)
    aliases = getattr(voc, "COV_ALIASES", {c: c for c in voc.COV_TYPES})
    ct = aliases.get(str(ct).strip().lower(), str(ct))
    small = bool(fit_kwargs.get("small_sample", False))
    if ct == "newey":
        ct, small = "hac", True
    extra = set(fit_kwargs) - {"cov_type", "maxlags", "small_sample", "use_t", "ewc_terms", "seed", "kernel"}
    return {"cov_type": ct, "maxlags": fit_kwargs.get("maxlags"), "small_sample": small,
            "ewc_terms": fit_kwargs.get("ewc_terms"), "default_terms": voc.EWC_TERMS,
            "batchable": ct in ("ewc", "hac", "robust", "nonrobust") and not fit_kwargs.get("prewhite")
            and not extra}


def _window_its_kwargs(its_kwargs: Mapping[str, Any], full) -> dict[str, Any]:
    kw = dict(its_kwargs)
    if full.frame.freq.kind not in ("D", "int") and kw.get("period_label") is None:
        starts = full.frame.periods.to_timestamp(how="start")
        kw["period_label"] = "start" if full.frame.index.equals(pd.DatetimeIndex(starts)) else "end"
    return kw


def _window_frame(full, a: int, b: int) -> pd.DataFrame:
    """Grid positions ``[a, b)`` of the whole history as a DataFrame the ITS constructor reads."""
    f = full.frame
    cols = {f.outcome: f.y[a:b]}
    for name, v in f.controls.items():
        cols[name] = v[a:b]
    if f.offset is not None:
        cols[full.offset] = f.offset[a:b]
    return pd.DataFrame(cols, index=f.index[a:b])


def _shift_exclude(exclude, excl_rel, frame, e: int):
    if isinstance(exclude, (int, np.integer)) and not isinstance(exclude, bool):
        return int(exclude)
    pos = e + np.asarray(excl_rel, dtype=int)
    return [frame.index[p] for p in pos if 0 <= p < len(frame.index)]


def _event_intervals(other_events, frame, event, t0: int, lo: int, hi: int):
    """Grid-position intervals of the other catalogued events; the real one left out."""
    if other_events is None:
        return [], [], []
    if isinstance(other_events, pd.DataFrame):
        if "date" not in other_events.columns:
            raise ParameterError("other_events", list(other_events.columns), "needs a 'date' column",
                                 hint="Pass raidstudy.data.events.load_events() or a list of dates")
        df = other_events
        dates = list(df["date"])
        ids = list(df["event_id"]) if "event_id" in df.columns else [None] * len(df)
        prec = list(df["date_precision"]) if "date_precision" in df.columns else ["day"] * len(df)
    else:
        if isinstance(other_events, (str, pd.Timestamp)) or not isinstance(other_events, Iterable):
            other_events = [other_events]
        dates = list(other_events)
        ids, prec = [None] * len(dates), ["day"] * len(dates)
    if frame.freq.kind == "int":
        raise ParameterError("other_events", "dates", "needs a dated series (this one has integer labels)")
    real_ts = pd.Timestamp(event) if not isinstance(event, pd.Period) else event.start_time
    out, names, in_real = [], [], []
    f0 = frame.periods[0].ordinal
    for d, i, p in zip(dates, ids, prec):
        try:
            ts = pd.Timestamp(d)
        except (ValueError, TypeError) as exc:
            raise ParameterError("other_events", d, f"cannot be read as a date ({exc})") from exc
        if ts.normalize() == real_ts.normalize():
            continue  # the real event itself
        if p == "month":
            a, b = ts.replace(day=1), ts.replace(day=1) + pd.offsets.MonthEnd(0)
        elif p == "approx":
            a, b = ts - pd.Timedelta(days=APPROX_DAYS), ts + pd.Timedelta(days=APPROX_DAYS)
        else:
            a, b = ts, ts
        pa = a.to_period(frame.periods.freq).ordinal - f0
        pb = b.to_period(frame.periods.freq).ordinal - f0
        name = str(i) if i is not None else ts.date().isoformat()
        if pb < 0 or pa >= len(frame.index):
            continue
        out.append((int(pa), int(pb)))
        names.append(name)
        if pa <= hi - 1 and pb >= lo:
            in_real.append(name)
    return out, names, in_real


# =========================================================================== the batched engine
def _base_column(name: str, t: np.ndarray, z: np.ndarray, pre: int) -> np.ndarray | None:
    lvl = (t >= pre).astype(float)
    cols = {"const": np.ones_like(t, dtype=float), "trend": t.astype(float), "level": lvl,
            "slope": (t - pre) * lvl}
    if name in cols:
        return cols[name]
    if name.startswith("treated"):
        sub = {"treated": "const", "treated_trend": "trend", "treated_level": "level",
               "treated_slope": "slope"}.get(name)
        if sub is not None:
            return z * cols[sub]
    return None


def _fit_windows(full, starts: np.ndarray, pre: int, W: int, excl_rel: np.ndarray, cov: dict, term: str,
                 its_kwargs: Mapping[str, Any], fit_kwargs: Mapping[str, Any], exclude):
    """Estimates and standard errors of ``term`` for windows starting at ``starts``."""
    K = len(starts)
    est, se = np.full(K, np.nan), np.full(K, np.nan)
    notes = [""] * K
    d = full.design
    N = len(full.frame.index)
    G = int(d.group.max()) + 1
    rel = np.tile(np.arange(W), G)
    grp = np.repeat(np.arange(G), W)
    z = (grp == G - 1).astype(float)
    # rows of window k in the full (group-major) design
    idx = (grp * N)[None, :] + starts[:, None] + rel[None, :]
    names = list(d.names)
    p = len(names)
    X = np.empty((K, G * W, p))
    for j, nm in enumerate(names):
        col = _base_column(nm, rel, z, pre)
        X[:, :, j] = col[None, :] if col is not None else d.X[idx, j]
    y = d.y[idx]
    off = d.log_offset[idx]
    fit = ~d.missing[idx]
    ex = np.zeros(W, dtype=bool)
    ex[[pre + r for r in excl_rel if 0 <= pre + r < W]] = True
    fit &= ~np.tile(ex, G)[None, :]
    fam = full.family
    # checks the engine makes (a window that fails one is refitted by the engine for its message)
    tr = grp == G - 1
    n_fit = fit.sum(axis=1)
    n_t = (fit & tr[None, :]).sum(axis=1)
    npre = (fit & tr[None, :] & (rel < pre)[None, :]).sum(axis=1)
    npost = (fit & tr[None, :] & (rel >= pre)[None, :]).sum(axis=1)
    yt = np.where(fit & tr[None, :], y, np.nan)
    with np.errstate(invalid="ignore"):
        ptp = np.nanmax(yt, axis=1) - np.nanmin(yt, axis=1)
    seas = [j for j, nm in enumerate(names) if _base_column(nm, rel, z, pre) is None]
    zero_col = np.zeros(K, dtype=bool)
    for j in seas:
        zero_col |= ~np.any((X[:, :, j] != 0) & fit, axis=1)
    ok = (npre >= 3) & (npost >= 1) & (ptp > 0) & (n_fit > p) & ~zero_col & cov["batchable"]
    if fam == "gaussian":
        pass
    elif np.any(np.where(fit, y, 0) < 0):
        ok &= ~np.any(np.where(fit, y, 0) < 0, axis=1)
    k_ok = np.flatnonzero(ok)
    if len(k_ok):
        b, V, good = _batch_fit(X[k_ok], y[k_ok], off[k_ok], fit[k_ok], fam, cov, rel, grp, W, n_t[k_ok])
        jt = names.index(term)
        for m, k in enumerate(k_ok):
            if good[m]:
                est[k], se[k] = b[m, jt], math.sqrt(V[m, jt, jt]) if V[m, jt, jt] > 0 else np.nan
            else:
                ok[k] = False
    # the engine, one by one, for whatever the batch did not take
    from raidstudy.models.its import ITS

    kw = _window_its_kwargs(its_kwargs, full)
    for k in np.flatnonzero(~ok):
        s = int(starts[k])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = ITS(_window_frame(full, s, s + W), event=full.frame.index[s + pre],
                        exclude=_shift_exclude(exclude, excl_rel, full.frame, s + pre), **kw).fit(**fit_kwargs)
            est[k], se[k] = float(r.params[term]), float(r.std_errors[term])
            notes[k] = "fitted one by one (outside the batched design)"
        except RaidstudyError as err:
            notes[k] = f"not fitted: {err}"
    return est, se, notes


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.solve(A, b[..., None])[..., 0]


def _xb(Xs: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return (Xs @ beta[..., None])[..., 0]


class _Designs:
    """The windows' design matrices as the few distinct ones they are.

    Relative to its own start every window has the same trend, level, slope and transition
    columns, and its day-of-week columns are one of seven shifts, so ``K`` windows share a
    handful of designs. Cross products ``X' diag(w) X`` for all windows of a design are then
    one matrix product ``w @ Z`` with ``Z`` the row-wise outer products, instead of ``K``
    small ones; the numbers are the same.
    """

    def __init__(self, gid: np.ndarray, reps: list[np.ndarray], Z: list[np.ndarray]):
        self.gid, self.reps, self.Z = gid, reps, Z

    @classmethod
    def from_stack(cls, Xs: np.ndarray) -> "_Designs":
        import hashlib

        keys: dict[bytes, int] = {}
        gid = np.empty(Xs.shape[0], dtype=int)
        reps: list[np.ndarray] = []
        for k in range(Xs.shape[0]):
            h = hashlib.blake2b(np.ascontiguousarray(Xs[k]).tobytes(), digest_size=16).digest()
            if h not in keys:
                keys[h] = len(reps)
                reps.append(Xs[k])
            gid[k] = keys[h]
        n, p = Xs.shape[1], Xs.shape[2]
        Z = [(R[:, :, None] * R[:, None, :]).reshape(n, p * p) for R in reps]
        return cls(gid, reps, Z)

    def take(self, idx: np.ndarray) -> "_Designs":
        return _Designs(self.gid[idx], self.reps, self.Z)

    @property
    def p(self) -> int:
        return self.reps[0].shape[1]

    def groups(self):
        """(design index, positions of its windows) for the designs present."""
        for g in np.unique(self.gid):
            yield g, np.flatnonzero(self.gid == g)

    def xtwx(self, w: np.ndarray) -> np.ndarray:
        p = self.p
        out = np.empty((w.shape[0], p, p))
        for g, r in self.groups():
            out[r] = (w[r] @ self.Z[g]).reshape(-1, p, p)
        return out

    def xtv(self, v: np.ndarray) -> np.ndarray:
        out = np.empty((v.shape[0], self.p))
        for g, r in self.groups():
            out[r] = v[r] @ self.reps[g]
        return out

    def xb(self, b: np.ndarray) -> np.ndarray:
        out = np.empty((b.shape[0], self.reps[0].shape[0]))
        for g, r in self.groups():
            out[r] = b[r] @ self.reps[g].T
        return out


def _irls(D, y, off, M, alpha, beta, maxiter=100, tol=1e-11):
    """Batched IRLS (log link, NB2 weights with per-window alpha), to a step below ``tol``.

    ``D`` is the windows' :class:`_Designs`. Only the windows still moving are updated.
    Returns beta, mu and a convergence flag.
    """
    K = len(D.gid)
    eta = np.log(y + 0.1) if beta is None else D.xb(beta) + off
    beta = np.zeros((K, D.p)) if beta is None else beta.copy()
    act = np.arange(K)
    first = True
    for _ in range(maxiter):
        Da, e, o, m = D.take(act), eta[act], off[act], M[act]
        mu = np.exp(e)
        w = mu / (1.0 + alpha[act, None] * mu) * m
        zz = e - o + (y[act] - mu) / mu
        b = _solve(Da.xtwx(w), Da.xtv(w * zz))
        step = np.max(np.abs(b - beta[act]) / (1.0 + np.abs(b)), axis=1)
        beta[act] = b
        eta[act] = np.clip(Da.xb(b) + o, -700, 700)
        moving = step > tol if not first else np.ones(len(act), dtype=bool)
        first = False
        act = act[moving]
        if len(act) == 0:
            break
    conv = np.ones(K, dtype=bool)
    conv[act] = False
    return beta, np.exp(eta), conv


def _trigamma(x: np.ndarray) -> np.ndarray:
    """psi'(x) for x > 0 (recurrence up to 8, then the asymptotic series; ~1e-12 relative).

    Used only in Newton's curvature, so its accuracy sets the speed of convergence, not
    the answer; scipy's ``polygamma(1, x)`` is exact and ten times slower.
    """
    x = np.array(x, dtype=float)
    acc = np.zeros_like(x)
    small = x < 8.0
    while small.any():
        acc[small] += 1.0 / x[small] ** 2
        x[small] += 1.0
        small = x < 8.0
    i = 1.0 / x
    i2 = i * i
    return acc + i + i2 * (0.5 + i * (1.0 / 6 + i2 * (-1.0 / 30 + i2 * (1.0 / 42 + i2 * (-1.0 / 30)))))


def _alpha_ml(y, mu, M, la0, tol=1e-12):
    """Batched profile ML of NB2 alpha given mu: safeguarded Newton on log(alpha) in [-25, 6]."""
    la = np.clip(la0, -25.0, 6.0).astype(float)
    act = np.arange(len(la))
    for _ in range(100):
        r = np.exp(-la[act])[:, None]
        yy, mm, MM = y[act], mu[act], M[act]
        g_r = np.sum(MM * (special.digamma(yy + r) - special.digamma(r) + np.log(r) + 1.0 - np.log(r + mm)
                           - (yy + r) / (r + mm)), axis=1)
        h_r = np.sum(MM * (_trigamma(yy + r) - _trigamma(r) + 1.0 / r - 2.0 / (r + mm)
                           + (yy + r) / (r + mm) ** 2), axis=1)
        r = r[:, 0]
        g, H = -r * g_r, r * r * h_r + r * g_r  # derivatives in la = -log r
        step = np.where(H < 0, -g / np.where(H < 0, H, -1.0), np.sign(g) * 0.5)
        new = np.clip(la[act] + np.clip(step, -2.0, 2.0), -25.0, 6.0)
        moving = np.abs(new - la[act]) > tol
        la[act] = new
        act = act[moving]
        if len(act) == 0:
            break
    return la


def _batch_fit(X, y, off, fit, fam, cov, rel, grp, W, n_t):
    K, _, p = X.shape
    M = fit.astype(float)
    y = np.where(fit, y, 0.0)
    off = np.where(fit, off, 0.0)
    scale_cols = np.maximum(np.abs(X).max(axis=(0, 1)), 1e-300)
    Xs = X / scale_cols
    n_fit = M.sum(axis=1)
    good = np.ones(K, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if fam == "gaussian":
            XtM = np.swapaxes(Xs * M[..., None], 1, 2)
            beta = _solve(XtM @ Xs, (XtM @ (y - off)[..., None])[..., 0])
            mu = _xb(Xs, beta) + off
            rss = np.sum(M * (y - mu) ** 2, axis=1)
            scale = rss / (n_fit - p)
            u, w, h = (y - mu), np.ones_like(mu), np.ones_like(mu)
        else:
            D = _Designs.from_stack(Xs)
            zero = np.zeros(K)
            beta, mu, conv = _irls(D, y, off, M, zero, None)
            good &= conv
            alpha = zero
            if fam == "negbin":
                # alternate the NB2 dispersion (profile ML given mu) and IRLS given alpha, as
                # the engine does, to the joint maximum; windows that settled stop moving
                mom = np.sum(M * ((y - mu) ** 2 - mu), axis=1) / np.sum(M * mu ** 2, axis=1)
                la = _alpha_ml(y, mu, M, np.log(np.maximum(mom, 1e-4)))
                act = np.arange(K)
                for _ in range(500):
                    b, m_, _c = _irls(D.take(act), y[act], off[act], M[act], np.exp(la[act]), beta[act], maxiter=2)
                    l_ = _alpha_ml(y[act], m_, M[act], la[act])
                    moving = (np.max(np.abs(b - beta[act]) / (1.0 + np.abs(b)), axis=1) > 1e-11) | \
                             (np.abs(l_ - la[act]) > 1e-11)
                    beta[act], la[act], mu[act] = b, l_, m_
                    act = act[moving]
                    if len(act) == 0:
                        break
                good[act] = False
                beta, mu, conv = _irls(D, y, off, M, np.exp(la), beta)
                good &= conv
                alpha = np.exp(la)
            a = alpha[:, None]
            if fam == "negbin":
                den = 1.0 + a * mu
                u, w, h = (y - mu) / den, mu / den, mu * (1.0 + a * y) / den ** 2
            else:
                u, w, h = y - mu, mu, mu
            chi2 = np.sum(M * (y - mu) ** 2 / (mu + a * mu ** 2), axis=1)
            scale = chi2 / (n_fit - p) if fam == "quasipoisson" else np.ones(K)
        good &= np.all(np.isfinite(beta), axis=1)
        V = _batch_cov(Xs, u * M, w * M, h * M, M, scale, cov, rel, grp, W, n_t, n_fit, p, scale_cols,
                       D=None if fam == "gaussian" else D)
    D = 1.0 / scale_cols
    return beta * D, V * D[None, :, None] * D[None, None, :], good


def _batch_cov(Xs, u, w, h, M, scale, cov, rel, grp, W, n_t, n_fit, p, scale_cols, D=None):
    from raidstudy.models.its.covariance import nw_auto_lags

    ct = cov["cov_type"]
    K = Xs.shape[0]
    G = int(grp.max()) + 1
    D = D if D is not None else _Designs.from_stack(Xs)
    if ct == "nonrobust":
        V = scale[:, None, None] * np.linalg.inv(D.xtwx(w))
    else:
        bread = np.linalg.inv(D.xtwx(h))
        S = Xs * u[..., None]  # zero on rows not fitted
        if ct == "ewc":
            B = cov["ewc_terms"]
            B = (np.minimum(cov["default_terms"], np.maximum(2, n_t // 4)) if B is None
                 else np.full(K, int(B)))
            Bmax = int(B.max())
            meat = np.zeros((K, p, p))
            j = np.arange(1, Bmax + 1)
            for g in range(G):
                sel = grp == g
                Mg = M[:, sel] > 0
                t = rel[sel]
                first = np.where(Mg, t[None, :], W).min(axis=1)
                last = np.where(Mg, t[None, :], -1).max(axis=1)
                # windows with the same first and last fitted period and the same number of
                # terms share their cosine weights: one product for all of them
                Lam = np.empty((K, Bmax, p))
                keys = np.stack([first, last, B], axis=1)
                uniq, inv = np.unique(keys, axis=0, return_inverse=True)
                Sg = S[:, sel]
                for m, (f0, l0, b0) in enumerate(uniq):
                    r = np.flatnonzero(inv.ravel() == m)
                    Phi = math.sqrt(2.0) * np.cos(np.pi * j[:, None] * ((t[None, :] - f0) + 0.5) / (l0 - f0 + 1))
                    Phi[j > b0] = 0.0
                    Lam[r] = np.tensordot(Phi, Sg[r], axes=([1], [1])).transpose(1, 0, 2)
                meat += np.swapaxes(Lam, 1, 2) @ Lam
            meat /= B[:, None, None]
        else:
            meat = np.swapaxes(S, 1, 2) @ S
            if ct == "hac":
                ml = cov["maxlags"]
                if ml is None or ml == "plugin":
                    lags = _batch_plugin_lags(S * scale_cols, rel, grp, n_t, p)  # the unscaled scores
                elif ml == "rule":
                    lags = np.array([nw_auto_lags(int(v)) for v in n_t])
                else:
                    lags = np.full(K, int(ml))
                Lmax = int(lags.max()) if K else 0
                for g in range(G):
                    Sg = S[:, grp == g]  # (K, W, p) on the window grid
                    for lag in range(1, Lmax + 1):
                        wl = np.where(lag <= lags, 1.0 - lag / (lags + 1.0), 0.0)
                        gam = np.swapaxes(Sg[:, lag:], 1, 2) @ Sg[:, :-lag]
                        meat += wl[:, None, None] * (gam + np.swapaxes(gam, 1, 2))
        V = bread @ meat @ bread
    if cov["small_sample"]:
        V = V * (n_fit / (n_fit - p))[:, None, None]
    return 0.5 * (V + np.swapaxes(V, 1, 2))


def _batch_plugin_lags(S, rel, grp, n_t, p):
    """:func:`raidstudy.models.its.covariance.nw_plugin_lags` for every window at once."""
    from raidstudy.models.its.covariance import nw_auto_lags

    K = S.shape[0]
    G = int(grp.max()) + 1
    pilot = np.array([max(1, nw_auto_lags(int(v))) for v in n_t])
    f = S[:, :, 1:].sum(axis=2) if S.shape[2] > 1 else S[:, :, 0]
    Pm = int(pilot.max())
    sig = np.zeros((K, Pm + 1))
    for g in range(G):
        F = f[:, grp == g]
        sig[:, 0] += np.sum(F * F, axis=1)
        for j in range(1, Pm + 1):
            sig[:, j] += np.sum(F[:, j:] * F[:, :-j], axis=1)
    sig /= np.maximum(n_t, 1)[:, None]
    jj = np.arange(Pm + 1)
    use = (jj[None, :] >= 1) & (jj[None, :] <= pilot[:, None])
    s0 = sig[:, 0] + 2.0 * np.sum(np.where(use, sig, 0.0), axis=1)
    s1 = 2.0 * np.sum(np.where(use, jj[None, :] * sig, 0.0), axis=1)
    out = np.empty(K, dtype=int)
    for k in range(K):
        nt = int(n_t[k])
        max_lags = max(1, min(nt - p - 1, nt // 4))
        if not np.isfinite(s0[k]) or s0[k] <= 0:
            out[k] = min(int(pilot[k]), max_lags)
            continue
        bw = 1.1447 * (s1[k] / s0[k]) ** (2.0 / 3.0) * nt ** (1.0 / 3.0) if s1[k] > 0 else 0.0
        out[k] = int(max(1, min(max(math.floor(bw), nw_auto_lags(nt)), max_lags)))
    return out
