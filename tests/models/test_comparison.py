"""Effects by section family, and the P2P comparison (raidstudy.models.comparison).

All data here are SIMULATED (labelled so: ``attrs["simulated"]`` and the ``simulated_``
column prefix where a name is free), except one smoke test on the bundled data that checks
structure only, never numbers (data/processed is being rebuilt).
"""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import DataError, ParameterError
from raidstudy.models import comparison as cmpmod
from raidstudy.models.comparison import (ComparisonDiD, comparison_reading, family_effects, p2p_comparison,
                                         window_relative)
from raidstudy.models.simulate import simulate_its
from raidstudy.report.comparison_plot import (family_effects_data, p2p_comparison_data, plot_family_effects,
                                              plot_p2p_comparison)

matplotlib.use("Agg")

N, EVENT_POS = 300, 210
START = "2020-01-01"
EVENT = pd.Timestamp(START) + pd.Timedelta(days=EVENT_POS)
#: Planted log effects (a constant level shift from the event on) per simulated family.
PLANTED = {"tv": -0.7, "music": -0.25, "apps": 0.0}


@pytest.fixture(scope="module")
def sim_families() -> pd.DataFrame:
    """SIMULATED family series: planted level shifts, NB2 counts, mild AR(1) noise; 'books' is tiny."""
    cols = {}
    for i, (fam, level) in enumerate(PLANTED.items()):
        cols[fam] = simulate_its(n=N, event=EVENT_POS, level=level, slope=0.0, trend=0.0005, base=400 / (i + 1),
                                 ar=0.3, noise_sd=0.03, fourier_amp=0.0, start=START, seed=10 + i)["y"]
    cols["books"] = simulate_its(n=N, event=EVENT_POS, level=-1.0, slope=0.0, base=1.5, ar=0.0, noise_sd=0.0,
                                 fourier_amp=0.0, start=START, seed=99)["y"]
    df = pd.DataFrame(cols)
    df.iloc[[40, 41, 120]] = np.nan  # outages: missing, never zero
    df.attrs["simulated"] = True
    return df


@pytest.fixture(scope="module")
def fam_effects(sim_families):
    return family_effects(sim_families, event=EVENT, pre_periods=EVENT_POS, post_periods=N - EVENT_POS)


def _sim_pair(*, did: float, p2p_rise: float, common_at_event: float = 0.0, seed: int = 0,
              p2p_zero_pre: bool = False) -> pd.DataFrame:
    """SIMULATED Scene and P2P series sharing shocks (a smooth common path plus a common jump)."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    post = (t >= EVENT_POS).astype(float)
    common = 0.15 * np.sin(t / 23.0) + 0.1 * np.cumsum(rng.normal(0, 0.02, N)) + common_at_event * post
    dow = np.array([0.0, -0.05, 0.0, 0.02, 0.05, 0.2, 0.15])[pd.date_range(START, periods=N).day_of_week]
    scene = rng.poisson(np.exp(np.log(1500) + common + dow + did * post + rng.normal(0, 0.03, N)))
    p2p = rng.poisson(np.exp(np.log(60) + common + p2p_rise * post + rng.normal(0, 0.03, N)))
    if p2p_zero_pre:
        p2p = np.where(t < EVENT_POS, 0, p2p)
    df = pd.DataFrame({"simulated_scene": scene, "simulated_p2p": p2p},
                      index=pd.date_range(START, periods=N, freq="D")).astype(float)
    df.iloc[[50, 51]] = np.nan
    df.attrs["simulated"] = True
    return df


def _compare(df, **kw):
    return p2p_comparison(df, event=EVENT, treated="simulated_scene", control="simulated_p2p",
                          pre_periods=EVENT_POS, post_periods=N - EVENT_POS, **kw)


# --------------------------------------------------------------------------- families
def test_planted_family_effects_are_recovered_within_their_intervals(fam_effects):
    t = fam_effects.table.set_index("family")
    for fam, level in PLANTED.items():
        row = t.loc[fam]
        assert row["status"] == "estimated", row["reason"]
        truth = 100 * math.expm1(level)
        for w in ("post", "early"):
            assert row[f"{w}_pct_ci_low"] <= truth <= row[f"{w}_pct_ci_high"], (fam, w, row[f"{w}_pct"], truth)
            assert abs(math.log1p(row[f"{w}_pct"] / 100) - level) < 0.12, (fam, w, row[f"{w}_pct"])
    # power: the large drop is detected, and the families are told apart
    assert t.loc["tv", "post_pct_ci_high"] < 0
    assert t.loc["tv", "post_pct_ci_high"] < t.loc["music", "post_pct_ci_low"]
    # house-style accessors agree with the table (log scale)
    ci = fam_effects.conf_int()
    assert ci.loc[("tv", "post"), "lower"] == pytest.approx(math.log1p(t.loc["tv", "post_pct_ci_low"] / 100))
    assert fam_effects.params[("tv", "early")] == pytest.approx(math.log1p(t.loc["tv", "early_pct"] / 100))
    assert set(fam_effects.to_dict()["skipped"]) == {"books"}


def test_a_family_with_too_few_releases_is_reported_as_skipped_with_the_reason(fam_effects):
    t = fam_effects.table.set_index("family")
    assert t.loc["books", "status"] == "skipped"
    assert "min_pre_mean=5" in t.loc["books", "reason"]
    assert math.isnan(t.loc["books", "post_pct"])
    assert "books" not in fam_effects.results and "skipped: " in fam_effects.summary()
    assert list(fam_effects.table["family"]) == ["tv", "music", "apps", "books"]


def test_window_relative_over_the_whole_post_window_equals_the_model_headline(fam_effects):
    res = fam_effects.results["tv"]
    w = window_relative(res, alpha=0.1)
    r = res.effects(alpha=0.1, n_sim=50)["relative"]
    for k in ("estimate", "ci_low", "ci_high", "p_value", "critical_value"):
        assert w[k] == pytest.approx(r[k], rel=1e-10), k
    early = window_relative(res, first=0, last=27)
    assert early["n_observed"] == 28 and early["critical_value"] != pytest.approx(w["critical_value"])


def test_its_model_option_gives_the_same_reading(sim_families):
    fe = family_effects(sim_families, event=EVENT, pre_periods=EVENT_POS, post_periods=N - EVENT_POS,
                        families="tv,apps", model="its")
    t = fe.table.set_index("family")
    assert list(t.index) == ["tv", "apps"]
    assert t.loc["tv", "post_pct_ci_low"] <= 100 * math.expm1(PLANTED["tv"]) <= t.loc["tv", "post_pct_ci_high"]
    assert type(fe.results["tv"]).__name__ == "ITSResults"


# --------------------------------------------------------------------------- DiD and the two readings
def test_planted_did_effect_is_recovered_and_common_shocks_removed():
    df = _sim_pair(did=-0.5, p2p_rise=0.0, common_at_event=-0.6, seed=1)
    cmp = _compare(df)
    post = cmp.did.effect("post")
    assert post["ci_low"] <= -0.5 <= post["ci_high"] and abs(post["estimate"] + 0.5) < 0.1
    early = cmp.did.effect("early")
    assert early["ci_low"] <= -0.5 <= early["ci_high"]
    # the Scene's own ITS effect also carries the common shock (-1.1); the DiD removes it
    own = cmp.own_effect("treated")
    assert own["log_ratio"] < post["estimate"] - 0.3
    # the comparison series fell with the common shock: the reading says so
    assert comparison_reading(cmp).startswith("Common fall:")
    assert cmp.did.lead_test()["p_value"] > 0.05
    path = cmp.did.path()
    assert (path.loc[path["kind"] == "post", "ci_low"] < -0.5).all()


def test_driscoll_kraay_panel_gives_the_same_point_estimates_as_the_difference_regression():
    df = _sim_pair(did=-0.5, p2p_rise=0.0, seed=2)
    win = df.iloc[:N]
    m = ComparisonDiD(win, event=EVENT, treated="simulated_scene", control="simulated_p2p")
    ewc, dk = m.fit(), m.fit(cov_type="driscoll-kraay")
    np.testing.assert_allclose(dk.params.to_numpy(), ewc.params.to_numpy(), atol=1e-8)
    assert dk.cov_type == "driscoll-kraay" and "linearmodels" in dk.cov_description
    assert dk.critical_value(np.eye(len(dk.params))[0]) == pytest.approx(1.959964, abs=1e-5)
    assert ewc.critical_value(np.eye(len(ewc.params))[0]) > 2.5  # fixed-b, 6 cosine terms
    assert m.panel().index.get_level_values("unit").nunique() == 2


def test_planted_p2p_rise_is_detected_as_displacement():
    df = _sim_pair(did=-0.5, p2p_rise=0.4, seed=3)
    cmp = _compare(df)
    p = cmp.own_effect("control")
    assert p["ci_low"] > 0 and p["ci_low"] <= math.expm1(0.4) <= p["ci_high"]
    # the DiD subtracts the rise: about -0.9 in log points, below the Scene's own -0.5
    did = cmp.did.effect("post")
    assert did["ci_low"] <= -0.9 <= did["ci_high"]
    assert did["estimate"] < cmp.own_effect("treated")["log_ratio"] - 0.2
    text = cmp.reading()
    assert text.startswith("Displacement:") and "overstates" in text
    assert f"{100 * p['estimate']:+.0f}%" in text  # the P2P rise is quoted with its number
    assert cmp.to_dict()["verdict"] == "displacement"
    t = cmp.table()
    assert set(t["estimate"]) == {"treated_own", "control_own", "did"} and len(t) == 6


def test_no_change_in_the_comparison_series_reads_as_control():
    cmp = _compare(_sim_pair(did=-0.5, p2p_rise=0.0, seed=4))
    text = comparison_reading(cmp)
    assert text.startswith("Control:") and "not rejected" in text
    assert cmp.params.index.names == ["estimate", "window"]
    lo, hi = cmp.conf_int().loc[("did", "post")]
    assert lo < cmp.params[("did", "post")] < hi


# --------------------------------------------------------------------------- plots
def test_family_plot_returns_fig_ax_and_its_data(fam_effects):
    import matplotlib.pyplot as plt

    fig, ax = plot_family_effects(effects=fam_effects)
    data = family_effects_data(effects=fam_effects)
    try:
        assert ax.figure is fig and ax.get_xscale() == "log"
        assert len(data) == 3 * 2 + 1  # three families x two windows, one skipped row
        assert data.loc[data["family"] == "books", "status"].item() == "skipped"
        est = data[data["status"] == "estimated"]
        np.testing.assert_allclose(est["ratio"], 1 + est["pct"] / 100)
        assert [t.get_text() for t in ax.get_yticklabels()][-1] == "books (skipped)"
    finally:
        plt.close(fig)


def test_p2p_plot_returns_fig_axes_and_its_data():
    import matplotlib.pyplot as plt

    cmp = _compare(_sim_pair(did=-0.5, p2p_rise=0.4, seed=3))
    fig, axes = plot_p2p_comparison(comparison=cmp)
    data = p2p_comparison_data(comparison=cmp)
    try:
        assert len(axes) == 2 and axes[0].figure is fig
        assert set(data["panel"]) == {"path", "estimates"}
        assert (data["panel"] == "path").sum() == len(cmp.did.path())
        assert "displacement" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- bad input
def test_a_family_filter_that_selects_nothing_is_refused(sim_families):
    with pytest.raises(ParameterError, match=r"'families' = \[\]: selects no section family"):
        family_effects(sim_families, event=EVENT, families=[])
    with pytest.raises(ParameterError, match=r"'families' = 'warez'.*'warez' is not in the data"):
        family_effects(sim_families, event=EVENT, families="warez")


def test_an_absent_comparison_series_is_refused():
    df = _sim_pair(did=-0.5, p2p_rise=0.0, seed=5)
    with pytest.raises(ParameterError, match=r"'control' = 'xrelp2p': is not a column"):
        p2p_comparison(df, event=EVENT, treated="simulated_scene", control="xrelp2p")


def test_a_comparison_series_all_zero_before_the_event_is_refused():
    df = _sim_pair(did=-0.5, p2p_rise=0.0, seed=6, p2p_zero_pre=True)
    with pytest.raises(DataError, match=r"control series 'simulated_p2p' is zero over the whole pre-event period"):
        _compare(df)


def test_an_event_too_close_to_the_edge_of_the_data_is_refused(sim_families):
    late = pd.Timestamp(START) + pd.Timedelta(days=N - 10)
    with pytest.raises(ParameterError, match=r"'event' = Timestamp\('2020-10-17.*too close to the end.*10 period"):
        family_effects(sim_families, event=late)
    early = pd.Timestamp(START) + pd.Timedelta(days=30)
    with pytest.raises(ParameterError, match=r"'event' = '2020-01-31'.*too close to the start"):
        p2p_comparison(_sim_pair(did=0.0, p2p_rise=0.0, seed=7), event=str(early.date()),
                       treated="simulated_scene", control="simulated_p2p")


# --------------------------------------------------------------------------- bundled data (structure only)
def test_smoke_on_the_bundled_data():
    from raidstudy.data.releases import FAMILIES

    try:
        fe = family_effects()
    except DataError as err:  # data/processed absent or mid-rebuild: say so, do not fail
        pytest.skip(f"the bundled data cannot be read: {err}")
    assert list(fe.table["family"]) == list(FAMILIES)
    assert set(fe.table["status"]) <= {"estimated", "skipped"}
    est = fe.table[fe.table["status"] == "estimated"]
    assert len(est) and (est["post_pct_ci_low"] <= est["post_pct"]).all() and \
        (est["post_pct"] <= est["post_pct_ci_high"]).all()
    cmp = p2p_comparison()
    assert cmp.reading().split(":")[0] in {"Displacement", "Common fall", "Control"}
    assert cmp.control_label == "P2P (xrelp2p)" and cmpmod.P2P_FEEDS == ("xrelp2p",)
