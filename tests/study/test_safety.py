"""No silent wrong input and the small things users see (issue 14, parts 2 and 7): each bad
input is refused with one line naming the parameter, the value and what to do."""
from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from raidstudy.cli import main
from raidstudy.errors import ParameterError
from raidstudy.report import tables
from raidstudy.report.narrative import sentences
from raidstudy.study import runs
from raidstudy.study.parameters import (
    check_run_directory,
    coerce_parameters,
    notebook_parameters,
    validate_parameters,
)


def sim(sim_csv, **kw):
    base = dict(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                event_date="2021-10-01", pre_periods=200, post_periods=90, fourier=0)
    base.update(kw)
    return base


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize("name,value", [
    ("event_date", "01/09/2020"), ("event_date", "2020-9-1"), ("event_date", "1 Sep 2020"),
    ("event_date", "20200901"), ("holidays", "2020-12-25,25/12/2020"),
])
def test_dates_must_be_iso(name, value):
    with pytest.raises(ParameterError) as err:
        coerce_parameters({name: value})
    msg = _one_line(err)
    assert f"'{name}'" in msg and "ISO date (YYYY-MM-DD)" in msg


def test_date_objects_become_iso_strings():
    p = coerce_parameters({"event_date": datetime.date(2020, 9, 1), "holidays": [datetime.date(2020, 12, 25)]})
    assert p["event_date"] == "2020-09-01" and p["holidays"] == "2020-12-25"
    with pytest.raises(ParameterError, match="time of day"):
        coerce_parameters({"event_date": datetime.datetime(2020, 9, 1, 10, 30)})


# ------------------------------------------------------------------ lists


def test_list_values_are_joined_for_comma_separated_parameters():
    p = coerce_parameters({"feeds": ["xrel", "#pre@corrupt"], "families": ("tv", "movies"), "control_feeds": []})
    assert p["feeds"] == "xrel,#pre@corrupt" and p["families"] == "tv,movies" and p["control_feeds"] == ""


@pytest.mark.parametrize("params,fragment", [
    ({"pre_periods": [100, 200]}, "takes one value, not a list"),
    ({"event_id": ["sparks_2020"]}, "takes one value, not a list"),
    ({"feeds": ["xrel,srrdb", "x"]}, "is not a single name"),
    ({"feeds": ["xrel", 3]}, "is not a single name"),
])
def test_list_values_refused_elsewhere(params, fragment):
    with pytest.raises(ParameterError) as err:
        coerce_parameters(params)
    assert fragment in _one_line(err)


def test_notebook_parameters_keep_lists_so_they_are_checked():
    ns = {"feeds": ["xrel", "srrdb"], "pre_periods": 100, "_x": [1], "np": np}
    assert notebook_parameters(ns) == {"feeds": ["xrel", "srrdb"], "pre_periods": 100}
    assert notebook_parameters({"pre_periods": [1, 2]}) == {"pre_periods": [1, 2]}  # refused by validation
    assert coerce_parameters(notebook_parameters(ns))["feeds"] == "xrel,srrdb"


def test_cov_type_accepts_statsmodels_spellings():
    assert coerce_parameters({"cov_type": "HAC"})["cov_type"] == "hac"
    assert coerce_parameters({"cov_type": "EWC"})["cov_type"] == "ewc"


# ------------------------------------------------------------------ data


def test_count_series_zero_on_the_whole_pre_period_is_refused(tmp_path):
    days = pd.date_range("2021-01-01", periods=200, freq="D")
    vals = np.where(days < "2021-05-01", 0, 40)
    path = tmp_path / "zeros.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "value": vals}).to_csv(path, index=False)
    params = dict(series_csv=str(path), event_id="my_raid", event_date="2021-05-01", pre_periods=100,
                  post_periods=60, model_family="poisson")
    with pytest.raises(ParameterError) as err:
        validate_parameters(params)
    msg = _one_line(err)
    assert "'series_csv'" in msg and "zero on all 100 observed pre-event periods" in msg
    # a Gaussian model of the same series is a different question and is not refused
    validate_parameters(dict(params, model_family="gaussian"))


def test_csv_with_inf_is_refused_before_fitting(tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("date,value\n2021-01-01,1\n2021-01-02,inf\n")
    with pytest.raises(Exception, match=r"inf.csv line 3, column value: 'inf' is not a finite number"):
        validate_parameters(dict(series_csv=str(path), event_id="x", event_date="2021-01-02"))


# ------------------------------------------------------------------ output paths, workers, scheduler


def test_output_dir_that_is_a_file_is_refused_before_running(sim_csv, tmp_path):
    f = tmp_path / "taken"
    f.write_text("not a folder")
    for out in (f, f / "sub"):
        with pytest.raises(ParameterError) as err:
            runs.execute_notebook("notebooks/02-event-study.ipynb", sim(sim_csv, output_dir=str(out)))
        msg = _one_line(err)
        assert "'output_dir'" in msg and "is a file" in msg
    assert f.read_text() == "not a folder"


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_run_batch_refuses_bad_worker_counts(workers):
    with pytest.raises(ParameterError) as err:
        runs.run_batch("notebooks/02-event-study.ipynb", [], workers=workers)
    assert "'workers'" in _one_line(err)


def test_cli_refuses_negative_workers_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["batch", "plans/sparks-robustness.yaml", "--workers", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --workers: '-1': give at least 1 worker" in err and "Traceback" not in err


@pytest.mark.parametrize("address", ["tcp//host", "http://host:8786", "tcp://host", "host:99999", "", "tcp://a b:1"])
def test_malformed_scheduler_is_one_line(address):
    with pytest.raises(ParameterError) as err:
        runs.check_scheduler(address)
    assert "'scheduler'" in _one_line(err)


def test_scheduler_addresses_accepted():
    assert runs.check_scheduler("tcp://scheduler:8786") == "tcp://scheduler:8786"
    assert runs.check_scheduler("127.0.0.1:8786") == "tcp://127.0.0.1:8786"


def test_unreachable_scheduler_fails_in_seconds_with_one_line(monkeypatch):
    import time

    monkeypatch.setattr(runs, "SCHEDULER_TIMEOUT", 1)
    t0 = time.perf_counter()
    with pytest.raises(runs.RunError) as err:
        runs._connect("tcp://127.0.0.1:9")
    assert time.perf_counter() - t0 < 15
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in _one_line(err)


def test_cli_malformed_scheduler_no_traceback(capsys):
    assert main(["batch", "plans/sparks-robustness.yaml", "--scheduler", "tcp//bad"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "parameter 'scheduler' = 'tcp//bad'" in err


# ------------------------------------------------------------------ plans


def test_duplicate_keys_in_a_yaml_plan_are_refused(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("base:\n  n_sim: 1000\ngrid:\n  event_id: [a]\n  event_id: [b]\n")
    with pytest.raises(ParameterError) as err:
        runs.load_plan(p)
    msg = _one_line(err)
    assert "key 'event_id' appears twice (lines 4 and 5)" in msg
    top = tmp_path / "top.yaml"
    top.write_text("grid:\n  event_id: [a]\ngrid:\n  event_id: [b]\n")
    with pytest.raises(ParameterError, match="key 'grid' appears twice"):
        runs.load_plan(top)


def test_duplicate_keys_in_a_json_plan_are_refused(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text('{"base": {"n_sim": 1000, "n_sim": 2000}, "grid": {}}')
    with pytest.raises(ParameterError, match="key 'n_sim' appears twice"):
        runs.load_plan(p)


def test_bundled_plans_still_load():
    for plan in Path("plans").glob("*.yaml"):
        assert runs.expand_plan(runs.load_plan(plan))


@pytest.mark.parametrize("grid,fragment", [
    ({"pre_periods": ["5", "05"]}, "'5' and '05' are the same study once parsed (5)"),
    ({"pre_periods": [200, "200"]}, "the same study once parsed"),
    ({"slope": [True, "true"]}, "the same study once parsed"),
    ({"model_family": ["negbin", " negbin"]}, "the same study once parsed"),
    ({"event_id": []}, "is an empty list"),
])
def test_grid_values_that_parse_the_same_are_refused(grid, fragment):
    with pytest.raises(ParameterError) as err:
        runs.expand_plan({"grid": grid, "output_root": "results/x"})
    assert fragment in _one_line(err)


# ------------------------------------------------------------------ the report


def test_report_html_names_the_study_and_loads_nothing_from_the_network(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Study"),
                                         nbformat.v4.new_code_cell("1", outputs=[])])
    path = tmp_path / "notebook.ipynb"
    nbformat.write(nb, str(path))
    (tmp_path / "results.json").write_text(json.dumps({
        "event": {"id": "sparks_2020", "name": "SPARKS group raids", "date": "2020-08-25"},
        "data": {"outcome": "releases (feeds xrel)"}}))
    html = runs.render_html(path, tmp_path / "report.html").read_text()
    assert "<title>raidstudy: SPARKS group raids, 2020-08-25: releases (feeds xrel)</title>" in html
    assert not re.findall(r"<script[^>]+src=", html)
    assert "cdnjs" not in html and "mathjax" not in html.lower()
    html2 = runs.render_html(path, tmp_path / "r2.html", title="My study").read_text()
    assert "<title>My study</title>" in html2


def test_markdown_tables_show_numbers_as_people_write_them():
    df = pd.DataFrame({"estimate": [0.0, -106501.3, 0.0001226, 1.2e-19], "p_value": [2.4e-140, 0.0251, np.nan, 0.5],
                       "note": ["a", None, "c", np.nan]}, index=pd.Index(list("wxyz"), name="term"))
    md = tables.to_markdown(df)
    assert "e+00" not in md and "NaN" not in md and "nan" not in md.lower().replace("n/a", "")
    assert "-106,501" in md and "< 0.001" in md and "0.025" in md and re.search(r"\|\s+0 \|", md)
    assert "1.20e-19" in md


# ------------------------------------------------------------------ narrative


def _gaussian_dict(level, slope):
    return {
        "model": {"family": "gaussian", "event": "2020-01-01", "nobs": 300, "n_pre": 200, "n_post": 100},
        "effects": {
            "alpha": 0.05, "level": level, "slope": slope,
            "relative": {"pct": -10.0, "pct_ci_low": -20.0, "pct_ci_high": -1.0},
            "post_window": {"n_observed": 100, "start": "2020-01-01", "end": "2020-04-09"},
            "cumulative": {"estimate": 100.0, "ci_low": 50.0, "ci_high": 150.0, "observed": 1000.0,
                           "counterfactual": 900.0},
            "recovery": {"direction": "rise", "share": 0.9, "reached": False, "horizon": 100,
                         "periods": None, "ci_low": None, "ci_high": None, "ci_high_reached": False,
                         "p_not_reached": None, "date": None},
        },
    }


def test_gaussian_intervals_never_look_like_points():
    d = _gaussian_dict({"estimate": 1234.5, "ci_low": 1233.9, "ci_high": 1235.1},
                       {"estimate": 1234.5, "ci_low": 1233.9, "ci_high": 1235.1})
    try:
        s = sentences(d, outcome_label="uploads", event_label="the raid")
    except KeyError as missing:  # the recovery block needs fields this hand-made dict lacks
        pytest.skip(f"hand-made results dict lacks {missing}")
    assert "rose by 1,234.5" in s["level"] and "1,233.9 to 1,235.1" in s["level"]
    assert "+1,234.5 per day" in s["slope"] and "+1,233.9 to +1,235.1" in s["slope"]
    assert "e+03" not in s["slope"]


# ------------------------------------------------------------------ Python API, CLI


def test_spec_fit_effects_use_the_study_seed_and_give_the_report_numbers(sim_csv):
    spec = validate_parameters(sim(sim_csv, n_sim=300, seed=7))
    res = spec.fit()
    e = res.effects()
    assert e["seed"] == 7 and e["n_sim"] == 300
    body = res.to_dict()
    assert body["effects"]["recovery"] == e["recovery"]
    assert res.effects(seed=8)["seed"] == 8  # explicit keywords still win


def test_model_sentence_counts_periods_not_stacked_rows():
    d = _gaussian_dict({"estimate": 1.0, "ci_low": 0.5, "ci_high": 1.5}, None)
    d["model"].update(family="negbin", comparative=True, control=["xrelp2p"], nobs=918, n_pre=333, n_post=117)
    try:
        s = sentences(d, outcome_label="releases", event_label="the raid")
    except KeyError as missing:
        pytest.skip(f"hand-made results dict lacks {missing}")
    assert "model of 450 days of the treated series beside 1 control series (918 rows in all;" in s["model"]
    assert "918 days" not in s["model"]


def test_events_into_a_closed_pipe_end_quietly():
    exe = Path(sys.executable).with_name("raidstudy")
    proc = subprocess.run(f"'{exe}' events | head -1", shell=True, capture_output=True, text=True, timeout=120,
                          executable="/bin/bash")
    assert proc.stdout.startswith("event_id")
    assert proc.stderr == "", proc.stderr


# ------------------------------------------------------------------ part 1: run directories


def test_default_run_directory_follows_the_study():
    from raidstudy.study.parameters import default_output_dir

    assert coerce_parameters({})["output_dir"] == "results/sparks-2020"
    assert coerce_parameters({"pre_periods": 200, "cov_type": "hac"})["output_dir"] == "results/sparks-2020"
    assert coerce_parameters({"event_id": "zlibrary_2022"})["output_dir"] == "results/zlibrary-2022"
    assert coerce_parameters({"event_id": "evo_2023", "feeds": "xrelp2p"})["output_dir"] == "results/evo-2023-xrelp2p"
    assert coerce_parameters({"model_family": "gaussian"})["output_dir"] == "results/sparks-2020-gaussian"
    assert coerce_parameters({"control_feeds": "xrelp2p"})["output_dir"] == "results/sparks-2020-vs-xrelp2p"
    assert coerce_parameters({"event_id": "zlibrary_2022", "output_dir": "results/mine"})["output_dir"] == "results/mine"
    assert default_output_dir({"series_csv": "my.csv", "series_name": "uploads", "event_id": "my_raid",
                               "event_date": "2023-05-31"}) == "results/my-raid-2023-05-31-uploads"


def test_papermill_default_folder_for_another_study_is_redirected_with_a_warning():
    from raidstudy.study.parameters import default_parameters

    # what the notebook sees when papermill runs without -p output_dir: the cell's default
    ns = {**default_parameters(), "event_id": "zlibrary_2022"}
    with pytest.warns(UserWarning, match="writes to 'results/zlibrary-2022'"):
        found = notebook_parameters(ns)
    assert found["output_dir"] == "results/zlibrary-2022"
    # the default study keeps its folder; an explicit folder (notebook 04) is kept
    assert notebook_parameters(default_parameters())["output_dir"] == "results/sparks-2020"
    ns = {**default_parameters(), "output_dir": "results/sparks-2020-robustness"}
    assert notebook_parameters(ns)["output_dir"] == "results/sparks-2020-robustness"
    # a Python caller's explicit folder is never changed
    assert coerce_parameters({"event_id": "zlibrary_2022", "output_dir": "results/sparks-2020"})["output_dir"] == \
        "results/sparks-2020"


def _record(folder: Path, **params):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"status": "complete", "parameters": params}))


def test_a_run_of_another_study_is_not_overwritten_without_force(sim_csv, tmp_path):
    out = tmp_path / "run"
    _record(out, event_id="sparks_2020", feeds="#pre@corrupt,xrel")
    params = sim(sim_csv, output_dir=str(out))
    with pytest.raises(ParameterError) as err:
        check_run_directory(coerce_parameters(params))
    msg = _one_line(err)
    assert "holds a run of another study" in msg and "event_id='sparks_2020'" in msg and "--force" in msg
    # the notebook refuses it too (papermill run straight into that folder)
    with pytest.raises(ParameterError, match="another study"):
        notebook_parameters(params)
    # ... and so does the batch runner, before any run starts
    with pytest.raises(ParameterError, match="another study"):
        runs.run_batch("notebooks/02-event-study.ipynb", [params], workers=1)
    # validation alone (a Python caller fitting, the specification curve) writes nothing: no check
    validate_parameters(params)
    # the same study again (other window, other seed) replaces its earlier run
    _record(out, **{k: v for k, v in params.items() if k != "output_dir"}, model_family="negbin")
    check_run_directory(coerce_parameters(dict(params, seed=3, pre_periods=150)))
    # a record that does not name its study is not compared
    (out / "run.json").write_text('{"status": "complete"}')
    check_run_directory(coerce_parameters(params))


@pytest.mark.heavy(seconds=4)
def test_force_replaces_a_run_of_another_study(sim_csv, tmp_path):
    from test_runs import _tiny_notebook

    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    out = tmp_path / "run"
    _record(out, event_id="sparks_2020")
    params = sim(sim_csv, output_dir=str(out), n_sim=100, n_placebos=0)
    with pytest.raises(ParameterError, match="another study"):
        runs.execute_notebook(nb, params)
    assert json.loads((out / "run.json").read_text())["parameters"] == {"event_id": "sparks_2020"}
    runs.execute_notebook(nb, params, force=True)
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "complete" and rec["parameters"]["event_id"] == "simulated_raid"


def test_paths_expand_home(monkeypatch, tmp_path, sim_csv):
    import shutil

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(sim_csv, tmp_path / "s.csv")
    spec = validate_parameters(sim(sim_csv, series_csv="~/s.csv", output_dir="~/out"))
    assert spec.output_dir == tmp_path / "out"
    assert any(k.endswith("s.csv") for k in spec.data_files)


def test_cli_paths_are_relative_to_the_current_directory(monkeypatch, tmp_path):
    from raidstudy.cli import _cwd_path
    from raidstudy.paths import repo_root

    monkeypatch.chdir(tmp_path)
    got = Path(_cwd_path("out"))
    # absolute, or relative to the repository (as the runner reads it): either way, cwd/out
    assert (got if got.is_absolute() else repo_root() / got).resolve() == (tmp_path / "out").resolve()
    assert _cwd_path("") == ""
    monkeypatch.chdir(repo_root())
    assert _cwd_path("results/x") == "results/x"
    monkeypatch.chdir(repo_root() / "notebooks")
    assert _cwd_path("../results/x") == "results/x"
