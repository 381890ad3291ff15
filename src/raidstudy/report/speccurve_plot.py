"""The specification-curve figure: estimates sorted with their intervals, the choices beneath.

The standard figure of Simonsohn, Simmons and Nelson (2020): the top panel shows each
specification's estimate (sorted) with its confidence interval, intervals that exclude zero
in colour; the bottom panel marks, for each specification, the value of every choice as a
dot in a matrix (one row per choice value). Keyword-only, returns ``(fig, axes)``; styles
are applied inside the call (:func:`raidstudy.report.plots.style`). The data behind it is
:func:`specification_curve_data`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from raidstudy.errors import ParameterError

__all__ = ["plot_specification_curve", "specification_curve_data"]

_LABELS = {"relative": "Relative effect over the post window (%)", "level": "Level change at the event (%)"}


def _value_label(v: Any) -> str:
    if isinstance(v, str):
        return v if v else "(none)"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


def specification_curve_data(*, curve, quantity: str = "relative") -> pd.DataFrame:
    """The rows the figure draws: estimated specifications sorted by their estimate.

    Columns: ``rank`` (0 = smallest estimate), ``estimate``, ``ci_low``, ``ci_high``,
    ``excludes_zero``, ``base`` (the study's own specification) and one column per choice.
    """
    from raidstudy.models.speccurve import QUANTITIES

    if quantity not in QUANTITIES:
        raise ParameterError("quantity", quantity, "is not a headline quantity of the curve", accepted=QUANTITIES)
    e = curve.estimated(quantity)
    df = pd.DataFrame({
        "estimate": e[f"{quantity}_estimate"].to_numpy(float),
        "ci_low": e[f"{quantity}_ci_low"].to_numpy(float),
        "ci_high": e[f"{quantity}_ci_high"].to_numpy(float),
    })
    for c in curve.choices:
        df[c] = e[c].to_numpy()
    df["excludes_zero"] = (df["ci_low"] > 0) | (df["ci_high"] < 0)
    base = np.ones(len(df), dtype=bool)
    for c in curve.choices:
        if c in curve.base:
            base &= (df[c] == curve.base[c]).to_numpy()
    df["base"] = base
    df = df.sort_values("estimate", kind="stable").reset_index(drop=True)
    df.insert(0, "rank", np.arange(len(df)))
    return df


def plot_specification_curve(*, curve, quantity: str = "relative", ax=None, title: str | None = None):
    """Draw the specification curve of ``quantity`` (``relative`` or ``level``).

    Parameters
    ----------
    curve : SpecificationCurve
        From :func:`raidstudy.models.speccurve.specification_curve`.
    quantity : {"relative", "level"}
    ax : pair of Axes, optional
        ``(top, bottom)`` axes to draw in; default: a new figure with both.
    title : str, optional

    Returns
    -------
    (fig, axes)
        The figure and the two axes (estimates, choice matrix).
    """
    import matplotlib.pyplot as plt

    from raidstudy.report.plots import style

    df = specification_curve_data(curve=curve, quantity=quantity)
    levels = [(c, v) for c in curve.choices for v in curve.grid[c]]
    with style():
        if ax is None:
            fig, axes = plt.subplots(2, 1, sharex=True, figsize=(10, 3.2 + 0.22 * len(levels)),
                                     height_ratios=[3.0, max(1.0, 0.16 * len(levels))], layout="constrained")
        else:
            try:
                top, bottom = ax
            except (TypeError, ValueError):
                raise ParameterError("ax", ax, "must be a pair of Axes (estimates, choice matrix)") from None
            axes = np.array([top, bottom])
            fig = top.figure
        top, bottom = axes
        x = df["rank"].to_numpy()
        sig = df["excludes_zero"].to_numpy()
        colors = np.where(sig, "#1f77b4", "#9a9a9a")
        top.vlines(x, df["ci_low"], df["ci_high"], colors=colors, alpha=0.35, linewidth=1.2)
        top.scatter(x, df["estimate"], c=colors, s=9, zorder=3)
        if df["base"].any():
            b = df[df["base"]]
            top.scatter(b["rank"], b["estimate"], s=60, facecolors="none", edgecolors="#d62728", zorder=4,
                        label="the study's specification")
            top.legend(loc="best")
        top.axhline(0, color="black", linewidth=0.8)
        if len(df):
            med = float(df["estimate"].median())
            top.axhline(med, color="#d62728", linewidth=0.8, linestyle="--")
            top.annotate(f"median {med:+.1f}%", (x.max(), med), xytext=(4, 2), textcoords="offset points",
                         fontsize=8, color="#d62728", ha="right", va="bottom")
        top.set_ylabel(_LABELS[quantity])
        share = curve.share_excluding_zero(quantity)
        top.set_title(title or f"{len(df)} specifications; {100 * share:.0f}% of the intervals exclude zero"
                      if np.isfinite(share) else (title or "no specification estimated"))
        for i, (c, v) in enumerate(levels):
            on = (df[c] == v).to_numpy()
            bottom.scatter(x[on], np.full(on.sum(), i), s=6, marker="s", c=colors[on], linewidths=0)
        bottom.set_yticks(range(len(levels)))
        bottom.set_yticklabels([f"{c}: {_value_label(v)}" for c, v in levels], fontsize=7)
        bottom.set_ylim(len(levels) - 0.5, -0.5)
        bottom.grid(False)
        for i in range(1, len(curve.choices)):
            edge = sum(len(curve.grid[c]) for c in curve.choices[:i]) - 0.5
            bottom.axhline(edge, color="#cccccc", linewidth=0.6)
        bottom.set_xlabel("specification (sorted by estimate)")
        if len(x):
            bottom.set_xlim(-1, x.max() + 1)
    return fig, axes
