r"""Displacement across release groups: who stopped, who started, who grew after an event.

One series says whether the total fell. This module asks how the work was spread over
groups before and after an event (issue 15, part 2), always against **base rates**: groups
come and go all the time, so every statistic of the event is set beside the same statistic
on placebo dates of the same history.

* :func:`group_counts`: daily releases by group (a wide frame, one column per group), NaN on
  the days a feed of the feed set was not collected (missing is never zero).
* :func:`group_turnover`: entry and exit of groups around the event, their shares of the
  volume, and concentration over groups (Herfindahl index, top-k share) before and after,
  each with its placebo distribution and a rank p-value (:class:`GroupTurnover`).
* :class:`GroupPanelStudy`: a group-level panel event study with ``linearmodels.PanelOLS``
  (entity and time effects; clustered and Driscoll-Kraay covariance) of whether the groups
  that survived the event grew (:class:`GroupPanelResults`); :func:`panel_sentence` states
  the answer in words.

See ``docs/groups.md`` for the definitions and the SPARKS numbers.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from raidstudy.errors import DataError, ModelError, ParameterError

__all__ = [
    "TURNOVER_STATISTICS",
    "GroupPanelResults",
    "GroupPanelStudy",
    "GroupTurnover",
    "group_counts",
    "group_panel",
    "group_turnover",
    "panel_sentence",
    "placebo_dates",
]

#: The statistics of :func:`group_turnover`, with their meaning.
TURNOVER_STATISTICS: dict[str, str] = {
    "n_active_pre": "groups with >= k releases in the window before",
    "n_active_post": "groups with >= k releases in the window after",
    "n_exit": "groups with >= k releases before and none after (exits)",
    "n_enter": "groups with none before and >= k after (entries)",
    "exit_rate": "exits / groups active before",
    "entry_rate": "entries / groups active after",
    "exit_share": "exits' share of the volume before",
    "entry_share": "entries' share of the volume after",
    "volume_change": "volume after / volume before - 1",
    "hhi_pre": "Herfindahl index over groups before (sum of squared shares, 0-1)",
    "hhi_post": "Herfindahl index over groups after",
    "hhi_change": "Herfindahl index after - before",
    "top_share_pre": "share of the volume of the top-k groups before",
    "top_share_post": "share of the volume of the top-k groups after",
    "top_share_change": "top-k share after - before",
}
_DESIGNS = ("placebo", "size")
_COV_TYPES = ("clustered", "kernel")


# --------------------------------------------------------------------------- data
def _resolve_event(event: Any) -> tuple[pd.Timestamp, str, str | None]:
    """A catalogue id or a date: (date, label for sentences, catalogue id or None)."""
    if isinstance(event, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", event.strip()):
        from raidstudy.data.events import get_event

        ev = get_event(event.strip())
        return pd.Timestamp(ev.date).normalize(), ev.name, ev.id
    try:
        ts = pd.Timestamp(event)
    except (TypeError, ValueError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise ParameterError("event", event, "is neither a date (YYYY-MM-DD) nor an event id of the catalogue",
                             hint="see `raidstudy events`")
    return ts.normalize(), "the event", None


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(name, value, f"must be a whole number >= {minimum}")
    return int(value)


def group_counts(data: pd.DataFrame | None = None, *, feed_set: str = "scene",
                 families: Iterable[str] | str | None = None, groups: Iterable[str] | str | None = None,
                 missing_dates: Iterable[Any] | None = None, start: Any = None, end: Any = None,
                 data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Daily releases by group: one row per day, one column per group, NaN on missing days.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        A long frame of your own (columns ``date``, ``group``, ``n_releases``; a day without
        a row is a zero, as in the bundled table). Default: the bundled groups of
        ``feed_set`` (:func:`raidstudy.data.indicators.load_groups`).
    feed_set : {"scene", "p2p", "all"}
        Bundled data only: which feeds count (``scene`` = ``#pre@corrupt`` + ``xrel``).
    families : str or list of str, optional
        Bundled data only: section families to keep (default all).
    groups : str or list of str, optional
        Keep only these groups. A filter that selects nothing is an error.
    missing_dates : list of date-like, optional
        Own data only: days on which the data were not collected (NaN rows). For the
        bundled data a day is missing when any feed of the set is not covered
        (:func:`raidstudy.data.indicators.load_coverage`).
    start, end : date-like, optional
        Inclusive bounds.
    data_dir : path, optional
        Folder of processed files.

    Returns
    -------
    pandas.DataFrame
        float64, daily ``DatetimeIndex`` named ``date`` (every day of the range), columns the
        groups (sorted). A missing day is a row of NaN for every group (a group cannot be
        seen on a day nobody collected). ``attrs``: ``feed_set``, ``feeds``, ``n_missing``,
        ``missing_dates``, ``simulated`` (own data), ``source``.

    Raises
    ------
    ParameterError
        Unknown feed set or family, or a group filter that selects nothing.
    DataError
        Own data without the needed columns, with negative counts, or empty.

    Examples
    --------
    >>> from raidstudy.models.groups import group_counts
    >>> c = group_counts(groups=["SPARKS", "KTR"])
    >>> list(c.columns), c.index.freqstr
    (['KTR', 'SPARKS'], 'D')
    >>> bool(c.isna().all(axis=1).sum() == c.attrs["n_missing"])
    True
    """
    from raidstudy.data import indicators as ind

    if data is None:
        if feed_set not in ind.GROUP_FEED_SETS:
            raise ParameterError("feed_set", feed_set, "unknown feed set", accepted=list(ind.GROUP_FEED_SETS))
        from raidstudy.data.releases import FAMILIES

        fams = ind._check_list("families", families, FAMILIES, "families are the harmonised section families")
        g = ind.load_groups(data_dir)
        g = g[(g["feed_set"] == feed_set) & g["family"].isin(fams)]
        cov = ind.load_coverage(data_dir)
        feeds = ind._feed_set(feed_set, sorted(cov["feed"].unique().tolist()))
        cv = cov[cov["feed"].isin(feeds)].pivot(index="date", columns="feed", values="covered")
        idx = pd.date_range(cv.index.min(), cv.index.max(), freq="D", name="date")
        ok = cv.reindex(idx).fillna(False).astype(bool).all(axis=1)
        miss = idx[~ok.to_numpy()]
        simulated = False
        source = f"bundled groups, feed set {feed_set} ({' + '.join(feeds)})"
    else:
        need = {"date", "group", "n_releases"}
        if not isinstance(data, pd.DataFrame) or not need <= set(data.columns):
            have = list(data.columns) if isinstance(data, pd.DataFrame) else type(data).__name__
            raise DataError(f"group data need the columns date, group, n_releases (got {have})")
        if data.empty:
            raise DataError("group data have no rows")
        g = data.assign(date=pd.to_datetime(data["date"]).dt.normalize(), group=data["group"].astype(str))
        if (g["n_releases"] < 0).any() or g["n_releases"].isna().any():
            raise DataError("group data: n_releases must be >= 0 and not missing "
                            "(mark a day that was not collected with missing_dates=, never with NaN counts)")
        miss_list = pd.DatetimeIndex(pd.to_datetime(list(missing_dates or []))).normalize()
        lo = min(g["date"].min(), miss_list.min()) if len(miss_list) else g["date"].min()
        hi = max(g["date"].max(), miss_list.max()) if len(miss_list) else g["date"].max()
        idx = pd.date_range(lo, hi, freq="D", name="date")
        miss = idx[idx.isin(miss_list)]
        feeds = []
        simulated = bool(data.attrs.get("simulated", False))
        source = str(data.attrs.get("source", "data supplied by the caller"))
    if groups is not None:
        wanted = [groups] if isinstance(groups, str) else list(groups)
        have = set(g["group"].unique())
        if not wanted or not any(w in have for w in wanted):
            raise ParameterError("groups", wanted, f"selects no group of the {len(have)} in the data"
                                 + (f" (feed set {feed_set!r})" if data is None else ""),
                                 hint="names are case-sensitive; see load_group_summary() for the bundled groups")
        g = g[g["group"].isin(wanted)]
    if g.empty:
        raise ParameterError("families", families, "selects no release of any group", hint="check families")
    wide = g.pivot_table(index="date", columns="group", values="n_releases", aggfunc="sum", fill_value=0)
    wide = wide.reindex(idx, fill_value=0).astype("float64")
    wide = wide.reindex(columns=sorted(wide.columns))
    wide.loc[miss] = np.nan
    if start is not None or end is not None:
        wide = wide.loc[start:end]
        if wide.empty:
            raise ParameterError("start", start, f"with end={end!r} selects no day of the data "
                                 f"({idx[0].date()} to {idx[-1].date()})")
    wide.index.name = "date"
    wide.index.freq = "D"
    wide.columns.name = "group"
    m = wide.index[wide.isna().all(axis=1)]
    wide.attrs.update({"feed_set": feed_set if data is None else None, "feeds": feeds, "n_missing": len(m),
                       "missing_dates": [d.strftime("%Y-%m-%d") for d in m], "simulated": simulated,
                       "source": source})
    return wide


def _check_counts(counts: pd.DataFrame) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, list[str]]:
    """Dates, values with missing rows zeroed, the missing mask and group names."""
    if not isinstance(counts, pd.DataFrame) or not isinstance(counts.index, pd.DatetimeIndex):
        raise DataError("counts must be a DataFrame indexed by day with one column per group (see group_counts)")
    if counts.shape[1] == 0:
        raise ParameterError("groups", [], "selects no group", hint="check the group filter")
    idx = counts.index
    if len(idx) > 1 and not (np.diff(idx.to_numpy().astype("datetime64[D]").astype(np.int64)) == 1).all():
        raise DataError("counts must have one row per day with no day left out (absent days: reindex and set "
                        "NaN on days not collected, as group_counts does)")
    X = counts.to_numpy(dtype="float64", copy=True)
    miss = np.isnan(X).any(axis=1)
    X[miss] = 0.0
    if (X < 0).any():
        raise DataError("counts must be >= 0")
    return idx, X, miss, [str(c) for c in counts.columns]


class _Cumulative:
    """Window sums of every group and missing-day counts in O(1) per window."""

    def __init__(self, X: np.ndarray, miss: np.ndarray):
        self.C = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(X, axis=0)])
        self.M = np.r_[0, np.cumsum(miss.astype(np.int64))]

    def sums(self, a: int, b: int) -> np.ndarray:
        return self.C[b] - self.C[a]

    def n_missing(self, a: int, b: int) -> int:
        return int(self.M[b] - self.M[a])


def _concentration(v: np.ndarray, top_k: int) -> tuple[float, float]:
    tot = v.sum()
    if tot <= 0:
        return float("nan"), float("nan")
    s = v / tot
    top = np.sort(s)[::-1][:top_k].sum()
    return float(np.sum(s * s)), float(top)


def _turnover_stats(pre: np.ndarray, post: np.ndarray, k: int, top_k: int) -> dict[str, float]:
    act_pre = pre >= k
    act_post = post >= k
    exits = act_pre & (post == 0)
    enters = (pre == 0) & act_post
    tp, tq = pre.sum(), post.sum()
    h0, t0 = _concentration(pre, top_k)
    h1, t1 = _concentration(post, top_k)
    nan = float("nan")
    return {
        "n_active_pre": float(act_pre.sum()), "n_active_post": float(act_post.sum()),
        "n_exit": float(exits.sum()), "n_enter": float(enters.sum()),
        "exit_rate": float(exits.sum() / act_pre.sum()) if act_pre.any() else nan,
        "entry_rate": float(enters.sum() / act_post.sum()) if act_post.any() else nan,
        "exit_share": float(pre[exits].sum() / tp) if tp > 0 else nan,
        "entry_share": float(post[enters].sum() / tq) if tq > 0 else nan,
        "volume_change": float(tq / tp - 1) if tp > 0 else nan,
        "hhi_pre": h0, "hhi_post": h1, "hhi_change": h1 - h0,
        "top_share_pre": t0, "top_share_post": t1, "top_share_change": t1 - t0,
    }


def _catalogue_dates(exclude_events: Any) -> list[pd.Timestamp]:
    if exclude_events is None:
        return []
    from raidstudy.data.events import load_events

    ev = load_events()
    if isinstance(exclude_events, str) and exclude_events == "catalogue":
        return [pd.Timestamp(d).normalize() for d in ev["date"]]
    ids = [exclude_events] if isinstance(exclude_events, str) else list(exclude_events)
    unknown = [i for i in ids if i not in set(ev["event_id"])]
    if unknown:
        raise ParameterError("exclude_events", unknown[0], "is not an event id of the catalogue",
                             accepted=list(ev["event_id"]))
    return [pd.Timestamp(d).normalize() for d in ev.loc[ev["event_id"].isin(ids), "date"]]


def placebo_dates(index: pd.DatetimeIndex, event_date: Any, *, before: int, after: int, step: int = 14,
                  exclude_events: Any = "catalogue", missing: np.ndarray | None = None,
                  max_missing: int | None = None) -> tuple[list[pd.Timestamp], dict[str, int]]:
    """Placebo dates on a grid of ``step`` days through the event date, with complete windows.

    A date ``d`` is kept when its windows ``[d - before, d)`` and ``[d, d + after)`` lie
    inside ``index``, no catalogued event date (``exclude_events``: ``"catalogue"`` = every
    event of ``data/events.csv``, a list of ids, or None) and not the event itself falls in
    ``[d - before, d + after)``, and each window has at most ``max_missing`` missing days.

    Returns
    -------
    (dates, excluded)
        The kept dates and the number left out by reason (``edge`` is not counted: the grid
        only spans the dates whose windows fit).
    """
    step = _positive_int("placebo_step", step)
    ev = pd.Timestamp(event_date).normalize()
    n = len(index)
    pos0 = int((ev - index[0]).days)
    blocked = sorted({*(_catalogue_dates(exclude_events)), ev})
    bpos = np.array([(d - index[0]).days for d in blocked])
    M = np.r_[0, np.cumsum(missing.astype(np.int64))] if missing is not None else None
    kept, excluded = [], {"overlaps an event": 0, "too many missing days": 0}
    j_lo = -((pos0 - before) // step)
    j_hi = (n - after - pos0) // step
    for j in range(j_lo, j_hi + 1):
        p = pos0 + j * step
        if j == 0 or p - before < 0 or p + after > n:
            continue
        if np.any((bpos >= p - before) & (bpos < p + after)):
            excluded["overlaps an event"] += 1
            continue
        if M is not None and max_missing is not None and (
                M[p] - M[p - before] > max_missing or M[p + after] - M[p] > max_missing):
            excluded["too many missing days"] += 1
            continue
        kept.append(index[p])
    return kept, excluded


def _rank_p(value: float, dist: np.ndarray) -> tuple[float, float, float]:
    d = dist[np.isfinite(dist)]
    if not np.isfinite(value) or len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    up = (1 + np.sum(d >= value)) / (len(d) + 1)
    lo = (1 + np.sum(d <= value)) / (len(d) + 1)
    return float(up), float(lo), float(min(1.0, 2 * min(up, lo)))


# --------------------------------------------------------------------------- turnover
@dataclass
class GroupTurnover:
    """Entry, exit and concentration of groups around an event, against placebo dates.

    Built by :func:`group_turnover`. The "uncertainty" here is a base rate, not a sampling
    covariance: each statistic of the event is ranked among the same statistic on placebo
    dates of the same history.

    Attributes
    ----------
    params : pandas.Series
        The event's value of each statistic (:data:`TURNOVER_STATISTICS`).
    std_errors : pandas.Series
        The standard deviation of each statistic over the placebo dates.
    pvalues : pandas.Series
        Two-sided rank p-values, ``min(1, 2 min(p_upper, p_lower))`` with
        ``p_upper = (1 + #{placebo >= event}) / (n + 1)``.
    placebo : pandas.DataFrame
        One row per placebo date (``date`` and every statistic).
    groups : pandas.DataFrame
        One row per group: releases before and after, shares, and ``status`` (``exit``,
        ``entry``, ``survivor`` = >= k before and some after, ``other``).
    """

    event: dict[str, Any]
    settings: dict[str, Any]
    params: pd.Series
    placebo: pd.DataFrame
    excluded: dict[str, int]
    groups: pd.DataFrame
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def n_placebos(self) -> int:
        return len(self.placebo)

    @property
    def std_errors(self) -> pd.Series:
        return self.placebo[list(self.params.index)].std(ddof=1).rename("std_error")

    def _p(self, which: int) -> pd.Series:
        return pd.Series({k: _rank_p(float(self.params[k]), self.placebo[k].to_numpy(float))[which]
                          for k in self.params.index}, name="p_value")

    @property
    def pvalues(self) -> pd.Series:
        return self._p(2)

    @property
    def p_upper(self) -> pd.Series:
        return self._p(0)

    @property
    def p_lower(self) -> pd.Series:
        return self._p(1)

    def conf_int(self, alpha: float = 0.10) -> pd.DataFrame:
        """The central ``1 - alpha`` range of each statistic over the placebo dates (default 5-95 %).

        This is the range of usual values (the base rate), not an interval for the event's value.
        """
        _check_alpha(alpha)
        q = self.placebo[list(self.params.index)].quantile([alpha / 2, 1 - alpha / 2]).T
        q.columns = ["lower", "upper"]
        return q

    @property
    def cov_description(self) -> str:
        s = self.settings
        return (f"no sampling covariance: the event is ranked among {self.n_placebos} placebo dates "
                f"(every {s['placebo_step']} days with complete windows, none overlapping a catalogued event; "
                "overlapping windows, so the placebo dates are not independent and the rank p-values are descriptive)")

    def table(self, alpha: float = 0.10) -> pd.DataFrame:
        """One row per statistic: event value, placebo median and range, rank p-values."""
        ci = self.conf_int(alpha)
        lab = f"{100 * alpha / 2:g}"
        lab_hi = f"{100 * (1 - alpha / 2):g}"
        med = self.placebo[list(self.params.index)].median()
        return pd.DataFrame({"statistic": list(self.params.index), "event": self.params.to_numpy(),
                             "placebo_median": med.to_numpy(), f"placebo_p{lab}": ci["lower"].to_numpy(),
                             f"placebo_p{lab_hi}": ci["upper"].to_numpy(),
                             "p_upper": self.p_upper.to_numpy(), "p_lower": self.p_lower.to_numpy(),
                             "p_value": self.pvalues.to_numpy(),
                             "meaning": [TURNOVER_STATISTICS[k].replace("k releases", f"{self.settings['min_releases']} releases")
                                         .replace("top-k", f"top-{self.settings['top_k']}") for k in self.params.index]})

    def sentence(self) -> str:
        """Entry, exit and concentration in words, each against its base rate."""
        s, p, e = self.settings, self.params, self.event
        pl = self.placebo
        W, k = s["window_days"], s["min_releases"]

        def rng(key: str, pct: bool) -> str:
            lo, hi = pl[key].quantile([0.05, 0.95])
            med = pl[key].median()
            f = (lambda x: f"{100 * x:.0f}%") if pct else (lambda x: f"{x:.0f}")
            return f"median {f(med)}, 5-95% {f(lo)} to {f(hi)}"

        pu = self.p_upper
        out = (f"Of the {p['n_active_pre']:.0f} groups with at least {k} releases in the {W} days before {e['label']} "
               f"({e['date']}), {p['n_exit']:.0f} released nothing in the {W} days after: {100 * p['exit_share']:.0f}% "
               f"of the volume before (on {self.n_placebos} placebo dates: {rng('exit_share', True)}; "
               f"{rng('n_exit', False)} groups; rank p-value {pu['exit_share']:.3f} for a share as large). "
               f"{p['n_enter']:.0f} groups with no release before had at least {k} after, "
               f"{100 * p['entry_share']:.0f}% of the volume after ({rng('entry_share', True)}; rank p-value "
               f"{pu['entry_share']:.3f}). The Herfindahl index over groups went from {p['hhi_pre']:.4f} to "
               f"{p['hhi_post']:.4f} (change {p['hhi_change']:+.4f}; "
               )
        lo, hi = pl["hhi_change"].quantile([0.05, 0.95])
        out += (
            f"placebo changes 5-95% {lo:+.4f} to {hi:+.4f}, two-sided rank p-value {self.pvalues['hhi_change']:.3f}) "
            f"and the top-{s['top_k']} groups' share from {100 * p['top_share_pre']:.0f}% to "
            f"{100 * p['top_share_post']:.0f}% (placebo changes 5-95% "
            f"{100 * pl['top_share_change'].quantile(0.05):+.0f} to {100 * pl['top_share_change'].quantile(0.95):+.0f} "
            f"points, p = {self.pvalues['top_share_change']:.3f}).")
        if self.data.get("n_missing_event", 0):
            out += f" {self.data['n_missing_event']} days of the event's windows were not collected."
        return out

    def summary(self, alpha: float = 0.10) -> str:
        """Text summary naming how the base rates were computed."""
        s, e = self.settings, self.event
        head = [("Event", f"{e['label']} ({e['date']})"), ("Data", self.data.get("source", "")),
                ("Groups", str(self.data.get("n_groups", ""))),
                ("Windows", f"{s['window_days']} days before / {s['window_days']} days from the event on"),
                ("Activity threshold k", f"{s['min_releases']} releases in a window"),
                ("Missing days (before / after)", (f"{self.data.get('n_missing_pre', 0)} / "
                                                  f"{self.data.get('n_missing_post', 0)} (at most {s['max_missing']})")),
                ("Placebo dates", f"{self.n_placebos} kept; left out: "
                                  + ", ".join(f"{v} ({k})" for k, v in self.excluded.items())),
                ("Uncertainty", self.cov_description)]
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}} : {v}" for k, v in head]
        tab = self.table(alpha).drop(columns="meaning").set_index("statistic").to_string(float_format=lambda x: f"{x:.4g}")
        bar = "=" * max(len(x) for x in lines + tab.splitlines())
        return "\n".join([bar, "Group entry, exit and concentration against placebo dates", bar, *lines, bar, tab, bar,
                          self.sentence()])

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self, alpha: float = 0.10) -> dict[str, Any]:
        """JSON-ready: event, settings, the table, the placebo dates and the top groups by status."""
        t = self.table(alpha)
        top = (self.groups.sort_values("pre", ascending=False).groupby("status").head(10)
               .sort_values(["status", "pre", "post"], ascending=[True, False, False]))
        return {"event": self.event, "settings": self.settings, "data": self.data, "excluded": self.excluded,
                "n_placebos": self.n_placebos, "cov_description": self.cov_description,
                "statistics": _records(t), "placebo": _records(self.placebo.assign(
                    date=self.placebo["date"].dt.strftime("%Y-%m-%d"))),
                "groups_by_status": {k: int(v) for k, v in self.groups["status"].value_counts().sort_index().items()},
                "top_groups": _records(top), "sentence": self.sentence()}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in df.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        float(v) if isinstance(v, (np.floating,)) else int(v) if isinstance(v, np.integer) else v)
                    for k, v in r.items()})
    return out


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ParameterError("alpha", alpha, "must lie strictly between 0 and 1", hint="0.05 gives 95% intervals")


def _event_window(idx: pd.DatetimeIndex, ev: pd.Timestamp, label: str, before: int, after: int) -> int:
    pos = int((ev - idx[0]).days)
    if pos - before < 0 or pos + after > len(idx):
        raise DataError(
            f"{label} ({ev.date()}) is too close to the edge of the data for the windows: it needs "
            f"{before} days before and {after} days from the event on ({(ev - pd.Timedelta(days=before)).date()} to "
            f"{(ev + pd.Timedelta(days=after - 1)).date()}), the data run from {idx[0].date()} to {idx[-1].date()}; "
            "shorten the windows or choose another event")
    return pos


def group_turnover(counts: pd.DataFrame | None = None, *, event: Any = "sparks_2020", min_releases: int = 20,
                   window_days: int = 90, top_k: int = 10, placebo_step: int = 14,
                   exclude_events: Any = "catalogue", max_missing: int | None = None,
                   on_missing: str = "error", feed_set: str = "scene", families: Any = None, groups: Any = None,
                   data_dir: str | os.PathLike | None = None) -> GroupTurnover:
    r"""Entry, exit and concentration of groups around an event, with placebo base rates.

    Parameters
    ----------
    counts : pandas.DataFrame, optional
        Daily releases by group from :func:`group_counts` (default: the bundled groups of
        ``feed_set``, filtered by ``families`` and ``groups``).
    event : str or date-like
        A catalogue id (``"sparks_2020"``) or a date. The event day belongs to the window after.
    min_releases : int
        ``k``: releases in a window that make a group *active* there.
    window_days : int
        ``W``: the length of the window before and of the window after.
    top_k : int
        The number of largest groups in the top-k share.
    placebo_step : int
        Placebo dates lie every ``placebo_step`` days through the event date
        (:func:`placebo_dates`).
    exclude_events : "catalogue", list of ids or None
        Placebo windows that hold one of these events' dates are left out.
    max_missing : int, optional
        Most missing days allowed in each window (default ``W // 10``). Placebo dates with
        more are left out.
    on_missing : {"error", "flag"}
        What to do when the event's own windows have more missing days: raise
        :class:`~raidstudy.errors.DataError`, or go on and flag it in ``data["flag"]``.

    Returns
    -------
    GroupTurnover

    Notes
    -----
    With ``r_g^-`` and ``r_g^+`` the releases of group ``g`` over the observed days of the
    windows before (``[e - W, e)``) and after (``[e, e + W)``) the event day ``e``:

    * exit: ``r_g^- >= k`` and ``r_g^+ = 0``; entry: ``r_g^- = 0`` and ``r_g^+ >= k``;
    * exit share: ``sum_{exits} r_g^- / sum_g r_g^-``; entry share:
      ``sum_{entries} r_g^+ / sum_g r_g^+``;
    * Herfindahl index ``H = sum_g s_g^2`` with ``s_g = r_g / sum_h r_h`` in a window (``1/H``
      is the effective number of groups); top-k share ``sum`` of the ``k`` largest ``s_g``.

    A group cannot be seen on a day that was not collected, so "none after" means none on
    the observed days; the number of missing days in each window is reported, and a window
    with more than ``max_missing`` of them is an error for the event and a reason to leave
    a placebo date out. The base rate of a statistic is its distribution over the placebo
    dates; the rank p-value of the event's value ``v`` among ``n`` placebo values ``v_j`` is
    ``(1 + #{v_j >= v}) / (n + 1)`` (upper) and the two-sided value doubles the smaller
    tail. Placebo windows overlap each other, so the p-values are descriptive, not exact.
    Only groups with at least 20 releases over the whole bundled range are in the bundled
    data, so shares are shares of those groups' volume.

    Examples
    --------
    >>> from raidstudy.models.groups import group_turnover
    >>> t = group_turnover(event="sparks_2020")
    >>> t.params["n_exit"] > 0 and t.n_placebos > 10
    True
    >>> sorted(t.conf_int().columns)
    ['lower', 'upper']
    """
    k = _positive_int("min_releases", min_releases)
    W = _positive_int("window_days", window_days, 7)
    top_k = _positive_int("top_k", top_k)
    if on_missing not in ("error", "flag"):
        raise ParameterError("on_missing", on_missing, "unknown choice", accepted=["error", "flag"])
    mm = W // 10 if max_missing is None else _positive_int("max_missing", max_missing, 0)
    if counts is None:
        counts = group_counts(feed_set=feed_set, families=families, groups=groups, data_dir=data_dir)
    elif groups is not None:
        wanted = [groups] if isinstance(groups, str) else list(groups)
        keep = [c for c in counts.columns if c in set(wanted)]
        if not keep:
            raise ParameterError("groups", wanted, f"selects no group of the {counts.shape[1]} in counts")
        counts = counts[keep]
    idx, X, miss, names = _check_counts(counts)
    ev, label, ev_id = _resolve_event(event)
    pos = _event_window(idx, ev, label, W, W)
    cum = _Cumulative(X, miss)
    n_mp, n_mq = cum.n_missing(pos - W, pos), cum.n_missing(pos, pos + W)
    flag = None
    if max(n_mp, n_mq) > mm:
        msg = (f"the windows of {label} ({ev.date()}) have {n_mp} missing days before and {n_mq} after "
               f"(at most {mm} allowed, max_missing=): a group cannot be seen on days that were not collected")
        if on_missing == "error":
            raise DataError(msg + "; pass on_missing='flag' to go on, or a larger max_missing")
        flag = msg
    pre, post = cum.sums(pos - W, pos), cum.sums(pos, pos + W)
    st = _turnover_stats(pre, post, k, top_k)
    dates, excluded = placebo_dates(idx, ev, before=W, after=W, step=placebo_step, exclude_events=exclude_events,
                                    missing=miss, max_missing=mm)
    rows = []
    for d in dates:
        p = int((d - idx[0]).days)
        rows.append({"date": d, **_turnover_stats(cum.sums(p - W, p), cum.sums(p, p + W), k, top_k)})
    placebo = pd.DataFrame(rows, columns=["date", *TURNOVER_STATISTICS])
    status = np.where((pre >= k) & (post == 0), "exit", np.where((pre == 0) & (post >= k), "entry",
                      np.where((pre >= k) & (post > 0), "survivor", "other")))
    gt = pd.DataFrame({"group": names, "pre": pre, "post": post,
                       "pre_share": pre / pre.sum() if pre.sum() > 0 else np.nan,
                       "post_share": post / post.sum() if post.sum() > 0 else np.nan, "status": status})
    gt = gt[(gt["pre"] > 0) | (gt["post"] > 0)].reset_index(drop=True)
    settings = {"min_releases": k, "window_days": W, "top_k": top_k, "placebo_step": int(placebo_step),
                "exclude_events": exclude_events if isinstance(exclude_events, (str, type(None))) else list(exclude_events),
                "max_missing": mm, "on_missing": on_missing}
    data = {"source": counts.attrs.get("source", ""), "simulated": bool(counts.attrs.get("simulated", False)),
            "n_groups": len(names), "start": idx[0].strftime("%Y-%m-%d"), "end": idx[-1].strftime("%Y-%m-%d"),
            "n_missing_pre": n_mp, "n_missing_post": n_mq, "n_missing_event": n_mp + n_mq,
            "volume_pre": float(pre.sum()), "volume_post": float(post.sum()), "flag": flag}
    event_d = {"id": ev_id, "label": label, "date": ev.strftime("%Y-%m-%d")}
    return GroupTurnover(event=event_d, settings=settings, params=pd.Series(st, name="estimate"), placebo=placebo,
                         excluded=excluded, groups=gt, data=data)


# --------------------------------------------------------------------------- panel
class GroupPanelStudy:
    r"""Group-level panel event study: did the groups that survived the event grow?

    Parameters
    ----------
    counts : pandas.DataFrame
        Daily releases by group (:func:`group_counts`).
    event : str or date-like
        Catalogue id or date; relative week 0 starts on the event day.
    design : {"placebo", "size"}
        ``"placebo"`` (default): the event's survivors against the survivors of placebo
        dates (a stacked panel; the comparison is how surviving groups usually fare);
        ``"size"``: the event's survivors only, post x pre-event size tercile (the middle
        and top terciles against the bottom one).
    min_releases : int
        A group enters a stack when it had at least this many releases in the pre weeks.
    pre_weeks, post_weeks : int
        Relative weeks ``-pre_weeks .. post_weeks - 1`` (28 + 29 weeks = 399 days by default).
    min_covered_days : int
        A week with fewer observed days is missing for every group (a gap, reported).
    survivors_only : bool
        Keep only groups with at least one release in the post weeks (default). Exits are
        zero after the event by construction; :func:`group_turnover` counts them.
    placebo_step : int
        ``design="placebo"``: placebo dates every this many days (:func:`placebo_dates`).
    exclude_events : "catalogue", list of ids or None
        Placebo stacks whose window holds one of these events are left out.
    max_placebos : int or None
        Use at most this many placebo stacks, evenly spread over the eligible dates (default
        5; None: all). Each stack adds as many rows as the event's, so this bounds the time.

    Attributes
    ----------
    panel : pandas.DataFrame
        Long panel: ``stack`` (its date), ``group``, ``entity`` (``stack:group``), ``rel``
        (relative week), ``releases`` (scaled to 7 days when a week has missing days),
        ``covered_days``, ``y = log1p(releases)``, ``pre_releases``, the arm indicators.
    report : dict
        Units, stacks, weeks, missing cells and what was dropped and why.

    Notes
    -----
    For group ``i`` in stack ``s`` (the event or a placebo date) and relative week ``r``,

    .. math:: y_{isr} = \alpha_{is} + \lambda_r + \sum_a \sum_{r \ne -1} \delta_{a,r} D^a_{is} 1[r]
              + \varepsilon_{isr},

    with ``y = log(1 + weekly releases)``, entity effects ``alpha`` (group x stack), time
    effects ``lambda`` (relative week, common to all stacks) and arm indicators ``D^a``:
    ``D = 1`` for the event's stack (``design="placebo"``) or the middle and top size
    terciles (``design="size"``). ``fit(dynamic=False)`` replaces the relative-week
    interactions by one ``D^a x post`` term per arm (``post = 1[r >= 0]``), the average
    post-event change relative to the whole pre period, in log points (``100 (exp(b) - 1)``
    percent). Under ``design="placebo"`` the survivors of the event are compared with
    survivors of ordinary dates, so the selection on survival (and the regression to the mean
    that it brings) is the same on both sides. Weeks with fewer than ``min_covered_days``
    observed days are missing (an unbalanced panel); a week with some missing days is scaled
    to 7 days. A placebo stack whose reference week ``-1`` is missing is dropped and reported.

    Examples
    --------
    >>> from raidstudy.models.groups import GroupPanelStudy, group_counts
    >>> study = GroupPanelStudy(group_counts(), "sparks_2020", pre_weeks=12, post_weeks=12)  # doctest: +SKIP
    >>> res = study.fit(cov_type="clustered", dynamic=False)  # doctest: +SKIP
    >>> res.effect()["pct"]  # doctest: +SKIP
    """

    def __init__(self, counts: pd.DataFrame, event: Any = "sparks_2020", *, design: str = "placebo",
                 min_releases: int = 20, pre_weeks: int = 28, post_weeks: int = 29, min_covered_days: int = 4,
                 survivors_only: bool = True, placebo_step: int = 14, exclude_events: Any = "catalogue",
                 max_placebos: int | None = 5):
        if design not in _DESIGNS:
            raise ParameterError("design", design, "unknown design", accepted=_DESIGNS)
        self.design = design
        self.min_releases = _positive_int("min_releases", min_releases)
        self.pre_weeks = _positive_int("pre_weeks", pre_weeks, 2)
        self.post_weeks = _positive_int("post_weeks", post_weeks, 1)
        self.min_covered_days = _positive_int("min_covered_days", min_covered_days)
        if self.min_covered_days > 7:
            raise ParameterError("min_covered_days", min_covered_days, "must be between 1 and 7")
        self.survivors_only = bool(survivors_only)
        idx, X, miss, names = _check_counts(counts)
        self.event_date, self.event_label, self.event_id = _resolve_event(event)
        before, after = 7 * self.pre_weeks, 7 * self.post_weeks
        _event_window(idx, self.event_date, self.event_label, before, after)
        self.simulated = bool(counts.attrs.get("simulated", False))
        self.source = counts.attrs.get("source", "")
        stacks = [self.event_date]
        excluded: dict[str, int] = {}
        if design == "placebo":
            pl, excluded = placebo_dates(idx, self.event_date, before=before, after=after, step=placebo_step,
                                         exclude_events=exclude_events)
            if max_placebos is not None and len(pl) > _positive_int("max_placebos", max_placebos):
                take = np.unique(np.round(np.linspace(0, len(pl) - 1, max_placebos)).astype(int))
                pl = [pl[i] for i in take]
            stacks += pl
        self.settings = {"design": design, "min_releases": self.min_releases, "pre_weeks": self.pre_weeks,
                         "post_weeks": self.post_weeks, "min_covered_days": self.min_covered_days,
                         "survivors_only": self.survivors_only, "placebo_step": int(placebo_step),
                         "exclude_events": exclude_events if isinstance(exclude_events, (str, type(None)))
                         else list(exclude_events), "max_placebos": max_placebos}
        self._build(idx, X, miss, names, stacks, excluded)

    # ---------------------------------------------------------------- building
    def _build(self, idx, X, miss, names, stacks, excluded) -> None:
        P, Q = self.pre_weeks, self.post_weeks
        nw = P + Q
        rel = np.arange(-P, Q)
        parts = []
        dropped: dict[str, list[str]] = {"reference week missing": [], "no unit": []}
        n_missing_cells = 0
        names_arr = np.asarray(names, dtype=object)
        for si, d in enumerate(stacks):
            p = int((d - idx[0]).days)
            a, b = p - 7 * P, p + 7 * Q
            Xw = X[a:b].reshape(nw, 7, -1).sum(axis=1)
            cov = (~miss[a:b]).reshape(nw, 7).sum(axis=1)
            ok_week = cov >= self.min_covered_days
            tag = d.strftime("%Y-%m-%d")
            if not ok_week[P - 1]:
                if si == 0:
                    raise DataError(f"the reference week -1 before {self.event_label} ({tag}) has only {cov[P - 1]} "
                                    f"observed days (min_covered_days={self.min_covered_days}): the effects are "
                                    "measured against it; choose another event or lower min_covered_days")
                dropped["reference week missing"].append(tag)
                continue
            pre_tot = Xw[:P].sum(axis=0)
            post_tot = Xw[P:].sum(axis=0)
            sel = pre_tot >= self.min_releases
            if self.survivors_only:
                sel &= post_tot > 0
            if not sel.any():
                if si == 0:
                    raise ModelError(f"no group had {self.min_releases} releases in the {P} weeks before "
                                     f"{self.event_label} ({tag})" + (" and survived" if self.survivors_only else ""))
                dropped["no unit"].append(tag)
                continue
            G = int(sel.sum())
            scale = np.where(ok_week, 7.0 / np.maximum(cov, 1), np.nan)
            vals = Xw[:, sel] * scale[:, None]                       # nw x G
            keep_w = np.flatnonzero(ok_week)
            n_missing_cells += int((~ok_week).sum()) * G
            g_names = names_arr[sel]
            frame = pd.DataFrame({
                "stack": np.repeat(tag, len(keep_w) * G),
                "group": np.tile(g_names, len(keep_w)),
                "rel": np.repeat(rel[keep_w], G),
                "releases": vals[keep_w].ravel(),
                "covered_days": np.repeat(cov[keep_w], G),
                "pre_releases": np.tile(pre_tot[sel], len(keep_w)),
                "event_stack": si == 0,
            })
            parts.append(frame)
        panel = pd.concat(parts, ignore_index=True)
        panel["entity"] = panel["stack"] + ":" + panel["group"].astype(str)
        panel["y"] = np.log1p(panel["releases"])
        panel["post"] = (panel["rel"] >= 0).astype(float)
        ev_tag = self.event_date.strftime("%Y-%m-%d")
        if self.design == "placebo":
            n_pl = panel.loc[~panel["event_stack"], "stack"].nunique()
            if n_pl == 0:
                raise ModelError(
                    f"no comparison: no placebo date of {7 * (self.pre_weeks + self.post_weeks)}-day windows fits in the "
                    f"data without a catalogued event (placebo dates left out: {excluded}, "
                    f"{ {k: len(v) for k, v in dropped.items()} }); every unit of the panel is treated. Use shorter "
                    "windows, exclude_events=None, or design='size'")
            panel["arm_event"] = panel["event_stack"].astype(float)
            self.arms = ["event"]
        else:
            ev = panel[panel["stack"] == ev_tag]
            size = ev.drop_duplicates("group").set_index("group")["pre_releases"]
            if size.nunique() < 3 or len(size) < 6:
                raise ModelError(f"no comparison: the size design needs at least 6 surviving groups of different "
                                 f"sizes to form terciles; {len(size)} survived {self.event_label}")
            terc = pd.qcut(size.rank(method="first"), 3, labels=[1, 2, 3]).astype(int)
            panel["tercile"] = panel["group"].map(terc)
            panel["arm_tercile2"] = (panel["tercile"] == 2).astype(float)
            panel["arm_tercile3"] = (panel["tercile"] == 3).astype(float)
            self.arms = ["tercile2", "tercile3"]
        self.panel = panel
        ent_n = panel.groupby("entity").size()
        self.report = {
            "n_units": int(panel["entity"].nunique()), "n_groups": int(panel["group"].nunique()),
            "n_event_units": int(panel.loc[panel["event_stack"], "entity"].nunique()),
            "n_stacks": int(panel["stack"].nunique()), "n_placebo_stacks": int(panel["stack"].nunique() - 1),
            "placebo_stacks": sorted(set(panel["stack"]) - {ev_tag}),
            "n_weeks": self.pre_weeks + self.post_weeks, "nobs": len(panel),
            "n_missing_cells": n_missing_cells,
            "n_units_with_gaps": int((ent_n < self.pre_weeks + self.post_weeks).sum()),
            "balanced": bool((ent_n == self.pre_weeks + self.post_weeks).all()),
            "placebo_dates_left_out": excluded, "stacks_dropped": {k: v for k, v in dropped.items() if v},
            "missing_days_event_window": int(miss[int((self.event_date - idx[0]).days) - 7 * self.pre_weeks:
                                                  int((self.event_date - idx[0]).days) + 7 * self.post_weeks].sum()),
        }

    # ---------------------------------------------------------------- design
    def terms(self, dynamic: bool = True) -> list[str]:
        """Names of the regressors: ``<arm>:rel[r]`` (dynamic) or ``<arm>:post``."""
        if not dynamic:
            return [f"{a}:post" for a in self.arms]
        rels = [r for r in range(-self.pre_weeks, self.post_weeks) if r != -1]
        return [f"{a}:rel[{r}]" for a in self.arms for r in rels]

    def exog(self, dynamic: bool = True) -> pd.DataFrame:
        """The regressors, indexed like :attr:`panel` (entity, rel)."""
        pn = self.panel
        cols = {}
        rel = pn["rel"].to_numpy()
        for a in self.arms:
            arm = pn[f"arm_{a}"].to_numpy()
            if dynamic:
                for r in range(-self.pre_weeks, self.post_weeks):
                    if r != -1:
                        cols[f"{a}:rel[{r}]"] = arm * (rel == r)
            else:
                cols[f"{a}:post"] = arm * (rel >= 0)
        X = pd.DataFrame(cols)
        X.index = pd.MultiIndex.from_arrays([pn["entity"].to_numpy(), rel], names=["entity", "rel"])
        return X

    def fit(self, *, cov_type: str = "clustered", dynamic: bool = True, bandwidth: float | None = None
            ) -> GroupPanelResults:
        """Fit with ``linearmodels.PanelOLS`` (entity and relative-week effects).

        Parameters
        ----------
        cov_type : {"clustered", "kernel"}
            ``"clustered"``: by group (a group in several stacks is one cluster; with one stack
            this is ``cluster_entity=True``). ``"kernel"``: Driscoll-Kraay (Bartlett kernel
            over relative weeks; ``bandwidth`` in weeks, default linearmodels' rule).
        dynamic : bool
            Relative-week interactions (the path) or one post term per arm.
        """
        from linearmodels.panel import PanelOLS

        if cov_type not in _COV_TYPES:
            raise ParameterError("cov_type", cov_type, "unknown covariance", accepted=_COV_TYPES)
        X = self.exog(dynamic)
        # Integer entity labels: linearmodels checks and sorts the index several times, which
        # is slow on text labels (pandas' Arrow strings): the fits take a fifth less time.
        X.index = pd.MultiIndex.from_arrays([pd.factorize(self.panel["entity"])[0], X.index.get_level_values("rel")],
                                            names=["entity", "rel"])
        y = pd.Series(self.panel["y"].to_numpy(), index=X.index, name="y")
        empty = [c for c in X.columns if not X[c].to_numpy().any()]
        if len(empty) == X.shape[1]:
            raise ModelError("no term of the design has an observation: every treated week is missing")
        # a relative week missing in every treated unit (a collection gap): not identified, reported
        X = X.drop(columns=empty)
        if cov_type == "kernel" and dynamic:
            raise ModelError("Driscoll-Kraay standard errors are not defined for the relative-week path: each "
                             "week's effect is identified within that one week, so its score sums are zero and its "
                             "standard error collapses; use fit(cov_type='kernel', dynamic=False) for the pooled "
                             "effect, and cov_type='clustered' for the path")
        weeks = np.unique(self.panel["rel"].to_numpy())
        mod = PanelOLS(y, X, entity_effects=True, time_effects=True)
        kw: dict[str, Any]
        if cov_type == "clustered":
            if self.design == "size" or self.report["n_placebo_stacks"] == 0:
                kw = {"cov_type": "clustered", "cluster_entity": True}
            else:
                codes = pd.Series(pd.factorize(self.panel["group"])[0], index=X.index, name="group")
                kw = {"cov_type": "clustered", "clusters": codes.to_frame()}
        else:
            bw = float(np.floor(4 * (len(weeks) / 100) ** (2 / 9))) if bandwidth is None else float(bandwidth)
            kw = {"cov_type": "kernel", "kernel": "bartlett", "bandwidth": bw}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mod.fit(**kw)
        res_terms = list(X.columns)
        return GroupPanelResults(self, res, cov_type=cov_type, dynamic=dynamic, terms=res_terms,
                                 not_identified=empty, bandwidth=kw.get("bandwidth"))


class GroupPanelResults:
    """Results of :meth:`GroupPanelStudy.fit`.

    Attributes
    ----------
    params, std_errors, tstats, pvalues : pandas.Series
        By term (``<arm>:rel[r]`` or ``<arm>:post``), in log points.
    nobs, n_entities, n_clusters : int
    cov_type : str
    linearmodels : linearmodels PanelEffectsResults
        The underlying fit.
    """

    def __init__(self, study: GroupPanelStudy, res: Any, *, cov_type: str, dynamic: bool, terms: list[str],
                 not_identified: list[str], bandwidth: float | None):
        self.study = study
        self.linearmodels = res
        self.cov_type = cov_type
        self.dynamic = dynamic
        self.params = res.params[terms].rename("estimate")
        self.std_errors = res.std_errors[terms].rename("std_error")
        self.tstats = res.tstats[terms].rename("t")
        self.pvalues = res.pvalues[terms].rename("p_value")
        self.cov_params = res.cov.loc[terms, terms]
        #: Terms of a relative week that no treated unit has (a collection gap), left out.
        self.not_identified = list(not_identified)
        self.nobs = int(res.nobs)
        self.n_entities = int(res.entity_info["total"])
        self.n_clusters = int(study.panel["group"].nunique()) if cov_type == "clustered" else None
        self.bandwidth = bandwidth

    @property
    def cov_description(self) -> str:
        """The covariance estimator in words."""
        if self.cov_type == "clustered":
            one = self.study.design == "size" or self.study.report["n_placebo_stacks"] == 0
            return (f"clustered by group ({self.n_clusters} clusters"
                    + ("" if one else "; a group that appears in several stacks is one cluster")
                    + "), linearmodels PanelOLS, normal critical values")
        return (f"Driscoll-Kraay (Bartlett kernel over relative weeks, bandwidth {self.bandwidth:g}), robust to "
                "correlation across groups within a week and over nearby weeks; linearmodels PanelOLS, normal "
                "critical values")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Normal intervals (columns ``lower``, ``upper``)."""
        _check_alpha(alpha)
        z = stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({"lower": self.params - z * self.std_errors, "upper": self.params + z * self.std_errors})

    def _row(self, term: str, alpha: float) -> dict[str, Any]:
        ci = self.conf_int(alpha).loc[term]
        b, lo, hi = float(self.params[term]), float(ci["lower"]), float(ci["upper"])
        return {"term": term, "estimate": b, "std_error": float(self.std_errors[term]),
                "ci_low": lo, "ci_high": hi, "p_value": float(self.pvalues[term]),
                "pct": 100 * math.expm1(b), "pct_ci_low": 100 * math.expm1(lo), "pct_ci_high": 100 * math.expm1(hi)}

    def path(self, arm: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """The relative-week path of one arm (the reference week -1 as 0), dynamic fits only."""
        if not self.dynamic:
            raise ModelError("path() needs a dynamic fit: fit(dynamic=True)")
        arm = arm or self.study.arms[-1]
        if arm not in self.study.arms:
            raise ParameterError("arm", arm, "is not an arm of the design", accepted=self.study.arms)
        rows = []
        for r in range(-self.study.pre_weeks, self.study.post_weeks):
            if r == -1:
                rows.append({"rel": -1, "term": "reference", "estimate": 0.0, "std_error": 0.0, "ci_low": 0.0,
                             "ci_high": 0.0, "p_value": float("nan"), "pct": 0.0, "pct_ci_low": 0.0,
                             "pct_ci_high": 0.0})
            elif f"{arm}:rel[{r}]" not in self.params.index:
                rows.append({"rel": r, "term": f"{arm}:rel[{r}]", **{k: float("nan") for k in (
                    "estimate", "std_error", "ci_low", "ci_high", "p_value", "pct", "pct_ci_low", "pct_ci_high")}})
            else:
                rows.append({"rel": r, **self._row(f"{arm}:rel[{r}]", alpha)})
        return pd.DataFrame(rows)

    def effect(self, arm: str | None = None, alpha: float = 0.05) -> dict[str, Any]:
        """The average post-event effect of an arm in log points and percent.

        Pooled fits: the ``<arm>:post`` term. Dynamic fits: the mean of the post weeks'
        terms minus the mean of the lead weeks' (reference included as 0), as a contrast.
        """
        arm = arm or self.study.arms[-1]
        if arm not in self.study.arms:
            raise ParameterError("arm", arm, "is not an arm of the design", accepted=self.study.arms)
        if not self.dynamic:
            return self._row(f"{arm}:post", alpha)
        P, Q = self.study.pre_weeks, self.study.post_weeks
        c = pd.Series(0.0, index=self.params.index)
        post = [r for r in range(Q) if f"{arm}:rel[{r}]" in c.index]
        pre = [r for r in range(-P, -1) if f"{arm}:rel[{r}]" in c.index]
        for r in post:
            c[f"{arm}:rel[{r}]"] = 1 / len(post)
        for r in pre:
            c[f"{arm}:rel[{r}]"] = -1 / (len(pre) + 1)  # the reference week counts as 0
        b = float(c @ self.params)
        se = float(np.sqrt(c @ self.cov_params.loc[c.index, c.index] @ c))
        z = stats.norm.ppf(1 - alpha / 2)
        return {"term": f"{arm}:post (mean of post weeks - mean of pre weeks)", "estimate": b, "std_error": se,
                "ci_low": b - z * se, "ci_high": b + z * se, "p_value": float(2 * stats.norm.sf(abs(b / se))),
                "pct": 100 * math.expm1(b), "pct_ci_low": 100 * math.expm1(b - z * se),
                "pct_ci_high": 100 * math.expm1(b + z * se)}

    def lead_test(self, arm: str | None = None) -> dict[str, Any]:
        """Wald test that every lead week of an arm is zero (dynamic fits)."""
        if not self.dynamic:
            raise ModelError("lead_test() needs a dynamic fit: fit(dynamic=True)")
        arm = arm or self.study.arms[-1]
        names = [f"{arm}:rel[{r}]" for r in range(-self.study.pre_weeks, -1)
                 if f"{arm}:rel[{r}]" in self.params.index]
        b = self.params[names].to_numpy()
        V = self.cov_params.loc[names, names].to_numpy()
        try:
            stat = float(b @ np.linalg.solve(V, b))
        except np.linalg.LinAlgError:
            return {"statistic": float("nan"), "df": len(names), "p_value": float("nan")}
        return {"statistic": stat, "df": len(names), "p_value": float(stats.chi2.sf(stat, len(names)))}

    def estimates(self, alpha: float = 0.05) -> list[dict[str, Any]]:
        return [self._row(t, alpha) for t in self.params.index]

    def summary(self, alpha: float = 0.05) -> str:
        """Text summary naming the covariance estimator."""
        s, r = self.study, self.study.report
        head = [("Model", "group-level panel event study, linearmodels PanelOLS"),
                ("Event", f"{s.event_label} ({s.event_date.date()})"),
                ("Design", {"placebo": f"survivors of the event vs survivors of {r['n_placebo_stacks']} placebo dates",
                            "size": "survivors of the event, post x pre-event size tercile (bottom = reference)"}[s.design]),
                ("Outcome", "log(1 + weekly releases), weeks scaled to 7 observed days"),
                ("Effects", "entity (group x stack) and relative week"),
                ("Units / groups", f"{r['n_units']} / {r['n_groups']} ({r['n_event_units']} in the event's stack)"),
                ("Weeks", f"{s.pre_weeks} before, {s.post_weeks} from the event on"),
                ("Observations", (f"{self.nobs} ({r['n_missing_cells']} missing cells, "
                                 f"{'balanced' if r['balanced'] else 'unbalanced'})")),
                ("Covariance", self.cov_description)]
        w = max(len(k) for k, _ in head)
        lines = [f"{k:<{w}} : {v}" for k, v in head]
        ci = self.conf_int(alpha)
        lab = f"{100 * (1 - alpha):g}%"
        tab = pd.DataFrame({"coef": self.params, "std err": self.std_errors, "z": self.tstats, "P>|z|": self.pvalues,
                            f"[{lab}": ci["lower"], f"{lab}]": ci["upper"]})
        if self.dynamic:
            tab = tab[[t.endswith(f"rel[{x}]") for t in tab.index for x in [t.split("[")[-1].rstrip("]")]]]
        text = tab.to_string(float_format=lambda x: f"{x:.4g}")
        eff = [f"{a}: average post effect {self.effect(a, alpha)['pct']:+.1f}% "
               f"[{self.effect(a, alpha)['pct_ci_low']:+.1f}%, {self.effect(a, alpha)['pct_ci_high']:+.1f}%]"
               for a in s.arms]
        bar = "=" * max(len(x) for x in lines + text.splitlines()[:3])
        return "\n".join([bar, "Group panel event study", bar, *lines, bar, text, bar, *eff, bar])

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self, alpha: float = 0.05) -> dict[str, Any]:
        out = {"design": self.study.design, "settings": self.study.settings, "report": self.study.report,
               "event": {"id": self.study.event_id, "label": self.study.event_label,
                         "date": self.study.event_date.strftime("%Y-%m-%d")},
               "cov_type": self.cov_type, "cov_description": self.cov_description, "dynamic": self.dynamic,
               "nobs": self.nobs, "n_entities": self.n_entities, "estimates": self.estimates(alpha),
               "effects": {a: self.effect(a, alpha) for a in self.study.arms}}
        if self.dynamic:
            out["lead_test"] = {a: self.lead_test(a) for a in self.study.arms}
        return out


def group_panel(counts: pd.DataFrame | None = None, *, event: Any = "sparks_2020", design: str = "placebo",
                dynamic: bool = True, feed_set: str = "scene", families: Any = None, groups: Any = None,
                data_dir: str | os.PathLike | None = None, **kwargs: Any
                ) -> tuple[GroupPanelResults, GroupPanelResults]:
    """Build the panel and fit it with both covariances: ``(clustered, driscoll_kraay)``.

    Keyword arguments go to :class:`GroupPanelStudy`.

    Examples
    --------
    >>> from raidstudy.models.groups import group_panel, panel_sentence
    >>> cl, dk = group_panel(event="sparks_2020", dynamic=False, max_placebos=3)
    >>> sorted(cl.params.index) == sorted(dk.params.index) == ["event:post"]
    True
    >>> "survived" in panel_sentence(cl, dk)
    True
    """
    if counts is None:
        counts = group_counts(feed_set=feed_set, families=families, groups=groups, data_dir=data_dir)
    study = GroupPanelStudy(counts, event, design=design, **kwargs)
    return study.fit(cov_type="clustered", dynamic=dynamic), study.fit(cov_type="kernel", dynamic=dynamic)


def panel_sentence(clustered: GroupPanelResults, kernel: GroupPanelResults | None = None, *,
                   alpha: float = 0.05) -> str:
    """Did the survivors grow? The answer in words, with both intervals."""
    s = clustered.study
    r = s.report
    lab = f"{100 * (1 - alpha):g}%"
    out = []
    for arm in s.arms:
        e = clustered.effect(arm, alpha)
        if s.design == "placebo":
            who = (f"The {r['n_event_units']} groups that had at least {s.min_releases} releases in the {s.pre_weeks} "
                   f"weeks before {s.event_label} and survived it (released again in the {s.post_weeks} weeks after)")
            cmp = (f"than groups that survived {r['n_placebo_stacks']} placebo dates without a catalogued event "
                   "did over the same relative weeks")
        else:
            name = {"tercile2": "middle", "tercile3": "largest"}[arm]
            who = f"The {name} third (by pre-event releases) of the groups that survived {s.event_label}"
            cmp = "than the smallest third of the survivors"
        d = "more" if e["estimate"] > 0 else "fewer"
        txt = (f"{who} released {abs(e['pct']):.0f}% {d} per week after the event, relative to their own pre-event "
               f"level, {cmp} ({lab} CI {e['pct_ci_low']:+.0f}% to {e['pct_ci_high']:+.0f}%, "
               f"{clustered.cov_description.split(',')[0]}")
        if kernel is not None:
            k = kernel.effect(arm, alpha)
            txt += f"; Driscoll-Kraay {k['pct_ci_low']:+.0f}% to {k['pct_ci_high']:+.0f}%"
        txt += ")"
        lows = [e["ci_low"]] + ([kernel.effect(arm, alpha)["ci_low"]] if kernel is not None else [])
        highs = [e["ci_high"]] + ([kernel.effect(arm, alpha)["ci_high"]] if kernel is not None else [])
        if min(lows) > 0:
            verdict = "they grew: both intervals lie above zero"
        elif max(highs) < 0:
            verdict = "they shrank: both intervals lie below zero"
        elif e["ci_low"] > 0 or (kernel is not None and kernel.effect(arm, alpha)["ci_low"] > 0):
            verdict = "growth is indicated by one covariance but not the other, so it is not established"
        elif e["ci_high"] < 0 or (kernel is not None and kernel.effect(arm, alpha)["ci_high"] < 0):
            verdict = "a decline is indicated by one covariance but not the other, so it is not established"
        else:
            verdict = "the data do not distinguish growth from no change"
        out.append(f"{txt}: {verdict}.")
    if clustered.dynamic and s.design == "placebo":
        lt = clustered.lead_test()
        out.append(f"Before the event their path did not differ from the placebo survivors' by more than chance "
                   f"(joint test of the {lt['df']} lead weeks, p = {lt['p_value']:.2g})." if lt["p_value"] >= 0.05 else
                   f"Before the event their path already differed from the placebo survivors' (joint test of the "
                   f"{lt['df']} lead weeks, p = {lt['p_value']:.2g}), so part of the difference predates it.")
    return " ".join(out)
