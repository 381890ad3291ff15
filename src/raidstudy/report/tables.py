"""Tables from ITS results: estimates, the headline effects, Markdown and LaTeX output.

LaTeX is written by a small booktabs writer here (``pandas.DataFrame.to_latex`` needs
jinja2, which is not a dependency of raidstudy).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["estimates_table", "effects_table", "to_markdown", "to_latex", "fmt_int", "fmt_num", "readable", "readable_number"]


def fmt_int(x: Any) -> str:
    """A count as people write it: ``1,944``; '' for a missing value.

    Examples
    --------
    >>> fmt_int(12776.0), fmt_int(None)
    ('12,776', '')
    """
    if x is None or (isinstance(x, float) and x != x):
        return ""
    return f"{int(round(float(x))):,}"


def fmt_num(x: Any, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits (thousands separators for large values)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(x))))
    dec = max(digits - 1 - mag, 0)
    return f"{x:.{dec}f}"


def estimates_table(results, *, alpha: float = 0.05) -> pd.DataFrame:
    """Coefficient table: ``estimate, std_error, ci_low, ci_high, p_value`` by term.

    Count families add ``rate_ratio``, ``rr_ci_low``, ``rr_ci_high`` (exp of the
    coefficient and its interval).
    """
    import numpy as np

    rows = results.estimates(alpha)
    df = pd.DataFrame(rows).set_index("term")
    if results.family != "gaussian":
        df["rate_ratio"] = np.exp(df["estimate"])
        df["rr_ci_low"] = np.exp(df["ci_low"])
        df["rr_ci_high"] = np.exp(df["ci_high"])
    return df


def _effects_of(obj: Any, **kw) -> dict:
    if isinstance(obj, dict):
        return obj["effects"] if "effects" in obj else obj
    return obj.effects(**kw)


def effects_table(results_or_effects: Any, *, alpha: float = 0.05, recovery_share: float = 0.9,
                  n_sim: int = 2000, seed: int = 0, unit: str | None = None) -> pd.DataFrame:
    """The headline table: level change, slope change, relative and cumulative effect, recovery time.

    Parameters
    ----------
    results_or_effects : ITSResults or dict
        Results, their ``effects()`` dict or their ``to_dict()`` output.

    Returns
    -------
    pandas.DataFrame
        Index: the effect; columns ``estimate``, ``ci_low``, ``ci_high``, ``display``
        (a formatted "estimate (low to high)" string).
    """
    kw = {"alpha": alpha, "recovery_share": recovery_share, "n_sim": n_sim, "seed": seed}
    e = _effects_of(results_or_effects, **kw)
    unit = unit or e.get("unit", "period")
    lvl_pct = 100 * (1 - e.get("alpha", alpha))
    rows: list[tuple[str, Any, Any, Any, str]] = []

    def add(name, est, lo, hi, suffix=""):
        disp = f"{fmt_num(est)}{suffix} ({fmt_num(lo)}{suffix} to {fmt_num(hi)}{suffix})"
        rows.append((name, est, lo, hi, disp))

    L = e["level"]
    if "pct" in L:
        add("Level change (%)", L["pct"], L["pct_ci_low"], L["pct_ci_high"], "%")
    else:
        add("Level change", L["estimate"], L["ci_low"], L["ci_high"])
    S = e.get("slope")
    if S:
        if "pct" in S:
            add(f"Slope change (% per {unit})", S["pct"], S["pct_ci_low"], S["pct_ci_high"], "%")
        else:
            add(f"Slope change (per {unit})", S["estimate"], S["ci_low"], S["ci_high"])
    R = e["relative"]
    add("Relative effect over post window (%)", R["pct"], R["pct_ci_low"], R["pct_ci_high"], "%")
    C = e["cumulative"]
    add("Cumulative effect (observed - counterfactual)", C["estimate"], C["ci_low"], C["ci_high"])
    rec = e["recovery"]
    share = f"{100 * rec['share']:g}%"
    est = rec["periods"] if rec["reached"] else None
    hi = rec["ci_high"] if rec["ci_high_reached"] else None
    disp = (f"{est if est is not None else 'not reached'} "
            f"({rec['ci_low'] if rec['ci_low'] is not None else 'not reached'} to "
            f"{hi if hi is not None else 'beyond ' + str(rec['horizon'])})")
    rows.append((f"Time to recover to {share} of counterfactual ({unit}s)", est, rec["ci_low"], hi, disp))
    df = pd.DataFrame(rows, columns=["effect", "estimate", "ci_low", "ci_high", "display"]).set_index("effect")
    df.attrs["interval"] = f"{lvl_pct:g}% interval"
    return df


def _fmt_p(p: float) -> str:
    """A p-value as people write it: two significant digits, '< 0.001' below that."""
    if not math.isfinite(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def path_table(results, *, alpha: float = 0.05) -> pd.DataFrame:
    """The event-study path as a readers' table: one row per bin with its effect and interval.

    Parameters
    ----------
    results : EventStudyResults
        From :meth:`raidstudy.models.its.dynamic.EventStudy.fit`.

    Returns
    -------
    pandas.DataFrame
        Index: ``bin`` (bins from the event; negative bins are leads, the reference bin is
        marked); columns ``periods`` (first to last period from the event), ``dates``,
        ``effect`` (percent for count families, in outcome units otherwise, with its
        interval), ``p-value`` and ``critical value`` (the bin's own), as text for readers.
    """
    from raidstudy.models.its.vocabulary import NOT_ESTIMATED_BINS

    path = results.path(alpha)
    pct = "pct" in path.columns
    rows = []
    for r in path.itertuples(index=False):
        blank = r.kind == "reference" or r.kind in NOT_ESTIMATED_BINS  # no estimate of its own
        if r.kind == "reference":
            eff = "reference (0 by definition)"
        elif r.kind == "transition":
            eff = "left out (transition: the event's date is imprecise)"
        elif r.kind == "no data":
            eff = "not estimated (no day of the bin was collected)"
        elif pct:
            eff = f"{fmt_num(r.pct)}% ({fmt_num(r.pct_ci_low)}% to {fmt_num(r.pct_ci_high)}%)"
        else:
            eff = f"{fmt_num(r.estimate)} ({fmt_num(r.ci_low)} to {fmt_num(r.ci_high)})"
        rows.append({"bin": int(r.bin), "kind": r.kind, "periods": f"{int(r.first)} to {int(r.last)}",
                     "dates": f"{pd.Timestamp(r.first_date).date()} to {pd.Timestamp(r.last_date).date()}"
                     if pd.notna(r.first_date) else "", "effect": eff,
                     "p-value": "" if blank else _fmt_p(float(r.p_value)),
                     "critical value": "" if blank else f"{float(r.crit):.1f}"})
    df = pd.DataFrame(rows).set_index("bin")
    df.attrs["interval"] = f"{100 * (1 - alpha):g}% interval"
    return df


def _is_p_column(name: Any) -> bool:
    n = str(name).lower().replace("-", "_").replace(" ", "_")
    return n in ("p", "p_value", "pvalue", "p_val") or n.endswith("_p_value") or n.startswith("p_value")


def readable_number(x: Any, digits: int = 4) -> str:
    """A number as people write it in a table: ``digits`` significant digits (whole numbers
    from 1,000 on, with thousands separators), no exponent except for magnitudes below 0.0001 (``1.2e-19``),
    ``0`` for zero and an empty cell for a missing value.

    Examples
    --------
    >>> [readable_number(v) for v in (0.0, -106501.3, 0.0001226, 7.4e-99, float("nan"), 12.0, 0.94153)]
    ['0', '-106,501', '0.0001226', '7.40e-99', '', '12', '0.9415']
    """
    if x is None or isinstance(x, bool):
        return "" if x is None else str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) < 1e-4:
        return f"{v:.{max(digits - 2, 1)}e}"
    mag = int(math.floor(math.log10(abs(v))))
    dec = max(digits - 1 - mag, 0)
    out = f"{v:.{dec}f}"
    return out.rstrip("0").rstrip(".") if "." in out else out


def readable(df: pd.DataFrame, *, digits: int = 4) -> pd.DataFrame:
    """The table as text for readers: numbers by :func:`readable_number`, p-values as
    ``0.025`` or ``< 0.001``, missing values as empty cells (never ``NaN`` or ``0.000000e+00``).

    Use it to display a DataFrame in a notebook or report; the numbers themselves stay in
    ``results.json``.
    """
    def missing(v: Any) -> bool:
        try:
            return v is None or bool(pd.isna(v))
        except (TypeError, ValueError):  # a list or array in a cell
            return False

    def cell(v: Any, p_col: bool) -> str:
        if missing(v):
            return ""
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (int, float, np.integer, np.floating)):
            return _fmt_p(float(v)) if p_col else readable_number(v, digits)
        return str(v)

    out = pd.DataFrame(index=df.index)
    for i, col in enumerate(df.columns):
        p_col = _is_p_column(col)
        out[i] = [cell(v, p_col) for v in df.iloc[:, i]]
    out.columns = df.columns
    return out


def to_markdown(df: pd.DataFrame, *, floatfmt: str | None = None) -> str:
    """GitHub-flavoured Markdown table (via tabulate), numbers as :func:`readable` writes them.

    ``floatfmt`` (a format spec such as ``".4g"``) formats the floats with tabulate instead.
    """
    from tabulate import tabulate

    if floatfmt is not None:
        return tabulate(df, headers="keys", tablefmt="github", floatfmt=floatfmt, missingval="n/a")
    text = readable(df)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    align = ["right" if pd.api.types.is_numeric_dtype(df.index) else "left"] + \
        ["right" if n else "left" for n in numeric]
    return tabulate(text, headers="keys", tablefmt="github", disable_numparse=True, colalign=align)


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex_escape(s: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(s))


def to_latex(df: pd.DataFrame, *, caption: str | None = None, label: str | None = None,
             float_format: str = "{:.4g}", index: bool = True) -> str:
    """A booktabs LaTeX table (``\\toprule``/``\\midrule``/``\\bottomrule``), no jinja2 needed."""
    cols = list(df.columns)
    align = ("l" if index else "") + "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in cols)

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "--"
        if isinstance(v, float):
            return _tex_escape(float_format.format(v))
        return _tex_escape(v)

    head = ([_tex_escape(df.index.name or "")] if index else []) + [_tex_escape(c) for c in cols]
    lines = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        lines.append(f"\\caption{{{_tex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(head) + " \\\\", "\\midrule"]
    for idx, row in df.iterrows():
        vals = ([cell(idx)] if index else []) + [cell(row[c]) for c in cols]
        lines.append(" & ".join(vals) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
