"""notebooks/03-events-and-groups: run with papermill on the bundled data, check the artefacts.

About 30-40 s on the shared 2-core host (family fits, the P2P comparison, the group panel and
the stacked study over the catalogue): under the 60 s at which a test is marked slow.
"""
from __future__ import annotations

import json

import nbformat
import pytest

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


@pytest.mark.heavy(seconds=20)
def test_notebook_writes_the_artefacts(tmp_path):
    import papermill as pm

    out = tmp_path / "events-groups"
    pm.execute_notebook(str(NB), str(tmp_path / "executed.ipynb"), parameters={"output_dir": str(out)},
                        kernel_name="python3", progress_bar=False, cwd=str(repo_root()))
    res = json.loads((out / "results.json").read_text())
    for key in ("parameters", "provenance", "event", "estimates", "family_effects", "p2p_comparison", "groups",
                "staggered", "sentences"):
        assert key in res, key
    assert res["event"]["id"] == "sparks_2020"
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
    for name in ("family_effects", "group_turnover", "group_panel_path", "stacked_study"):
        assert (out / "tables" / f"{name}.md").is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["data_checksum"] and "figures/group_turnover.png" in run["artefacts"]["figures"]
