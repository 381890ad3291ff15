"""The ARMA-errors robustness model (raidstudy.models.its.arma)."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from raidstudy.errors import ModelError, ParameterError
from raidstudy.io import dumps_json
from raidstudy.models.its import ITS
from raidstudy.models.its.arma import fit_arma_errors
from raidstudy.models.simulate import simulate_its


@pytest.fixture(scope="module")
def sparks():
    import raidstudy as rs

    spec = rs.validate_parameters(event_id="sparks_2020")
    return spec, spec.build_model()


@pytest.fixture(scope="module")
def sparks_fit(sparks):
    _, model = sparks
    t0 = time.perf_counter()
    res = fit_arma_errors(model)
    return res, time.perf_counter() - t0


def _hand_design(spec):
    """The SPARKS regression built by hand from the data (not from the ITS design)."""
    df = spec.model_data()
    y = df.iloc[:, 0].to_numpy(dtype=float)
    n = len(y)
    t = np.arange(n, dtype=float)
    ev = int(df.index.get_indexer([pd.Timestamp(spec.event_date).normalize()])[0])
    L = (t >= ev).astype(float)
    cols = {"const": np.ones(n), "trend": t, "level": L, "slope": (t - ev) * L}
    for k, name in enumerate(["Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], start=1):
        cols[f"dow_{name}"] = (df.index.day_of_week == k).astype(float)
    X = pd.DataFrame(cols)
    endog = np.log1p(y)
    endog[ev] = np.nan  # the excluded transition day
    return endog, X, ev


def test_sparks_equals_a_direct_statsmodels_fit(sparks, sparks_fit):
    spec, model = sparks
    res, _ = sparks_fit
    endog, X, _ = _hand_design(spec)
    assert list(X.columns) == model.design.names
    np.testing.assert_allclose(X.to_numpy(), model.design.X)
    assert np.isnan(endog).sum() == spec.outcome.isna().sum() + 1  # the missing days + the transition day
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    names = model.design.names
    arma = res.params[["ar.L1", "ma.L1", "sigma2"]].to_numpy()
    # (1) the coefficients are SARIMAX's Kalman filter with the coefficients in the state vector
    mod = SARIMAX(endog, exog=X, order=(1, 0, 1), trend="n", mle_regression=False)
    f = mod.filter(arma)
    k0 = mod.k_states - X.shape[1]
    np.testing.assert_allclose(res.params[names].to_numpy(), f.filtered_state[k0:, -1], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.std_errors[names].to_numpy(),
                               np.sqrt(np.diag(f.filtered_state_cov[k0:, k0:, -1])), rtol=1e-8)
    # (2) the fit is the exact maximum-likelihood fit of SARIMAX with the coefficients as
    # parameters: the same log-likelihood at our estimates, and statsmodels' optimiser started
    # there finds nothing better
    full = SARIMAX(endog, exog=X, order=(1, 0, 1), trend="n")
    both = res.params[names + ["ar.L1", "ma.L1", "sigma2"]].to_numpy()
    assert full.loglike(both) == pytest.approx(res.loglike, abs=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = full.fit(start_params=both, disp=False)
    assert again.llf <= res.loglike + 1e-4
    np.testing.assert_allclose(np.asarray(again.params)[[2, 10, 11]], both[[2, 10, 11]], atol=2e-3)
    assert res.converged and res.nobs == len(spec.outcome) - spec.outcome.isna().sum() - 1
    assert res.transform == "log(y + 1)"


def test_coefficients_are_gls_given_the_arma_parameters(sparks, sparks_fit):
    """The Kalman-filter coefficients equal GLS with the ARMA(1,1) covariance on the observed days."""
    _, model = sparks
    res, _ = sparks_fit
    d = model.design
    obs = d.fit
    phi, theta, s2 = (float(res.params[k]) for k in ("ar.L1", "ma.L1", "sigma2"))
    beta_kf = res.params[d.names].to_numpy()
    se_kf = res.std_errors[d.names].to_numpy()
    # ARMA(1,1) autocovariances: g0 = s2 (1 + 2 phi theta + theta^2)/(1 - phi^2), g1 = s2 (phi + theta)(1 + phi theta)/(1 - phi^2)
    g0 = s2 * (1 + 2 * phi * theta + theta ** 2) / (1 - phi ** 2)
    g1 = s2 * (phi + theta) * (1 + phi * theta) / (1 - phi ** 2)
    pos = d.tpos[obs]
    lag = np.abs(pos[:, None] - pos[None, :])
    S = np.where(lag == 0, g0, g1 * phi ** np.maximum(lag - 1, 0))
    C = linalg.cho_factor(S)
    X, y = d.X[obs], np.log1p(d.y[obs])
    XtSi = linalg.cho_solve(C, X).T
    V = np.linalg.inv(XtSi @ X)
    beta = V @ (XtSi @ y)
    np.testing.assert_allclose(beta_kf, beta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(se_kf, np.sqrt(np.diag(V)), rtol=1e-3)


def test_sparks_fit_is_stable_fast_and_reported(sparks_fit):
    res, elapsed = sparks_fit
    assert res.converged
    phi, theta = res.params["ar.L1"], res.params["ma.L1"]
    assert 0.9 < phi < 0.995 and -0.9 < theta < -0.6
    assert not res.flags
    lvl = res.level()
    assert -2.2 < lvl["estimate"] < -0.8  # a large drop, as in every SPARKS model
    assert lvl["ci_low"] < lvl["estimate"] < lvl["ci_high"]
    assert lvl["rate_ratio"] == pytest.approx(np.exp(lvl["estimate"]))
    assert lvl["pct"] == pytest.approx(100 * (np.exp(lvl["estimate"]) - 1))
    ci = res.conf_int(0.10)
    assert (ci["lower"] <= res.params).all()
    assert "coverage" in res.coverage_note
    # about 0.5 s with the ARMA standard errors on a loaded core; generous for CI
    assert elapsed < 10, elapsed


def test_to_dict_is_deterministic():
    df = simulate_its(family="negbin", n=200, event=120, ar=0.5, seed=5)  # SIMULATED
    model = ITS(df[["y"]], outcome="y", event=df.index[120])
    a = fit_arma_errors(model).to_dict()
    b = fit_arma_errors(model).to_dict()
    assert dumps_json(a) == dumps_json(b)
    assert a["order"] == [1, 0, 1] and a["converged"] is True
    assert {e["term"] for e in a["estimates"]} >= {"level", "slope", "ar.L1", "ma.L1", "sigma2"}


def test_recovers_a_planted_level():
    # SIMULATED: gaussian series, AR(1) errors phi = 0.6, planted level -5 (base 100: -0.05 * 100)
    hits = 0
    ests, phis = [], []
    for seed in range(6):
        df = simulate_its(family="gaussian", n=240, event=160, level=-0.05, slope=0.0, trend=0.0, ar=0.6,
                          noise_sd=0.01, fourier_amp=0.0, seed=seed)
        m = ITS(df[["y"]], outcome="y", event=df.index[160], family="gaussian", slope=False)
        r = fit_arma_errors(m, order=(1, 0, 0))
        lv = r.level()
        ests.append(lv["estimate"])
        hits += lv["ci_low"] <= -5.0 <= lv["ci_high"]
        assert "rate_ratio" not in lv
        phis.append(r.params["ar.L1"])
        assert r.converged
    assert abs(np.mean(ests) + 5.0) < 0.5
    assert abs(np.mean(phis) - 0.6) < 0.1 and min(phis) > 0.3
    assert hits >= 4


def test_count_family_planted_level_with_missing_days():
    # SIMULATED negbin counts with a planted 40 % drop; 30 days dropped from the frame and 10 set to NaN
    df = simulate_its(family="negbin", n=400, event=250, level=np.log(0.6), slope=0.0, ar=0.5, noise_sd=0.08,
                      seed=11)
    rng = np.random.default_rng(0)
    gone = rng.choice(np.r_[0:240, 260:400], 30, replace=False)
    nan = rng.choice(np.setdiff1d(np.r_[0:240, 260:400], gone), 10, replace=False)
    y = df["y"].copy()
    y.iloc[nan] = np.nan
    kept = y.drop(y.index[gone])
    m = ITS(kept.rename("simulated_counts").to_frame(), event=df.index[250], family="negbin", slope=False,
            freq="D")
    r = fit_arma_errors(m)
    assert r.nobs == 400 - 40
    lv = r.level()
    assert lv["ci_low"] < np.log(0.6) < lv["ci_high"]
    assert 0.4 < lv["rate_ratio"] < 0.8
    # the same series with the gaps as NaN rows gives the same fit
    y2 = df["y"].copy()
    y2.iloc[np.r_[gone, nan]] = np.nan
    m2 = ITS(y2.rename("simulated_counts").to_frame(), event=df.index[250], family="negbin", slope=False)
    r2 = fit_arma_errors(m2)
    np.testing.assert_allclose(r2.params.to_numpy(), r.params.to_numpy(), rtol=1e-8)


def test_bad_input():
    df = simulate_its(family="negbin", n=200, event=120, seed=1)
    df["control"] = simulate_its(family="negbin", n=200, event=120, level=0.0, seed=2)["y"]
    comp = ITS(df[["y", "control"]], outcome="y", control="control", event=df.index[120])
    with pytest.raises(ModelError, match="comparative"):
        fit_arma_errors(comp)
    single = ITS(df[["y"]], outcome="y", event=df.index[120])
    with pytest.raises(ParameterError):
        fit_arma_errors(single, order=(1, 1, 1))
    with pytest.raises(ParameterError):
        fit_arma_errors(single, order=(0, 0, 0))
    with pytest.raises(ParameterError):
        fit_arma_errors("not a model")


def test_fast_whitening_equals_the_dense_cholesky():
    from statsmodels.tsa.arima_process import arma_acovf

    from raidstudy.models.its.arma import _whiten_arma11

    rng = np.random.default_rng(3)
    n = 60
    obs = rng.random(n) > 0.2
    obs[0] = obs[-1] = True
    Y = rng.standard_normal((n, 3))
    pos = np.flatnonzero(obs)
    for phi, theta in [(0.95, -0.8), (0.3, 0.0), (0.0, 0.5), (-0.4, 0.2)]:
        W, half_logdet = _whiten_arma11(phi, theta, Y, obs)
        acov = arma_acovf(np.r_[1.0, -phi], np.r_[1.0, theta], nobs=n)
        c = linalg.cholesky(acov[np.abs(pos[:, None] - pos[None, :])], lower=True)
        np.testing.assert_allclose(W, linalg.solve_triangular(c, Y[obs], lower=True), rtol=1e-9, atol=1e-10)
        assert half_logdet == pytest.approx(np.sum(np.log(np.diag(c))), rel=1e-10)


def test_other_orders_use_the_exact_likelihood_too():
    # SIMULATED; AR(2) errors go through the dense (Cholesky) path
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from raidstudy.models.its.arma import _endog_exog

    df = simulate_its(family="negbin", n=200, event=120, ar=0.5, seed=8)
    df.iloc[[10, 11, 50, 130], 0] = np.nan
    m = ITS(df[["y"]], outcome="y", event=df.index[120])
    r = fit_arma_errors(m, order=(2, 0, 0))
    endog, X, *_ = _endog_exog(m)
    full = SARIMAX(endog, exog=X, order=(2, 0, 0), trend="n")
    names = list(X.columns) + ["ar.L1", "ar.L2", "sigma2"]
    assert full.loglike(r.params[names].to_numpy()) == pytest.approx(r.loglike, abs=1e-6)
    assert r.converged
