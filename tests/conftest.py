"""Shared fixtures. Nothing here needs ../shared; tests that do use the `shared_data` fixture,
which skips with a reason when it is absent."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from raidstudy.paths import shared_dir


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data``, or skip the test when it is absent (a fresh clone)."""
    sh = shared_dir()
    if sh is None or not (sh / "data").is_dir():
        pytest.skip("../shared/data is absent (fresh clone): this check needs the data beside the project")
    return sh / "data"


@pytest.fixture(scope="session")
def sim_csv(tmp_path_factory):
    """A SIMULATED daily count series (and a control) with a planted 50% drop on 2021-10-01."""
    from raidstudy.models.simulate import write_simulated_csv

    path = tmp_path_factory.mktemp("sim") / "simulated_counts.csv"
    write_simulated_csv(path, start="2021-01-01", n_days=400, event="2021-10-01", level_ratio=0.5, seed=3)
    return path


@pytest.fixture(scope="session")
def sim_csv_long(tmp_path_factory):
    """A SIMULATED daily series as ``sim_csv`` but starting in 2019, so that the history before
    a 320-day study window holds two independent placebo windows."""
    from raidstudy.models.simulate import write_simulated_csv

    path = tmp_path_factory.mktemp("simlong") / "simulated_counts_long.csv"
    write_simulated_csv(path, start="2019-01-01", n_days=1130, event="2021-10-01", level_ratio=0.5, seed=3)
    return path
