"""Specification curve: each row equals the study fitted one by one; statistics; bad input; determinism."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from raidstudy.errors import ParameterError, RaidstudyError
from raidstudy.models.speccurve import (
    RESULT_COLUMNS,
    SpecificationCurve,
    normalize_grid,
    specification_curve,
)
from raidstudy.study.parameters import validate_parameters

GRID = {
    "pre_periods": [200, 365],
    "transition_periods": [0, 1],
    "model_family": ["negbin", "quasipoisson", "gaussian"],
    "fourier": [0, 2],
    "cov_type": ["ewc", "newey"],
    "control_feeds": ["", "xrelp2p"],
    "families": ["all", "tv,movies"],
}


@pytest.fixture(scope="module")
def spec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_parameters(event_id="sparks_2020", post_periods=90)


@pytest.fixture(scope="module")
def curve(spec):
    return specification_curve(spec, GRID)


def _one_by_one(spec, choices):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = validate_parameters({**spec.parameters, **choices})
        res = s.fit()
        eff = res.effects(alpha=spec.parameters["alpha"], n_sim=100)
    return res, eff


def test_rows_equal_one_by_one_fits(spec, curve):
    t = curve.table
    assert len(t) == 2 * 2 * 3 * 2 * 2 * 2 * 2
    est = t[t["relative_estimate"].notna()]
    # a spread of specifications: every family, covariance, control and family set
    sample = est.groupby(["model_family", "cov_type", "control_feeds"], sort=False).head(1)
    sample = pd.concat([sample, est[est["families"] == "tv,movies"].head(2), est[est["fourier"] == 2].head(2)])
    assert len(sample) >= 14
    for _, r in sample.iterrows():
        choices = {n: r[n] for n in curve.choices}
        res, eff = _one_by_one(spec, choices)
        lv, rel = eff["level"], eff["relative"]
        assert r["term"] == lv["term"]
        got = [r["level_coef"], r["level_coef_ci_low"], r["level_coef_ci_high"], r["level_p_value"],
               r["relative_estimate"], r["relative_ci_low"], r["relative_ci_high"], r["relative_p_value"]]
        want = [lv["estimate"], lv["ci_low"], lv["ci_high"], lv["p_value"],
                rel["pct"], rel["pct_ci_low"], rel["pct_ci_high"], rel["p_value"]]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=str(choices))
        assert r["nobs"] == res.nobs
        if choices["model_family"] != "gaussian":
            assert r["level_estimate"] == pytest.approx(lv["pct"], rel=1e-6)
            assert r["level_ci_low"] == pytest.approx(lv["pct_ci_low"], rel=1e-6)
        else:
            # the gaussian jump as a percentage of the event period's counterfactual
            cf = res.predictions(n_sim=100)["counterfactual"].loc[spec.event_date]
            assert r["level_estimate"] == pytest.approx(100 * lv["estimate"] / cf, rel=1e-6)


def test_unsupported_specifications_are_kept_with_a_note(spec, curve):
    t = curve.table
    bad = t[t["relative_estimate"].isna()]
    # annual terms with 200 pre-event days (under a year of data) cannot be estimated
    assert len(bad) and (bad["fourier"] == 2).all() and (bad["pre_periods"] == 200).all()
    assert bad["note"].str.startswith("not estimated").all()
    assert bad["note"].str.contains("Fourier").all()
    assert curve.n_estimated("relative") == len(t) - len(bad)
    with pytest.raises(RaidstudyError, match="Fourier"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        validate_parameters({**spec.parameters, **{n: bad.iloc[0][n] for n in curve.choices}})


def _hand_table():
    rows = [  # relative: est, lo, hi
        (-50.0, -60.0, -40.0), (-10.0, -30.0, 5.0), (20.0, 1.0, 39.0), (-30.0, -45.0, -2.0),
        (np.nan, np.nan, np.nan),
    ]
    t = pd.DataFrame({"cov_type": ["ewc", "hac", "ewc", "hac", "ewc"]})
    for c in RESULT_COLUMNS:
        t[c] = np.nan
    t[["relative_estimate", "relative_ci_low", "relative_ci_high"]] = rows
    t[["level_estimate", "level_ci_low", "level_ci_high"]] = [(-5.0, -9.0, -1.0)] * 2 + [(1.0, -1.0, 3.0)] * 3
    t["note"] = ["", "", "", "", "not estimated: test"]
    return SpecificationCurve(table=t, choices=["cov_type"], grid={"cov_type": ["ewc", "hac"]},
                              base={"cov_type": "ewc"})


def test_statistics_on_a_hand_made_table():
    c = _hand_table()
    assert c.n_specifications == 5 and c.n_estimated("relative") == 4
    assert c.share_excluding_zero("relative") == pytest.approx(3 / 4)
    assert c.share_significant_negative("relative") == pytest.approx(2 / 4)
    assert c.median("relative") == pytest.approx(-20.0)
    assert c.range("relative") == (-50.0, 20.0)
    assert c.share_excluding_zero("level") == pytest.approx(2 / 5)
    assert c.median("level") == pytest.approx(1.0)
    s = c.summary()
    assert s["estimated"].tolist() == [4, 5]
    assert s["share_ci_excludes_zero"].tolist() == pytest.approx([0.75, 0.4])
    b = c.by_choice("relative").set_index("value")
    assert b.loc["ewc", "median"] == pytest.approx(-15.0) and b.loc["hac", "median"] == pytest.approx(-20.0)
    assert b.loc["ewc", "share_ci_excludes_zero"] == 1.0 and b.loc["hac", "share_ci_excludes_zero"] == 0.5
    d = c.to_dict()
    assert d["statistics"]["relative"]["n_not_estimated"] == 1
    assert d["rows"][4]["relative_estimate"] is None
    assert "median of -20.0%" in c.sentence("relative") and "75% of the 95% intervals" in c.sentence()
    with pytest.raises(ParameterError, match="quantity"):
        c.median("slope")


@pytest.mark.parametrize("grid, name, match", [
    ({}, "grid", "names no choice"),
    ({"pre_period": [100]}, "grid", "pre_periods"),  # unknown name: the accepted names are listed
    ({"model_family": ["negbin", "logit"]}, "model_family", "gaussian"),
    ({"cov_type": ["sandwich"]}, "cov_type", "ewc"),
    ({"fourier": []}, "fourier", "no value"),
    ({"pre_periods": ["many"]}, "pre_periods", "whole number"),
    ({"pre_periods": [5]}, "pre_periods", "too few"),
    ({"feeds": ["#pre@corrupt", "nosuchfeed"]}, "feeds", "xrel"),
])
def test_bad_grids_are_refused_naming_the_parameter(spec, grid, name, match):
    with pytest.raises(ParameterError, match=match) as exc:
        specification_curve(spec, grid)
    assert exc.value.name == name


def test_grid_values_are_coerced_and_deduplicated(spec):
    g = normalize_grid({"pre_periods": ["200", 200, 365.0], "cov_type": ["HAC", "ewc"], "dow": ["false"]},
                       spec.parameters)
    assert g == {"pre_periods": [200, 365], "cov_type": ["hac", "ewc"], "dow": [False]}


def test_deterministic(spec, curve):
    again = specification_curve(spec, GRID)
    a = json.dumps(curve.to_dict(), sort_keys=True, allow_nan=False)
    assert a == json.dumps(again.to_dict(), sort_keys=True, allow_nan=False)
    # and the grid order is the table's order
    assert list(curve.table["pre_periods"][:2]) == [200, 200]


def test_plot_and_its_data(curve):
    import matplotlib.pyplot as plt

    from raidstudy.report.speccurve_plot import (
        plot_specification_curve,
        specification_curve_data,
    )

    df = specification_curve_data(curve=curve, quantity="level")
    assert len(df) == curve.n_estimated("level") and df["estimate"].is_monotonic_increasing
    assert df["base"].sum() == 1
    fig, axes = plot_specification_curve(curve=curve, quantity="relative")
    assert len(axes) == 2
    assert len(axes[1].get_yticklabels()) == sum(len(v) for v in curve.grid.values())
    plt.close(fig)
    with pytest.raises(ParameterError):
        plot_specification_curve(curve=curve, quantity="slope")
    assert math.isfinite(curve.median("level"))
