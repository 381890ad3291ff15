"""In-time placebos over the whole history: independent windows, catalogued events, the batched fit.

All series here are SIMULATED (raidstudy.models.simulate.simulate_its).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import DataError, ParameterError
from raidstudy.io import dumps_json
from raidstudy.models.its import ITS
from raidstudy.models.placebo import TABLE_COLUMNS, in_time_placebos
from raidstudy.models.simulate import simulate_its

PRE, POST = 200, 60


def _series(family="negbin", n=1500, event=700, level=-0.5, seed=5, holes=True):
    d = simulate_its(family=family, n=n, event=event, level=level, seed=seed)
    if holes:
        d.loc[d.index[100:104], "y"] = np.nan  # missing days: left out, never zero
        d.loc[d.index[1210], "y"] = np.nan
    return d[["y"]]


def _run(d, event=700, family="negbin", fit_kwargs=None, **kw):
    kw.setdefault("n_dense", 6)
    return in_time_placebos(d, event=d.index[event], pre_periods=PRE, post_periods=POST,
                            its_kwargs={"outcome": "y", "family": family, "exclude": 1},
                            fit_kwargs=fit_kwargs, **kw)


# ------------------------------------------------------------------ windows
def test_independent_windows_do_not_overlap_and_stay_out_of_the_event_window():
    d = _series()
    res = _run(d, n_dense=50)
    t = res.table
    pos = d.index.get_indexer
    lo, hi = 700 - PRE, 700 + POST
    for kind in ("independent", "dense"):
        s, e = pos(t.loc[t.kind == kind, "start"]), pos(t.loc[t.kind == kind, "end"])
        assert np.all(e - s + 1 == PRE + POST), "every window has the real fit's length"
        assert np.all((e < lo) | (s >= hi)), f"a {kind} window reaches into the event's window"
    ind = t[t.kind == "independent"]
    s, e = np.sort(pos(ind["start"])), np.sort(pos(ind["end"]))
    assert np.all(s[1:] > e[:-1]), "independent windows overlap"
    assert res.n_independent == len(ind) == 3  # [240, 500) before the event's window; [760, 1020), [1020, 1280) after
    assert np.all(pos(ind["date"]) - pos(ind["start"]) == PRE), "the fake event sits where the real one does"
    assert list(t.columns) == TABLE_COLUMNS
    assert res.n_dense == 50 and not t.loc[t.kind == "dense", "used"].any(), "dense dates never enter a p-value"


def test_windows_with_too_many_missing_periods_are_listed_with_a_reason():
    d = _series()
    d.loc[d.index[800:840], "y"] = np.nan  # 40 of 260 days in the first window after the event's
    res = _run(d)
    row = res.table[(res.table.kind == "independent") & (res.table.start == d.index[760])].iloc[0]
    assert not row.used and np.isnan(row.estimate) and "missing" in row.note
    assert res.n_independent == 2


def test_a_catalogued_event_inside_a_window_is_excluded_or_flagged():
    d = _series()
    inside = d.index[900]  # in the independent window [760, 1020)
    ex = _run(d, other_events=[inside, d.index[700]])  # the real event itself is ignored
    row = ex.table[(ex.table.kind == "independent") & (ex.table.start == d.index[760])].iloc[0]
    assert not row.used and np.isnan(row.estimate) and row.note.startswith("excluded")
    assert ex.n_independent == 2
    fl = _run(d, other_events=[inside], other_events_rule="flag")
    row = fl.table[(fl.table.kind == "independent") & (fl.table.start == d.index[760])].iloc[0]
    assert row.used and np.isfinite(row.estimate) and row.note.startswith("flagged")
    assert fl.n_independent == 3
    # a month-precision entry (dated the 1st) covers its whole month, so it also blocks the window
    # that starts later in that month; a day-precision one with the same date does not
    start = d.index[1020]
    assert start.day > 1
    for prec, blocked in (("month", True), ("day", False)):
        cat = pd.DataFrame({"event_id": ["m"], "date": [start.replace(day=1)], "date_precision": [prec]})
        mo = _run(d, other_events=cat)
        row = mo.table[(mo.table.kind == "independent") & (mo.table.start == start)].iloc[0]
        assert (row.other_events == "m") is blocked and row.used is not blocked


# ------------------------------------------------------------------ the batched fit equals the engine
@pytest.mark.parametrize("family,fit_kwargs", [
    ("negbin", None), ("poisson", None), ("gaussian", None),
    ("negbin", {"cov_type": "hac"}), ("quasipoisson", {"cov_type": "nonrobust"}),
])
def test_batched_estimates_equal_one_by_one_engine_fits(family, fit_kwargs):
    d = _series(family=family)
    res = _run(d, family=family, fit_kwargs=fit_kwargs)
    rows = res.table[res.table.estimate.notna()]
    assert len(rows) >= 8 and not rows.note.str.contains("one by one").any()
    for r in rows.itertuples():
        s = d.index.get_loc(r.start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = ITS(d.iloc[s:s + PRE + POST], outcome="y", event=r.date, family=family, exclude=1).fit(
                **(fit_kwargs or {}))
        assert r.estimate == pytest.approx(f.params["level"], abs=1e-6)
        assert r.std_error == pytest.approx(f.std_errors["level"], abs=1e-6)
    real = ITS(d.iloc[700 - PRE:700 + POST], outcome="y", event=d.index[700], family=family, exclude=1).fit(
        **(fit_kwargs or {}))
    assert res.real["estimate"] == pytest.approx(real.params["level"], abs=1e-12)


# ------------------------------------------------------------------ the p-values
def test_a_planted_effect_beats_every_independent_placebo():
    d = simulate_its(family="poisson", n=2400, event=1200, level=-0.8, fourier_amp=0.0,
                     seed=21)[["y"]]
    res = in_time_placebos(d, event=d.index[1200], pre_periods=60, post_periods=20, n_dense=0,
                           its_kwargs={"outcome": "y", "family": "poisson"})
    assert res.n_independent == 28
    assert res.p_value == res.p_value_studentized == pytest.approx(1 / 29)
    assert res.p_at_floor and res.min_attainable_p == pytest.approx(1 / 29)


def test_without_an_effect_the_p_value_is_roughly_uniform():
    ps = []
    for seed in range(24):
        # no seasonality the model leaves out: the real date is the same calendar day in every
        # replication, so an unmodelled annual cycle would make it systematically unlike the rest
        d = simulate_its(family="poisson", n=1400, event=700, level=0.0, slope=0.0, fourier_amp=0.0,
                         seed=100 + seed)[["y"]]
        r = in_time_placebos(d, event=d.index[700], pre_periods=60, post_periods=20, n_dense=0,
                             its_kwargs={"outcome": "y", "family": "poisson"})
        ps.append(r.p_value_studentized)
    ps = np.array(ps)
    assert 0.3 < ps.mean() < 0.7, ps
    assert np.mean(ps <= 0.1) < 0.3, ps


def test_to_dict_is_json_deterministic_and_states_the_floor():
    d = _series(family="poisson")
    a = _run(d, family="poisson", other_events=[d.index[900]]).to_dict()
    b = _run(d, family="poisson", other_events=[d.index[900]]).to_dict()
    assert dumps_json(a) == dumps_json(b)
    back = json.loads(dumps_json(a))
    assert back["n_independent"] == 2 and back["n_candidates"] == 3 and back["n_skipped"] == 1
    assert back["min_attainable_p"] == pytest.approx(1 / 3)
    assert min(back["p_value"], back["p_value_studentized"]) >= back["min_attainable_p"] - 1e-9
    assert back["can_reach_5pct"] is False and "cannot reach the 5% level" in back["caution"]
    assert len(back["independent"]) == 3 and back["dense"]["n"] == 6
    k = sum(abs(r["estimate"]) >= abs(back["real"]["estimate"]) for r in back["independent"] if r["used"])
    assert back["n_as_extreme"] == k and back["p_value"] == pytest.approx((1 + k) / 3)


# ------------------------------------------------------------------ bad input
def test_a_series_holding_only_the_event_window_is_a_clear_error():
    d = _series().iloc[700 - PRE:700 + POST]
    with pytest.raises(DataError, match="pre_periods / post_periods"):
        _run(d, event=PRE)


def test_all_windows_blocked_is_a_clear_error():
    d = _series()
    blockers = [d.index[i] for i in (300, 800, 1100)]
    with pytest.raises(DataError, match="other_events_rule='flag'"):
        _run(d, other_events=blockers)


@pytest.mark.parametrize("kw,name", [({"other_events_rule": "drop"}, "other_events_rule"),
                                     ({"n_dense": -1}, "n_dense"), ({"max_missing": 1.5}, "max_missing")])
def test_bad_parameters_are_named(kw, name):
    with pytest.raises(ParameterError, match=name):
        _run(_series(), **kw)


def test_bad_window_length_is_named():
    d = _series()
    with pytest.raises(ParameterError, match="pre_periods"):
        in_time_placebos(d, event=d.index[700], pre_periods=0, post_periods=60, its_kwargs={"outcome": "y"})


# ------------------------------------------------------------------ the earlier check, until its callers move
def test_p_values_count_ties_and_use_independent_windows_only():
    from raidstudy.models.placebo import PlaceboResult

    est = [0.5, -1.0, 0.2, -3.0, 9.0]
    se = [1.0, 1.0, 0.1, 1.0, 1.0]
    rows = [{"kind": "independent", "date": pd.Timestamp("2020-01-01") + pd.Timedelta(days=i), "start": None,
             "end": None, "estimate": e, "std_error": s, "statistic": e / s, "n_missing": 0, "other_events": "",
             "used": i < 4, "note": ""} for i, (e, s) in enumerate(zip(est, se))]
    rows.append({**rows[0], "kind": "dense", "estimate": 50.0, "statistic": 50.0, "used": False})
    res = PlaceboResult(table=pd.DataFrame(rows, columns=TABLE_COLUMNS),
                        real={"estimate": -1.0, "std_error": 0.5, "statistic": -2.0}, term="level",
                        family="poisson", cov_type="ewc", pre_periods=1, post_periods=1, transition_periods=0)
    assert res.n_independent == 4  # the unused window and the dense row do not count
    assert res.p_value == pytest.approx((1 + 2) / 5)  # |-1.0| (a tie) and |-3.0|
    assert res.p_value_studentized == pytest.approx((1 + 2) / 5)  # |2.0| and |-3.0| reach |-2|
    assert not res.p_at_floor and res.min_attainable_p == pytest.approx(0.2)
