"""Interval coverage of the staggered estimators over 200 SIMULATED panels (slow: about 2-7 minutes)."""
from __future__ import annotations

import pytest

from raidstudy.models.staggered.simulate import bias_table


@pytest.mark.slow
def test_coverage_of_the_aggregate_effect_over_200_replications():
    tab = bias_table(200, seed=1000).set_index("estimator")
    # 200 replications: a 95% interval's coverage has a binomial standard error of 1.5 points
    for est in ("Sun-Abraham IW", "stacked, clean controls"):
        assert 0.90 <= tab.loc[est, "coverage"] <= 0.99, (est, tab.loc[est].to_dict())
        assert abs(tab.loc[est, "bias"]) < 0.25 * tab.loc[est, "sd_estimate"] + 0.03, est
        # the standard errors track the sampling spread
        assert 0.8 < tab.loc[est, "mean_se"] / tab.loc[est, "sd_estimate"] < 1.25, est
    # static TWFE: biased by many standard deviations, intervals almost never cover
    tw = tab.loc["TWFE (static)"]
    assert abs(tw["bias"]) > 10 * tw["sd_estimate"] and tw["coverage"] < 0.05
