"""Figures for :mod:`raidstudy.models.groups`: entry and exit against placebo dates,
concentration before and after, and the group-panel event-study path.

Keyword-only functions returning ``(fig, ax)`` (or ``(fig, axes)``); the house style
(:func:`raidstudy.report.plots.style`) is applied inside each call; the data behind each
figure comes from the matching ``*_data`` function as a DataFrame.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from raidstudy.errors import ParameterError

__all__ = [
    "concentration_data",
    "panel_path_data",
    "plot_concentration",
    "plot_panel_path",
    "plot_turnover",
    "turnover_data",
]

_TITLES = {"exit_share": "exits' share of volume before", "entry_share": "entries' share of volume after",
           "n_exit": "groups exiting", "n_enter": "groups entering", "exit_rate": "exit rate",
           "entry_rate": "entry rate", "hhi_change": "change of Herfindahl index",
           "top_share_change": "change of top-k share", "volume_change": "volume after / before - 1"}
_PCT = {"exit_share", "entry_share", "exit_rate", "entry_rate", "volume_change", "top_share_change"}
EVENT_COLOR = "#d62728"
PLACEBO_COLOR = "#7f7f7f"


def turnover_data(*, turnover, statistics=("exit_share", "entry_share", "n_exit", "n_enter")) -> pd.DataFrame:
    """Rows of :func:`plot_turnover`: ``statistic``, ``kind`` (``event``/``placebo``), ``date``,
    ``value`` (shares as fractions), ``p_upper`` (the event's rank p-value, on event rows)."""
    bad = [s for s in statistics if s not in turnover.params.index]
    if bad:
        raise ParameterError("statistics", bad[0], "is not a statistic of the turnover",
                             accepted=list(turnover.params.index))
    pu = turnover.p_upper
    rows = []
    for s in statistics:
        rows.append({"statistic": s, "kind": "event", "date": pd.Timestamp(turnover.event["date"]),
                     "value": float(turnover.params[s]), "p_upper": float(pu[s])})
        for d, v in zip(turnover.placebo["date"], turnover.placebo[s]):
            rows.append({"statistic": s, "kind": "placebo", "date": d, "value": float(v), "p_upper": np.nan})
    return pd.DataFrame(rows, columns=["statistic", "kind", "date", "value", "p_upper"])


def plot_turnover(*, turnover, statistics=("exit_share", "entry_share", "n_exit", "n_enter"), title: str | None = None):
    """The event's entry and exit against their placebo distributions, one panel per statistic.

    Grey dots: placebo dates (jittered), with their median and 5-95 % range as a bar; red
    diamond: the event, labelled with its rank p-value.

    Returns
    -------
    (fig, axes)
    """
    import matplotlib.pyplot as plt

    from raidstudy.report.plots import style

    df = turnover_data(turnover=turnover, statistics=statistics)
    rng = np.random.default_rng(0)
    with style():
        fig, axes = plt.subplots(1, len(statistics), figsize=(2.6 * len(statistics) + 0.6, 3.8), layout="constrained",
                                 squeeze=False)
        axes = axes[0]
        for ax, s in zip(axes, statistics):
            d = df[df["statistic"] == s]
            pl = d[d["kind"] == "placebo"]["value"].to_numpy()
            ev = d[d["kind"] == "event"].iloc[0]
            k = 100 if s in _PCT else 1
            ax.scatter(rng.uniform(-0.15, 0.15, len(pl)), k * pl, s=14, color=PLACEBO_COLOR, alpha=0.7,
                       label=f"{len(pl)} placebo dates", zorder=2)
            if len(pl):
                lo, med, hi = np.nanquantile(pl, [0.05, 0.5, 0.95])
                ax.plot([0.3, 0.3], [k * lo, k * hi], color="#333333", lw=2)
                ax.plot([0.25, 0.35], [k * med] * 2, color="#333333", lw=2)
            ax.scatter([0], [k * ev["value"]], marker="D", s=60, color=EVENT_COLOR, zorder=3, label="event")
            ax.annotate(f"p = {ev['p_upper']:.3f}", (0, k * ev["value"]), xytext=(8, 4),
                        textcoords="offset points", color=EVENT_COLOR, fontsize=9)
            ax.set_xlim(-0.5, 0.6)
            ax.set_xticks([])
            ax.set_title(_TITLES.get(s, s), fontsize=10)
            ax.set_ylabel("%" if s in _PCT else "groups")
            ax.set_ylim(bottom=0)
        axes[0].legend(loc="center left", fontsize=8)
        fig.suptitle(title or f"Group exit and entry around {turnover.event['label']} against placebo dates "
                              f"({turnover.settings['window_days']}-day windows, >= {turnover.settings['min_releases']} "
                              "releases)", fontsize=11)
    return fig, axes


def concentration_data(*, turnover) -> pd.DataFrame:
    """Rows of :func:`plot_concentration`: ``measure`` (``hhi`` / ``top_share``), ``kind``,
    ``date``, ``pre``, ``post``."""
    rows = []
    for m in ("hhi", "top_share"):
        rows.append({"measure": m, "kind": "event", "date": pd.Timestamp(turnover.event["date"]),
                     "pre": float(turnover.params[f"{m}_pre"]), "post": float(turnover.params[f"{m}_post"])})
        for _, r in turnover.placebo.iterrows():
            rows.append({"measure": m, "kind": "placebo", "date": r["date"], "pre": float(r[f"{m}_pre"]),
                         "post": float(r[f"{m}_post"])})
    return pd.DataFrame(rows, columns=["measure", "kind", "date", "pre", "post"])


def plot_concentration(*, turnover, title: str | None = None):
    """Concentration over groups before and after: the Herfindahl index and the top-k share.

    Each placebo date is a grey line from its value before to its value after; the event is
    the red line.

    Returns
    -------
    (fig, axes)
    """
    import matplotlib.pyplot as plt

    from raidstudy.report.plots import style

    df = concentration_data(turnover=turnover)
    k = turnover.settings["top_k"]
    p = turnover.pvalues
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8), layout="constrained")
        for ax, m, lab, scale in ((axes[0], "hhi", "Herfindahl index (x 10,000)", 1e4),
                                  (axes[1], "top_share", f"share of the top {k} groups (%)", 100)):
            d = df[df["measure"] == m]
            pl = d[d["kind"] == "placebo"]
            for _, r in pl.iterrows():
                ax.plot([0, 1], [scale * r["pre"], scale * r["post"]], color=PLACEBO_COLOR, alpha=0.35, lw=1)
            ev = d[d["kind"] == "event"].iloc[0]
            ax.plot([0, 1], [scale * ev["pre"], scale * ev["post"]], color=EVENT_COLOR, lw=2.5, marker="o",
                    label=f"event (change: rank p = {p[f'{m}_change']:.3f})")
            ax.plot([], [], color=PLACEBO_COLOR, label=f"{len(pl)} placebo dates")
            ax.set_xticks([0, 1], [f"{turnover.settings['window_days']} days before",
                                   f"{turnover.settings['window_days']} days after"])
            ax.set_xlim(-0.2, 1.2)
            ax.set_ylabel(lab)
            ax.legend(loc="upper left", fontsize=8)
        fig.suptitle(title or f"Concentration over groups around {turnover.event['label']}", fontsize=11)
    return fig, axes


def panel_path_data(*, results, arm: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Rows of :func:`plot_panel_path`: :meth:`GroupPanelResults.path` (relative week,
    estimate and interval in log points and percent; the reference week as 0)."""
    return results.path(arm, alpha=alpha)


def plot_panel_path(*, results, arm: str | None = None, alpha: float = 0.05, title: str | None = None, ax=None):
    """The group-panel event-study path: effect on log(1 + weekly releases) by relative week.

    Returns
    -------
    (fig, ax)
    """
    import matplotlib.pyplot as plt

    from raidstudy.report.plots import style

    df = panel_path_data(results=results, arm=arm, alpha=alpha)
    s = results.study
    with style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
        else:
            fig = ax.figure
        ok = df["estimate"].notna()
        ax.fill_between(df.loc[ok, "rel"], df.loc[ok, "pct_ci_low"], df.loc[ok, "pct_ci_high"], color="#1f77b4",
                        alpha=0.2, lw=0, label=f"{100 * (1 - alpha):g}% CI ({results.cov_description.split(' (')[0]})")
        ax.plot(df.loc[ok, "rel"], df.loc[ok, "pct"], color="#1f77b4", marker="o", ms=3, lw=1.5, label="estimate")
        miss = df.loc[~ok, "rel"]
        for r in miss:
            ax.axvspan(r - 0.5, r + 0.5, color="#ffbf00", alpha=0.3, lw=0)
        if len(miss):
            ax.plot([], [], color="#ffbf00", alpha=0.5, lw=6, label="week missing (not collected)")
        ax.axhline(0, color="black", lw=0.8)
        ax.axvline(-0.5, color="black", lw=0.8, ls="--")
        ax.set_xlabel(f"weeks relative to {s.event_label} ({s.event_date.date()}); week -1 = reference")
        cmp = ("survivors of placebo dates" if s.design == "placebo" else "the smallest third of survivors")
        ax.set_ylabel(f"weekly releases vs {cmp} (%)")
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title(title or f"Surviving groups' weekly releases, relative to {cmp}")
    return fig, ax
