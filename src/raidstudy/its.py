"""Interrupted time series (ITS) for one series, with an optional control series.

The statistical core of raidstudy: segmented regression in the form of Stata's ``itsa``
and the GLM approach of Lopez Bernal, Cummins and Gasparrini (2017), for Gaussian and
count outcomes (Poisson, quasi-Poisson, negative binomial NB2), with Newey-West HAC
covariance, seasonality (day of week, annual Fourier pairs, named holidays), an
exposure offset, transition periods excluded from the fit, missing periods reported,
and CausalImpact-style counterfactual effects (relative, cumulative, recovery time).

See ``docs/its.md`` for the model, the options and the definitions of the effects.
"""
from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._its_core import (
    nw_plugin_lags,
    COUNT_FAMILIES,
    COV_TYPES,
    FAMILIES,
    Design,
    FitState,
    ITSWarning,
    SeriesFrame,
    build_design,
    check_design,
    covariance,
    fit_model,
    normalize_data,
    nw_auto_lags,
    resolve_dates,
    resolve_event,
    score_weights,
)
from .errors import ModelError, ParameterError

__all__ = ["ITS", "ITSResults", "ITSSummary", "ARIMAResults", "ITSWarning", "nw_auto_lags"]

_DIAG_LAGS = {"D": 14, "W": 8, "M": 12, "Q": 8, "Y": 5, "int": 5}


def format_label(x: Any) -> str:
    """A period label as text: ISO date for midnight timestamps, else ``str``."""
    if isinstance(x, pd.Timestamp):
        return x.date().isoformat() if x == x.normalize() else x.isoformat()
    return str(x)


class ITS:
    r"""Interrupted time-series model for one series (optionally against a control).

    Parameters
    ----------
    data : pandas.DataFrame or pandas.Series
        The series, indexed by date (``DatetimeIndex`` or ``PeriodIndex``) or by
        consecutive integer period labels (e.g. years). Absent periods and NaN
        outcomes are *missing*: they are left out of the fit and reported, never
        treated as zero.
    outcome : str, optional
        Column holding the outcome. Optional when ``data`` is a Series or a
        one-column frame.
    event : date-like, pandas.Period or int
        The event period (period 0). A date is mapped to the period containing it;
        an ``int`` is a grid position for dated series and a period label for an
        integer-indexed series.
    control : str or list of str, optional
        Control series column(s). Gives the comparative ITS of Stata's ``itsa``
        multiple-group model: the series are stacked and the treated-minus-control
        differences are the terms ``treated``, ``treated_trend``, ``treated_level``
        and ``treated_slope``. Several controls are stacked as separate series (as
        ``itsa`` does with all other panel units).
    family : {"negbin", "poisson", "quasipoisson", "gaussian"}
        Outcome family. Count families use a log link.
    freq : str, optional
        ``D``, ``W``, ``M``, ``Q`` or ``Y``. Inferred from a dated index; for an
        integer index it only names the unit.
    period_label : {"start", "end"}, optional
        Whether each date labels the first or the last day of its period. Default:
        inferred. Month, quarter and year ends are read as ends; a weekly index that
        carries a pandas anchored frequency (``W-SUN``, what ``resample("W")`` returns)
        is read as week *ends*, as pandas does, and any other weekly dates as week
        starts. The event falls in the period that contains its date.
    slope : bool
        Include the slope-change term (default True).
    dow : bool, optional
        Day-of-week effects (Monday is the reference). Default: True for daily data;
        requesting them for other frequencies is an error.
    fourier : int
        Number K of annual Fourier pairs on each period's position in the year at
        the series' own frequency (day of year / 365.25, ISO week / 52.18, month /
        12, quarter / 4).
    holidays : list of dates or dict of name -> dates, optional
        Indicator terms (``holiday`` or ``holiday_<name>``) for the periods holding
        those dates.
    offset : str, optional
        Exposure column (count families only); its logarithm enters with
        coefficient 1.
    exclude : int or list of dates
        Transition periods excluded from the fit: an ``int`` n excludes the event
        period and the n-1 periods after it; a list gives the dates. They are
        still predicted and count in the post window of the effects.
    name : str, optional
        Label for the model (used in summaries).

    Notes
    -----
    With period index :math:`t = 0, 1, \dots` from the first period and event
    period :math:`t_0`, the linear predictor is

    .. math::

        g(\mu_t) = \beta_0 + \beta_1 t + \beta_2 L_t + \beta_3 (t - t_0) L_t
                   + \sum_j \gamma_j s_{jt} + \log E_t,
        \qquad L_t = 1[t \ge t_0],

    with terms ``const``, ``trend``, ``level`` and ``slope`` (zero in the event
    period, so ``level`` is the jump at the event and ``slope`` the change of
    trend, as in ``itsa``), seasonal terms :math:`s_{jt}` and exposure
    :math:`E_t`. :math:`g` is the identity (gaussian) or the log (count
    families). For the comparative model each row also carries
    :math:`Z \in \{0, 1\}` (control, treated) and the terms
    :math:`Z, Zt, Z L_t, Z (t-t_0) L_t`.

    Negative binomial is NB2 (variance :math:`\mu + \alpha\mu^2`) with
    :math:`\alpha` estimated by maximum likelihood (alternating IRLS for
    :math:`\beta` and a profile ML step for :math:`\alpha`, as R's ``glm.nb``).
    Quasi-Poisson uses the Pearson :math:`X^2/(n-p)` dispersion.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy import ITS
    >>> idx = pd.date_range("2020-01-01", periods=200, freq="D")
    >>> rng = np.random.default_rng(1)
    >>> mu = 100 * np.exp(-0.5 * (np.arange(200) >= 120))
    >>> y = pd.Series(rng.poisson(mu), index=idx, name="releases")
    >>> res = ITS(y, event="2020-04-30", family="poisson", slope=False).fit()
    >>> round(float(np.exp(res.params["level"])), 1)
    0.6
    """

    def __init__(
        self,
        data: pd.DataFrame | pd.Series,
        *,
        outcome: str | None = None,
        event: Any,
        control: str | list[str] | None = None,
        family: str = "negbin",
        freq: str | None = None,
        slope: bool = True,
        dow: bool | None = None,
        fourier: int = 0,
        holidays: Any = None,
        offset: str | None = None,
        exclude: int | list[Any] = 0,
        name: str | None = None,
        period_label: str | None = None,
    ):
        if family not in FAMILIES:
            raise ParameterError("family", family, "is not a supported family", accepted=FAMILIES)
        if not isinstance(fourier, (int, np.integer)) or isinstance(fourier, bool) or fourier < 0:
            raise ParameterError("fourier", fourier, "must be a non-negative integer (number of annual pairs)")
        if offset is not None and family == "gaussian":
            raise ParameterError("offset", offset, "applies to count families only (log exposure)",
                                 hint="Model the rate outcome/exposure with family='gaussian', "
                                      "or use a count family with offset=")
        if offset is not None and control is not None:
            raise ParameterError("offset", offset, "cannot be combined with control= in this version",
                                 hint="Model rates, or fit the treated series alone with offset=")
        self.family = family
        self.slope = bool(slope)
        self.fourier = int(fourier)
        self.holidays = holidays
        self.offset = offset
        self.name = name
        self.frame: SeriesFrame = normalize_data(data, outcome=outcome, control=control, offset=offset, freq=freq,
                                                   period_label=period_label)
        self.outcome = self.frame.outcome
        self.controls = list(self.frame.controls)
        if dow is None:
            dow = self.frame.freq.kind == "D"
        elif dow and self.frame.freq.kind != "D":
            raise ParameterError("dow", dow, f"day-of-week effects need daily data; this series is "
                                             f"{self.frame.freq.unit}ly", hint="Set dow=False")
        self.dow = bool(dow)
        self.event_input = event
        self.event_pos = resolve_event(self.frame, event)
        n = len(self.frame.index)
        if isinstance(exclude, (int, np.integer)) and not isinstance(exclude, bool):
            if exclude < 0:
                raise ParameterError("exclude", exclude, "must be >= 0 periods or a list of dates")
            excl = np.arange(self.event_pos, min(self.event_pos + int(exclude), n))
        else:
            excl = resolve_dates(self.frame, exclude, "exclude")
        self.excluded_pos = excl
        design = build_design(self.frame, event_pos=self.event_pos, slope=self.slope, dow=self.dow,
                              fourier=self.fourier, holidays=holidays, excluded_pos=excl, family=family)
        self.design: Design = check_design(design, family=family, frame=self.frame, event_pos=self.event_pos,
                                           dow=self.dow, fourier=self.fourier)

    # ------------------------------------------------------------------ properties
    @property
    def exog_names(self) -> list[str]:
        """Term names in design order."""
        return list(self.design.names)

    @property
    def formula(self) -> str:
        """The model as a readable formula."""
        link = "log(E[y])" if self.family in COUNT_FAMILIES else "E[y]"
        terms = " + ".join(self.design.names)
        off = f" + log({self.offset})" if self.offset else ""
        return f"{link} = {terms}{off}"

    # ------------------------------------------------------------------ fit
    def fit(self, *, cov_type: str = "hac", maxlags: int | None = None, small_sample: bool = False,
            use_t: bool | None = None, **cov_config: Any) -> "ITSResults":
        """Estimate the model.

        Parameters
        ----------
        cov_type : {"hac", "robust", "nonrobust"}
            ``hac``: Newey-West HAC sandwich (Bartlett kernel), for count models the
            GLM sandwich with HAC meat; autocovariances are taken between periods the
            given number of periods apart on the regular grid (missing and excluded
            periods contribute zero), within each series of a comparative model.
            ``robust``: heteroskedasticity-robust sandwich (HC0; HC1 with
            ``small_sample``). ``nonrobust``: model-based (OLS / GLM information
            scaled by the dispersion: sigma^2, 1, Pearson X2/(n-p), 1).
        maxlags : int, "plugin" or "rule", optional
            HAC lags. ``None`` (or ``"plugin"``) picks them from the data with the
            Newey-West (1994) plug-in bandwidth for the Bartlett kernel (more lags when
            the scores are more autocorrelated; at most T/4); ``"rule"`` uses the rule of
            thumb floor(4 (T/100)^(2/9)); an integer fixes them. T is the number of fitted
            periods of the treated series.
        small_sample : bool
            Multiply the covariance by n/(n-k) and use t(n-k) for tests and
            intervals: with ``cov_type="hac"`` and the gaussian family this is
            exactly Stata's ``newey`` (and ``itsa``).
        use_t : bool, optional
            Reference distribution for tests and intervals: t(n-k) if True, the normal if
            False. The default (None) uses t for the gaussian family or with
            ``small_sample``, else the normal. ``use_t=True`` with a quasi-Poisson model and
            ``cov_type="nonrobust"`` gives the p-values of R's ``summary.glm``; the
            covariance itself is never rescaled by this option (statsmodels' ``use_t``).
        **cov_config
            ``kernel="bartlett"`` (the only kernel); ``prewhite=True`` for the
            Andrews-Monahan VAR(1)-prewhitened HAC (as R sandwich's ``prewhite``; off by
            default to match Stata and statsmodels). Other keys are errors.

        Returns
        -------
        ITSResults
        """
        if cov_type not in COV_TYPES:
            raise ParameterError("cov_type", cov_type, "is not a supported covariance", accepted=COV_TYPES)
        if use_t not in (None, True, False):
            raise ParameterError("use_t", use_t, "must be True, False or None (automatic)")
        kernel = cov_config.pop("kernel", "bartlett")
        if kernel != "bartlett":
            raise ParameterError("kernel", kernel, "is not supported", accepted=["bartlett"])
        prewhite = bool(cov_config.pop("prewhite", False))
        if prewhite and cov_type != "hac":
            raise ParameterError("prewhite", prewhite, f"applies to cov_type='hac' only, not {cov_type!r}")
        if cov_config:
            raise ParameterError("cov_config", sorted(cov_config), "has unknown keys",
                                 accepted=["kernel", "prewhite"])
        d = self.design
        Xf, yf, off = d.X[d.fit], d.y[d.fit], d.log_offset[d.fit]
        n, p = Xf.shape
        n_t = int(np.sum(d.fit & d.treated_rows))
        lag_rule = None
        if cov_type == "hac":
            if maxlags is None or maxlags == "plugin":
                lag_rule = "plugin"
            elif maxlags == "rule":
                lag_rule = "rule"
                maxlags = nw_auto_lags(n_t)
            if lag_rule != "plugin":
                if not isinstance(maxlags, (int, np.integer)) or isinstance(maxlags, bool) or maxlags < 0:
                    raise ParameterError("maxlags", maxlags,
                                         "must be a non-negative integer, 'rule', 'plugin' or None (automatic)")
                if maxlags >= n_t - p:
                    raise ParameterError(
                        "maxlags", maxlags,
                        f"is too large for {n_t} fitted periods and {p} terms (needs maxlags < {n_t - p})",
                        hint="Use fewer lags (None picks them from the data) or a longer series")
                maxlags = int(maxlags)
        elif maxlags is not None:
            raise ParameterError("maxlags", maxlags, f"applies to cov_type='hac' only, not {cov_type!r}")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            state = fit_model(Xf, yf, off, self.family)
        if not np.all(np.isfinite(state.params)):
            raise ModelError("the fit did not converge to finite estimates; check the series for long runs of "
                             "zeros or extreme values, or try family='quasipoisson'")
        if not state.converged:
            warnings.warn(f"the {self.family} fit did not converge after {state.n_iter} iterations; "
                          "estimates may be inaccurate", ITSWarning, stacklevel=2)
        u, w, h = score_weights(yf, state.mu, self.family, state.alpha)
        if lag_rule == "plugin":
            # Bandwidth from the scores' own autocorrelation (Newey-West 1994), capped so
            # that the kernel never spans more than a quarter of the series.
            maxlags = nw_plugin_lags(Xf * u[:, None], d.tpos[d.fit], d.group[d.fit], len(self.frame.index), n_t,
                                     max_lags=max(1, min(n_t - p - 1, n_t // 4)))
        V = covariance(Xf, u, w, h, cov_type=cov_type, maxlags=maxlags or 0, small_sample=small_sample,
                       scale=state.scale, tpos=d.tpos[d.fit], group=d.group[d.fit], n_grid=len(self.frame.index),
                       prewhite=prewhite)
        res = ITSResults(self, state, V, cov_type=cov_type, maxlags=maxlags, small_sample=bool(small_sample),
                         use_t=use_t)
        res.prewhite = prewhite
        res.lag_rule = lag_rule or ("fixed" if cov_type == "hac" else None)
        return res


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
                 small_sample: bool, use_t: bool | None = None):
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
        self.use_t = bool(self.family == "gaussian" or small_sample) if use_t is None else bool(use_t)
        if self.use_t:
            self.pvalues = pd.Series(2 * stats.t.sf(np.abs(self.tvalues), self.df_resid), index=names, name="p_value")
        else:
            self.pvalues = pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=names, name="p_value")
        if self.family == "negbin":
            self.dispersion = float(state.alpha)
        else:
            self.dispersion = float(state.scale)
        self.pearson_dispersion = float(state.pearson_chi2 / self.df_resid)
        self.loglike = state.loglike
        self.converged = state.converged
        self.prewhite = False
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
        if self.cov_type == "hac":
            lags = f"{self.maxlags} lag" + ("" if self.maxlags == 1 else "s")
            rule = getattr(self, "lag_rule", None)
            if rule == "plugin":
                lags += " (Newey-West 1994 plug-in bandwidth)"
            elif rule == "rule":
                lags += " (rule of thumb 4(T/100)^(2/9))"
            kind = "Newey-West HAC" if self.family == "gaussian" else "GLM sandwich with Newey-West HAC meat"
            within = ", within each series" if self.model.controls else ""
            pw = ", VAR(1) prewhitening" if self.prewhite else ""
            return f"{kind}, {lags}, Bartlett kernel{pw}{within}{ss}"
        if self.cov_type == "robust":
            hc = "HC1" if self.small_sample else "HC0"
            return f"heteroskedasticity-robust sandwich ({hc})"
        base = {"gaussian": "classical OLS (sigma^2 (X'X)^-1)",
                "poisson": "model-based Poisson (inverse Fisher information)",
                "quasipoisson": "model-based quasi-Poisson (Fisher information scaled by Pearson X2/(n-p))",
                "negbin": "model-based negative binomial (inverse Fisher information)"}[self.family]
        return base + ss

    def _crit(self, alpha: float) -> float:
        if not 0 < alpha < 1:
            raise ParameterError("alpha", alpha, "must lie strictly between 0 and 1")
        if self.use_t:
            return float(stats.t.ppf(1 - alpha / 2, self.df_resid))
        return float(stats.norm.ppf(1 - alpha / 2))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals for the coefficients (columns ``lower``, ``upper``)."""
        q = self._crit(alpha)
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
        analytic; count families: simulated from N(beta, V) and the outcome distribution,
        seeded).
        """
        key = ("pred", alpha, n_sim, seed)
        if key in self._cache:
            return self._cache[key].copy()
        T = self._treated
        b = self.params.to_numpy()
        V = self.cov_params.to_numpy()
        q = self._crit(alpha)
        eta_fit = T["X"] @ b + T["off"]
        eta_cf = T["Xcf"] @ b + T["off"]
        se = np.sqrt(np.einsum("ij,jk,ik->i", T["Xcf"], V, T["Xcf"]))
        ci_lo, ci_hi = self._inv_link(eta_cf - q * se), self._inv_link(eta_cf + q * se)
        if self.family == "gaussian":
            pse = np.sqrt(se ** 2 + self.dispersion)
            pi_lo, pi_hi = eta_cf - q * pse, eta_cf + q * pse
        else:
            rng = np.random.default_rng(seed)
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
        counterfactual summed over the post window; negative = releases lost; ``ci`` from
        parameter uncertainty, ``pi`` adding outcome noise), and ``recovery`` (periods
        from the event until the deseasonalised fitted / counterfactual ratio first
        reaches ``recovery_share``). Intervals other than the level and slope ones are
        simulated from N(beta, V) with ``seed``. The post window is every observed period
        from the event on, transition periods included.
        """
        if not 0 < recovery_share < 1:
            raise ParameterError("recovery_share", recovery_share, "must lie strictly between 0 and 1")
        key = ("eff", alpha, recovery_share, n_sim, seed)
        if key in self._cache:
            return self._cache[key]
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
        rng = np.random.default_rng([seed, 1])
        post = (T["tpos"] >= self.model.event_pos) & ~T["missing"]
        idx = self.model.frame.index
        obs = T["y"][post]
        b = self.params.to_numpy()
        cf_hat = self._inv_link(T["Xcf"][post] @ b + T["off"][post])
        cf_sim = self._inv_link(T["Xcf"][post] @ draws.T + T["off"][post][:, None])  # (n_post, n_sim)
        S_obs, S_cf = float(obs.sum()), float(cf_hat.sum())
        S_cf_sim = cf_sim.sum(axis=0)
        ysim = self._sim_outcome(cf_sim, rng).sum(axis=0)
        post_dates = idx[T["tpos"][post]]
        out["post_window"] = {"start": post_dates[0] if len(post_dates) else None,
                              "end": post_dates[-1] if len(post_dates) else None,
                              "n_periods": int(np.sum(T["tpos"] >= self.model.event_pos)),
                              "n_observed": int(post.sum()),
                              "n_excluded": int(np.sum(post & T["excluded"]))}
        rel_sim = S_obs / S_cf_sim - 1.0
        rel = S_obs / S_cf - 1.0
        lo, hi = np.quantile(rel_sim, [q_lo, q_hi])
        out["relative"] = {"estimate": rel, "ci_low": float(lo), "ci_high": float(hi),
                           "pct": 100 * rel, "pct_ci_low": 100 * float(lo), "pct_ci_high": 100 * float(hi),
                           "observed_mean": S_obs / max(len(obs), 1), "counterfactual_mean": S_cf / max(len(obs), 1)}
        cum_sim = S_obs - S_cf_sim
        clo, chi = np.quantile(cum_sim, [q_lo, q_hi])
        plo, phi = np.quantile(S_obs - ysim, [q_lo, q_hi])
        out["cumulative"] = {"observed": S_obs, "counterfactual": S_cf, "estimate": S_obs - S_cf,
                             "ci_low": float(clo), "ci_high": float(chi), "pi_low": float(plo),
                             "pi_high": float(phi), "lost": S_cf - S_obs,
                             "lost_ci_low": float(-chi), "lost_ci_high": float(-clo)}
        out["recovery"] = self._recovery(recovery_share, draws, q_lo, q_hi)
        self._cache[key] = out
        return out

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
            return self._cache["diag"]
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
                         f"{lags} lags)" + ("" if self.cov_type == "hac" else "; consider cov_type='hac'"))
        if self.family == "poisson" and disp.get("cameron_trivedi_p_value", 1) < 0.05:
            flags.append(f"overdispersion under Poisson (Pearson dispersion {disp['poisson_pearson_dispersion']:.3g}); "
                         "consider family='negbin' or 'quasipoisson'")
        if not self.converged:
            flags.append("the fit did not converge")
        out["flags"] = flags
        self._cache["diag"] = out
        return out

    # ------------------------------------------------------------------ robustness
    def arima(self, order: tuple = (1, 0, 0), seasonal_order: tuple | None = None, *,
              alpha: float = 0.05) -> ARIMAResults:
        """Refit the same exogenous terms with ARIMA errors (statsmodels SARIMAX).

        Gaussian: the outcome itself. Count families: log(y + 1) minus the log offset,
        so ``level`` approximates the log rate ratio. Missing and excluded periods are
        NaN (handled by the Kalman filter). Not available for comparative models.
        """
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        if self.model.controls:
            raise ModelError("arima() is not available for a comparative (control=) model; "
                             "fit the treated series alone for the ARIMA robustness check")
        d = self.model.design
        tr = d.treated_rows
        y = d.y[tr].copy()
        usable = d.fit[tr]
        if self.family in COUNT_FAMILIES:
            endog = np.log1p(y) - d.log_offset[tr]
            transform = "log(y + 1) - log(offset)" if self.model.offset else "log(y + 1)"
        else:
            endog = y
            transform = "identity"
        endog = np.where(usable, endog, np.nan)
        X = pd.DataFrame(d.X[tr], columns=d.names)
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
            "inference": f"t({self.df_resid})" if self.use_t else "normal",
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
        """Observed, fitted and counterfactual with bands; see :func:`raidstudy.plots.plot_fit`."""
        from . import plots

        return plots.plot_fit(results=self, alpha=alpha, ax=ax)

    def plot_diagnostics(self, **kwargs):
        """Residual diagnostics; see :func:`raidstudy.plots.plot_residuals`."""
        from . import plots

        return plots.plot_residuals(results=self, **kwargs)


class ITSSummary:
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
        df = pd.DataFrame({"coef": r.params, "std err": r.std_errors, "t" if r.use_t else "z": r.tvalues,
                           "P>|t|" if r.use_t else "P>|z|": r.pvalues,
                           f"[{lab}": ci["lower"], f"{lab}]": ci["upper"]})
        if r.family in COUNT_FAMILIES:
            df["exp(coef)"] = np.exp(r.params)
        return df

    def as_text(self) -> str:
        head = self._header()
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}} : {v}" for k, v in head]
        tab = self.table().to_string(float_format=lambda x: f"{x:.5g}")
        bar = "=" * max(len(line) for line in tab.splitlines() + lines)
        eff = self.results.effects(alpha=self.alpha)
        lvl = eff["level"]
        extra = [f"Level change: {lvl['estimate']:.4g} [{lvl['ci_low']:.4g}, {lvl['ci_high']:.4g}]"]
        if "pct" in lvl:
            extra[0] += f"  = {lvl['pct']:+.1f}% [{lvl['pct_ci_low']:+.1f}%, {lvl['pct_ci_high']:+.1f}%]"
        rel = eff["relative"]
        extra.append(f"Relative effect over post window: {rel['pct']:+.1f}% [{rel['pct_ci_low']:+.1f}%, "
                     f"{rel['pct_ci_high']:+.1f}%]")
        cum = eff["cumulative"]
        extra.append(f"Cumulative effect: {cum['estimate']:.5g} [{cum['ci_low']:.5g}, {cum['ci_high']:.5g}]")
        return "\n".join([bar, "Interrupted time series", bar, *lines, bar, tab, bar, *extra, bar])

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        head = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self._header())
        tab = self.table().to_html(float_format=lambda x: f"{x:.5g}", border=0)
        return f"<div><table>{head}</table>{tab}</div>"

    def as_latex(self, *, caption: str | None = None, label: str | None = None) -> str:
        from .tables import to_latex

        cap = caption or f"Interrupted time series: {self.results.model.outcome}. Covariance: " \
                         f"{self.results.cov_description}."
        return to_latex(self.table(), caption=cap, label=label)
