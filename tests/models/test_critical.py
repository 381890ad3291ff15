"""The EWC covariance and its critical values simulated for the design (raidstudy.models.its.critical).

The references are independent of the code under test: Student's t for a mean (the known
fixed-b limit of EWC), and the finite-sample behaviour of the engine's own intervals on
SIMULATED series with i.i.d. normal errors, where the simulated reference distribution is
exact, so coverage must be nominal and the normal critical value must visibly fail.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from raidstudy import ITS
from raidstudy.errors import ModelError, ParameterError
from raidstudy.models.its.covariance import ewc_meat
from raidstudy.models.its.critical import FixedBReference, reference_for


@pytest.mark.parametrize("B", [2, 4, 8, 16])
def test_a_mean_has_the_student_t_reference(B):
    n = 240
    ref = FixedBReference(np.ones((n, 1)), np.arange(n), np.zeros(n, int), n_terms=B, seed=3)
    c = np.array([1.0])
    assert ref.critical_value(c, 0.05) == pytest.approx(stats.t.ppf(0.975, B), abs=0.004)
    assert ref.critical_value(c, 0.10) == pytest.approx(stats.t.ppf(0.95, B), abs=0.004)
    assert ref.pvalue(c, stats.t.ppf(0.99, B)) == pytest.approx(0.02, abs=0.0005)
    assert ref.satterthwaite_critical_values(c[None, :], 0.05)[0] == pytest.approx(stats.t.ppf(0.975, B), rel=1e-9)


def test_ewc_meat_against_the_cosine_formula_written_out():
    rng = np.random.default_rng(0)
    t = np.array([0, 1, 2, 4, 5, 6, 9])  # gaps: periods 3, 7 and 8 are not fitted
    S = rng.standard_normal((len(t), 2))
    T = 10
    lam = [sum(np.sqrt(2) * np.cos(np.pi * j * (tt + 0.5) / T) * S[i] for i, tt in enumerate(t)) for j in (1, 2, 3)]
    expected = sum(np.outer(v, v) for v in lam) / 3
    np.testing.assert_allclose(ewc_meat(S, t, np.zeros(len(t), int), n_terms=3), expected, rtol=1e-12)


def _design_series(rng, n=220, event=150, missing=(20, 21, 22, 90, 160)):
    idx = pd.date_range("2021-01-01", periods=n, freq="D")
    t = np.arange(n)
    y = 50 + 0.05 * t - 8 * (t >= event) + 0.1 * (t - event) * (t >= event) + rng.standard_normal(n) * 3
    y[list(missing)] = np.nan
    return pd.Series(y, index=idx, name="y"), idx[event]


def test_ewc_intervals_are_exact_under_iid_errors_and_normal_ones_are_not():
    """SIMULATED gaussian series with i.i.d. errors: the simulated reference is exact, so the
    95 % interval of the level covers at its nominal rate, while the same EWC standard error
    with the normal critical value under-covers (the test can fail both ways)."""
    rng = np.random.default_rng(20201)
    reps, hits, hits_normal = 500, 0, 0
    for _ in range(reps):
        y, ev = _design_series(rng)
        r = ITS(y, event=ev, family="gaussian", dow=False).fit()
        lo, hi = r.conf_int().loc["level"]
        hits += lo <= -8 <= hi
        se = r.std_errors["level"]
        hits_normal += abs(r.params["level"] + 8) <= 1.96 * se
    cover, cover_normal = hits / reps, hits_normal / reps
    assert 0.925 <= cover <= 0.975, cover          # MC standard error about 0.01
    assert cover_normal < 0.90, cover_normal


def test_wald_test_has_its_size_under_the_null():
    rng = np.random.default_rng(7)
    reps, rejections = 300, 0
    for _ in range(reps):
        y, ev = _design_series(rng)
        r = ITS(y, event=ev, family="gaussian", dow=False).fit()
        # level and slope at their true values -8 and 0.1
        w = r.wald_test(np.eye(len(r.params))[[2, 3]], [-8.0, 0.1])
        rejections += w["p_value"] < 0.05
    assert 0.02 <= rejections / reps <= 0.09, rejections / reps


def test_wald_refuses_more_restrictions_than_cosine_terms():
    y, ev = _design_series(np.random.default_rng(1))
    r = ITS(y, event=ev, family="gaussian", dow=False).fit(ewc_terms=2)
    with pytest.raises(ModelError, match="cosine terms"):
        r.wald_test(["const", "trend", "level"])


def test_design_references_are_cached_and_seeded():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(100), np.arange(100.0), (np.arange(100) >= 60).astype(float)])
    t, g = np.arange(100), np.zeros(100, int)
    a = reference_for(X, t, g, n_terms=6, seed=1)
    assert reference_for(X.copy(), t, g, n_terms=6, seed=1) is a
    b = reference_for(X, t, g, n_terms=6, seed=2)
    assert b is not a
    c = np.array([0.0, 0.0, 1.0])
    assert a.critical_value(c) == pytest.approx(b.critical_value(c), rel=0.01)  # seeds differ, values agree
    assert a.critical_value(c) > stats.t.ppf(0.975, 6)  # a step is harder than a mean
    del rng


def test_critical_values_enter_every_interval(res_sparks_like):
    r = res_sparks_like
    ci = r.conf_int()
    q = r.critical_value("level")
    assert ci.loc["level", "upper"] == pytest.approx(r.params["level"] + q * r.std_errors["level"])
    e = r.effects()
    assert e["level"]["ci_high"] == pytest.approx(ci.loc["level", "upper"])
    assert e["relative"]["critical_value"] > stats.norm.ppf(0.975)
    ct = r.contrast_test("level")
    assert ct["p_value"] == pytest.approx(r.pvalues["level"])


@pytest.fixture(scope="module")
def res_sparks_like():
    from raidstudy.models.simulate import simulate_its

    d = simulate_its(family="negbin", n=480, event=360, level=-0.8, ar=0.6, seed=11)
    return ITS(d, outcome="y", event=d.index[360], family="negbin").fit()


def test_bad_ewc_terms():
    y, ev = _design_series(np.random.default_rng(1))
    m = ITS(y, event=ev, family="gaussian", dow=False)
    for bad in (1, 500, 2.5, True):
        with pytest.raises(ParameterError, match="ewc_terms"):
            m.fit(ewc_terms=bad)
    with pytest.raises(ParameterError, match="maxlags"):
        m.fit(maxlags=3)  # HAC lags mean nothing to EWC
