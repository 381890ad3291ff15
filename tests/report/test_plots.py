"""Plots: return (fig, ax), style local to the call, data available as DataFrames."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from raidstudy import ITS
from raidstudy.report import plots  # noqa: E402
from raidstudy.models.simulate import simulate_its  # noqa: E402


@pytest.fixture(scope="module")
def res():
    d = simulate_its(family="negbin", n=400, event=300, seed=3)
    d = d.drop(d.index[[20, 21]])
    return ITS(d, outcome="y", event="2018-10-28", exclude=1).fit()


def test_import_does_not_change_global_style():
    before = dict(plt.rcParams)
    import importlib

    importlib.reload(plots)
    assert dict(plt.rcParams) == before


def test_plot_fit(res):
    before = plt.rcParams["axes.spines.top"]
    fig, ax = plots.plot_fit(results=res, alpha=0.05)
    assert plt.rcParams["axes.spines.top"] == before  # style restored after the call
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"observed", "fitted", "counterfactual", "event", "excluded (transition)"} <= set(labels)
    data = plots.fit_data(results=res, alpha=0.05)
    assert {"cf_ci_low", "cf_pi_high"} <= set(data.columns)
    plt.close(fig)
    fig2, ax2 = res.plot_fit()
    plt.close(fig2)


def test_plot_fit_on_given_axes(res):
    fig, ax = plt.subplots()
    f2, a2 = plots.plot_fit(results=res, alpha=0.1, ax=ax)
    assert f2 is fig and a2 is ax
    plt.close(fig)


def test_plot_series_gaps_and_control():
    idx = pd.date_range("2020-01-01", periods=60, freq="D")
    s = pd.Series(np.arange(60.0), index=idx, name="releases").drop(idx[[10, 11, 12]])
    c = pd.Series(np.arange(60.0) / 2, index=idx, name="p2p")
    data = plots.series_data(series=s, control=c)
    assert len(data) == 60 and data["missing"].sum() == 3
    fig, ax = plots.plot_series(series=s, event_date="2020-02-01", control=c, title="t")
    line = ax.get_lines()[0]
    assert np.isnan(np.asarray(line.get_ydata(), float)).sum() == 3  # gaps drawn as breaks
    plt.close(fig)


def test_plot_residuals(res):
    fig, axes = plots.plot_residuals(results=res)
    assert axes.shape == (2, 2)
    assert "Ljung-Box" in fig._suptitle.get_text()
    assert len(plots.residuals_data(results=res)) == res.nobs
    plt.close(fig)
    f, a = res.plot_diagnostics()
    plt.close(f)


def test_style_does_not_undo_interactive_mode_switched_on_inside():
    """In a notebook the first figure switches interactive mode on (inline backend); the
    style context must not switch it off again, or later figures are never shown."""
    import matplotlib as mpl

    from raidstudy.report.plots import style

    before = mpl.rcParams["interactive"]
    try:
        mpl.rcParams["interactive"] = False
        with style():
            mpl.rcParams["interactive"] = True
        assert mpl.rcParams["interactive"] is True
    finally:
        mpl.rcParams["interactive"] = before


def test_plot_placebo_returns_fig_ax_and_its_data():
    from raidstudy.models.placebo import in_time_placebos
    from raidstudy.report.plots import placebo_data, plot_placebo

    d = simulate_its(family="poisson", n=900, event=700, level=-0.7, seed=2)
    res = in_time_placebos(d[["y"]], event=d.index[700], pre_periods=150, post_periods=60,
                           its_kwargs={"outcome": "y", "family": "poisson"}, n_dense=40)
    fig, ax = plot_placebo(placebo=res)
    assert ax.get_title().startswith("In-time placebos over the whole history")
    data = placebo_data(placebo=res)
    assert {"kind", "statistic", "estimate", "used"} <= set(data.columns)
    assert (data["kind"] == "dense").sum() == 40 and (data["kind"] == "independent").sum() >= 2
    import matplotlib.pyplot as plt

    plt.close(fig)


# ------------------------------------------------------------------ drawn once: shown and saved
def test_saved_png_is_the_shown_one_and_a_later_change_is_saved(tmp_path):
    from raidstudy.study.artefacts import save_figure

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 3])
    png = plots.figure_png(fig)
    calls = []
    real = fig.savefig
    fig.savefig = lambda *a, **k: (calls.append(k.get("format")), real(*a, **k))[1]
    png_path, pdf_path = save_figure(fig, tmp_path / "f")
    assert png_path.read_bytes() == png and calls == ["pdf"], "an unchanged figure is not drawn again as PNG"
    ax.set_title("changed after it was shown")
    save_figure(fig, tmp_path / "f")
    assert png_path.read_bytes() != png, "a change made after showing must reach the saved PNG"
    assert calls == ["pdf", "png", "pdf"]
    # an interactive backend redraws after each change, which clears the stale mark
    png2 = plots.figure_png(fig)
    ax.set_xlabel("changed, then drawn")
    fig.canvas.draw()
    assert not fig.stale and plots.figure_png(fig) != png2, "a drawn change must reach the PNG"
    plt.close(fig)


def test_show_figure_displays_the_saved_png_at_the_inline_size_and_closes_it(monkeypatch):
    import base64

    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, metadata: shown.append((data, metadata)))
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 3])
    plots.show_figure(fig)
    assert not plt.fignum_exists(fig.number), "left open, the inline backend would draw it again"
    [(data, meta)] = shown
    png = base64.b64decode(data["image/png"])
    assert png == plots.figure_png(fig)
    w, h = (int.from_bytes(png[i:i + 4], "big") for i in (16, 20))
    assert meta["image/png"] == {"width": round(w * fig.dpi / plots.SAVE_DPI),
                                 "height": round(h * fig.dpi / plots.SAVE_DPI)}
    assert 300 < meta["image/png"]["width"] <= 400, "4 inches at most, at the inline backend's 100 pixels per inch"
