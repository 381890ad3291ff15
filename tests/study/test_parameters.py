"""Parameter validation: one function for notebook, CLI and runner; clear errors before fitting."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import ParameterError
from raidstudy.study.parameters import PARAMETERS, coerce_parameters, default_parameters, validate_parameters


def sim(sim_csv, **kw):
    base = dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                event_date="2021-10-01", pre_periods=200, post_periods=90, fourier=0)
    base.update(kw)
    return base


def test_defaults_are_the_sparks_study():
    p = default_parameters()
    assert p["event_id"] == "sparks_2020"
    assert p["output_dir"] == "results/sparks-2020"
    assert set(p) == set(PARAMETERS)


def test_every_parameter_is_a_flat_scalar():
    for p in PARAMETERS.values():
        assert p.type in (str, int, float, bool), p.name
        assert isinstance(p.default, p.type), p.name


def test_unknown_name_is_refused_with_a_suggestion():
    with pytest.raises(ParameterError) as exc:
        coerce_parameters({"pre_period": 100})
    msg = str(exc.value)
    assert "'pre_period'" in msg and "unknown parameter name" in msg and "did you mean 'pre_periods'" in msg


def test_strings_from_the_command_line_are_coerced():
    p = coerce_parameters({"pre_periods": "200", "slope": "false", "alpha": "0.1", "hac_lags": "7"})
    assert p["pre_periods"] == 200 and p["slope"] is False and p["alpha"] == 0.1 and p["hac_lags"] == "7"


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("model_family", "logit", "accepted values: 'negbin', 'poisson', 'quasipoisson', 'gaussian'"),
        ("cov_type", "cluster", "accepted values: 'ewc', 'hac', 'newey'"),
        ("ewc_terms", 1, "between 2 and 64"),
        ("alpha", 0.7, "between 0 and 0.5"),
        ("pre_periods", 10, "too few pre-event periods"),
        ("pre_periods", "ten", "whole number"),
        ("hac_lags", "-3", "'auto', 'rule' or a whole number"),
        ("slope", "maybe", "true or false"),
        ("event_date", "2020-13-45", "is not a date"),
        ("measure", "n_bytes", "accepted values"),
        ("transition_periods", 500, "between 0 and post_periods"),
    ],
)
def test_bad_values_name_parameter_value_and_accepted(name, value, fragment):
    with pytest.raises(ParameterError) as exc:
        coerce_parameters({name: value})
    msg = str(exc.value)
    assert f"parameter {name!r}" in msg and repr(value) in msg and fragment in msg


def test_generic_csv_study_validates(sim_csv):
    spec = validate_parameters(sim(sim_csv))
    assert spec.freq == "D"
    assert spec.event_date == pd.Timestamp("2021-10-01")
    assert len(spec.outcome) == 290
    assert spec.simulated, "a simulated series must be labelled as simulated"
    assert spec.describe().loc["SIMULATED DATA", "value"]


def test_unknown_event_lists_accepted_ids(sim_csv):
    with pytest.raises(ParameterError) as exc:
        validate_parameters(sim(sim_csv, event_date=""))
    msg = str(exc.value)
    assert "'event_id'" in msg and "'simulated_raid'" in msg and "sparks_2020" in msg


def test_event_outside_the_data(sim_csv):
    with pytest.raises(ParameterError) as exc:
        validate_parameters(sim(sim_csv, event_id="sparks_2020", event_date=""))
    msg = str(exc.value)
    assert "outside the data" in msg and "2020-08-25" in msg and "2021-01-01" in msg


def test_too_few_pre_periods_in_the_data(sim_csv):
    with pytest.raises(ParameterError) as exc:
        validate_parameters(sim(sim_csv, event_date="2021-01-20"))
    msg = str(exc.value)
    assert "'pre_periods'" in msg and "non-missing pre-event periods" in msg


def test_unknown_series_in_csv(sim_csv):
    with pytest.raises(ParameterError) as exc:
        validate_parameters(sim(sim_csv, series_name="nope"))
    assert "simulated_counts" in str(exc.value)


def test_bundled_data_unknown_feed_and_family():
    with pytest.raises(ParameterError) as exc:
        validate_parameters(feeds="#pre@corrupt,nosuchfeed")
    assert "nosuchfeed" in str(exc.value) and "xrel" in str(exc.value)
    with pytest.raises(ParameterError) as exc:
        validate_parameters(families="tv,cartoons")
    assert "cartoons" in str(exc.value) and "movies" in str(exc.value)


def test_bundled_sparks_spec():
    spec = validate_parameters()
    assert spec.event.id == "sparks_2020"
    assert spec.outcome.index[0] == pd.Timestamp("2019-08-26")
    assert len(spec.outcome) == 365 + 120
    assert not spec.simulated
    # the raid day itself: Scene releases fell by more than half against the week before
    y = spec.outcome
    assert y.loc["2020-08-26"] < 0.5 * y.loc["2020-08-19"]


def test_control_may_not_contain_treated_feed():
    with pytest.raises(ParameterError) as exc:
        validate_parameters(control_feeds="xrel")
    assert "both outcome and control" in str(exc.value)


def test_seasonality_the_data_cannot_support_fails_before_fitting(sim_csv):
    from raidstudy.errors import RaidstudyError

    with pytest.raises(RaidstudyError) as exc:
        validate_parameters(sim(sim_csv, fourier=2))
    assert "Fourier" in str(exc.value) and "fourier=0" in str(exc.value)


@pytest.mark.parametrize(
    "override,fragment",
    [
        ({"recovery_share": 1}, "strictly between 0 and 1"),
        ({"cov_type": "hac", "hac_lags": "500"}, "too many lags"),
        ({"ewc_terms": 60, "pre_periods": 60, "post_periods": 30}, "too many cosine terms"),
        ({"event_date": "2021-10-01T00:00Z"}, "time zone"),
        ({"n_sim": 10**12}, "between 100"),
        ({"feeds": "xrel"}, "series_csv replaces"),
    ],
)
def test_more_bad_input_is_refused_before_fitting(sim_csv, override, fragment):
    with pytest.raises(ParameterError) as exc:
        validate_parameters(sim(sim_csv, **override))
    assert fragment in str(exc.value)


def test_numpy_scalars_are_accepted():
    import numpy as np

    p = coerce_parameters({"pre_periods": np.int64(300), "slope": np.bool_(False), "alpha": np.float64(0.1)})
    assert p["pre_periods"] == 300 and p["slope"] is False and p["alpha"] == 0.1


def test_month_end_series_window_matches_the_model(tmp_path):
    """Month-end labels: the event month is the month that contains the event date, in the
    window and in the model alike (12 post periods means 12 months from the event month)."""
    import numpy as np

    from raidstudy.study.parameters import event_position

    months = pd.date_range("2015-01-31", periods=72, freq="ME")
    rng = np.random.default_rng(1)
    vals = rng.poisson(np.where(months >= pd.Timestamp("2018-08-31"), 50, 100))
    path = tmp_path / "simulated_monthly.csv"
    pd.DataFrame({"date": months.strftime("%Y-%m-%d"), "value": vals}).to_csv(path, index=False)
    s = pd.Series(vals, index=months, dtype=float)
    assert months[event_position(s, pd.Timestamp("2018-08-25"))] == pd.Timestamp("2018-08-31")
    spec = validate_parameters(series_csv=str(path), event_id="simulated_raid", event_date="2018-08-25",
                               pre_periods=36, post_periods=12, dow=False, model_family="poisson")
    assert spec.outcome.index[36] == pd.Timestamp("2018-08-31")
    assert len(spec.outcome) == 48
    res = spec.fit()
    assert res.model.frame.index[res.model.event_pos] == pd.Timestamp("2018-08-31")


def test_weekly_csv_dates_are_week_starts_unless_told_otherwise(tmp_path):
    """Monday-dated weekly rows (as search-interest exports are): the event on Tuesday
    2020-08-25 falls in the week that starts on Monday 2020-08-24; with period_label='end'
    a date closes its week, so the event falls in the week that ends on 2020-08-31."""
    import numpy as np

    from raidstudy.study.parameters import event_position

    weeks = pd.date_range("2017-01-02", periods=250, freq="W-MON")
    vals = np.random.default_rng(2).poisson(np.where(weeks >= pd.Timestamp("2020-08-24"), 60, 120))
    path = tmp_path / "simulated_weekly.csv"
    pd.DataFrame({"date": weeks.strftime("%Y-%m-%d"), "value": vals}).to_csv(path, index=False)
    common = dict(series_csv=str(path), event_id="simulated_raid", event_date="2020-08-25", pre_periods=104,
                  post_periods=30, dow=False, model_family="poisson", transition_periods=0)
    start = validate_parameters(**common)
    assert start.outcome.index[event_position(start.outcome, start.event_date)] == pd.Timestamp("2020-08-24")
    res = start.fit()
    assert res.model.frame.index[res.model.event_pos] == pd.Timestamp("2020-08-24")
    end = validate_parameters(**common, period_label="end")
    assert end.fit().model.frame.index[end.fit().model.event_pos] == pd.Timestamp("2020-08-31")
    with pytest.raises(ParameterError, match="unknown period label"):
        validate_parameters(**common, period_label="middle")


def _bounds():
    from raidstudy.study.parameters import MAX_SIM, MIN_PRE_PERIODS

    # (name, accepted at the edge, refused just beyond, other parameters)
    return [
        ("ewc_terms", 2, 1, {}), ("ewc_terms", 64, 65, {}),
        ("alpha", 0.001, 0.0, {}), ("alpha", 0.499, 0.5, {}),
        ("recovery_share", 0.001, 0.0, {}), ("recovery_share", 0.999, 1.0, {}),
        ("pre_periods", MIN_PRE_PERIODS, MIN_PRE_PERIODS - 1, {}),
        ("post_periods", 1, 0, {"transition_periods": 0}),
        ("transition_periods", 0, -1, {}), ("transition_periods", 9, 10, {"post_periods": 10}),
        ("fourier", 0, -1, {}), ("fourier", 12, 13, {}),
        ("n_sim", 100, 99, {}), ("n_sim", MAX_SIM, MAX_SIM + 1, {}),
        ("n_placebos", 0, -1, {}), ("n_placebos", 2000, 2001, {}),
        ("seed", 0, -1, {}),
        ("hac_lags", "0", "-1", {}),
    ]


@pytest.mark.parametrize("name,edge,beyond,other", _bounds(), ids=lambda v: repr(v) if not isinstance(v, dict) else "")
def test_parameter_bounds_are_inclusive_where_documented(name, edge, beyond, other):
    """Each bound of ``_check_scalars``: the edge value passes, one step beyond is refused by name."""
    assert coerce_parameters({**other, name: edge})[name] == edge
    with pytest.raises(ParameterError) as exc:
        coerce_parameters({**other, name: beyond})
    assert f"parameter {name!r}" in str(exc.value)


def test_measure_n_nuked_sums_the_nuked_counts_of_the_bundled_feeds():
    from raidstudy.paths import processed_dir

    spec = validate_parameters(measure="n_nuked")
    releases = validate_parameters()
    y = spec.outcome
    assert spec.outcome_column == "nuked_releases" and "nuked" in spec.outcome_label
    # independent: the processed pattern table read with pandas; a release counts once if either
    # default feed announced it, on the earlier of their days (every copy counts)
    raw = pd.read_csv(processed_dir() / "daily_patterns.csv.gz", parse_dates=["date"])
    off = raw[["#pre@corrupt", "xrel"]].min(axis=1)  # empty cells read as NaN: min skips them
    raw = raw[off.notna()].assign(day=lambda d: d["date"] + pd.to_timedelta(off[off.notna()], unit="D"))
    ref = raw.groupby("day")["n_nuked"].sum().reindex(y.index, fill_value=0)
    ok = y.notna()
    assert ok.sum() > 300
    np.testing.assert_array_equal(y[ok].to_numpy(), ref[ok].to_numpy())
    # the same days are missing (feed outages) whichever measure is studied, and the counts differ
    pd.testing.assert_index_equal(y.index, releases.outcome.index)
    np.testing.assert_array_equal(y.isna().to_numpy(), releases.outcome.isna().to_numpy())
    assert (y[ok] < releases.outcome[ok]).mean() > 0.99
