"""Notebooks: a contract on their parameters and storage, and real papermill runs on fixture data."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from _figurechecks import assert_figures_shown_once_as_saved
from raidstudy.paths import repo_root
from raidstudy.study.parameters import PARAMETERS

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("*.ipynb"))


def _parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_clean_with_kernel_python3(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} is stored with outputs"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_paired_text_is_in_sync(path):
    jupytext = pytest.importorskip("jupytext")
    text = path.with_suffix(".py")
    assert text.exists(), f"{path.name} has no py:percent pair; run `make notebooks`"
    a = jupytext.read(path)
    b = jupytext.read(text)
    assert [c.source for c in a.cells] == [c.source for c in b.cells], "run `make notebooks` to sync the pair"


def test_event_study_parameters_match_the_spec():
    nb = nbformat.read(repo_root() / "notebooks" / "02-event-study.ipynb", as_version=4)
    tree = ast.parse(_parameters_cell(nb).source)
    found = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "only flat assignments"
        found[node.targets[0].id] = ast.literal_eval(node.value)
    assert list(found) == list(PARAMETERS), "the parameters cell must list the spec's parameters in order"
    for name, value in found.items():
        assert value == PARAMETERS[name].default and type(value) is PARAMETERS[name].type, name


@pytest.fixture(scope="module")
def sim_run(sim_csv_long, tmp_path_factory):
    from raidstudy.study.runs import execute_notebook

    out = tmp_path_factory.mktemp("run") / "sim"
    params = dict(series_csv=str(sim_csv_long), series_name="simulated_counts", event_id="simulated_raid",
                  event_date="2021-10-01", pre_periods=200, post_periods=120, n_sim=300, seed=7, fourier=0,
                  n_placebos=60, output_dir=str(out))
    with pytest.MonkeyPatch.context() as mp:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            mp.setenv(var, "3")  # the caller's own thread setting, which the runner must override
        rec = execute_notebook("notebooks/02-event-study.ipynb", params)
    return rec, params


@pytest.mark.heavy(seconds=8)
def test_event_study_writes_every_artefact(sim_run):
    rec, _ = sim_run
    out = Path(rec.output_dir)
    for rel in ["results.json", "run.json", "notebook.ipynb", "report.html",
                "figures/series.png", "figures/series.pdf", "figures/fit.png", "figures/fit.pdf",
                "figures/placebo.png", "figures/path.png", "figures/path.pdf", "tables/path.md", "tables/path.tex",
                "tables/dynamic_shapes.md", "tables/effects.md", "tables/effects.tex", "tables/estimates.md",
                "tables/estimates.tex", "tables/sensitivity.md"]:
        assert (out / rel).is_file(), rel
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert run["parameters"]["seed"] == 7 and run["data_checksum"]
    assert "statsmodels" in run["packages"]
    from raidstudy.study.runs import KERNEL_THREADS

    # the kernel ran on one BLAS thread whatever the test's environment: same bytes on any machine
    assert run["threads"] == KERNEL_THREADS == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                                "MKL_NUM_THREADS": "1"}
    html = (out / "report.html").read_text()
    assert "validate_parameters" not in html, "the reader's HTML must not show code"
    assert "Simulated data" in html
    assert html.count("data:image/png") >= 5, "series, path, fit, placebo and residual figures must all be shown"
    assert_figures_shown_once_as_saved(out / "notebook.ipynb", out / "figures", out / "report.html")


def test_event_study_recovers_the_planted_effect(sim_run):
    rec, _ = sim_run
    res = json.loads((Path(rec.output_dir) / "results.json").read_text())
    assert res["data"]["simulated"] is True and res["provenance"]["simulated_data"] is True
    level = {e["term"]: e for e in res["estimates"]}["level"]
    import math

    truth = math.log(0.5)
    assert level["ci_low"] < truth < level["ci_high"]
    assert abs(level["estimate"] - truth) < 0.15
    assert res["parameters"]["event_date"] == "2021-10-01"
    assert res["model"]["family"] == "negbin"
    assert set(res["sentences"]) and all(isinstance(s, str) and s for s in res["sentences"].values())
    placebo = res["robustness"]["placebo"]
    # two independent windows fit before the study window; a planted halving beats both, and
    # the p-value is then at its floor 1/3, which the sentence must say
    assert placebo["n_independent"] == 2 and placebo["n_as_extreme"] == 0
    assert placebo["p_value"] == pytest.approx(1 / 3) and placebo["p_at_floor"] is True
    assert "smallest attainable p-value is 0.33" in res["sentences"]["placebo"]
    assert placebo["dense"]["n"] == 60
    dyn = res["dynamic"]
    first = [b for b in dyn["event_study"]["path"] if b["kind"] == "post"][0]
    assert first["pct_ci_low"] < 100 * (0.5 - 1) < first["pct_ci_high"], "the first bin must cover the halving"
    assert dyn["effects"]["relative"]["pct_ci_low"] < -50 < dyn["effects"]["relative"]["pct_ci_high"]


@pytest.mark.heavy(seconds=8)
def test_results_json_is_byte_identical_on_rerun(sim_run, tmp_path):
    from raidstudy.study.runs import execute_notebook

    rec, params = sim_run
    first = (Path(rec.output_dir) / "results.json").read_bytes()
    # rerun into the same directory: the same inputs must give the same bytes
    rec2 = execute_notebook("notebooks/02-event-study.ipynb", params)
    assert (Path(rec2.output_dir) / "results.json").read_bytes() == first


@pytest.mark.heavy(seconds=2)
def test_failed_run_never_looks_complete(sim_csv, tmp_path):
    from raidstudy.errors import RaidstudyError
    from raidstudy.study.runs import execute_notebook

    out = tmp_path / "bad"
    out.mkdir()
    (out / "results.json").write_text("{}")  # a stale result from an earlier run ...
    (out / "run.json").write_text('{"status": "complete"}')  # ... which marked the folder as its own
    # a series the CSV does not hold: with the runner's own check switched off, the failure
    # comes from the notebook's first cell, after the run has started
    params = dict(series_csv=str(sim_csv), series_name="no_such_series", event_id="simulated_raid",
                  event_date="2021-10-01", pre_periods=200, post_periods=120, n_sim=300, output_dir=str(out))
    with pytest.raises(RaidstudyError, match="failed in cell"):
        execute_notebook("notebooks/02-event-study.ipynb", params, validate=False)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed"
    assert not (out / "results.json").exists(), "the stale results.json must be gone"
    assert (out / "notebook-failed.ipynb").is_file()


@pytest.mark.heavy(seconds=2)
def test_papermill_direct_with_unknown_parameter_fails_early(tmp_path):
    """Run with papermill itself (not the CLI): a misspelt parameter must still be refused."""
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as exc:
        pm.execute_notebook(str(repo_root() / "notebooks" / "02-event-study.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"pre_period": 100}, kernel_name="python3", progress_bar=False,
                            cwd=str(repo_root()))
    assert exc.value.ename == "ParameterError" and "pre_period" in exc.value.evalue
