"""Batch plans and run summaries."""
from __future__ import annotations

import json

import pytest

from raidstudy.errors import ParameterError
from raidstudy.study.runs import expand_plan, load_plan, summarise_runs
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


def test_summary_trusts_run_json_and_reports_the_headline_term(tmp_path):
    res = {"event": {"id": "e"}, "data": {"outcome": "y"}, "model": {"family": "negbin"},
           "effects": {"level": {"term": "treated_level", "estimate": -1.0, "ci_low": -1.5, "ci_high": -0.5,
                                 "p_value": 0.01, "pct": -63.2, "pct_ci_low": -77.7, "pct_ci_high": -39.3}}}
    done, interrupted = tmp_path / "done", tmp_path / "interrupted"
    for d, status in ((done, "complete"), (interrupted, "running")):
        d.mkdir()
        (d / "results.json").write_text(json.dumps(res))
        (d / "run.json").write_text(json.dumps({"status": status}))
    table = summarise_runs([done, interrupted, tmp_path / "missing"])
    assert list(table["status"]) == ["complete", "running", "missing"]
    assert table.loc[0, "term"] == "treated_level" and table.loc[0, "level_pct"] == -63.2
    assert table.loc[1, ["level"]].isna().all(), "an interrupted run must not report estimates"


@pytest.mark.parametrize("plan,fragment", [
    ({"output_root": ""}, "inside the repository"),
    ({"output_root": "/abs"}, "inside the repository"),
    ({"base": {"output_dir": "x"}}, "set by the runner"),
    (["not", "a", "mapping"], "must be a mapping"),
])
def test_bad_plans_are_refused(plan, fragment):
    with pytest.raises(ParameterError, match=fragment):
        expand_plan(plan)


def test_unreadable_plan_files(tmp_path):
    with pytest.raises(ParameterError, match="file not found"):
        load_plan(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed")
    with pytest.raises(ParameterError, match="cannot be parsed"):
        load_plan(bad)
