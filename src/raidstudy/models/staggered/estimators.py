"""Staggered event-study estimators: Sun-Abraham interaction-weighted, stacked with clean controls, TWFE."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.staggered._fit import fit_fe, resolve_cov_type
from raidstudy.models.staggered._panel import as_positions, plain, prepare_panel
from raidstudy.models.staggered.results import StaggeredResults

__all__ = ["TWFE", "StackedEventStudy", "SunAbraham"]


def _check_int(name: str, v: Any, lo: int | None = None) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or (lo is not None and v < lo):
        raise ParameterError(name, v, "must be a whole number" + (f" >= {lo}" if lo is not None else ""))
    return int(v)


def _check_window(window: Any) -> tuple[int, int] | None:
    if window is None:
        return None
    try:
        lo, hi = window
    except (TypeError, ValueError):
        raise ParameterError("window", window, "must be a pair (first, last) of relative periods, e.g. (-8, 12)") from None
    lo, hi = _check_int("window[0]", lo), _check_int("window[1]", hi)
    if not lo < 0 <= hi:
        raise ParameterError("window", window, "must run from a negative relative period to a period >= 0",
                             hint="e.g. (-8, 12): 8 periods before the event and 12 after it")
    return lo, hi


class _StaggeredBase:
    estimator_name = "staggered"
    log_outcome = False
    groups: tuple[str, ...] = ()
    name: str | None = None

    def _fit(self, *, cov_type: str, small_sample: bool, bandwidth: float | None) -> StaggeredResults:
        cov_type = resolve_cov_type(cov_type)
        if not isinstance(small_sample, (bool, np.bool_)):
            raise ParameterError("small_sample", small_sample, "must be True or False")
        if bandwidth is not None:
            if cov_type != "kernel":
                raise ParameterError("bandwidth", bandwidth, f"applies to cov_type='kernel' only, not {cov_type!r}")
            if not isinstance(bandwidth, (int, float, np.integer, np.floating)) or isinstance(bandwidth, bool) \
                    or not bandwidth >= 0:
                raise ParameterError("bandwidth", bandwidth, "must be a non-negative number of periods")
        d = self._design
        fit = fit_fe(d["y"], d["X"], d["names"], entity=d["entity"], time=d["time"], other=d.get("other"),
                     clusters=d["clusters"], cov_type=cov_type, small_sample=bool(small_sample), bandwidth=bandwidth,
                     weights=d.get("weights"))
        res = StaggeredResults(self, fit, coef_names=d["names"], terms=d["terms"], L=d["L"], cells=d["cells"],
                               cov_type=cov_type, small_sample=bool(small_sample), panel_report=self.panel_report,
                               extra={"term_nobs": d["term_nobs"], **self._extra()})
        tiny = res.std_errors <= 1e-9 * np.maximum(1.0, res.params.abs())
        if tiny.any():
            bad = list(res.std_errors.index[tiny])
            why = (" (Driscoll-Kraay sums the scores of each period over units: an effect identified within a "
                   "single calendar period, as with one event or one cohort per group, has a zero score sum "
                   "there)" if cov_type == "kernel" else "")
            raise ModelError(f"the {cov_type} covariance is degenerate: zero standard error for {bad[:6]}"
                             f"{' ...' if len(bad) > 6 else ''}{why}; use cov_type='clustered' or more events per group")
        return res

    def _extra(self) -> dict[str, Any]:
        return {}

    def summary_rows(self) -> list[tuple[str, str]]:
        return []

    @property
    def outcome_label(self) -> str:
        return self.outcome

    @staticmethod
    def _aggregation(cov_names: list[str], cells: pd.DataFrame, n_coef: int, ref: int,
                     att_from_cells: bool = True) -> tuple[list[str], np.ndarray, dict[str, int]]:
        """Reported terms and the matrix L (terms x coefficients) of cell-share weights."""
        terms: list[str] = list(cov_names)
        rows = [np.eye(n_coef)[i] for i in range(len(cov_names))]
        nobs: dict[str, int] = {}
        groups = [None] if cells["group"].isna().all() else sorted(cells["group"].dropna().unique())
        for g in groups:
            sub = cells if g is None else cells[cells["group"] == g]
            pre = "" if g is None else f"{g}:"
            for e in sorted(sub["rel"].unique()):
                c = sub[sub["rel"] == e]
                w = np.zeros(n_coef)
                w[c["col"].to_numpy()] = c["n_obs"].to_numpy() / c["n_obs"].sum()
                terms.append(f"{pre}rel[{int(e)}]")
                rows.append(w)
                nobs[terms[-1]] = int(c["n_obs"].sum())
            c = sub[sub["rel"] >= 0]
            if len(c):
                w = np.zeros(n_coef)
                w[c["col"].to_numpy()] = c["n_obs"].to_numpy() / c["n_obs"].sum()
                terms.append(f"{pre}ATT")
                rows.append(w)
                nobs[terms[-1]] = int(c["n_obs"].sum())
        return terms, np.vstack(rows), nobs


class SunAbraham(_StaggeredBase):
    r"""Sun and Abraham's (2021) interaction-weighted event-study estimator.

    Parameters
    ----------
    data : pandas.DataFrame
        Long panel, one row per unit and period. Absent rows and missing outcomes are
        missing cells: left out and counted in ``results.panel_report``, never zeros.
    outcome, unit, time : str
        Columns of the outcome, the unit label and the period (whole numbers such as
        years, or dates on a regular daily or weekly grid).
    cohort : str
        Column of each unit's first treated period (on the same grid as ``time``;
        constant within a unit). NaN, or a period after the last one in the data (e.g.
        fixest's 10000), marks a never-treated unit.
    covariates : str or list of str, optional
        Time-varying controls entered linearly.
    control : {"auto", "never", "last"}
        Clean comparison units: the never-treated (``never``), or the last-treated
        cohort, with every period from its treatment on dropped (``last``). ``auto``
        (default) uses the never-treated when there are any.
    ref_period : int
        Omitted relative period (default -1, the period before treatment).
    window : (int, int), optional
        Keep only treated observations whose relative period lies in this range
        (trimming; the others are dropped and counted). Default: all relative periods,
        as fixest's ``sunab``.
    freq : str, optional
        Grid step for dated periods (``"D"``, ``"W"``); default: inferred as the smallest gap.
    log_outcome : bool
        Only labels effects as log points (``att()`` then adds percentage changes).
    name : str, optional

    Notes
    -----
    With cohorts :math:`c` (first treated period :math:`E_i`), relative period
    :math:`e = t - c`, unit and period effects :math:`\alpha_i, \lambda_t` and
    covariates :math:`x_{it}`, the estimating regression on the never-treated (or
    last-treated) comparison units and the treated cohorts :math:`c \in \mathcal C` is

    .. math::

        y_{it} = \alpha_i + \lambda_t + x_{it}'\gamma
                 + \sum_{c \in \mathcal C} \sum_{e \ne -1} \delta_{c,e}\,
                   1[E_i = c]\,1[t - E_i = e] + \varepsilon_{it}.

    Each :math:`\delta_{c,e}` is the cohort-specific average effect CATT(c, e). The
    interaction-weighted effect at relative period :math:`e` is
    :math:`\hat\beta_e = \sum_c \hat w_{c,e} \hat\delta_{c,e}` with
    :math:`\hat w_{c,e} = n_{c,e} / \sum_{c'} n_{c',e}`, the cohort's share of the
    observations in that relative period, and the aggregate effect is
    :math:`\widehat{ATT} = \sum_{c, e \ge 0} n_{c,e}\hat\delta_{c,e} / \sum_{c, e\ge0} n_{c,e}`.
    Their variances are :math:`w'\hat V w` with the shares taken as fixed, as
    fixest's ``aggregate(..., "att")`` and ``summary(agg = "att")`` do. Unlike the
    TWFE event study, no estimate mixes in another cohort's effects from other
    relative periods, so the path is unbiased under staggered timing and effects
    that differ by cohort (under parallel trends and no anticipation).

    Examples
    --------
    >>> from raidstudy.models.staggered import SunAbraham, simulate_staggered
    >>> panel = simulate_staggered(n_units=60, n_periods=12, seed=1)
    >>> res = SunAbraham(panel, outcome="y", unit="unit", time="period", cohort="cohort").fit()
    >>> bool(abs(res.params["ATT"] - panel.attrs["true_att"]) < 3 * res.std_errors["ATT"])
    True
    """

    estimator_name = "Sun-Abraham interaction-weighted"

    def _cohort_panel(self, data: pd.DataFrame, *, outcome: str, unit: str, time: str, cohort: str,
                      covariates: Any, window: Any, freq: Any, log_outcome: bool, name: str | None) -> pd.DataFrame:
        """Set the model's columns and window, build the panel and each row's cohort position
        (``cpos``: inf for a unit never treated within the panel); returns the panel's rows."""
        self.window = _check_window(window)
        self.outcome, self.unit, self.time, self.cohort = outcome, unit, time, cohort
        self.log_outcome, self.name = bool(log_outcome), name
        panel = prepare_panel(data, outcome=outcome, unit=unit, time=time, covariates=covariates,
                              extra={"cohort": cohort}, freq=freq)
        self.panel = panel
        self.covariates = panel.covariates
        df = panel.df
        df["cpos"] = as_positions(df[cohort], panel.time_kind, panel.origin, panel.step, f"cohort column {cohort!r}")
        df.loc[~np.isfinite(df["cpos"]) | (df["cpos"] > panel.report["n_periods"] - 1), "cpos"] = np.inf
        return df

    def __init__(self, data: pd.DataFrame, *, outcome: str, unit: str, time: str, cohort: str,
                 covariates: Sequence[str] | str | None = None, control: str = "auto", ref_period: int = -1,
                 window: tuple[int, int] | None = None, freq: Any = None, log_outcome: bool = False,
                 name: str | None = None):
        if control not in ("auto", "never", "last"):
            raise ParameterError("control", control, "is not a comparison group", accepted=["auto", "never", "last"])
        self.ref_period = _check_int("ref_period", ref_period)
        if self.ref_period >= 0:
            raise ParameterError("ref_period", ref_period, "must be a pre-treatment period (negative)",
                                 hint="-1, the period before treatment, is the usual reference")
        df = self._cohort_panel(data, outcome=outcome, unit=unit, time=time, cohort=cohort, covariates=covariates,
                                window=window, freq=freq, log_outcome=log_outcome, name=name)
        panel = self.panel
        nun = df.groupby("uid")["cpos"].nunique()
        if (nun > 1).any():
            u = plain(df.loc[df["uid"] == nun[nun > 1].index[0], "unit"].iloc[0])
            raise DataError(f"unit {u!r} has more than one cohort (first treated period) in column {cohort!r}; "
                            "the cohort must be constant within a unit")
        report = dict(panel.report)
        # cohorts with no pre-period (treated from their first observed period): no counterfactual level
        first = df.groupby("uid").agg(first=("pos", "min"), c=("cpos", "first"))
        always = first[np.isfinite(first["c"]) & (first["c"] <= first["first"])]
        if len(always):
            labs = sorted({panel.label(int(c)) for c in always["c"]}, key=str)
            units = [plain(u) for u in df.loc[df["uid"].isin(always.index), "unit"].unique()[:5]]
            raise DataError(f"cohort(s) {labs} are treated from their units' first observed period (units "
                            f"{units}{' ...' if len(always) > 5 else ''}): no pre-period, so no effect can be "
                            "estimated for them; drop these units or add earlier periods")
        treated_c = sorted(c for c in df["cpos"].unique() if np.isfinite(c))
        if not treated_c:
            raise ModelError(f"no unit is ever treated (column {cohort!r} marks every unit as never treated)")
        has_never = bool(np.isinf(df["cpos"]).any())
        if control == "auto":
            control = "never" if has_never else "last"
        self.control = control
        dropped: dict[str, int] = {}
        if control == "never":
            if not has_never:
                raise ModelError(f"no never-treated unit (every unit has a cohort in {cohort!r}), so there is no "
                                 "clean control; use control='last' (the last-treated cohort, before its treatment)")
            ctrl_mask = np.isinf(df["cpos"].to_numpy())
            self.control_cohort = None
        else:
            last = treated_c[-1]
            if len(treated_c) < 2 and not has_never:
                raise ModelError(f"only one treated cohort ({panel.label(int(last))}) and no never-treated unit: no "
                                 "clean control in any period; add untreated units")
            keep = df["pos"].to_numpy() < last
            dropped["observations from the last cohort's treatment period on"] = int((~keep).sum())
            df = df[keep].copy()
            ctrl_mask = (df["cpos"].to_numpy() == last) | np.isinf(df["cpos"].to_numpy())
            self.control_cohort = panel.label(int(last))
            treated_c = treated_c[:-1]
        df["ctrl"] = ctrl_mask
        df["rel"] = np.where(df["ctrl"], np.nan, df["pos"] - df["cpos"])
        if self.window is not None:
            lo, hi = self.window
            out = (~df["ctrl"]) & ((df["rel"] < lo) | (df["rel"] > hi))
            dropped["treated observations outside the window"] = int(out.sum())
            df = df[~out].copy()
        # every period needs a clean control observation
        per_ctrl = df.groupby("pos")["ctrl"].any()
        if not per_ctrl.all():
            bad = [panel.label(int(p)) for p in per_ctrl.index[~per_ctrl]]
            raise ModelError(f"no clean control unit is observed in period(s) {bad[:10]}{' ...' if len(bad) > 10 else ''}"
                             f" ({len(bad)} periods): every unit observed there is treated; drop these periods "
                             "or add never-treated units")
        # every treated cohort needs its reference period
        tr = df[~df["ctrl"]]
        for c in treated_c:
            rels = tr.loc[tr["cpos"] == c, "rel"]
            if not (rels == self.ref_period).any():
                raise DataError(f"cohort {panel.label(int(c))} has no observation in its reference period "
                                f"{self.ref_period} (period {panel.label(int(c) + self.ref_period)}); fill the gap, "
                                "choose another ref_period or drop the cohort's units")
        report["dropped"] = dropped
        report["n_obs_used"] = len(df)
        report["n_treated_units"] = int(tr["uid"].nunique())
        report["n_control_units"] = int(df.loc[df["ctrl"], "uid"].nunique())
        report["cohorts"] = [panel.label(int(c)) for c in treated_c]
        report["control"] = "never treated" if control == "never" else f"last-treated cohort {self.control_cohort}"
        self.panel_report = report
        self._design = self._build(df, treated_c)

    def _build(self, df: pd.DataFrame, treated_c: list) -> dict[str, Any]:
        tr = df[~df["ctrl"] & (df["rel"] != self.ref_period)]
        cells = (tr.groupby(["cpos", "rel"]).size().rename("n_obs").reset_index()
                 .sort_values(["rel", "cpos"]).reset_index(drop=True))
        p0 = len(self.covariates)
        cells["col"] = np.arange(p0, p0 + len(cells))
        cells["cohort"] = [self.panel.label(int(c)) for c in cells["cpos"]]
        cells["rel"] = cells["rel"].astype(int)
        cells["name"] = [f"rel[{e}]:cohort[{c}]" for e, c in zip(cells["rel"], cells["cohort"])]
        cells["group"] = None
        key = pd.MultiIndex.from_arrays([df["cpos"].to_numpy(), df["rel"].to_numpy()])
        col = pd.Series(cells["col"].to_numpy(), index=pd.MultiIndex.from_arrays([cells["cpos"], cells["rel"].astype(float)]))
        hit = col.reindex(key).to_numpy()
        X = np.zeros((len(df), p0 + len(cells)))
        if p0:
            X[:, :p0] = df[self.covariates].to_numpy(dtype=float)
        rows = np.flatnonzero(np.isfinite(hit))
        X[rows, hit[rows].astype(int)] = 1.0
        names = list(self.covariates) + cells["name"].tolist()
        terms, L, term_nobs = self._aggregation(list(self.covariates), cells, X.shape[1], self.ref_period)
        cells_out = pd.concat([pd.DataFrame({"name": self.covariates, "kind": "covariate"}),
                               cells.assign(kind="cell")[["name", "kind", "cohort", "rel", "n_obs"]]], ignore_index=True)
        share = cells.groupby("rel")["n_obs"].transform(lambda s: s / s.sum())
        cells_out["weight_in_rel"] = np.r_[np.full(p0, np.nan), share.to_numpy()]
        post = cells["rel"] >= 0
        att_w = np.where(post, cells["n_obs"] / cells.loc[post, "n_obs"].sum(), 0.0)
        cells_out["weight_in_att"] = np.r_[np.full(p0, np.nan), att_w]
        return {"y": df["y"].to_numpy(dtype=float), "X": X, "names": names, "entity": df["uid"].to_numpy(),
                "time": df["pos"].to_numpy(), "clusters": df["uid"].to_numpy(), "terms": terms, "L": L,
                "cells": cells_out, "term_nobs": term_nobs}

    @property
    def fe_description(self) -> str:
        return "unit and period"

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.estimator_name, "outcome": self.outcome, "covariates": self.covariates,
                "control": self.panel_report["control"], "ref_period": self.ref_period,
                "window": list(self.window) if self.window else None, "name": self.name}

    def summary_rows(self) -> list[tuple[str, str]]:
        r = self.panel_report
        return [("Comparison units", f"{r['control']} ({r['n_control_units']} units)"),
                ("Treated cohorts", f"{len(r['cohorts'])} ({r['n_treated_units']} units)"),
                ("Aggregation", "cohort shares of each relative period's observations (fixest aggregate 'att')")]

    def fit(self, *, cov_type: str = "clustered", small_sample: bool = True,
            bandwidth: float | None = None) -> StaggeredResults:
        r"""Estimate the model.

        Parameters
        ----------
        cov_type : {"clustered", "kernel", "robust", "unadjusted"}
            ``clustered`` (default): cluster-robust by unit, as fixest's default for a
            model with unit effects. ``kernel``: Driscoll-Kraay (linearmodels'
            ``cov_type="kernel"``, Bartlett kernel), robust to correlation across units
            within a period and over nearby periods. ``robust``: heteroskedasticity-robust.
            ``unadjusted``: classical.
        small_sample : bool
            Apply fixest's default small-sample factor (see ``cov_description``):
            ``G/(G-1) (n-1)/(n-K)`` for ``clustered``, ``(n-1)/(n-K)`` otherwise.
        bandwidth : float, optional
            Kernel bandwidth in periods (``kernel`` only); default
            :math:`\lfloor 4 (T/100)^{2/9} \rfloor`.

        Returns
        -------
        StaggeredResults
        """
        return self._fit(cov_type=cov_type, small_sample=small_sample, bandwidth=bandwidth)


class TWFE(SunAbraham):
    r"""Two-way fixed effects (the conventional estimator, for comparison).

    Same data arguments as :class:`SunAbraham`; every unit enters (no clean-control
    restriction, which is the point of the comparison).

    Parameters
    ----------
    dynamic : bool
        ``False`` (default): one post-treatment indicator, whose coefficient is ``ATT``.
        ``True``: relative-period indicators pooled over cohorts (``rel[e]``) and ``ATT``
        their average over the post-period observations.

    Notes
    -----
    Static: :math:`y_{it} = \alpha_i + \lambda_t + x_{it}'\gamma + \beta D_{it} + \varepsilon_{it}`
    with :math:`D_{it} = 1[t \ge E_i]`. Under staggered timing its :math:`\beta` is a
    weighted average of cohort effects whose weights can be negative (already-treated
    units serve as controls), so it is biased when effects change over time.

    Examples
    --------
    >>> from raidstudy.models.staggered import TWFE, simulate_staggered
    >>> panel = simulate_staggered(n_units=60, n_periods=12, seed=1)
    >>> res = TWFE(panel, outcome="y", unit="unit", time="period", cohort="cohort").fit()
    >>> "ATT" in res.params.index
    True
    """

    estimator_name = "two-way fixed effects"

    def __init__(self, data: pd.DataFrame, *, outcome: str, unit: str, time: str, cohort: str,
                 covariates: Sequence[str] | str | None = None, dynamic: bool = False, ref_period: int = -1,
                 window: tuple[int, int] | None = None, freq: Any = None, log_outcome: bool = False,
                 name: str | None = None):
        self.dynamic = bool(dynamic)
        self.ref_period = _check_int("ref_period", ref_period)
        df = self._cohort_panel(data, outcome=outcome, unit=unit, time=time, cohort=cohort, covariates=covariates,
                                window=window, freq=freq, log_outcome=log_outcome, name=name)
        panel = self.panel
        df["ctrl"] = np.isinf(df["cpos"])
        df["rel"] = np.where(df["ctrl"], np.nan, df["pos"] - df["cpos"])
        if not (~df["ctrl"]).any():
            raise ModelError(f"no unit is ever treated (column {cohort!r} marks every unit as never treated)")
        if self.window is not None:
            lo, hi = self.window
            df = df[df["ctrl"] | ((df["rel"] >= lo) & (df["rel"] <= hi))].copy()
        self.control, self.control_cohort = "none", None
        report = dict(panel.report)
        report.update(n_obs_used=len(df), n_treated_units=int(df.loc[~df["ctrl"], "uid"].nunique()),
                      n_control_units=int(df.loc[df["ctrl"], "uid"].nunique()), control="all units (TWFE)",
                      cohorts=[panel.label(int(c)) for c in sorted(df.loc[~df["ctrl"], "cpos"].unique())], dropped={})
        self.panel_report = report
        if self.dynamic:
            self._design = self._build_dynamic(df)
        else:
            D = ((~df["ctrl"]) & (df["rel"] >= 0)).to_numpy(dtype=float)
            p0 = len(self.covariates)
            X = np.column_stack([df[self.covariates].to_numpy(dtype=float), D]) if p0 else D[:, None]
            names = list(self.covariates) + ["ATT"]
            cells = pd.DataFrame({"name": names, "kind": ["covariate"] * p0 + ["post indicator"]})
            self._design = {"y": df["y"].to_numpy(dtype=float), "X": X, "names": names,
                            "entity": df["uid"].to_numpy(), "time": df["pos"].to_numpy(),
                            "clusters": df["uid"].to_numpy(), "terms": names, "L": np.eye(len(names)),
                            "cells": cells, "term_nobs": {"ATT": int(D.sum())}}

    def _build_dynamic(self, df: pd.DataFrame) -> dict[str, Any]:
        tr = df[~df["ctrl"] & (df["rel"] != self.ref_period)]
        cells = tr.groupby("rel").size().rename("n_obs").reset_index()
        p0 = len(self.covariates)
        cells["col"] = np.arange(p0, p0 + len(cells))
        cells["rel"] = cells["rel"].astype(int)
        cells["name"] = [f"rel[{e}]" for e in cells["rel"]]
        cells["group"] = None
        col = pd.Series(cells["col"].to_numpy(), index=cells["rel"].astype(float))
        hit = col.reindex(df["rel"].to_numpy()).to_numpy()
        X = np.zeros((len(df), p0 + len(cells)))
        if p0:
            X[:, :p0] = df[self.covariates].to_numpy(dtype=float)
        rows = np.flatnonzero(np.isfinite(hit))
        X[rows, hit[rows].astype(int)] = 1.0
        names = list(self.covariates) + cells["name"].tolist()
        terms, L, term_nobs = self._aggregation(list(self.covariates), cells, X.shape[1], self.ref_period)
        cells_out = pd.concat([pd.DataFrame({"name": self.covariates, "kind": "covariate"}),
                               cells.assign(kind="relative period")[["name", "kind", "rel", "n_obs"]]],
                              ignore_index=True)
        return {"y": df["y"].to_numpy(dtype=float), "X": X, "names": names, "entity": df["uid"].to_numpy(),
                "time": df["pos"].to_numpy(), "clusters": df["uid"].to_numpy(), "terms": terms, "L": L,
                "cells": cells_out, "term_nobs": term_nobs}

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.estimator_name, "outcome": self.outcome, "covariates": self.covariates,
                "dynamic": self.dynamic, "ref_period": self.ref_period, "name": self.name}

    def summary_rows(self) -> list[tuple[str, str]]:
        return [("Specification", "relative-period indicators pooled over cohorts" if self.dynamic
                 else "one post-treatment indicator (static)")]


class StackedEventStudy(_StaggeredBase):
    r"""Stacked event study with clean controls (Cengiz, Dube, Lindner and Zipperer 2019).

    Each event gets its own sub-panel: its treated units and its *clean* controls (units
    that no treatment reaches before the window's end, or within ``washout`` periods
    before it), over the periods from
    ``pre`` before to ``post`` after the event. The sub-panels are stacked and one
    regression with unit-by-event and period-by-event effects is fitted.

    Parameters
    ----------
    data : pandas.DataFrame
        Long calendar panel, one row per unit and period (missing cells allowed and reported).
    outcome, unit, time : str
        Columns of the outcome, unit label and period.
    events : pandas.DataFrame
        One row per event: ``event`` (id), ``time`` (the event period, on the grid of
        ``time``) and ``units`` (a list of the units it treats; an empty list is allowed only
        with ``placebo_units``), plus optionally the column named by ``group``.
    pre, post : int
        Periods before and after the event in each window (relative periods ``-pre`` to
        ``post``).
    group : str, optional
        Column of ``events`` by which the path and the aggregate effect are reported
        separately (e.g. the target type); terms ``<group>:rel[e]`` and ``<group>:ATT``.
    covariates : str or list of str, optional
    ref_period : int
        Omitted relative period (default -1).
    overlap : {"report", "drop", "error"}
        A treated unit that another event of the list also treats inside this event's
        window: keep it and list the overlap in ``results.extra["events"]`` (``report``,
        default), drop it from this event's stack (``drop``) or raise (``error``).
    washout : int, optional
        How long a treatment keeps a unit from being a clean control. ``None`` (default):
        treatment is absorbing, so a unit treated at any time up to the window's end is
        never a control (staggered adoption). An integer ``w``: only treatments from ``w``
        periods before the window's start to its end count (one-off events such as raids,
        whose effects are assumed to have faded after ``w`` periods).
    min_controls : int
        Fewest clean controls an event needs (default 1).
    weighting : {"corrective", "none"}
        ``corrective`` (default): weight each stack's controls by
        :math:`(N^T_k/N^T)/(N^C_k/N^C)` (Wing, Freedman and Hollingsworth 2024), so that
        ``rel[e]`` averages the events' effects by their shares of treated units. ``none``:
        the unweighted stacked regression, whose coefficients weight events by the
        variance of their treatment indicator (their treated share times control share).
    treatments : pandas.DataFrame, optional
        The treatments that decide which units are clean (columns ``time``, ``units``,
        optionally ``event``): a unit treated by one of them inside an event's window is
        never a control for that event, and a treated unit is an overlap. Default: the
        events themselves. Give it when ``events`` holds placebo events (whose units are
        not really treated) or leaves out real events that still make units unclean.
    freq : str, optional
    log_outcome : bool
    name : str, optional

    Notes
    -----
    For event :math:`k` at period :math:`\tau_k`, unit :math:`i` in its stack
    (treated :math:`T_{ik} = 1` or clean control) and period :math:`t` with
    :math:`e = t - \tau_k \in [-pre, post]`,

    .. math::

        y_{itk} = \alpha_{ik} + \lambda_{tk} + x_{it}'\gamma
                  + \sum_{e \ne -1} \beta_e T_{ik} 1[t - \tau_k = e] + \varepsilon_{itk},

    fitted by weighted least squares with the corrective weights (``weighting``) and
    standard errors clustered by the original unit (a unit appears in several stacks).
    ``ATT`` is the average of the post-period :math:`\hat\beta_e` weighted by their
    treated observations. Because each comparison uses only units untreated inside the
    window, no already-treated unit serves as a control.

    Examples
    --------
    >>> import pandas as pd
    >>> from raidstudy.models.staggered import StackedEventStudy, simulate_staggered
    >>> panel = simulate_staggered(n_units=60, n_periods=12, seed=1)
    >>> first = panel[panel["cohort"] < 100].groupby("cohort")["unit"].unique()
    >>> events = pd.DataFrame({"event": [f"c{c}" for c in first.index], "time": first.index,
    ...                        "units": [list(u) for u in first]})
    >>> res = StackedEventStudy(panel, outcome="y", unit="unit", time="period", events=events,
    ...                         pre=2, post=2).fit()
    >>> sorted(res.event_study()["rel"])
    [-2, -1, 0, 1, 2]
    """

    estimator_name = "stacked event study with clean controls"

    def __init__(self, data: pd.DataFrame, *, outcome: str, unit: str, time: str, events: pd.DataFrame,
                 pre: int, post: int, group: str | None = None, covariates: Sequence[str] | str | None = None,
                 ref_period: int = -1, overlap: str = "report", min_controls: int = 1,
                 treatments: pd.DataFrame | None = None, washout: int | None = None, weighting: str = "corrective",
                 freq: Any = None, log_outcome: bool = False,
                 name: str | None = None):
        self.pre, self.post = _check_int("pre", pre, 1), _check_int("post", post, 0)
        self.ref_period = _check_int("ref_period", ref_period)
        if not -self.pre <= self.ref_period < 0:
            raise ParameterError("ref_period", ref_period, f"must lie in the pre-window [-{self.pre}, -1]")
        if overlap not in ("report", "drop", "error"):
            raise ParameterError("overlap", overlap, "is not a policy", accepted=["report", "drop", "error"])
        self.min_controls = _check_int("min_controls", min_controls, 1)
        self.overlap = overlap
        self.washout = None if washout is None else _check_int("washout", washout, 0)
        if weighting not in ("corrective", "none"):
            raise ParameterError("weighting", weighting, "is not a stack weighting", accepted=["corrective", "none"])
        self.weighting = weighting
        self.outcome, self.unit, self.time = outcome, unit, time
        self.log_outcome, self.name = bool(log_outcome), name
        if not isinstance(events, pd.DataFrame):
            raise ParameterError("events", type(events).__name__, "must be a DataFrame with columns event, time, units")
        for c in ("event", "time", "units") + ((group,) if group else ()):
            if c not in events.columns:
                raise ParameterError("events", c, "is a required column that events lacks",
                                     accepted=list(map(str, events.columns)))
        if events.empty:
            raise ParameterError("events", "empty", "holds no event")
        if events["event"].duplicated().any():
            raise ParameterError("events", events.loc[events["event"].duplicated(), "event"].iloc[0],
                                 "is a duplicate event id")
        panel = prepare_panel(data, outcome=outcome, unit=unit, time=time, covariates=covariates, freq=freq)
        self.panel = panel
        self.covariates = panel.covariates
        df = panel.df
        n_per = panel.report["n_periods"]
        known = set(df["unit"].unique())
        ev = events.copy().reset_index(drop=True)
        ev["tau"] = as_positions(ev["time"], panel.time_kind, panel.origin, panel.step, "events['time']")
        if not np.all(np.isfinite(ev["tau"])):
            bad = ev.loc[~np.isfinite(ev["tau"]), "event"].iloc[0]
            raise DataError(f"event {bad!r} has no period (events['time'] is missing)")
        ev["units"] = [list(u) if u is not None else [] for u in ev["units"]]
        for _, r in ev.iterrows():
            unknown = [u for u in r["units"] if u not in known]
            if unknown:
                raise ParameterError("events", r["event"], f"lists units not in the panel: {unknown[:5]}",
                                     accepted=sorted(map(str, known))[:40])
            if not r["units"]:
                raise ParameterError("events", r["event"], "treats no unit (empty 'units')",
                                     hint="give the units it treats, or leave the event out")
        self.group = group
        self.groups = sorted(map(str, ev[group].unique())) if group else []
        # edges: each window must lie inside the data
        for _, r in ev.iterrows():
            tau = int(r["tau"])
            if tau - self.pre < 0 or tau + self.post > n_per - 1:
                have_pre, have_post = max(0, min(tau, n_per)), max(0, n_per - 1 - tau)
                raise DataError(f"event {r['event']!r} at period {panel.label(tau)} is too close to the edge of the "
                                f"data ({panel.label(0)} to {panel.label(n_per - 1)}): its window needs {self.pre} "
                                f"periods before and {self.post} after, the data have {have_pre} before and "
                                f"{have_post} after; shorten pre/post or drop the event")
        treat_pos: dict[Any, list[tuple[str, int]]] = {}
        if treatments is None:
            tr_src = ev[["event", "tau", "units"]]
        else:
            if not isinstance(treatments, pd.DataFrame) or not {"time", "units"} <= set(treatments.columns):
                raise ParameterError("treatments", type(treatments).__name__,
                                     "must be a DataFrame with columns time and units (and optionally event)")
            tr_src = pd.DataFrame({
                "event": treatments["event"] if "event" in treatments.columns else
                [f"treatment {i}" for i in range(len(treatments))],
                "tau": as_positions(treatments["time"], panel.time_kind, panel.origin, panel.step,
                                    "treatments['time']"),
                "units": [list(u) if u is not None else [] for u in treatments["units"]]})
        for _, r in tr_src.iterrows():
            if not np.isfinite(r["tau"]):
                continue
            for u in r["units"]:
                treat_pos.setdefault(u, []).append((r["event"], int(r["tau"])))
        stacks, info = [], []
        all_units = sorted(known, key=str)
        for k, r in ev.iterrows():
            tau = int(r["tau"])
            lo, hi = tau - self.pre, tau + self.post
            # treatments from lo_clean on make a unit unclean: all earlier ones when treatment is
            # absorbing (washout=None), else those less than `washout` periods before the window
            lo_clean = -np.inf if self.washout is None else lo - self.washout
            treated = list(r["units"])
            overl = {}
            for u in treated:
                others = [e for e, t in treat_pos.get(u, []) if e != r["event"] and lo_clean <= t <= hi]
                if others:
                    overl[str(u)] = others
            if overl and overlap == "error":
                u0, e0 = next(iter(overl.items()))
                raise DataError(f"event {r['event']!r}: treated unit {u0!r} is also treated by {e0} inside the window "
                                f"[{panel.label(lo)}, {panel.label(hi)}]; use overlap='drop' or 'report', or shorter windows")
            if overlap == "drop":
                treated = [u for u in treated if str(u) not in overl]
            controls = [u for u in all_units if u not in r["units"]
                        and not any(lo_clean <= t <= hi for _, t in treat_pos.get(u, []))]
            sub = df[(df["pos"] >= lo) & (df["pos"] <= hi)]
            sub_c = sub[sub["unit"].isin(controls)]
            n_ctrl_obs = sub_c["unit"].nunique()
            if n_ctrl_obs < self.min_controls:
                span = "up to" if self.washout is None else f"from {panel.label(int(lo_clean))} to"
                why = (f"every other unit is treated by another event {span} the window's end "
                       f"({panel.label(lo)} to {panel.label(hi)})" if not controls
                       else f"only {n_ctrl_obs} clean control(s) observed")
                raise ModelError(f"event {r['event']!r} at {panel.label(tau)} has no clean control ({why}); "
                                 "shorten the window, drop the event, or add units it does not treat")
            sub_t = sub[sub["unit"].isin(treated)]
            if sub_t.empty:
                raise ModelError(f"event {r['event']!r}: no treated unit is left in its window (overlap='drop' removed "
                                 f"{sorted(overl)} or they have no data there); drop the event or use overlap='report'")
            part = pd.concat([sub_t.assign(treated=True), sub_c.assign(treated=False)])
            part = part.assign(stack=k, rel=part["pos"] - tau, grp=str(r[group]) if group else None)
            stacks.append(part)
            cells = (len(treated) + len(controls)) * (self.pre + self.post + 1)
            info.append({"event": str(r["event"]), "period": panel.label(tau), "group": str(r[group]) if group else None,
                         "n_treated": int(sub_t["unit"].nunique()), "n_controls": int(n_ctrl_obs),
                         "n_obs": len(part), "n_missing_cells": int(cells - len(part)),
                         "overlapping_events": overl, "dropped_treated_units": sorted(overl) if overlap == "drop" else []})
        st = pd.concat(stacks, ignore_index=True)
        for g in (self.groups or [None]):
            s = st[st["treated"] & ((st["grp"] == g) if g is not None else True)]
            if not (s["rel"] == self.ref_period).any():
                raise DataError(f"{'group ' + repr(g) if g else 'the treated units'} have no observation in the "
                                f"reference period {self.ref_period}; fill the gap or choose another ref_period")
        self.events_report = info
        report = dict(panel.report)
        report.update(n_events=len(ev), n_obs_used=len(st), n_stack_missing_cells=int(sum(i["n_missing_cells"] for i in info)))
        self.panel_report = report
        self._design = self._build(st)

    def _build(self, st: pd.DataFrame) -> dict[str, Any]:
        p0 = len(self.covariates)
        tr = st[st["treated"] & (st["rel"] != self.ref_period)]
        gcol = tr["grp"].fillna("")
        cells = tr.assign(g=gcol).groupby(["g", "rel"]).size().rename("n_obs").reset_index()
        cells["col"] = np.arange(p0, p0 + len(cells))
        cells["group"] = [g if g != "" else None for g in cells["g"]]
        cells["rel"] = cells["rel"].astype(int)
        cells["name"] = [f"{g + ':' if g else ''}rel[{e}]" for g, e in zip(cells["g"], cells["rel"])]
        col = pd.Series(cells["col"].to_numpy(), index=pd.MultiIndex.from_arrays([cells["g"], cells["rel"]]))
        key = pd.MultiIndex.from_arrays([st["grp"].fillna("").to_numpy(), st["rel"].to_numpy()])
        hit = col.reindex(key).to_numpy().astype(float)
        hit[~st["treated"].to_numpy()] = np.nan
        X = np.zeros((len(st), p0 + len(cells)))
        if p0:
            X[:, :p0] = st[self.covariates].to_numpy(dtype=float)
        rows = np.flatnonzero(np.isfinite(hit))
        X[rows, hit[rows].astype(int)] = 1.0
        names = list(self.covariates) + cells["name"].tolist()
        cells_g = cells.copy()
        if not self.groups:
            cells_g["group"] = None
        terms, L, term_nobs = self._aggregation(list(self.covariates), cells_g, X.shape[1], self.ref_period)
        cells_out = pd.concat([pd.DataFrame({"name": self.covariates, "kind": "covariate"}),
                               cells.assign(kind="group x relative period")[["name", "kind", "group", "rel", "n_obs"]]],
                              ignore_index=True)
        weights = None
        if self.weighting == "corrective":
            # Wing, Freedman and Hollingsworth (2024): controls of stack k weighted by
            # (N_k^T / N^T) / (N_k^C / N^C), so that the pooled coefficients average the events'
            # effects with their shares of treated units (not the regression's variance weights)
            nu = st.groupby(["stack", "treated"])["uid"].nunique().unstack(fill_value=0)
            n_t, n_c = nu[True], nu[False]
            wc = (n_t / n_t.sum()) / (n_c / n_c.sum())
            weights = np.where(st["treated"].to_numpy(), 1.0, wc.reindex(st["stack"]).to_numpy())
        entity = st["stack"].to_numpy() * (int(st["uid"].max()) + 1) + st["uid"].to_numpy()
        other = st["stack"].to_numpy() * (int(st["pos"].max()) + 1) + st["pos"].to_numpy()
        return {"y": st["y"].to_numpy(dtype=float), "X": X, "names": names, "entity": entity,
                "time": st["pos"].to_numpy(), "other": other, "clusters": st["uid"].to_numpy(), "terms": terms,
                "L": L, "cells": cells_out, "term_nobs": term_nobs, "weights": weights}

    @property
    def fe_description(self) -> str:
        return "unit x event and period x event"

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.estimator_name, "outcome": self.outcome, "covariates": self.covariates,
                "pre": self.pre, "post": self.post, "ref_period": self.ref_period, "overlap": self.overlap,
                "washout": self.washout, "weighting": self.weighting,
                "group": self.group, "name": self.name}

    def _extra(self) -> dict[str, Any]:
        return {"events": self.events_report}

    def summary_rows(self) -> list[tuple[str, str]]:
        n_ov = sum(1 for i in self.events_report if i["overlapping_events"])
        wash = "absorbing treatment" if self.washout is None else f"washout {self.washout} periods"
        return [("Events (stacks)", (f"{len(self.events_report)}; window -{self.pre}..+{self.post} periods; "
                                    f"clean controls: {wash}; weighting: {self.weighting}")),
                ("Overlapping treated windows", f"{n_ov} event(s) (policy: {self.overlap})")]

    def fit(self, *, cov_type: str = "clustered", small_sample: bool = True,
            bandwidth: float | None = None) -> StaggeredResults:
        """Estimate the stacked regression; arguments as :meth:`SunAbraham.fit` (clusters: original units)."""
        return self._fit(cov_type=cov_type, small_sample=small_sample, bandwidth=bandwidth)
