"""Displacement across groups (raidstudy.models.groups) and its figures.

All data here are SIMULATED (``attrs["simulated"] = True``, groups named ``sim_*``) with
planted exits, entries and growth, except one smoke test on the bundled data that checks
structure only, never numbers.
"""
from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.groups import (
    GroupPanelStudy,
    group_counts,
    group_turnover,
    panel_sentence,
    placebo_dates,
)
from raidstudy.report import groups_plot

matplotlib.use("Agg")

START = pd.Timestamp("2019-01-01")
N_DAYS = 900
EVENT = START + pd.Timedelta(days=500)
N_STAY, N_EXIT, N_ENTER = 30, 12, 6
GROWTH = 0.5  # planted log growth of the event's survivors


def simulate_groups(*, growth: float = GROWTH, tercile_growth: bool = False, seed: int = 1) -> pd.DataFrame:
    """SIMULATED long frame (date, group, n_releases): stayers, exits at the event, entries at it.

    Stayers release Poisson(rate) a day; from the event on they release exp(growth) times as
    much (or, with ``tercile_growth``, only the largest third grows). Exits stop at the event,
    entries start there. Zero days are absent rows, as in the bundled table.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(START, periods=N_DAYS, freq="D")
    post = days >= EVENT
    rows = []
    rates = np.linspace(1.0, 6.0, N_STAY)
    for i, r in enumerate(rates):
        g = np.full(N_DAYS, r)
        if tercile_growth:
            if i >= 2 * N_STAY // 3:
                g[post] *= np.exp(growth)
        else:
            g[post] *= np.exp(growth)
        rows.append((f"sim_stay{i:02d}", rng.poisson(g)))
    for i in range(N_EXIT):
        rows.append((f"sim_exit{i:02d}", np.where(post, 0, rng.poisson(3.0, N_DAYS))))
    for i in range(N_ENTER):
        rows.append((f"sim_enter{i:02d}", np.where(post, rng.poisson(2.0, N_DAYS), 0)))
    recs = [(d, name, int(v)) for name, y in rows for d, v in zip(days, y) if v > 0]
    df = pd.DataFrame(recs, columns=["date", "group", "n_releases"])
    df.attrs["simulated"] = True
    df.attrs["source"] = "SIMULATED groups (tests/models/test_groups.py)"
    return df


@pytest.fixture(scope="module")
def sim_counts() -> pd.DataFrame:
    return group_counts(simulate_groups())


# --------------------------------------------------------------------------- counts
def test_group_counts_zero_days_and_missing_days(sim_counts):
    df = simulate_groups()
    miss = [START + pd.Timedelta(days=10), START + pd.Timedelta(days=11)]
    c = group_counts(df, missing_dates=miss)
    assert c.shape == (N_DAYS, N_STAY + N_EXIT + N_ENTER)
    assert c.attrs["simulated"] is True and c.attrs["n_missing"] == 2
    assert c.loc[miss].isna().all().all(), "a day not collected is NaN for every group, never zero"
    # an absent row is a zero: exits release nothing after the event
    assert (c.loc[EVENT:, "sim_exit00"] == 0).all()
    total = df.groupby("group")["n_releases"].sum()
    assert sim_counts.sum().astype(int).equals(total.reindex(sim_counts.columns).astype(int))


# --------------------------------------------------------------------------- turnover
def test_turnover_recovers_planted_exits_and_entries(sim_counts):
    t = group_turnover(sim_counts, event=EVENT, window_days=60, min_releases=20, exclude_events=None)
    p = t.params
    assert p["n_exit"] == N_EXIT and p["n_enter"] == N_ENTER
    pre = sim_counts.loc[EVENT - pd.Timedelta(days=60):EVENT - pd.Timedelta(days=1)].sum()
    post = sim_counts.loc[EVENT:EVENT + pd.Timedelta(days=59)].sum()
    exits = [g for g in sim_counts.columns if g.startswith("sim_exit")]
    enters = [g for g in sim_counts.columns if g.startswith("sim_enter")]
    assert p["exit_share"] == pytest.approx(pre[exits].sum() / pre.sum())
    assert p["entry_share"] == pytest.approx(post[enters].sum() / post.sum())
    s0 = pre / pre.sum()
    assert p["hhi_pre"] == pytest.approx(float((s0 ** 2).sum()))
    assert p["top_share_pre"] == pytest.approx(float(s0.sort_values(ascending=False).iloc[:10].sum()))
    st = t.groups.set_index("group")["status"]
    assert set(st[exits]) == {"exit"} and set(st[enters]) == {"entry"}
    # the placebo dates have no planted turnover: the event is the most extreme
    assert t.n_placebos >= 10
    assert (t.placebo["n_exit"] == 0).all() and (t.placebo["n_enter"] == 0).all()
    assert t.p_upper["n_exit"] == pytest.approx(1 / (t.n_placebos + 1))
    assert "12 released nothing" in t.sentence()
    d = t.to_dict()
    assert d["data"]["simulated"] is True and len(d["placebo"]) == t.n_placebos


def test_placebo_base_rates_computed_right(sim_counts):
    W = 45
    t = group_turnover(sim_counts, event=EVENT, window_days=W, placebo_step=30, exclude_events=None)
    # every placebo date is on the 30-day grid through the event, with complete windows
    offs = [(d - EVENT).days for d in t.placebo["date"]]
    assert all(o % 30 == 0 and o != 0 for o in offs)
    assert all((d - pd.Timedelta(days=W)) >= START and d + pd.Timedelta(days=W - 1) <= sim_counts.index[-1]
               for d in t.placebo["date"])
    # none of them has a window that holds the event
    assert all(not (d - pd.Timedelta(days=W) <= EVENT < d + pd.Timedelta(days=W)) for d in t.placebo["date"])
    # one placebo row recomputed by brute force
    row = t.placebo.iloc[3]
    d = row["date"]
    pre = sim_counts.loc[d - pd.Timedelta(days=W):d - pd.Timedelta(days=1)].sum()
    post = sim_counts.loc[d:d + pd.Timedelta(days=W - 1)].sum()
    assert row["n_active_pre"] == (pre >= 20).sum()
    assert row["volume_change"] == pytest.approx(post.sum() / pre.sum() - 1)
    assert row["hhi_post"] == pytest.approx(float(((post / post.sum()) ** 2).sum()))
    # rank p-values and the base-rate range
    v = t.placebo["volume_change"].to_numpy()
    e = t.params["volume_change"]
    up = (1 + np.sum(v >= e)) / (len(v) + 1)
    lo = (1 + np.sum(v <= e)) / (len(v) + 1)
    assert t.p_upper["volume_change"] == pytest.approx(up)
    assert t.pvalues["volume_change"] == pytest.approx(min(1, 2 * min(up, lo)))
    ci = t.conf_int(0.10).loc["volume_change"]
    assert ci["lower"] == pytest.approx(np.quantile(v, 0.05)) and ci["upper"] == pytest.approx(np.quantile(v, 0.95))
    assert "placebo dates" in t.summary()


def test_placebo_dates_leave_out_events_and_missing_windows():
    idx = pd.date_range("2020-01-01", periods=400, freq="D")
    miss = np.zeros(400, bool)
    miss[300:320] = True
    ev = idx[200]
    dates, excl = placebo_dates(idx, ev, before=30, after=30, step=10, exclude_events=None, missing=miss,
                                max_missing=3)
    pos = [(d - idx[0]).days for d in dates]
    assert all(p - 30 >= 0 and p + 30 <= 400 for p in pos)
    assert not any(170 < p <= 230 for p in pos), "windows holding the event are left out"
    assert not any(270 < p < 350 for p in pos), "windows with more than 3 missing days are left out"
    assert excl["overlaps an event"] == 5 and excl["too many missing days"] > 0


def test_missing_days_in_the_event_window_error_or_flag(sim_counts):
    c = sim_counts.copy()
    c.loc[EVENT + pd.Timedelta(days=3):EVENT + pd.Timedelta(days=12)] = np.nan
    with pytest.raises(DataError, match="10 after"):
        group_turnover(c, event=EVENT, window_days=60, exclude_events=None)
    t = group_turnover(c, event=EVENT, window_days=60, exclude_events=None, on_missing="flag")
    assert t.data["n_missing_post"] == 10 and "not collected" in t.data["flag"]


# --------------------------------------------------------------------------- panel
@pytest.fixture(scope="module")
def sim_study(sim_counts):
    return GroupPanelStudy(sim_counts, EVENT, pre_weeks=8, post_weeks=8, exclude_events=None, placebo_step=28,
                           max_placebos=None)


def test_panel_recovers_planted_growth_of_survivors(sim_study):
    r = sim_study.report
    assert r["n_event_units"] == N_STAY, "exits are not survivors; entries were not active before"
    assert r["n_placebo_stacks"] >= 5 and r["balanced"]
    cl = sim_study.fit(cov_type="clustered", dynamic=False)
    dk = sim_study.fit(cov_type="kernel", dynamic=False)
    for res in (cl, dk):
        e = res.effect()
        assert e["ci_low"] < GROWTH < e["ci_high"]
        assert abs(e["estimate"] - GROWTH) < 0.08
    assert cl.params.equals(dk.params) and not cl.std_errors.equals(dk.std_errors)
    dyn = sim_study.fit(dynamic=True)
    path = dyn.path()
    assert (path.loc[path["rel"] >= 0, "estimate"] > GROWTH - 0.15).all()
    assert (path.loc[path["rel"] < -1, "estimate"].abs() < 0.15).all()
    s = panel_sentence(cl, dk)
    assert "they grew" in s and "Driscoll-Kraay" in s
    assert "clustered by group" in cl.summary() and "Driscoll-Kraay" in dk.summary()


def test_panel_size_design_recovers_growth_of_the_largest_third():
    c = group_counts(simulate_groups(tercile_growth=True, seed=4))
    st = GroupPanelStudy(c, EVENT, design="size", pre_weeks=8, post_weeks=8)
    res = st.fit(dynamic=False)
    assert res.params.index.tolist() == ["tercile2:post", "tercile3:post"]
    assert abs(res.params["tercile2:post"]) < 0.1
    assert res.conf_int().loc["tercile3:post", "lower"] < GROWTH < res.conf_int().loc["tercile3:post", "upper"]
    assert "largest third" in panel_sentence(res)


def test_panel_equals_direct_linearmodels_and_statsmodels_fit(sim_counts):
    import statsmodels.api as sm
    from linearmodels.panel import PanelOLS

    sim_study = GroupPanelStudy(sim_counts, EVENT, pre_weeks=6, post_weeks=6, exclude_events=None, placebo_step=28,
                                max_placebos=3)
    res = sim_study.fit(cov_type="clustered", dynamic=False)
    pn = sim_study.panel
    idx = pd.MultiIndex.from_arrays([pn["entity"], pn["rel"]])
    y = pd.Series(np.log1p(pn["releases"].to_numpy()), index=idx)
    x = pd.DataFrame({"event:post": (pn["event_stack"] & (pn["rel"] >= 0)).astype(float).to_numpy()}, index=idx)
    groups = pd.DataFrame({"g": pd.factorize(pn["group"])[0]}, index=idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = PanelOLS(y, x, entity_effects=True, time_effects=True).fit(cov_type="clustered", clusters=groups)
        dk = PanelOLS(y, x, entity_effects=True, time_effects=True).fit(cov_type="kernel", bandwidth=2.0)
    assert res.params["event:post"] == pytest.approx(direct.params["event:post"], abs=1e-10)
    assert res.std_errors["event:post"] == pytest.approx(direct.std_errors["event:post"], rel=1e-8)
    assert sim_study.fit(cov_type="kernel", dynamic=False, bandwidth=2.0).std_errors["event:post"] == \
        pytest.approx(dk.std_errors["event:post"], rel=1e-8)
    # the point estimate equals OLS with entity and week dummies (LSDV)
    D = pd.get_dummies(pn["entity"], drop_first=False, dtype=float).to_numpy()
    T = pd.get_dummies(pn["rel"], drop_first=True, dtype=float).to_numpy()
    Z = np.column_stack([x.to_numpy(), D, T])
    ols = sm.OLS(y.to_numpy(), Z).fit()
    assert ols.params[0] == pytest.approx(res.params["event:post"], abs=1e-8)


# --------------------------------------------------------------------------- bad input
def test_group_filter_that_selects_nothing():
    with pytest.raises(ParameterError, match="selects no group"):
        group_counts(simulate_groups(), groups=["no_such_group"])
    with pytest.raises(ParameterError, match="selects no group"):
        group_counts(groups="NO_SUCH_GROUP_ANYWHERE")


def test_event_too_close_to_the_edge(sim_counts):
    early = START + pd.Timedelta(days=20)
    with pytest.raises(DataError, match="2019-01-21.*too close to the edge"):
        group_turnover(sim_counts, event=early, window_days=60, exclude_events=None)
    with pytest.raises(DataError, match="too close to the edge"):
        GroupPanelStudy(sim_counts, START + pd.Timedelta(days=N_DAYS - 30), pre_weeks=8, post_weeks=8)


def test_no_untreated_unit_is_an_error(sim_counts):
    short = sim_counts.loc[EVENT - pd.Timedelta(days=60):EVENT + pd.Timedelta(days=70)]
    with pytest.raises(ModelError, match="no comparison"):
        GroupPanelStudy(short, EVENT, pre_weeks=8, post_weeks=8, exclude_events=None)


def test_gaps_make_an_unbalanced_panel_that_is_reported(sim_counts):
    c = sim_counts.copy()
    c.loc[EVENT + pd.Timedelta(days=14):EVENT + pd.Timedelta(days=20)] = np.nan   # week 2 of the event stack
    st = GroupPanelStudy(c, EVENT, pre_weeks=8, post_weeks=8, exclude_events=None, placebo_step=28)
    assert not st.report["balanced"] and st.report["n_missing_cells"] == N_STAY
    res = st.fit(dynamic=True)
    assert res.not_identified == ["event:rel[2]"]
    assert np.isnan(res.path().set_index("rel").loc[2, "estimate"])
    assert abs(res.effect()["estimate"] - GROWTH) < 0.1
    with pytest.raises(ModelError, match="Driscoll-Kraay"):
        st.fit(cov_type="kernel", dynamic=True)
    c.loc[EVENT - pd.Timedelta(days=7):EVENT - pd.Timedelta(days=2)] = np.nan     # the reference week
    with pytest.raises(DataError, match="reference week"):
        GroupPanelStudy(c, EVENT, pre_weeks=8, post_weeks=8, exclude_events=None)


def test_bad_parameters(sim_counts):
    with pytest.raises(ParameterError, match="design"):
        GroupPanelStudy(sim_counts, EVENT, design="twfe")
    with pytest.raises(ParameterError, match="window_days"):
        group_turnover(sim_counts, event=EVENT, window_days=0)
    with pytest.raises(ParameterError, match="event"):
        group_turnover(sim_counts, event="not a date")


# --------------------------------------------------------------------------- figures
def test_figures_and_their_data(sim_counts, sim_study):
    t = group_turnover(sim_counts, event=EVENT, window_days=60, exclude_events=None)
    d = groups_plot.turnover_data(turnover=t)
    assert set(d["kind"]) == {"event", "placebo"} and len(d) == 4 * (t.n_placebos + 1)
    fig, axes = groups_plot.plot_turnover(turnover=t)
    assert len(axes) == 4
    c = groups_plot.concentration_data(turnover=t)
    assert len(c) == 2 * (t.n_placebos + 1)
    fig, axes = groups_plot.plot_concentration(turnover=t)
    res = sim_study.fit(dynamic=True)
    p = groups_plot.panel_path_data(results=res)
    assert p["rel"].tolist() == list(range(-8, 8))
    _fig, ax = groups_plot.plot_panel_path(results=res)
    assert ax.get_lines()
    import matplotlib.pyplot as plt

    plt.close("all")


# --------------------------------------------------------------------------- bundled data
def test_smoke_on_the_bundled_data():
    """Structure only: the bundled SPARKS windows give a turnover and a panel fit."""
    t = group_turnover(event="sparks_2020")
    assert t.n_placebos > 0 and np.isfinite(t.params).all()
    assert 0 <= t.params["exit_share"] <= 1 and t.params["n_exit"] <= t.params["n_active_pre"]
    assert t.data["source"].startswith("bundled groups")
    st = GroupPanelStudy(group_counts(), "sparks_2020", pre_weeks=6, post_weeks=6, max_placebos=2)
    res = st.fit(dynamic=False)
    assert np.isfinite(res.params).all() and st.report["n_event_units"] > 0
    assert isinstance(panel_sentence(res), str)
