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


def _num(x: float, digits: int, sign: bool = False) -> str:
    """``x`` with ``digits`` significant digits (thousands separators; more digits than
    :func:`fmt_num` gives large numbers when they are needed)."""
    import math

    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(x))))
    dec = max(digits - 1 - mag, 0)
    out = f"{x:,.{dec}f}" if abs(x) >= 1000 else f"{x:.{dec}f}"
    return ("+" + out) if sign and x > 0 else out


def _triple(est: float, lo: float, hi: float, *, sign: bool = False, digits: int = 3) -> tuple[str, str, str]:
    """An estimate and its interval with enough significant digits to tell the three apart
    (a Gaussian effect of 1234.5 with interval 1233.9 to 1235.1 must not read as
    "1,235 (1,234 to 1,235)" or "+1.23e+03 (+1.23e+03 to +1.23e+03)")."""
    vals = [est, lo, hi]
    out = tuple(_num(v, digits, sign) for v in vals)
    while digits < 10 and len(set(out)) < len(set(float(v) for v in vals)):
        digits += 1
        out = tuple(_num(v, digits, sign) for v in vals)
    return out  # type: ignore[return-value]


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
        est, lo, hi = _triple(abs(L["estimate"]), L["ci_low"], L["ci_high"])
        out["level"] = (
            f"Immediately after {event_label} ({ev_date}), {outcome_label} {word} by {est} "
            f"relative to the pre-event trend ({ci_lab}: {lo} to {hi})."
        )
    S = e.get("slope")
    if S:
        if "pct" in S:
            out["slope"] = (
                f"After {event_label} the trend changed by {S['pct']:+.3g}% per {unit} "
                f"({ci_lab}: {S['pct_ci_low']:+.3g}% to {S['pct_ci_high']:+.3g}%)."
            )
        else:
            est, lo, hi = _triple(S["estimate"], S["ci_low"], S["ci_high"], sign=True)
            out["slope"] = (
                f"After {event_label} the trend changed by {est} per {unit} "
                f"({ci_lab}: {lo} to {hi})."
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
    dyn = results_dict.get("dynamic")
    if dyn:
        out.update(_dynamic_sentences(dyn, out, outcome_label=outcome_label, event_label=event_label, unit=unit,
                                      ci_lab=ci_lab, window=window))
    cov = m.get("cov_description", m.get("cov_type", ""))
    fam = {"negbin": "negative binomial", "poisson": "Poisson", "quasipoisson": "quasi-Poisson",
           "gaussian": "Gaussian (OLS)"}.get(m.get("family"), m.get("family"))
    # A comparative model stacks the treated and control series: its nobs counts the rows of
    # both, so the periods are the treated series' own (before plus from the event on).
    if m.get("comparative") and m.get("n_pre") is not None and m.get("n_post") is not None:
        n_ctl = len(m.get("control") or []) or 1
        length = (f"{m['n_pre'] + m['n_post']} {_plural(unit, 2)} of the treated series beside "
                  f"{n_ctl} control series ({m.get('nobs')} rows in all; ")
    else:
        length = f"{m.get('nobs')} {_plural(unit, 2)} ("
    out["model"] = (
        f"Estimates come from a {fam} interrupted time-series model of {length}"
        f"{m.get('n_pre')} before and {m.get('n_post')} from the event on"
        + (f", {len(m.get('missing') or [])} missing" if m.get("missing") else "")
        + (f", {len(m.get('excluded') or [])} transition {_plural(unit, len(m.get('excluded') or []))} excluded"
           if m.get("excluded") else "")
        + f"); standard errors: {cov}."
    )
    flags = diag.get("flags") or []
    if flags:
        if m.get("cov_type") == "ewc":
            out["caution"] = ("The model diagnostics flag " + "; ".join(flags) + ". The intervals allow for it: "
                              "the EWC covariance and its design-simulated critical values are the method whose "
                              "coverage was measured on a simulator calibrated on this kind of series "
                              "(docs/coverage.md); compare the ARMA(1,1)-errors robustness model.")
        else:
            out["caution"] = ("Caution: the model diagnostics flag " + "; ".join(flags)
                              + ". Treat the intervals as approximate and compare the ARMA-errors robustness model.")
    return out


def _pct_ci(e: dict, ci_lab: str) -> str:
    return f"{e['pct']:+.0f}% ({ci_lab}: {e['pct_ci_low']:+.0f}% to {e['pct_ci_high']:+.0f}%)"


def _dynamic_sentences(dyn: dict, base: dict, *, outcome_label: str, event_label: str, unit: str, ci_lab: str,
                       window: str) -> dict[str, str]:
    """Sentences from the dynamic analysis: the post-window effect and the path lead."""
    out: dict[str, str] = {}
    es = dyn["event_study"]
    eff = dyn.get("effects") or {}
    R = eff.get("relative")
    if R:
        pw = eff.get("post_window", {})
        n_obs = pw.get("n_observed")
        win = (f"over the {n_obs} observed {_plural(unit, n_obs)} from {_date(pw.get('start'))} to "
               f"{_date(pw.get('end'))}") if n_obs else window
        direction = "lower" if R["pct"] < 0 else "higher"
        out["relative"] = (
            f"{win[0].upper() + win[1:]}, {outcome_label} was {_pct_abs(R['pct'])} {direction} than the "
            f"counterfactual without {event_label} ({ci_lab}: {_pct_interval(R['pct_ci_low'], R['pct_ci_high'])}); "
            f"the counterfactual continues the pre-event trend and weekly pattern, and the post-event path is "
            f"left free, one effect per {es.get('bin_width', 1)}-{unit} bin."
        )
        C = eff.get("cumulative")
        if C and C["estimate"] <= 0:
            out["cumulative"] = (
                f"In total that is about {fmt_num(C['lost'])} fewer {outcome_label} than expected {win} "
                f"({ci_lab}: {fmt_num(C['lost_ci_low'])} to {fmt_num(C['lost_ci_high'])}); "
                f"{fmt_num(C['observed'])} were observed against a counterfactual of {fmt_num(C['counterfactual'])}."
            )
    path = [b for b in es["path"] if b.get("kind", "post") == "post"]
    leads = [b for b in es["path"] if b.get("kind") == "lead"]
    key = "pct" if path and "pct" in path[0] else "estimate"
    if path:
        width = es.get("bin_width", 1)
        first = ", ".join(f"{b[key]:+.0f}{'%' if key == 'pct' else ''}" for b in path[:4])
        tail = path[-4:] if len(path) > 8 else []
        text = (f"The path the data show, in {width}-{unit} bins: {first} in the first {min(4, len(path))} "
                f"bins after {event_label}")
        if tail:
            lo, hi = min(b[key] for b in tail), max(b[key] for b in tail)
            text += (f", and {lo:+.0f}{'%' if key == 'pct' else ''} to {hi:+.0f}{'%' if key == 'pct' else ''} "
                     f"in the last {len(tail)}")
        crit = [b["crit"] for b in path if b.get("crit")]
        text += (f" (each bin with its own {ci_lab.replace(' CI', '')} interval in the event-study figure"
                 + (f"; a single {width}-{unit} bin's critical value is {min(crit):.1f} to {max(crit):.1f}, "
                    f"so single bins are imprecise" if crit else "") + ").")
        lt = es.get("lead_test")
        if leads and lt:
            text += (f" Before the event the {len(leads)} lead bins lie between {min(b[key] for b in leads):+.0f}"
                     f"{'%' if key == 'pct' else ''} and {max(b[key] for b in leads):+.0f}{'%' if key == 'pct' else ''}"
                     f" (joint test that they are zero: p = {lt['p_value']:.2f}), so there is no sign of "
                     f"anticipation or a pre-trend the model misses" if lt["p_value"] >= 0.05 else
                     f" Before the event the lead bins are jointly different from zero (p = {lt['p_value']:.3g}): "
                     f"anticipation or a pre-trend the model misses; read the effects with care")
            text += "."
        out["path"] = text
    summ = dyn.get("summary") or {}
    dec = summ.get("decay")
    if dec and "pct" in dec.get("impact", {}):
        hl = dec["half_life"]
        table = {r["model"]: r for r in summ.get("models", [])}
        aic = ""
        if "step_decay" in table and "level_slope" in table:
            d_ls = table["level_slope"]["aic"] - table["step_decay"]["aic"]
            aic = (f"; by AIC it fits {'better' if d_ls > 0 else 'worse'} than the level-and-slope line "
                   f"(AIC lower by {abs(d_ls):.0f})" if abs(d_ls) >= 1 else "; by AIC it fits as well as the line")
            best = summ.get("best")
            if best and best != "step_decay":
                aic += f", and the free {es.get('bin_width', 1)}-{unit} path fits best" if best == "bins" else \
                    f", and '{best}' fits best"
        hl_ci = (f"{hl['ci_low']:.0f} to {hl['ci_high']:.0f}" if hl.get("ci_high") is not None
                 and hl.get("ci_low") is not None else "not bounded")
        out["decay"] = (
            f"Summarised as a step plus exponential decay, the immediate impact was {_pct_ci(dec['impact'], ci_lab)}, "
            f"the transient part halved every {hl['estimate']:.0f} {_plural(unit, hl['estimate'])} "
            f"({ci_lab}: {hl_ci}), and the persistent effect was {_pct_ci(dec['persistent'], ci_lab)}{aic}."
        )
    rec = es.get("recovery")
    if rec:
        share = f"{100 * rec['share']:g}%"
        if rec.get("reached"):
            b = rec["bin"]
            out["recovery"] = (
                f"Read off the path, {outcome_label} was back to {share} of the counterfactual in the bin "
                f"{b['first']}-{b['last']} {_plural(unit, 2)} after {event_label}" + (
                    f" (the earliest bin whose interval reaches {share}: {rec['ci_low']['first']}-"
                    f"{rec['ci_low']['last']} {_plural(unit, 2)})" if rec.get("ci_low") else "") + "."
            )
        else:
            last = rec.get("ratio_last_bin")
            out["recovery"] = (
                f"{outcome_label[0].upper() + outcome_label[1:]} had not recovered to {share} of the counterfactual "
                f"within the {rec.get('horizon_last')} {_plural(unit, 2)} observed"
                + (f" (the last bin was at {100 * last:.0f}% of it)" if last is not None else "")
                + "; recovery is read off the path, not extrapolated beyond the data."
            )
    mis = summ.get("misfit")
    if mis and "level" in base:
        lvl = base["level"].rstrip(".")
        verdict = ("rejects" if mis["p_value"] < 0.05 else "does not reject")
        out["level"] = (
            f"For comparison with Stata's itsa, the level-and-slope model says: {lvl[0].lower() + lvl[1:]}. "
            f"A test of whether the path lies on that straight line ({mis['df']} restrictions on "
            f"{mis.get('bin_width')}-{unit} bins) {verdict} it (p = {mis['p_value']:.2g}), so the line's "
            f"numbers {'misdescribe' if mis['p_value'] < 0.05 else 'are a fair summary of'} the path"
            + ("" if mis["p_value"] < 0.05 else
               " at this precision, although the step-plus-decay shape and the free path fit far better by AIC"
               if dec and summ.get("best") in ("bins", "step_decay") else "") + "."
        )
    return out
