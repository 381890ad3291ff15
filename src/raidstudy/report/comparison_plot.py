"""Figures for :mod:`raidstudy.models.comparison`: effects by section family, and the P2P comparison.

Keyword-only functions returning ``(fig, ax)`` (or ``(fig, axes)``); the house style
(:func:`raidstudy.report.plots.style`) is applied inside each call; the data behind each
figure comes from the matching ``*_data`` function as a DataFrame.

Effects are drawn as ratios to the counterfactual on a logarithmic axis labelled in percent
change, so that -50 % and +100 % lie equally far from zero and a -99 % drop stays visible
next to a -20 % one.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from raidstudy.errors import ParameterError

__all__ = ["family_effects_data", "plot_family_effects", "p2p_comparison_data", "plot_p2p_comparison"]

_WINDOW_STYLE = {"post": dict(marker="o", color="#1f77b4"), "early": dict(marker="s", color="#d62728")}
_PCT_TICKS = (-99, -95, -90, -75, -50, -25, 0, 50, 100, 200, 400)


def _pct_axis(ax, values: np.ndarray, *, axis: str = "x", min_gap: float = 0.07) -> None:
    """Log-ratio axis with percent-change tick labels, spanning ``values`` (ratios)."""
    v = values[np.isfinite(values) & (values > 0)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.5, 2.0)
    lo, hi = min(lo, 0.9) / 1.15, max(hi, 1.1) * 1.15
    # ticks far enough apart on the log axis to be read (0 always kept)
    span = math.log(hi) - math.log(lo)
    keep: list[int] = [0]
    for t in sorted((t for t in _PCT_TICKS if t and lo <= 1 + t / 100 <= hi), key=abs):
        if all(abs(math.log1p(t / 100) - math.log1p(k / 100)) >= min_gap * span for k in keep):
            keep.append(t)
    keep.sort()
    ticks = [1 + t / 100 for t in keep]
    labels = [f"{t:+d}%" if t else "0" for t in keep]
    if axis == "x":
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xticks(ticks, labels)
        ax.minorticks_off()
    else:
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        ax.set_yticks(ticks, labels)
        ax.minorticks_off()


def _ratio(pct) -> np.ndarray:
    return 1 + np.asarray(pct, dtype=float) / 100


# --------------------------------------------------------------------------- families
def family_effects_data(*, effects) -> pd.DataFrame:
    """The rows :func:`plot_family_effects` draws: one per family and window.

    Columns: ``family``, ``status``, ``reason``, ``window`` (``post`` / ``early``; empty for
    a skipped family), ``pct``, ``pct_ci_low``, ``pct_ci_high``, the same as ratios
    (``ratio``, ``ratio_ci_low``, ``ratio_ci_high``), ``p_value`` and ``row`` (the
    position on the family axis, top = 0).
    """
    t = effects.table
    recs = []
    for i, r in t.reset_index(drop=True).iterrows():
        if r["status"] != "estimated":
            recs.append({"family": r["family"], "status": r["status"], "reason": r["reason"], "window": "",
                         "pct": np.nan, "pct_ci_low": np.nan, "pct_ci_high": np.nan, "p_value": np.nan, "row": i})
            continue
        for w in ("post", "early"):
            recs.append({"family": r["family"], "status": r["status"], "reason": "", "window": w,
                         "pct": r[f"{w}_pct"], "pct_ci_low": r[f"{w}_pct_ci_low"],
                         "pct_ci_high": r[f"{w}_pct_ci_high"], "p_value": r[f"{w}_p_value"], "row": i})
    df = pd.DataFrame(recs, columns=["family", "status", "reason", "window", "pct", "pct_ci_low", "pct_ci_high",
                                     "p_value", "row"])
    for c in ("", "_ci_low", "_ci_high"):
        df[f"ratio{c}"] = _ratio(df[f"pct{c}"])
    return df


def plot_family_effects(*, effects, ax=None, title: str | None = None):
    """Effects of the event on each section family, side by side: the post window and its first weeks.

    Parameters
    ----------
    effects : FamilyEffects
        From :func:`raidstudy.models.comparison.family_effects`.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    (fig, ax)
    """
    import matplotlib.pyplot as plt

    from raidstudy.report.plots import style

    df = family_effects_data(effects=effects)
    fams = effects.table["family"].tolist()
    lvl = f"{100 * (1 - effects.alpha):g}%"
    labels = {"post": f"post window ({lvl} CI)", "early": f"first {effects.early_periods} days ({lvl} CI)"}
    with style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 1.6 + 0.45 * len(fams)), layout="constrained")
        else:
            fig = ax.figure
        est = df[df["status"] == "estimated"]
        for k, w in enumerate(("post", "early")):
            d = est[est["window"] == w]
            y = d["row"].to_numpy() + (-0.15 if k == 0 else 0.15)
            ax.hlines(y, d["ratio_ci_low"].clip(lower=1e-4), d["ratio_ci_high"], color=_WINDOW_STYLE[w]["color"],
                      lw=1.4, alpha=0.8)
            ax.plot(d["ratio"].clip(lower=1e-4), y, ls="none", ms=5, label=labels[w], **_WINDOW_STYLE[w])
        ax.axvline(1.0, color="black", lw=0.8)
        vals = est[["ratio", "ratio_ci_low", "ratio_ci_high"]].to_numpy().ravel()
        _pct_axis(ax, vals, axis="x")
        skipped = df[df["status"] != "estimated"]
        x0 = ax.get_xlim()[0]
        for _, r in skipped.iterrows():
            reason = r["reason"] if len(r["reason"]) <= 70 else r["reason"][:67] + "..."
            ax.text(x0 * 1.05, r["row"], f"skipped: {reason}", va="center", fontsize=7, color="#777777")
        ax.set_yticks(range(len(fams)), [f + (" (skipped)" if f in effects.skipped else "") for f in fams])
        ax.set_ylim(len(fams) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("change against the counterfactual (log scale)")
        ax.set_title(title or f"{effects.event_label} ({effects.event.date()}): effect by section family")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    return fig, ax


# --------------------------------------------------------------------------- P2P comparison
def p2p_comparison_data(*, comparison) -> pd.DataFrame:
    """The data behind :func:`plot_p2p_comparison`, one long table.

    Rows with ``panel == "path"``: the DiD bins (``bin``, ``kind``, ``estimate`` in log
    points, ``ci_low``, ``ci_high``, ``pct`` and its interval). Rows with
    ``panel == "estimates"``: :meth:`P2PComparison.table` (``estimate`` names the row:
    ``treated_own``, ``control_own``, ``did``; ``window``; ``pct`` and its interval).
    """
    path = comparison.did.path(comparison.alpha)
    path = path[["bin", "kind", "first_date", "estimate", "ci_low", "ci_high", "pct", "pct_ci_low", "pct_ci_high",
                 "p_value"]].copy()
    path.insert(0, "panel", "path")
    est = comparison.table().rename(columns={"estimate": "name"})
    est.insert(0, "panel", "estimates")
    return pd.concat([path, est], ignore_index=True, sort=False)


def plot_p2p_comparison(*, comparison, ax=None, title: str | None = None):
    """The comparison series as control and as destination, in one figure of two panels.

    Left: the DiD path (treated relative to the comparison series, by week from the
    event, with each bin's interval). Right: the treated series' own effect, the
    comparison series' own effect (the displacement reading) and the DiD (the control
    reading), over the post window and its first weeks.

    Parameters
    ----------
    comparison : P2PComparison
        From :func:`raidstudy.models.comparison.p2p_comparison`.
    ax : pair of Axes, optional
        ``(path, estimates)`` axes to draw in; default a new figure.
    title : str, optional

    Returns
    -------
    (fig, axes)
    """
    import matplotlib.pyplot as plt

    from raidstudy.report.plots import COLORS, style

    df = p2p_comparison_data(comparison=comparison)
    path = df[df["panel"] == "path"]
    est = df[df["panel"] == "estimates"]
    lvl = f"{100 * (1 - comparison.alpha):g}%"
    with style():
        if ax is None:
            fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=[1.7, 1.0], layout="constrained")
        else:
            try:
                left, right = ax
            except (TypeError, ValueError):
                raise ParameterError("ax", ax, "must be a pair of Axes (path, estimates)") from None
            axes = np.array([left, right])
            fig = left.figure
        left, right = axes
        x = path["bin"].to_numpy(dtype=float)
        r, lo, hi = (_ratio(path[c]) for c in ("pct", "pct_ci_low", "pct_ci_high"))
        leads = path["kind"].isin(["lead", "reference"]).to_numpy()
        if leads.any():
            left.axvspan(x[leads].min() - 0.5, x[leads].max() + 0.5, color=COLORS["control"], alpha=0.12, lw=0,
                         label="leads (before the event)")
        left.axhline(1.0, color="black", lw=0.8)
        left.axvline(-0.5, color=COLORS["event"], ls=":", lw=1, label="event")
        sel = (path["kind"] != "reference").to_numpy()
        left.vlines(x[sel], np.clip(lo[sel], 1e-4, None), hi[sel], color=COLORS["fitted"], lw=1.1)
        left.plot(x[sel], r[sel], "o", ms=4, color=COLORS["fitted"], label=f"DiD bin effect, {lvl} interval")
        left.plot(x[~sel], r[~sel], "D", ms=6, mfc="white", color=COLORS["event"], label="reference bin")
        _pct_axis(left, np.concatenate([r, lo, hi]), axis="y")
        m = comparison.did.model
        left.set_xlabel(f"bins of {m.bin_width} days from the event")
        left.set_ylabel(f"{comparison.treated_label}\nrelative to {comparison.control_label}")
        left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, fontsize=8)
        left.set_title("control reading: difference in differences by week", fontsize=10)
        names = {"treated_own": f"{comparison.treated_label}, own", "control_own": f"{comparison.control_label}, own",
                 "did": "DiD (control reading)"}
        order = ["treated_own", "control_own", "did"]
        for k, w in enumerate(("post", "early")):
            d = est[est["window"] == w].set_index("name").loc[order]
            y = np.arange(len(order)) + (-0.15 if k == 0 else 0.15)
            rr, ll, hh = (_ratio(d[c]) for c in ("pct", "pct_ci_low", "pct_ci_high"))
            right.hlines(y, np.clip(ll, 1e-4, None), hh, color=_WINDOW_STYLE[w]["color"], lw=1.4, alpha=0.8)
            lab = "post window" if w == "post" else f"first {comparison.early_periods} days"
            right.plot(rr, y, ls="none", ms=5, label=f"{lab} ({lvl} CI)", **_WINDOW_STYLE[w])
        right.axvline(1.0, color="black", lw=0.8)
        _pct_axis(right, _ratio(est[["pct", "pct_ci_low", "pct_ci_high"]].to_numpy().ravel()), axis="x",
                  min_gap=0.14)
        right.set_yticks(range(len(order)), [names[o] for o in order])
        right.set_ylim(len(order) - 0.5, -0.5)
        right.grid(axis="y", visible=False)
        right.set_xlabel("change against the counterfactual")
        right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, fontsize=8)
        right.set_title("own effects and the DiD", fontsize=10)
        verdict = {"displacement": "the comparison series rose: displacement reading",
                   "common_fall": "the comparison series fell as well",
                   "control": "no significant change of the comparison series"}
        from raidstudy.models.comparison import _verdict

        fig.suptitle(title or f"{comparison.event_label} ({comparison.event.date()}): "
                              f"{verdict[_verdict(comparison, comparison.alpha)]}", fontsize=11)
    return fig, axes
