"""The SPARKS-calibrated simulator and the coverage of the default ITS intervals.

The fast checks run in ``make test``; the 500-replication study is ``@pytest.mark.slow``
(``make test-slow``). Everything here is SIMULATED data calibrated on the bundled SPARKS
series (data/processed, committed), so it works on a fresh clone.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from raidstudy.models.coverage import (
    METHODS,
    SCENARIOS,
    _sim_kwargs,
    coverage_study,
    sparks_calibration,
    to_markdown,
)
from raidstudy.models.simulate import is_simulated, simulate_calibrated


@pytest.fixture(scope="module")
def real():
    import raidstudy as rs

    spec = rs.validate_parameters(event_id="sparks_2020")
    return spec.build_model()


@pytest.fixture(scope="module")
def cal():
    return sparks_calibration()


# --------------------------------------------------------------------------- the simulator
def test_calibration_matches_the_issue(cal, real):
    # ARMA(1,1) of the log residuals: phi about 0.95 as in the issue; theta -0.73 here
    # (the issue quotes about -0.81; both describe a persistent component under day-to-day noise)
    assert 0.92 < cal.phi < 0.98
    assert -0.85 < cal.theta < -0.65
    assert 0.1 < cal.sigma < 0.3
    assert cal.arma_converged
    d = real.design
    assert len(cal.index) == 485 == len(real.frame.index)
    assert cal.missing.sum() == d.missing.sum() > 20 and cal.excluded.sum() == 1
    np.testing.assert_array_equal(cal.missing, d.missing)
    np.testing.assert_array_equal(cal.excluded, d.excluded)
    # the truth is the headline fit's linear predictor; its fitted mean on the fitted days
    res = real.fit(cov_type="nonrobust")
    np.testing.assert_allclose(np.exp(cal.eta[d.fit]), res._state.mu, rtol=1e-10)
    assert cal.level == pytest.approx(float(res.params["level"]))
    # residuals: log((y + 0.5)/mu) on fitted days, NaN elsewhere
    assert np.isnan(cal.residuals[~d.fit]).all() and np.isfinite(cal.residuals[d.fit]).all()


def test_simulated_series_is_labelled_and_has_the_real_gaps(cal, real):
    df = simulate_calibrated(cal, seed=1)
    assert df.attrs["simulated"] is True
    assert cal.outcome.startswith("simulated")
    assert is_simulated(df[cal.outcome])
    y = df[cal.outcome].to_numpy()
    np.testing.assert_array_equal(np.isnan(y), cal.missing)
    assert (y[~cal.missing] >= 0).all() and np.all(y[~cal.missing] == np.round(y[~cal.missing]))
    pd.testing.assert_index_equal(df.index, real.frame.index)
    m = cal.model(df)
    np.testing.assert_array_equal(m.design.missing, real.design.missing)
    np.testing.assert_array_equal(m.design.excluded, real.design.excluded)
    assert m.design.names == real.design.names
    np.testing.assert_array_equal(m.design.X, real.design.X)


def test_simulator_is_deterministic_and_mean_preserving(cal):
    a = simulate_calibrated(cal, seed=[3, 4])
    b = simulate_calibrated(cal, seed=[3, 4])
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate_calibrated(cal, seed=[3, 5]))
    # E[mu_t] = exp(eta_t): the noise is centred by its exact variance, also when the
    # post-event innovation variance changes
    for ratio in (1.0, 2.3):
        mus = np.array([simulate_calibrated(cal, seed=s, post_innovation_ratio=ratio)["mu"].to_numpy()
                        for s in range(300)])
        rel = mus.mean(axis=0) / np.exp(cal.eta)
        # stationary SD of u is 0.22: the mean of 300 lognormal draws is within ~4 % of 1
        assert abs(np.median(rel) - 1) < 0.03
        assert np.all(np.abs(rel - 1) < 0.2)


def test_post_variance_scenario_raises_the_post_noise(cal):
    pre = cal.index < cal.event
    post = ~pre
    sd = {r: np.mean([np.diff(np.log(simulate_calibrated(cal, seed=s, post_innovation_ratio=r)["mu"]))[
        post[1:] & post[:-1]].std() for s in range(20)]) for r in (1.0, 2.3)}
    assert sd[2.3] / sd[1.0] == pytest.approx(math.sqrt(2.3), rel=0.08)


def test_mild_ar1_scenario_matches_the_stationary_sd(cal):
    kw = _sim_kwargs(cal, SCENARIOS["ar1 phi=0.37"])
    assert kw["phi"] == 0.37 and kw["theta"] == 0.0
    assert cal.marginal_sd(0.37, 0.0, kw["sigma"]) == pytest.approx(cal.marginal_sd())


def test_true_relative_effect(cal):
    df = simulate_calibrated(cal, seed=0)
    post = cal.post
    y = df[cal.outcome].to_numpy()
    want = np.nansum(y[post]) / np.exp(cal.eta_cf[post]).sum() - 1
    assert cal.true_relative(y) == pytest.approx(want)
    assert -1 < cal.true_relative() < 0  # the SPARKS drop


# --------------------------------------------------------------------------- the study
def test_study_is_deterministic_and_independent_of_n_jobs(cal):
    kw = {"scenarios": {"sparks": {}}, "methods": {"hac rule": METHODS["hac rule"]}, "n_rep": 4, "seed": 7,
          "calibration": cal, "chunk": 2}
    t1, r1 = coverage_study(n_jobs=1, return_records=True, **kw)
    t2, r2 = coverage_study(n_jobs=2, return_records=True, **kw)
    pd.testing.assert_frame_equal(t1, t2)
    pd.testing.assert_frame_equal(r1, r2)
    assert set(t1.columns) >= {"scenario", "method", "n", "coverage", "mc_se", "median_width", "failed",
                               "rel_coverage", "rel_mc_se"}
    assert "| sparks | hac rule | 4 |" in to_markdown(t1)


# Two-sided Monte Carlo bounds for N_FAST replications of the default 95 % interval on the
# SPARKS-calibrated series. With n = 80: SE of a 0.95 coverage is 0.024, so the lower bound
# 0.875 (70/80) is 3 SE below 0.95 (P(fail) about 0.5 % if the coverage is 0.95) and 4.9 SE of a
# 0.65 method above 0.65 (such a method passes with probability < 1e-6); the upper bound
# 0.9875 (79/80) fails a method whose intervals all cover (over-wide intervals) and a 0.95
# method only if all 80 cover (P = 0.95^80 = 1.7 %). The 80 % interval of the same fits is
# checked too: [0.65, 0.95] is 3.3 SE either side of 0.80, so it fails intervals that are too
# wide as well as too narrow.
N_FAST = 80


def test_default_intervals_cover_on_the_sparks_simulator_fast(cal):
    tab, rec = coverage_study(scenarios={"sparks": {}}, methods={"default": {}}, n_rep=N_FAST, seed=2024,
                              calibration=cal, relative=False, return_records=True)
    row = tab.iloc[0]
    assert row["failed"] == 0 and row["n"] == N_FAST
    assert 0.875 <= row["coverage"] <= 0.9875, to_markdown(tab)
    # the 80 % intervals of the same fits, from the estimates and the 95 % limits' critical value
    ok = rec[~rec["failed"].astype(bool)]
    model_df = simulate_calibrated(cal, seed=[2024, 0, 0])  # any replicate: same design, same critical values
    res = cal.model(model_df).fit()
    ci95 = res.conf_int(0.05).loc["level"]
    ci80 = res.conf_int(0.20).loc["level"]
    ratio = float((ci80["upper"] - ci80["lower"]) / (ci95["upper"] - ci95["lower"]))
    half80 = (ok["hi"] - ok["lo"]) / 2 * ratio
    mid = (ok["hi"] + ok["lo"]) / 2
    c80 = float(np.mean(np.abs(mid - cal.level) <= half80))
    assert 0.65 <= c80 <= 0.95, c80


@pytest.mark.slow
def test_coverage_table_500_replications(cal, capsys):
    n_rep = 500
    tab = coverage_study(n_rep=n_rep, seed=0, n_jobs=2, calibration=cal)
    with capsys.disabled():
        print()
        print(to_markdown(tab))
    default = tab[tab["method"] == "default"]
    assert len(default) == len(SCENARIOS)
    assert (default["n"] >= 0.98 * n_rep).all()
    for _, r in default.iterrows():
        assert 0.92 <= r["coverage"] <= 0.98, (r["scenario"], r["coverage"])
