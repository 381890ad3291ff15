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
