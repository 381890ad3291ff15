"""Narrative sentences come from the results dict, never from hard-coded numbers."""
from __future__ import annotations

import copy
import json

import pytest

from raidstudy import ITS
from raidstudy.report import narrative
from raidstudy.io import dumps_json
from raidstudy.models.simulate import simulate_its


@pytest.fixture(scope="module")
def rd():
    d = simulate_its(family="negbin", n=500, event=300, level=-0.7, slope=0.004, seed=5)
    r = ITS(d, outcome="y", event=d.index[300]).fit()
    return json.loads(dumps_json(r.to_dict(n_sim=300)))  # as read back from results.json


def test_sentences_keys_and_numbers(rd):
    s = narrative.sentences(rd, outcome_label="Scene releases", event_label="the raid")
    assert {"level", "slope", "relative", "cumulative", "recovery", "model"} <= set(s)
    L = rd["effects"]["level"]
    assert f"{abs(L['pct']):.1f}%" in s["level"] and "fell" in s["level"]
    assert "95% CI" in s["level"]
    assert "lower than the counterfactual" in s["relative"]
    assert "fewer Scene releases" in s["cumulative"]
    rec = rd["effects"]["recovery"]
    assert rec["reached"] is True and rec["periods"] > 0  # the fixture's drop recovers within the window
    assert s["recovery"].startswith(
        f"Scene releases recovered to 90% of the counterfactual {rec['periods']} days after the raid "
        f"(on {rec['date'][:10]}; 95% CI: {rec['ci_low']} days to {rec['ci_high']} days")
    assert "had not" not in s["recovery"]


def test_numbers_follow_the_dict(rd):
    d2 = copy.deepcopy(rd)
    d2["effects"]["level"].update(pct=-12.34, pct_ci_low=-20.0, pct_ci_high=-5.0)
    s = narrative.sentences(d2, outcome_label="x", event_label="y")
    assert "12.3%" in s["level"] and "5.00% to 20.0% lower" in s["level"]
    d2["effects"]["level"].update(pct=3.0, pct_ci_low=-1.0, pct_ci_high=7.0)
    s = narrative.sentences(d2, outcome_label="x", event_label="y")
    assert "rose by 3.00%" in s["level"] and "from 1.00% lower to 7.00% higher" in s["level"]


def test_caution_when_diagnostics_flag(rd):
    d2 = copy.deepcopy(rd)
    d2["diagnostics"]["flags"] = ["residual autocorrelation (Ljung-Box p = 0.001)"]
    s = narrative.sentences(d2, outcome_label="x", event_label="y")
    # under EWC the intervals are built for autocorrelation, so the sentence says so
    assert d2["model"]["cov_type"] == "ewc"
    assert s["caution"].startswith("The model diagnostics flag") and "allow for it" in s["caution"]
    d2["model"]["cov_type"] = "hac"
    s = narrative.sentences(d2, outcome_label="x", event_label="y")
    assert s["caution"].startswith("Caution") and "Ljung-Box" in s["caution"] and "approximate" in s["caution"]
    d2["diagnostics"]["flags"] = []
    assert "caution" not in narrative.sentences(d2, outcome_label="x", event_label="y")


def test_recovery_not_reached(rd):
    d2 = copy.deepcopy(rd)
    d2["effects"]["recovery"].update(reached=False, periods=None, date=None, p_not_reached=0.8)
    s = narrative.sentences(d2, outcome_label="releases", event_label="the raid", unit="week")
    horizon = d2["effects"]["recovery"]["horizon"]
    assert s["recovery"] == (f"Releases had not recovered to 90% of the counterfactual within the {horizon} weeks "
                             "observed after the raid (it was not reached in 80% of simulated draws).")


@pytest.fixture(scope="module")
def rd_dynamic():
    """SIMULATED series with a collapse that decays to a persistent drop; the study's dynamic part."""
    import numpy as np
    import pandas as pd

    from raidstudy.models.its.dynamic import EventStudy, dynamic_summary

    rng = np.random.default_rng(8)
    n, ev = 420, 300
    t = np.arange(n)
    k = np.clip(t - ev, 0, None)
    eff = np.where(t >= ev, -0.3 - 1.2 * np.exp(-np.log(2) * k / 10), 0.0)
    y = pd.Series(rng.poisson(500 * np.exp(eff)), index=pd.date_range("2021-01-01", periods=n), name="simulated")
    m = ITS(y.astype(float), event=y.index[ev], family="poisson")
    r = m.fit()
    es = EventStudy.from_model(m).fit()
    ds = dynamic_summary(r)
    d = r.to_dict(n_sim=300)
    esd = es.to_dict(n_sim=300)
    d["dynamic"] = {"event_study": {**esd["event_study"], "bin_width": 7},
                    "effects": {k: esd["effects"][k] for k in ("post_window", "relative", "cumulative")},
                    "summary": ds.to_dict()}
    return json.loads(dumps_json(d))


def test_dynamic_sentences_lead_with_the_path(rd_dynamic):
    s = narrative.sentences(rd_dynamic, outcome_label="releases", event_label="the raid")
    dyn = rd_dynamic["dynamic"]
    R = dyn["effects"]["relative"]
    assert f"{abs(R['pct']):.1f}%" in s["relative"] and "left free" in s["relative"]
    first = [b for b in dyn["event_study"]["path"] if b["kind"] == "post"][0]
    assert f"{first['pct']:+.0f}%" in s["path"] and "7-day bins" in s["path"]
    dec = dyn["summary"]["decay"]
    assert f"{dec['impact']['pct']:+.0f}%" in s["decay"] and f"{dec['half_life']['estimate']:.0f} days" in s["decay"]
    assert "itsa" in s["level"] and "straight line" in s["level"]
    rec = dyn["event_study"]["recovery"]
    assert ("back to 90%" in s["recovery"]) == bool(rec["reached"])
    # a planted half-life of 10 days is recovered roughly
    assert 5 < dec["half_life"]["estimate"] < 20
