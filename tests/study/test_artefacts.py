"""Run directories: raidstudy clears what an earlier run wrote and never a user's own files."""
from __future__ import annotations

import json

import pytest

from raidstudy.errors import ParameterError
from raidstudy.study.artefacts import clear_artefacts, start_run_record


def test_a_folder_raidstudy_did_not_write_is_refused(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "my-own-figure.png").write_bytes(b"mine")
    with pytest.raises(ParameterError, match="no raidstudy run wrote"):
        start_run_record(tmp_path, {"seed": 1})
    assert (tmp_path / "figures" / "my-own-figure.png").exists()


def test_only_the_recorded_artefacts_of_an_earlier_run_are_cleared(tmp_path):
    (tmp_path / "figures").mkdir()
    for name in ("fit.png", "fit.pdf", "my-own-figure.png"):
        (tmp_path / "figures" / name).write_bytes(b"x")
    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "run.json").write_text(json.dumps(
        {"status": "complete", "artefacts": {"figures": ["figures/fit.png", "figures/fit.pdf", "../escape.txt"]}}))
    (tmp_path.parent / "escape.txt").write_text("outside")
    clear_artefacts(tmp_path)
    assert not (tmp_path / "results.json").exists()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["my-own-figure.png"]
    assert (tmp_path / "notes.txt").exists() and (tmp_path.parent / "escape.txt").exists()


def test_a_folder_holding_only_a_papermill_notebook_is_accepted(tmp_path):
    (tmp_path / "notebook.ipynb").write_text("{}")
    clear_artefacts(tmp_path)
    assert (tmp_path / "notebook.ipynb").exists()


def test_sensitivity_table_main_row_is_the_study_and_variants_fit_the_data(sim_csv):
    import math

    from raidstudy.study.parameters import validate_parameters
    from raidstudy.study.artefacts import default_variants, sensitivity_table

    spec = validate_parameters(series_csv=str(sim_csv), series_name="simulated_counts", event_id="simulated_raid",
                               event_date="2021-10-01", pre_periods=200, post_periods=90, fourier=0)
    table = sensitivity_table(spec)
    main = table.loc["main specification"]
    # independent of the engine's fit: statsmodels' NB2 maximum likelihood on the study's design
    import numpy as np
    import statsmodels.api as sm

    res = spec.fit()
    d = res.model.design
    nb = sm.NegativeBinomial(d.y[d.fit], d.X[d.fit], loglike_method="nb2").fit(
        start_params=np.r_[res.params.to_numpy(), res.dispersion], method="newton", disp=0, maxiter=100)
    level = nb.params[d.names.index("level")]
    assert main["level_pct"] == __import__("pytest").approx(100 * math.expm1(level), rel=1e-5)
    assert main["nobs"] == d.fit.sum()
    assert "P2P feed xrelp2p as control" not in table.index, "no P2P control for a user's own series"
    assert default_variants(spec)["two years before the event"] == {"pre_periods": 730}
    # a variant the data cannot support is listed with its reason, never dropped
    # (the simulated series starts 2021-01-01: 273 days before the event, less than the year
    # that annual Fourier terms need; every other variant is estimated)
    short = "two years before, 2 annual Fourier pairs"
    assert table.loc[short, "note"].startswith("not estimated: annual Fourier terms need"), table.loc[short, "note"]
    assert math.isnan(table.loc[short, "level_pct"])
    assert (table.drop(index=short)["note"] == "").all()
    # the planted halving (-50%) lies inside the main row's interval
    assert main["level_pct_ci_low"] < -50 < main["level_pct_ci_high"]
    assert (table["level_pct"].dropna() < 0).all(), "a planted halving is negative under every variant"
