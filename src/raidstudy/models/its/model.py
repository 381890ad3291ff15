"""The interrupted time-series model (:class:`ITS`) for one series, with optional controls.

The statistical core of raidstudy: segmented regression in the form of Stata's ``itsa``
and the GLM approach of Lopez Bernal, Cummins and Gasparrini (2017), for Gaussian and
count outcomes (Poisson, quasi-Poisson, negative binomial NB2), with Newey-West HAC
covariance, seasonality (day of week, annual Fourier pairs, named holidays), an
exposure offset, transition periods excluded from the fit, missing periods reported,
and CausalImpact-style counterfactual effects (relative, cumulative, recovery time).

See ``docs/its.md`` for the model, the options and the definitions of the effects.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.errors import ModelError, ParameterError
from raidstudy.models.its.covariance import covariance, nw_auto_lags, nw_plugin_lags
from raidstudy.models.its.data import SeriesFrame, normalize_data, resolve_dates, resolve_event
from raidstudy.models.its.design import Design, build_design, check_design
from raidstudy.models.its.fitting import fit_model, score_weights
from raidstudy.models.its.results import ITSResults
from raidstudy.models.its.critical import reference_for
from raidstudy.models.its.vocabulary import COUNT_FAMILIES, COV_ALIASES, COV_TYPES, EWC_TERMS, FAMILIES, ITSWarning

__all__ = ["ITS"]


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

    #: The results class :meth:`fit` returns (models with other event terms return their own).
    _results_class = ITSResults

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
        design = self._build_design()
        self.design: Design = check_design(design, family=family, frame=self.frame, event_pos=self.event_pos,
                                           dow=self.dow, fourier=self.fourier)

    def _build_design(self) -> Design:
        """The design matrix before its checks; subclasses with other event terms override this."""
        return build_design(self.frame, event_pos=self.event_pos, slope=self.slope, dow=self.dow,
                            fourier=self.fourier, holidays=self.holidays, excluded_pos=self.excluded_pos,
                            family=self.family)

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
    def fit(self, *, cov_type: str = "ewc", maxlags: int | str | None = None, small_sample: bool = False,
            use_t: bool | None = None, ewc_terms: int | None = None, seed: int = 0,
            **cov_config: Any) -> "ITSResults":
        r"""Estimate the model.

        Parameters
        ----------
        cov_type : {"ewc", "hac", "newey", "robust", "nonrobust"}
            ``ewc`` (default): equal-weighted cosine long-run variance with ``ewc_terms``
            cosine terms (for count models the GLM sandwich with EWC meat), with critical
            values and p-values from the fixed-b reference distribution simulated for this
            design (:mod:`raidstudy.models.its.critical`). Of the estimators measured on a
            simulator calibrated on the SPARKS series it is the one whose 95 % intervals
            cover about 95 % (``docs/coverage.md``).
            ``hac``: Newey-West HAC sandwich (Bartlett kernel) with normal (count
            families) or t (gaussian) critical values; autocovariances are taken between
            periods the given number of periods apart on the regular grid (missing and
            excluded periods contribute zero), within each series of a comparative model.
            ``newey``: Stata's ``newey``: ``hac`` with the ``n/(n-k)`` scaling and t(n-k).
            ``robust``: heteroskedasticity-robust sandwich (HC0; HC1 with ``small_sample``).
            ``nonrobust``: model-based (OLS / GLM information scaled by the dispersion:
            sigma^2, 1, Pearson X2/(n-p), 1). Spellings such as ``"HAC"`` are accepted.
        maxlags : int, "plugin" or "rule", optional
            HAC lags (``hac`` and ``newey``). ``None`` (or ``"plugin"``) picks them from the data with the
            Newey-West (1994) plug-in bandwidth for the Bartlett kernel (more lags when
            the scores are more autocorrelated; at most T/4); ``"rule"`` uses the rule of
            thumb floor(4 (T/100)^(2/9)); an integer fixes them. T is the number of fitted
            periods of the treated series.
        small_sample : bool
            Multiply the covariance by n/(n-k) and use t(n-k) for tests and
            intervals: with ``cov_type="hac"`` and the gaussian family this is
            exactly Stata's ``newey`` (and ``itsa``).
        use_t : bool, optional
            Reference distribution for tests and intervals of the non-EWC covariances:
            t(n-k) if True, the normal if False. The default (None) uses t for the gaussian
            family or with ``small_sample``, else the normal. ``use_t=True`` with a
            quasi-Poisson model and ``cov_type="nonrobust"`` gives the p-values of R's
            ``summary.glm``. EWC always uses its simulated reference distribution.
        ewc_terms : int, optional
            Cosine terms ``B`` of the EWC covariance: from 2 to half the fitted periods.
            Default: 6 (chosen by measurement, docs/coverage.md), or a quarter of the fitted periods when that is fewer.
        seed : int
            Seed of the simulated EWC reference distribution (the same seed gives the same
            critical values; the default 0 makes a fit reproducible without one).
        **cov_config
            ``kernel="bartlett"`` (the only kernel); ``prewhite=True`` for the
            Andrews-Monahan VAR(1)-prewhitened HAC (as R sandwich's ``prewhite``; off by
            default to match Stata and statsmodels). Other keys are errors.

        Returns
        -------
        ITSResults

        Notes
        -----
        Every covariance is a sandwich :math:`H^{-1} \hat\Omega H^{-1}` with :math:`H` the
        observed information and :math:`\hat\Omega` the estimate of the variance of the
        summed scores :math:`s_t = x_t u_t` (``nonrobust`` aside). EWC uses
        :math:`\hat\Omega = B^{-1} \sum_{j=1}^B \Lambda_j \Lambda_j'` with
        :math:`\Lambda_j = \sum_t \sqrt2 \cos(\pi j (t + 1/2) / T) s_t` on the regular grid.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from raidstudy import ITS
        >>> idx = pd.date_range("2020-01-01", periods=300, freq="D")
        >>> y = pd.Series(np.random.default_rng(3).poisson(80, 300), index=idx, name="y")
        >>> res = ITS(y, event="2020-08-01", family="poisson").fit()
        >>> res.cov_type, res.ewc_terms
        ('ewc', 6)
        """
        if not isinstance(cov_type, str) or cov_type.strip().lower() not in COV_ALIASES:
            raise ParameterError("cov_type", cov_type, "is not a supported covariance", accepted=COV_TYPES)
        cov_type = COV_ALIASES[cov_type.strip().lower()]
        if cov_type == "newey":
            cov_type, small_sample = "hac", True
            newey = True
        else:
            newey = False
        if use_t not in (None, True, False):
            raise ParameterError("use_t", use_t, "must be True, False or None (automatic)")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ParameterError("seed", seed, "must be a non-negative whole number")
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
        if cov_type == "ewc":
            if ewc_terms is None:
                # 8 terms for a few hundred periods; short series (30 years) get fewer, so
                # that each cosine still spans several periods.
                ewc_terms = int(min(EWC_TERMS, max(2, n_t // 4)))
            if not isinstance(ewc_terms, (int, np.integer)) or isinstance(ewc_terms, bool) \
                    or not 2 <= ewc_terms <= max(2, n_t // 2):
                raise ParameterError(
                    "ewc_terms", ewc_terms,
                    f"must be a whole number from 2 to {max(2, n_t // 2)} for {n_t} fitted periods",
                    hint=f"None (the default) picks min({EWC_TERMS}, T/4); use fewer terms for short series")
            if maxlags is not None:
                raise ParameterError("maxlags", maxlags, "applies to cov_type='hac' or 'newey', not 'ewc'",
                                     hint="the EWC covariance is tuned by ewc_terms")
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
                       prewhite=prewhite, ewc_terms=int(ewc_terms or EWC_TERMS))
        reference = None
        if cov_type == "ewc":
            reference = reference_for(Xf * np.sqrt(w)[:, None], d.tpos[d.fit], d.group[d.fit],
                                      n_terms=int(ewc_terms), seed=int(seed))
        return self._results_class(self, state, V, cov_type=cov_type, maxlags=maxlags, small_sample=bool(small_sample),
                          use_t=use_t, prewhite=prewhite, lag_rule=lag_rule or ("fixed" if cov_type == "hac" else None),
                          ewc_terms=int(ewc_terms) if cov_type == "ewc" else None, reference=reference, newey=newey)
