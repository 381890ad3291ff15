"""In-time placebo events: a planted effect stands out, a series without one does not."""
from __future__ import annotations

import json

import numpy as np
import pytest

from raidstudy.io import dumps_json
from raidstudy.errors import DataError
from raidstudy.models.placebo import placebo_in_time
from raidstudy.models.its import ITS
from raidstudy.models.simulate import simulate_its

KW = {"outcome": "y", "family": "negbin"}


def _real(d, event):
    return float(ITS(d, event=d.index[event], **KW).fit().params["level"])


def test_planted_effect_is_more_extreme_than_every_placebo():
    d = simulate_its(family="negbin", n=600, event=450, level=-0.6, seed=11)  # simulated
    res = placebo_in_time(d[["y"]], event=d.index[450], real=_real(d, 450), n_placebos=30, its_kwargs=KW)
    assert res.n == 30
    assert res.p_value == pytest.approx(1 / 31)
    assert (res.table["date"] < d.index[450]).all(), "placebo fits must not see the real event"


def test_no_effect_is_not_singled_out():
    d = simulate_its(family="negbin", n=600, event=450, level=0.0, slope=0.0, seed=12)  # simulated
    res = placebo_in_time(d[["y"]], event=d.index[450], real=_real(d, 450), n_placebos=30, its_kwargs=KW)
    assert res.p_value > 0.1


def test_too_short_a_pre_period_is_a_clear_error():
    d = simulate_its(family="negbin", n=200, event=70, seed=13)
    with pytest.raises(DataError, match="pre-event periods"):
        placebo_in_time(d[["y"]], event=d.index[70], real=-0.5, n_placebos=10, its_kwargs=KW)


def test_to_dict_is_json_and_deterministic():
    d = simulate_its(family="poisson", n=500, event=400, level=-0.4, seed=14)
    kw = {"outcome": "y", "family": "poisson"}
    real = float(ITS(d, event=d.index[400], **kw).fit().params["level"])
    a = placebo_in_time(d[["y"]], event=d.index[400], real=real, n_placebos=12, its_kwargs=kw).to_dict()
    b = placebo_in_time(d[["y"]], event=d.index[400], real=real, n_placebos=12, its_kwargs=kw).to_dict()
    assert dumps_json(a) == dumps_json(b)
    back = json.loads(dumps_json(a))
    assert back["n_placebos"] == 12 and 0 < back["p_value"] <= 1
    assert back["n_as_extreme"] == int(np.sum(np.abs([p["estimate"] for p in back["placebos"]]) >= abs(real)))


def test_month_start_labels_keep_the_event_month_out_of_every_placebo_window():
    import pandas as pd

    months = pd.date_range("2010-01-01", periods=120, freq="MS")  # simulated monthly counts
    rng = np.random.default_rng(3)
    y = rng.poisson(np.where(months >= pd.Timestamp("2018-08-01"), 50, 100)).astype(float)
    d = pd.DataFrame({"y": y}, index=months)
    kw = {"outcome": "y", "family": "poisson", "dow": False}
    real = float(ITS(d, event="2018-08-25", **kw).fit().params["level"])
    res = placebo_in_time(d, event="2018-08-25", real=real, n_placebos=10, its_kwargs=kw)
    last_window_end = res.table["date"].max() + pd.DateOffset(months=res.post_periods - 1)
    assert last_window_end < pd.Timestamp("2018-08-01"), "a placebo window reached the event month"
    assert res.p_value == pytest.approx(1 / 11)
