"""Simulations with planted level and slope effects for every family.

Daily series of two years (simulated, see ``raidstudy.models.simulate.simulate_its``): weekly
pattern, one annual Fourier wave, AR(1) errors (phi = 0.3 on the linear-predictor
scale), NB2 or Poisson counts; event in the middle. The model is the default one
(day-of-week terms, one Fourier pair, Newey-West HAC with the automatic lag rule).

* fast (default run): 100 replications per family; the mean estimate within tolerance
  and the coverage of the 95% intervals inside the central 99.9% range of a
  Binomial(100, 0.95) count, so the test fails for a badly wrong interval (e.g. the
  classical covariance under autocorrelation) but not by chance (seeds are fixed anyway);
  and, since that range reaches 1.00, the mean standard error within [0.75, 1.33] of the
  estimates' spread over the replications, which also fails intervals that are too wide.
* slow (``-m slow``): 500 replications per family, coverage in [0.92, 0.98].
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from raidstudy import ITS
from raidstudy.models.simulate import simulate_its

FAMILIES = ["gaussian", "poisson", "quasipoisson", "negbin"]
N, EVENT = 730, 365
LEVEL, SLOPE = -0.5, 0.002


def _truth(family):
    sc = 100.0 if family == "gaussian" else 1.0  # gaussian effects are on the base scale (base = 100)
    return {"level": LEVEL * sc, "slope": SLOPE * sc}


def _run(family, reps, seed0, cov_type="hac"):
    truth = _truth(family)
    hits = {k: 0 for k in truth}
    est = {k: [] for k in truth}
    se = {k: [] for k in truth}
    for rep in range(reps):
        d = simulate_its(family=family, n=N, event=EVENT, level=LEVEL, slope=SLOPE, seed=seed0 + rep)
        r = ITS(d, outcome="y", event=d.index[EVENT], family=family, fourier=1).fit(cov_type=cov_type)
        ci = r.conf_int(0.05)
        for k, v in truth.items():
            hits[k] += bool(ci.loc[k, "lower"] <= v <= ci.loc[k, "upper"])
            est[k].append(r.params[k])
            se[k].append(r.std_errors[k])
    # ratio of the mean reported standard error to the spread of the estimates over replications
    se_ratio = {k: float(np.mean(se[k]) / np.std(est[k], ddof=1)) for k in truth}
    return {k: hits[k] / reps for k in truth}, {k: float(np.mean(v)) for k, v in est.items()}, se_ratio


@pytest.mark.parametrize("family", FAMILIES)
def test_planted_effects_fast(family):
    reps = 100
    cover, mean, se_ratio = _run(family, reps, seed0=10_000)
    truth = _truth(family)
    # estimates: mean over replications within 3 Monte-Carlo standard errors-ish tolerances
    assert mean["level"] == pytest.approx(truth["level"], abs=0.03 * abs(truth["level"]) + 0.01 * (truth["level"] != 0))
    assert mean["slope"] == pytest.approx(truth["slope"], rel=0.08)
    lo = stats.binom.ppf(0.0005, reps, 0.95) / reps
    hi = stats.binom.ppf(0.9995, reps, 0.95) / reps
    for k, c in cover.items():
        assert lo <= c <= hi, f"{family} {k}: coverage {c:.3f} outside [{lo:.2f}, {hi:.2f}]"
    # Two-sided: with 100 replications the binomial range above reaches 1.00, so intervals that are
    # too wide would pass it. The standard errors must match the estimates' spread over the
    # replications: the sample SD of 100 estimates is within about +-25% of the truth with
    # probability > 0.999, so [0.75, 1.33] fails intervals that are a third too narrow or too wide.
    for k, ratio in se_ratio.items():
        assert 0.75 <= ratio <= 1.33, f"{family} {k}: mean SE / SD of estimates = {ratio:.3f}"


def test_classical_covariance_would_fail_the_fast_bound():
    """The fast bound has power: ignoring autocorrelation (strong AR) under-covers."""
    reps = 100
    hits = 0
    for rep in range(reps):
        d = simulate_its(family="gaussian", n=N, event=EVENT, ar=0.8, seed=20_000 + rep)
        r = ITS(d, outcome="y", event=d.index[EVENT], family="gaussian", fourier=1).fit(cov_type="nonrobust")
        ci = r.conf_int().loc["level"]
        hits += bool(ci["lower"] <= LEVEL * 100 <= ci["upper"])
    assert hits / reps < stats.binom.ppf(0.0005, reps, 0.95) / reps


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_planted_effects_coverage_slow(family):
    reps = 500
    cover, mean, se_ratio = _run(family, reps, seed0=50_000)
    truth = _truth(family)
    assert mean["level"] == pytest.approx(truth["level"], rel=0.02)
    assert mean["slope"] == pytest.approx(truth["slope"], rel=0.03)
    for k, c in cover.items():
        assert 0.92 <= c <= 0.98, f"{family} {k}: coverage {c:.3f} over {reps} replications"


def test_automatic_hac_lags_follow_the_autocorrelation():
    """The default lag choice (Newey-West 1994 plug-in, never below the rule of thumb)
    keeps the rule's lags for white-ish scores and adds lags when they are persistent."""
    from raidstudy.models.its import nw_auto_lags

    rule = nw_auto_lags(N)
    white = simulate_its(family="gaussian", n=N, event=EVENT, ar=0.0, seed=1)
    strong = simulate_its(family="gaussian", n=N, event=EVENT, ar=0.8, seed=1)
    r_white = ITS(white, outcome="y", event=white.index[EVENT], family="gaussian", fourier=1).fit(cov_type="hac")
    r_strong = ITS(strong, outcome="y", event=strong.index[EVENT], family="gaussian", fourier=1).fit(cov_type="hac")
    assert r_white.maxlags == rule
    assert r_strong.maxlags > 2 * rule
    assert "plug-in" in r_strong.cov_description


@pytest.mark.slow
def test_plugin_lags_cover_better_than_the_rule_under_strong_autocorrelation():
    reps, hits = 200, {"rule": 0, None: 0}
    for rep in range(reps):
        d = simulate_its(family="gaussian", n=N, event=EVENT, level=LEVEL, slope=SLOPE, ar=0.8, seed=30_000 + rep)
        for ml in hits:
            lo, hi = ITS(d, outcome="y", event=d.index[EVENT], family="gaussian", fourier=1).fit(
                cov_type="hac", maxlags=ml).conf_int().loc["level"]
            hits[ml] += lo <= LEVEL * 100 <= hi
    assert hits[None] > hits["rule"]
