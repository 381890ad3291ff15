"""Property tests of the design matrix and of invariances of the fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raidstudy import ITS


@st.composite
def series_and_event(draw):
    n = draw(st.integers(min_value=30, max_value=150))
    ev = draw(st.integers(min_value=5, max_value=n - 3))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    freq = draw(st.sampled_from(["D", "W-MON", "MS"]))
    rng = np.random.default_rng(seed)
    y = rng.poisson(30, n).astype(float)
    idx = pd.date_range("2015-01-01", periods=n, freq=freq)
    return pd.Series(y, index=idx, name="y"), ev


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_and_event())
def test_design_invariants(arg):
    s, ev = arg
    m = ITS(s, event=s.index[ev], family="poisson", dow=False)
    X = pd.DataFrame(m.design.X, columns=m.design.names)
    t = np.arange(len(s))
    assert np.array_equal(X["trend"], t)
    assert np.array_equal(X["level"], (t >= ev).astype(float))
    assert np.array_equal(X["slope"], np.where(t >= ev, t - ev, 0.0))
    assert m.event_pos == ev


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_and_event(), st.floats(min_value=0.1, max_value=1000))
def test_poisson_scale_invariance_of_effects(arg, c):
    """Multiplying an exposure by c shifts only the intercept (log link with offset)."""
    s, ev = arg
    df = pd.DataFrame({"y": s, "e": 1.0})
    r1 = ITS(df, outcome="y", event=s.index[ev], family="poisson", offset="e", dow=False).fit(cov_type="robust")
    df["e"] = c
    r2 = ITS(df, outcome="y", event=s.index[ev], family="poisson", offset="e", dow=False).fit(cov_type="robust")
    np.testing.assert_allclose(r1.params.drop("const"), r2.params.drop("const"), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(r1.params["const"] - np.log(c), r2.params["const"], rtol=1e-6, atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(series_and_event(), st.floats(min_value=-100, max_value=100), st.floats(min_value=0.5, max_value=10))
def test_gaussian_affine_equivariance(arg, a, b):
    s, ev = arg
    r1 = ITS(s, event=s.index[ev], family="gaussian", dow=False).fit(cov_type="hac", maxlags=2)
    r2 = ITS(a + b * s, event=s.index[ev], family="gaussian", dow=False).fit(cov_type="hac", maxlags=2)
    np.testing.assert_allclose(r2.params.drop("const"), b * r1.params.drop("const"), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(r2.std_errors, b * r1.std_errors, rtol=1e-6, atol=1e-9)
