"""Issue 13 part 6: the catalogue's SPARKS counts and Nordic arrests, and imprecise event dates
never fitted as day-level breaks."""
from __future__ import annotations

import pandas as pd
import pytest

from raidstudy.data.events import get_event
from raidstudy.errors import ParameterError
from raidstudy.paths import processed_dir
from raidstudy.study.parameters import precision_transition, validate_parameters


def test_catalogue_restores_the_sparks_counts_and_adds_the_nordic_arrests():
    sparks = get_event("sparks_2020")
    for figure in ("1,944", "168", "12,776", "3,680", "4,463", "11,759"):
        assert figure in sparks.description, figure
    assert "TorrentFreak" in sparks.source and "Predb.org" in sparks.source
    nordic = get_event("nordic_scene_2023")
    assert str(nordic.date.date()) == "2023-11-27" and nordic.precision == "approx"
    assert "scene_group" in nordic.target_type and "TorrentFreak" in nordic.source


@pytest.mark.parametrize("precision,date,freq,start,n", [
    ("day", "2020-08-25", "D", "2020-08-25", 1),
    ("approx", "2019-08-27", "D", "2019-08-24", 7),
    ("month", "2022-05-01", "D", "2022-05-01", 31),
    ("month", "2022-02-01", "D", "2022-02-01", 28),
    ("month", "2022-05-01", "W-SUN", "2022-05-01", 6),  # 1-31 May touches six Monday-Sunday weeks
])
def test_precision_widens_the_transition(precision, date, freq, start, n):
    got_start, got_n, note = precision_transition(precision, pd.Timestamp(date), freq, 1)
    assert (str(got_start.date()), got_n) == (start, n)
    assert (note == "") == (precision == "day")
    # a longer transition asked for is kept
    assert precision_transition(precision, pd.Timestamp(date), freq, 40)[1] == 40


def test_unknown_precision_is_refused():
    with pytest.raises(ParameterError, match="'date_precision' = 'week'"):
        precision_transition("week", pd.Timestamp("2020-01-01"), "D", 1)


def _bundled():
    if not any(processed_dir().glob("daily_patterns.csv.gz")):
        pytest.skip("data/processed is not built")


def test_a_month_precision_event_is_fitted_with_the_whole_month_left_out():
    _bundled()
    spec = validate_parameters(event_id="evo_raid_2022_05", feeds="xrelp2p")
    assert spec.transition == 31 and "known to the month" in spec.precision_note
    assert spec.build_model().design.fit[spec.outcome.index.get_loc(pd.Timestamp("2022-05-15"))] == False  # noqa: E712
    assert "widened from 1" in spec.describe().loc["excluded transition periods", "value"]
    # given its own date, a study is taken at its word
    day = validate_parameters(event_id="evo_raid_2022_05", event_date="2022-05-10", feeds="xrelp2p")
    assert day.transition == 1 and day.precision_note == ""


def test_a_transition_longer_than_the_post_window_is_refused():
    _bundled()
    with pytest.raises(ParameterError, match="'post_periods' = 20: leaves nothing to estimate"):
        validate_parameters(event_id="evo_raid_2022_05", feeds="xrelp2p", post_periods=20)


def test_an_imprecise_event_runs_its_event_study_with_transition_bins_left_out():
    """Review finding: an approx or month event excluded bin 0 entirely, and the event study
    refused to run. Bins wholly inside the transition are reported, not estimated."""
    _bundled()
    from raidstudy.models.its.dynamic import EventStudy
    from raidstudy.report.tables import path_table

    spec = validate_parameters(event_id="evo_raid_2022_05", feeds="xrelp2p", post_periods=120)
    res = EventStudy.from_model(spec.build_model()).fit(**spec.fit_kwargs())
    p = res.path()
    trans = p[p["kind"] == "transition"]
    assert list(trans["bin"]) == [0, 1, 2, 3]  # 28 of the 31 days of May 2022
    assert trans["estimate"].isna().all()
    post = p[p["kind"] == "post"]
    assert post["bin"].min() == 4 and post["estimate"].notna().all()
    assert "left out (transition" in path_table(res).loc[0, "effect"]


@pytest.mark.parametrize("label", ["start", "end"])
def test_weekly_series_count_the_uncertain_weeks_as_the_engine_labels_them(tmp_path, label):
    """Review finding: a Monday-labelled weekly series was counted in Tuesday-Monday weeks;
    the transition now spans the periods the engine puts the uncertain days in."""
    import numpy as np

    from raidstudy.study.parameters import event_position

    idx = pd.date_range("2021-01-04", periods=150, freq="W-MON" if label == "start" else "W-SUN")
    rng = np.random.default_rng(1)
    csv = tmp_path / "weekly.csv"  # SIMULATED weekly counts
    pd.DataFrame({"date": idx.strftime("%Y-%m-%d"), "value": rng.poisson(500, len(idx))}).to_csv(csv, index=False)
    spec = validate_parameters(series_csv=str(csv), event_id="evo_raid_2022_05", pre_periods=60,
                               post_periods=30, period_label=label)
    y = spec.full_outcome
    engine = (event_position(y, pd.Timestamp("2022-05-31"), label)
              - event_position(y, pd.Timestamp("2022-05-01"), label) + 1)
    assert spec.transition == engine == 6 and "known to the month" in spec.precision_note
