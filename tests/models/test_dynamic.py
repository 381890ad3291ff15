"""The dynamic path (event study, step + decay, misfit test) on simulated series with planted paths.

Every series here is simulated (names start with ``simulated``).
"""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from raidstudy.errors import DataError, ParameterError
from raidstudy.io import dumps_json
from raidstudy.models.its import (
    ITS,
    EventStudy,
    EventStudyResults,
    dynamic_summary,
    misfit_test,
)

matplotlib.use("Agg")

N, EV = 300, 200


def planted(path, *, seed=0, lead=None, n=N, ev=EV, base=300.0, ar=0.0, sd=0.03, family="poisson"):
    """A simulated daily series with the log effect ``path(k)`` for k = t - ev >= 0."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2019-01-07", periods=n, freq="D")
    k = np.arange(n) - ev
    eff = np.where(k >= 0, path(np.maximum(k, 0)), 0.0)
    if lead is not None:
        eff = eff + np.where((k >= -21) & (k < -7), lead, 0.0)
    e = rng.standard_normal(n) * sd
    u = np.zeros(n)
    for i in range(n):
        u[i] = (ar * u[i - 1] if i else 0.0) + e[i]
    dow = np.array([0.0, -0.05, 0.0, 0.02, 0.05, 0.2, 0.15])[np.asarray(idx.day_of_week)]
    eta = math.log(base) + 0.0005 * np.arange(n) + dow + eff + u
    if family == "gaussian":
        y = np.exp(eta) + rng.standard_normal(n) * 5
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return pd.Series(y, index=idx, name="simulated")


def decaying(k):
    return -0.3 - 1.0 * np.exp(-math.log(2) * k / 14)


@pytest.fixture(scope="module")
def decay_series():
    return planted(decaying, seed=1)


@pytest.fixture(scope="module")
def es_robust(decay_series):
    return EventStudy(decay_series, event=decay_series.index[EV], family="poisson", n_leads=3).fit(cov_type="robust")


# ------------------------------------------------------------------ design and path
def test_bins_recover_planted_decaying_path(es_robust):
    p = es_robust.path()
    post = p[p["kind"] == "post"]
    centre = (post["first"] + post["last"]) / 2
    truth = decaying(centre.to_numpy())
    assert np.max(np.abs(post["estimate"].to_numpy() - truth)) < 0.06
    assert list(p["bin"]) == list(range(-4, 0)) + list(range(len(post)))
    ref = p[p["kind"] == "reference"].iloc[0]
    assert ref["bin"] == -1 and ref["estimate"] == 0 and np.isnan(ref["std_error"])
    # percent columns for count families
    assert np.allclose(post["pct"], 100 * np.expm1(post["estimate"]))
    assert (post["ci_low"] < post["estimate"]).all() and (post["estimate"] < post["ci_high"]).all()


def test_bin_columns_and_counterfactual(decay_series):
    m = EventStudy(decay_series, event=decay_series.index[EV], family="poisson", n_leads=2, bin_width=10)
    d = m.design
    assert "level" not in d.names and "slope" not in d.names and d.names[:2] == ["const", "trend"]
    X = pd.DataFrame(d.X, columns=d.names)
    assert X["bin_0"].iloc[EV:EV + 10].eq(1).all() and X["bin_0"].iloc[EV + 10] == 0
    assert X["lead_3"].iloc[EV - 30:EV - 20].eq(1).all() and "lead_1" not in d.names  # reference -1
    assert sorted(d.names[i] for i in d.effect_cols) == sorted(c for c in d.names if c.startswith(("bin_", "lead_")))
    # 100 post periods = 10 bins exactly
    assert m.bins["kind"].eq("post").sum() == 10
    res = m.fit(cov_type="robust")
    pr = res.predictions()
    assert np.allclose(pr["counterfactual"].iloc[:EV - 30], pr["fitted"].iloc[:EV - 30])
    assert "relative" in res.effects() and res.effects()["level"]["term"] == "bin_0"


def test_remainder_joins_last_bin_and_exclusion(decay_series):
    m = EventStudy(decay_series, event=decay_series.index[EV], family="poisson", n_leads=1, exclude=2)
    b = m.bins[m.bins["kind"] == "post"]
    assert b["last"].iloc[-1] == N - EV - 1 and b["n_periods"].iloc[-1] == 7 + (N - EV) % 7
    assert b["n_fitted"].iloc[0] == 5  # two transition days left out, the bin still estimated
    assert m.fit(cov_type="robust").params["bin_0"] < -1


def test_gaussian_equals_statsmodels_ols():
    y = planted(decaying, seed=2, family="gaussian")
    m = EventStudy(y, event=y.index[EV], family="gaussian", n_leads=2)
    res = m.fit(cov_type="nonrobust")
    d = m.design
    ols = sm.OLS(d.y[d.fit], d.X[d.fit]).fit()
    assert np.allclose(res.params.to_numpy(), ols.params, rtol=0, atol=1e-8)
    assert np.allclose(res.std_errors.to_numpy(), ols.bse, rtol=1e-8)


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_count_family_equals_statsmodels_glm(decay_series, family):
    m = EventStudy(decay_series, event=decay_series.index[EV], family=family, n_leads=2)
    res = m.fit(cov_type="robust")
    d = m.design
    if family == "poisson":
        glm = sm.GLM(d.y[d.fit], d.X[d.fit], family=sm.families.Poisson()).fit(tol=1e-12)
        assert np.allclose(res.params.to_numpy(), glm.params, atol=1e-6)
    else:
        nb = sm.NegativeBinomial(d.y[d.fit], d.X[d.fit], loglike_method="nb2").fit(
            start_params=np.r_[res.params.to_numpy(), res.dispersion], disp=0, maxiter=200)
        assert np.allclose(res.params.to_numpy(), nb.params[:-1], atol=1e-4)
        assert abs(res.dispersion - nb.params[-1]) < 1e-4 * max(1, nb.params[-1])


# ------------------------------------------------------------------ lead test, recovery
def test_lead_test_rejects_anticipation_not_null():
    null = planted(decaying, seed=3)
    ant = planted(decaying, seed=3, lead=-0.25)
    kw = {"family": "poisson", "n_leads": 3}
    p_null = EventStudy(null, event=null.index[EV], **kw).fit(cov_type="robust").lead_test()
    p_ant = EventStudy(ant, event=ant.index[EV], **kw).fit(cov_type="robust").lead_test()
    assert p_null["p_value"] > 0.05 and p_null["df"] == 3
    assert p_ant["p_value"] < 1e-6
    with pytest.raises(Exception, match="n_leads"):
        EventStudy(null, event=null.index[EV], family="poisson", n_leads=0).fit(cov_type="robust").lead_test()


def test_recovery_reached_and_not_reached():
    fast = planted(lambda k: -1.2 * np.exp(-k / 10), seed=4)
    slow = planted(lambda k: -1.2 + 0 * k, seed=4)
    ef = EventStudy(fast, event=fast.index[EV], family="poisson", n_leads=1).fit(cov_type="robust")
    rf = ef.recovery(0.9)
    post = ef.path().query("kind == 'post'")
    # the interval brackets: first bin whose interval reaches 0.9, first whose whole interval has
    assert rf["ci_low"]["bin"] == int(post["bin"][np.exp(post["ci_high"]) >= 0.9].iloc[0])
    assert rf["ci_high"]["bin"] == int(post["bin"][np.exp(post["ci_low"]) >= 0.9].iloc[0])
    assert rf["ci_high"]["bin"] > rf["bin"]["bin"] or np.exp(post["ci_low"].iloc[rf["bin"]["bin"]]) >= 0.9
    # exp(-1.2 exp(-k/10)) >= 0.9 from k = 24.3 on: the bin 21..27 holds mixed days, 28..34 is over
    assert rf["reached"] and rf["bin"]["bin"] in (3, 4) and rf["direction"] == "drop"
    assert rf["ci_low"]["bin"] <= rf["bin"]["bin"] <= rf["ci_high"]["bin"]
    rs_ = EventStudy(slow, event=slow.index[EV], family="poisson", n_leads=1).fit(cov_type="robust").recovery(0.9)
    assert not rs_["reached"] and rs_["bin"] is None and rs_["ci_high"] is None
    assert "not reached within the window" in rs_["message"]
    assert abs(rs_["ratio_last_bin"] - math.exp(-1.2)) < 0.05


# ------------------------------------------------------------------ step + decay, AIC
def test_step_decay_recovers_half_life(decay_series):
    ds = dynamic_summary(decay_series, event=decay_series.index[EV], family="poisson",
                         fit_kwargs={"cov_type": "robust"}, misfit=False)
    hl = ds.decay["half_life"]
    assert abs(hl["estimate"] - 14) < 2.5 and hl["ci_low"] < 14 < hl["ci_high"]
    assert abs(ds.decay["impact"]["estimate"] + 1.3) < 0.08
    assert abs(ds.decay["persistent"]["estimate"] + 0.3) < 0.06
    assert ds.best == "step_decay"
    t = ds.table.set_index("model")
    assert t.loc["level_slope", "aic"] > t.loc["step_decay", "aic"]
    assert t.loc["step_decay", "n_params"] == t.loc["level", "n_params"] + 2
    d = ds.to_dict()
    assert d["best"] == "step_decay" and len(d["models"]) == 4
    dumps_json(d)


def test_half_life_interval_from_gauss_newton_matches_profile_curvature(decay_series):
    """The derivative-column sandwich agrees with the curvature of the profile likelihood (model-based)."""
    ds = dynamic_summary(decay_series, event=decay_series.index[EV], family="poisson",
                         fit_kwargs={"cov_type": "nonrobust"}, misfit=False)
    hl = ds.decay["half_life"]
    from raidstudy.models.its.dynamic import _clone, _StepDecay

    model = ds.results["level"].model

    def ll(logh):
        return _clone(model, _StepDecay, half_life=math.exp(logh), deriv=None).fit(cov_type="nonrobust").loglike

    e = 0.02
    x = hl["log_estimate"]
    curv = -(ll(x + e) - 2 * ll(x) + ll(x - e)) / e ** 2
    assert abs(hl["std_error_log"] - 1 / math.sqrt(curv)) / hl["std_error_log"] < 0.05


# ------------------------------------------------------------------ misfit test
def test_misfit_rejects_collapse_then_partial_recovery_not_a_line():
    bent = planted(lambda k: -0.3 - 1.2 * np.exp(-k / 8), seed=5)
    line = planted(lambda k: -0.6 + 0.003 * k, seed=5)
    kw = {"family": "poisson", "dow": True}
    rb = misfit_test(ITS(bent, event=bent.index[EV], **kw).fit(cov_type="robust"))
    rl = misfit_test(ITS(line, event=line.index[EV], **kw).fit(cov_type="robust"))
    assert rb["p_value"] < 1e-6 and rl["p_value"] > 0.05
    assert rb["df"] == rb["n_bins"] - 2 and rb["bin_width"] == 7 and not rb["widened"]
    assert rb["deviations"][0]["deviation"] < 0  # the collapse lies below the line


def test_misfit_under_ewc_widens_bins_to_at_most_half_the_terms(decay_series):
    res = ITS(decay_series, event=decay_series.index[EV], family="poisson").fit()
    assert res.cov_type == "ewc"
    out = misfit_test(res)
    assert out["widened"] and out["df"] <= res.ewc_terms // 2 and out["bin_width"] % 7 == 0
    assert "EWC" in out["method"]
    with pytest.raises(ParameterError, match="bin_width"):
        misfit_test(res, bin_width=7)  # 12 restrictions > 8 cosine terms


# ------------------------------------------------------------------ EWC default, reporting
def test_ewc_default_per_bin_critical_values(decay_series):
    res = EventStudy(decay_series, event=decay_series.index[EV], family="poisson", n_leads=2).fit()
    assert isinstance(res, EventStudyResults) and res.cov_type == "ewc"
    p = res.path()
    post = p[p["kind"] == "post"]
    # a one-week bin leaves the EWC estimate few degrees of freedom: critical values far above 1.96
    assert (post["crit"] > 3).all()
    assert np.allclose(post["crit"], [res.critical_value(t) for t in post["term"]])
    lt = res.lead_test()
    assert lt["df"] == 2 and "EWC" in lt["method"]
    text = str(res.summary())
    assert "EWC" in text and "Lead test" in text and "Recovery" in text
    d = res.to_dict()
    assert d["model"]["kind"] == "event_study" and d["event_study"]["lead_test"]["df"] == 2
    assert dumps_json(d) == dumps_json(res.to_dict())


def test_plot_event_study(es_robust):
    from raidstudy.report.plots import plot_event_study

    fig, ax = plot_event_study(results=es_robust, title="simulated")
    assert ax.get_title() == "simulated" and "%" in ax.get_ylabel()
    fig2, ax2 = es_robust.plot_path()
    assert ax2.get_xlabel().startswith("bins of 7 days")
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw, name", [
    ({"bin_width": 0}, "bin_width"),
    ({"bin_width": 2.5}, "bin_width"),
    ({"bin_width": 500}, "bin_width"),
    ({"n_leads": -1}, "n_leads"),
    ({"n_leads": 40}, "n_leads"),
    ({"reference": 0}, "reference"),
    ({"reference": -6, "n_leads": 4}, "reference"),
    ({"control": "x"}, "control"),
])
def test_bad_parameters(decay_series, kw, name):
    with pytest.raises(ParameterError, match=name) as e:
        EventStudy(decay_series, event=decay_series.index[EV], family="poisson", **kw)
    assert e.value.name == name


def test_bin_without_usable_period(decay_series):
    y = decay_series.copy()
    y.iloc[EV + 7:EV + 14] = np.nan
    # a post bin with no collected day is reported, not estimated
    es = EventStudy(y, event=y.index[EV], family="poisson")
    assert es.bins.loc[es.bins["bin"] == 1, "kind"].item() == "no data"
    assert np.isnan(es.fit().path().set_index("bin").loc[1, "estimate"])
    # a bin wholly inside the excluded transition is reported as such, not estimated
    es = EventStudy(decay_series, event=decay_series.index[EV], family="poisson", exclude=7)
    assert es.bins.loc[es.bins["bin"] == 0, "kind"].item() == "transition"
    assert es.design.headline == {"level": "bin_1"}
    # ... but a transition that leaves no post-event bin is refused
    n_post = len(decay_series) - EV
    with pytest.raises(DataError, match="no post-event bin has a usable period"):
        EventStudy(decay_series, event=decay_series.index[EV], family="poisson", exclude=n_post)


def test_bad_input_dynamic_summary_and_misfit(decay_series):
    with pytest.raises(ParameterError, match="event"):
        dynamic_summary(decay_series, family="poisson")
    with pytest.raises(ParameterError, match="half_life_bounds"):
        dynamic_summary(decay_series, event=decay_series.index[EV], family="poisson", half_life_bounds=(5, 1))
    with pytest.raises(ParameterError, match="results_or_model"):
        misfit_test(decay_series)
    with pytest.raises(ParameterError, match="share"):
        EventStudy(decay_series, event=decay_series.index[EV], family="poisson").fit(
            cov_type="robust").recovery(1.5)
    short = decay_series.iloc[:EV + 10]
    with pytest.raises(DataError, match="at least 3"):
        misfit_test(ITS(short, event=short.index[EV], family="poisson"), bin_width=7,
                    fit_kwargs={"cov_type": "robust"})
