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
    ({"output_root": ""}, "is empty"),
    ({"output_root": "/dev/null"}, "is a file, not a folder"),
    ({"base": {"output_dir": "x"}}, "set by the runner"),
    (["not", "a", "mapping"], "must be a mapping"),
])
def test_bad_plans_are_refused(plan, fragment):
    with pytest.raises(ParameterError, match=fragment):
        expand_plan(plan)


def test_batch_takes_the_paths_run_takes(tmp_path):
    """Issue 14 part 1: an absolute output_root (or ~/...) is accepted like run's output_dir."""
    runs = expand_plan({"grid": {"pre_periods": [200, 300]}, "output_root": str(tmp_path / "b")})
    assert [r["output_dir"] for r in runs] == [str(tmp_path / "b" / "200"), str(tmp_path / "b" / "300")]


def test_unreadable_plan_files(tmp_path):
    with pytest.raises(ParameterError, match="file not found"):
        load_plan(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed")
    with pytest.raises(ParameterError, match="cannot be parsed"):
        load_plan(bad)


# ------------------------------------------------------------------ run_batch, end to end
def _tiny_notebook(path):
    """A two-cell papermill notebook: a tagged parameters cell, then one that writes results.json
    from the injected parameters and fails on purpose when seed == 13 (a run-time failure)."""
    import nbformat

    from raidstudy.study.parameters import PARAMETERS

    params = nbformat.v4.new_code_cell("\n".join(f"{k} = {v.default!r}" for k, v in PARAMETERS.items()))
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json, pathlib\n"
        "if seed == 13:\n"
        "    raise RuntimeError('planted failure')\n"
        "pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
        "pathlib.Path(output_dir, 'results.json').write_text(json.dumps("
        "{'seed': seed, 'n_sim': n_sim, 'series_name': series_name}))")
    nb = nbformat.v4.new_notebook(cells=[params, body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.heavy(seconds=4)
def test_run_batch_runs_each_parameter_set_and_reports_failures(sim_csv, tmp_path):
    from raidstudy.study.runs import run_batch

    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    base = dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                event_date="2021-10-01", pre_periods=200, post_periods=90, n_sim=100, fourier=0, n_placebos=0)
    # a failed run does not stop the batch; the rows keep the order given
    runs = [dict(base, seed=13, output_dir=str(tmp_path / "b")), dict(base, seed=1, output_dir=str(tmp_path / "a"))]
    rows = run_batch(nb, runs, workers=1, progress=False)
    assert [r["output_dir"] for r in rows] == [str(tmp_path / x) for x in "ba"]
    assert [r["status"] for r in rows] == ["failed", "complete"]
    assert "planted failure" in rows[0]["error"] and rows[0]["error"].startswith("RunError")
    for x, seed in (("a", 1),):
        out = tmp_path / x
        # the parameters reached the kernel, coerced and validated
        assert json.loads((out / "results.json").read_text()) == {"seed": seed, "n_sim": 100,
                                                                  "series_name": "simulated_counts"}
        assert json.loads((out / "run.json").read_text())["status"] == "complete"
        assert (out / "notebook.ipynb").exists() and (out / "report.html").exists()
    failed = tmp_path / "b"
    assert json.loads((failed / "run.json").read_text())["status"] == "failed"
    assert (failed / "notebook-failed.ipynb").exists() and not (failed / "notebook.ipynb").exists()
    table = summarise_runs([tmp_path / x for x in "ab"])
    assert list(table["status"]) == ["complete", "failed"]


def test_run_batch_validates_every_run_before_starting_any(sim_csv, tmp_path):
    from raidstudy.study.runs import run_batch

    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    good = dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                event_date="2021-10-01", pre_periods=200, post_periods=90, n_sim=100, fourier=0,
                output_dir=str(tmp_path / "good"))
    with pytest.raises(ParameterError, match="n_sim"):
        run_batch(nb, [good, dict(good, n_sim=5, output_dir=str(tmp_path / "bad"))], workers=1)
    assert not (tmp_path / "good").exists(), "no run may start when a later parameter set is invalid"
