"""Results of the staggered event-study estimators (Sun-Abraham, stacked, TWFE)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from raidstudy.errors import ParameterError
from raidstudy.models._summary import SummaryDisplay

__all__ = ["StaggeredResults", "StaggeredSummary"]


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ParameterError("alpha", alpha, "must lie strictly between 0 and 1", hint="0.05 gives 95% intervals")


class StaggeredResults:
    """Results of :meth:`SunAbraham.fit`, :meth:`StackedEventStudy.fit` and :meth:`TWFE.fit`.

    The reported terms are the covariates, the event-time effects ``rel[e]`` (relative period
    ``e``; ``<group>:rel[e]`` when the model has groups) and the aggregate effect ``ATT``
    (``<group>:ATT``). For the Sun-Abraham estimator they are linear combinations of the
    cohort x relative-period coefficients (kept in :attr:`interactions`), weighted by each
    cohort's share of the observations in that cell, as fixest's ``aggregate()`` does.

    Attributes
    ----------
    params, std_errors, tvalues, pvalues : pandas.Series
        Indexed by term.
    cov_params : pandas.DataFrame
        Covariance of the reported terms.
    interactions : pandas.DataFrame
        The regression's own coefficients (covariates and interaction cells) with their
        standard errors, cell sizes and aggregation weights.
    panel_report : dict
        Units, periods, observations, missing cells and gaps of the panel, and what was
        left out of the estimation sample and why.
    nobs, n_clusters, df_resid : int
    estimator, cov_type, cov_description : str
    """

    def __init__(self, model: Any, fit: Any, *, coef_names: list[str], terms: list[str], L: np.ndarray,
                 cells: pd.DataFrame, cov_type: str, small_sample: bool, panel_report: dict[str, Any],
                 extra: dict[str, Any] | None = None):
        self.model = model
        self._fit = fit
        self.estimator = model.estimator_name
        self.cov_type = cov_type
        self.small_sample = bool(small_sample)
        self.nobs = fit.nobs
        self.n_clusters = fit.n_clusters
        self.df_resid = fit.nobs - fit.k_used
        self.bandwidth = fit.bandwidth
        self.df_ref = fit.df_ref
        b = pd.Series(fit.params, index=coef_names)
        V = fit.cov
        self.coef_cov = pd.DataFrame(V, index=coef_names, columns=coef_names)
        est = L @ fit.params
        cv = L @ V @ L.T
        self.params = pd.Series(est, index=terms, name="estimate")
        self.cov_params = pd.DataFrame(cv, index=terms, columns=terms)
        self.std_errors = pd.Series(np.sqrt(np.clip(np.diag(cv), 0, None)), index=terms, name="std_error")
        with np.errstate(divide="ignore", invalid="ignore"):
            self.tvalues = (self.params / self.std_errors).rename("t")
        self.pvalues = pd.Series(2 * self._dist.sf(np.abs(self.tvalues.to_numpy())), index=terms, name="p_value")
        se_c = np.sqrt(np.clip(np.diag(V), 0, None))
        inter = cells.copy()
        inter["estimate"] = b.reindex(inter["name"]).to_numpy()
        inter["std_error"] = pd.Series(se_c, index=coef_names).reindex(inter["name"]).to_numpy()
        self.interactions = inter.reset_index(drop=True)
        self.panel_report = dict(panel_report)
        self.extra = dict(extra or {})
        self.r2_within = fit.r2_within

    # ------------------------------------------------------------------ inference
    @property
    def _dist(self):
        return stats.t(self.df_ref) if self.df_ref else stats.norm()

    @property
    def use_t(self) -> bool:
        return bool(self.df_ref)

    def critical_value(self, alpha: float = 0.05) -> float:
        """Two-sided ``1 - alpha`` critical value of the reference distribution."""
        _check_alpha(alpha)
        return float(self._dist.ppf(1 - alpha / 2))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals of the reported terms (columns ``lower``, ``upper``)."""
        c = self.critical_value(alpha)
        return pd.DataFrame({"lower": self.params - c * self.std_errors, "upper": self.params + c * self.std_errors})

    @property
    def cov_description(self) -> str:
        """The covariance estimator in words."""
        f = self._fit
        if self.cov_type == "clustered":
            ss = (f"; small-sample factor G/(G-1) x (n-1)/(n-K) = {f.ss_factor:.5f} with K = {f.k_used} "
                  "(fixest's default ssc: coefficients plus fixed effects not nested in the clusters)"
                  if self.small_sample else "; no small-sample factor")
            return (f"cluster-robust by unit ({f.n_clusters} clusters){ss}; t({f.df_ref}) critical values")
        if self.cov_type == "kernel":
            ss = f"; small-sample factor (n-1)/(n-K) = {f.ss_factor:.5f}" if self.small_sample else ""
            return (f"Driscoll-Kraay (cross-section averaged scores, Bartlett kernel, bandwidth {f.bandwidth:g} "
                    f"periods over {f.n_periods} periods){ss}; t({f.df_ref}) critical values")
        if self.cov_type == "robust":
            ss = f" x (n-1)/(n-K) = {f.ss_factor:.5f}" if self.small_sample else ""
            return f"heteroskedasticity-robust sandwich (HC0{ss}); t({f.df_ref}) critical values"
        ss = f" x (n-1)/(n-K) = {f.ss_factor:.5f}" if self.small_sample else ""
        return f"classical OLS (sigma^2 (X'X)^-1, sigma^2 = SSR/n{ss}); t({f.df_ref}) critical values"

    # ------------------------------------------------------------------ tables
    def _row(self, term: str, alpha: float) -> dict[str, Any]:
        ci = self.conf_int(alpha).loc[term]
        return {"estimate": float(self.params[term]), "std_error": float(self.std_errors[term]),
                "ci_low": float(ci["lower"]), "ci_high": float(ci["upper"]), "p_value": float(self.pvalues[term])}

    def att(self, group: str | None = None, *, alpha: float = 0.05) -> dict[str, Any]:
        """The aggregate effect on the treated (``ATT`` or ``<group>:ATT``) with its interval.

        For a log outcome the dictionary also holds the percentage change
        ``100 (exp(ATT) - 1)`` and its interval.
        """
        term = "ATT" if group is None else f"{group}:ATT"
        if term not in self.params.index:
            raise ParameterError("group", group, "has no aggregate effect in this model",
                                 accepted=[t.split(":")[0] for t in self.params.index if t.endswith(":ATT")] or [None])
        out = {"term": term, **self._row(term, alpha)}
        if getattr(self.model, "log_outcome", False):
            out.update(pct=100 * math.expm1(out["estimate"]), pct_ci_low=100 * math.expm1(out["ci_low"]),
                       pct_ci_high=100 * math.expm1(out["ci_high"]))
        return out

    @property
    def groups(self) -> list[str | None]:
        return list(self.model.groups) if getattr(self.model, "groups", None) else [None]

    def event_study(self, alpha: float = 0.05) -> pd.DataFrame:
        """The event-time path: one row per (group,) relative period, the reference period included as 0."""
        ci = self.conf_int(alpha)
        rows = []
        ref = self.model.ref_period
        for g in self.groups:
            pre = f"{g}:" if g is not None else ""
            rels = [int(t[len(pre) + 4:-1]) for t in self.params.index if t.startswith(pre + "rel[")]
            for e in sorted(set(rels) | {ref}):
                term = f"{pre}rel[{e}]"
                if e == ref and term not in self.params.index:
                    rows.append({"group": g, "rel": e, "estimate": 0.0, "std_error": 0.0, "ci_low": 0.0,
                                 "ci_high": 0.0, "p_value": float("nan"), "n_obs": 0, "reference": True})
                    continue
                rows.append({"group": g, "rel": e, "estimate": float(self.params[term]),
                             "std_error": float(self.std_errors[term]), "ci_low": float(ci.loc[term, "lower"]),
                             "ci_high": float(ci.loc[term, "upper"]), "p_value": float(self.pvalues[term]),
                             "n_obs": int(self._n_obs.get(term, 0)), "reference": False})
        out = pd.DataFrame(rows)
        if self.groups == [None]:
            out = out.drop(columns="group")
        return out

    @property
    def _n_obs(self) -> dict[str, int]:
        return self.extra.get("term_nobs", {})

    def wald_pretrend(self, group: str | None = None) -> dict[str, Any]:
        """Joint Wald test that every lead (``rel[e]``, e < -1 ... excluding the reference) is zero."""
        pre = f"{group}:" if group is not None else ""
        leads = [t for t in self.params.index if t.startswith(pre + "rel[") and int(t[len(pre) + 4:-1]) < 0]
        if not leads:
            return {"statistic": float("nan"), "df": 0, "p_value": float("nan"), "terms": []}
        b = self.params[leads].to_numpy()
        V = self.cov_params.loc[leads, leads].to_numpy()
        w = float(b @ np.linalg.pinv(V) @ b)
        q = len(leads)
        if self.df_ref:
            p = float(stats.f.sf(w / q, q, self.df_ref))
        else:
            p = float(stats.chi2.sf(w, q))
        return {"statistic": w, "df": q, "p_value": p, "terms": leads}

    def summary(self, *, alpha: float = 0.05, full: bool = False) -> StaggeredSummary:
        """Printable summary (text; HTML in notebooks; LaTeX with ``as_latex()``).

        ``full=False`` shows the covariates and aggregate effects; ``full=True`` adds the
        event-time path.
        """
        _check_alpha(alpha)
        return StaggeredSummary(self, alpha=alpha, full=full)

    def estimates(self, alpha: float = 0.05) -> list[dict[str, Any]]:
        return [{"term": t, **self._row(t, alpha)} for t in self.params.index]

    def to_dict(self, *, alpha: float = 0.05) -> dict[str, Any]:
        """Everything as plain JSON-ready values (deterministic order)."""
        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, (np.integer,)):
                return int(v)
            if isinstance(v, (np.floating, float)):
                return None if not np.isfinite(v) else float(v)
            if isinstance(v, np.bool_):
                return bool(v)
            return v

        es = self.event_study(alpha)
        out = {
            "estimator": self.estimator,
            "model": self.model.describe(),
            "covariance": {"cov_type": self.cov_type, "description": self.cov_description,
                           "small_sample": self.small_sample, "n_clusters": self.n_clusters,
                           "df_reference": self.df_ref, "bandwidth": self.bandwidth},
            "nobs": self.nobs,
            "df_resid": self.df_resid,
            "estimates": self.estimates(alpha),
            "att": [self.att(g, alpha=alpha) for g in self.groups],
            "event_study": es.to_dict(orient="records"),
            "pretrend_test": [{"group": g, **{k: v for k, v in self.wald_pretrend(g).items()}} for g in self.groups],
            "panel": self.panel_report,
            **{k: v for k, v in self.extra.items() if k != "term_nobs"},
        }
        return clean(out)

    def plot_event_study(self, *, ax=None, alpha: float = 0.05):
        """Event-time estimates with ``1 - alpha`` intervals (one line per group)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        es = self.event_study(alpha)
        groups = self.groups
        off = np.linspace(-0.15, 0.15, len(groups)) if len(groups) > 1 else [0.0]
        for g, o in zip(groups, off):
            sub = es if g is None else es[es["group"] == g]
            ax.errorbar(sub["rel"] + o, sub["estimate"], yerr=[sub["estimate"] - sub["ci_low"],
                        sub["ci_high"] - sub["estimate"]], fmt="o", ms=3, capsize=2, label=g or self.estimator)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.axvline(-0.5, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("periods relative to the event")
        ax.set_ylabel(f"effect on {self.model.outcome}")
        ax.legend(fontsize=8)
        return ax

    def __repr__(self) -> str:
        return f"<StaggeredResults {self.estimator}, nobs={self.nobs}, {self.cov_description}>"


class StaggeredSummary(SummaryDisplay):
    """Printable summary of :class:`StaggeredResults` (text, HTML in notebooks, LaTeX)."""

    html_float_format = staticmethod(lambda x: f"{x:.6g}")

    def __init__(self, results: StaggeredResults, *, alpha: float = 0.05, full: bool = False):
        self.results = results
        self.alpha = alpha
        self.full = full

    def _header(self) -> list[tuple[str, str]]:
        r = self.results
        m = r.model
        pr = r.panel_report
        rows = [("Estimator", r.estimator + (f" - {m.name}" if m.name else "")),
                ("Outcome", m.outcome_label),
                ("Observations", str(r.nobs)),
                ("Units / periods", f"{pr.get('n_units')} / {pr.get('n_periods')}"),
                ("Missing cells (gaps)", (f"{pr.get('n_missing_cells')} ({pr.get('n_interior_gap_cells')} inside "
                                         f"units' spans, {pr.get('n_units_with_gaps')} units)")),
                ("Fixed effects", m.fe_description),
                ("Covariance", r.cov_description)]
        rows.extend(m.summary_rows())
        return rows

    def table(self) -> pd.DataFrame:
        r = self.results
        terms = [t for t in r.params.index if self.full or "rel[" not in t]
        ci = r.conf_int(self.alpha).loc[terms]
        lab = f"{100 * (1 - self.alpha):g}%"
        return pd.DataFrame({"coef": r.params[terms], "std err": r.std_errors[terms], "t": r.tvalues[terms],
                             "P>|t|": r.pvalues[terms], f"[{lab}": ci["lower"], f"{lab}]": ci["upper"]})

    def as_text(self) -> str:
        head = self._header()
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}} : {v}" for k, v in head]
        tab = self.table().to_string(float_format=lambda x: f"{x:.6g}")
        bar = "=" * min(100, max(len(line) for line in tab.splitlines() + lines))
        return "\n".join([bar, f"Staggered event study: {self.results.estimator}", bar, *lines, bar, tab, bar])

    def as_latex(self, *, caption: str | None = None, label: str | None = None) -> str:
        from raidstudy.report.tables import to_latex

        r = self.results
        cap = caption or f"{r.estimator}: {r.model.outcome_label}. Covariance: {r.cov_description}."
        return to_latex(self.table(), caption=cap, label=label)
