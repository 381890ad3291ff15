"""Staggered event studies (issue 15, part 1): validation against fixest, planted effects, bad input, API."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.staggered import (
    TWFE,
    StackedEventStudy,
    SunAbraham,
    simulate_staggered,
)

HERE = Path(__file__).parent
VENDORED = HERE / "validation" / "fixest_base_stagg" / "base_stagg.csv"

# fixest walkthrough vignette (docs/articles/fixest_walkthrough.html at lrberge/fixest
# dbe56c5d953deb797a61dfc37f6e25fd143c68d4):
#   res_sa20 = feols(y ~ x1 + sunab(year_treated, year) | id + year, base_stagg)
#   summary(res_sa20, agg = "att")   # Standard-errors: Clustered (id)
#        Estimate Std. Error  t value  Pr(>|t|)
#   x1   0.994678   0.018378 54.12293 < 2.2e-16
#   ATT -1.133749   0.205070 -5.52858 2.882e-07
FIXEST = {"x1": (0.994678, 0.018378, 54.12293), "ATT": (-1.133749, 0.205070, -5.52858)}
FIXEST_ATT_P = 2.882e-07


def _base_stagg_path(shared: Path | None = None) -> Path | None:
    if VENDORED.is_file():
        return VENDORED
    if shared is not None and (shared / "validation" / "fixest_base_stagg" / "base_stagg.csv").is_file():
        return shared / "validation" / "fixest_base_stagg" / "base_stagg.csv"
    return None


@pytest.fixture(scope="module")
def base_stagg() -> pd.DataFrame:
    from raidstudy.paths import shared_dir

    sh = shared_dir()
    path = _base_stagg_path(sh / "data" if sh is not None else None)
    if path is None:
        pytest.skip("fixest's base_stagg.csv is absent (neither tests/models/validation/fixest_base_stagg nor "
                    "../shared/data/validation/fixest_base_stagg): the fixest comparison needs it")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def sa_base(base_stagg):
    return SunAbraham(base_stagg, outcome="y", unit="id", time="year", cohort="year_treated",
                      covariates="x1").fit()


# ---------------------------------------------------------------- validation: fixest
def test_sunab_matches_fixest_att_and_x1_to_printed_precision(sa_base):
    """Estimates, clustered SEs (fixest's default small-sample factor) and t to the printed digits."""
    for term, (est, se, t) in FIXEST.items():
        assert sa_base.params[term] == pytest.approx(est, abs=5e-7), term
        assert sa_base.std_errors[term] == pytest.approx(se, abs=5e-7), term
        assert sa_base.tvalues[term] == pytest.approx(t, abs=5e-5), term
    # p-value from t(G - 1) = t(94), as fixest's cluster.df = "min"
    assert sa_base.pvalues["ATT"] == pytest.approx(FIXEST_ATT_P, rel=5e-4)
    assert sa_base.df_ref == 94 and sa_base.n_clusters == 95


def test_sunab_small_sample_factor_is_fixest_nested_K(sa_base):
    """K = 82 coefficients + 10 year effects (id effects nested in the clusters): G/(G-1)(n-1)/(n-K)."""
    factor = 95 / 94 * 949 / (950 - 92)
    assert sa_base._fit.cov == pytest.approx(sa_base._fit.cov_raw * factor, rel=1e-12)
    assert sa_base._fit.ss_factor == pytest.approx(factor, rel=1e-14)
    assert "K = 92" in sa_base.cov_description and "95 clusters" in sa_base.cov_description


def test_sunab_raw_cluster_covariance_equals_statsmodels_lsdv(sa_base, base_stagg):
    """An independent implementation: statsmodels OLS with unit and year dummies, cluster sandwich without correction."""
    import statsmodels.api as sm

    d = sa_base.model._design
    df = base_stagg.sort_values(["id", "year"]).reset_index(drop=True)
    dummies = pd.get_dummies(df["id"].astype(str), drop_first=False).astype(float)
    years = pd.get_dummies(df["year"].astype(str), drop_first=True).astype(float)
    Z = np.column_stack([d["X"], dummies.to_numpy(), years.to_numpy()])
    ols = sm.OLS(df["y"].to_numpy(), Z).fit(method="qr", cov_type="cluster",
                                            cov_kwds={"groups": df["id"].to_numpy(), "use_correction": False})
    p = d["X"].shape[1]
    assert ols.params[:p] == pytest.approx(sa_base._fit.params, abs=1e-9)
    assert np.sqrt(np.diag(ols.cov_params()[:p, :p])) == pytest.approx(np.sqrt(np.diag(sa_base._fit.cov_raw)),
                                                                        rel=1e-8)


def test_sunab_event_time_weights_are_cohort_shares(sa_base):
    inter = sa_base.interactions
    cells = inter[inter["kind"] == "cell"]
    assert len(cells) == 81  # 9 cohorts x 9 relative periods (-1 omitted)
    # relative period 0: 9 cohorts of 5 units each, equal shares
    w0 = cells.loc[cells["rel"] == 0, "weight_in_rel"].to_numpy()
    assert w0 == pytest.approx(np.full(9, 1 / 9))
    e0 = (cells.loc[cells["rel"] == 0, "estimate"] * w0).sum()
    assert sa_base.params["rel[0]"] == pytest.approx(e0, rel=1e-12)
    assert cells["weight_in_att"].sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- planted effects
@pytest.fixture(scope="module")
def planted():
    return simulate_staggered(n_units=240, n_periods=12, seed=11)


def test_twfe_is_biased_and_sun_abraham_is_not(planted):
    """SIMULATED staggered panel with cohort-specific, growing effects."""
    truth = planted.attrs["true_att"]
    kw = {"outcome": "y", "unit": "unit", "time": "period", "cohort": "cohort"}
    sa = SunAbraham(planted, **kw).fit()
    tw = TWFE(planted, **kw).fit()
    assert abs(sa.params["ATT"] - truth) < 3 * sa.std_errors["ATT"]
    assert abs(sa.params["ATT"] - truth) < 0.05 * truth
    # static TWFE: far off, by many of its own standard errors (it is about a third of the truth)
    assert tw.params["ATT"] < 0.6 * truth
    assert abs(tw.params["ATT"] - truth) > 10 * tw.std_errors["ATT"]
    # the dynamic path recovers the planted path at each relative period
    es = sa.event_study().set_index("rel")
    for e, val in planted.attrs["true_path"].items():
        if e == -1:
            continue
        assert abs(es.loc[e, "estimate"] - val) < 4 * es.loc[e, "std_error"] + 1e-9, e


def test_stacked_recovers_window_average(planted):
    coh = sorted(c for c in planted["cohort"].unique() if c < 10000)
    ev = pd.DataFrame({"event": [f"c{c}" for c in coh], "time": coh,
                       "units": [sorted(planted.loc[planted["cohort"] == c, "unit"].unique()) for c in coh]})
    pre, post = 2, 3
    st = StackedEventStudy(planted, outcome="y", unit="unit", time="period", events=ev, pre=pre, post=post).fit()
    win = planted[planted["cohort"].isin(coh) & planted["rel"].between(0, post)]
    truth = win["effect"].mean()
    assert abs(st.params["ATT"] - truth) < 3 * st.std_errors["ATT"]
    # without the absorbing rule (already-treated units as controls) it would be biased
    leaky = StackedEventStudy(planted, outcome="y", unit="unit", time="period", events=ev, pre=pre, post=post,
                              washout=0).fit()
    assert abs(leaky.params["ATT"] - truth) > 5 * leaky.std_errors["ATT"]
    rep = {e["event"]: e for e in st.extra["events"]}
    # event c6 (window 4..9): cohort 9 is treated inside it, so only the never-treated are clean
    assert rep["c6"]["n_controls"] == planted.loc[planted["cohort"] == 10000, "unit"].nunique()
    assert rep["c3"]["n_controls"] == planted.loc[planted["cohort"].isin([9, 10000]), "unit"].nunique()


def test_stacked_equals_weighted_least_squares_with_dummies():
    """Independent check of the stacked fit: statsmodels WLS with unit x event and period x event dummies."""
    import warnings

    import statsmodels.api as sm

    p = simulate_staggered(n_units=45, n_periods=10, seed=4)
    coh = [3, 6, 9]
    ev = pd.DataFrame({"event": [f"c{c}" for c in coh], "time": coh,
                       "units": [sorted(p.loc[p["cohort"] == c, "unit"].unique()) for c in coh]})
    m = StackedEventStudy(p, outcome="y", unit="unit", time="period", events=ev, pre=2, post=1)
    res = m.fit(small_sample=False)
    d = m._design
    assert d["weights"] is not None and not np.allclose(d["weights"], 1.0)
    ent = pd.get_dummies(pd.Series(d["entity"]).astype(str)).to_numpy(dtype=float)
    oth = pd.get_dummies(pd.Series(d["other"]).astype(str), drop_first=True).to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one redundant dummy per extra stack; pinv handles it
        ols = sm.WLS(d["y"], np.column_stack([d["X"], ent, oth]), weights=d["weights"]).fit(
            method="pinv", cov_type="cluster", cov_kwds={"groups": d["clusters"], "use_correction": False})
    k = d["X"].shape[1]
    assert ols.params[:k] == pytest.approx(res._fit.params, abs=1e-9)
    assert np.sqrt(np.diag(ols.cov_params()[:k, :k])) == pytest.approx(np.sqrt(np.diag(res._fit.cov_raw)), rel=1e-6)


def test_stacked_groups_report_effects_by_group(planted):
    coh = [3, 6, 9]
    ev = pd.DataFrame({"event": [f"c{c}" for c in coh], "time": coh, "kind": ["early", "late", "late"],
                       "units": [sorted(planted.loc[planted["cohort"] == c, "unit"].unique()) for c in coh]})
    st = StackedEventStudy(planted, outcome="y", unit="unit", time="period", events=ev, pre=2, post=3,
                           group="kind").fit()
    assert st.groups == ["early", "late"]
    assert {"early:ATT", "late:ATT", "early:rel[0]", "late:rel[-2]"} <= set(st.params.index)
    early = planted[(planted["cohort"] == 3) & planted["rel"].between(0, 3)]["effect"].mean()
    assert abs(st.att("early")["estimate"] - early) < 3 * st.att("early")["std_error"]
    assert set(st.event_study()["group"]) == {"early", "late"}


# ---------------------------------------------------------------- bad input
def _small(seed=0, **kw):
    return simulate_staggered(n_units=40, n_periods=8, cohorts=(3, 5), seed=seed, **kw)


def test_no_never_treated_with_control_never_names_the_remedy():
    p = _small(never_share=0.0)
    with pytest.raises(ModelError, match=r"no never-treated unit.*control='last'"):
        SunAbraham(p, outcome="y", unit="unit", time="period", cohort="cohort", control="never")
    # the last-treated cohort works as control, periods from its treatment on dropped
    res = SunAbraham(p, outcome="y", unit="unit", time="period", cohort="cohort").fit()
    assert res.panel_report["control"] == "last-treated cohort 5"
    # every unit's periods 5..8 (4 periods x 40 units) leave the sample
    assert res.panel_report["dropped"]["observations from the last cohort's treatment period on"] == 40 * 4


def test_single_cohort_without_untreated_units_is_an_error():
    p = simulate_staggered(n_units=20, n_periods=6, cohorts=(3,), never_share=0.0, seed=1)
    with pytest.raises(ModelError, match=r"only one treated cohort \(3\).*no clean control"):
        SunAbraham(p, outcome="y", unit="unit", time="period", cohort="cohort")


def test_period_without_any_untreated_unit_is_named():
    p = _small()
    # the never-treated units are absent in period 4: nobody there is a clean control
    p = p[~((p["cohort"] == 10000) & (p["period"] == 4))]
    with pytest.raises(ModelError, match=r"no clean control unit is observed in period\(s\) \[4\]"):
        SunAbraham(p, outcome="y", unit="unit", time="period", cohort="cohort")


def test_cohort_without_pre_period_is_named():
    p = _small()
    p.loc[p["cohort"] == 3, "cohort"] = 1
    with pytest.raises(DataError, match=r"cohort\(s\) \[1\].*no pre-period"):
        SunAbraham(p, outcome="y", unit="unit", time="period", cohort="cohort")


def test_missing_reference_period_is_named():
    p = _small()
    p = p[~((p["cohort"] == 5) & (p["period"] == 4))]
    with pytest.raises(DataError, match=r"cohort 5 has no observation in its reference period -1 \(period 4\)"):
        SunAbraham(p, outcome="y", unit="unit", time="period", cohort="cohort")


def test_stacked_event_too_close_to_edge_is_named():
    p = _small()
    ev = pd.DataFrame({"event": ["early"], "time": [3], "units": [sorted(p.loc[p["cohort"] == 3, "unit"].unique())]})
    with pytest.raises(DataError, match=r"event 'early' at period 3 is too close to the edge.*needs 4 periods before.*"
                                        r"have 2 before"):
        StackedEventStudy(p, outcome="y", unit="unit", time="period", events=ev, pre=4, post=2)


def test_stacked_without_clean_control_is_named():
    p = _small(never_share=0.0)
    units = {c: sorted(p.loc[p["cohort"] == c, "unit"].unique()) for c in (3, 5)}
    ev = pd.DataFrame({"event": ["a", "b"], "time": [3, 5], "units": [units[3], units[5]]})
    with pytest.raises(ModelError, match=r"event 'a' at 3 has no clean control"):
        StackedEventStudy(p, outcome="y", unit="unit", time="period", events=ev, pre=2, post=2)


def test_unbalanced_panel_with_gaps_is_fitted_and_reported():
    p = _small()
    rng = np.random.default_rng(0)
    drop = rng.choice(p.index[p["period"] >= 6], size=15, replace=False)  # after every reference period
    q = p.drop(index=drop).copy()
    q.loc[q.index[:3], "y"] = np.nan  # unit 0, periods 1-3: leading missing values, not gaps
    res = SunAbraham(q, outcome="y", unit="unit", time="period", cohort="cohort").fit()
    rep = res.panel_report
    assert rep["n_obs"] == len(p) - 15 - 3 and res.nobs == rep["n_obs"]
    assert rep["n_missing_cells"] == 18 and rep["n_rows_missing_values"] == 3
    last = p.groupby("unit")["period"].max()
    interior = sum(1 for i in drop if p.loc[i, "period"] < last[p.loc[i, "unit"]])
    assert rep["n_interior_gap_cells"] == interior and not rep["balanced"]
    assert "18 (" in res.summary().as_text()


def test_other_bad_input_messages():
    p = _small()
    kw = {"outcome": "y", "unit": "unit", "time": "period", "cohort": "cohort"}
    with pytest.raises(ParameterError, match="parameter 'cohort' = 'nope': is not a column of data"):
        SunAbraham(p, outcome="y", unit="unit", time="period", cohort="nope")
    with pytest.raises(DataError, match=r"unit 0 has more than one row for period 1"):
        SunAbraham(pd.concat([p, p.iloc[[0]]]), **kw)
    with pytest.raises(ParameterError, match="is not a supported covariance"):
        SunAbraham(p, **kw).fit(cov_type="hac")
    q = p.copy()
    q.loc[0, "cohort"] = 5
    with pytest.raises(DataError, match="unit 0 has more than one cohort"):
        SunAbraham(q, **kw)
    with pytest.raises(ModelError, match="no unit is ever treated"):
        SunAbraham(p.assign(cohort=10000), **kw)
    with pytest.raises(ParameterError, match="'bandwidth' = 3: applies to cov_type='kernel' only"):
        SunAbraham(p, **kw).fit(bandwidth=3)


def test_driscoll_kraay_with_one_event_is_refused(planted):
    ev = pd.DataFrame({"event": ["c6"], "time": [6],
                       "units": [sorted(planted.loc[planted["cohort"] == 6, "unit"].unique())]})
    m = StackedEventStudy(planted, outcome="y", unit="unit", time="period", events=ev, pre=2, post=2)
    assert m.fit().std_errors["ATT"] > 0
    with pytest.raises(ModelError, match=r"kernel covariance is degenerate: zero standard error for \['rel\[-2\]'"):
        m.fit(cov_type="kernel")


# ---------------------------------------------------------------- API
def test_results_api_summary_latex_dict_and_kernel(sa_base, base_stagg):
    text = str(sa_base.summary())
    assert "cluster-robust by unit (95 clusters)" in text and "ATT" in text and "x1" in text
    assert "rel[3]" not in text and "rel[3]" in sa_base.summary(full=True).as_text()
    assert "<table>" in sa_base.summary()._repr_html_()
    assert "\\toprule" in sa_base.summary().as_latex()
    ci = sa_base.conf_int(0.05).loc["ATT"]
    c = sa_base.critical_value(0.05)
    assert ci["lower"] == pytest.approx(sa_base.params["ATT"] - c * sa_base.std_errors["ATT"])
    d = sa_base.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["att"][0]["estimate"] == pytest.approx(FIXEST["ATT"][0], abs=5e-7)
    dk = SunAbraham(base_stagg, outcome="y", unit="id", time="year", cohort="year_treated",
                    covariates="x1").fit(cov_type="kernel", bandwidth=2)
    assert dk.params["ATT"] == pytest.approx(sa_base.params["ATT"])
    assert dk.std_errors["ATT"] != pytest.approx(sa_base.std_errors["ATT"], rel=1e-3)
    assert "Driscoll-Kraay" in dk.cov_description and "bandwidth 2" in dk.cov_description
    pt = sa_base.wald_pretrend()
    assert pt["df"] == 8 and 0 <= pt["p_value"] <= 1


def test_dated_weekly_periods(planted):
    start = pd.Timestamp("2021-01-04")
    q = planted.assign(week=start + pd.to_timedelta((planted["period"] - 1) * 7, unit="D"))
    q["first"] = np.where(q["cohort"] < 10000, start + pd.to_timedelta((q["cohort"] - 1) * 7, unit="D"), pd.NaT)
    q["first"] = pd.to_datetime(q["first"])
    a = SunAbraham(q, outcome="y", unit="unit", time="week", cohort="first").fit()
    b = SunAbraham(planted, outcome="y", unit="unit", time="period", cohort="cohort").fit()
    assert a.params["ATT"] == pytest.approx(b.params["ATT"], rel=1e-10)
    assert a.panel_report["cohorts"] == ["2021-01-18", "2021-02-08", "2021-03-01"]
