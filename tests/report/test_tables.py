"""Tables: estimates, headline effects, Markdown and booktabs LaTeX."""
from __future__ import annotations

import pytest

from raidstudy import ITS
from raidstudy.report import tables
from raidstudy.models.simulate import simulate_its


@pytest.fixture(scope="module")
def res():
    d = simulate_its(family="poisson", n=500, event=300, seed=4)
    return ITS(d, outcome="y", event=d.index[300], family="poisson").fit()


def test_estimates_table(res):
    df = tables.estimates_table(res)
    assert list(df.index[:4]) == ["const", "trend", "level", "slope"]
    assert {"estimate", "std_error", "ci_low", "ci_high", "p_value", "rate_ratio"} <= set(df.columns)


def test_effects_table_from_results_and_dicts(res):
    a = tables.effects_table(res, n_sim=300)
    b = tables.effects_table(res.effects(n_sim=300))
    c = tables.effects_table(res.to_dict(n_sim=300))
    assert a.equals(b) and a.equals(c)
    assert a.index[0] == "Level change (%)"
    assert any(i.startswith("Time to recover to 90%") for i in a.index)
    lvl = res.effects(n_sim=300)["level"]
    assert a.loc["Level change (%)", "estimate"] == pytest.approx(lvl["pct"])
    assert "%" in a.loc["Level change (%)", "display"]


def test_markdown_and_latex(res):
    df = tables.effects_table(res, n_sim=200)
    md = tables.to_markdown(df)
    assert md.startswith("| effect") and "Relative effect" in md
    tex = tables.to_latex(df, caption="Effects of the raid & more", label="tab:eff")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "\\&" in tex and "\\label{tab:eff}" in tex and "\\%" in tex


def test_fmt_num():
    assert tables.fmt_num(12345.6) == "12,346"
    assert tables.fmt_num(0.012345) == "0.0123"
    assert tables.fmt_num(None) == "n/a"


def test_text_summary_writes_numbers_as_people_do():
    """Issue 14 part 7: no ``1.0872e+05`` in a results summary; counts get thousands separators."""
    import numpy as np
    import pandas as pd

    from raidstudy.models.its import ITS

    rng = np.random.default_rng(3)
    idx = pd.date_range("2021-01-01", periods=200, freq="D")
    y = rng.poisson(np.where(np.arange(200) < 120, 5000, 2500))  # SIMULATED counts
    res = ITS(pd.DataFrame({"y": y}, index=idx), outcome="y", event=idx[120], family="poisson",
              dow=False).fit(cov_type="hac")
    text = res.summary().as_text()
    assert "e+" not in text
    cum = next(line for line in text.splitlines() if line.startswith("Cumulative effect"))
    assert "," in cum and "e" not in cum.split(":", 1)[1]
