"""The ITS engine gives the same numbers as a hand-built statsmodels fit of the same design."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.diagnostic import acorr_breusch_godfrey, acorr_ljungbox

from raidstudy import ITS
from raidstudy.models.simulate import simulate_its


@functools.lru_cache(maxsize=None)
def _case(fam):
    d = simulate_its(family=fam, n=600, event=420, seed=21)
    m = ITS(d, outcome="y", event=d.index[420], family=fam, fourier=2)
    X = pd.DataFrame(m.design.X, columns=m.design.names, index=d.index)
    return fam, d, m, X


ALL = ["gaussian", "poisson", "quasipoisson", "negbin"]


def _sm_fit(fam, y, X, alpha=None, **fit_kw):
    if fam == "gaussian":
        return sm.OLS(y, X).fit(**fit_kw)
    if fam == "negbin":
        return sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=alpha)).fit(**fit_kw)
    if fam == "quasipoisson":
        return sm.GLM(y, X, family=sm.families.Poisson()).fit(scale="X2", **fit_kw)
    return sm.GLM(y, X, family=sm.families.Poisson()).fit(**fit_kw)


@pytest.mark.parametrize("family", ALL)
@pytest.mark.parametrize("maxlags", [0, 1, 7])
def test_hac_matches_statsmodels(family, maxlags):
    fam, d, m, X = _case(family)
    r = m.fit(cov_type="hac", maxlags=maxlags)
    kw = {"cov_type": "HAC", "cov_kwds": {"maxlags": maxlags}}
    if fam == "gaussian":
        kw["cov_kwds"]["use_correction"] = False
    ref = _sm_fit(fam, d["y"], X, alpha=r.dispersion if fam == "negbin" else None, **kw)
    # statsmodels' GLM stops IRLS at a looser deviance tolerance than the engine
    tol = 1e-5 if fam == "negbin" else 1e-7
    np.testing.assert_allclose(r.params, ref.params, rtol=tol, atol=1e-8)
    np.testing.assert_allclose(r.std_errors, ref.bse, rtol=tol)


def test_stata_small_sample_matches_statsmodels_correction():
    fam, d, m, X = _case("gaussian")  # statsmodels' use_correction is the OLS newey scaling
    r = m.fit(cov_type="hac", maxlags=3, small_sample=True)
    ref = sm.OLS(d["y"], X).fit(cov_type="HAC", cov_kwds={"maxlags": 3, "use_correction": True}, use_t=True)
    np.testing.assert_allclose(r.std_errors, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(r.pvalues, ref.pvalues, rtol=1e-8)


@pytest.mark.parametrize("family", ALL)
@pytest.mark.parametrize("cov_type,sm_cov", [("robust", "HC0"), ("nonrobust", "nonrobust")])
def test_robust_and_classical_match_statsmodels(family, cov_type, sm_cov):
    fam, d, m, X = _case(family)
    r = m.fit(cov_type=cov_type)
    ref = _sm_fit(fam, d["y"], X, alpha=r.dispersion if fam == "negbin" else None, cov_type=sm_cov)
    np.testing.assert_allclose(r.std_errors, ref.bse, rtol=1e-5 if fam == "negbin" else 1e-7)
    if cov_type == "nonrobust" and fam == "quasipoisson":
        assert r.dispersion == pytest.approx(ref.scale, rel=1e-10)


def test_negbin_alpha_is_the_joint_mle():
    fam, d, m, X = _case("negbin")
    r = m.fit()
    start = np.r_[r.params.to_numpy(), r.dispersion] * 1.01
    ref = sm.NegativeBinomial(d["y"], X, loglike_method="nb2").fit(start_params=start, method="newton",
                                                                    disp=0, maxiter=100)
    np.testing.assert_allclose(r.params, ref.params.iloc[:-1], rtol=1e-5, atol=1e-8)
    assert r.dispersion == pytest.approx(ref.params.iloc[-1], rel=1e-5)
    assert r.loglike == pytest.approx(ref.llf, rel=1e-9)


def test_diagnostics_match_statsmodels_for_ols():
    fam, d, m, X = _case("gaussian")  # statsmodels' Breusch-Godfrey takes OLS results
    r = m.fit()
    diag = r.diagnostics()
    ols = sm.OLS(d["y"], X).fit()
    lags = diag["breusch_godfrey"]["lags"]
    lm, lmp, _, _ = acorr_breusch_godfrey(ols, nlags=lags, result_object=False)
    assert diag["breusch_godfrey"]["statistic"] == pytest.approx(lm, rel=1e-8)
    assert diag["breusch_godfrey"]["p_value"] == pytest.approx(lmp, rel=1e-6)
    lb = acorr_ljungbox(ols.resid / np.sqrt(ols.scale), lags=[lags])
    assert diag["ljung_box"]["statistic"] == pytest.approx(float(lb["lb_stat"].iloc[0]), rel=1e-8)


@pytest.mark.parametrize("family", ["poisson", "gaussian"])
def test_counterfactual_interval_matches_statsmodels_prediction(family):
    fam, d, m, X = _case(family)
    r = m.fit(cov_type="robust")
    ref = _sm_fit(fam, d["y"], X, cov_type="HC0", **({"use_t": True} if fam == "gaussian" else {}))
    Xcf = X.copy()
    Xcf[["level", "slope"]] = 0.0
    pr = ref.get_prediction(Xcf).summary_frame(alpha=0.05)
    p = r.predictions()
    lo = "mean_ci_lower"
    if fam == "gaussian":
        # statsmodels uses t quantiles for OLS, as the engine does for the gaussian family
        np.testing.assert_allclose(p["cf_ci_low"], pr[lo], rtol=1e-8)
    else:
        np.testing.assert_allclose(p["cf_ci_low"], pr[lo], rtol=1e-7)
        np.testing.assert_allclose(p["counterfactual"], pr["mean"], rtol=1e-9)
