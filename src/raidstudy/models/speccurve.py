r"""Specification curve: the headline estimates under every reasonable combination of choices.

:func:`specification_curve` takes a validated study (:class:`~raidstudy.study.parameters.StudySpec`)
and a **grid**, a mapping of choice name -> list of values, where every name is a study
parameter (``pre_periods``, ``post_periods``, ``transition_periods``, ``model_family``,
``dow``, ``fourier``, ``holidays``, ``slope``, ``cov_type``, ``ewc_terms``, ``hac_lags``,
``small_sample``, ``feeds``, ``families``, ``control_feeds``, ``control_series``; see
:data:`CHOICES`). Every combination of the grid's values, on top of the study's own
parameters, is one specification; each is estimated exactly as
``validate_parameters({**spec.parameters, **choices}).fit()`` would estimate it, and
reported with

* the **level change** at the event (``level_*``; the ``itsa``-comparable coefficient,
  ``treated_level`` in a comparative model): percent change ``100 (exp(b) - 1)`` for count
  families; for the gaussian family the coefficient as a percentage of the counterfactual
  mean in the event period (so that every family is on one scale), with the coefficient
  itself in ``level_coef``;
* the **relative effect over the post window** (``relative_*``; observed over
  counterfactual minus one, in percent, as :meth:`ITSResults.effects` ``["relative"]``),

each with its confidence interval (the specification's own covariance and critical value)
and p-value, the number of fitted periods, and a ``note``. A specification the data cannot
support (a window too short for its seasonality, too many HAC lags, a fit that fails) keeps
its row with missing estimates and the reason in ``note``; it is never dropped. Warnings
(a window cut by the end of the data, Fourier terms with under two years) are kept in
``note`` too, prefixed ``caution:``.

Speed. The specifications are grouped by what they share: the indicator is loaded once per
data definition (``feeds``, ``families``, ``control_feeds``, ``control_series``; loaded
indicators come from the processed tables read once per process), the design matrix once per window and seasonality,
the family's fit once per design (shared by every inference method), and the EWC reference
distribution's chi-square draws once per number of cosine terms. The fixed-b critical
values of all specifications are then found together, by one batched Newton iteration
over every contrast. ``benchmarks/bench_speccurve.py`` measures it against a loop of
``validate_parameters(...).fit()``.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from raidstudy.errors import ParameterError, RaidstudyError
from raidstudy.io import json_number
from raidstudy.models.its.vocabulary import EWC_TERMS

__all__ = ["CHOICES", "QUANTITIES", "SpecificationCurve", "default_grid", "specification_curve"]

#: The choice names a grid may use (each a study parameter of the same name).
CHOICES = ("pre_periods", "post_periods", "transition_periods", "model_family", "slope", "dow", "fourier",
           "holidays", "cov_type", "ewc_terms", "hac_lags", "small_sample", "feeds", "families",
           "control_feeds", "control_series")
#: Choices that define the data (the indicator and its control), loaded once per combination.
DATA_CHOICES = ("feeds", "families", "control_feeds", "control_series")
#: The headline quantities of every specification.
QUANTITIES = ("relative", "level")
RESULT_COLUMNS = ["term", "level_coef", "level_coef_ci_low", "level_coef_ci_high",
                  "level_estimate", "level_ci_low", "level_ci_high", "level_p_value",
                  "relative_estimate", "relative_ci_low", "relative_ci_high", "relative_p_value",
                  "nobs", "note"]


# =========================================================================== results
@dataclasses.dataclass
class SpecificationCurve:
    """Headline estimates of every specification of a grid.

    Built by :func:`specification_curve` (or from any table with the same columns).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per specification, in grid order: a column per choice (the grid's names),
        then ``term``, ``level_coef`` (with ``_ci_low`` / ``_ci_high``: the coefficient on
        the model's own scale), ``level_estimate``, ``level_ci_low``, ``level_ci_high``,
        ``level_p_value`` (percent), ``relative_estimate``, ``relative_ci_low``,
        ``relative_ci_high``, ``relative_p_value`` (percent), ``nobs`` and ``note``.
        A specification that could not be estimated has NaN estimates and the reason in
        ``note``.
    choices : list of str
        The grid's choice names, in grid order.
    grid : dict
        Choice name -> list of values.
    alpha : float
        1 - confidence level of every interval.
    base : dict
        The study's own value of each choice (the study's specification).
    """

    table: pd.DataFrame
    choices: list[str]
    grid: dict[str, list[Any]]
    alpha: float = 0.05
    base: dict[str, Any] = dataclasses.field(default_factory=dict)

    # ------------------------------------------------------------------ statistics
    def _check(self, quantity: str) -> None:
        if quantity not in QUANTITIES:
            raise ParameterError("quantity", quantity, "is not a headline quantity of the curve", accepted=QUANTITIES)

    def estimated(self, quantity: str = "relative") -> pd.DataFrame:
        """Rows whose ``quantity`` has an estimate and a finite interval."""
        self._check(quantity)
        t = self.table
        cols = [f"{quantity}_estimate", f"{quantity}_ci_low", f"{quantity}_ci_high"]
        ok = np.isfinite(t[cols].to_numpy(dtype=float)).all(axis=1)
        return t[ok]

    @property
    def n_specifications(self) -> int:
        """Number of specifications (rows), estimated or not."""
        return len(self.table)

    def n_estimated(self, quantity: str = "relative") -> int:
        """Number of specifications with an estimate of ``quantity``."""
        return len(self.estimated(quantity))

    def share_excluding_zero(self, quantity: str = "relative") -> float:
        """Share of the estimated specifications whose interval for ``quantity`` excludes zero."""
        e = self.estimated(quantity)
        if not len(e):
            return float("nan")
        lo, hi = e[f"{quantity}_ci_low"].to_numpy(float), e[f"{quantity}_ci_high"].to_numpy(float)
        return float(np.mean((lo > 0) | (hi < 0)))

    def share_significant_negative(self, quantity: str = "relative") -> float:
        """Share of the estimated specifications whose interval lies wholly below zero."""
        e = self.estimated(quantity)
        if not len(e):
            return float("nan")
        return float(np.mean(e[f"{quantity}_ci_high"].to_numpy(float) < 0))

    def median(self, quantity: str = "relative") -> float:
        """Median estimate of ``quantity`` (percent) over the estimated specifications."""
        v = self.estimated(quantity)[f"{quantity}_estimate"].to_numpy(float)
        return float(np.median(v)) if len(v) else float("nan")

    def range(self, quantity: str = "relative") -> tuple[float, float]:
        """Smallest and largest estimate of ``quantity`` (percent)."""
        v = self.estimated(quantity)[f"{quantity}_estimate"].to_numpy(float)
        return (float(v.min()), float(v.max())) if len(v) else (float("nan"), float("nan"))

    def statistics(self, quantity: str = "relative") -> dict[str, Any]:
        """The curve's summary statistics for one quantity, as a dict."""
        lo, hi = self.range(quantity)
        e = self.estimated(quantity)
        return {"n_specifications": self.n_specifications, "n_estimated": len(e),
                "n_not_estimated": self.n_specifications - len(e),
                "share_excluding_zero": _num(self.share_excluding_zero(quantity)),
                "share_significant_negative": _num(self.share_significant_negative(quantity)),
                "median": _num(self.median(quantity)), "min": _num(lo), "max": _num(hi),
                "quartiles": ([_num(x) for x in np.quantile(e[f"{quantity}_estimate"].to_numpy(float),
                                                             [0.25, 0.75])] if len(e) else [None, None])}

    def by_choice(self, quantity: str = "relative") -> pd.DataFrame:
        """For every choice value: specifications estimated, median estimate, share excluding zero.

        Read it as the marginal influence of each choice: a value whose median sits far from
        the others moves the answer.
        """
        e = self.estimated(quantity)
        rows = []
        for c in self.choices:
            for v in self.grid[c]:
                sub = e[e[c] == v]
                lo, hi = sub[f"{quantity}_ci_low"].to_numpy(float), sub[f"{quantity}_ci_high"].to_numpy(float)
                rows.append({"choice": c, "value": "(none)" if v == "" else str(v), "estimated": len(sub),
                             "median": float(np.median(sub[f"{quantity}_estimate"])) if len(sub) else np.nan,
                             "share_ci_excludes_zero": float(np.mean((lo > 0) | (hi < 0))) if len(sub) else np.nan,
                             "study": bool(self.base.get(c) == v)})
        return pd.DataFrame(rows, columns=["choice", "value", "estimated", "median", "share_ci_excludes_zero",
                                           "study"])

    def summary(self) -> pd.DataFrame:
        """One row per quantity: specifications, share whose interval excludes zero, median, range."""
        rows = []
        for q in QUANTITIES:
            s = self.statistics(q)
            rows.append({"quantity": {"relative": "relative effect over the post window (%)",
                                      "level": "level change at the event (%)"}[q],
                         "specifications": s["n_specifications"], "estimated": s["n_estimated"],
                         "share_ci_excludes_zero": s["share_excluding_zero"],
                         "share_ci_below_zero": s["share_significant_negative"],
                         "median": s["median"], "min": s["min"], "max": s["max"]})
        return pd.DataFrame(rows).set_index("quantity")

    def sentence(self, quantity: str = "relative") -> str:
        """One plain-language sentence about ``quantity`` across the curve."""
        s = self.statistics(quantity)
        what = {"relative": "the relative effect over the post window",
                "level": "the level change at the event"}[quantity]
        if not s["n_estimated"]:
            return f"None of the {s['n_specifications']} specifications could be estimated."
        text = (f"Across {s['n_estimated']} specifications, {what} has a median of {s['median']:+.1f}% "
                f"(from {s['min']:+.1f}% to {s['max']:+.1f}%); "
                f"{100 * s['share_excluding_zero']:.0f}% of the {100 * (1 - self.alpha):g}% intervals exclude zero "
                f"({100 * s['share_significant_negative']:.0f}% lie wholly below it).")
        if s["n_not_estimated"]:
            text += f" {s['n_not_estimated']} specification(s) could not be estimated (see the note column)."
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly and deterministic: grid, statistics by quantity and every row (NaN as None)."""
        rows = []
        for r in self.table.to_dict(orient="records"):
            rows.append({k: (v if isinstance(v, str) else _num(v)) for k, v in r.items()})
        return {
            "method": ("specification curve: every combination of the grid's choices on top of the study's "
                       "parameters, each estimated as the study would be (its own covariance and critical "
                       "values); percent effects"),
            "alpha": self.alpha,
            "choices": list(self.choices),
            "grid": {k: [_num(v) if not isinstance(v, str) else v for v in vals] for k, vals in self.grid.items()},
            "base": {k: (_num(v) if not isinstance(v, str) else v) for k, v in self.base.items()},
            "n_specifications": self.n_specifications,
            "statistics": {q: self.statistics(q) for q in QUANTITIES},
            "rows": rows,
        }


_num = json_number


# =========================================================================== the grid
def default_grid(spec) -> dict[str, list[Any]]:
    """A default grid around a study: the choices a researcher could defensibly make.

    Pre-period half, equal to and twice the study's; post-period half and equal; no
    transition period or the study's (one if it has none); the negative binomial,
    quasi-Poisson and gaussian families; with and without a change of trend after the
    event; no annual Fourier terms or two pairs; for daily data without holiday terms or
    with one for the Christmas-to-New-Year days (day-of-week terms are kept: leaving them out
    of a series with a strong weekly pattern is no defensible choice); EWC and Newey-West
    HAC inference; and, for
    the bundled data, no control or the P2P feed ``xrelp2p`` as control (when it is
    available and not in the outcome), and the section families (all, or without ``xxx`` and
    ``other``). So it contains every variant of the study's sensitivity table but the extra
    covariance settings. Choices the study cannot vary (the control or the families of a
    CSV series) are left out. For the SPARKS study this is
    3 x 2 x 2 x 3 x 2 x 2 x 2 x 2 x 2 x 2 = 2,304 specifications.
    """
    p = spec.parameters
    pre, post, tr = p["pre_periods"], p["post_periods"], p["transition_periods"]
    from raidstudy.study.parameters import MIN_PRE_PERIODS

    grid: dict[str, list[Any]] = {
        "pre_periods": _uniq([max(MIN_PRE_PERIODS, pre // 2), pre, 2 * pre]),
        "post_periods": _uniq([max(tr + 1, post // 2), post]),
        "transition_periods": _uniq([0, tr if tr else 1]),
        "model_family": ["negbin", "quasipoisson", "gaussian"],
        "slope": [True, False],
        "fourier": _uniq([0, 2]),
        "cov_type": ["ewc", "hac"],
    }
    if spec.freq == "D" and not p["holidays"]:
        grid["holidays"] = ["", _year_end_holidays(spec)]
    if not p["series_csv"]:
        feeds = [f.strip() for f in p["feeds"].split(",")]
        try:
            from raidstudy.data import indicators
            from raidstudy.paths import repo_root

            data_dir = repo_root() / p["data_dir"] if not str(p["data_dir"]).startswith("/") else p["data_dir"]
            avail = indicators.available_feeds(data_dir)
        except (OSError, RaidstudyError):  # pragma: no cover - the spec validated, so the folder exists
            avail = []
        if "xrelp2p" in avail and "xrelp2p" not in feeds and p["feeds"].lower() != "all":
            grid["control_feeds"] = _uniq([p["control_feeds"], "", "xrelp2p"])
        if p["families"].lower() == "all":
            # the indicator without the sections least like the rest of the Scene (adult
            # releases and the unclassified remainder); other feed sets are not defensible
            # indicators while a title counts for the first feed that logged it (issue 13)
            grid["families"] = ["all", "tv,movies,music,games,apps,books"]
    elif p["control_series"]:
        grid["control_series"] = _uniq(["", p["control_series"]])
    return grid


def _year_end_holidays(spec) -> str:
    """The Christmas-to-New-Year days (24-26 and 31 December, 1 January) that the widest
    window of the default grid can hold, as the ``holidays`` parameter writes them."""
    p = spec.parameters
    lo = spec.event_date - pd.Timedelta(days=2 * p["pre_periods"])
    hi = spec.event_date + pd.Timedelta(days=p["post_periods"])
    days = pd.date_range(lo, hi, freq="D")
    keep = days[((days.month == 12) & days.day.isin([24, 25, 26, 31])) | ((days.month == 1) & (days.day == 1))]
    return ",".join(d.strftime("%Y-%m-%d") for d in keep)


def _uniq(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def normalize_grid(grid: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Check a grid and coerce its values to the parameters' types.

    Raises
    ------
    ParameterError
        For an empty grid, an unknown choice name (listing :data:`CHOICES`), a choice
        with no values, or a value its parameter refuses (naming the parameter and, where
        the parameter has a vocabulary, the accepted values).
    """
    from raidstudy.study.parameters import PARAMETERS, _coerce, coerce_parameters

    if not isinstance(grid, Mapping) or not grid:
        raise ParameterError("grid", grid if isinstance(grid, Mapping) else type(grid).__name__,
                             "names no choice: give a mapping of choice name -> list of values",
                             accepted=CHOICES)
    out: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if name not in CHOICES:
            raise ParameterError("grid", name, "is not a specification choice", accepted=CHOICES)
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, pd.Index)):
            values = [values]
        values = list(values)
        if not values:
            raise ParameterError(name, values, "the grid lists no value for this choice",
                                 hint="give at least one value, or leave the choice out of the grid")
        coerced = []
        for v in values:
            c = _coerce(PARAMETERS[name], v)
            try:
                # each value alone on top of the study's parameters: refuse what the parameter
                # itself refuses (unknown family or covariance, out of range), and leave
                # combinations (a transition as long as another choice's post window) to the rows
                c = coerce_parameters({**base, name: c})[name]
            except ParameterError as err:
                if err.name == name:
                    raise
            if c not in coerced:
                coerced.append(c)
        out[name] = coerced
    return out


# =========================================================================== estimation
def specification_curve(spec, grid: Mapping[str, Sequence[Any]] | None = None, *,
                        alpha: float | None = None) -> SpecificationCurve:
    """Estimate every specification of a grid around a study.

    Parameters
    ----------
    spec : StudySpec
        The validated study (:func:`raidstudy.study.parameters.validate_parameters`); its
        parameters fill every choice the grid does not vary.
    grid : mapping of str to list, optional
        Choice name (one of :data:`CHOICES`) -> values. Default: :func:`default_grid`.
    alpha : float, optional
        1 - confidence level; default: the study's ``alpha``.

    Returns
    -------
    SpecificationCurve

    Raises
    ------
    ParameterError
        For an empty grid, an unknown choice name or a value the parameter refuses (see
        :func:`normalize_grid`), including an unknown feed or family.

    Examples
    --------
    >>> from raidstudy.study.parameters import validate_parameters
    >>> spec = validate_parameters(event_id="sparks_2020")
    >>> curve = specification_curve(spec, {"post_periods": [60, 120], "cov_type": ["ewc", "hac"]})
    >>> curve.n_specifications, curve.share_excluding_zero("relative")
    (4, 1.0)
    """
    base = dict(spec.parameters)
    alpha = float(base["alpha"] if alpha is None else alpha)
    if not 0 < alpha < 0.5:
        raise ParameterError("alpha", alpha, "must lie strictly between 0 and 0.5")
    grid = normalize_grid(default_grid(spec) if grid is None else grid, base)
    names = list(grid)
    combos = [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))]

    rows: list[dict[str, Any]] = [dict(c) for c in combos]
    for r in rows:
        r.update({c: np.nan for c in RESULT_COLUMNS})
        r["term"], r["note"], r["nobs"] = "", "", 0
    jobs: list[_Job] = []
    data_specs: dict[tuple, Any] = {}
    models: dict[tuple, Any] = {}
    for i, choice in enumerate(combos):
        _prepare(i, choice, spec, base, data_specs, models, rows, jobs)
    _estimate(jobs, rows, alpha)
    table = pd.DataFrame(rows, columns=names + RESULT_COLUMNS)
    table["nobs"] = table["nobs"].astype(int)
    return SpecificationCurve(table=table, choices=names, grid=grid, alpha=alpha,
                              base={n: base[n] for n in names})


@dataclasses.dataclass
class _Job:
    row: int
    fit_key: tuple
    model: Any
    params: dict[str, Any]
    caution: list[str]


def _caught(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(x.message) for x in w]


def _prepare(i, choice, spec, base, data_specs, models, rows, jobs) -> None:
    from raidstudy.models.its import ITS
    from raidstudy.study.parameters import (
        _window,
        coerce_parameters,
        validate_parameters,
    )

    row = rows[i]
    try:
        p = coerce_parameters({**base, **choice})
    except ParameterError as err:
        row["note"] = f"not estimated: {err}"
        return
    dkey = tuple((n, p[n]) for n in DATA_CHOICES)
    if dkey not in data_specs:
        # the data definition, validated once with the study's own window; an unknown feed,
        # family or series is bad input, not a specification the data cannot support
        dparams = {**base, **{n: p[n] for n in DATA_CHOICES}}
        try:
            data_specs[dkey], _ = _caught(validate_parameters, dparams)
        except ParameterError as err:
            if err.name in DATA_CHOICES:
                raise
            data_specs[dkey] = err
    ds = data_specs[dkey]
    if isinstance(ds, Exception):
        row["note"] = f"not estimated: {ds}"
        return
    # the window depends on these parameters only (and the data): computed once per key
    wkey = ("window", dkey, *(p[n] for n in ("pre_periods", "post_periods", "period_label", "fourier", "dow",
                                             "holidays")))
    if wkey not in models:
        try:
            models[wkey] = _caught(_window, p, ds.event, ds.event_date, ds.full_outcome, ds.full_control, ds.freq)
        except RaidstudyError as err:
            models[wkey] = err
    if isinstance(models[wkey], Exception):
        row["note"] = f"not estimated: {models[wkey]}"
        return
    (outcome, control), caution = models[wkey]
    caution = list(caution)
    s = dataclasses.replace(ds, parameters=p, outcome=outcome, control=control)
    kw = s.its_kwargs()
    mkey = (dkey, str(outcome.index[0]), str(outcome.index[-1]), p["transition_periods"], p["slope"], kw["dow"],
            p["fourier"], p["holidays"], p["model_family"])
    if mkey not in models:
        try:
            models[mkey], _ = _caught(ITS, s.model_data(), event=s.event_date, **kw)
        except RaidstudyError as err:
            models[mkey] = err
    m = models[mkey]
    if isinstance(m, Exception):
        row["note"] = f"not estimated: {m}"
        return
    jobs.append(_Job(i, mkey, m, p, caution))


def _fit_state(model):
    """The family's fit of a model's design, as :meth:`ITS.fit` computes it."""
    from raidstudy.errors import ModelError
    from raidstudy.models.its.fitting import fit_model, score_weights

    d = model.design
    Xf, yf, off = d.X[d.fit], d.y[d.fit], d.log_offset[d.fit]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        state = fit_model(Xf, yf, off, model.family)
    if not np.all(np.isfinite(state.params)):
        raise ModelError("the fit did not converge to finite estimates")
    u, w, h = score_weights(yf, state.mu, model.family, state.alpha)
    return state, u, w, h


def _covariance(model, state, u, w, h, p: dict[str, Any]):
    """Covariance and inference settings of one specification, as :meth:`ITS.fit` (same checks)."""
    from raidstudy.models.its.covariance import covariance, nw_auto_lags, nw_plugin_lags

    d = model.design
    Xf = d.X[d.fit]
    n, k = Xf.shape
    n_t = int(np.sum(d.fit & d.treated_rows))
    ct, small = p["cov_type"], bool(p["small_sample"])
    if ct == "newey":
        ct, small = "hac", True
    maxlags: Any = 0
    ewc_terms = None
    if ct == "ewc":
        ewc_terms = int(p["ewc_terms"])
        if not 2 <= ewc_terms <= max(2, n_t // 2):
            raise ParameterError("ewc_terms", ewc_terms,
                                 f"must be a whole number from 2 to {max(2, n_t // 2)} for {n_t} fitted periods")
    elif ct == "hac":
        lags = p["hac_lags"]
        if lags == "auto":
            maxlags = nw_plugin_lags(Xf * u[:, None], d.tpos[d.fit], d.group[d.fit], len(model.frame.index), n_t,
                                     max_lags=max(1, min(n_t - k - 1, n_t // 4)))
        else:
            maxlags = nw_auto_lags(n_t) if lags == "rule" else int(lags)
            if maxlags >= n_t - k:
                raise ParameterError("hac_lags", lags, f"is too large for {n_t} fitted periods and {k} terms "
                                                       f"(needs fewer than {n_t - k})")
    V = covariance(Xf, u, w, h, cov_type=ct, maxlags=maxlags or 0, small_sample=small, scale=state.scale,
                   tpos=d.tpos[d.fit], group=d.group[d.fit], n_grid=len(model.frame.index), prewhite=False,
                   ewc_terms=int(ewc_terms or EWC_TERMS))
    use_t = model.family == "gaussian" or small
    return V, ct, ewc_terms, use_t, n - k


def _estimate(jobs: list[_Job], rows: list[dict[str, Any]], alpha: float) -> None:
    """Fit every job (fits shared by design and family), then all critical values at once."""
    from raidstudy.models.its.critical import FixedBReference
    from raidstudy.models.its.vocabulary import COUNT_FAMILIES

    fits: dict[tuple, Any] = {}
    refs: dict[tuple, Any] = {}
    pending = []  # (row, ref, contrasts C (2, k), tstats (2,), se (2,), centres, scale info)
    for job in jobs:
        row = rows[job.row]
        m, p = job.model, job.params
        notes = [f"caution: {c}" for c in job.caution]
        if job.fit_key not in fits:
            try:
                (fits[job.fit_key]), fw = _caught(_fit_state, m)
                if not fits[job.fit_key][0].converged:
                    fw.append(f"the {m.family} fit did not converge")
                fits[job.fit_key] = (*fits[job.fit_key], fw)
            except (RaidstudyError, np.linalg.LinAlgError) as err:
                fits[job.fit_key] = err
        f = fits[job.fit_key]
        if isinstance(f, Exception):
            row["note"] = "; ".join([f"not estimated: {f}"] + notes)
            continue
        state, u, w, h, fw = f
        notes += [f"caution: {c}" for c in fw]
        try:
            V, ct, ewc_terms, use_t, df_resid = _covariance(m, state, u, w, h, p)
        except (RaidstudyError, np.linalg.LinAlgError) as err:
            row["note"] = "; ".join([f"not estimated: {err}"] + notes)
            continue
        d = m.design
        b = state.params
        k = len(b)
        count = m.family in COUNT_FAMILIES
        jl = d.names.index(d.headline["level"])
        c_level = np.zeros(k)
        c_level[jl] = 1.0
        # the relative effect over the post window, as ITSResults.effects: one contrast
        tr = d.treated_rows
        X = d.X[tr]
        Xcf = X.copy()
        Xcf[:, d.effect_cols] = 0.0
        tpos, miss, y, off = d.tpos[tr], d.missing[tr], d.y[tr], d.log_offset[tr]
        post = (tpos >= m.event_pos) & ~miss
        Xp = Xcf[post]
        eta = Xp @ b + off[post]
        cf_hat = np.exp(eta) if count else eta
        S_obs, S_cf = float(y[post].sum()), float(cf_hat.sum())
        if count:
            c_rel = (cf_hat @ Xp) / S_cf
            centre = math.log(S_cf)
            test_value = math.log(S_obs) if S_obs > 0 else -math.inf
        else:
            c_rel = Xp.sum(axis=0)
            centre = S_cf
            test_value = S_obs
        C = np.vstack([c_level, c_rel])
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", C, V, C), 0.0))
        est = np.array([b[jl], centre])
        tvals = np.array([est[0] / se[0] if se[0] > 0 else np.nan,
                          (centre - test_value) / se[1] if se[1] > 0 and math.isfinite(test_value) else np.nan])
        # event-period counterfactual (gaussian level on the percent scale)
        ev = (tpos == m.event_pos)
        cf_event = float((Xcf[ev] @ b + off[ev])[0]) if ev.any() else float("nan")
        row.update(term=d.headline["level"], nobs=int(d.fit.sum()))
        row["note"] = "; ".join(notes)
        info = {"row": job.row, "count": count, "est": est, "se": se, "tvals": tvals, "S_obs": S_obs,
                "cf_event": cf_event, "use_t": use_t, "df": df_resid}
        if ct == "ewc":
            rkey = (job.fit_key, ewc_terms, int(p["seed"]))
            if rkey not in refs:
                refs[rkey] = FixedBReference(d.X[d.fit] * np.sqrt(w)[:, None], d.tpos[d.fit], d.group[d.fit],
                                             n_terms=ewc_terms, seed=int(p["seed"]))
            info.update(ref=refs[rkey], C=C)
        pending.append(info)
    _critical_values(pending, alpha)
    for info in pending:
        _fill(rows[info["row"]], info)


def _critical_values(pending: list[dict[str, Any]], alpha: float) -> None:
    """Critical values and p-values of every contrast; EWC ones by one batched Newton solve.

    The same equations as :meth:`FixedBReference.critical_values` and ``.pvalues`` (Newton
    from the Satterthwaite value on the design's own chi-square mixture), for all
    specifications' contrasts at once.
    """
    from raidstudy.models.its.critical import solve_critical_values, tail_probabilities

    ewc = [x for x in pending if "ref" in x]
    for x in pending:
        if "ref" in x:
            continue
        if x["use_t"]:
            x["q"] = np.full(2, stats.t.ppf(1 - alpha / 2, x["df"]))
            x["p"] = 2 * stats.t.sf(np.abs(x["tvals"]), x["df"])
        else:
            x["q"] = np.full(2, stats.norm.ppf(1 - alpha / 2))
            x["p"] = 2 * stats.norm.sf(np.abs(x["tvals"]))
    if not ewc:
        return
    rq = np.vstack([np.sqrt(x["ref"].mixtures(x["C"])) for x in ewc])  # (2E, N)
    q0 = np.concatenate([x["ref"].satterthwaite_critical_values(x["C"], alpha) for x in ewc])
    q = solve_critical_values(rq, q0, alpha)
    pv = tail_probabilities(rq, np.concatenate([x["tvals"] for x in ewc]))
    for i, x in enumerate(ewc):
        x["q"], x["p"] = q[2 * i: 2 * i + 2], pv[2 * i: 2 * i + 2]


def _fill(row: dict[str, Any], x: dict[str, Any]) -> None:
    est, se, q, p = x["est"], x["se"], x["q"], x["p"]
    b, lo, hi = est[0], est[0] - q[0] * se[0], est[0] + q[0] * se[0]
    row.update(level_coef=b, level_coef_ci_low=lo, level_coef_ci_high=hi, level_p_value=float(p[0]))
    if x["count"]:
        row.update(level_estimate=100 * math.expm1(b), level_ci_low=100 * math.expm1(lo),
                   level_ci_high=100 * math.expm1(hi))
    else:
        cf = x["cf_event"]
        ok = math.isfinite(cf) and cf > 0
        row.update(level_estimate=100 * b / cf if ok else np.nan, level_ci_low=100 * lo / cf if ok else np.nan,
                   level_ci_high=100 * hi / cf if ok else np.nan)
    centre, S_obs = est[1], x["S_obs"]
    qq, s = q[1], se[1]
    if x["count"]:
        cf_hat, cf_lo, cf_hi = math.exp(centre), math.exp(centre - qq * s), math.exp(centre + qq * s)
    else:
        cf_hat, cf_lo, cf_hi = centre, centre - qq * s, centre + qq * s
    rel = S_obs / cf_hat - 1.0
    r_lo = S_obs / cf_hi - 1.0
    r_hi = S_obs / cf_lo - 1.0 if cf_lo > 0 else math.inf
    row.update(relative_estimate=100 * rel, relative_ci_low=100 * r_lo, relative_ci_high=100 * r_hi,
               relative_p_value=float(p[1]))
