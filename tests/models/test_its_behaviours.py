"""Behaviours of the ITS engine not covered elsewhere: returned dicts are the caller's own, the
one source of the headline terms, several controls, offsets with gaps, the lag rule, ``use_t``,
and the count-model diagnostics with their flags."""
from __future__ import annotations

import copy
import functools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from raidstudy import ITS
from raidstudy.errors import DataError
from raidstudy.models.its.covariance import nw_auto_lags
from raidstudy.models.its.design import headline_terms
from raidstudy.models.simulate import simulate_its


@functools.lru_cache(maxsize=None)
def _fit(family="poisson", **kw):
    d = simulate_its(family=family, n=300, event=200, seed=3)
    return d, ITS(d, outcome="y", event=d.index[200], family=family, dow=False).fit(cov_type="robust", **kw)


# ------------------------------------------------------------------ 18.4: the caller's own dicts
def test_effects_returns_a_fresh_dict_each_call():
    _, r = _fit()
    first = r.effects(n_sim=100)  # computes and caches
    before = copy.deepcopy(first)
    second = r.effects(n_sim=100)  # from the cache
    assert second is not first and second["relative"] is not first["relative"]
    for e in (first, second):  # editing either result must not reach the cache
        e["relative"]["estimate"] = 99.0
        e["level"]["ci_low"] = 99.0
        e["recovery"]["periods"] = -5
        e["new"] = 1
    assert r.effects(n_sim=100) == before
    assert r.to_dict(n_sim=100)["effects"] == before


def test_diagnostics_returns_a_fresh_dict_each_call():
    _, r = _fit()
    first = r.diagnostics()  # computes and caches
    before = copy.deepcopy(first)
    second = r.diagnostics()  # from the cache
    assert second is not first and second["flags"] is not first["flags"]
    for diag in (first, second):
        diag["flags"].append("made up")
        diag["ljung_box"]["statistic"] = -1.0
        diag["missing"].append("x")
    assert r.diagnostics() == before


# ------------------------------------------------------------------ 18.4: headline terms, one source
@pytest.mark.parametrize("comparative,slope,expected", [
    (False, True, {"level": "level", "slope": "slope"}),
    (False, False, {"level": "level"}),
    (True, True, {"level": "treated_level", "slope": "treated_slope"}),
    (True, False, {"level": "treated_level"}),
])
def test_headline_terms(comparative, slope, expected):
    assert headline_terms(comparative=comparative, slope=slope) == expected
    d = simulate_its(family="poisson", n=200, event=120, seed=1)
    d["c"] = simulate_its(family="poisson", n=200, event=120, level=0.0, slope=0.0, seed=2)["y"]
    m = ITS(d, outcome="y", control="c" if comparative else None, event=d.index[120], family="poisson",
            dow=False, slope=slope)
    assert m.design.headline == expected
    # the counterfactual zeroes exactly the headline columns
    assert sorted(m.design.names[i] for i in m.design.effect_cols) == sorted(expected.values())
    e = m.fit(cov_type="robust").effects(n_sim=100)
    assert e["level"]["term"] == expected["level"]
    assert (e["slope"] or {}).get("term") == expected.get("slope")


# ------------------------------------------------------------------ several control series
def test_several_controls_are_stacked_series():
    rng = np.random.default_rng(2)
    n, ev = 160, 100
    idx = pd.date_range("2021-01-04", periods=n, freq="W-MON")
    t = np.arange(n, dtype=float)
    L = (t >= ev).astype(float)
    df = pd.DataFrame({"y": 50 + 0.1 * t - 8 * L + rng.normal(0, 2, n),
                       "c1": 40 + 0.05 * t - 1 * L + rng.normal(0, 2, n),
                       "c2": 45 + 0.08 * t + rng.normal(0, 2, n)}, index=idx)
    r = ITS(df, outcome="y", control=["c1", "c2"], event=idx[ev], family="gaussian").fit(
        cov_type="hac", maxlags=2)
    # reference: OLS on the design stacked by hand (controls first, then the treated series)
    rows = []
    for col, z in (("c1", 0.0), ("c2", 0.0), ("y", 1.0)):
        base = np.column_stack([np.ones(n), t, L, (t - ev) * L])
        rows.append((np.column_stack([base, z * base]), df[col].to_numpy(), np.full(n, col)))
    X = np.vstack([x for x, _, _ in rows])
    y = np.concatenate([v for _, v, _ in rows])
    groups = pd.factorize(np.concatenate([g for _, _, g in rows]))[0]
    names = ["const", "trend", "level", "slope", "treated", "treated_trend", "treated_level", "treated_slope"]
    assert sorted(r.params.index) == sorted(names)
    ref = sm.OLS(y, X).fit(cov_type="hac-panel", cov_kwds={"groups": groups, "maxlags": 2, "use_correction": False})
    b = r.params[names].to_numpy()
    np.testing.assert_allclose(b, ref.params, rtol=1e-9)
    # the HAC covariance is computed within each series and summed (statsmodels' hac-panel)
    np.testing.assert_allclose(r.std_errors[names].to_numpy(), ref.bse, rtol=1e-8)
    assert r.nobs == 3 * n
    assert r.params["treated_level"] == pytest.approx(-8 - (-1 + 0) / 2, abs=1.5)


# ------------------------------------------------------------------ offsets with gaps
def _offset_frame():
    rng = np.random.default_rng(7)
    n = 150
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    expo = rng.uniform(50, 150, n)
    t = np.arange(n)
    y = rng.poisson(expo * np.exp(-1 - 0.3 * (t >= 100))).astype(float)
    return pd.DataFrame({"y": y, "expo": expo}, index=idx)


def test_nan_offset_marks_the_period_missing():
    df = _offset_frame()
    df.iloc[[10, 120], df.columns.get_loc("expo")] = np.nan
    r = ITS(df, outcome="y", event=df.index[100], family="poisson", offset="expo", dow=False).fit(cov_type="robust")
    diag = r.diagnostics()
    assert diag["n_missing"] == 2 and diag["missing"] == [df.index[10], df.index[120]]
    assert r.nobs == len(df) - 2
    # the same fit as dropping those periods from a statsmodels GLM with log(exposure) offset
    keep = df["expo"].notna().to_numpy()
    t = np.arange(len(df), dtype=float)
    L = (t >= 100).astype(float)
    X = np.column_stack([np.ones(len(df)), t, L, (t - 100) * L])[keep]
    ref = sm.GLM(df["y"].to_numpy()[keep], X, family=sm.families.Poisson(),
                 offset=np.log(df["expo"].to_numpy()[keep])).fit(tol=1e-12)
    np.testing.assert_allclose(r.params.to_numpy(), ref.params, rtol=1e-7)
    p = r.predictions(n_sim=100)
    assert bool(p["missing"].iloc[10]) and bool(p["missing"].iloc[120]) and int(p["missing"].sum()) == 2


@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_zero_or_negative_offset_is_refused(bad):
    df = _offset_frame()
    df.iloc[5, df.columns.get_loc("expo")] = bad
    with pytest.raises(DataError, match="offset .*<= 0"):
        ITS(df, outcome="y", event=df.index[100], family="poisson", offset="expo", dow=False)


# ------------------------------------------------------------------ lag rule and use_t
def test_maxlags_rule_is_the_newey_west_rule():
    d, _ = _fit()
    m = ITS(d, outcome="y", event=d.index[200], family="poisson", dow=False)
    rule = m.fit(cov_type="hac", maxlags="rule")
    k = nw_auto_lags(rule.nobs)
    assert k == int(np.floor(4 * (rule.nobs / 100) ** (2 / 9)))  # Newey-West (1994): floor(4 (T/100)^(2/9))
    fixed = m.fit(cov_type="hac", maxlags=k)
    assert rule.maxlags == k and rule.lag_rule == "rule"
    pd.testing.assert_series_equal(rule.std_errors, fixed.std_errors)
    assert fixed.lag_rule != "rule"


@pytest.mark.parametrize("family", ["poisson", "gaussian"])
def test_use_t_switches_the_reference_distribution_only(family):
    d = simulate_its(family=family, n=120, event=80, seed=4)
    m = ITS(d, outcome="y", event=d.index[80], family=family, dow=False)
    z = m.fit(cov_type="robust", use_t=False)
    t = m.fit(cov_type="robust", use_t=True)
    pd.testing.assert_series_equal(z.std_errors, t.std_errors)
    df = t.df_resid
    assert df == t.nobs - len(t.params)
    np.testing.assert_allclose(t.pvalues, 2 * stats.t.sf(np.abs(t.tvalues), df), rtol=1e-10)
    np.testing.assert_allclose(z.pvalues, 2 * stats.norm.sf(np.abs(z.tvalues)), rtol=1e-10)
    ci = t.conf_int(0.05)
    np.testing.assert_allclose(ci["upper"] - t.params, stats.t.ppf(0.975, df) * t.std_errors, rtol=1e-10)
    assert t.to_dict(n_sim=100)["model"]["inference"] == f"t({df})"
    assert z.to_dict(n_sim=100)["model"]["inference"] == "normal"


# ------------------------------------------------------------------ count-model diagnostics and flags
def test_poisson_on_overdispersed_counts_is_flagged():
    d = simulate_its(family="negbin", n=300, event=200, nb_alpha=0.1, ar=0.0, noise_sd=0.0, seed=5)
    r = ITS(d, outcome="y", event=d.index[200], family="poisson").fit(cov_type="robust")
    disp = r.diagnostics()["dispersion"]
    # Pearson X2 / (n - p) by hand
    p = r.predictions(n_sim=100)
    y, mu = p["observed"].to_numpy(float), p["fitted"].to_numpy(float)
    assert disp["poisson_pearson_dispersion"] == pytest.approx(np.sum((y - mu) ** 2 / mu) / r.df_resid, rel=1e-6)
    assert disp["poisson_pearson_dispersion"] > 3 and disp["cameron_trivedi_p_value"] < 1e-6
    assert any(f.startswith("overdispersion under Poisson") and "negbin" in f for f in r.diagnostics()["flags"])
    # the negative binomial fit of the same data raises no dispersion flag and reports its LR test
    nb = ITS(d, outcome="y", event=d.index[200], family="negbin").fit(cov_type="robust")
    nd = nb.diagnostics()
    assert not any("overdispersion" in f for f in nd["flags"])
    assert nd["dispersion"]["nb_alpha"] == pytest.approx(0.1, rel=0.4)
    assert nd["dispersion"]["lr_vs_poisson_p_value"] < 1e-10


def test_autocorrelated_counts_are_flagged_and_clean_ones_are_not():
    ar = simulate_its(family="poisson", n=300, event=200, ar=0.8, noise_sd=0.15, seed=6)
    r = ITS(ar, outcome="y", event=ar.index[200], family="quasipoisson").fit(cov_type="robust")
    flags = r.diagnostics()["flags"]
    assert any(f.startswith("residual autocorrelation") and "consider cov_type='ewc'" in f for f in flags), flags
    # under EWC the flag stays but does not suggest the covariance the fit already uses
    e = ITS(ar, outcome="y", event=ar.index[200], family="quasipoisson").fit()
    assert any(f.startswith("residual autocorrelation") and "consider" not in f for f in e.diagnostics()["flags"])
    clean = simulate_its(family="poisson", n=300, event=200, ar=0.0, noise_sd=0.0, fourier_amp=0.0, seed=6)
    c = ITS(clean, outcome="y", event=clean.index[200], family="poisson").fit(cov_type="robust")
    assert c.diagnostics()["flags"] == []
