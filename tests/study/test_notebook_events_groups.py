"""notebooks/03-events-and-groups: run with papermill on small fixture data, check the artefacts.

The fixture is the bundled data with the group tables cut to the 150 largest groups of each
feed set (and SPARKS): the group panel then has about 36,000 rows instead of 185,000, and
the run takes about 10 s instead of 20 (`make run` runs the notebook on the whole data). The
section families, the P2P feed and the catalogue study read the bundled day counts unchanged.
"""
from __future__ import annotations

import json
import shutil

import nbformat
import pandas as pd
import pytest

from _figurechecks import assert_figures_shown_once_as_saved
from raidstudy.paths import repo_root
from raidstudy.study.parameters import PARAMETERS

NB = repo_root() / "notebooks" / "03-events-and-groups.ipynb"


def test_parameters_cell_is_the_studys():
    import ast

    nb = nbformat.read(NB, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1
    found = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(cells[0].source).body}
    assert list(found) == list(PARAMETERS)
    assert all(found[k] == PARAMETERS[k].default for k in found)


LARGEST = 150


@pytest.fixture
def small_data_dir(tmp_path):
    """The bundled processed data, its group tables cut to the LARGEST groups of each feed set."""
    src, dst = repo_root() / "data" / "processed", tmp_path / "processed"
    shutil.copytree(src, dst)
    groups = pd.read_csv(src / "groups.csv.gz", keep_default_na=False)
    keep = set(groups.sort_values("n_releases", ascending=False).groupby("feed_set").head(LARGEST)["group"])
    keep.add("SPARKS")
    groups[groups["group"].isin(keep)].to_csv(dst / "groups.csv.gz", index=False)
    daily = pd.read_csv(src / "daily_group.csv.gz", keep_default_na=False)
    daily[daily["group"].isin(keep)].to_csv(dst / "daily_group.csv.gz", index=False)
    return dst


@pytest.mark.heavy(seconds=10)
def test_notebook_writes_the_artefacts(tmp_path, small_data_dir):
    import papermill as pm

    out = tmp_path / "events-groups"
    pm.execute_notebook(str(NB), str(tmp_path / "executed.ipynb"),
                        parameters={"output_dir": str(out), "data_dir": str(small_data_dir)},
                        kernel_name="python3", progress_bar=False, cwd=str(repo_root()))
    res = json.loads((out / "results.json").read_text())
    for key in ("parameters", "provenance", "event", "estimates", "family_effects", "p2p_comparison", "groups",
                "staggered", "sentences"):
        assert key in res, key
    assert res["event"]["id"] == "sparks_2020"
    assert res["parameters"]["data_dir"] == str(small_data_dir)
    assert 0 < res["groups"]["panel"]["clustered"]["nobs"] < 60_000, "the panel of the cut group tables"
    g = res["groups"]
    assert g["turnover"]["n_placebos"] > 0 and {s["statistic"] for s in g["turnover"]["statistics"]} >= {
        "n_exit", "n_enter", "exit_share", "entry_share", "hhi_change", "top_share_change"}
    assert set(g["panel"]) == {"clustered", "driscoll_kraay", "path"}
    assert g["panel"]["clustered"]["cov_type"] == "clustered" and g["panel"]["driscoll_kraay"]["cov_type"] == "kernel"
    for k in ("p2p_reading", "group_turnover", "group_panel"):
        assert isinstance(res["sentences"][k], str) and res["sentences"][k]
    assert "SPARKS" in res["sentences"]["group_turnover"]
    for name in ("family_effects", "p2p_comparison", "group_turnover", "group_concentration", "group_panel_path",
                 "stacked_event_study"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{ext}").is_file(), name
    assert_figures_shown_once_as_saved(tmp_path / "executed.ipynb", out / "figures")
    for name in ("family_effects", "group_turnover", "group_panel_path", "stacked_study"):
        assert (out / "tables" / f"{name}.md").is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["data_checksum"] and "figures/group_turnover.png" in run["artefacts"]["figures"]
