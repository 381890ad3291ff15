"""Quotable sentences generated from ITS results (the ``to_dict()`` output).

Every number in a sentence is formatted from the results dict; nothing is hard-coded.
"""
from __future__ import annotations

from typing import Any

from raidstudy.report.tables import fmt_num

__all__ = ["sentences"]


def _date(x: Any) -> str:
    if x is None:
        return "n/a"
    s = str(x)
    return s[:10] if len(s) >= 10 and s[4] == "-" and s[7] == "-" else s


def _pct_abs(x: float) -> str:
    return f"{fmt_num(abs(x), 3)}%"


def _plural(unit: str, n: Any) -> str:
    try:
        return unit if abs(float(n)) == 1 else unit + "s"
    except (TypeError, ValueError):
        return unit + "s"


def _pct_interval(lo: float, hi: float, lower_word: str = "lower", higher_word: str = "higher") -> str:
    """Describe a percentage interval in words, keeping the sign readable."""
    if hi <= 0:
        return f"{_pct_abs(hi)} to {_pct_abs(lo)} {lower_word}"
    if lo >= 0:
        return f"{_pct_abs(lo)} to {_pct_abs(hi)} {higher_word}"
    return f"from {_pct_abs(lo)} {lower_word} to {_pct_abs(hi)} {higher_word}"


def sentences(results_dict: dict, *, outcome_label: str, event_label: str, unit: str = "day") -> dict[str, str]:
    """Generate sentences a reader can quote, from :meth:`ITSResults.to_dict` output.

    Parameters
    ----------
    results_dict : dict
        ``ITSResults.to_dict()`` (or the same structure read back from results.json).
    outcome_label : str
        What the outcome counts, in words (e.g. "Scene releases per day").
    event_label : str
        The event in words (e.g. "the SPARKS raid").
    unit : str
        The period unit in words ("day", "week", ...).

    Returns
    -------
    dict of str
        Keys ``level``, ``slope`` (when estimated), ``relative``, ``cumulative``,
        ``recovery``, ``model`` and, when diagnostics flag a problem, ``caution``.
    """
    m = results_dict["model"]
    e = results_dict["effects"]
    diag = results_dict.get("diagnostics", {})
    ci_lab = f"{100 * (1 - e.get('alpha', 0.05)):g}% CI"
    out: dict[str, str] = {}
    ev_date = _date(m.get("event"))

    L = e["level"]
    if "pct" in L:
        word = "fell" if L["pct"] < 0 else "rose"
        out["level"] = (
            f"Immediately after {event_label} ({ev_date}), {outcome_label} {word} by {_pct_abs(L['pct'])} "
            f"relative to the pre-event trend ({ci_lab}: {_pct_interval(L['pct_ci_low'], L['pct_ci_high'])})."
        )
    else:
        word = "fell" if L["estimate"] < 0 else "rose"
        out["level"] = (
            f"Immediately after {event_label} ({ev_date}), {outcome_label} {word} by {fmt_num(abs(L['estimate']))} "
            f"relative to the pre-event trend ({ci_lab}: {fmt_num(L['ci_low'])} to {fmt_num(L['ci_high'])})."
        )
    S = e.get("slope")
    if S:
        if "pct" in S:
            out["slope"] = (
                f"After {event_label} the trend changed by {S['pct']:+.3g}% per {unit} "
                f"({ci_lab}: {S['pct_ci_low']:+.3g}% to {S['pct_ci_high']:+.3g}%)."
            )
        else:
            out["slope"] = (
                f"After {event_label} the trend changed by {S['estimate']:+.3g} per {unit} "
                f"({ci_lab}: {S['ci_low']:+.3g} to {S['ci_high']:+.3g})."
            )
    R = e["relative"]
    pw = e.get("post_window", {})
    n_obs = pw.get("n_observed")
    window = (f"over the {n_obs} observed {_plural(unit, n_obs)} from {_date(pw.get('start'))} to "
              f"{_date(pw.get('end'))}") if n_obs else "over the post-event window"
    direction = "lower" if R["pct"] < 0 else "higher"
    out["relative"] = (
        f"{window[0].upper() + window[1:]}, {outcome_label} was {_pct_abs(R['pct'])} {direction} than the "
        f"counterfactual without {event_label} ({ci_lab}: {_pct_interval(R['pct_ci_low'], R['pct_ci_high'])})."
    )
    C = e["cumulative"]
    if C["estimate"] <= 0:
        out["cumulative"] = (
            f"In total, {event_label} is associated with about {fmt_num(C['lost'])} fewer {outcome_label} "
            f"than expected {window} ({ci_lab}: {fmt_num(C['lost_ci_low'])} to {fmt_num(C['lost_ci_high'])}); "
            f"{fmt_num(C['observed'])} were observed against a counterfactual of {fmt_num(C['counterfactual'])}."
        )
    else:
        out["cumulative"] = (
            f"In total, {window}, about {fmt_num(C['estimate'])} more {outcome_label} were observed than expected "
            f"without {event_label} ({ci_lab}: {fmt_num(C['ci_low'])} to {fmt_num(C['ci_high'])}); "
            f"{fmt_num(C['observed'])} observed against a counterfactual of {fmt_num(C['counterfactual'])}."
        )
    rec = e["recovery"]
    share = f"{100 * rec['share']:g}%"
    horizon = rec.get("horizon")
    if rec["direction"] == "rise":
        goal = f"fell back to {100 / rec['share']:.3g}% of the counterfactual or less"
    else:
        goal = f"recovered to {share} of the counterfactual"
    if rec["reached"] and rec["periods"] == 0:
        moved = (f"did not rise above {100 / rec['share']:.3g}%" if rec["direction"] == "rise"
                 else f"did not fall below {share}")
        out["recovery"] = (f"{outcome_label[0].upper() + outcome_label[1:]} {moved} of the "
                           f"counterfactual after {event_label}, so no recovery time applies.")
    elif rec["reached"]:
        lo = rec["ci_low"]
        hi = (f"{rec['ci_high']} {_plural(unit, rec['ci_high'])}" if rec["ci_high_reached"]
              else f"beyond the {horizon} {_plural(unit, horizon)} observed")
        p_nr = rec.get("p_not_reached")
        nr = (f"; in {fmt_num(100 * p_nr, 2)}% of simulated draws it is not reached within the window"
              if p_nr else "")
        out["recovery"] = (
            f"{outcome_label[0].upper() + outcome_label[1:]} {goal} {rec['periods']} "
            f"{_plural(unit, rec['periods'])} after {event_label} (on {_date(rec['date'])}; {ci_lab}: "
            f"{lo} {_plural(unit, lo)} to {hi}{nr}). This time follows from the fitted post-event "
            f"trend (the level and slope changes), so it extrapolates that line rather than reading "
            f"the recovery off the data."
        )
    else:
        p_nr = rec.get("p_not_reached")
        extra = (f" (it was not reached in {fmt_num(100 * p_nr, 2)}% of simulated draws)" if p_nr is not None else "")
        nr_goal = (f"fallen back to {100 / rec['share']:.3g}% of the counterfactual or less"
                   if rec["direction"] == "rise" else f"recovered to {share} of the counterfactual")
        out["recovery"] = (
            f"{outcome_label[0].upper() + outcome_label[1:]} had not {nr_goal} within the {horizon} "
            f"{_plural(unit, horizon)} observed after {event_label}{extra}."
        )
    cov = m.get("cov_description", m.get("cov_type", ""))
    fam = {"negbin": "negative binomial", "poisson": "Poisson", "quasipoisson": "quasi-Poisson",
           "gaussian": "Gaussian (OLS)"}.get(m.get("family"), m.get("family"))
    out["model"] = (
        f"Estimates come from a {fam} interrupted time-series model of {m.get('nobs')} {_plural(unit, 2)} "
        f"({m.get('n_pre')} before and {m.get('n_post')} from the event on"
        + (f", {len(m.get('missing') or [])} missing" if m.get("missing") else "")
        + (f", {len(m.get('excluded') or [])} transition {_plural(unit, len(m.get('excluded') or []))} excluded"
           if m.get("excluded") else "")
        + f"); standard errors: {cov}."
    )
    flags = diag.get("flags") or []
    if flags:
        out["caution"] = ("Caution: the model diagnostics flag " + "; ".join(flags)
                          + ". Treat the intervals as approximate and compare the ARIMA-errors robustness model.")
    return out
