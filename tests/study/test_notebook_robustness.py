"""notebooks/04-robustness: its parameters cell is the spec's, and a papermill run on simulated data
writes the specification curve into the run directory."""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import nbformat
import pytest

from _figurechecks import assert_figures_shown_once_as_saved
from raidstudy.paths import repo_root
from raidstudy.study.parameters import PARAMETERS

NOTEBOOK = repo_root() / "notebooks" / "04-robustness.ipynb"


def test_robustness_parameters_match_the_spec():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    found = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "only flat assignments"
        found[node.targets[0].id] = ast.literal_eval(node.value)
    assert list(found) == list(PARAMETERS), "the parameters cell must list the spec's parameters in order"
    for name, value in found.items():
        assert value == PARAMETERS[name].default and type(value) is PARAMETERS[name].type, name


def test_robustness_notebook_validates_and_has_a_break_dating_section():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "validate_parameters(notebook_parameters(globals()))" in code
    heads = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Break dating")]
    assert len(heads) == 1, "a markdown section 'Break dating' is kept for the break-dating calls"


@pytest.fixture(scope="module")
def robustness_run(sim_csv_long, tmp_path_factory):
    from raidstudy.study.runs import execute_notebook

    out = tmp_path_factory.mktemp("run") / "robust"
    params = {"series_csv": str(sim_csv_long), "series_name": "simulated_counts", "event_id": "simulated_raid",
              "event_date": "2021-10-01", "pre_periods": 200, "post_periods": 120, "n_sim": 300, "seed": 7,
              "output_dir": str(out)}
    rec = execute_notebook("notebooks/04-robustness.ipynb", params)
    return Path(rec.output_dir)


@pytest.mark.heavy(seconds=8)
def test_robustness_run_writes_every_artefact(robustness_run):
    out = robustness_run
    for rel in ["results.json", "run.json", "notebook.ipynb", "report.html",
                "figures/specification_curve.png", "figures/specification_curve.pdf",
                "figures/specification_curve_level.png",
                "tables/specification_curve.md", "tables/specification_curve.tex",
                "tables/specification_curve_summary.md", "tables/specification_curve_by_choice.md"]:
        assert (out / rel).is_file(), rel
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["parameters"]["seed"] == 7
    html = (out / "report.html").read_text()
    assert "validate_parameters" not in html, "the reader's HTML must not show code"
    assert "Break dating" in html
    assert html.count("data:image/png") >= 2
    assert_figures_shown_once_as_saved(out / "notebook.ipynb", out / "figures", out / "report.html")


def test_robustness_results_hold_the_curve(robustness_run):
    res = json.loads((robustness_run / "results.json").read_text())
    sc = res["specification_curve"]
    # the default grid for a CSV series without control: 3 pre x 2 post x 2 transition x 3 families
    # x 2 Fourier x 2 covariances
    assert sc["grid"]["pre_periods"] == [100, 200, 400]
    assert sc["n_specifications"] == len(sc["rows"]) == 576
    rel = sc["statistics"]["relative"]
    assert rel["n_estimated"] + rel["n_not_estimated"] == 576 and rel["n_estimated"] >= 360
    # a planted halving: the curve is centred near -50% and nearly every interval excludes zero
    assert -65 < rel["median"] < -35
    assert rel["share_excluding_zero"] > 0.9
    # the study's own row agrees with the study's fit in the same file
    base = [r for r in sc["rows"] if all(r[k] == v for k, v in sc["base"].items())]
    assert len(base) == 1
    assert math.isclose(base[0]["relative_estimate"], res["effects"]["relative"]["pct"], rel_tol=1e-9)
    assert math.isclose(base[0]["level_coef"], {e["term"]: e for e in res["estimates"]}["level"]["estimate"],
                        rel_tol=1e-9)
    # not-estimated rows are kept, with the reason
    for r in sc["rows"]:
        assert (r["relative_estimate"] is None) == r["note"].startswith("not estimated")
