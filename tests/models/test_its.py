"""ITS engine: API, design conventions, effects, results surface, bad input."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from raidstudy import ITS, ITSResults
from raidstudy.io import dumps_json
from raidstudy.models.simulate import simulate_its
from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.its import ITSWarning, nw_auto_lags


@pytest.fixture(scope="module")
def daily():
    return simulate_its(family="negbin", n=500, event=350, seed=7)


@pytest.fixture(scope="module")
def res_nb(daily):
    return ITS(daily, outcome="y", event=daily.index[350], family="negbin", fourier=1).fit()


# ------------------------------------------------------------------ design conventions
def test_design_terms_follow_itsa_convention(daily):
    m = ITS(daily, outcome="y", event=daily.index[350], family="poisson", dow=False)
    X = pd.DataFrame(m.design.X, columns=m.design.names, index=daily.index)
    assert m.exog_names == ["const", "trend", "level", "slope"]
    assert X["trend"].iloc[0] == 0 and X["trend"].iloc[-1] == len(daily) - 1
    assert X["level"].iloc[349] == 0 and X["level"].iloc[350] == 1
    # slope is zero in the event period and counts periods since the event afterwards
    assert X["slope"].iloc[350] == 0 and X["slope"].iloc[351] == 1 and X["slope"].iloc[:350].eq(0).all()


def test_dow_default_daily_and_terms(daily):
    m = ITS(daily, outcome="y", event=daily.index[350])
    assert m.dow and [c for c in m.exog_names if c.startswith("dow_")] == [
        "dow_Tue", "dow_Wed", "dow_Thu", "dow_Fri", "dow_Sat", "dow_Sun"]
    m2 = ITS(daily, outcome="y", event=daily.index[350], slope=False, dow=False, fourier=2)
    assert m2.exog_names == ["const", "trend", "level", "fourier_sin1", "fourier_cos1",
                             "fourier_sin2", "fourier_cos2"]


def test_monthly_fourier_is_month_of_year():
    idx = pd.period_range("2002-01", periods=48, freq="M")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.poisson(100, 48).astype(float)}, index=idx)
    m = ITS(df, outcome="y", event="2004-01", family="poisson", fourier=1)
    X = pd.DataFrame(m.design.X, columns=m.design.names)
    month = np.asarray(idx.month)
    np.testing.assert_allclose(X["fourier_sin1"], np.sin(2 * np.pi * month / 12))
    np.testing.assert_allclose(X["fourier_cos1"], np.cos(2 * np.pi * month / 12))
    assert m.frame.freq.kind == "M" and not m.dow


@pytest.mark.parametrize("freq,periods", [("W-MON", 120), ("MS", 60), ("ME", 60), ("QS", 40), ("YS", 30)])
def test_frequencies(freq, periods):
    idx = pd.date_range("1990-01-01", periods=periods, freq=freq)
    rng = np.random.default_rng(1)
    t = np.arange(periods)
    y = 50 + 0.1 * t - 8 * (t >= periods // 2) + rng.normal(0, 1, periods)
    r = ITS(pd.Series(y, index=idx, name="y"), event=idx[periods // 2], family="gaussian").fit()
    assert r.params["level"] == pytest.approx(-8, abs=2.0)
    p = r.predictions()
    assert p.index.equals(idx)  # the user's own dates (period start or end) are kept


def test_integer_index_years():
    years = np.arange(1970, 2001)
    y = 120 - 2 * (years - 1970) - 15 * (years >= 1989) + np.random.default_rng(2).normal(0, 1, len(years))
    r = ITS(pd.Series(y, index=years), event=1989, family="gaussian", freq="Y").fit(cov_type="hac", maxlags=1)
    assert r.model.event_pos == 19
    assert r.to_dict()["model"]["event"] == 1989
    assert r.model.frame.freq.unit == "year"


# ------------------------------------------------------------------ missing, excluded, holidays
def test_missing_periods_reported_and_not_zero(daily):
    d = daily.drop(daily.index[[10, 11, 12]]).copy()
    d.loc[d.index[100], "y"] = np.nan
    r = ITS(d, outcome="y", event=daily.index[350], family="negbin").fit()
    diag = r.diagnostics()
    assert diag["n_missing"] == 4
    assert pd.Timestamp(daily.index[10]) in diag["missing"]
    p = r.predictions()
    assert len(p) == len(daily) and p["missing"].sum() == 4
    assert np.isnan(p.loc[daily.index[11], "observed"])
    assert r.nobs == len(daily) - 4


def test_exclude_transition_periods(daily):
    ev = daily.index[350]
    r = ITS(daily, outcome="y", event=ev, family="negbin", exclude=2).fit()
    assert r.nobs == len(daily) - 2
    p = r.predictions()
    assert list(p.index[p["excluded"]]) == [daily.index[350], daily.index[351]]
    r2 = ITS(daily, outcome="y", event=ev, family="negbin", exclude=[daily.index[350], daily.index[351]]).fit()
    pd.testing.assert_series_equal(r.params, r2.params)
    eff = r.effects(n_sim=200)
    assert eff["post_window"]["n_excluded"] == 2  # transition periods count in the post window


def test_holidays_list_and_dict(daily):
    hol = [daily.index[40], daily.index[200]]
    m = ITS(daily, outcome="y", event=daily.index[350], holidays=hol)
    assert "holiday" in m.exog_names
    m2 = ITS(daily, outcome="y", event=daily.index[350], holidays={"New Year": ["2018-01-01", "2019-01-01"]})
    assert "holiday_New_Year" in m2.exog_names
    X = pd.DataFrame(m2.design.X, columns=m2.design.names, index=daily.index)
    assert X["holiday_New_Year"].sum() == 2


def test_holiday_outside_fit_is_dropped_with_warning(daily):
    with pytest.warns(ITSWarning, match="never occur"):
        m = ITS(daily, outcome="y", event=daily.index[350], holidays={"x": ["2030-01-01"]})
    assert "holiday_x" not in m.exog_names


def test_offset_enters_with_coefficient_one():
    rng = np.random.default_rng(5)
    n = 300
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    expo = rng.uniform(50, 150, n)
    t = np.arange(n)
    y = rng.poisson(expo * np.exp(-1 + -0.3 * (t >= 200)))
    df = pd.DataFrame({"y": y, "expo": expo}, index=idx)
    r = ITS(df, outcome="y", event=idx[200], family="poisson", offset="expo", dow=False, slope=False).fit()
    assert r.params["const"] == pytest.approx(-1, abs=0.05)
    assert r.params["level"] == pytest.approx(-0.3, abs=0.05)


# ------------------------------------------------------------------ results surface
def test_results_surface(res_nb):
    r = res_nb
    assert isinstance(r, ITSResults)
    for s in (r.params, r.std_errors, r.pvalues, r.tvalues):
        assert isinstance(s, pd.Series) and list(s.index) == r.model.exog_names
    ci = r.conf_int(alpha=0.1)
    assert list(ci.columns) == ["lower", "upper"] and (ci["lower"] < r.params).all()
    assert r.family == "negbin" and r.cov_type == "ewc" and r.ewc_terms == 6
    assert r.cov_description.startswith("GLM sandwich with EWC")
    assert r.dispersion > 0
    h = r.model.fit(cov_type="HAC", maxlags="rule")  # statsmodels' spelling is accepted
    assert h.cov_type == "hac" and f"{nw_auto_lags(r.nobs)} lags" in h.cov_description


def test_nw_auto_lag_rule():
    assert nw_auto_lags(100) == 4
    assert nw_auto_lags(1096) == 6
    assert nw_auto_lags(31) == 3


def test_predictions_columns_and_counterfactual(res_nb):
    p = res_nb.predictions()
    assert list(p.columns) == ["observed", "fitted", "counterfactual", "cf_ci_low", "cf_ci_high",
                               "cf_pi_low", "cf_pi_high", "post", "excluded", "missing"]
    pre = ~p["post"]
    np.testing.assert_allclose(p.loc[pre, "fitted"], p.loc[pre, "counterfactual"])
    post = p[p["post"]]
    assert (post["cf_ci_low"] <= post["counterfactual"]).all() and (post["counterfactual"] <= post["cf_ci_high"]).all()
    assert (post["cf_pi_low"] <= post["cf_ci_low"] + 1).all() and (post["cf_pi_high"] >= post["cf_ci_high"] - 1).all()
    # the fitted/counterfactual ratio in a log-link model is exp(level + slope * k)
    k = np.arange(len(post))
    np.testing.assert_allclose(post["fitted"] / post["counterfactual"],
                               np.exp(res_nb.params["level"] + res_nb.params["slope"] * k), rtol=1e-10)


def test_effects_structure_and_consistency(res_nb):
    e = res_nb.effects(n_sim=500, seed=3)
    L = e["level"]
    assert L["rate_ratio"] == pytest.approx(np.exp(res_nb.params["level"]))
    assert L["pct"] == pytest.approx(100 * (np.exp(res_nb.params["level"]) - 1))
    assert L["pct_ci_low"] < L["pct"] < L["pct_ci_high"]
    rel, cum = e["relative"], e["cumulative"]
    assert rel["ci_low"] < rel["estimate"] < rel["ci_high"]
    assert cum["estimate"] == pytest.approx(cum["observed"] - cum["counterfactual"])
    assert "pi_low" not in cum  # no prediction interval for a sum of autocorrelated outcomes
    assert cum["counterfactual_ci_low"] < cum["counterfactual"] < cum["counterfactual_ci_high"]
    assert rel["estimate"] == pytest.approx(cum["observed"] / cum["counterfactual"] - 1)
    rec = e["recovery"]
    assert rec["direction"] == "drop" and rec["share"] == 0.9
    # closed form, whether or not the ratio exp(level + slope k) reaches 0.9 within the window
    ratio = np.exp(res_nb.params["level"] + res_nb.params["slope"] * np.arange(rec["horizon"] + 1))
    assert rec["ratio_at_event"] == pytest.approx(ratio[0]) and rec["ratio_at_end"] == pytest.approx(ratio[-1])
    hit = np.flatnonzero(ratio >= 0.9)
    assert rec["reached"] is bool(hit.size)
    assert rec["periods"] == (int(hit[0]) if hit.size else None)


def test_recovery_matches_closed_form():
    d = simulate_its(family="poisson", n=600, event=300, level=-1.0, slope=0.004, ar=0.0, noise_sd=0.0, seed=1)
    r = ITS(d, outcome="y", event=d.index[300], family="poisson").fit()
    e = r.effects(recovery_share=0.8, n_sim=400)
    b = r.params
    k_star = int(np.ceil((np.log(0.8) - b["level"]) / b["slope"]))
    assert e["recovery"]["periods"] == k_star
    assert e["recovery"]["ci_low"] <= k_star <= e["recovery"]["ci_high"]


def test_recovery_not_reached_without_slope(daily):
    r = ITS(daily, outcome="y", event=daily.index[350], slope=False).fit()
    rec = r.effects(n_sim=200)["recovery"]
    assert rec["reached"] is False and rec["periods"] is None
    assert r.effects(n_sim=200)["slope"] is None


def test_to_dict_is_deterministic_and_json_stable(daily):
    kw = dict(outcome="y", event=daily.index[350], family="negbin", fourier=1)
    a = dumps_json(ITS(daily, **kw).fit().to_dict(n_sim=300, seed=1))
    b = dumps_json(ITS(daily, **kw).fit().to_dict(n_sim=300, seed=1))
    assert a == b
    d = json.loads(a)
    assert set(d) == {"model", "estimates", "effects", "diagnostics"}
    assert [row["term"] for row in d["estimates"]][:4] == ["const", "trend", "level", "slope"]
    assert set(d["estimates"][0]) == {"term", "estimate", "std_error", "ci_low", "ci_high", "p_value"}
    for key in ("family", "cov_type", "cov_description", "maxlags", "small_sample", "freq", "event",
                "n_pre", "n_post", "nobs", "excluded", "missing", "dispersion", "terms", "formula"):
        assert key in d["model"]
    c = dumps_json(ITS(daily, **kw).fit().to_dict(n_sim=300, seed=2))
    assert c != a  # the seed matters


def test_summary_text_html_latex(res_nb):
    s = res_nb.summary()
    txt = str(s)
    assert "EWC (equal-weighted cosine)" in txt and "6 cosine terms" in txt and "fixed-b" in txt and "level" in txt
    assert "<table>" in s._repr_html_()
    tex = s.as_latex()
    assert "\\toprule" in tex and "\\bottomrule" in tex


def test_cov_types_and_small_sample(daily):
    m = ITS(daily, outcome="y", event=daily.index[350], family="gaussian")
    r0 = m.fit(cov_type="nonrobust")
    r1 = m.fit(cov_type="robust")
    r2 = m.fit(cov_type="hac", maxlags=3)
    r3 = m.fit(cov_type="hac", maxlags=3, small_sample=True)
    pd.testing.assert_series_equal(r0.params, r2.params)
    n, k = r2.nobs, len(r2.params)
    np.testing.assert_allclose(r3.std_errors, r2.std_errors * np.sqrt(n / (n - k)))
    assert "classical" in r0.cov_description and "HC0" in r1.cov_description
    assert "Stata" in r3.cov_description and "3 lags" in r3.cov_description


def test_comparative_model_terms_and_counterfactual():
    rng = np.random.default_rng(11)
    n, ev = 400, 250
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    t = np.arange(n)
    ctrl = rng.poisson(np.exp(4 + 0.001 * t - 0.1 * (t >= ev)))
    trt = rng.poisson(np.exp(4.2 + 0.001 * t - 0.6 * (t >= ev)))
    df = pd.DataFrame({"trt": trt, "ctrl": ctrl}, index=idx).astype(float)
    r = ITS(df, outcome="trt", control="ctrl", event=idx[ev], family="poisson", dow=False).fit()
    assert r.model.exog_names == ["const", "trend", "level", "slope", "treated", "treated_trend",
                                  "treated_level", "treated_slope"]
    assert r.params["treated_level"] == pytest.approx(-0.5, abs=0.08)
    e = r.effects(n_sim=200)
    assert e["level"]["term"] == "treated_level"
    p = r.predictions()
    assert "control" in p
    post = p[p["post"]]
    k = np.arange(len(post))
    np.testing.assert_allclose(post["fitted"] / post["counterfactual"],
                               np.exp(r.params["treated_level"] + r.params["treated_slope"] * k), rtol=1e-9)
    assert "within each series" in r.cov_description


def test_arima_robustness(res_nb):
    a = res_nb.arima(order=(1, 0, 0))
    lv = a.level()
    assert lv["ci_low"] < lv["estimate"] < lv["ci_high"]
    assert abs(lv["estimate"] - res_nb.params["level"]) < 0.3
    assert "rate_ratio" in lv
    d = a.to_dict()
    assert d["order"] == [1, 0, 0] and "aic" in d


# ------------------------------------------------------------------ bad input
def _series(values, start="2020-01-01"):
    return pd.Series(np.asarray(values, dtype=float),
                     index=pd.date_range(start, periods=len(values), freq="D"), name="y")


@pytest.mark.parametrize("value", [0.0, 5.0])
def test_constant_or_all_zero_series(value):
    s = _series(np.full(100, value))
    with pytest.raises(ModelError, match="all zero" if value == 0 else "constant"):
        ITS(s, event=s.index[50], family="poisson")


def test_negative_counts():
    s = _series(np.r_[np.arange(50), -np.arange(1, 51)])
    with pytest.raises(DataError, match="negative"):
        ITS(s, event=s.index[50], family="negbin")
    ITS(s, event=s.index[50], family="gaussian")  # fine for a signed outcome


def test_non_integer_counts_with_poisson():
    s = _series(np.random.default_rng(0).uniform(1, 10, 100))
    with pytest.raises(DataError, match="integer counts.*quasipoisson"):
        ITS(s, event=s.index[50], family="poisson")
    ITS(s, event=s.index[50], family="quasipoisson")  # allowed


def test_too_few_periods_for_seasonality():
    s = _series(np.random.default_rng(0).poisson(20, 10))
    with pytest.raises(DataError, match="day-of-week"):
        ITS(s, event=s.index[5], family="poisson")
    s2 = _series(np.random.default_rng(0).poisson(20, 200))
    with pytest.raises(DataError, match="full year"):
        ITS(s2, event=s2.index[100], family="poisson", fourier=2)
    idx = pd.period_range("2000-01", periods=60, freq="M")
    m = pd.Series(np.random.default_rng(0).poisson(20, 60).astype(float), index=idx)
    with pytest.raises(ParameterError, match="too many harmonics"):
        ITS(m, event="2002-06", family="poisson", fourier=6)
    with pytest.raises(ParameterError, match="daily"):
        ITS(m, event="2002-06", family="poisson", dow=True)


def test_too_few_periods_for_lag():
    s = _series(np.random.default_rng(0).poisson(20, 30))
    m = ITS(s, event=s.index[15], family="poisson", dow=False)
    with pytest.raises(ParameterError, match="maxlags"):
        m.fit(cov_type="hac", maxlags=40)


def test_singular_design_identical_control():
    rng = np.random.default_rng(0)
    idx = pd.date_range("2020-01-01", periods=100, freq="D")
    y = rng.poisson(20, 100).astype(float)
    df = pd.DataFrame({"y": y, "c": y}, index=idx)
    with pytest.raises(ModelError, match="identical"):
        ITS(df, outcome="y", control="c", event=idx[50], family="poisson")


def test_singular_design_generic():
    s = _series(np.random.default_rng(0).poisson(20, 100))
    # every post period excluded: level and slope are not identified
    with pytest.raises(DataError, match="no usable period"):
        ITS(s, event=s.index[90], family="poisson", dow=False, exclude=10)
    with pytest.raises(ModelError, match="singular.*'slope'"):
        ITS(s, event=s.index[90], family="poisson", dow=False, exclude=9)


def test_parameter_errors(daily):
    with pytest.raises(ParameterError, match="family"):
        ITS(daily, outcome="y", event=daily.index[350], family="logit")
    with pytest.raises(ParameterError, match="cov_type"):
        ITS(daily, outcome="y", event=daily.index[350]).fit(cov_type="cluster")
    with pytest.raises(DataError, match="outside the series"):
        ITS(daily, outcome="y", event="2030-01-01")
    with pytest.raises(ParameterError, match="outcome"):
        ITS(daily, event=daily.index[350])
    with pytest.raises(ParameterError, match="not a column"):
        ITS(daily, outcome="nope", event=daily.index[350])
    with pytest.raises(DataError, match="before the event"):
        ITS(daily, outcome="y", event=daily.index[1])
    with pytest.raises(ParameterError, match="offset"):
        ITS(daily, outcome="y", event=daily.index[350], family="gaussian", offset="mu")


def test_duplicate_dates_rejected(daily):
    d = pd.concat([daily.iloc[:5], daily.iloc[:5]])
    with pytest.raises(DataError, match="same day"):
        ITS(d, outcome="y", event=d.index[3])


def test_no_warnings_on_clean_fit(daily):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = ITS(daily, outcome="y", event=daily.index[350], fourier=2).fit().to_dict(n_sim=100)
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    assert d["model"]["converged"] is True


def test_prewhitened_hac_option(daily):
    m = ITS(daily, outcome="y", event=daily.index[350], family="poisson")
    r = m.fit(cov_type="hac", maxlags=4, prewhite=True)
    assert "prewhitening" in r.cov_description and r.to_dict(n_sim=100)["model"]["prewhite"] is True
    r0 = m.fit(cov_type="hac", maxlags=4)
    pd.testing.assert_series_equal(r.params, r0.params)
    assert np.all(np.isfinite(r.std_errors)) and not np.allclose(r.std_errors, r0.std_errors)
    with pytest.raises(ParameterError, match="prewhite"):
        m.fit(cov_type="robust", prewhite=True)
    with pytest.raises(ParameterError, match="unknown keys"):
        m.fit(bandwidth=3)


def test_weekly_labels_put_the_event_in_the_week_that_contains_it():
    """resample("W") labels weeks by their Sunday (the week's end); a bare list of dates is
    read as week starts unless period_label says otherwise."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2016-01-04", "2018-12-30")  # simulated daily counts
    y = pd.Series(rng.poisson(np.where(days >= pd.Timestamp("2017-08-23"), 50, 100)), index=days)
    weekly = y.resample("W").sum()
    m = ITS(weekly, event="2017-08-23", family="poisson")
    assert m.frame.index[m.event_pos] == pd.Timestamp("2017-08-27")  # the week of Mon 21 to Sun 27
    bare = pd.Series(weekly.to_numpy(), index=pd.DatetimeIndex(list(weekly.index)))
    assert ITS(bare, event="2017-08-23", family="poisson").frame.index[
        ITS(bare, event="2017-08-23", family="poisson").event_pos] == pd.Timestamp("2017-08-20")
    m_end = ITS(bare, event="2017-08-23", family="poisson", period_label="end")
    assert m_end.frame.index[m_end.event_pos] == pd.Timestamp("2017-08-27")
    with pytest.raises(ParameterError):
        ITS(bare, event="2017-08-23", family="poisson", period_label="middle")
