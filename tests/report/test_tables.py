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
