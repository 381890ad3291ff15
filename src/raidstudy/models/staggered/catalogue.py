"""The project's data as a staggered panel: feed x section-family series around the catalogue events.

Units are indicator series, one per feed and section family (``indicator_series(feeds=f,
families=g)``), so a day a feed is not covered is missing, never zero. Which units an event
treats follows its target type (:data:`TARGET_CLASSES`): Scene groups and topsites treat the
Scene feeds, P2P release groups and torrent sites the P2P feed ``xrelp2p``; streaming, IPTV,
shadow-library and other site events treat nothing in these feeds and enter as expected-null
placebo events, with the Scene series as pseudo-treated units.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.staggered.estimators import StackedEventStudy
from raidstudy.models.staggered.results import StaggeredResults

__all__ = [
    "P2P_FEEDS",
    "SCENE_FEEDS",
    "TARGET_CLASSES",
    "CatalogueStudy",
    "build_event_panel",
    "catalogue_study",
    "target_class",
]

#: Target types of the catalogue by the class of units they treat (first match wins: scene, p2p).
TARGET_CLASSES: dict[str, tuple[str, ...]] = {
    "scene": ("scene_group", "topsite"),
    "p2p": ("p2p_release_group", "torrent_site", "p2p_network", "private_tracker"),
}
#: Scene pre feeds (``srrdb`` is left out: its times are upload times; ``m2v.ru`` is a mirror).
SCENE_FEEDS: tuple[str, ...] = ("#pre@corrupt", "xrel")
#: The P2P (non-Scene) feed.
P2P_FEEDS: tuple[str, ...] = ("xrelp2p",)


def target_class(target_types: Iterable[str] | str) -> str:
    """``scene``, ``p2p`` or ``placebo`` for an event's target type(s)."""
    tt = [target_types] if isinstance(target_types, str) else list(target_types)
    for cls, types in TARGET_CLASSES.items():
        if any(t in types for t in tt):
            return cls
    return "placebo"


def _freq(freq: str) -> str:
    f = str(freq).upper()
    if f not in ("D", "W"):
        raise ParameterError("freq", freq, "is not a supported period", accepted=["D", "W"],
                             hint="W: weeks from Monday (mean daily count over covered days)")
    return f


def build_event_panel(*, freq: str = "W", feeds: Sequence[str] | None = None, families: Sequence[str] | None = None,
                      events: pd.DataFrame | None = None, event_ids: Sequence[str] | None = None,
                      min_covered_days: int = 4, min_releases: int = 1000,
                      data_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feed x family indicator panel and the catalogue events inside it, with treated units by target type.

    Parameters
    ----------
    freq : {"W", "D"}
        Weekly (weeks starting Monday; the event period is the week holding the event day)
        or daily periods.
    feeds : list of str, optional
        Feeds to use as units; default the Scene feeds and the P2P feed
        (:data:`SCENE_FEEDS` + :data:`P2P_FEEDS`) that the data hold.
    families : list of str, optional
        Section families; default all.
    events : pandas.DataFrame, optional
        An event catalogue (default :func:`raidstudy.data.events.load_events`).
    event_ids : list of str, optional
        Keep only these events.
    min_covered_days : int
        A week is missing unless at least this many of its days are covered.
    min_releases : int
        Leave out feed x family series with fewer releases than this over the whole range
        (e.g. the P2P feed has no music); they are listed in ``panel.attrs["skipped_units"]``.
    data_dir : path, optional
        Folder of processed files.

    Returns
    -------
    (panel, events) : (pandas.DataFrame, pandas.DataFrame)
        ``panel``: ``unit`` (``feed|family``), ``feed``, ``family``, ``period`` (day, or the
        Monday of the week), ``n_releases`` (sum over covered days), ``n_days_covered``,
        ``rate`` (mean releases per covered day; NaN when missing), ``y`` = ``log1p(rate)``
        and ``cohort`` (the period of the first real event that treats the unit; NaT if none).
        ``events``: ``event``, ``time`` (its period), ``date``, ``name``, ``target_type``,
        ``target_class`` and ``units`` (treated units; for placebo events the Scene series).
    """
    from raidstudy.data.events import load_events
    from raidstudy.data.indicators import available_feeds, indicator_series
    from raidstudy.data.releases import FAMILIES

    f = _freq(freq)
    have = available_feeds(data_dir)
    feed_list = [x for x in (feeds if feeds is not None else SCENE_FEEDS + P2P_FEEDS) if x in have or feeds is not None]
    fams = list(families) if families is not None else list(FAMILIES)
    from raidstudy.data.indicators import load_daily

    totals = load_daily(data_dir).groupby(["feed", "family"])["n_releases"].sum()
    parts, skipped = [], {}
    for fd in feed_list:
        for fam in fams:
            tot = int(totals.get((fd, fam), 0))
            if tot < min_releases:
                skipped[f"{fd}|{fam}"] = f"{tot} releases over the whole range (< min_releases={min_releases})"
                continue
            try:
                s = indicator_series(feeds=fd, families=fam, data_dir=data_dir)
            except ParameterError as exc:
                skipped[f"{fd}|{fam}"] = str(exc)
                continue
            d = pd.DataFrame({"date": s.index, "n": s.to_numpy()})
            d["cov"] = np.isfinite(d["n"]).astype(int)
            d["period"] = d["date"] - pd.to_timedelta(d["date"].dt.day_of_week, unit="D") if f == "W" else d["date"]
            g = d.groupby("period").agg(n_releases=("n", "sum"), n_days_covered=("cov", "sum")).reset_index()
            need = min_covered_days if f == "W" else 1
            g["rate"] = np.where(g["n_days_covered"] >= need, g["n_releases"] / g["n_days_covered"].clip(lower=1), np.nan)
            g["feed"], g["family"], g["unit"] = fd, fam, f"{fd}|{fam}"
            parts.append(g)
    if not parts:
        raise DataError(f"none of the feeds {list(feeds or SCENE_FEEDS + P2P_FEEDS)} is in the processed data "
                        f"(feeds there: {have}); pass feeds=")
    panel = pd.concat(parts, ignore_index=True)
    panel["y"] = np.log1p(panel["rate"])
    first, last = panel["period"].min(), panel["period"].max()
    ev = load_events() if events is None else events.copy()
    if event_ids is not None:
        unknown = sorted(set(event_ids) - set(ev["event_id"]))
        if unknown:
            raise ParameterError("event_ids", unknown[0], "is not in the event catalogue", accepted=list(ev["event_id"]))
        ev = ev[ev["event_id"].isin(event_ids)]
    dates = pd.to_datetime(ev["date"])
    ev = ev[(dates >= first) & (dates <= last + pd.Timedelta(days=6 if f == "W" else 0))].copy()
    units = panel.drop_duplicates("unit")[["unit", "feed"]]
    scene_u = units.loc[units["feed"].isin(SCENE_FEEDS), "unit"].tolist()
    p2p_u = units.loc[units["feed"].isin(P2P_FEEDS), "unit"].tolist()
    rows = []
    for _, r in ev.iterrows():
        cls = target_class(r["target_type"])
        d = pd.Timestamp(r["date"])
        t = d - pd.Timedelta(days=d.weekday()) if f == "W" else d
        rows.append({"event": r["event_id"], "time": t, "date": d, "name": r["name"],
                     "target_type": ";".join(r["target_type"]) if not isinstance(r["target_type"], str) else r["target_type"],
                     "target_class": cls, "units": list(p2p_u if cls == "p2p" else scene_u)})
    evs = pd.DataFrame(rows, columns=["event", "time", "date", "name", "target_type", "target_class", "units"])
    coh = {}
    for _, r in evs[evs["target_class"] != "placebo"].sort_values("time").iterrows():
        for u in r["units"]:
            coh.setdefault(u, r["time"])
    panel["cohort"] = panel["unit"].map(coh)
    panel = panel[["unit", "feed", "family", "period", "n_releases", "n_days_covered", "rate", "y", "cohort"]]
    panel = panel.sort_values(["unit", "period"]).reset_index(drop=True)
    panel.attrs["skipped_units"] = skipped
    panel.attrs["freq"] = f
    return panel, evs.reset_index(drop=True)


@dataclass
class CatalogueStudy:
    """The stacked study over the catalogue events (see :func:`catalogue_study`)."""

    panel: pd.DataFrame
    events: pd.DataFrame
    pooled: StaggeredResults
    by_target: StaggeredResults
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Aggregate effect (log points and % change) pooled over the real raids and by target class."""
        rows = [{"target_class": "all real raids (scene + p2p)",
                 "events": ", ".join(self.events.loc[self.events["used"] & (self.events["target_class"] != "placebo"),
                                                     "event"]), **self.pooled.att(alpha=alpha)}]
        for g in self.by_target.groups:
            rows.append({"target_class": g, "events": ", ".join(self.events.loc[self.events["used"] &
                                                                                (self.events["target_class"] == g), "event"]),
                         **self.by_target.att(g, alpha=alpha)})
        return pd.DataFrame(rows).drop(columns="term")

    def sentence(self, alpha: float = 0.05) -> str:
        """The pooled and by-class effects in words, with their intervals and the events left out."""
        t = self.table(alpha)
        level = round(100 * (1 - alpha))

        def pct(r) -> str:
            return (f"{r['pct']:+.0f}% ({level}% CI {r['pct_ci_low']:+.0f}% to {r['pct_ci_high']:+.0f}%; "
                    f"{r['events'] or 'no event'})")

        pooled = t.iloc[0]
        parts = [f"Stacking every catalogued raid the data can hold, with clean controls, the treated series "
                 f"changed by {pct(pooled)} over the {self.settings.get('post', 'post')} "
                 f"{self.settings.get('freq', 'W') == 'W' and 'weeks' or 'periods'} after the raids"]
        by = {r["target_class"]: r for _, r in t.iloc[1:].iterrows()}
        if "scene" in by:
            parts.append(f"Scene raids {pct(by['scene'])}")
        if "p2p" in by:
            parts.append(f"P2P raids {pct(by['p2p'])}")
        text = "; ".join(parts) + "."
        if "placebo" in by:
            r = by["placebo"]
            verdict = "include" if r["pct_ci_low"] <= 0 <= r["pct_ci_high"] else "exclude"
            text += (f" The expected-null placebo events (streaming and IPTV cases) give {pct(r)}: their interval "
                     f"{verdict}s zero{'' if verdict == 'include' else ', a warning that the design picks up something besides the raids'}.")
        left = self.events.loc[~self.events["used"], "event"].tolist()
        if left:
            text += (f" {len(left)} catalogued event(s) could not be estimated with clean controls "
                     f"({', '.join(left)}; the reasons are in the events table).")
        return text

    def to_dict(self, alpha: float = 0.05) -> dict[str, Any]:
        ev = self.events.copy()
        ev["time"] = ev["time"].astype(str)
        ev["date"] = ev["date"].dt.strftime("%Y-%m-%d")
        return {"settings": self.settings, "events": ev.to_dict(orient="records"),
                "table": self.table(alpha).to_dict(orient="records"),
                "pooled": self.pooled.to_dict(alpha=alpha), "by_target": self.by_target.to_dict(alpha=alpha)}


def catalogue_study(*, freq: str = "W", pre: int = 12, post: int = 12, cov_type: str = "clustered",
                    overlap: str = "drop", washout: int | None = 52, feeds: Sequence[str] | None = None,
                    families: Sequence[str] | None = None, event_ids: Sequence[str] | None = None,
                    min_covered_days: int = 4, min_releases: int = 1000,
                    data_dir: str | os.PathLike | None = None) -> CatalogueStudy:
    """Stacked event study with clean controls over every catalogue event the data can hold.

    Builds the panel with :func:`build_event_panel`, leaves out (and lists with the reason)
    the events whose window does not fit in the data or that have no clean control, and
    fits two stacked regressions on ``log1p`` of the mean daily releases per period: the
    real raids pooled (``pooled``, scene and p2p classes) and every usable event with the
    path and ``ATT`` by target class (``by_target``, the placebo class included).

    Parameters
    ----------
    freq : {"W", "D"}
        Period of the panel (weeks from Monday by default).
    pre, post : int
        Periods before and after each event in its window.
    cov_type : str
        Covariance of both fits (see :meth:`StackedEventStudy.fit`).
    overlap : {"drop", "report", "error"}
        What to do with a treated series that another real raid reaches within the washout
        before the window or inside it (default: drop it from that event).
    washout : int or None
        Periods before a window in which an earlier raid still makes a series unclean
        (default 52 weeks); ``None`` treats raids as absorbing.
    feeds, families, event_ids, min_covered_days, min_releases, data_dir
        Passed to :func:`build_event_panel`.

    Returns
    -------
    CatalogueStudy
        ``panel``, ``events`` (with ``used`` and the ``status`` saying why an event was left
        out), ``pooled``, ``by_target``, ``table()`` and ``to_dict()``.

    Raises
    ------
    DataError
        No catalogue event inside the data.
    ModelError
        No real raid can be estimated (the message lists each one's reason).

    Examples
    --------
    >>> from raidstudy.models.staggered import catalogue_study
    >>> st = catalogue_study(event_ids=["sparks_2020", "xtream_codes_2019"], pre=8, post=8)  # doctest: +SKIP
    >>> st.table()[["target_class", "estimate", "ci_low", "ci_high"]]  # doctest: +SKIP
    """
    panel, evs = build_event_panel(freq=freq, feeds=feeds, families=families, event_ids=event_ids,
                                   min_covered_days=min_covered_days, min_releases=min_releases, data_dir=data_dir)
    if evs.empty:
        raise DataError("no catalogue event falls inside the data range "
                        f"({panel['period'].min().date()} to {panel['period'].max().date()})")
    real_all = evs[evs["target_class"] != "placebo"][["event", "time", "units"]]
    common = {"outcome": "y", "unit": "unit", "time": "period", "pre": pre, "post": post, "overlap": overlap, "freq": freq,
                  "log_outcome": True, "treatments": real_all, "washout": washout}
    status = []
    for k in range(len(evs)):
        try:
            StackedEventStudy(panel, events=evs.iloc[[k]], **common)
            status.append("used")
        except (DataError, ModelError) as exc:
            status.append(str(exc))
    evs = evs.assign(used=[s == "used" for s in status], status=status)
    use = evs[evs["used"]]
    real = use[use["target_class"] != "placebo"]
    if real.empty:
        raise ModelError("no real raid (scene or p2p target) can be estimated: " + "; ".join(
            f"{e}: {s}" for e, s in zip(evs["event"], evs["status"]) if s != "used"))
    pooled = StackedEventStudy(panel, events=real.reset_index(drop=True), name="real raids pooled",
                               **common).fit(cov_type=cov_type)
    by = StackedEventStudy(panel, events=use.reset_index(drop=True), group="target_class", name="by target class",
                           **common).fit(cov_type=cov_type)
    settings = {"freq": freq, "pre": pre, "post": post, "cov_type": cov_type, "overlap": overlap, "washout": washout,
                "outcome": "log1p(mean daily releases over the period's covered days)",
                "min_covered_days": min_covered_days, "min_releases": min_releases,
                "units": sorted(panel["unit"].unique()), "skipped_units": panel.attrs.get("skipped_units", {})}
    return CatalogueStudy(panel=panel, events=evs, pooled=pooled, by_target=by, settings=settings)
