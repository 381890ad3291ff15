"""Results of an ITS fit: coefficients, effects, predictions, diagnostics, summaries."""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from raidstudy.errors import ModelError, ParameterError
from raidstudy.models.its.data import format_label
from raidstudy.models.its.fitting import FitState, fit_model, score_weights
from raidstudy.models.its.vocabulary import COUNT_FAMILIES
from raidstudy.models._summary import SummaryDisplay

if TYPE_CHECKING:
    from raidstudy.models.its.model import ITS

__all__ = ["ITSResults", "ITSSummary", "ARIMAResults"]

_DIAG_LAGS = {"D": 14, "W": 8, "M": 12, "Q": 8, "Y": 5, "int": 5}


@dataclass
class ARIMAResults:
    """Robustness model: the same exogenous terms with ARIMA errors (statsmodels SARIMAX)."""

    sarimax: Any
    order: tuple
    seasonal_order: tuple | None
    family: str
    transform: str
    params: pd.Series
    std_errors: pd.Series
    alpha: float

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        a = self.alpha if alpha is None else alpha
        z = stats.norm.ppf(1 - a / 2)
        return pd.DataFrame({"lower": self.params - z * self.std_errors, "upper": self.params + z * self.std_errors})

    def level(self, alpha: float | None = None) -> dict[str, Any]:
        ci = self.conf_int(alpha).loc["level"]
        out = {"estimate": float(self.params["level"]), "std_error": float(self.std_errors["level"]),
               "ci_low": float(ci["lower"]), "ci_high": float(ci["upper"])}
        if self.family in COUNT_FAMILIES:
            out.update({"rate_ratio": math.exp(out["estimate"]), "pct": 100 * (math.exp(out["estimate"]) - 1),
                        "pct_ci_low": 100 * (math.exp(out["ci_low"]) - 1),
                        "pct_ci_high": 100 * (math.exp(out["ci_high"]) - 1)})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "seasonal_order": list(self.seasonal_order) if self.seasonal_order else None,
                "transform": self.transform, "level": self.level(),
                "aic": float(self.sarimax.aic), "nobs": int(self.sarimax.nobs),
                "params": {k: float(v) for k, v in self.params.items()}}


class ITSResults:
    """Results of :meth:`ITS.fit`.

    Attributes
    ----------
    params, std_errors, tvalues, pvalues : pandas.Series
        Indexed by term name.
    nobs : int
        Number of fitted rows.
    family, cov_type, cov_description : str
    dispersion : float
        sigma^2 (gaussian), 1 (poisson), Pearson X2/(n-p) (quasipoisson), NB2 alpha (negbin).
    """

    def __init__(self, model: ITS, state: FitState, cov: np.ndarray, *, cov_type: str, maxlags: int | None,
                 small_sample: bool, use_t: bool | None = None, prewhite: bool = False,
                 lag_rule: str | None = None, ewc_terms: int | None = None, reference: Any = None,
                 newey: bool = False):
        self.model = model
        self._state = state
        self.cov_type = cov_type
        self.maxlags = maxlags
        self.small_sample = small_sample
        self.family = model.family
        d = model.design
        names = d.names
        self.nobs = int(d.fit.sum())
        self.df_resid = self.nobs - len(names)
        self.params = pd.Series(state.params, index=names, name="estimate")
        self.cov_params = pd.DataFrame(cov, index=names, columns=names)
        self.std_errors = pd.Series(np.sqrt(np.diag(cov)), index=names, name="std_error")
        self.tvalues = (self.params / self.std_errors).rename("t")
        self.prewhite = bool(prewhite)
        self.lag_rule = lag_rule
        self.ewc_terms = ewc_terms
        self.newey = bool(newey)
        #: The simulated fixed-b reference distribution of an EWC fit (None for other covariances).
        self.reference = reference
        if cov_type == "ewc":
            self.use_t = False
            pv = reference.pvalues(np.eye(len(names)), self.tvalues.to_numpy())
            self.pvalues = pd.Series(pv, index=names, name="p_value")
        else:
            self.use_t = bool(self.family == "gaussian" or small_sample) if use_t is None else bool(use_t)
            if self.use_t:
                self.pvalues = pd.Series(2 * stats.t.sf(np.abs(self.tvalues), self.df_resid), index=names,
                                         name="p_value")
            else:
                self.pvalues = pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=names, name="p_value")
        if self.family == "negbin":
            self.dispersion = float(state.alpha)
        else:
            self.dispersion = float(state.scale)
        self.pearson_dispersion = float(state.pearson_chi2 / self.df_resid)
        self.loglike = state.loglike
        self.converged = state.converged
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        return (f"<ITSResults {self.family} {self.model.outcome!r}, event {format_label(self.event_label)}, "
                f"nobs={self.nobs}, {self.cov_description}>")

    @property
    def event_label(self) -> Any:
        return self.model.frame.index[self.model.event_pos]

    @property
    def cov_description(self) -> str:
        """The covariance estimator in words."""
        ss = ", small-sample scaling n/(n-k) as Stata's newey" if self.small_sample else ""
        if self.cov_type == "ewc":
            kind = "EWC (equal-weighted cosine) long-run variance" if self.family == "gaussian" else \
                "GLM sandwich with EWC (equal-weighted cosine) long-run variance"
            within = ", within each series" if self.model.controls else ""
            return (f"{kind}, {self.ewc_terms} cosine terms{within}; critical values and p-values from the "
                    f"fixed-b distribution simulated for this design")
        if self.cov_type == "hac":
            lags = f"{self.maxlags} lag" + ("" if self.maxlags == 1 else "s")
            rule = self.lag_rule
            if rule == "plugin":
                lags += " (Newey-West 1994 plug-in bandwidth)"
            elif rule == "rule":
                lags += " (rule of thumb 4(T/100)^(2/9))"
            kind = "Newey-West HAC" if self.family == "gaussian" else "GLM sandwich with Newey-West HAC meat"
            within = ", within each series" if self.model.controls else ""
            pw = ", VAR(1) prewhitening" if self.prewhite else ""
            head = "Stata newey: " if self.newey else ""
            crit = "; t(n-k) critical values" if self.use_t else "; normal critical values"
            return f"{head}{kind}, {lags}, Bartlett kernel{pw}{within}{ss}{crit}"
        if self.cov_type == "robust":
            hc = "HC1" if self.small_sample else "HC0"
            return f"heteroskedasticity-robust sandwich ({hc})"
        base = {"gaussian": "classical OLS (sigma^2 (X'X)^-1)",
                "poisson": "model-based Poisson (inverse Fisher information)",
                "quasipoisson": "model-based quasi-Poisson (Fisher information scaled by Pearson X2/(n-p))",
                "negbin": "model-based negative binomial (inverse Fisher information)"}[self.family]
        return base + ss

    @staticmethod
    def _check_alpha(alpha: float) -> None:
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
            raise ParameterError("alpha", alpha, "must lie strictly between 0 and 1", hint="0.05 gives 95% intervals")

    def _contrast(self, contrast: Any) -> np.ndarray:
        if isinstance(contrast, str):
            if contrast not in self.params.index:
                raise ParameterError("contrast", contrast, "is not a term of the model", accepted=list(self.params.index))
            c = np.zeros(len(self.params))
            c[self.params.index.get_loc(contrast)] = 1.0
            return c
        if isinstance(contrast, pd.Series):
            contrast = contrast.reindex(self.params.index).fillna(0.0).to_numpy()
        c = np.asarray(contrast, dtype=float).ravel()
        if c.shape != (len(self.params),):
            raise ParameterError("contrast", f"shape {c.shape}", f"must have one weight per term ({len(self.params)})")
        return c

    def critical_value(self, contrast: Any, alpha: float = 0.05) -> float:
        """Two-sided ``1 - alpha`` critical value for the t statistic of a linear contrast.

        ``contrast`` is a term name, a Series by term or a vector of weights. With the EWC
        covariance the value comes from the fixed-b distribution simulated for this design
        and this contrast; otherwise it is the normal or t(n-k) quantile.
        """
        self._check_alpha(alpha)
        if self.reference is not None:
            return self.reference.critical_value(self._contrast(contrast), alpha)
        if self.use_t:
            return float(stats.t.ppf(1 - alpha / 2, self.df_resid))
        return float(stats.norm.ppf(1 - alpha / 2))

    def _contrast_pvalue(self, c: np.ndarray, t: float) -> float:
        """Two-sided p-value of the t statistic of contrast ``c`` against this fit's reference."""
        if self.reference is not None:
            return self.reference.pvalue(c, t)
        if self.use_t:
            return float(2 * stats.t.sf(abs(t), self.df_resid))
        return float(2 * stats.norm.sf(abs(t)))

    def contrast_test(self, contrast: Any, value: float = 0.0, *, alpha: float = 0.05) -> dict[str, Any]:
        """Estimate, standard error, interval and two-sided test of ``c'beta = value``."""
        c = self._contrast(contrast)
        est = float(c @ self.params.to_numpy())
        se = float(np.sqrt(max(c @ self.cov_params.to_numpy() @ c, 0.0)))
        t = (est - value) / se if se > 0 else float("nan")
        q = self.critical_value(c, alpha)
        p = self._contrast_pvalue(c, t)
        return {"estimate": est, "std_error": se, "statistic": t, "p_value": p, "critical_value": q,
                "ci_low": est - q * se, "ci_high": est + q * se}

    def wald_test(self, R: Any, r: Any = None) -> dict[str, Any]:
        """Joint test of ``R beta = r`` with this fit's covariance.

        ``R`` is a list of term names (each restricted to zero), or a matrix with one row
        per restriction. The statistic is the Wald statistic divided by the number of
        restrictions ``q``; its reference distribution matches the covariance: simulated
        for the design under EWC (which supports at most ``ewc_terms`` restrictions per
        series), ``F(q, n-k)`` with t-based inference, ``chi2(q)/q`` otherwise.
        """
        if isinstance(R, (list, tuple)) and R and all(isinstance(x, str) for x in R):
            R = np.vstack([self._contrast(x) for x in R])
        R = np.atleast_2d(np.asarray(R, dtype=float))
        q = R.shape[0]
        if R.shape[1] != len(self.params):
            raise ParameterError("R", f"shape {R.shape}", f"must have one column per term ({len(self.params)})")
        r = np.zeros(q) if r is None else np.asarray(r, dtype=float).ravel()
        diff = R @ self.params.to_numpy() - r
        RVR = R @ self.cov_params.to_numpy() @ R.T
        try:
            stat = float(diff @ np.linalg.solve(RVR, diff)) / q
        except np.linalg.LinAlgError:
            raise ModelError(f"the covariance of the {q} restrictions is singular; test fewer or other restrictions") \
                from None
        if self.reference is not None:
            p = self.reference.wald_pvalue(R, stat)
            method = f"Wald/q, fixed-b reference simulated for the design (EWC, {self.ewc_terms} cosine terms)"
        elif self.use_t:
            p = float(stats.f.sf(stat, q, self.df_resid))
            method = f"Wald/q against F({q}, {self.df_resid})"
        else:
            p = float(stats.chi2.sf(stat * q, q))
            method = f"Wald against chi2({q})"
        return {"statistic": stat, "df": q, "p_value": p, "method": method}

    def band_critical_values(self, C: np.ndarray, alpha: float = 0.05) -> np.ndarray:
        """Critical values for many contrasts at once (the rows of ``C``), as for a band.

        EWC: each contrast's own simulated critical value
        (:meth:`~raidstudy.models.its.critical.FixedBReference.critical_values`); otherwise
        the one normal or t quantile.
        """
        self._check_alpha(alpha)
        C = np.atleast_2d(np.asarray(C, dtype=float))
        if self.reference is not None:
            return np.concatenate([self.reference.critical_values(C[i:i + 128], alpha, n_draws=2048)
                                   for i in range(0, C.shape[0], 128)])
        return np.full(C.shape[0], self.critical_value(np.eye(len(self.params))[0], alpha))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals for the coefficients (columns ``lower``, ``upper``)."""
        self._check_alpha(alpha)
        if self.reference is not None:
            q = self.reference.critical_values(np.eye(len(self.params)), alpha)
        else:
            q = self.critical_value(self.params.index[0], alpha)
        return pd.DataFrame({"lower": self.params - q * self.std_errors,
                             "upper": self.params + q * self.std_errors})

    # ------------------------------------------------------------------ prediction helpers
    def _inv_link(self, eta: np.ndarray) -> np.ndarray:
        if self.family == "gaussian":
            return eta
        with np.errstate(over="ignore"):
            return np.exp(eta)

    def _draws(self, n_sim: int, seed: int) -> np.ndarray:
        if not isinstance(n_sim, (int, np.integer)) or n_sim < 10:
            raise ParameterError("n_sim", n_sim, "must be an integer >= 10")
        rng = np.random.default_rng(seed)
        vals, vecs = np.linalg.eigh(self.cov_params.to_numpy())
        L = vecs * np.sqrt(np.clip(vals, 0, None))
        z = rng.standard_normal((int(n_sim), len(self.params)))
        if self.reference is not None:
            # A scale mixture of normals whose mixing variable is the EWC variance ratio of
            # the headline contrast: that contrast's draws then follow its simulated fixed-b
            # distribution, so simulated intervals are as wide as its confidence interval.
            Q = self.reference.mixture(self._contrast(self.model.design.headline["level"]))
            z = z / np.sqrt(Q[rng.integers(0, len(Q), int(n_sim))])[:, None]
        return self.params.to_numpy() + z @ L.T

    def _sim_outcome(self, mu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw outcomes around means ``mu`` from the fitted outcome distribution."""
        if self.family == "gaussian":
            return mu + rng.standard_normal(mu.shape) * math.sqrt(self.dispersion)
        mu = np.clip(mu, 0, 1e12)
        if self.family == "poisson":
            return rng.poisson(mu).astype(float)
        if self.family == "negbin":
            a = max(self.dispersion, 1e-12)
            lam = rng.gamma(1.0 / a, a * np.maximum(mu, 1e-300))
            return rng.poisson(lam).astype(float)
        phi = self.dispersion  # quasipoisson: gamma-Poisson with variance phi*mu
        if phi <= 1.0:
            return rng.poisson(mu).astype(float)
        shape = np.maximum(mu, 1e-300) / (phi - 1.0)
        lam = rng.gamma(shape, phi - 1.0)
        return rng.poisson(lam).astype(float)

    @cached_property
    def _treated(self) -> dict[str, np.ndarray]:
        d = self.model.design
        tr = d.treated_rows
        X = d.X[tr]
        Xcf = X.copy()
        Xcf[:, d.effect_cols] = 0.0
        fit_tr = d.fit & tr
        Xds = X.copy()
        if d.seasonal_cols:
            Xds[:, d.seasonal_cols] = d.X[fit_tr][:, d.seasonal_cols].mean(axis=0)
        Xds_cf = Xds.copy()
        Xds_cf[:, d.effect_cols] = 0.0
        off = d.log_offset[tr]
        return {"X": X, "Xcf": Xcf, "Xds": Xds, "Xds_cf": Xds_cf, "off": off, "y": d.y[tr],
                "missing": d.missing[tr], "excluded": d.excluded[tr], "tpos": d.tpos[tr]}

    def predictions(self, alpha: float = 0.05, *, n_sim: int = 2000, seed: int = 0) -> pd.DataFrame:
        """Observed, fitted and counterfactual path of the treated series, one row per period.

        The counterfactual sets the event terms to zero (``level`` and ``slope``; in a
        comparative model ``treated_level`` and ``treated_slope``, so the control's own
        post-event change is kept: the difference-in-differences counterfactual; the
        column ``pretrend`` then gives the treated series' pre-event line extrapolated
        with every event term zero, and ``control`` the (mean) control series). ``cf_ci_*`` is the confidence interval of the
        counterfactual mean (delta method on the link scale, transformed back);
        ``cf_pi_*`` the prediction interval of a counterfactual observation (gaussian:
        analytic; count families: simulated from the coefficient draws and the outcome
        distribution, seeded). Under EWC each period's band uses its own simulated critical
        value (:meth:`band_critical_values`).
        """
        key = ("pred", alpha, n_sim, seed)
        if key in self._cache:
            return self._cache[key].copy()
        T = self._treated
        b = self.params.to_numpy()
        V = self.cov_params.to_numpy()
        q = self.band_critical_values(T["Xcf"], alpha)
        eta_fit = T["X"] @ b + T["off"]
        eta_cf = T["Xcf"] @ b + T["off"]
        se = np.sqrt(np.einsum("ij,jk,ik->i", T["Xcf"], V, T["Xcf"]))
        ci_lo, ci_hi = self._inv_link(eta_cf - q * se), self._inv_link(eta_cf + q * se)
        if self.family == "gaussian":
            pse = np.sqrt(se ** 2 + self.dispersion)
            pi_lo, pi_hi = eta_cf - q * pse, eta_cf + q * pse
        else:
            rng = np.random.default_rng([seed, 2])  # outcome noise: a stream apart from the coefficient draws
            draws = self._draws(n_sim, seed)
            mu = self._inv_link(T["Xcf"] @ draws.T + T["off"][:, None])
            ysim = self._sim_outcome(mu, rng)
            pi_lo, pi_hi = np.quantile(ysim, [alpha / 2, 1 - alpha / 2], axis=1)
        df = pd.DataFrame({
            "observed": T["y"],
            "fitted": self._inv_link(eta_fit),
            "counterfactual": self._inv_link(eta_cf),
            "cf_ci_low": ci_lo, "cf_ci_high": ci_hi, "cf_pi_low": pi_lo, "cf_pi_high": pi_hi,
            "post": T["tpos"] >= self.model.event_pos,
            "excluded": T["excluded"],
            "missing": T["missing"],
        }, index=self.model.frame.index.copy())
        if self.model.frame.offset is not None:
            bad = ~np.isfinite(self.model.frame.offset)
            df.loc[bad, ["fitted", "counterfactual", "cf_ci_low", "cf_ci_high", "cf_pi_low", "cf_pi_high"]] = np.nan
        if self.model.controls:
            # the treated series' own pre-event line extrapolated (all event terms zero, as
            # itsa's single-group counterfactual), next to the comparative counterfactual
            d = self.model.design
            Xpre = T["X"].copy()
            Xpre[:, [d.names.index(c) for c in ("level", "slope", "treated_level", "treated_slope")
                     if c in d.names]] = 0.0
            df["pretrend"] = self._inv_link(Xpre @ b + T["off"])
            df["control"] = np.nanmean(np.vstack(list(self.model.frame.controls.values())), axis=0) \
                if len(self.model.controls) > 1 else self.model.frame.controls[self.model.controls[0]]
        self._cache[key] = df
        return df.copy()

    @property
    def resid_pearson(self) -> pd.Series:
        """Pearson residuals of the treated series on the fitted periods."""
        d = self.model.design
        sel = d.fit & d.treated_rows
        mu = self._inv_link(d.X[sel] @ self.params.to_numpy() + d.log_offset[sel])
        y = d.y[sel]
        if self.family == "gaussian":
            r = (y - mu) / math.sqrt(self.dispersion)
        elif self.family == "negbin":
            r = (y - mu) / np.sqrt(mu + self.dispersion * mu ** 2)
        else:
            r = (y - mu) / np.sqrt(mu)
        return pd.Series(r, index=self.model.frame.index[d.tpos[sel]], name="pearson_residual")

    # ------------------------------------------------------------------ effects
    def effects(self, *, alpha: float = 0.05, recovery_share: float = 0.9, n_sim: int = 2000,
                seed: int = 0) -> dict[str, Any]:
        """Headline effects with intervals.

        Returns a dict with ``level`` (coefficient, CI, p-value; rate ratio and percentage
        change for count families), ``slope`` (per period), ``relative`` (observed /
        counterfactual - 1 over the post window), ``cumulative`` (observed minus
        counterfactual summed over the post window; negative = releases lost), and
        ``recovery`` (periods from the event until the deseasonalised fitted /
        counterfactual ratio first reaches ``recovery_share``). The relative and cumulative
        intervals come from one linear contrast (the summed counterfactual; delta method on
        the log scale for count families) with the fit's covariance and that contrast's
        critical value; the recovery interval from ``n_sim`` coefficient draws seeded by
        ``seed`` (:meth:`_draws`). The post window is every observed period from the event
        on, transition periods included.
        """
        if not 0 < recovery_share < 1:
            raise ParameterError("recovery_share", recovery_share, "must lie strictly between 0 and 1")
        key = ("eff", alpha, recovery_share, n_sim, seed)
        if key in self._cache:
            return copy.deepcopy(self._cache[key])  # callers may edit their copy, never the cache
        q_lo, q_hi = alpha / 2, 1 - alpha / 2
        ci = self.conf_int(alpha)
        count = self.family in COUNT_FAMILIES
        d = self.model.design
        out: dict[str, Any] = {"alpha": alpha, "n_sim": int(n_sim), "seed": int(seed),
                               "scale": "rate ratio" if count else "additive", "unit": self.model.frame.freq.unit}

        def coef_effect(term: str) -> dict[str, Any]:
            e = {"term": term, "estimate": float(self.params[term]), "std_error": float(self.std_errors[term]),
                 "ci_low": float(ci.loc[term, "lower"]), "ci_high": float(ci.loc[term, "upper"]),
                 "p_value": float(self.pvalues[term])}
            if count:
                e.update({"rate_ratio": math.exp(e["estimate"]), "rate_ratio_ci_low": math.exp(e["ci_low"]),
                          "rate_ratio_ci_high": math.exp(e["ci_high"]),
                          "pct": 100 * math.expm1(e["estimate"]), "pct_ci_low": 100 * math.expm1(e["ci_low"]),
                          "pct_ci_high": 100 * math.expm1(e["ci_high"])})
            return e

        out["level"] = coef_effect(d.headline["level"])
        out["slope"] = coef_effect(d.headline["slope"]) if "slope" in d.headline else None

        T = self._treated
        draws = self._draws(n_sim, seed)
        post = (T["tpos"] >= self.model.event_pos) & ~T["missing"]
        idx = self.model.frame.index
        obs = T["y"][post]
        b = self.params.to_numpy()
        V = self.cov_params.to_numpy()
        Xp = T["Xcf"][post]
        cf_hat = self._inv_link(Xp @ b + T["off"][post])
        S_obs, S_cf = float(obs.sum()), float(cf_hat.sum())
        post_dates = idx[T["tpos"][post]]
        out["post_window"] = {"start": post_dates[0] if len(post_dates) else None,
                              "end": post_dates[-1] if len(post_dates) else None,
                              "n_periods": int(np.sum(T["tpos"] >= self.model.event_pos)),
                              "n_observed": int(post.sum()),
                              "n_excluded": int(np.sum(post & T["excluded"]))}
        # The summed counterfactual through one linear contrast (exact for gaussian, the
        # delta method on the log scale for count families), so that its interval uses the
        # fit's own covariance and critical value, as every coefficient does.
        if count:
            c = (cf_hat @ Xp) / S_cf
            centre = math.log(S_cf)
        else:
            c = Xp.sum(axis=0)
            centre = S_cf
        se = float(np.sqrt(max(c @ V @ c, 0.0)))
        q = self.critical_value(c, alpha)
        cf_lo, cf_hi = (math.exp(centre - q * se), math.exp(centre + q * se)) if count else \
            (centre - q * se, centre + q * se)
        test_value = math.log(S_obs) if count and S_obs > 0 else (S_obs if not count else -math.inf)
        stat = (centre - test_value) / se if se > 0 and math.isfinite(test_value) else float("nan")
        p_rel = self._contrast_pvalue(c, stat)
        rel = S_obs / S_cf - 1.0
        with np.errstate(divide="ignore"):
            lo, hi = (S_obs / cf_hi - 1.0, S_obs / cf_lo - 1.0) if cf_lo > 0 else (S_obs / cf_hi - 1.0, math.inf)
        out["relative"] = {"estimate": rel, "ci_low": float(lo), "ci_high": float(hi),
                           "pct": 100 * rel, "pct_ci_low": 100 * float(lo), "pct_ci_high": 100 * float(hi),
                           "p_value": p_rel, "critical_value": q,
                           "observed_mean": S_obs / max(len(obs), 1), "counterfactual_mean": S_cf / max(len(obs), 1)}
        out["cumulative"] = {"observed": S_obs, "counterfactual": S_cf, "estimate": S_obs - S_cf,
                             "ci_low": S_obs - cf_hi, "ci_high": S_obs - cf_lo, "lost": S_cf - S_obs,
                             "lost_ci_low": cf_lo - S_obs, "lost_ci_high": cf_hi - S_obs,
                             "counterfactual_ci_low": cf_lo, "counterfactual_ci_high": cf_hi,
                             "note": ("confidence interval of the expected shortfall; no prediction interval is "
                                      "given because summed outcome noise depends on the residuals' "
                                      "autocorrelation, which the model does not describe")}
        out["recovery"] = self._recovery(recovery_share, draws, q_lo, q_hi)
        self._cache[key] = out
        return copy.deepcopy(out)

    def _recovery(self, share: float, draws: np.ndarray, q_lo: float, q_hi: float) -> dict[str, Any]:
        T = self._treated
        ev = self.model.event_pos
        postpos = T["tpos"] >= ev
        Xf, Xc = T["Xds"][postpos], T["Xds_cf"][postpos]
        K = int(postpos.sum())
        b = self.params.to_numpy()

        def ratio(B: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                if self.family == "gaussian":
                    cf = Xc @ B
                    r = (Xf @ B) / cf
                    return np.where(cf > 0, r, np.nan)
                return np.exp((Xf - Xc) @ B)

        r_hat = ratio(b)
        drop = bool(r_hat[0] < 1.0) if np.isfinite(r_hat[0]) else True
        target = share if drop else 1.0 / share

        def first_cross(r: np.ndarray) -> np.ndarray:
            hit = (r >= target) if drop else (r <= target)
            hit = np.where(np.isfinite(r), hit, False)
            anyhit = hit.any(axis=0)
            k = np.argmax(hit, axis=0).astype(float)
            return np.where(anyhit, k, np.inf)

        k_hat = float(first_cross(r_hat[:, None])[0])
        k_sim = first_cross(ratio(draws.T))
        lo, hi = np.quantile(k_sim, [q_lo, q_hi], method="inverted_cdf")
        idx = self.model.frame.index
        reached = bool(np.isfinite(k_hat))
        return {
            "share": share, "direction": "drop" if drop else "rise",
            "periods": int(k_hat) if reached else None,
            "date": idx[ev + int(k_hat)] if reached else None,
            "reached": reached,
            "ci_low": int(lo) if np.isfinite(lo) else None,
            "ci_high": int(hi) if np.isfinite(hi) else None,
            "ci_high_reached": bool(np.isfinite(hi)),
            "p_not_reached": float(np.mean(~np.isfinite(k_sim))),
            "horizon": K - 1,
            "ratio_at_event": float(r_hat[0]),
            "ratio_at_end": float(r_hat[-1]),
            "method": ("first period from the event at which the deseasonalised fitted/counterfactual ratio "
                       "reaches the share; interval from simulated coefficients; 'not reached' within the "
                       "observed post window counts as beyond the horizon"),
        }

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, Any]:
        """Residual autocorrelation (Ljung-Box, Breusch-Godfrey), dispersion, missing and excluded periods."""
        if "diag" in self._cache:
            return copy.deepcopy(self._cache["diag"])  # callers may edit their copy, never the cache
        from statsmodels.stats.diagnostic import acorr_ljungbox

        d = self.model.design
        sel = d.fit & d.treated_rows
        r = self.resid_pearson.to_numpy()
        n = len(r)
        lags = max(1, min(_DIAG_LAGS[self.model.frame.freq.kind], n // 5))
        lb = acorr_ljungbox(r, lags=[lags])
        lb_stat, lb_p = float(lb["lb_stat"].iloc[0]), float(lb["lb_pvalue"].iloc[0])
        # Breusch-Godfrey LM: regress residual on (weighted) design and lagged residuals (zeros before start)
        mu = self._inv_link(d.X[sel] @ self.params.to_numpy() + d.log_offset[sel])
        _, w, _ = score_weights(d.y[sel], mu, self.family, self._state.alpha)
        Xw = d.X[sel] * np.sqrt(w)[:, None]
        lagm = np.column_stack([np.r_[np.zeros(k), r[:-k]] for k in range(1, lags + 1)])
        Z = np.column_stack([Xw, lagm])
        coef = np.linalg.lstsq(Z, r, rcond=None)[0]
        e = r - Z @ coef
        r2 = 1 - np.sum(e ** 2) / np.sum((r - r.mean()) ** 2)
        bg_stat = float(n * r2)
        bg_p = float(stats.chi2.sf(bg_stat, lags))
        out: dict[str, Any] = {
            "ljung_box": {"lags": lags, "statistic": lb_stat, "p_value": lb_p},
            "breusch_godfrey": {"lags": lags, "statistic": bg_stat, "p_value": bg_p},
        }
        disp: dict[str, Any] = {"pearson_dispersion": self.pearson_dispersion}
        if self.family in COUNT_FAMILIES:
            # Cameron-Trivedi test of Poisson equidispersion, from a Poisson fit of the same design
            Xf, yf, off = d.X[d.fit], d.y[d.fit], d.log_offset[d.fit]
            ps = fit_model(Xf, yf, off, "poisson") if self.family != "poisson" else self._state
            mu_p = ps.mu
            aux = ((yf - mu_p) ** 2 - yf) / mu_p
            a = float(np.sum(aux * mu_p) / np.sum(mu_p ** 2))
            resid = aux - a * mu_p
            se = math.sqrt(np.sum(resid ** 2) / (len(yf) - 1) / np.sum(mu_p ** 2))
            tstat = a / se if se > 0 else float("inf")
            disp.update({"poisson_pearson_dispersion": float(np.sum((yf - mu_p) ** 2 / mu_p) / (len(yf) - Xf.shape[1])),
                         "cameron_trivedi_alpha": a, "cameron_trivedi_t": tstat,
                         "cameron_trivedi_p_value": float(stats.norm.sf(tstat))})
            if self.family == "negbin":
                lr = max(2 * (self._state.loglike - ps.loglike), 0.0)
                disp.update({"nb_alpha": self.dispersion, "lr_vs_poisson": lr,
                             "lr_vs_poisson_p_value": float(0.5 * stats.chi2.sf(lr, 1))})
        elif self.family == "gaussian":
            disp["sigma2"] = self.dispersion
        out["dispersion"] = disp
        idx = self.model.frame.index
        tr = d.treated_rows
        miss = idx[d.tpos[tr & d.missing]]
        out["n_missing"] = int(len(miss))
        out["missing"] = list(miss)
        exc = idx[d.tpos[tr & d.excluded]]
        out["n_excluded"] = int(len(exc))
        out["excluded"] = list(exc)
        if self.model.controls:
            out["control_missing"] = {c: list(idx[d.tpos[(d.group == g) & d.missing]])
                                      for g, c in enumerate(self.model.controls)}
        flags = []
        if lb_p < 0.05 or bg_p < 0.05:
            flags.append(f"residual autocorrelation (Ljung-Box p = {lb_p:.3g}, Breusch-Godfrey p = {bg_p:.3g}, "
                         f"{lags} lags)" + ("; consider cov_type='ewc'" if self.cov_type in ("robust", "nonrobust")
                                           else ""))
        if self.family == "poisson" and disp.get("cameron_trivedi_p_value", 1) < 0.05:
            flags.append(f"overdispersion under Poisson (Pearson dispersion {disp['poisson_pearson_dispersion']:.3g}); "
                         "consider family='negbin' or 'quasipoisson'")
        if not self.converged:
            flags.append("the fit did not converge")
        out["flags"] = flags
        self._cache["diag"] = out
        return copy.deepcopy(out)

    # ------------------------------------------------------------------ robustness
    def arima(self, order: tuple = (1, 0, 1), seasonal_order: tuple | None = None, *,
              alpha: float = 0.05):
        """Refit the same exogenous terms with ARMA errors: the robustness model.

        Gaussian: the outcome itself. Count families: log(y + 1) minus the log offset,
        so ``level`` approximates the log rate ratio. Missing and excluded periods are
        NaN (handled by the Kalman filter). Not available for comparative models.

        An ARMA ``(p, 0, q)`` order without seasonal terms (the default ARMA(1,1)) is
        :func:`raidstudy.models.its.arma.fit_arma_errors` (exact ML for the ARMA terms, the
        coefficients from the Kalman filter); differencing or seasonal terms go to statsmodels
        SARIMAX directly and return an :class:`ARIMAResults`.
        """
        from raidstudy.models.its.arma import _endog_exog, fit_arma_errors

        if seasonal_order is None and len(order) == 3 and order[1] == 0:
            return fit_arma_errors(self, order=tuple(order), alpha=alpha)
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        endog, X, _, transform, _ = _endog_exog(self)
        so = tuple(seasonal_order) if seasonal_order else (0, 0, 0, 0)
        mod = SARIMAX(endog, exog=X, order=tuple(order), seasonal_order=so, trend="n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mod.fit(disp=False, maxiter=200)
        params = pd.Series(np.asarray(res.params), index=list(res.model.param_names))
        bse = pd.Series(np.asarray(res.bse), index=params.index)
        return ARIMAResults(res, tuple(order), tuple(seasonal_order) if seasonal_order else None, self.family,
                            transform, params, bse, alpha)

    # ------------------------------------------------------------------ reporting
    def summary(self, *, alpha: float = 0.05) -> "ITSSummary":
        """Text / HTML / LaTeX summary naming the covariance estimator."""
        return ITSSummary(self, alpha=alpha)

    def estimates(self, alpha: float = 0.05) -> list[dict[str, Any]]:
        """Rows ``{term, estimate, std_error, ci_low, ci_high, p_value}`` in design order."""
        ci = self.conf_int(alpha)
        return [{"term": t, "estimate": float(self.params[t]), "std_error": float(self.std_errors[t]),
                 "ci_low": float(ci.loc[t, "lower"]), "ci_high": float(ci.loc[t, "upper"]),
                 "p_value": float(self.pvalues[t])} for t in self.params.index]

    def to_dict(self, *, alpha: float = 0.05, recovery_share: float = 0.9, n_sim: int = 2000,
                seed: int = 0) -> dict[str, Any]:
        """Everything ``results.json`` needs: ``model``, ``estimates``, ``effects``, ``diagnostics``."""
        m = self.model
        d = m.design
        tr = d.treated_rows
        idx = m.frame.index
        model = {
            "name": m.name, "outcome": m.outcome, "family": self.family,
            "cov_type": self.cov_type, "cov_description": self.cov_description,
            "maxlags": self.maxlags, "small_sample": self.small_sample, "prewhite": self.prewhite,
            "inference": ("fixed-b reference distribution simulated for the design" if self.reference is not None
                          else f"t({self.df_resid})" if self.use_t else "normal"),
            "ewc_terms": self.ewc_terms, "newey": self.newey,
            "critical_value_level": self.critical_value(d.headline["level"], alpha),
            "freq": m.frame.freq.code, "unit": m.frame.freq.unit,
            "event": idx[m.event_pos], "event_position": int(m.event_pos),
            "start": idx[0], "end": idx[-1],
            "n_pre": int(np.sum(d.fit & tr & (d.tpos < m.event_pos))),
            "n_post": int(np.sum(d.fit & tr & (d.tpos >= m.event_pos))),
            "nobs": self.nobs, "n_params": len(self.params), "df_resid": self.df_resid,
            "excluded": list(idx[d.tpos[tr & d.excluded]]),
            "missing": list(idx[d.tpos[tr & d.missing]]),
            "n_missing": int(np.sum(tr & d.missing)),
            "dispersion": self.dispersion,
            "dispersion_kind": {"gaussian": "sigma2", "poisson": "fixed at 1",
                                "quasipoisson": "Pearson X2/(n-p)", "negbin": "NB2 alpha (ML)"}[self.family],
            "terms": list(self.params.index), "formula": m.formula,
            "slope": m.slope, "dow": m.dow, "fourier": m.fourier,
            "holidays": [c for c in d.names if c.startswith("holiday")],
            "offset": m.offset, "control": m.controls or None, "comparative": bool(m.controls),
            "trend_origin": "0 at the first period", "loglike": self.loglike, "converged": bool(self.converged),
        }
        return {"model": model, "estimates": self.estimates(alpha),
                "effects": self.effects(alpha=alpha, recovery_share=recovery_share, n_sim=n_sim, seed=seed),
                "diagnostics": self.diagnostics()}

    def plot_fit(self, *, ax=None, alpha: float = 0.05):
        """Observed, fitted and counterfactual with bands; see :func:`raidstudy.report.plots.plot_fit`."""
        from raidstudy.report import plots

        return plots.plot_fit(results=self, alpha=alpha, ax=ax)

    def plot_diagnostics(self, **kwargs):
        """Residual diagnostics; see :func:`raidstudy.report.plots.plot_residuals`."""
        from raidstudy.report import plots

        return plots.plot_residuals(results=self, **kwargs)


class ITSSummary(SummaryDisplay):
    """Printable summary of :class:`ITSResults` (text, HTML in notebooks, LaTeX)."""

    def __init__(self, results: ITSResults, *, alpha: float = 0.05):
        self.results = results
        self.alpha = alpha

    def _header(self) -> list[tuple[str, str]]:
        r = self.results
        m = r.model
        d = m.design
        tr = d.treated_rows
        disp = {"gaussian": f"sigma^2 = {r.dispersion:.4g}", "poisson": "1 (fixed)",
                "quasipoisson": f"Pearson X2/(n-p) = {r.dispersion:.4g}",
                "negbin": f"NB2 alpha = {r.dispersion:.4g}"}[r.family]
        rows = [
            ("Model", f"ITS{' (comparative: vs ' + ', '.join(m.controls) + ')' if m.controls else ''}"
                      f"{' - ' + m.name if m.name else ''}"),
            ("Outcome", m.outcome), ("Family", r.family + (" (log link)" if r.family in COUNT_FAMILIES else "")),
            ("Event", format_label(r.event_label)), ("Frequency", m.frame.freq.unit),
            ("Periods (pre / post)", f"{int(np.sum(d.fit & tr & (d.tpos < m.event_pos)))} / "
                                     f"{int(np.sum(d.fit & tr & (d.tpos >= m.event_pos)))}"),
            ("Observations", str(r.nobs)),
            ("Missing / excluded", f"{int(np.sum(tr & d.missing))} / {int(np.sum(tr & d.excluded))}"),
            ("Covariance", r.cov_description), ("Dispersion", disp),
        ]
        return rows

    def table(self) -> pd.DataFrame:
        r = self.results
        ci = r.conf_int(self.alpha)
        lab = f"{100 * (1 - self.alpha):g}%"
        tlike = r.use_t or r.reference is not None
        df = pd.DataFrame({"coef": r.params, "std err": r.std_errors, "t" if tlike else "z": r.tvalues,
                           "P>|t|" if tlike else "P>|z|": r.pvalues,
                           f"[{lab}": ci["lower"], f"{lab}]": ci["upper"]})
        if r.family in COUNT_FAMILIES:
            df["exp(coef)"] = np.exp(r.params)
        return df

    def as_text(self) -> str:
        head = self._header()
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}} : {v}" for k, v in head]
        from raidstudy.report.tables import readable_number as num

        # numbers as people write them (1,927; 0.0001137; 4.62e-149), never 1.0872e+05
        tab = self.table().to_string(float_format=lambda x: num(x, 5))
        bar = "=" * max(len(line) for line in tab.splitlines() + lines)
        eff = self.results.effects(alpha=self.alpha)
        lvl = eff["level"]
        extra = [f"Level change: {num(lvl['estimate'])} [{num(lvl['ci_low'])}, {num(lvl['ci_high'])}]"]
        if "pct" in lvl:
            extra[0] += f"  = {lvl['pct']:+.1f}% [{lvl['pct_ci_low']:+.1f}%, {lvl['pct_ci_high']:+.1f}%]"
        rel = eff["relative"]
        extra.append(f"Relative effect over post window: {rel['pct']:+.1f}% [{rel['pct_ci_low']:+.1f}%, "
                     f"{rel['pct_ci_high']:+.1f}%]")
        cum = eff["cumulative"]
        extra.append(f"Cumulative effect: {num(cum['estimate'])} [{num(cum['ci_low'])}, {num(cum['ci_high'])}]")
        return "\n".join([bar, "Interrupted time series", bar, *lines, bar, tab, bar, *extra, bar])

    def as_latex(self, *, caption: str | None = None, label: str | None = None) -> str:
        from raidstudy.report.tables import to_latex

        cap = caption or f"Interrupted time series: {self.results.model.outcome}. Covariance: " \
                         f"{self.results.cov_description}."
        return to_latex(self.table(), caption=cap, label=label)
