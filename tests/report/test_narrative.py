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
    assert "recovered to 90% of the counterfactual" in s["recovery"] or "had not recovered" in s["recovery"]


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
    assert s["caution"].startswith("Caution") and "Ljung-Box" in s["caution"]
    d2["diagnostics"]["flags"] = []
    assert "caution" not in narrative.sentences(d2, outcome_label="x", event_label="y")


def test_recovery_not_reached(rd):
    d2 = copy.deepcopy(rd)
    d2["effects"]["recovery"].update(reached=False, periods=None, date=None, p_not_reached=0.8)
    s = narrative.sentences(d2, outcome_label="releases", event_label="the raid", unit="week")
    assert "had not recovered" in s["recovery"] and "weeks" in s["recovery"]
