"""Figures for ITS results.

Every function is keyword-only and returns ``(fig, ax)`` (or ``(fig, axes)``). Styles
are applied inside the call with a context manager, never globally at import, and the
figure is built with :func:`matplotlib.pyplot.subplots` so the Agg backend works
headless. The data behind each figure is available as a DataFrame from the matching
``*_data()`` function (``series_data``, ``fit_data``, ``residuals_data``).
"""
from __future__ import annotations

import base64
import contextlib
import io
import weakref
from typing import Any, Iterator

import numpy as np
import pandas as pd

__all__ = [
    "plot_series", "plot_fit", "plot_residuals",
    "series_data", "fit_data", "residuals_data", "style",
]
__all__ += ["plot_event_study", "figure_png", "show_figure", "SAVE_DPI"]

#: Resolution of the PNG files a study saves; notebooks show that same PNG (:func:`show_figure`).
SAVE_DPI = 150

#: rc settings used inside every plotting call.
RC = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.frameon": False,
}
COLORS = {"observed": "#444444", "fitted": "#1f77b4", "counterfactual": "#d62728", "control": "#7f7f7f",
          "event": "#000000", "excluded": "#ffbf00"}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The raidstudy plotting style, as a context manager (seaborn ticks + rc overrides)."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style("ticks"), plt.rc_context(RC):
        yield
        # The first figure of a notebook session activates the inline backend, which
        # switches interactive mode on; leaving rc_context would switch it off again and
        # every later figure would silently not be shown. Carry that one setting out.
        interactive = mpl.rcParams["interactive"]
    mpl.rcParams["interactive"] = interactive


# The last PNG drawn of each figure, with its resolution. It still shows the figure while the
# figure's ``stale`` flag (set by matplotlib on any change to one of its artists) is clear and
# nothing has drawn the figure since: an interactive backend redraws after a change and
# clears the flag, so every draw drops the entry (_forget_png, on the figure's draw_event).
_PNG: "weakref.WeakKeyDictionary[Any, tuple[int, bytes]]" = weakref.WeakKeyDictionary()
_WATCHED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _forget_png(event) -> None:
    _PNG.pop(event.canvas.figure, None)


def figure_png(fig, *, dpi: int = SAVE_DPI) -> bytes:
    """The figure as PNG bytes, as a study saves it: tight bounding box, no software tag.

    The figure is drawn once for as long as it is unchanged: a second call returns the same
    bytes without drawing again, and a change to the figure (one that matplotlib marks
    stale, as every setter does) or any other drawing of it makes the next call draw it
    anew. Data arrays changed in place behind matplotlib's back are not seen: call
    ``fig.canvas.draw()`` after such a change. :func:`show_figure` and the study's
    ``save_figure`` share these bytes, so a notebook draws each figure once, and the picture
    in the report is the file in ``figures/``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int
        Dots per inch; the figure size in inches times ``dpi`` gives the pixels (before the
        bounding box is trimmed).

    Returns
    -------
    bytes
        A PNG file.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(4, 3))
    >>> png = figure_png(fig)
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n" and figure_png(fig) is png
    True
    >>> _ = ax.set_title("changed")
    >>> figure_png(fig) is png
    False
    >>> plt.close(fig)
    """
    hit = _PNG.get(fig)
    if hit is not None and hit[0] == dpi and not fig.stale:
        return hit[1]
    if fig not in _WATCHED:
        fig.canvas.mpl_connect("draw_event", _forget_png)
        _WATCHED.add(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    png = buf.getvalue()
    # savefig leaves the figure marked stale (the tight bounding box resets its size);
    # clearing the mark lets the next change to the figure be seen.
    fig.stale = False
    _PNG[fig] = (dpi, png)
    return png


def show_figure(fig, *, dpi: int = SAVE_DPI) -> None:
    """Show a figure in the notebook as the PNG a study saves, then close it.

    Left open, a figure is drawn by the notebook's inline backend at the end of the cell,
    and again for each file saved. Shown with this function it is drawn once
    (:func:`figure_png`), at the saved resolution and at the size the inline backend gives
    it (``fig.dpi`` pixels per inch on screen), so it is sharp on high-density screens. The
    figure is closed so that the inline backend does not show it a second time; it can
    still be saved. In a terminal IPython shows the figure's text form instead; outside
    IPython this only closes the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int
        Resolution of the PNG, as for :func:`figure_png`.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> show_figure(fig)  # in a notebook: the figure appears here
    >>> plt.fignum_exists(fig.number)
    False
    """
    import matplotlib.pyplot as plt
    from IPython import get_ipython

    if get_ipython() is not None:
        from IPython.display import display

        png = figure_png(fig, dpi=dpi)
        # width and height from the PNG header (IHDR, bytes 16-24, big-endian)
        w, h = (int.from_bytes(png[i:i + 4], "big") for i in (16, 20))
        scale = fig.dpi / dpi
        display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(fig)}, raw=True,
                metadata={"image/png": {"width": round(w * scale), "height": round(h * scale)}})
    plt.close(fig)


def _new_ax(ax, figsize=(9, 4.2)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def _regular(s: pd.Series) -> pd.Series:
    """Reindex a dated series to its regular grid so missing periods show as gaps."""
    from raidstudy.models.its.data import _kind_from_index, _period_alias

    if isinstance(s.index, pd.PeriodIndex):
        s = s.copy()
        s.index = s.index.to_timestamp()
    if not isinstance(s.index, pd.DatetimeIndex) or len(s) < 3:
        return s
    s = s.sort_index()
    try:
        kind = _kind_from_index(s.index)
    except Exception:  # irregular: draw as given
        return s
    per = s.index.to_period(_period_alias(kind, s.index[0]))
    if per.has_duplicates:
        return s
    grid = pd.period_range(per.min(), per.max(), freq=per.freq)
    out = pd.Series(np.nan, index=grid, name=s.name)
    out[per] = s.to_numpy()
    starts = grid.to_timestamp(how="start")
    ends = grid.to_timestamp(how="end").normalize()
    pos = grid.get_indexer(per)
    use_end = kind != "D" and bool(np.all(s.index.normalize() == ends[pos]))
    out.index = pd.DatetimeIndex(ends if use_end else starts)
    return out


def series_data(*, series: pd.Series, control: pd.Series | None = None) -> pd.DataFrame:
    """The data behind :func:`plot_series`: the series (and control) on the regular grid."""
    s = _regular(series.astype(float))
    df = pd.DataFrame({"series": s})
    if control is not None:
        df["control"] = _regular(control.astype(float)).reindex(df.index)
    df["missing"] = df["series"].isna()
    return df


def plot_series(*, series: pd.Series, event_date: Any, control: pd.Series | None = None,
                title: str | None = None, ax=None):
    """The series with the event marked; missing periods are visible as gaps.

    Parameters
    ----------
    series : pandas.Series
        Indexed by date.
    event_date : date-like
        Drawn as a vertical line.
    control : pandas.Series, optional
        A second series drawn in grey.
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    (fig, ax)
    """
    df = series_data(series=series, control=control)
    with style():
        fig, ax = _new_ax(ax)
        ax.plot(df.index, df["series"], color=COLORS["observed"], lw=1, label=series.name or "series")
        if control is not None:
            ax.plot(df.index, df["control"], color=COLORS["control"], lw=1, alpha=0.8,
                    label=control.name or "control")
        ev = pd.Timestamp(event_date) if isinstance(df.index, pd.DatetimeIndex) else event_date
        ax.axvline(ev, color=COLORS["event"], ls="--", lw=1, label="event")
        if df["missing"].any():
            ymin = np.nanmin(df["series"].to_numpy()) if df["series"].notna().any() else 0
            miss = df.index[df["missing"].to_numpy()]
            ax.plot(miss, np.full(len(miss), ymin), "|", color="#999999", ms=6, label="missing")
        ax.set_title(title or (series.name or ""))
        ax.set_ylabel(series.name or "")
        ax.legend(loc="best", fontsize=8)
    return fig, ax


def fit_data(*, results, alpha: float = 0.05) -> pd.DataFrame:
    """The data behind :func:`plot_fit` (``results.predictions(alpha)``)."""
    return results.predictions(alpha)


def plot_fit(*, results, alpha: float = 0.05, ax=None, title: str | None = None):
    """Observed, fitted and counterfactual path with confidence and prediction bands.

    The event is a dashed vertical line; excluded (transition) periods are shaded;
    missing periods are gaps in the observed line.

    Returns
    -------
    (fig, ax)
    """
    p = fit_data(results=results, alpha=alpha)
    x = p.index
    post = p["post"].to_numpy()
    lvl = f"{100 * (1 - alpha):g}%"
    with style():
        fig, ax = _new_ax(ax)
        ax.plot(x, p["observed"], color=COLORS["observed"], lw=0.9, alpha=0.8, label="observed")
        if "control" in p:
            ax.plot(x, p["control"], color=COLORS["control"], lw=0.8, alpha=0.7, label="control")
        ax.plot(x, p["fitted"], color=COLORS["fitted"], lw=1.5, label="fitted")
        xp = x[post]
        ax.fill_between(xp, p["cf_pi_low"][post], p["cf_pi_high"][post], color=COLORS["counterfactual"],
                        alpha=0.10, lw=0, label=f"counterfactual {lvl} prediction interval")
        ax.fill_between(xp, p["cf_ci_low"][post], p["cf_ci_high"][post], color=COLORS["counterfactual"],
                        alpha=0.25, lw=0, label=f"counterfactual {lvl} confidence interval")
        ax.plot(xp, p["counterfactual"][post], color=COLORS["counterfactual"], lw=1.5, ls="--",
                label="counterfactual")
        ev = results.event_label
        ax.axvline(ev, color=COLORS["event"], ls=":", lw=1, label="event")
        exc = p.index[p["excluded"].to_numpy()]
        for i, e in enumerate(exc):
            ax.axvspan(e, e + (x[1] - x[0]) if len(x) > 1 else e, color=COLORS["excluded"], alpha=0.3, lw=0,
                       label="excluded (transition)" if i == 0 else None)
        ax.set_ylabel(results.model.outcome)
        ax.set_title(title or f"{results.model.outcome}: fit and counterfactual ({results.family})")
        ax.legend(loc="best", fontsize=8)
    return fig, ax


def residuals_data(*, results) -> pd.DataFrame:
    """The data behind :func:`plot_residuals`: Pearson residuals and their autocorrelations."""
    r = results.resid_pearson
    return pd.DataFrame({"pearson_residual": r})


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    x = x - x.mean()
    den = np.sum(x ** 2)
    return np.array([1.0] + [np.sum(x[k:] * x[:-k]) / den for k in range(1, nlags + 1)])


def plot_residuals(*, results, nlags: int | None = None, figsize=(10, 6)):
    """Residual diagnostics: residuals over time, their ACF, a histogram and a normal QQ plot.

    Returns
    -------
    (fig, axes)
        ``axes`` is a 2x2 array: residuals vs time, ACF with +-1.96/sqrt(n) bands,
        histogram, normal QQ plot.
    """
    import matplotlib.pyplot as plt
    from scipy import stats

    df = residuals_data(results=results)
    r = df["pearson_residual"].to_numpy()
    n = len(r)
    nl = nlags or min(40, max(5, n // 4))
    ac = _acf(r, nl)
    with style():
        fig, axes = plt.subplots(2, 2, figsize=figsize, layout="constrained")
        ax = axes[0, 0]
        ax.plot(df.index, r, ".", ms=3, color=COLORS["observed"])
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(results.event_label, color=COLORS["event"], ls=":", lw=1)
        if isinstance(df.index, pd.DatetimeIndex):
            import matplotlib.dates as mdates

            loc = mdates.AutoDateLocator(maxticks=6)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_title("Pearson residuals")
        ax = axes[0, 1]
        ax.vlines(np.arange(nl + 1), 0, ac, color=COLORS["fitted"])
        ax.axhline(0, color="k", lw=0.8)
        band = 1.96 / np.sqrt(n)
        ax.axhspan(-band, band, color="grey", alpha=0.2, lw=0)
        ax.set_title("Autocorrelation of residuals")
        ax.set_xlabel("lag")
        ax = axes[1, 0]
        ax.hist(r, bins=min(40, max(10, n // 10)), color=COLORS["fitted"], alpha=0.7)
        ax.set_title("Histogram")
        ax = axes[1, 1]
        (osm, osr), (slope, icpt, _) = stats.probplot(r, dist="norm")
        ax.plot(osm, osr, ".", ms=3, color=COLORS["observed"])
        ax.plot(osm, icpt + slope * osm, color=COLORS["counterfactual"], lw=1)
        ax.set_title("Normal QQ")
        diag = results.diagnostics()
        fig.suptitle(f"Residual diagnostics - Ljung-Box p = {diag['ljung_box']['p_value']:.3g} "
                     f"({diag['ljung_box']['lags']} lags)", fontsize=10)
    return fig, axes


def placebo_data(*, placebo) -> pd.DataFrame:
    """The data behind :func:`plot_placebo`: one row per placebo window (``placebo.table``),
    ``kind`` telling the independent windows from the dense, descriptive dates."""
    return placebo.table.copy()


def plot_placebo(*, placebo, ax=None, bins: int = 30):
    """Placebo t statistics over the whole history against the real one.

    The histogram shows the overlapping (dense, descriptive) placebo dates; the independent
    windows, which alone give the p-value, are marked with their values; the real event's
    t statistic is the red line.

    Parameters
    ----------
    placebo : raidstudy.models.placebo.PlaceboResult
    ax : matplotlib Axes, optional
    bins : int

    Returns
    -------
    (fig, ax)
    """
    df = placebo_data(placebo=placebo)
    dense = df.loc[(df["kind"] == "dense"), "statistic"].dropna().to_numpy(dtype=float)
    indep = df.loc[(df["kind"] == "independent") & df["used"].astype(bool), "statistic"].dropna().to_numpy(float)
    real = float(placebo.real["statistic"])
    with style():
        fig, ax = _new_ax(ax, figsize=(7.5, 3.8))
        if len(dense):
            ax.hist(dense, bins=bins, color=COLORS["control"], alpha=0.7,
                    label=f"{len(dense)} overlapping placebo dates (descriptive)")
        for k, v in enumerate(indep):
            ax.axvline(v, color=COLORS["fitted"], lw=1.6, ls="--",
                       label="independent placebo windows" if k == 0 else None)
        ax.axvline(real, color=COLORS["counterfactual"], lw=2.2, label="the event")
        ax.set_xlabel("t statistic of the jump at the (placebo) event, same model and covariance")
        ax.set_ylabel("placebo dates")
        n = placebo.n_independent
        ax.set_title(f"In-time placebos over the whole history: {n} independent window{'s' if n != 1 else ''}, "
                     f"p = {placebo.p_value_studentized:.2g} (floor {placebo.min_attainable_p:.2g})", fontsize=10)
        ax.legend(loc="best", fontsize=8)
    return fig, ax


def plot_event_study(*, results, alpha: float = 0.05, ax=None, title: str | None = None):
    """The event-study figure: bin effects with interval bars, leads shaded, the reference bin marked.

    Count families are drawn as percentage changes ``100 (exp(delta) - 1)``, the gaussian
    family on the outcome's scale. Each bar is the bin's ``1 - alpha`` interval with the
    fit's own critical value for that bin (under EWC these differ by bin). The data is
    ``results.path(alpha)``.

    Parameters
    ----------
    results : raidstudy.models.its.EventStudyResults
    alpha : float
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    (fig, ax)
    """
    from raidstudy.models.its.vocabulary import COUNT_FAMILIES, NOT_ESTIMATED_BINS

    p = results.path(alpha)
    count = results.family in COUNT_FAMILIES
    est, lo, hi = (("pct", "pct_ci_low", "pct_ci_high") if count else ("estimate", "ci_low", "ci_high"))
    x = p["bin"].to_numpy()
    lvl = f"{100 * (1 - alpha):g}%"
    unit = results.model.frame.freq.unit
    w = results.model.bin_width
    with style():
        fig, ax = _new_ax(ax, figsize=(9, 4.2))
        leads = p["kind"].isin(["lead", "reference"]).to_numpy()
        if leads.any():
            ax.axvspan(x[leads].min() - 0.5, x[leads].max() + 0.5, color=COLORS["control"], alpha=0.12, lw=0,
                       label="leads (before the event)")
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(-0.5, color=COLORS["event"], ls=":", lw=1, label="event")
        trans = p[p["kind"] == "transition"]
        if len(trans):
            ax.axvspan(trans["bin"].min() - 0.5, trans["bin"].max() + 0.5, color=COLORS["event"], alpha=0.08, lw=0,
                       label="transition (imprecise date: not estimated)")
        est_sel = ~p["kind"].isin(["reference", *NOT_ESTIMATED_BINS])
        yerr = np.vstack([(p[est] - p[lo])[est_sel], (p[hi] - p[est])[est_sel]])
        ax.errorbar(x[est_sel.to_numpy()], p[est][est_sel], yerr=yerr, fmt="o", ms=4, color=COLORS["fitted"],
                    ecolor=COLORS["fitted"], elinewidth=1, capsize=2, label=f"bin effect, {lvl} interval")
        ref = p[p["kind"] == "reference"]
        if len(ref):
            ax.plot(ref["bin"], [0.0] * len(ref), "D", ms=6, mfc="white", color=COLORS["event"],
                    label="reference bin (0 by construction)")
        ax.set_xlabel(f"bins of {w} {unit}{'s' if w != 1 else ''} from the event")
        ax.set_ylabel("change vs counterfactual (%)" if count else f"effect on {results.model.outcome}")
        ax.set_title(title or f"{results.model.outcome}: event study ({results.family}, {results.cov_type})")
        ax.legend(loc="best", fontsize=8)
    return fig, ax


def break_scan_data(*, scan) -> pd.DataFrame:
    """The data behind :func:`plot_break_scan`: the statistic at every admissible date (``scan.scan``)."""
    return scan.scan.copy()


def plot_break_scan(*, scan, event_date=None, ax=None, title: str | None = None):
    """The sup-Wald scan: the break statistic at every admissible date, its critical value,
    the estimated date with its confidence interval and the catalogued event.

    Parameters
    ----------
    scan : raidstudy.models.breaks.BreakScanResults
    event_date : date-like, optional
        The catalogued event, drawn as a dashed line.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    (fig, ax)
    """
    df = break_scan_data(scan=scan)
    with style():
        fig, ax = _new_ax(ax, figsize=(9, 3.8))
        ax.plot(pd.to_datetime(df["date"]), df["statistic"], color=COLORS["fitted"], lw=1.2,
                label="break statistic at each date")
        ax.axhline(scan.critical_value, color=COLORS["control"], ls=":", lw=1,
                   label=f"{100 * (1 - scan.alpha):g}% critical value of the maximum")
        if scan.date_ci is not None:
            lo, hi = (pd.Timestamp(d) for d in scan.date_ci)
            ax.axvspan(lo, hi + pd.Timedelta(days=1), color=COLORS["counterfactual"], alpha=0.15,
                       label=f"{100 * (1 - scan.alpha):g}% interval for the break date")
        ax.axvline(pd.Timestamp(scan.date), color=COLORS["counterfactual"], lw=1.5, label="estimated break date")
        if event_date is not None:
            ax.axvline(pd.Timestamp(event_date), color=COLORS["event"], ls="--", lw=1, label="catalogued event")
        ax.set_ylabel("Wald statistic")
        ax.set_title(title or f"Break scan: sup-Wald {scan.sup_wald:.1f}, p = {scan.p_value:.2g}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    return fig, ax
