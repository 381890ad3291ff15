"""Shared fixtures. Nothing here needs ../shared; tests that do use the `shared_data` fixture,
which skips with a reason when it is absent."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from raidstudy.paths import shared_dir


def pytest_collection_modifyitems(config, items):
    """Run the costliest test files first, each file's tests together.

    ``make test`` spreads the suite over one worker per core (pytest-xdist, ``--dist
    loadfile``: a file's tests run on one worker, so a module fixture such as a notebook run
    is built once), handing each worker the next file when it gets free. A file with 20 s of
    notebook runs handed out last would keep one core busy while the other idles; handed out
    first, it overlaps with hundreds of short tests (longest-processing-time-first
    scheduling). A file costs the sum of its tests' ``heavy(seconds)`` marks.
    """
    def seconds(item) -> float:
        m = item.get_closest_marker("heavy")
        return float(m.kwargs.get("seconds", m.args[0] if m.args else 1.0)) if m else 0.0

    files = [item.nodeid.split("::", 1)[0] for item in items]
    cost: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, (f, item) in enumerate(zip(files, items)):
        cost[f] = cost.get(f, 0.0) + seconds(item)
        first.setdefault(f, i)
    order = sorted(range(len(items)), key=lambda i: (-cost[files[i]], first[files[i]], i))
    items[:] = [items[i] for i in order]


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
