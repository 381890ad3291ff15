"""The README keeps its promises: the two commands first, CI runs its test command, and its
numbers are those of a real run."""
from __future__ import annotations

import json
import re

import pytest

from raidstudy.paths import repo_root
from raidstudy.report.readme import END, EVENTS_GROUPS_COPY, RESULTS_COPY, ROBUSTNESS_COPY, START, results_block

ROOT = repo_root()


def test_two_commands_stand_first():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make run")
    assert first_block.splitlines()[1].startswith("make test")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_results_block_is_generated_from_a_real_run():
    copy = ROOT / RESULTS_COPY
    if not copy.exists():
        pytest.skip(f"{RESULTS_COPY} not written yet: run `make run && make readme`")
    res = json.loads(copy.read_text())
    rob_path = ROOT / ROBUSTNESS_COPY
    rob = json.loads(rob_path.read_text()) if rob_path.exists() else None
    evg_path = ROOT / EVENTS_GROUPS_COPY
    evg = json.loads(evg_path.read_text()) if evg_path.exists() else None
    text = (ROOT / "README.md").read_text()
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == results_block(res, rob, evg).strip(), "README out of date: run `make run && make readme`"
    assert rob is not None and rob["event"]["id"] == "sparks_2020" and "specification_curve" in rob
    # the events-and-groups notebook's headline figure and findings are shown
    assert evg is not None and {"family_effects", "p2p_comparison", "groups", "staggered"} <= set(evg)
    assert "sparks-2020-family-effects.png" in block and evg["sentences"]["group_turnover"] in block
    assert res["data"]["simulated"] is False
    assert res["event"]["id"] == "sparks_2020"
