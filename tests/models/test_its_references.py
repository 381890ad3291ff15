"""Count-model results against references that do not reuse the engine's own formulas.

* relative and cumulative effects and their intervals: a Poisson GLM fitted by statsmodels
  on a design written out here, the delta method for the summed counterfactual computed in
  this file, and brute force (the same sum over 200,000 coefficient draws);
* per-period prediction intervals of the counterfactual by simulation (coefficient draws and
  Poisson noise);
* the GLM Breusch-Godfrey test and the negative-binomial-vs-Poisson likelihood-ratio test
  against statsmodels;
* the VAR(1)-prewhitened HAC against R sandwich's printed output (Investment data).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from raidstudy import ITS
from raidstudy.models.its.covariance import covariance
from raidstudy.models.simulate import simulate_its

N, EV = 300, 200


@functools.lru_cache(maxsize=None)
def _poisson_case():
    d = simulate_its(family="poisson", n=N, event=EV, level=-0.4, slope=0.001, ar=0.0, fourier_amp=0.0, seed=4)
    r = ITS(d, outcome="y", event=d.index[EV], family="poisson", dow=False).fit(cov_type="robust")
    t = np.arange(N, dtype=float)
    L = (t >= EV).astype(float)
    X = np.column_stack([np.ones(N), t, L, (t - EV) * L])  # const, trend, level, slope, written out
    ref = sm.GLM(d["y"].to_numpy(float), X, family=sm.families.Poisson()).fit(cov_type="HC0", tol=1e-13)
    return d, r, X, ref


def test_reference_fit_is_the_same_model():
    _, r, _, ref = _poisson_case()
    assert list(r.params.index) == ["const", "trend", "level", "slope"]
    np.testing.assert_allclose(r.params.to_numpy(), ref.params, rtol=1e-7)
    np.testing.assert_allclose(r.cov_params.to_numpy(), ref.cov_params(), rtol=1e-6)


def test_relative_and_cumulative_effects_by_delta_method():
    d, r, X, ref = _poisson_case()
    b, V = ref.params, ref.cov_params()
    post = np.arange(N) >= EV
    Xcf = X[post].copy()
    Xcf[:, 2:] = 0.0  # no level, no slope change: the counterfactual
    cf = np.exp(Xcf @ b)
    S_obs, S_cf = d["y"].to_numpy(float)[post].sum(), cf.sum()
    grad = (cf[:, None] * Xcf).sum(axis=0) / S_cf  # d log(S_cf) / d b
    se = np.sqrt(grad @ V @ grad)
    z = stats.norm.ppf(0.975)  # robust covariance: normal critical value
    cf_lo, cf_hi = S_cf * np.exp(-z * se), S_cf * np.exp(z * se)
    e = r.effects(n_sim=100)
    rel, cum = e["relative"], e["cumulative"]
    assert cum["observed"] == pytest.approx(S_obs, rel=1e-12)
    assert cum["counterfactual"] == pytest.approx(S_cf, rel=1e-7)
    assert cum["estimate"] == pytest.approx(S_obs - S_cf, rel=1e-6)
    assert [cum["counterfactual_ci_low"], cum["counterfactual_ci_high"]] == pytest.approx([cf_lo, cf_hi], rel=1e-6)
    assert [cum["ci_low"], cum["ci_high"]] == pytest.approx([S_obs - cf_hi, S_obs - cf_lo], rel=1e-5)
    assert rel["estimate"] == pytest.approx(S_obs / S_cf - 1, rel=1e-6)
    assert [rel["ci_low"], rel["ci_high"]] == pytest.approx([S_obs / cf_hi - 1, S_obs / cf_lo - 1], rel=1e-5)
    # the test of "no change" on the log scale
    p = 2 * stats.norm.sf(abs(np.log(S_cf) - np.log(S_obs)) / se)
    assert rel["p_value"] == pytest.approx(p, rel=1e-4, abs=1e-12)


def test_relative_and_cumulative_intervals_by_brute_force():
    """The summed counterfactual over 200,000 draws of the coefficients: quantiles close to the interval."""
    d, r, X, ref = _poisson_case()
    rng = np.random.default_rng(11)
    B = rng.multivariate_normal(ref.params, ref.cov_params(), size=200_000)
    post = np.arange(N) >= EV
    Xcf = X[post][:, :2]  # const and trend: the counterfactual
    S_cf = np.exp(B[:, :2] @ Xcf.T).sum(axis=1)
    S_obs = d["y"].to_numpy(float)[post].sum()
    lo, hi = np.quantile(S_cf, [0.025, 0.975])
    e = r.effects(n_sim=100)
    cum, rel = e["cumulative"], e["relative"]
    # the delta method on the log scale is exact for a lognormal sum; the sum of lognormals is
    # close to one here (standard error of log S_cf about 2%): within 0.3% of the draws' quantiles
    assert cum["counterfactual_ci_low"] == pytest.approx(lo, rel=3e-3)
    assert cum["counterfactual_ci_high"] == pytest.approx(hi, rel=3e-3)
    assert rel["ci_low"] == pytest.approx(S_obs / hi - 1, abs=3e-3)
    assert rel["ci_high"] == pytest.approx(S_obs / lo - 1, abs=3e-3)


def test_counterfactual_prediction_interval_by_simulation():
    """Per period: coefficient draws plus Poisson noise, 2.5% and 97.5% quantiles."""
    d, r, X, ref = _poisson_case()
    p = r.predictions(n_sim=4000, seed=2)
    rng = np.random.default_rng(5)
    B = rng.multivariate_normal(ref.params, ref.cov_params(), size=40_000)
    for k in (EV, N - 1):
        mu = np.exp(B[:, 0] + B[:, 1] * k)
        y = rng.poisson(mu)
        lo, hi = np.quantile(y, [0.025, 0.975])
        row = p.iloc[k]
        # Monte-Carlo error of the engine's 4000 draws: a few counts at a mean near 70-100
        assert row["cf_pi_low"] == pytest.approx(lo, abs=3)
        assert row["cf_pi_high"] == pytest.approx(hi, abs=3)
        # the prediction interval is wider than the interval of the mean
        assert row["cf_pi_low"] < row["cf_ci_low"] and row["cf_pi_high"] > row["cf_ci_high"]


# ------------------------------------------------------------------ diagnostics against statsmodels
@functools.lru_cache(maxsize=None)
def _count_case(family):
    d = simulate_its(family=family, n=600, event=420, seed=21)
    m = ITS(d, outcome="y", event=d.index[420], family=family, fourier=2)
    X = pd.DataFrame(m.design.X, columns=m.design.names, index=d.index)
    return d, m.fit(cov_type="robust"), X


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_glm_breusch_godfrey_matches_statsmodels(family):
    """Godfrey's LM test for a GLM: Pearson residuals on the weighted design and their lags.

    Reference: statsmodels' Lagrange-multiplier comparison (``OLSResults.compare_lm_test``) of
    the auxiliary regression of the Pearson residuals (from statsmodels' own GLM fit) on
    sqrt(w) X plus their lags (zeros before the start), against sqrt(w) X alone. (statsmodels'
    ``acorr_breusch_godfrey`` adds an intercept column of its own, which the GLM score does not
    contain, so it is not the same test for a GLM; for OLS it is, see test_its_statsmodels.)
    """
    d, r, X = _count_case(family)
    diag = r.diagnostics()
    lags = diag["breusch_godfrey"]["lags"]
    alpha = r.dispersion if family == "negbin" else 0.0
    fam = sm.families.NegativeBinomial(alpha=alpha) if family == "negbin" else sm.families.Poisson()
    g = sm.GLM(d["y"], X, family=fam).fit(tol=1e-13)
    rp = np.asarray(g.resid_pearson)
    Xw = X.to_numpy() * np.sqrt(g.mu / (1 + alpha * g.mu))[:, None]
    lagged = np.column_stack([np.r_[np.zeros(k), rp[:-k]] for k in range(1, lags + 1)])
    restricted = sm.OLS(rp, Xw).fit()
    np.testing.assert_allclose(restricted.resid, rp, atol=1e-6)  # the GLM score equations
    lm, p, df = sm.OLS(rp, np.column_stack([Xw, lagged])).fit().compare_lm_test(restricted)
    assert df == lags
    assert diag["breusch_godfrey"]["statistic"] == pytest.approx(lm, rel=1e-6)
    assert diag["breusch_godfrey"]["p_value"] == pytest.approx(p, rel=1e-6)


def test_negbin_likelihood_ratio_against_poisson_matches_statsmodels():
    d, r, X = _count_case("negbin")
    dp = r.diagnostics()["dispersion"]
    nb = sm.NegativeBinomial(d["y"], X, loglike_method="nb2").fit(
        start_params=np.r_[r.params.to_numpy(), r.dispersion], method="newton", disp=0, maxiter=100)
    po = sm.Poisson(d["y"], X).fit(method="newton", disp=0, maxiter=100)
    lr = 2 * (nb.llf - po.llf)
    assert dp["lr_vs_poisson"] == pytest.approx(lr, rel=1e-8)
    # alpha = 0 lies on the boundary: half a chi-square(1)
    assert dp["lr_vs_poisson_p_value"] == pytest.approx(0.5 * stats.chi2.sf(lr, 1), abs=1e-300)


def test_negbin_likelihood_ratio_small_overdispersion():
    """Near the boundary (little overdispersion) the p-value is informative: check it there."""
    d = simulate_its(family="negbin", n=400, event=300, nb_alpha=0.002, ar=0.0, noise_sd=0.0, fourier_amp=0.0,
                     seed=9)
    m = ITS(d, outcome="y", event=d.index[300], family="negbin")
    r = m.fit(cov_type="robust")
    X = m.design.X
    dp = r.diagnostics()["dispersion"]
    po = sm.Poisson(d["y"].to_numpy(float), X).fit(method="newton", disp=0, maxiter=100)
    nb = sm.NegativeBinomial(d["y"].to_numpy(float), X, loglike_method="nb2").fit(
        start_params=np.r_[po.params, 0.005], method="newton", disp=0, maxiter=200)
    lr = max(2 * (nb.llf - po.llf), 0.0)
    assert 0 < lr < 50, "the case should sit near the boundary"
    assert dp["lr_vs_poisson"] == pytest.approx(lr, rel=1e-4, abs=1e-6)
    assert dp["lr_vs_poisson_p_value"] == pytest.approx(0.5 * stats.chi2.sf(lr, 1), rel=1e-3)


# ------------------------------------------------------------------ prewhitened HAC against R sandwich
# US investment data, Greene (1993), Econometric Analysis 2nd ed., Table 15.1, as shipped with R's
# sandwich package (data(Investment); values from the CSV export in vincentarelbundock/Rdatasets,
# csv/sandwich/Investment.csv). Rows 1964-1982 (RealInt is missing for 1963): RealGNP, RealInt, RealInv.
_INVESTMENT = """
876.3226604369933 2.0151876656899663 133.84636526040953
929.3975255513717 1.8550336677202108 152.63582571274878
984.8879624804587 1.2724583109198613 163.75716519020324
1011.3837591702505 1.1936477331943696 155.32506956741716
1058.1536224860672 0.7582797875031551 161.49745577901624
1087.6829127779697 0.7209813423794547 172.0244267772785
1085.5112083105523 0.5807178246341778 157.68179332968833
1122.3830850953025 -0.10633132859485794 173.31527965836892
1185.9 0.3441828976148269 195
1254.2789598108748 0.6899999999999897 217.30496453900707
1246.263468891206 -0.9926950354609865 198.73131734445602
1231.576436918674 -3.056569343065691 163.84450274266635
1298.1713767568385 0.29290881628111176 194.87683240139035
1369.7250981792215 -0.36590297718000375 231.4173509460907
1438.5719984044676 0.055501606569090534 257.0136949873687
1479.5006731122262 1.6375322430527763 258.84224697099495
1475.002802376415 2.59119691592217 225.2550162537832
1513.8362201496361 4.0488532675709 243.36373885415597
1485.402165506574 5.003806497898947 200.35769528228926
"""
# Printed by sandwich's own example checks (tests/Examples/sandwich-Ex.Rout.save in the CRAN
# mirror cran/sandwich, commit 85206d86c73ec77ad3328931cc8f43d9d81f2914) for
# fm <- lm(RealInv ~ RealGNP + RealInt, data = Investment):
# NeweyWest(fm): VAR(1) prewhitening, Bartlett kernel, automatic lag (floor(bwNeweyWest) = 0 here),
# adjust = FALSE
_R_NEWEYWEST = [[594.1004817, -0.5617817294, 36.04992496],
                [-0.5617817, 0.0005563172, -0.04815937],
                [36.0499250, -0.0481593694, 13.24912546]]
# NeweyWest(fm, lag = 4, prewhite = FALSE)
_R_NEWEYWEST_4 = [[359.4170681, -0.3115505035, -4.089319305],
                  [-0.3115505, 0.0002805888, -0.005355931],
                  [-4.0893193, -0.0053559312, 11.171472998]]


def _investment_cov(maxlags, prewhite):
    a = np.array(_INVESTMENT.split(), dtype=float).reshape(-1, 3)
    X = np.column_stack([np.ones(len(a)), a[:, 0], a[:, 1]])
    y = a[:, 2]
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    n = len(y)
    # R's summary(fm): (Intercept) -12.53360, RealGNP 0.16914, RealInt -1.00144
    np.testing.assert_allclose(b, [-12.53360, 0.16914, -1.00144], atol=5e-5)
    one = np.ones(n)
    return covariance(X, y - X @ b, one, one, cov_type="hac", maxlags=maxlags, small_sample=False, scale=1.0,
                      tpos=np.arange(n), group=np.zeros(n, int), n_grid=n, prewhite=prewhite)


def test_prewhitened_hac_matches_r_sandwich_neweywest():
    np.testing.assert_allclose(_investment_cov(0, True), _R_NEWEYWEST, rtol=2e-7)
    np.testing.assert_allclose(_investment_cov(4, False), _R_NEWEYWEST_4, rtol=2e-7)
    # prewhitening matters here: the unwhitened lag-0 (HC0) matrix is far from the printed one
    assert not np.allclose(_investment_cov(0, False), _R_NEWEYWEST, rtol=0.05)
