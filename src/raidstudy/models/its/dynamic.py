r"""The dynamic path of one series: event-study bins, a step with exponential decay, the misfit test.

* :class:`EventStudy` (an :class:`~raidstudy.models.its.ITS` with other event terms): one
  indicator per period bin after the event and binned leads before it, on the same trend and
  seasonal terms as the ITS model; :meth:`EventStudy.fit` returns :class:`EventStudyResults`
  (``path()``, ``lead_test()``, ``recovery()``).
* :func:`dynamic_summary`: impact, half-life and persistent effect of a step with exponential
  decay, compared by AIC with the level-only, level+slope and bins models
  (:class:`DynamicSummary`).
* :func:`misfit_test`: do the post-event bins deviate from the level+slope line?

Every interval and test uses the covariance of the fit (by default the EWC long-run variance
with a critical value simulated for the model's own design, per contrast). See
``docs/its.md``, section "Dynamic path (event study)".
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.its.data import format_label
from raidstudy.models.its.design import Design, build_design, check_design
from raidstudy.models.its.fitting import fit_model
from raidstudy.models.its.model import ITS
from raidstudy.models.its.results import ITSResults, ITSSummary
from raidstudy.models.its.vocabulary import COUNT_FAMILIES, EWC_TERMS, NOT_ESTIMATED_BINS, ITSWarning

__all__ = [
    "DynamicSummary",
    "EventStudy",
    "EventStudyResults",
    "EventStudySummary",
    "dynamic_summary",
    "misfit_test",
]

LN2 = math.log(2.0)


# --------------------------------------------------------------------------- helpers
def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _default_width(model: ITS) -> int:
    return 7 if model.frame.freq.kind == "D" else 1


def _post_bins(n_post: int, width: int) -> list[tuple[int, int]]:
    """Bins ``(first, last)`` in periods since the event covering ``0..n_post-1``.

    Bins are ``width`` periods long; a remainder shorter than half a bin joins the last bin,
    a longer one is a bin of its own.
    """
    nb = n_post // width
    bins = [(k * width, (k + 1) * width - 1) for k in range(nb)]
    rem = n_post - nb * width
    if rem:
        if bins and rem < width / 2:
            bins[-1] = (bins[-1][0], n_post - 1)
        else:
            bins.append((nb * width, n_post - 1))
    return bins


def _clone(model: ITS, cls: type, **attrs: Any) -> ITS:
    """A model of class ``cls`` on the same data and specification as ``model`` (no refit of the data)."""
    if model.controls:
        raise ParameterError("control", model.controls, "the dynamic path models one series",
                             hint="Fit the treated series alone (no control=) for the event study")
    obj = cls.__new__(cls)
    obj.__dict__.update({k: v for k, v in model.__dict__.items() if k != "design"})
    obj.__dict__.update(attrs)
    obj.design = check_design(obj._build_design(), family=obj.family, frame=obj.frame, event_pos=obj.event_pos,
                              dow=obj.dow, fourier=obj.fourier)
    getattr(obj, "_after_design", lambda: None)()
    return obj


def _add_columns(base: Design, cols: dict[str, np.ndarray], *, after: str, drop: tuple[str, ...] = ()) -> Design:
    """Insert columns (one value per grid period) after term ``after``, dropping terms ``drop``."""
    names = [c for c in base.names if c not in drop]
    X = base.X[:, [base.names.index(c) for c in names]]
    pos = names.index(after) + 1
    new = np.column_stack([v[base.tpos] for v in cols.values()]) if cols else np.zeros((len(X), 0))
    X = np.column_stack([X[:, :pos], new, X[:, pos:]])
    names = names[:pos] + list(cols) + names[pos:]
    seasonal = [i for i, c in enumerate(names) if c.startswith(("dow_", "fourier_", "holiday"))]
    return Design(X, names, base.group, base.tpos, base.y, base.log_offset, base.fit, base.treated_rows,
                  base.missing, base.excluded, seasonal, [], dict(base.headline))


def _fit_kwargs(res: ITSResults) -> dict[str, Any]:
    """The keyword arguments that reproduce the covariance of ``res`` on another design."""
    kw: dict[str, Any] = {"cov_type": "newey" if getattr(res, "newey", False) else res.cov_type}
    if res.cov_type == "ewc":
        kw["ewc_terms"] = res.ewc_terms
        if res.reference is not None:
            kw["seed"] = int(res.reference.seed)
        return kw
    if res.small_sample and not getattr(res, "newey", False):
        kw["small_sample"] = True
    if res.cov_type == "hac":
        if res.lag_rule == "fixed":
            kw["maxlags"] = res.maxlags
        elif res.lag_rule == "rule":
            kw["maxlags"] = "rule"
        if res.prewhite:
            kw["prewhite"] = True
    kw["use_t"] = bool(res.use_t)
    return kw


def _crit(res: ITSResults, c: np.ndarray, alpha: float) -> float:
    """Critical value for contrast ``c`` with the fit's reference distribution."""
    return float(res.critical_value(c, alpha=alpha))


def _contrast(res: ITSResults, c: np.ndarray) -> dict[str, float]:
    out = res.contrast_test(c)
    return {k: float(out[k]) for k in ("estimate", "std_error", "statistic", "p_value")}


def _wald(res: ITSResults, terms: list[str]) -> dict[str, Any]:
    out = dict(res.wald_test(list(terms)))
    out["terms"] = list(terms)
    return out


# --------------------------------------------------------------------------- the model
class EventStudy(ITS):
    r"""Event-study decomposition of one series: period bins after the event, binned leads before it.

    Parameters
    ----------
    data, outcome, event, family, freq, dow, fourier, holidays, offset, exclude, name, period_label
        As for :class:`~raidstudy.models.its.ITS` (one series: no ``control``, no ``slope``).
    bin_width : int, optional
        Periods per bin. Default: 7 for daily data (weeks from the event), 1 otherwise. Post
        bins run from the event to the end of the series; a remainder shorter than half a bin
        joins the last bin.
    n_leads : int
        Number of estimated lead bins (each ``bin_width`` periods) before the event, besides
        the reference bin. ``0`` estimates no leads.
    reference : int
        The omitted lead bin, in bins relative to the event (``-1``, the default, is the bin
        just before the event). It must lie among the ``n_leads + 1`` bins before the event.

    Notes
    -----
    With bins :math:`B_k` (``k >= 0`` after the event; ``k < 0`` leads), the linear predictor is

    .. math::

        g(\mu_t) = \beta_0 + \beta_1 t + \sum_{k \ne r} \delta_k 1[t \in B_k]
                   + \sum_j \gamma_j s_{jt} + \log E_t,

    with the same trend, seasonal terms :math:`s_{jt}`, exposure and families as ITS, and
    no level or slope term. The trend and the seasonal terms are identified by the periods
    before the leads and the reference bin :math:`r`; :math:`\delta_k` is the bin's
    deviation from that line (for count families a log rate ratio). Bin ``k`` is the term
    ``bin_k``, lead bin ``-k`` the term ``lead_k``. The counterfactual sets every bin to
    zero. Transition periods (``exclude``) are left out of the fit; the bin that holds them
    is estimated from its other periods.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.its import EventStudy
    >>> idx = pd.date_range("2020-01-01", periods=140, freq="D")   # simulated
    >>> k = np.arange(140) - 98
    >>> mu = 200 * np.exp(np.where(k >= 0, -0.8 * np.exp(-k / 10), 0.0))
    >>> y = pd.Series(np.random.default_rng(0).poisson(mu), index=idx, name="simulated")
    >>> res = EventStudy(y, event=idx[98], family="poisson", n_leads=2).fit(cov_type="robust")
    >>> res.path()["bin"].tolist()
    [-3, -2, -1, 0, 1, 2, 3, 4, 5]
    >>> round(float(res.params["bin_0"]), 1)
    -0.6
    """

    def __init__(self, data: pd.DataFrame | pd.Series, *, outcome: str | None = None, event: Any,
                 family: str = "negbin", freq: str | None = None, bin_width: int | None = None,
                 n_leads: int = 4, reference: int = -1, dow: bool | None = None, fourier: int = 0,
                 holidays: Any = None, offset: str | None = None, exclude: int | list[Any] = 0,
                 name: str | None = None, period_label: str | None = None, control: Any = None):
        if control is not None:
            raise ParameterError("control", control, "the event study models one series",
                                 hint="Fit the treated series alone, or use ITS(control=...) for the comparative model")
        self._set_bin_spec(bin_width, n_leads, reference)
        super().__init__(data, outcome=outcome, event=event, family=family, freq=freq, slope=False, dow=dow,
                         fourier=fourier, holidays=holidays, offset=offset, exclude=exclude, name=name,
                         period_label=period_label)
        self._after_design()

    @classmethod
    def from_model(cls, model: ITS, *, bin_width: int | None = None, n_leads: int = 4,
                   reference: int = -1) -> EventStudy:
        """The event study on the data and specification of an existing :class:`ITS` model."""
        obj = cls.__new__(cls)
        obj._set_bin_spec(bin_width, n_leads, reference)
        return _clone(model, cls, bin_width_input=obj.bin_width_input, n_leads=obj.n_leads,
                      reference=obj.reference, slope=False)

    def _set_bin_spec(self, bin_width: Any, n_leads: Any, reference: Any) -> None:
        if bin_width is not None and (not _is_int(bin_width) or bin_width < 1):
            raise ParameterError("bin_width", bin_width, "must be an integer >= 1 (periods per bin)",
                                 hint="Use bin_width=7 for weekly bins of daily data, or None for the default")
        if not _is_int(n_leads) or n_leads < 0:
            raise ParameterError("n_leads", n_leads, "must be an integer >= 0 (lead bins before the event)")
        if not _is_int(reference) or reference >= 0 or reference < -(int(n_leads) + 1):
            raise ParameterError(
                "reference", reference,
                f"must be a lead bin inside the window of {int(n_leads) + 1 if _is_int(n_leads) else '?'} bin(s) "
                "before the event (-1 is the bin just before it)",
                hint=f"Use a reference between -{int(n_leads) + 1 if _is_int(n_leads) else 1} and -1, "
                     "or more leads (n_leads)")
        self.bin_width_input = None if bin_width is None else int(bin_width)
        self.n_leads = int(n_leads)
        self.reference = int(reference)

    def _after_design(self) -> None:
        d = self.design
        terms = {t for t in self.bins["term"] if isinstance(t, str)}
        d.effect_cols = [i for i, c in enumerate(d.names) if c in terms]
        # the first estimated post bin (bins wholly inside the transition are not estimated)
        d.headline = {"level": self.bins.loc[self.bins["kind"] == "post", "term"].iloc[0]}

    def _build_design(self) -> Design:
        w = self.bin_width_input or _default_width(self)
        self.bin_width = w
        n = len(self.frame.index)
        ev = self.event_pos
        n_post = n - ev
        unit = self.frame.freq.unit
        if w > n_post:
            raise ParameterError("bin_width", w, f"is longer than the {n_post} {unit}(s) from the event to the end "
                                                 "of the series", hint=f"Use bin_width <= {n_post}")
        n_lead_bins = self.n_leads + 1 if self.n_leads else 0
        before = ev - n_lead_bins * w
        if before < 3:
            most = max((ev - 3) // w - 1, 0)
            raise ParameterError(
                "n_leads", self.n_leads,
                f"needs {n_lead_bins} lead bin(s) of {w} {unit}(s) plus at least 3 {unit}s before them for the "
                f"trend, but the series has {ev} {unit}(s) before the event",
                hint=f"Use n_leads <= {most}, a narrower bin_width, or a longer pre-event series")
        base = build_design(self.frame, event_pos=ev, slope=False, dow=self.dow, fourier=self.fourier,
                            holidays=self.holidays, excluded_pos=self.excluded_pos, family=self.family)
        usable = ~(~np.isfinite(self.frame.y) | np.isin(np.arange(n), self.excluded_pos))
        if self.frame.offset is not None:
            usable &= np.isfinite(self.frame.offset)
        if int(usable[:before].sum()) < 3:
            raise DataError(
                f"only {int(usable[:before].sum())} usable period(s) before the lead bins; the trend needs at least 3. "
                f"Use fewer leads (n_leads={self.n_leads}) or a narrower bin_width ({w})")
        rows = []
        cols: dict[str, np.ndarray] = {}
        idx = self.frame.index
        for j in range(n_lead_bins, 0, -1):
            first, last = -j * w, -(j - 1) * w - 1
            term = None if -j == self.reference else f"lead_{j}"
            rows.append((-j, term, "reference" if term is None else "lead", first, last))
        for k, (first, last) in enumerate(_post_bins(n_post, w)):
            rows.append((k, f"bin_{k}", "post", first, last))
        recs = []
        excluded = set(int(x) for x in np.atleast_1d(self.excluded_pos))
        for k, term, kind, first, last in rows:
            sel = np.zeros(n)
            sel[ev + first: ev + last + 1] = 1.0
            n_fit = int(usable[ev + first: ev + last + 1].sum())
            if n_fit == 0 and kind == "post":
                # a bin wholly inside the transition (an event dated to the month, or roughly)
                # or wholly missing (an outage): reported, not estimated
                gone = "transition" if all(ev + i in excluded for i in range(first, last + 1)) else "no data"
                recs.append({"bin": k, "term": None, "kind": gone, "first": first, "last": last,
                             "first_date": idx[ev + first], "last_date": idx[ev + last],
                             "n_periods": last - first + 1, "n_fitted": 0})
                continue
            if n_fit == 0:
                raise DataError(
                    f"bin {k} ({format_label(idx[ev + first])} to {format_label(idx[ev + last])}) has no usable "
                    f"period (all missing or excluded), so its effect cannot be estimated. Use a wider bin_width "
                    f"(now {w}) or exclude fewer transition periods")
            if term is not None:
                cols[term] = sel
            recs.append({"bin": k, "term": term, "kind": kind, "first": first, "last": last,
                         "first_date": idx[ev + first], "last_date": idx[ev + last],
                         "n_periods": last - first + 1, "n_fitted": n_fit})
        self.bins = pd.DataFrame(recs)
        self.bins["term"] = self.bins["term"].astype(object)
        post_terms = [r["term"] for r in recs if r["kind"] == "post"]
        if not post_terms:
            raise DataError(f"no post-event bin has a usable period (the {len(excluded)} excluded transition periods "
                            f"and the missing ones cover them all); nothing after the event can be estimated. "
                            f"Use a longer post-event window")
        d = _add_columns(base, cols, after="trend", drop=("level",))
        d.headline = {"level": post_terms[0]}
        d.effect_cols = [d.names.index(c) for c in cols]
        return d

    def fit(self, **kwargs: Any) -> EventStudyResults:
        """Estimate the model; the arguments are those of :meth:`ITS.fit <raidstudy.models.its.ITS.fit>`.

        Returns
        -------
        EventStudyResults
        """
        return super().fit(**kwargs)


# --------------------------------------------------------------------------- results
class EventStudyResults(ITSResults):
    """Results of :meth:`EventStudy.fit`: an :class:`ITSResults` with the path of bin effects.

    ``effects()`` works as for ITS, with the first post bin ``bin_0`` as its ``level``
    headline; the counterfactual sets every bin (leads included) to zero.
    """

    def __repr__(self) -> str:
        return (f"<EventStudyResults {self.family} {self.model.outcome!r}, event {format_label(self.event_label)}, "
                f"{self.model.bin_width}-{self.model.frame.freq.unit} bins, nobs={self.nobs}, {self.cov_description}>")

    def path(self, alpha: float = 0.05) -> pd.DataFrame:
        """The bin effects with intervals, one row per bin (leads, reference, post bins).

        Columns: ``bin`` (bins from the event), ``term``, ``kind`` (lead / reference / post),
        ``first``/``last`` (periods from the event) and ``first_date``/``last_date``,
        ``n_periods``, ``n_fitted``, ``estimate``, ``std_error``, ``crit`` (the critical value
        of that bin with the fit's reference distribution), ``ci_low``, ``ci_high``,
        ``p_value``; for count families also ``rate_ratio``, ``pct`` and their intervals.
        The reference bin is 0 by construction (no interval).
        """
        key = ("path", alpha)
        if key in self._cache:
            return self._cache[key].copy()
        if not 0 < alpha < 1:
            raise ParameterError("alpha", alpha, "must lie strictly between 0 and 1")
        df = self.model.bins.copy()
        cols = {c: [] for c in ("estimate", "std_error", "crit", "ci_low", "ci_high", "p_value")}
        for term, kind in zip(df["term"], df["kind"]):
            if not isinstance(term, str):
                # the reference bin is 0 by construction; a transition or empty bin is not estimated
                first = np.nan if kind in NOT_ESTIMATED_BINS else 0.0
                for c, v in zip(cols, (first, np.nan, np.nan, np.nan, np.nan, np.nan)):
                    cols[c].append(v)
                continue
            c = self._contrast(term)
            t = _contrast(self, c)
            q = _crit(self, c, alpha)
            for name, v in zip(cols, (t["estimate"], t["std_error"], q, t["estimate"] - q * t["std_error"],
                                      t["estimate"] + q * t["std_error"], t["p_value"])):
                cols[name].append(v)
        for c, v in cols.items():
            df[c] = v
        if self.family in COUNT_FAMILIES:
            for src, dst in (("estimate", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high")):
                df[f"rate_ratio{dst}"] = np.exp(df[src])
                df[f"pct{dst}"] = 100 * np.expm1(df[src])
        self._cache[key] = df
        return df.copy()

    def lead_test(self) -> dict[str, Any]:
        """Joint Wald test that every lead bin is zero (pre-trend or anticipation).

        Returns ``statistic``, ``df``, ``p_value``, ``method`` and ``terms``, from the fit's
        covariance and its reference distribution.
        """
        leads = [t for t in self.model.bins.loc[self.model.bins["kind"] == "lead", "term"]]
        if not leads:
            raise ModelError("the model has no lead bins to test (n_leads=0); refit with n_leads >= 1")
        return _wald(self, leads)

    def recovery(self, share: float = 0.9, *, alpha: float = 0.05) -> dict[str, Any]:
        """The first post bin whose effect reaches ``share`` of the counterfactual, read off the path.

        For a drop (``bin_0`` below zero) a bin has recovered when its ratio to the
        counterfactual, ``exp(delta_k)`` for count families or ``1 + delta_k / cf_k`` for the
        gaussian family (``cf_k`` the deseasonalised counterfactual mean of the bin), is at
        least ``share``; for a rise, at most ``1 / share``. ``bin`` is the first such bin
        (``None`` when none is reached within the window: nothing is extrapolated).
        The interval brackets it with the bins' own ``1 - alpha`` intervals: ``ci_low`` is
        the first bin whose interval reaches the share (recovery cannot be excluded from
        there on), ``ci_high`` the first bin from which the whole interval has reached it
        (``None`` if that never happens within the window).
        """
        if not isinstance(share, (float, int)) or not 0 < share < 1:
            raise ParameterError("share", share, "must lie strictly between 0 and 1", hint="e.g. share=0.9")
        p = self.path(alpha)
        post = p[p["kind"] == "post"].reset_index(drop=True)
        count = self.family in COUNT_FAMILIES
        if count:
            r, lo, hi = (np.exp(post[c].to_numpy()) for c in ("estimate", "ci_low", "ci_high"))
        else:
            cf = self._bin_counterfactual(post)
            with np.errstate(divide="ignore", invalid="ignore"):
                r, lo, hi = (1 + post[c].to_numpy() / cf for c in ("estimate", "ci_low", "ci_high"))
        drop = bool(r[0] < 1)
        target = share if drop else 1 / share

        def first(mask: np.ndarray) -> int | None:
            hit = np.flatnonzero(mask)
            return int(hit[0]) if len(hit) else None

        if drop:
            k_hat, k_lo = first(r >= target), first(hi >= target)
            reached_all = lo >= target
        else:
            k_hat, k_lo = first(r <= target), first(lo <= target)
            reached_all = hi <= target
        k_hi = first(reached_all)
        unit = self.model.frame.freq.unit

        def rec(k: int | None) -> dict[str, Any] | None:
            if k is None:
                return None
            row = post.iloc[k]
            return {"bin": int(row["bin"]), "first": int(row["first"]), "last": int(row["last"]),
                    "first_date": row["first_date"], "last_date": row["last_date"]}

        out = {"share": float(share), "direction": "drop" if drop else "rise", "alpha": alpha,
               "reached": k_hat is not None, "bin": rec(k_hat), "ci_low": rec(k_lo), "ci_high": rec(k_hi),
               "ci_high_reached": k_hi is not None, "bin_width": int(self.model.bin_width), "unit": unit,
               "ratio_first_bin": float(r[0]), "ratio_last_bin": float(r[-1]),
               "horizon_bins": int(len(post) - 1), "horizon_last": int(post["last"].iloc[-1]),
               "method": ("first post bin whose ratio to the counterfactual reaches the share; interval from the "
                          "bins' own intervals (first bin whose interval reaches the share, first bin from which "
                          "the whole interval has); not extrapolated beyond the window")}
        if k_hat is None:
            out["message"] = (f"not reached within the window: the last bin ({int(post['first'].iloc[-1])}-"
                              f"{int(post['last'].iloc[-1])} {unit}s after the event) is at "
                              f"{100 * r[-1]:.0f}% of the counterfactual")
        else:
            out["message"] = (f"reached in bin {k_hat} ({int(post['first'].iloc[k_hat])}-"
                              f"{int(post['last'].iloc[k_hat])} {unit}s after the event)")
        return out

    def _bin_counterfactual(self, post: pd.DataFrame) -> np.ndarray:
        T = self._treated
        cf = T["Xds_cf"] @ self.params.to_numpy()
        ev = self.model.event_pos
        return np.array([cf[ev + int(a): ev + int(b) + 1].mean() for a, b in zip(post["first"], post["last"])])

    def summary(self, *, alpha: float = 0.05) -> EventStudySummary:
        """Text / HTML / LaTeX summary: the path, the lead test and recovery, naming the covariance."""
        return EventStudySummary(self, alpha=alpha)

    def to_dict(self, *, alpha: float = 0.05, recovery_share: float = 0.9, n_sim: int = 2000,
                seed: int = 0) -> dict[str, Any]:
        """The ITS ``to_dict()`` plus ``event_study``: bins, path, lead test and recovery."""
        out = super().to_dict(alpha=alpha, recovery_share=recovery_share, n_sim=n_sim, seed=seed)
        m = self.model
        out["model"].update({"kind": "event_study", "bin_width": int(m.bin_width), "n_leads": int(m.n_leads),
                             "reference": int(m.reference)})
        path = self.path(alpha)
        recs = []
        for row in path.to_dict(orient="records"):
            recs.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
        es: dict[str, Any] = {"path": recs, "recovery": self.recovery(recovery_share, alpha=alpha)}
        es["lead_test"] = self.lead_test() if m.n_leads else None
        out["event_study"] = es
        return out

    def plot_path(self, *, alpha: float = 0.05, ax=None, title: str | None = None):
        """The event-study figure; see :func:`raidstudy.report.plots.plot_event_study`."""
        from raidstudy.report import plots

        return plots.plot_event_study(results=self, alpha=alpha, ax=ax, title=title)


class EventStudySummary(ITSSummary):
    """Printable summary of :class:`EventStudyResults`."""

    def _header(self) -> list[tuple[str, str]]:
        rows = super()._header()
        m = self.results.model
        rows[0] = ("Model", f"Event study, {m.bin_width}-{m.frame.freq.unit} bins, {m.n_leads} lead(s), "
                            f"reference bin {m.reference}" + (f" - {m.name}" if m.name else ""))
        return rows

    def table(self) -> pd.DataFrame:
        p = self.results.path(self.alpha)
        lab = f"{100 * (1 - self.alpha):g}%"
        cols = {"bin": p["bin"], "periods": [f"{a}..{b}" for a, b in zip(p["first"], p["last"])],
                "coef": p["estimate"], "std err": p["std_error"], "crit": p["crit"],
                f"[{lab}": p["ci_low"], f"{lab}]": p["ci_high"], "p": p["p_value"]}
        if self.results.family in COUNT_FAMILIES:
            cols.update({"%": p["pct"], f"% [{lab}": p["pct_ci_low"], f"% {lab}]": p["pct_ci_high"]})
        return pd.DataFrame(cols).set_index("bin")

    def as_text(self) -> str:
        r = self.results
        head = self._header()
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}} : {v}" for k, v in head]
        tab = self.table().to_string(float_format=lambda x: f"{x:.4g}")
        bar = "=" * max(len(line) for line in tab.splitlines() + lines)
        extra = []
        if r.model.n_leads:
            lt = r.lead_test()
            extra.append(f"Lead test (leads jointly zero): statistic {lt['statistic']:.3g} on {lt['df']} df, "
                         f"p = {lt['p_value']:.3g} ({lt.get('method', '')})")
        extra.append(f"Recovery to 90% of the counterfactual: {r.recovery(0.9, alpha=self.alpha)['message']}")
        return "\n".join([bar, "Event study (dynamic path)", bar, *lines, bar, tab, bar, *extra, bar])

    def as_latex(self, *, caption: str | None = None, label: str | None = None) -> str:
        from raidstudy.report.tables import to_latex

        cap = caption or f"Event study: {self.results.model.outcome}. Covariance: {self.results.cov_description}."
        return to_latex(self.table(), caption=cap, label=label)


# --------------------------------------------------------------------------- step + decay
class _StepDecay(ITS):
    """ITS with a step and an exponentially decaying step (``level``, ``decay``) at a fixed half-life.

    With ``deriv`` set, the design also holds ``log_half_life``, the derivative of the linear
    predictor with respect to the log half-life at ``deriv`` (the ``decay`` coefficient): the
    Gauss-Newton linearisation whose sandwich covariance gives the half-life's interval.
    """

    half_life: float = 1.0
    deriv: float | None = None

    def _build_design(self) -> Design:
        base = build_design(self.frame, event_pos=self.event_pos, slope=False, dow=self.dow, fourier=self.fourier,
                            holidays=self.holidays, excluded_pos=self.excluded_pos, family=self.family)
        k = np.arange(len(self.frame.index)) - self.event_pos
        D = np.where(k >= 0, np.exp(-LN2 * np.maximum(k, 0) / self.half_life), 0.0)
        cols = {"decay": D}
        if self.deriv is not None:
            cols["log_half_life"] = self.deriv * D * LN2 * np.maximum(k, 0) / self.half_life
        d = _add_columns(base, cols, after="level")
        d.headline = {"level": "level"}
        d.effect_cols = [d.names.index(c) for c in ("level", "decay")]
        return d

    def _after_design(self) -> None:
        d = self.design
        d.effect_cols = [d.names.index(c) for c in ("level", "decay") if c in d.names]
        d.headline = {"level": "level"}


def _resolve(obj: Any, event: Any, its_kwargs: dict[str, Any]) -> tuple[ITS, dict[str, Any]]:
    """The ITS model and the fit arguments for a results object, a model or data."""
    if isinstance(obj, ITSResults):
        return obj.model, _fit_kwargs(obj)
    if isinstance(obj, ITS):
        return obj, {}
    if event is None:
        raise ParameterError("event", None, "is required when data (not a model or results) is given",
                             hint="Pass event=<date>, or an ITS model / results object")
    its_kwargs = {k: v for k, v in its_kwargs.items() if k != "slope"}
    return ITS(obj, event=event, **its_kwargs), {}


def _usable(model: ITS) -> np.ndarray:
    d = model.design
    u = np.zeros(len(model.frame.index), dtype=bool)
    sel = d.treated_rows & d.fit
    u[d.tpos[sel]] = True
    return u


def misfit_test(results_or_model: ITSResults | ITS, *, bin_width: int | None = None,
                fit_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    r"""Wald test that the post-event bin effects lie on a straight line (the level+slope shape).

    Parameters
    ----------
    results_or_model : ITSResults or ITS
        A fitted ITS (its covariance is reused: same ``cov_type`` and options) or a model
        (fitted with the default covariance, or ``fit_kwargs``).
    bin_width : int, optional
        Periods per bin (default 7 for daily data, 1 otherwise). Under the EWC covariance
        with ``B`` cosine terms a joint test has at most ``B`` restrictions, and its power
        falls to nothing as their number ``q`` approaches ``B`` (like Hotelling's T^2 with
        ``B - q + 1`` denominator degrees of freedom). With the default the bins are widened
        to the smallest multiple of 7 (or 1) that gives at most ``B // 2`` restrictions
        (21-day bins, 4 restrictions, for the 120 days after the SPARKS raid); an explicit
        width with more than ``B`` restrictions is an error.
    fit_kwargs : dict, optional
        Arguments of :meth:`ITS.fit` when a model is given.

    Returns
    -------
    dict
        ``statistic``, ``df``, ``p_value``, ``method``, ``bin_width``, ``widened`` (True
        when the default width was widened), ``deviations`` (per bin: the bin effect, the
        straight line through the bin effects at the bin's centre, their difference),
        ``cov_description``, ``hypothesis``.

    Notes
    -----
    The bins model (:class:`EventStudy` without leads, same trend, seasonal terms and
    covariance) gives bin effects :math:`\delta_k`. The level+slope model says the effect
    is :math:`\beta_2 + \beta_3 (t - t_0)`, so the bin effects lie on a line in the bins'
    centres :math:`c_k` (the mean fitted period of each bin):

    .. math::

        H_0: \delta_k = a + b\, c_k \text{ for all } k
        \iff R\delta = 0,

    with the rows of :math:`R` spanning the :math:`K - 2` contrasts orthogonal to
    :math:`(1, c_k)`. The Wald statistic uses the fit's covariance and its reference
    distribution. A rejection says the level change is a poor summary of the dynamics (a
    collapse followed by a partial recovery, say). The deviations are the bins' distances
    from the least-squares line through them. Testing the deviations of a model with level,
    slope *and* bin dummies instead identifies the slope from within-bin variation only,
    which under EWC leaves the test without power (measured on SPARKS: p = 0.53 with
    deviations of +0.5 to +0.6 on the log scale).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.its import ITS, misfit_test
    >>> idx = pd.date_range("2020-01-01", periods=200, freq="D")   # simulated
    >>> k = np.arange(200) - 120
    >>> mu = 100 * np.exp(np.where(k >= 0, -1.5 * np.exp(-k / 8) - 0.3, 0.0))
    >>> y = pd.Series(np.random.default_rng(2).poisson(mu), index=idx, name="simulated")
    >>> res = ITS(y, event=idx[120], family="poisson", dow=False).fit(cov_type="robust")
    >>> misfit_test(res)["p_value"] < 0.001
    True
    """
    if not isinstance(results_or_model, (ITS, ITSResults)):
        raise ParameterError("results_or_model", type(results_or_model).__name__,
                             "must be a fitted ITS (ITSResults) or an ITS model",
                             hint="Fit the model first: misfit_test(ITS(data, event=...).fit())")
    model, kw = _resolve(results_or_model, None, {})
    if fit_kwargs is not None:
        kw = dict(fit_kwargs)
    if model.controls:
        raise ParameterError("control", model.controls, "the misfit test models one series",
                             hint="Fit the treated series alone (no control=)")
    if bin_width is not None and (not _is_int(bin_width) or bin_width < 1):
        raise ParameterError("bin_width", bin_width, "must be an integer >= 1 (periods per bin)")
    n_post = len(model.frame.index) - model.event_pos
    base_w = bin_width or _default_width(model)
    usable = _usable(model)

    def n_restr(w: int) -> int:
        return len(_post_bins(n_post, w)) - 2

    cov = str(kw.get("cov_type", "ewc")).strip().lower()
    w = base_w
    widened = False
    if cov == "ewc":
        limit = int(kw.get("ewc_terms") or min(EWC_TERMS, max(2, int(usable.sum()) // 4)))
        if bin_width is not None and n_restr(w) > limit:
            ok = next((m * base_w for m in range(2, n_post + 1) if n_restr(m * base_w) <= limit), None)
            raise ParameterError(
                "bin_width", bin_width,
                f"gives {n_restr(w)} restrictions, more than the {limit} an EWC covariance with {limit} "
                "cosine terms supports in one joint test",
                hint=f"Use bin_width >= {ok} (or bin_width=None to choose the width)" if ok else
                "Use a longer post-event window")
        soft = max(1, limit // 2)
        if bin_width is None and n_restr(w) > soft:
            m = 2
            while n_restr(m * base_w) > soft and m * base_w < n_post:
                m += 1
            w, widened = m * base_w, True
    if n_restr(w) < 1:
        raise DataError(
            f"the post-event window ({n_post} {model.frame.freq.unit}s) holds {len(_post_bins(n_post, w))} bin(s) "
            f"of {w}; a straight line through the bins needs at least 3 to be testable. Use a narrower bin_width or "
            "a longer post-event window")
    es = EventStudy.from_model(model, bin_width=w, n_leads=0)
    res = es.fit(**kw)
    post = es.bins[es.bins["kind"] == "post"]
    ev = model.event_pos
    centre = np.array([np.flatnonzero(usable[ev + a: ev + b + 1]).mean() + a for a, b in zip(post["first"],
                                                                                            post["last"])])
    Z = np.column_stack([np.ones(len(centre)), centre])
    U = np.linalg.svd(Z, full_matrices=True)[0]
    N = U[:, 2:].T  # (K-2, K): orthonormal contrasts orthogonal to (1, c)
    names = list(res.params.index)
    cols = [names.index(t) for t in post["term"]]
    R = np.zeros((N.shape[0], len(names)))
    R[:, cols] = N
    out = dict(res.wald_test(R))
    delta = res.params.to_numpy()[cols]
    line = Z @ np.linalg.lstsq(Z, delta, rcond=None)[0]
    out.update({"bin_width": int(w), "widened": widened, "n_bins": len(post),
                "cov_type": res.cov_type, "cov_description": res.cov_description,
                "deviations": [{"bin": int(k), "first": int(a), "last": int(b), "centre": float(c),
                                "estimate": float(dl), "line": float(li), "deviation": float(dl - li)}
                               for k, a, b, c, dl, li in zip(post["bin"], post["first"], post["last"], centre,
                                                             delta, line)],
                "hypothesis": "the post-event bin effects lie on a straight line (the level+slope shape)"})
    return out


class DynamicSummary:
    """Step + exponential decay, and the AIC comparison of four post-event shapes.

    Attributes
    ----------
    decay : dict
        ``impact`` (effect at the event), ``half_life`` (periods), ``persistent`` (effect
        that does not decay), each with ``estimate``, ``ci_low``, ``ci_high`` (and rate
        ratio / percent for count families).
    table : pandas.DataFrame
        One row per model: ``model``, ``n_params``, ``loglike``, ``aic`` (QAIC for
        quasi-Poisson), ``delta_aic``, ``best``.
    best : str
        The model with the smallest AIC.
    results : dict
        The fitted results: ``level``, ``level_slope``, ``step_decay``, ``bins``.
    misfit : dict
        :func:`misfit_test` of the level+slope model.
    """

    def __init__(self, *, decay: dict[str, Any], table: pd.DataFrame, results: dict[str, Any],
                 misfit: dict[str, Any] | None, alpha: float, criterion: str):
        self.decay = decay
        self.table = table
        self.results = results
        self.misfit = misfit
        self.alpha = alpha
        self.criterion = criterion
        self.best = str(table.loc[table["best"], "model"].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """For ``results.json``: decay estimates, the AIC table, the best model and the misfit test."""
        return {"decay": self.decay, "criterion": self.criterion, "best": self.best,
                "models": self.table.to_dict(orient="records"), "misfit": self.misfit,
                "cov_description": self.results["step_decay"].cov_description, "alpha": self.alpha}

    def summary(self) -> str:
        """The estimates and the comparison as text."""
        dd = self.decay
        unit = dd["unit"]
        lab = f"{100 * (1 - self.alpha):g}%"

        def fmt(e: dict[str, Any]) -> str:
            if "pct" in e:
                return f"{e['pct']:+.1f}% [{e['pct_ci_low']:+.1f}%, {e['pct_ci_high']:+.1f}%]"
            return f"{e['estimate']:.4g} [{e['ci_low']:.4g}, {e['ci_high']:.4g}]"

        hl = dd["half_life"]
        hi = "inf" if hl["ci_high"] is None else f"{hl['ci_high']:.3g}"
        lines = [f"Step + exponential decay ({lab} intervals; {self.results['step_decay'].cov_description})",
                 f"  impact     : {fmt(dd['impact'])}",
                 f"  half-life  : {hl['estimate']:.3g} {unit}s [{hl['ci_low']:.3g}, {hi}]"
                 + (f"  ({hl['note']})" if hl.get("note") else ""),
                 f"  persistent : {fmt(dd['persistent'])}",
                 f"Model comparison ({self.criterion}; best: {self.best})",
                 self.table.to_string(index=False, float_format=lambda x: f"{x:.2f}")]
        if self.misfit:
            mf = self.misfit
            lines.append(f"Misfit of the level+slope line ({mf['bin_width']}-{unit} bins): statistic "
                         f"{mf['statistic']:.3g} on {mf['df']} df, p = {mf['p_value']:.3g}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _coef_block(res: ITSResults, c: np.ndarray, alpha: float, count: bool, est: float) -> dict[str, Any]:
    t = _contrast(res, c)
    q = _crit(res, c, alpha)
    e = {"estimate": est, "std_error": t["std_error"], "crit": q, "ci_low": est - q * t["std_error"],
         "ci_high": est + q * t["std_error"], "p_value": t["p_value"]}
    if count:
        # an interval that reaches beyond exp's range (a flat path on a placebo event) is inf
        with np.errstate(over="ignore"):
            e.update({"rate_ratio": float(np.exp(est)), "pct": float(100 * np.expm1(est)),
                      "pct_ci_low": float(100 * np.expm1(e["ci_low"])),
                      "pct_ci_high": float(100 * np.expm1(e["ci_high"]))})
    return e


def dynamic_summary(model_or_data: Any, *, event: Any = None, bin_width: int | None = None, alpha: float = 0.05,
                    fit_kwargs: dict[str, Any] | None = None, half_life_bounds: tuple[float, float] | None = None,
                    misfit: bool = True, **its_kwargs: Any) -> DynamicSummary:
    r"""Impact, half-life and persistent effect, and which post-event shape fits best.

    Parameters
    ----------
    model_or_data : ITSResults, ITS or data
        A fitted ITS (its covariance settings are reused), an ITS model, or data (then
        ``event`` and the other ITS arguments are required as for :class:`ITS`).
    event : date-like, optional
        The event, when data is given.
    bin_width : int, optional
        Bin width of the bins model (default 7 for daily data, 1 otherwise).
    alpha : float
        1 - confidence level of the intervals.
    fit_kwargs : dict, optional
        Arguments of :meth:`ITS.fit` for every model (default: those of the results given,
        else the package default covariance).
    half_life_bounds : (float, float), optional
        Search range of the half-life in periods. Default ``(0.25, 10 * post periods)``.
    misfit : bool
        Also run :func:`misfit_test` on the level+slope model.
    **its_kwargs
        ITS arguments when data is given (``outcome``, ``family``, ``dow``, ...).

    Returns
    -------
    DynamicSummary

    Notes
    -----
    The step with exponential decay is, for ``k = t - t_0 >= 0`` periods after the event,

    .. math::

        g(\mu_t) = \dots + P + (I - P)\, e^{-\ln 2 \, k / h},

    with the ITS trend and seasonal terms: impact :math:`I` (effect at the event),
    persistent effect :math:`P` and half-life :math:`h`. Given :math:`h` the model is linear
    in :math:`P` (``level``) and :math:`I - P` (``decay``), so :math:`h` is profiled: the
    family's log-likelihood is maximised over a log-spaced grid and refined by a bounded
    scalar optimiser on :math:`\log h`; the coefficients are the ITS fit at :math:`\hat h`.
    Intervals come from the Gauss-Newton linearisation: the ITS fit with the extra column
    :math:`\partial \eta / \partial \log h = (\hat I - \hat P) e^{-\ln 2 k/\hat h} \ln 2 \, k/\hat h`
    (whose coefficient is zero at the optimum) gives the sandwich covariance of all
    coefficients and :math:`\log h` together, with the fit's covariance type and its
    critical values; the half-life interval is :math:`\exp(\log\hat h \pm q\, se)`.

    The four shapes (level only; level + slope; step + decay; post-event bins, no leads)
    share the trend, the seasonal terms and the fitted periods, and are compared by
    :math:`AIC = -2\ell + 2k` (:math:`k` counts the coefficients, the half-life, the NB2
    :math:`\alpha` or the gaussian :math:`\sigma^2`); for quasi-Poisson by QAIC with the
    dispersion of the bins model.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.its import dynamic_summary
    >>> idx = pd.date_range("2020-01-01", periods=240, freq="D")   # simulated
    >>> k = np.arange(240) - 150
    >>> mu = 200 * np.exp(np.where(k >= 0, -0.2 - 0.8 * np.exp(-np.log(2) * k / 10), 0.0))
    >>> y = pd.Series(np.random.default_rng(3).poisson(mu), index=idx, name="simulated")
    >>> ds = dynamic_summary(y, event=idx[150], family="poisson", dow=False, misfit=False,
    ...                      fit_kwargs={"cov_type": "robust"})
    >>> 7 < ds.decay["half_life"]["estimate"] < 13, ds.best
    (True, 'step_decay')
    """
    if not 0 < alpha < 1:
        raise ParameterError("alpha", alpha, "must lie strictly between 0 and 1")
    model, kw = _resolve(model_or_data, event, its_kwargs)
    if fit_kwargs is not None:
        kw = dict(fit_kwargs)
    if model.controls:
        raise ParameterError("control", model.controls, "the dynamic summary models one series",
                             hint="Fit the treated series alone (no control=)")
    n_post = len(model.frame.index) - model.event_pos
    lo_b, hi_b = half_life_bounds if half_life_bounds is not None else (0.25, 10.0 * n_post)
    if not (np.isfinite(lo_b) and np.isfinite(hi_b) and 0 < lo_b < hi_b):
        raise ParameterError("half_life_bounds", half_life_bounds, "must be (low, high) with 0 < low < high periods")
    count = model.family in COUNT_FAMILIES

    # ---- profile the half-life with the family's likelihood
    sd = _clone(model, _StepDecay, half_life=1.0, deriv=None, slope=False)
    d = sd.design
    j = d.names.index("decay")
    Xf, yf, off = d.X[d.fit].copy(), d.y[d.fit], d.log_offset[d.fit]
    kf = (d.tpos[d.fit] - model.event_pos).astype(float)
    postf = kf >= 0

    def negll(logh: float) -> float:
        Xf[:, j] = np.where(postf, np.exp(-LN2 * np.maximum(kf, 0) / math.exp(logh)), 0.0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            st = fit_model(Xf, yf, off, model.family)
        ll = st.loglike if np.all(np.isfinite(st.params)) else -np.inf
        return -ll if np.isfinite(ll) else 1e300

    grid = np.linspace(math.log(lo_b), math.log(hi_b), 41)
    vals = np.array([negll(g) for g in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    opt = optimize.minimize_scalar(negll, bounds=(a, b), method="bounded", options={"xatol": 1e-7})
    logh = float(opt.x) if opt.fun <= vals[i] else float(grid[i])
    h = math.exp(logh)
    at_bound = "upper" if i == len(grid) - 1 else ("lower" if i == 0 else None)

    sd = _clone(model, _StepDecay, half_life=h, deriv=None, slope=False)
    res_sd = sd.fit(**kw)
    P = float(res_sd.params["level"])
    dI = float(res_sd.params["decay"])
    aug = _clone(model, _StepDecay, half_life=h, deriv=dI, slope=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ITSWarning)
        try:
            res_aug = aug.fit(**kw)
        except ModelError:
            res_aug = None  # derivative column collinear (half-life at a bound): no interval
    names = list(res_sd.params.index)
    unit = model.frame.freq.unit
    decay: dict[str, Any] = {"unit": unit, "alpha": alpha, "family": model.family,
                             "scale": "log rate ratio" if count else "additive"}
    src = res_aug if res_aug is not None else res_sd
    an = list(src.params.index)

    def vec(weights: dict[str, float]) -> np.ndarray:
        c = np.zeros(len(an))
        for t, v in weights.items():
            c[an.index(t)] = v
        return c

    decay["impact"] = _coef_block(src, vec({"level": 1.0, "decay": 1.0}), alpha, count, P + dI)
    decay["persistent"] = _coef_block(src, vec({"level": 1.0}), alpha, count, P)
    hl: dict[str, Any] = {"estimate": h, "log_estimate": logh, "at_bound": at_bound,
                          "bounds": [float(lo_b), float(hi_b)]}
    if res_aug is not None and at_bound is None:
        c = vec({"log_half_life": 1.0})
        t = _contrast(res_aug, c)
        q = _crit(res_aug, c, alpha)
        se = t["std_error"]
        hl.update({"std_error_log": se, "crit": q, "ci_low": math.exp(logh - q * se),
                   "ci_high": math.exp(logh + q * se) if logh + q * se < 700 else None})
        if hl["ci_high"] is None or hl["ci_high"] > n_post:
            hl["note"] = f"the upper limit lies beyond the {n_post}-{unit} post window"
    else:
        hl.update({"std_error_log": None, "crit": None, "ci_low": None, "ci_high": None,
                   "note": ("no decay within the search range: the effect behaves as a step" if at_bound == "upper"
                            else "decay faster than the search range: the impact is not identified"
                            if at_bound == "lower" else "interval not available")})
    decay["half_life"] = hl
    del names

    # ---- the other shapes, on the same periods
    res_l = _clone(model, ITS, slope=False).fit(**kw)
    res_ls = _clone(model, ITS, slope=True).fit(**kw)
    res_b = EventStudy.from_model(model, bin_width=bin_width, n_leads=0).fit(**kw)
    fits = {"level": (res_l, 0), "level_slope": (res_ls, 0), "step_decay": (res_sd, 1), "bins": (res_b, 0)}
    extra = 1 if model.family in ("negbin", "gaussian") else 0
    phi = res_b.pearson_dispersion if model.family == "quasipoisson" else 1.0
    rows = []
    for name, (r, add) in fits.items():
        k = len(r.params) + add + extra + (1 if model.family == "quasipoisson" else 0)
        aic = -2 * r.loglike / phi + 2 * k
        rows.append({"model": name, "n_params": k, "loglike": float(r.loglike), "aic": float(aic)})
    table = pd.DataFrame(rows)
    table["delta_aic"] = table["aic"] - table["aic"].min()
    table["best"] = table["delta_aic"] == 0
    mf = misfit_test(res_ls, bin_width=bin_width) if misfit else None
    return DynamicSummary(decay=decay, table=table,
                          results={"level": res_l, "level_slope": res_ls, "step_decay": res_sd, "bins": res_b},
                          misfit=mf, alpha=alpha, criterion="QAIC" if model.family == "quasipoisson" else "AIC")


# set here, once both classes exist: EventStudy.fit returns EventStudyResults
EventStudy._results_class = EventStudyResults
