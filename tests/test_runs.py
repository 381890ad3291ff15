"""Batch plans and run summaries."""
from __future__ import annotations

import json

import pytest

from raidstudy.errors import ParameterError
from raidstudy.runs import expand_plan, load_plan, summarise_runs
from raidstudy.paths import repo_root


def test_expand_plan_is_the_cartesian_product():
    runs = expand_plan({"base": {"n_sim": 500}, "grid": {"model_family": ["negbin", "gaussian"],
                                                          "transition_periods": [0, 1]},
                        "output_root": "results/x"})
    assert len(runs) == 4
    assert {r["output_dir"] for r in runs} == {
        "results/x/negbin__0", "results/x/negbin__1", "results/x/gaussian__0", "results/x/gaussian__1"}
    assert all(r["n_sim"] == 500 for r in runs)


def test_plan_with_unknown_parameter_is_refused():
    with pytest.raises(ParameterError, match="unknown parameter name"):
        expand_plan({"grid": {"modelfamily": ["negbin"]}})
    with pytest.raises(ParameterError, match="unknown plan keys"):
        expand_plan({"grids": {}})


def test_bundled_plan_parses():
    plan = load_plan(repo_root() / "plans" / "sparks-robustness.yaml")
    runs = expand_plan(plan)
    assert len(runs) == 9


def test_summary_lists_incomplete_runs(tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    (done / "results.json").write_text(json.dumps({
        "event": {"id": "e"}, "data": {"outcome": "y"}, "model": {"family": "negbin"},
        "estimates": [{"term": "level", "estimate": -1.0, "ci_low": -1.5, "ci_high": -0.5, "p_value": 0.01}]}))
    table = summarise_runs([done, tmp_path / "missing"])
    assert list(table["status"]) == ["complete", "incomplete"]
    assert table.loc[0, "level"] == -1.0
