"""The catalogue builder and the stacked study on the bundled data (no hard-coded counts: data/processed/ changes)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import ParameterError
from raidstudy.models.staggered import build_event_panel, catalogue_study
from raidstudy.models.staggered.catalogue import P2P_FEEDS, SCENE_FEEDS, target_class

EVENTS = ["xtream_codes_2019", "sparks_2020", "evo_raid_2022_05"]


@pytest.fixture(scope="module")
def built():
    return build_event_panel(event_ids=EVENTS)


def test_target_classes():
    assert target_class(("scene_group", "topsite")) == "scene"
    assert target_class(("torrent_site", "p2p_release_group")) == "p2p"
    for t in ("iptv_service", "streaming_site", "subscription_streaming", "shadow_library"):
        assert target_class((t,)) == "placebo"


def test_panel_units_periods_and_treatment_by_target_type(built):
    panel, ev = built
    from raidstudy.data.indicators import load_daily

    daily = load_daily()
    assert set(panel["feed"]) <= set(SCENE_FEEDS + P2P_FEEDS)
    assert (panel["period"].dt.day_of_week == 0).all()  # weeks from Monday
    # one row per unit and week, outcome log1p of the mean daily count over covered days
    assert not panel.duplicated(["unit", "period"]).any()
    ok = panel["rate"].notna()
    assert np.allclose(panel.loc[ok, "y"], np.log1p(panel.loc[ok, "n_releases"] / panel.loc[ok, "n_days_covered"]))
    assert (panel.loc[~ok, "n_days_covered"] < 4).all()
    # a unit's weekly total equals the daily table's on a fully covered week
    u = panel[(panel["unit"] == "xrel|tv") & (panel["n_days_covered"] == 7)].iloc[10]
    d = daily[(daily["feed"] == "xrel") & (daily["family"] == "tv") & (daily["date"] >= u["period"])
              & (daily["date"] < u["period"] + pd.Timedelta(days=7))]
    assert u["n_releases"] == d["n_releases"].sum()
    ev = ev.set_index("event")
    assert list(ev.index) == EVENTS
    assert ev.loc["sparks_2020", "target_class"] == "scene"
    assert all(x.split("|")[0] in SCENE_FEEDS for x in ev.loc["sparks_2020", "units"])
    assert all(x.split("|")[0] in P2P_FEEDS for x in ev.loc["evo_raid_2022_05", "units"])
    assert ev.loc["xtream_codes_2019", "target_class"] == "placebo"
    assert ev.loc["sparks_2020", "time"] == pd.Timestamp("2020-08-24")  # the Monday of 2020-08-25
    # cohort: the first real raid treating the unit
    scene = panel[panel["feed"].isin(SCENE_FEEDS)]
    assert (scene["cohort"] == pd.Timestamp("2020-08-24")).all()
    # series with (almost) no releases are left out and listed
    for unit, why in panel.attrs["skipped_units"].items():
        assert unit not in set(panel["unit"]) and "releases" in why


def test_unknown_event_id_is_named():
    with pytest.raises(ParameterError, match="'event_ids' = 'nope'"):
        build_event_panel(event_ids=["sparks_2020", "nope"])


def test_catalogue_study_effects_by_target_type_and_events_left_out():
    st = catalogue_study(event_ids=EVENTS + ["evo_raid_2022_11", "zlibrary_2022"], pre=8, post=8)
    ev = st.events.set_index("event")
    assert ev.loc[EVENTS, "used"].all(), ev["status"].tolist()
    # Z-Library (a placebo: Scene series pseudo-treated) falls in the week of EVO's second searches
    # (P2P series treated): no clean control remains, and the study says so instead of failing
    assert not ev.loc["zlibrary_2022", "used"] and "has no clean control" in ev.loc["zlibrary_2022", "status"]
    # EVO's second searches reach the P2P series 27 weeks after the first, inside the 52-week washout
    assert not ev.loc["evo_raid_2022_11", "used"]
    assert "overlap='drop' removed ['xrelp2p|" in ev.loc["evo_raid_2022_11", "status"]
    tab = st.table().set_index("target_class")
    assert {"scene", "p2p", "placebo", "all real raids (scene + p2p)"} == set(tab.index)
    # SPARKS: Scene releases fell (the drop is large, see README); the interval excludes zero
    assert tab.loc["scene", "ci_high"] < 0 and tab.loc["scene", "pct"] < -20
    for g in tab.index:
        assert tab.loc[g, "ci_low"] < tab.loc[g, "estimate"] < tab.loc[g, "ci_high"]
    assert st.by_target.groups == ["p2p", "placebo", "scene"]
    es = st.by_target.event_study()
    assert set(es["rel"]) == set(range(-8, 9))
    json.dumps(st.to_dict(), allow_nan=False)
    assert "washout 52 periods" in st.by_target.summary().as_text()
    # the sentence quotes the table's numbers and names the events left out
    text = st.sentence()
    assert f"{tab.loc['scene', 'pct']:+.0f}%" in text and f"{tab.loc['p2p', 'pct']:+.0f}%" in text
    assert "zlibrary_2022" in text and "evo_raid_2022_11" in text
    assert "placebo events" in text
