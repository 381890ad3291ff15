"""The batch summary (issue 14, part 4) and the rerun rule (part 3), without kernels."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raidstudy.errors import ParameterError
from raidstudy.io import dumps_json, sha256_file
from raidstudy.study import runs
from raidstudy.study.runs import (adjust_p_values, expand_plan, forest_data, plan_roles, plot_forest,
                                  summarise_runs, write_batch_summary)


def fake_run(root: Path, name: str, *, event="sparks_2020", family="negbin", p=0.01, pct=-40.0, placebo_p=0.5,
             n_missing=3, status="complete", report=True, error=None) -> Path:
    """A run directory as a finished (or failed) run leaves it."""
    d = root / name
    d.mkdir(parents=True)
    est = float(np.log1p(pct / 100))
    level = {"term": "level", "estimate": est, "ci_low": est - 0.2, "ci_high": est + 0.2, "p_value": p}
    if family != "gaussian":
        level.update(pct=pct, pct_ci_low=100 * np.expm1(est - 0.2), pct_ci_high=100 * np.expm1(est + 0.2))
    res = {"event": {"id": event}, "data": {"outcome": "releases", "n_missing": n_missing},
           "model": {"family": family}, "parameters": {"alpha": 0.05}, "effects": {"level": level},
           "robustness": {"placebo": {"p_value": placebo_p, "min_attainable_p": 0.25}}}
    if status == "complete":
        (d / "results.json").write_text(json.dumps(res))
    (d / "run.json").write_text(json.dumps({"status": status, "parameters": {"event_id": event},
                                            **({"error": error} if error else {})}))
    if report and status == "complete":
        (d / "report.html").write_text("<html><title>run</title></html>")
    return d


def holm(p):
    """Holm's step-down adjustment, written out (independent of statsmodels)."""
    p = np.asarray(p, float)
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        adj[i] = running
    return adj


def bh(p):
    """Benjamini-Hochberg step-up adjustment, written out."""
    p = np.asarray(p, float)
    order = np.argsort(p)[::-1]
    m = len(p)
    adj = np.empty(m)
    running = 1.0
    for k, i in enumerate(order):
        running = min(running, p[i] * m / (m - k))
        adj[i] = running
    return adj


def test_adjustments_are_holm_and_bh_over_the_runs_with_a_p_value():
    p = [0.01, None, 0.04, 0.03, float("nan"), 0.2]
    got = adjust_p_values(p)
    ok = [0, 2, 3, 5]
    finite = [p[i] for i in ok]
    np.testing.assert_allclose(got["p_value_holm"].to_numpy()[ok], holm(finite))
    np.testing.assert_allclose(got["p_value_bh"].to_numpy()[ok], bh(finite))
    assert got.loc[[1, 4]].isna().all().all()


@given(st.lists(st.sampled_from([0.0, 1e-12, 0.001, 0.01, 0.02, 0.04, 0.3, 0.5, 0.999, 1.0])
                | st.floats(0, 1), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_holm_is_statsmodels_holm_with_ties_zeros_and_ones(p):
    from statsmodels.stats.multitest import multipletests

    from raidstudy.study.runs import _holm

    import gc

    p = np.asarray(p, float)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gc, "collect", lambda *a: 0)  # statsmodels' Holm collects garbage on each call: 200 calls
        expected = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(_holm(p), expected, rtol=1e-15, atol=0)


def non_day_event():
    """A catalogued event whose date is less precise than a day (looked up, not assumed)."""
    from raidstudy.data.events import load_events

    ev = load_events()
    rows = ev[ev["date_precision"] != "day"]
    if rows.empty:
        pytest.skip("the catalogue has no event dated less precisely than a day")
    return str(rows["event_id"].iloc[0])


def test_summary_has_the_columns_a_reader_needs(tmp_path):
    from raidstudy.data.events import get_event

    other = non_day_event()
    dirs = [fake_run(tmp_path, "a", p=0.01, pct=-40.0, placebo_p=0.5, n_missing=3),
            fake_run(tmp_path, "b", event=other, p=0.04, pct=-10.0, placebo_p=0.25, n_missing=0),
            fake_run(tmp_path, "c", event="my_own_raid", family="gaussian", p=0.03, placebo_p=None, n_missing=7),
            fake_run(tmp_path, "d", status="failed", error="RunError: boom\nsecond line")]
    table = summarise_runs(dirs, roles=["event", "control", "event", "event"])
    assert tuple(table.columns) == runs.SUMMARY_COLUMNS
    assert list(table["status"]) == ["complete", "complete", "complete", "failed"]
    assert list(table["role"]) == ["event", "control", "event", "event"]
    assert list(table["date_precision"][:3]) == [get_event("sparks_2020").precision, get_event(other).precision,
                                                 "not catalogued"]
    assert table["date_precision"][3] == get_event("sparks_2020").precision  # from run.json's parameters
    assert list(table["n_missing"][:3]) == [3, 0, 7] and table["n_missing"].isna()[3]
    assert list(table["placebo_p_value"][:2]) == [0.5, 0.25] and np.isnan(table["placebo_p_value"][2])
    # the family is the three complete runs, controls included; the failed run has no p-value
    np.testing.assert_allclose(table["p_value_holm"][:3], holm([0.01, 0.04, 0.03]))
    np.testing.assert_allclose(table["p_value_bh"][:3], bh([0.01, 0.04, 0.03]))
    assert np.isnan(table["p_value_holm"][3]) and np.isnan(table["level"][3])
    assert table["error"][3] == "RunError: boom"
    assert table["report"][0].endswith("a/report.html") and table["report"].isna()[3]


def test_the_batch_status_wins_over_an_earlier_run_left_in_the_folder(tmp_path):
    old = fake_run(tmp_path, "old")
    table = summarise_runs([old], batch_rows=[{"output_dir": str(old), "status": "not started"}])
    assert table["status"][0] == "not started" and np.isnan(table["level"][0])
    reused = summarise_runs([old], batch_rows=[{"output_dir": str(old), "status": "skipped"}])
    assert reused["status"][0] == "complete" and bool(reused["reused"][0]) is True
    # run.json says complete, but results.json was never moved into place: interrupted
    (old / "results.json").unlink()
    assert summarise_runs([old])["status"][0] == "interrupted"


def test_written_summary_index_links_each_report_relatively_and_forest_plot_files(tmp_path):
    root = tmp_path / "batch"
    dirs = [fake_run(root, "a", pct=-40.0), fake_run(root, "b", event=non_day_event(), pct=5.0),
            fake_run(root, "g", family="gaussian"), fake_run(root, "f", status="failed")]
    paths = write_batch_summary(dirs, root, roles=["event", "control", "event", "event"])
    assert set(paths) == {"summary.md", "summary.csv", "forest.csv", "forest.png", "forest.pdf", "index.html"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert paths["forest.pdf"].read_bytes().startswith(b"%PDF")
    html = paths["index.html"].read_text()
    hrefs = re.findall(r'href="([^"]+)"', html)
    reports = [h for h in hrefs if h.endswith("report.html")]
    assert sorted(reports) == ["a/report.html", "b/report.html", "g/report.html"]
    assert all(not h.startswith("/") and (root / h).is_file() for h in hrefs if h not in
               ("summary.md", "summary.csv", "forest.png", "forest.pdf", "forest.csv")) and reports
    assert "control" in html and "<script" not in html and "http" not in html
    md = paths["summary.md"].read_text()
    assert "Holm" in md and "nan" not in md.lower() and "e+00" not in md
    forest = (root / "forest.csv").read_text().splitlines()
    assert len(forest) == 1 + 2  # the Gaussian and the failed run are in the table, not the plot


def test_forest_plot_is_keyword_only_returns_fig_ax_and_leaves_the_style_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    dirs = [fake_run(tmp_path, n, pct=v) for n, v in (("x", -30.0), ("y", 12.0))]
    data = forest_data(summarise_runs(dirs, roles=["event", "control"]))
    before = dict(matplotlib.rcParams)
    with pytest.raises(TypeError):
        plot_forest(data)  # keyword-only
    fig, ax = plot_forest(data=data, title="t")
    try:
        assert len(ax.get_yticks()) == len(data) == 2
        assert list(data["estimate"]) == [-30.0, 12.0] and list(data["role"]) == ["event", "control"]
        assert ax.get_legend() is not None  # a control is present, so the roles are told apart
    finally:
        plt.close(fig)
    after = dict(matplotlib.rcParams)
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}


def test_plan_controls_label_runs_and_are_checked():
    plan = {"grid": {"event_id": ["sparks_2020", "zlibrary_2022"]}, "controls": ["zlibrary_2022"],
            "output_root": "results/x"}
    assert plan_roles(plan, expand_plan(plan)) == ["event", "control"]
    with pytest.raises(ParameterError, match="no run of the plan studies these events"):
        expand_plan(dict(plan, controls=["evo_2023"]))
    with pytest.raises(ParameterError, match="must be a list of event ids"):
        expand_plan(dict(plan, controls="zlibrary_2022"))


# ------------------------------------------------------------------ the rerun rule

def _complete_run(params, checksum, notebook):
    """Write a run directory as the runner leaves a complete run of ``params``."""
    from raidstudy.study.artefacts import package_versions

    out = Path(params["output_dir"])
    out.mkdir(parents=True)
    (out / "results.json").write_text('{"x": 1}\n')
    record = {"status": "complete", "parameters": json.loads(dumps_json(params)), "data_checksum": checksum,
              "notebook": notebook, "packages": package_versions(("raidstudy",)),
              "results_sha256": sha256_file(out / "results.json")}
    (out / "run.json").write_text(json.dumps(record))
    return out


@pytest.mark.parametrize("change", [None, "parameters", "data", "version", "notebook", "results", "status"])
def test_a_run_is_reused_only_when_complete_for_the_same_inputs(tmp_path, change):
    from raidstudy.study.parameters import coerce_parameters

    params = coerce_parameters({"event_id": "sparks_2020", "output_dir": str(tmp_path / "run")})
    out = _complete_run(params, "abc", "notebooks/02-event-study.ipynb")
    rec = json.loads((out / "run.json").read_text())
    if change == "parameters":
        rec["parameters"]["n_sim"] += 1
    elif change == "data":
        rec["data_checksum"] = "abd"
    elif change == "version":
        rec["packages"]["raidstudy"] = "0.0.0"
    elif change == "notebook":
        rec["notebook"] = "notebooks/04-robustness.ipynb"
    elif change == "status":
        rec["status"] = "running"
    elif change == "results":
        (out / "results.json").write_text('{"x": 2}\n')
    (out / "run.json").write_text(json.dumps(rec))
    assert runs._same_run(params, "abc", "notebooks/02-event-study.ipynb") is (change is None)


def test_complete_runs_are_skipped_unless_rerun(sim_csv, tmp_path, monkeypatch):
    from raidstudy.study.parameters import coerce_parameters, validate_parameters

    params = coerce_parameters(dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                                    event_date="2021-10-01", pre_periods=200, post_periods=90, n_sim=100,
                                    output_dir=str(tmp_path / "run")))
    nb = "notebooks/02-event-study.ipynb"
    _complete_run(params, validate_parameters(params).data_checksum, nb)
    started = []

    def fake_local(nb_, todo, workers, force, bar):
        started.extend(p["output_dir"] for _, p in todo)
        return {i: {"output_dir": p["output_dir"], "status": "complete"} for i, p in todo}, False

    monkeypatch.setattr(runs, "_run_local", fake_local)
    assert runs.run_batch(nb, [params], workers=1, progress=False) == [
        {"output_dir": params["output_dir"], "status": "skipped"}]
    assert started == []
    assert runs.run_batch(nb, [params], workers=1, progress=False, rerun=True)[0]["status"] == "complete"
    assert started == [params["output_dir"]]
