r"""Effects by section family, and the P2P feed as control and as destination.

Two questions that one series cannot answer:

* **Which sections fell, and how far?** :func:`family_effects` fits the study's model (by
  default the event study of :class:`~raidstudy.models.its.EventStudy`: negative binomial,
  day-of-week terms, one transition day left out, EWC covariance with 6 cosine terms and
  design-simulated fixed-b critical values) to each section family's own series and
  reports the relative effect over the post window and over its first four weeks, side
  by side. Families with too little data are listed as skipped, with the reason.
* **Did the work move to P2P?** :func:`p2p_comparison` sets the P2P feed (``xrelp2p``)
  beside the Scene series in two ways: as a *control* in a difference-in-differences with
  weekly relative-time bins (:class:`ComparisonDiD`), and as a possible *destination*,
  through the P2P series' own ITS effect. :func:`comparison_reading` says in words which
  reading the data support.

See ``docs/comparison.md`` for the models, the two readings and numbers on SPARKS.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from raidstudy.errors import DataError, ModelError, ParameterError, RaidstudyError

__all__ = [
    "SCENE_FEEDS", "P2P_FEEDS", "WINDOWS",
    "family_series", "comparison_series", "window_relative",
    "family_effects", "FamilyEffects",
    "ComparisonDiD", "DiDResults",
    "p2p_comparison", "P2PComparison", "comparison_reading",
]

#: The Scene feeds of the study's default outcome.
SCENE_FEEDS = ("#pre@corrupt", "xrel")
#: The P2P feed of the bundled data.
P2P_FEEDS = ("xrelp2p",)
#: The two windows every effect is reported over: the whole post window, and its start.
WINDOWS = ("post", "early")
_MODELS = ("event_study", "its")
_COV_TYPES = ("ewc", "driscoll-kraay")


# --------------------------------------------------------------------------- defaults and data
def _study_defaults() -> dict[str, Any]:
    """The study's default parameters (the notebook's ``parameters`` cell)."""
    from raidstudy.study.parameters import default_parameters

    return default_parameters()


def _split(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return None
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def family_series(*, feeds: Iterable[str] | str = SCENE_FEEDS, families: Iterable[str] | str | None = None,
                  measure: str = "n_releases", data_dir: Any = None) -> pd.DataFrame:
    """Daily releases of each section family on the selected feeds (bundled data).

    Parameters
    ----------
    feeds : str or list of str
        Feeds to add up (default: the Scene feeds of the study, ``#pre@corrupt`` + ``xrel``).
    families : str or list of str, optional
        Families (:data:`raidstudy.data.releases.FAMILIES`); default all.
    measure : {"n_releases", "n_nuked"}
    data_dir : path, optional
        Folder of processed files (default ``data/processed``).

    Returns
    -------
    pandas.DataFrame
        One float column per family on a daily ``DatetimeIndex``, NaN where a feed is not
        covered (:func:`raidstudy.data.indicators.indicator_series`).
    """
    from raidstudy.data import indicators
    from raidstudy.data.releases import FAMILIES

    fams = _split(families) or list(FAMILIES)
    cols = {f: indicators.indicator_series(feeds=_split(feeds), families=[f], measure=measure, data_dir=data_dir)
            for f in fams}
    return pd.DataFrame(cols)


def comparison_series(*, treated_feeds: Iterable[str] | str = SCENE_FEEDS,
                      control_feeds: Iterable[str] | str = P2P_FEEDS, families: Iterable[str] | str | None = None,
                      measure: str = "n_releases", data_dir: Any = None) -> pd.DataFrame:
    """The Scene (``scene``) and P2P (``p2p``) daily series of the bundled data, side by side.

    Raises
    ------
    ParameterError
        An unknown feed (naming ``control_feeds`` or ``treated_feeds``), or feeds in both.
    """
    from raidstudy.data import indicators

    tf, cf = _split(treated_feeds), _split(control_feeds)
    if not cf:
        raise ParameterError("control_feeds", control_feeds, "names no feed", hint="e.g. control_feeds='xrelp2p'")
    overlap = sorted(set(tf or []) & set(cf))
    if overlap:
        raise ParameterError("control_feeds", control_feeds, f"feeds {overlap} are in both series",
                             hint="a comparison series must not contain the treated series")
    out = {}
    for name, feeds, label in (("scene", tf, "treated_feeds"), ("p2p", cf, "control_feeds")):
        try:
            out[name] = indicators.indicator_series(feeds=feeds, families=_split(families), measure=measure,
                                                    data_dir=data_dir)
        except ParameterError as err:
            if err.name == "feeds":
                raise ParameterError(label, err.value, err.problem, accepted=err.accepted) from None
            raise
    return pd.DataFrame(out)


def _resolve_event(event: Any) -> tuple[pd.Timestamp, str]:
    """A date, or a catalogue id (``sparks_2020``): the date and a label for sentences."""
    if isinstance(event, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", event.strip()):
        from raidstudy.data.events import get_event

        ev = get_event(event.strip())
        return pd.Timestamp(ev.date), ev.name
    try:
        ts = pd.Timestamp(event)
    except (TypeError, ValueError):
        raise ParameterError("event", event, "is neither a date (YYYY-MM-DD) nor an event id of the catalogue",
                             hint="see `raidstudy events`") from None
    if ts is pd.NaT:
        raise ParameterError("event", event, "is not a date", hint="write it as YYYY-MM-DD")
    return ts, f"the event of {ts.date()}"


def _window(data: pd.DataFrame, event: Any, event_ts: pd.Timestamp, *, pre_periods: int, post_periods: int,
            min_pre: int, min_post: int) -> pd.DataFrame:
    """``[t0 - pre_periods, t0 + post_periods)`` of a daily frame, refusing events too near an edge."""
    if not isinstance(data.index, pd.DatetimeIndex):
        raise DataError("the series must be indexed by date (a daily DatetimeIndex); got "
                        f"{type(data.index).__name__}")
    for name, v in (("pre_periods", pre_periods), ("post_periods", post_periods)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ParameterError(name, v, "must be a whole number of periods >= 1")
    data = data.sort_index()
    if data.index.has_duplicates:
        raise DataError(f"the series has duplicate dates (first {data.index[data.index.duplicated()][0].date()})")
    data = data.asfreq("D")  # absent days become missing periods, never zeros
    idx = data.index
    pos = int(idx.searchsorted(event_ts))
    if pos >= len(idx) or event_ts < idx[0]:
        raise ParameterError("event", event, f"lies outside the data ({idx[0].date()} to {idx[-1].date()})")
    lo, hi = max(0, pos - int(pre_periods)), min(len(idx), pos + int(post_periods))
    n_pre, n_post = pos - lo, hi - pos
    if n_pre < min_pre:
        raise ParameterError(
            "event", event, f"is too close to the start of the data: {n_pre} period(s) before it in the window "
                            f"(data from {idx[0].date()}), at least {min_pre} needed",
            hint="choose a later event or a series that starts earlier")
    if n_post < min_post:
        raise ParameterError(
            "event", event, f"is too close to the end of the data: {n_post} period(s) from it on "
                            f"(data to {idx[-1].date()}), at least {min_post} needed",
            hint="choose an earlier event, or fewer early_periods")
    return data.iloc[lo:hi]


# --------------------------------------------------------------------------- relative effect over a window
def window_relative(results, *, first: int = 0, last: int | None = None, alpha: float = 0.05) -> dict[str, Any]:
    r"""Relative effect ``sum(observed) / sum(counterfactual) - 1`` over periods ``first..last`` after the event.

    The same quantity and interval as :meth:`ITSResults.effects()["relative"]
    <raidstudy.models.its.ITSResults.effects>`, restricted to a stretch of the post window
    (``first=0, last=None`` reproduces it).

    Parameters
    ----------
    results : ITSResults or EventStudyResults
        A fit of a count family or the gaussian family, without control series.
    first, last : int
        Periods after the event (0 is the event period), inclusive; ``last=None`` runs to
        the end of the series.
    alpha : float
        ``1 - alpha`` intervals.

    Returns
    -------
    dict
        ``estimate`` (relative effect), ``log_ratio`` (its log, count families), ``std_error``
        (of the log counterfactual sum, or of the sum for gaussian), ``critical_value``,
        ``ci_low``/``ci_high``, ``pct``/``pct_ci_low``/``pct_ci_high``, ``p_value``,
        ``n_observed``, ``observed``, ``counterfactual`` and the ``contrast`` vector.

    Notes
    -----
    With the observed sum :math:`S = \sum_{t \in W} y_t` and the counterfactual sum
    :math:`\hat C = \sum_{t \in W} \exp(x_t^{cf\prime}\hat\beta)` over the observed periods
    :math:`W`, the interval of :math:`\log \hat C` is :math:`\log \hat C \pm q\,\mathrm{se}`
    with the delta-method contrast :math:`c = \sum_t \hat\mu^{cf}_t x^{cf}_t / \hat C`, the
    fit's covariance and the critical value :math:`q` of that contrast (for EWC: simulated
    for the design); the relative effect's interval is :math:`S / \hat C e^{\mp q\,\mathrm{se}} - 1`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.its import ITS
    >>> from raidstudy.models.comparison import window_relative
    >>> idx = pd.date_range("2020-01-01", periods=200, freq="D")          # simulated
    >>> y = pd.Series(np.random.default_rng(1).poisson(np.where(np.arange(200) >= 150, 50, 100)),
    ...               index=idx, name="simulated")
    >>> res = ITS(y, event=idx[150], family="poisson", slope=False).fit()
    >>> round(window_relative(res, first=0, last=27)["estimate"], 1)
    -0.5
    """
    m = results.model
    if getattr(m, "controls", None):
        raise ModelError("window_relative takes a fit of one series; this model has control series")
    T = results._treated
    k = T["tpos"] - m.event_pos
    n_post = int(np.max(k)) + 1
    last_ = n_post - 1 if last is None else int(last)
    if not (isinstance(first, (int, np.integer)) and 0 <= first <= last_ < n_post):
        raise ParameterError("first", (first, last), f"must satisfy 0 <= first <= last < {n_post} "
                                                     "(periods from the event to the end of the series)")
    sel = (k >= first) & (k <= last_) & ~T["missing"]
    if not sel.any():
        raise DataError(f"no observed period between {first} and {last_} periods after the event")
    b = results.params.to_numpy()
    V = results.cov_params.to_numpy()
    Xp = T["Xcf"][sel]
    count = results.family != "gaussian"
    cf = results._inv_link(Xp @ b + T["off"][sel])
    S_obs, S_cf = float(T["y"][sel].sum()), float(cf.sum())
    c = (cf @ Xp) / S_cf if count else Xp.sum(axis=0)
    se = float(np.sqrt(max(c @ V @ c, 0.0)))
    q = float(results.critical_value(c, alpha))
    if count:
        lo, hi = S_obs / (S_cf * math.exp(q * se)) - 1.0, S_obs / (S_cf * math.exp(-q * se)) - 1.0
        log_ratio = math.log(S_obs / S_cf) if S_obs > 0 else -math.inf
        stat = (math.log(S_cf) - math.log(S_obs)) / se if S_obs > 0 and se > 0 else float("nan")
    else:
        lo, hi = S_obs / (S_cf + q * se) - 1.0, S_obs / (S_cf - q * se) - 1.0 if S_cf > q * se else math.inf
        log_ratio = math.log(S_obs / S_cf) if S_obs > 0 and S_cf > 0 else float("nan")
        stat = (S_cf - S_obs) / se if se > 0 else float("nan")
    p = float(results._contrast_pvalue(c, stat)) if math.isfinite(stat) else float("nan")
    rel = S_obs / S_cf - 1.0
    return {"estimate": rel, "log_ratio": log_ratio, "std_error": se, "critical_value": q,
            "ci_low": lo, "ci_high": hi, "pct": 100 * rel, "pct_ci_low": 100 * lo, "pct_ci_high": 100 * hi,
            "p_value": p, "first": int(first), "last": last_, "n_observed": int(sel.sum()),
            "observed": S_obs, "counterfactual": S_cf, "contrast": c}


# --------------------------------------------------------------------------- one-series fits
def _its_kwargs(defaults: Mapping[str, Any], model_family: str | None, exclude: int | None) -> dict[str, Any]:
    return dict(family=model_family or defaults["model_family"],
                exclude=defaults["transition_periods"] if exclude is None else exclude)


def _fit_one(df: pd.DataFrame, column: str, event_ts: pd.Timestamp, *, model: str, its_kw: Mapping[str, Any],
             fit_kw: Mapping[str, Any]):
    from raidstudy.models.its import ITS, EventStudy

    cls = EventStudy if model == "event_study" else ITS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = cls(df[[column]], outcome=column, event=event_ts, **its_kw).fit(**fit_kw)
    notes = sorted({str(w.message) for w in caught if "overflow" not in str(w.message)})
    return res, notes


def _check_model(model: str) -> None:
    if model not in _MODELS:
        raise ParameterError("model", model, "is not a one-series model of the comparison", accepted=_MODELS)


# --------------------------------------------------------------------------- shared results behaviour
class _EffectSet:
    """Estimates on the log scale with per-contrast critical values (house-style accessors)."""

    _entries: dict[Any, tuple[Any, np.ndarray, float, float]]  # key -> (results, contrast, estimate, se)
    _index_names: list[str]

    def _index(self) -> pd.MultiIndex:
        return pd.MultiIndex.from_tuples(list(self._entries), names=self._index_names)

    @property
    def params(self) -> pd.Series:
        """Log ratio of observed to counterfactual (``log(1 + relative effect)``)."""
        return pd.Series([e[2] for e in self._entries.values()], index=self._index(), name="estimate", dtype=float)

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of :attr:`params` (delta method; the fit's covariance)."""
        return pd.Series([e[3] for e in self._entries.values()], index=self._index(), name="std_error", dtype=float)

    def critical_values(self, alpha: float = 0.05) -> pd.Series:
        """Each estimate's two-sided ``1 - alpha`` critical value (simulated fixed-b under EWC)."""
        return pd.Series([float(r.critical_value(c, alpha)) for r, c, _, _ in self._entries.values()],
                         index=self._index(), name="critical_value", dtype=float)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """``1 - alpha`` intervals of :attr:`params` (columns ``lower``, ``upper``)."""
        q = self.critical_values(alpha)
        return pd.DataFrame({"lower": self.params - q * self.std_errors, "upper": self.params + q * self.std_errors})


def _fmt_pct(x: float) -> str:
    if not math.isfinite(x):
        return "+inf%" if x > 0 else "n/a"
    return f"{x:+.1f}%" if abs(x) < 10 else f"{x:+.0f}%"


def _ci_text(e: Mapping[str, Any], alpha: float) -> str:
    return (f"{_fmt_pct(e['pct'])} ({100 * (1 - alpha):.0f}% CI {_fmt_pct(e['pct_ci_low'])} to "
            f"{_fmt_pct(e['pct_ci_high'])})")


# --------------------------------------------------------------------------- family effects
@dataclass
class FamilyEffects(_EffectSet):
    """Effects of one event on each section family's series (from :func:`family_effects`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per requested family: ``status`` (``estimated`` / ``skipped``), ``reason``
        (why a family was skipped), ``pre_mean`` / ``post_mean`` (mean daily count before /
        from the event), ``n_pre`` (observed pre-event periods), and for each window ``w`` in
        ``post``, ``early``: ``w_pct``, ``w_pct_ci_low``, ``w_pct_ci_high``, ``w_p_value``,
        ``w_crit`` (the contrast's critical value); ``notes`` holds fit warnings.
    results : dict
        The fitted model of each estimated family.
    skipped : dict
        Family -> reason, for families not estimated.
    """

    table: pd.DataFrame
    results: dict[str, Any]
    skipped: dict[str, str]
    event: pd.Timestamp
    event_label: str
    alpha: float
    early_periods: int
    model: str
    cov_description: str
    _entries: dict[Any, tuple[Any, np.ndarray, float, float]] = field(default_factory=dict, repr=False)
    _index_names: list[str] = field(default_factory=lambda: ["family", "window"], repr=False)

    def summary(self) -> str:
        """A plain-text table: each family's effect over both windows, skipped families with reasons."""
        a = self.alpha
        lines = [f"Effects of {self.event_label} ({self.event.date()}) by section family",
                 f"model: {self.model}; {self.cov_description}",
                 f"{'family':<8} {'post window':<36} {'first ' + str(self.early_periods) + ' periods':<36}"]
        for _, r in self.table.iterrows():
            if r["status"] != "estimated":
                lines.append(f"{r['family']:<8} skipped: {r['reason']}")
                continue
            cells = [_ci_text({k: r[f'{w}_{k}'] for k in ('pct', 'pct_ci_low', 'pct_ci_high')}, a)
                     for w in WINDOWS]
            lines.append(f"{r['family']:<8} {cells[0]:<36} {cells[1]:<36}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Plain types for ``results.json``: the table's rows, the model and the windows."""
        rows = []
        for rec in self.table.to_dict(orient="records"):
            rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()})
        return {"event": self.event, "event_label": self.event_label, "alpha": self.alpha, "model": self.model,
                "cov_description": self.cov_description, "early_periods": int(self.early_periods),
                "families": rows, "skipped": dict(self.skipped)}

    def plot(self, **kwargs: Any):
        """The side-by-side figure; see :func:`raidstudy.report.comparison_plot.plot_family_effects`."""
        from raidstudy.report.comparison_plot import plot_family_effects

        return plot_family_effects(effects=self, **kwargs)


def family_effects(data: pd.DataFrame | None = None, *, event: Any = "sparks_2020",
                   families: Iterable[str] | str | None = None, feeds: Iterable[str] | str | None = None,
                   model: str = "event_study", pre_periods: int | None = None, post_periods: int | None = None,
                   early_periods: int = 28, min_pre_mean: float = 5.0, model_family: str | None = None,
                   exclude: int | None = None, ewc_terms: int | None = None, seed: int | None = None,
                   alpha: float = 0.05, data_dir: Any = None) -> FamilyEffects:
    r"""Fit the study's model to each section family's series and set the effects side by side.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        One column per family on a daily ``DatetimeIndex`` (NaN = missing). Default: the
        bundled data, :func:`family_series` on ``feeds``.
    event : date-like or str
        The event date, or a catalogue id (default ``sparks_2020``, 2020-08-25).
    families : str or list of str, optional
        Families to fit (default: every column; ``"tv,music"`` or a list).
    feeds : str or list of str, optional
        Feeds of the bundled data (default: the study's, ``#pre@corrupt`` + ``xrel``).
    model : {"event_study", "its"}
        ``event_study`` (default, the study's headline model: one effect per 7-day bin after
        the event, 4 lead bins) or ``its`` (the level-and-slope segmented regression).
    pre_periods, post_periods : int, optional
        The window ``[t0 - pre_periods, t0 + post_periods)`` (default: the study's, 365 and 120).
    early_periods : int
        Length of the early window from the event on (default 28: the first four weeks).
    min_pre_mean : float
        A family whose mean count per observed pre-event period is below this is skipped
        (default 5 releases a day): its relative effect would rest on a handful of releases.
    model_family, exclude, ewc_terms, seed : optional
        Outcome family, transition periods left out, EWC cosine terms and the seed of the
        simulated critical values (default: the study's, ``negbin``, 1, 6, 20200825).
    alpha : float
        ``1 - alpha`` intervals.
    data_dir : path, optional
        Folder of processed files when ``data`` is not given.

    Returns
    -------
    FamilyEffects

    Raises
    ------
    ParameterError
        A family filter that selects nothing (or names a family the data do not hold), an
        unknown model, or an event too close to the edge of the data (fewer than
        ``5 * 7 + 28`` periods before it, or fewer than ``early_periods`` from it on).

    Notes
    -----
    For family :math:`f` with daily count :math:`y_{ft}`, the event-study model is

    .. math::

        \log \mu_{ft} = \beta_{f0} + \beta_{f1} t + \sum_{k \ne -1} \delta_{fk} 1[t \in B_k]
                        + \sum_{d} \gamma_{fd} 1[\mathrm{dow}_t = d],
        \qquad y_{ft} \sim \mathrm{NB2}(\mu_{ft}, \alpha_f),

    with weekly bins :math:`B_k` relative to the event (``model="its"``: level and slope
    terms instead of the bins), each family fitted on its own. The counterfactual
    :math:`\mu^{cf}_{ft}` sets every event term to zero. Over a window :math:`W` (the post
    window, or its first ``early_periods`` periods) the relative effect is
    :math:`\sum_{t\in W} y_{ft} / \sum_{t\in W} \mu^{cf}_{ft} - 1`, with the interval of
    :func:`window_relative` (EWC covariance, the contrast's own simulated critical value).
    :attr:`FamilyEffects.params` holds its logarithm.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.comparison import family_effects
    >>> idx = pd.date_range("2020-01-01", periods=200, freq="D")          # simulated
    >>> rng = np.random.default_rng(0)
    >>> post = np.arange(200) >= 150
    >>> data = pd.DataFrame({"tv": rng.poisson(np.where(post, 100, 200)),
    ...                      "books": rng.poisson(1, 200)}, index=idx).astype(float)
    >>> fe = family_effects(data, event=idx[150], pre_periods=150, post_periods=50, model="its",
    ...                     model_family="poisson")
    >>> fe.table[["family", "status"]].values.tolist()
    [['tv', 'estimated'], ['books', 'skipped']]
    >>> round(fe.table.loc[0, "post_pct"])
    -50
    """
    _check_model(model)
    d = _study_defaults()
    event_ts, label = _resolve_event(event)
    if data is None:
        from raidstudy.data.releases import FAMILIES

        wanted = _split(families)
        if wanted is not None:
            bad = [f for f in wanted if f not in FAMILIES]
            if bad or not wanted:
                raise ParameterError("families", families, "selects no section family" if not wanted
                                     else f"unknown family {bad[0]!r}", accepted=FAMILIES)
        data = family_series(feeds=feeds if feeds is not None else d["feeds"], families=wanted, data_dir=data_dir)
    elif feeds is not None:
        raise ParameterError("feeds", feeds, "selects bundled data, which data= replaces",
                             hint="leave feeds unset when passing data")
    if not isinstance(data, pd.DataFrame) or data.shape[1] == 0:
        raise DataError("data must be a DataFrame with one column per section family")
    avail = [str(c) for c in data.columns]
    wanted = _split(families)
    if wanted is None:
        fams = avail
    else:
        bad = [f for f in wanted if f not in avail]
        if bad:
            raise ParameterError("families", families, f"family {bad[0]!r} is not in the data", accepted=avail)
        fams = list(dict.fromkeys(wanted))
    if not fams:
        raise ParameterError("families", families, "selects no section family", accepted=avail)
    if not isinstance(early_periods, (int, np.integer)) or isinstance(early_periods, bool) or early_periods < 1:
        raise ParameterError("early_periods", early_periods, "must be a whole number of periods >= 1")
    pre = d["pre_periods"] if pre_periods is None else pre_periods
    post = d["post_periods"] if post_periods is None else post_periods
    if isinstance(post, (int, np.integer)) and early_periods > post:
        raise ParameterError("early_periods", early_periods, f"is longer than the post window ({post} periods)")
    win = _window(data[fams].astype(float), event, event_ts, pre_periods=pre, post_periods=post,
                  min_pre=5 * 7 + 28, min_post=int(early_periods))
    its_kw = _its_kwargs(d, model_family, exclude)
    fit_kw = dict(cov_type="ewc", ewc_terms=d["ewc_terms"] if ewc_terms is None else ewc_terms,
                  seed=d["seed"] if seed is None else seed)
    pos = int(win.index.searchsorted(event_ts))
    rows, results, skipped, entries = [], {}, {}, {}
    cov_description = ""
    for f in fams:
        y = win[f]
        pre_obs = y.iloc[:pos].dropna()
        row: dict[str, Any] = {"family": f, "status": "skipped", "reason": "", "notes": "",
                               "n_pre": int(len(pre_obs)),
                               "pre_mean": float(pre_obs.mean()) if len(pre_obs) else float("nan"),
                               "post_mean": float(y.iloc[pos:].mean()) if y.iloc[pos:].notna().any() else float("nan")}
        for w in WINDOWS:
            for k in ("pct", "pct_ci_low", "pct_ci_high", "p_value", "crit"):
                row[f"{w}_{k}"] = float("nan")
        if not len(pre_obs) or not row["pre_mean"] >= min_pre_mean:
            reason = (f"{row['pre_mean']:.2f} releases per period before the event, below min_pre_mean="
                      f"{min_pre_mean:g}" if len(pre_obs) else "no observed period before the event")
            row["reason"] = skipped[f] = reason
            rows.append(row)
            continue
        try:
            res, notes = _fit_one(win, f, event_ts, model=model, its_kw=its_kw, fit_kw=fit_kw)
            effs = {"post": window_relative(res, alpha=alpha),
                    "early": window_relative(res, first=0, last=int(early_periods) - 1, alpha=alpha)}
        except RaidstudyError as err:
            row["reason"] = skipped[f] = f"could not be estimated: {err}"
            rows.append(row)
            continue
        results[f] = res
        cov_description = res.cov_description
        row.update(status="estimated", notes="; ".join(notes))
        for w, e in effs.items():
            row.update({f"{w}_pct": e["pct"], f"{w}_pct_ci_low": e["pct_ci_low"], f"{w}_pct_ci_high": e["pct_ci_high"],
                        f"{w}_p_value": e["p_value"], f"{w}_crit": e["critical_value"]})
            entries[(f, w)] = (res, e["contrast"], e["log_ratio"], e["std_error"])
        rows.append(row)
    table = pd.DataFrame(rows)
    return FamilyEffects(table=table, results=results, skipped=skipped, event=event_ts, event_label=label,
                         alpha=alpha, early_periods=int(early_periods), model=model,
                         cov_description=cov_description, _entries=entries)


# --------------------------------------------------------------------------- difference in differences
class ComparisonDiD:
    r"""Dynamic difference-in-differences of a treated series against one comparison series.

    Parameters
    ----------
    data : pandas.DataFrame
        Two daily count columns on a ``DatetimeIndex`` (NaN = missing), e.g. from
        :func:`comparison_series`; already cut to the estimation window.
    treated, control : str
        Their column names (default ``scene`` and ``p2p``).
    event : date-like
        The event date (period 0).
    bin_width : int
        Periods per relative-time bin (default 7: weeks from the event).
    n_leads : int
        Lead bins before the event besides the reference bin ``-1`` (default 4).
    exclude : int
        Transition periods from the event on left out of the fit (default 1).
    log_shift : float
        The outcome is ``log(y + log_shift)``; 0 (default) needs positive counts.
    dow : bool
        Weekday terms of the treated-minus-control difference (default True).

    Notes
    -----
    The panel has two units :math:`g \in \{S, P\}` (treated, control) and days :math:`t`:

    .. math::

        \log y_{gt} = a_g + \lambda_t
          + D_g \Big( \theta\, t + \sum_{d} \gamma_d 1[\mathrm{dow}_t = d]
          + \sum_{k \ne -1} \delta_k 1[t \in B_k] \Big) + e_{gt},

    with unit effects :math:`a_g`, day effects :math:`\lambda_t` (every shock common to
    both series, including their shared weekly pattern), :math:`D_g = 1` for the treated
    unit, a treated-specific linear trend and weekday pattern, and relative-time bins
    :math:`B_k` of ``bin_width`` days (leads ``lead_j`` before the event, ``bin_k`` after,
    the bin just before the event the reference). :math:`\delta_k` is the change of the
    treated series relative to the control's, in log points, against the pre-event line of
    their difference. With two units and day effects this model is exactly the regression
    of the difference :math:`\Delta_t = \log y_{St} - \log y_{Pt}` on a constant, the
    trend, the weekday terms and the bins (days where either series is missing drop out),
    which is how the default covariance is computed.

    *Covariance.* With two units clustering is impossible (two clusters), and the scores
    of the two units on a day are mirror images of each other, so every panel-robust
    covariance reduces to a long-run variance of the difference series' scores over time.
    ``cov_type="ewc"`` (default) estimates it with the equal-weighted cosine estimator (6
    terms) and takes critical values from the fixed-b distribution simulated for this
    design, the choice whose coverage the project measured on series as persistent as these
    (``docs/coverage.md``: Newey-West-type estimators covered 0.57-0.66 there).
    ``cov_type="driscoll-kraay"`` fits the stacked panel with ``linearmodels.PanelOLS``
    (unit and day effects) and the Driscoll-Kraay (Bartlett-kernel) covariance with normal
    critical values: the textbook panel choice, kept as a cross-check; it shares the
    Newey-West under-coverage on persistent series. The point estimates of both agree to
    numerical precision.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.comparison import ComparisonDiD
    >>> idx = pd.date_range("2020-01-01", periods=300, freq="D")          # simulated
    >>> rng = np.random.default_rng(2)
    >>> common = 0.1 * np.sin(np.arange(300) / 9)                        # shocks both series share
    >>> post = np.arange(300) >= 200
    >>> data = pd.DataFrame({"scene": rng.poisson(np.exp(7 + common - 0.5 * post)),
    ...                      "p2p": rng.poisson(np.exp(5 + common))}, index=idx).astype(float)
    >>> e = ComparisonDiD(data, event=idx[200]).fit().effect("post")    # planted: -0.5 log points
    >>> round(e["estimate"], 2), bool(e["ci_low"] < -0.5 < e["ci_high"])
    (-0.44, True)
    """

    def __init__(self, data: pd.DataFrame, *, event: Any, treated: str = "scene", control: str = "p2p",
                 bin_width: int = 7, n_leads: int = 4, exclude: int = 1, log_shift: float = 0.0, dow: bool = True):
        from raidstudy.models.its import EventStudy

        if not isinstance(data, pd.DataFrame):
            raise DataError("data must be a DataFrame with the treated and the control series as columns")
        for name, col in (("treated", treated), ("control", control)):
            if col not in data.columns:
                raise ParameterError(name, col, "is not a column of the data", accepted=[str(c) for c in data.columns])
        if treated == control:
            raise ParameterError("control", control, "is the treated series itself")
        if not isinstance(log_shift, (int, float)) or isinstance(log_shift, bool) or log_shift < 0:
            raise ParameterError("log_shift", log_shift, "must be a number >= 0")
        self.event_ts, self.event_label = _resolve_event(event)
        self.treated, self.control = treated, control
        self.log_shift = float(log_shift)
        df = data[[treated, control]].astype(float)
        pos = int(df.index.searchsorted(self.event_ts))
        for col in (treated, control):
            pre = df[col].iloc[:pos].dropna()
            if not len(pre):
                raise DataError(f"the {'control' if col == control else 'treated'} series {col!r} has no observed "
                                "period before the event")
            if not (pre > 0).any():
                raise DataError(f"the {'control' if col == control else 'treated'} series {col!r} is zero over the "
                                f"whole pre-event period ({len(pre)} observed periods); it cannot serve in a "
                                "comparison on the log scale")
            obs = df[col].dropna()
            if (obs < 0).any():
                raise DataError(f"series {col!r} has negative counts")
            if self.log_shift == 0 and (obs == 0).any():
                raise DataError(f"series {col!r} has {int((obs == 0).sum())} zero period(s) (first "
                                f"{obs.index[obs == 0][0].date()}); log(0) is undefined: pass log_shift=1 to use "
                                "log(y + 1)")
        self.data = df
        diff = np.log(df[treated] + self.log_shift) - np.log(df[control] + self.log_shift)
        self.difference = diff.rename("log_difference")
        self._es = EventStudy(self.difference.to_frame(), outcome="log_difference", event=self.event_ts,
                              family="gaussian", bin_width=bin_width, n_leads=n_leads, exclude=exclude, dow=dow)
        self.bins = self._es.bins
        self.bin_width = int(self._es.bin_width)
        self.n_leads = int(n_leads)
        self.exclude = int(exclude)
        self.dow = bool(dow)

    @property
    def terms(self) -> list[str]:
        """The treated-specific terms (all but the constant, which is the unit effect)."""
        return [n for n in self._es.design.names if n != "const"]

    def panel(self) -> pd.DataFrame:
        """The stacked two-unit panel (``unit``, ``date`` MultiIndex): ``log_y`` and the treated-specific terms.

        Days where either series is missing, and the transition periods, are left out.
        """
        d = self._es.design
        keep = d.fit
        dates = self._es.frame.index[d.tpos[keep]]
        X = pd.DataFrame(d.X[keep], index=dates, columns=d.names).drop(columns="const")
        parts = []
        for unit, is_t in ((self.treated, 1.0), (self.control, 0.0)):
            p = (X * is_t).copy()
            p.insert(0, "log_y", np.log(self.data[unit].reindex(dates).to_numpy() + self.log_shift))
            p["unit"] = unit
            p["date"] = dates
            parts.append(p)
        return pd.concat(parts).set_index(["unit", "date"])

    def fit(self, *, cov_type: str = "ewc", ewc_terms: int | None = None, seed: int | None = None,
            bandwidth: float | None = None) -> "DiDResults":
        """Estimate the model.

        Parameters
        ----------
        cov_type : {"ewc", "driscoll-kraay"}
            See the class notes for the choice.
        ewc_terms : int, optional
            EWC cosine terms (default: the study's, 6).
        seed : int, optional
            Seed of the simulated fixed-b critical values (default: the study's).
        bandwidth : float, optional
            Driscoll-Kraay Bartlett bandwidth (default: linearmodels' automatic choice).

        Returns
        -------
        DiDResults
        """
        if cov_type not in _COV_TYPES:
            raise ParameterError("cov_type", cov_type, "is not a covariance of the comparison DiD",
                                 accepted=_COV_TYPES)
        d = _study_defaults()
        if cov_type == "ewc":
            if bandwidth is not None:
                raise ParameterError("bandwidth", bandwidth, "applies to cov_type='driscoll-kraay' only")
            res = self._es.fit(cov_type="ewc", ewc_terms=d["ewc_terms"] if ewc_terms is None else ewc_terms,
                               seed=d["seed"] if seed is None else seed)
            return DiDResults(self, its=res)
        from linearmodels import PanelOLS

        panel = self.panel()
        exog = panel.drop(columns="log_y")
        mod = PanelOLS(panel["log_y"], exog, entity_effects=True, time_effects=True)
        n_time = int(panel.index.get_level_values("date").nunique())
        if bandwidth is None:
            # the rule of thumb floor(4 (T/100)^(2/9)), as linearmodels' default, recorded here
            bandwidth = float(np.floor(4 * (n_time / 100) ** (2 / 9)))
        if not isinstance(bandwidth, (int, float)) or isinstance(bandwidth, bool) or not 0 <= bandwidth < n_time:
            raise ParameterError("bandwidth", bandwidth, f"must be a number from 0 to below {n_time} (the days "
                                                         "in the panel)")
        res = mod.fit(cov_type="kernel", kernel="bartlett", bandwidth=float(bandwidth))
        return DiDResults(self, panel_results=res, bandwidth=float(bandwidth))


class DiDResults:
    """Results of :meth:`ComparisonDiD.fit`.

    Attributes
    ----------
    params, std_errors, pvalues : pandas.Series
        The treated-specific terms (trend, weekday, ``lead_j``, ``bin_k``), log points.
    cov_type, cov_description : str
    model : ComparisonDiD
    """

    def __init__(self, model: ComparisonDiD, *, its=None, panel_results=None, bandwidth: float | None = None):
        self.model = model
        self._its = its
        self._panel = panel_results
        terms = model.terms
        if its is not None:
            self.cov_type = "ewc"
            self.cov_description = (f"EWC (equal-weighted cosine) long-run variance of the treated-minus-control "
                                    f"difference, {its.ewc_terms} cosine terms; critical values and p-values from "
                                    "the fixed-b distribution simulated for this design")
            self.params = its.params[terms].rename("estimate")
            self._V = its.cov_params.loc[terms, terms]
            self.nobs = int(its.nobs)
        else:
            self.cov_type = "driscoll-kraay"
            self.bandwidth = bandwidth
            self.cov_description = (f"Driscoll-Kraay (Bartlett kernel, bandwidth {bandwidth:g}) from linearmodels "
                                    "PanelOLS with unit and day effects; normal critical values")
            self.params = panel_results.params[terms].rename("estimate")
            self._V = panel_results.cov.loc[terms, terms]
            self.nobs = int(panel_results.nobs)
        self.std_errors = pd.Series(np.sqrt(np.diag(self._V)), index=terms, name="std_error")
        self.pvalues = pd.Series([self._p(self._c(t), self.params[t] / self.std_errors[t]) for t in terms],
                                 index=terms, name="p_value")

    # ------------------------------------------------------------------ contrasts
    @property
    def cov_params(self) -> pd.DataFrame:
        return self._V.copy()

    def _c(self, term: str) -> np.ndarray:
        c = np.zeros(len(self.params))
        c[self.params.index.get_loc(term)] = 1.0
        return c

    def _full(self, c: np.ndarray) -> np.ndarray:
        """A contrast on the treated terms as a contrast on the ITS fit's terms (with the constant)."""
        names = list(self._its.params.index)
        out = np.zeros(len(names))
        for w, t in zip(c, self.params.index):
            out[names.index(t)] = w
        return out

    def critical_value(self, c: np.ndarray, alpha: float = 0.05) -> float:
        """Two-sided critical value of contrast ``c`` (weights on :attr:`params`)."""
        if self._its is not None:
            return float(self._its.critical_value(self._full(c), alpha))
        return float(stats.norm.ppf(1 - alpha / 2))

    def _p(self, c: np.ndarray, t: float) -> float:
        if not math.isfinite(t):
            return float("nan")
        if self._its is not None:
            return float(self._its._contrast_pvalue(self._full(c), t))
        return float(2 * stats.norm.sf(abs(t)))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """``1 - alpha`` intervals, each with its own critical value (columns ``lower``, ``upper``)."""
        q = np.array([self.critical_value(self._c(t), alpha) for t in self.params.index])
        return pd.DataFrame({"lower": self.params - q * self.std_errors, "upper": self.params + q * self.std_errors})

    def _contrast_effect(self, c: np.ndarray, alpha: float) -> dict[str, Any]:
        est = float(c @ self.params.to_numpy())
        se = float(np.sqrt(max(c @ self._V.to_numpy() @ c, 0.0)))
        q = self.critical_value(c, alpha)
        lo, hi = est - q * se, est + q * se
        return {"estimate": est, "std_error": se, "critical_value": q, "ci_low": lo, "ci_high": hi,
                "p_value": self._p(c, est / se if se > 0 else float("nan")),
                "pct": 100 * math.expm1(est), "pct_ci_low": 100 * math.expm1(lo), "pct_ci_high": 100 * math.expm1(hi)}

    def _window_contrast(self, first: int, last: int | None) -> tuple[np.ndarray, int]:
        m = self.model
        k = np.arange(len(m.difference)) - int(m.difference.index.searchsorted(m.event_ts))
        observed = m.difference.notna().to_numpy()
        last_ = int(k.max()) if last is None else int(last)
        c = np.zeros(len(self.params))
        n = 0
        for _, b in m.bins[m.bins["kind"] == "post"].iterrows():
            inside = observed & (k >= max(first, b["first"])) & (k <= min(last_, b["last"]))
            c[self.params.index.get_loc(b["term"])] += inside.sum()
            n += int(inside.sum())
        if n == 0:
            raise DataError(f"no observed period between {first} and {last_} periods after the event")
        return c / n, n

    def effect(self, window: str = "post", *, alpha: float = 0.05, early_periods: int = 28) -> dict[str, Any]:
        r"""The average DiD effect over a window, in log points and as a percentage.

        ``window="post"``: every observed period from the event on; ``"early"``: the first
        ``early_periods``. The estimate is :math:`\sum_{t \in W} \delta_{k(t)} / |W|`, the
        mean over the window's observed days of their bin's effect (transition days count
        with their bin); ``pct`` is :math:`100(e^{\cdot} - 1)`.
        """
        if window not in WINDOWS:
            raise ParameterError("window", window, "is not a window of the comparison", accepted=WINDOWS)
        c, n = self._window_contrast(0, None if window == "post" else int(early_periods) - 1)
        out = self._contrast_effect(c, alpha)
        out.update(window=window, n_observed=n)
        return out

    def path(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per bin (leads, the reference, post bins): estimate, interval, p-value, percentage."""
        df = self.model.bins.copy()
        recs = []
        for term in df["term"]:
            if isinstance(term, str):
                recs.append(self._contrast_effect(self._c(term), alpha))
            else:
                recs.append({"estimate": 0.0, "std_error": np.nan, "critical_value": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "p_value": np.nan, "pct": 0.0, "pct_ci_low": np.nan,
                             "pct_ci_high": np.nan})
        return pd.concat([df.reset_index(drop=True), pd.DataFrame(recs)], axis=1)

    def lead_test(self) -> dict[str, Any]:
        """Joint test that every lead bin is zero (a pre-trend in the difference, or anticipation)."""
        leads = [t for t in self.params.index if t.startswith("lead_")]
        if not leads:
            raise ModelError("the model has no lead bins to test (n_leads=0)")
        if self._its is not None:
            out = self._its.wald_test(leads)
        else:
            R = np.vstack([self._c(t) for t in leads])
            diff = R @ self.params.to_numpy()
            stat = float(diff @ np.linalg.solve(R @ self._V.to_numpy() @ R.T, diff)) / len(leads)
            out = {"statistic": stat, "df": len(leads), "p_value": float(stats.chi2.sf(stat * len(leads), len(leads))),
                   "method": f"Wald against chi2({len(leads)})"}
        out["terms"] = leads
        return out

    def summary(self, *, alpha: float = 0.05, early_periods: int = 28) -> str:
        """Plain text: the aggregate effects, the lead test and the weekly path."""
        m = self.model
        post = self.effect("post", alpha=alpha)
        early = self.effect("early", alpha=alpha, early_periods=early_periods)
        shift = f" + {m.log_shift:g}" if m.log_shift else ""
        lines = [f"Difference in differences: {m.treated} vs {m.control}, {m.event_label} ({m.event_ts.date()})",
                 f"outcome log(y{shift}); {m.bin_width}-day bins, "
                 f"{m.n_leads} leads; nobs {self.nobs}; {self.cov_description}",
                 f"post window:  {_ci_text(post, alpha)}, p = {post['p_value']:.3g}",
                 f"first {early_periods} periods: {_ci_text(early, alpha)}, p = {early['p_value']:.3g}"]
        if m.n_leads:
            lt = self.lead_test()
            lines.append(f"leads jointly zero: p = {lt['p_value']:.3g}")
        p = self.path(alpha)
        lines.append(f"{'bin':>4} {'first':>11} {'estimate':>9} {'ci_low':>8} {'ci_high':>8}")
        for _, r in p.iterrows():
            lines.append(f"{int(r['bin']):>4} {str(pd.Timestamp(r['first_date']).date()):>11} {r['estimate']:>9.3f} "
                         f"{r['ci_low']:>8.3f} {r['ci_high']:>8.3f}")
        return "\n".join(lines)

    def to_dict(self, *, alpha: float = 0.05, early_periods: int = 28) -> dict[str, Any]:
        """Plain types: the model, the effects over both windows, the lead test and the path."""
        m = self.model
        path = []
        for rec in self.path(alpha).to_dict(orient="records"):
            path.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()})
        return {"model": {"treated": m.treated, "control": m.control, "event": m.event_ts,
                          "bin_width": m.bin_width, "n_leads": m.n_leads, "exclude": m.exclude,
                          "log_shift": m.log_shift, "cov_type": self.cov_type,
                          "cov_description": self.cov_description, "nobs": self.nobs},
                "estimates": [{"term": t, "estimate": float(self.params[t]), "std_error": float(self.std_errors[t]),
                               "ci_low": float(ci["lower"]), "ci_high": float(ci["upper"]),
                               "p_value": float(self.pvalues[t])}
                              for t, ci in self.conf_int(alpha).iterrows()],
                "effects": {w: self.effect(w, alpha=alpha, early_periods=early_periods) for w in WINDOWS},
                "lead_test": self.lead_test() if m.n_leads else None, "path": path}


# --------------------------------------------------------------------------- P2P: control and destination
@dataclass
class P2PComparison(_EffectSet):
    """The comparison series as control (DiD) and as destination (its own ITS effect).

    Attributes
    ----------
    did : DiDResults
        The dynamic difference-in-differences (control reading).
    treated_its, control_its : results
        The study's model fitted to each series on its own (the control's is the
        displacement reading).
    """

    did: DiDResults
    treated_its: Any
    control_its: Any
    treated_label: str
    control_label: str
    event: pd.Timestamp
    event_label: str
    alpha: float
    early_periods: int
    _own: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _entries: dict[Any, tuple[Any, np.ndarray, float, float]] = field(default_factory=dict, repr=False)
    _index_names: list[str] = field(default_factory=lambda: ["estimate", "window"], repr=False)

    def own_effect(self, series: str, window: str = "post") -> dict[str, Any]:
        """``treated`` or ``control``: that series' own relative effect (:func:`window_relative`)."""
        if series not in ("treated", "control") or window not in WINDOWS:
            raise ParameterError("series", (series, window), "must be ('treated' or 'control', a window)",
                                 accepted=[(s, w) for s in ("treated", "control") for w in WINDOWS])
        return dict(self._own[series][window])

    def table(self) -> pd.DataFrame:
        """The three estimates over both windows, in percent with intervals and p-values.

        Rows: ``treated_own`` (the treated series' own ITS effect), ``control_own`` (the
        comparison series' own ITS effect: the displacement reading) and ``did`` (treated
        relative to the comparison series: the control reading).
        """
        rows = []
        for key, reading, label in (("treated_own", "own ITS", self.treated_label),
                                    ("control_own", "displacement", self.control_label),
                                    ("did", "control (DiD)", f"{self.treated_label} vs {self.control_label}")):
            for w in WINDOWS:
                e = self._effect(key, w)
                rows.append({"estimate": key, "reading": reading, "series": label, "window": w,
                             "pct": e["pct"], "pct_ci_low": e["pct_ci_low"], "pct_ci_high": e["pct_ci_high"],
                             "p_value": e["p_value"], "critical_value": e["critical_value"]})
        return pd.DataFrame(rows)

    def _effect(self, key: str, window: str) -> dict[str, Any]:
        if key == "did":
            return self.did.effect(window, alpha=self.alpha, early_periods=self.early_periods)
        return self._own["treated" if key == "treated_own" else "control"][window]

    def reading(self, alpha: float | None = None) -> str:
        """In words, which reading of the comparison series the data support (:func:`comparison_reading`)."""
        return comparison_reading(self, alpha=alpha)

    def summary(self) -> str:
        """Plain text: the three estimates over both windows, and the reading."""
        t = self.table()
        lines = [f"{self.control_label} as control and as destination after {self.event_label} "
                 f"({self.event.date()})", self.did.cov_description]
        for _, r in t.iterrows():
            lines.append(f"{r['reading']:<14} {r['series']:<32} {r['window']:<6} "
                         f"{_ci_text(r, self.alpha)}, p = {r['p_value']:.3g}")
        lines.append("")
        lines.append(self.reading())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Plain types: the table, the DiD, the reading and its verdict."""
        rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in self.table().to_dict(orient="records")]
        return {"event": self.event, "event_label": self.event_label, "alpha": self.alpha,
                "early_periods": self.early_periods, "treated": self.treated_label, "control": self.control_label,
                "table": rows, "did": self.did.to_dict(alpha=self.alpha, early_periods=self.early_periods), "reading": self.reading(),
                "verdict": _verdict(self, self.alpha)}

    def plot(self, **kwargs: Any):
        """The DiD path figure; see :func:`raidstudy.report.comparison_plot.plot_p2p_comparison`."""
        from raidstudy.report.comparison_plot import plot_p2p_comparison

        return plot_p2p_comparison(comparison=self, **kwargs)


def p2p_comparison(data: pd.DataFrame | None = None, *, event: Any = "sparks_2020", treated: str = "scene",
                   control: str = "p2p", treated_feeds: Iterable[str] | str | None = None,
                   control_feeds: Iterable[str] | str = P2P_FEEDS, pre_periods: int | None = None,
                   post_periods: int | None = None, early_periods: int = 28, model: str = "event_study",
                   cov_type: str = "ewc", bin_width: int = 7, n_leads: int = 4, log_shift: float = 0.0,
                   model_family: str | None = None, exclude: int | None = None, ewc_terms: int | None = None,
                   seed: int | None = None, alpha: float = 0.05, data_dir: Any = None) -> P2PComparison:
    r"""The P2P series as a control (DiD) and as a destination (its own ITS effect), side by side.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        Daily counts with columns ``treated`` and ``control``. Default: the bundled data,
        :func:`comparison_series` (the Scene feeds of the study against ``xrelp2p``).
    event : date-like or str
        Event date or catalogue id (default ``sparks_2020``).
    treated, control : str
        Column names in ``data``.
    treated_feeds, control_feeds : str or list of str
        Feeds of the bundled data (default: the study's feeds, and ``xrelp2p``).
    pre_periods, post_periods : int, optional
        Window (default: the study's, 365 and 120 days).
    early_periods : int
        The early window (default 28 days: the first four weeks).
    model : {"event_study", "its"}
        The one-series model of the own effects (default: the study's event study).
    cov_type : {"ewc", "driscoll-kraay"}
        Covariance of the DiD (:class:`ComparisonDiD`); the own effects always use EWC.
    bin_width, n_leads, log_shift
        Of the DiD (:class:`ComparisonDiD`).
    model_family, exclude, ewc_terms, seed : optional
        As in :func:`family_effects` (default: the study's).
    alpha : float
    data_dir : path, optional

    Returns
    -------
    P2PComparison

    Raises
    ------
    ParameterError
        A comparison column or feed that does not exist, or an event too close to the
        edge of the data.
    DataError
        A comparison series that is zero (or missing) over the whole pre-event period.

    Notes
    -----
    Three estimates, each over the post window and its first ``early_periods`` days:
    the treated series' own effect :math:`r_S` and the comparison series' own effect
    :math:`r_P` (each :math:`\sum y / \sum \hat\mu^{cf} - 1` from the one-series model),
    and the DiD :math:`e^{\bar\delta} - 1` of :class:`ComparisonDiD`. When the comparison
    series is untouched by the event (:math:`r_P = 0`) the DiD estimates the treated
    series' effect net of common shocks. When the event moved the comparison series too,
    approximately :math:`\bar\delta \approx \log(1 + r_S) - \log(1 + r_P)`: a rise of the
    comparison series (displacement) makes the DiD overstate the drop of the treated
    series. :func:`comparison_reading` turns the numbers into that statement.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.comparison import p2p_comparison
    >>> idx = pd.date_range("2020-01-01", periods=220, freq="D")          # simulated
    >>> rng = np.random.default_rng(4)
    >>> post = np.arange(220) >= 150
    >>> data = pd.DataFrame({"scene": rng.poisson(2000 * np.exp(-0.6 * post)),
    ...                      "p2p": rng.poisson(40 * np.exp(0.4 * post))}, index=idx).astype(float)
    >>> cmp = p2p_comparison(data, event=idx[150], pre_periods=150, post_periods=70)
    >>> cmp.reading().split(":")[0]
    'Displacement'
    """
    _check_model(model)
    d = _study_defaults()
    event_ts, label = _resolve_event(event)
    if data is None:
        data = comparison_series(treated_feeds=treated_feeds if treated_feeds is not None else d["feeds"],
                                 control_feeds=control_feeds, data_dir=data_dir)
        treated, control = "scene", "p2p"
        t_label = "Scene (" + " + ".join(_split(treated_feeds if treated_feeds is not None else d["feeds"]) or ["all"]) + ")"
        c_label = "P2P (" + " + ".join(_split(control_feeds) or []) + ")"
    else:
        t_label, c_label = str(treated), str(control)
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a DataFrame with the treated and the comparison series as columns")
    for name, col in (("treated", treated), ("control", control)):
        if col not in data.columns:
            raise ParameterError(name, col, "is not a column of the data", accepted=[str(c) for c in data.columns])
    pre = d["pre_periods"] if pre_periods is None else pre_periods
    post = d["post_periods"] if post_periods is None else post_periods
    if not isinstance(early_periods, (int, np.integer)) or isinstance(early_periods, bool) or early_periods < 1:
        raise ParameterError("early_periods", early_periods, "must be a whole number of periods >= 1")
    if isinstance(post, (int, np.integer)) and early_periods > post:
        raise ParameterError("early_periods", early_periods, f"is longer than the post window ({post} periods)")
    win = _window(data[[treated, control]].astype(float), event, event_ts, pre_periods=pre, post_periods=post,
                  min_pre=(int(n_leads) + 1) * int(bin_width) + 4 * int(bin_width), min_post=int(early_periods))
    ex = d["transition_periods"] if exclude is None else exclude
    did_model = ComparisonDiD(win, event=event_ts, treated=treated, control=control, bin_width=bin_width,
                              n_leads=n_leads, exclude=ex, log_shift=log_shift)
    did_model.event_label = label
    did = did_model.fit(cov_type=cov_type, ewc_terms=ewc_terms if cov_type == "ewc" else None,
                        seed=seed if cov_type == "ewc" else None)
    its_kw = _its_kwargs(d, model_family, exclude)
    fit_kw = dict(cov_type="ewc", ewc_terms=d["ewc_terms"] if ewc_terms is None else ewc_terms,
                  seed=d["seed"] if seed is None else seed)
    own: dict[str, dict[str, dict[str, Any]]] = {}
    fits = {}
    entries: dict[Any, tuple[Any, np.ndarray, float, float]] = {}
    for key, col in (("treated", treated), ("control", control)):
        res, _ = _fit_one(win, col, event_ts, model=model, its_kw=its_kw, fit_kw=fit_kw)
        fits[key] = res
        own[key] = {"post": window_relative(res, alpha=alpha),
                    "early": window_relative(res, first=0, last=int(early_periods) - 1, alpha=alpha)}
        for w in WINDOWS:
            e = own[key][w]
            entries[(f"{key}_own", w)] = (res, e["contrast"], e["log_ratio"], e["std_error"])
    for w in WINDOWS:
        c, _ = did._window_contrast(0, None if w == "post" else int(early_periods) - 1)
        e = did._contrast_effect(c, alpha)
        entries[("did", w)] = (_DiDCrit(did), c, e["estimate"], e["std_error"])
    return P2PComparison(did=did, treated_its=fits["treated"], control_its=fits["control"], treated_label=t_label,
                         control_label=c_label, event=event_ts, event_label=label, alpha=alpha,
                         early_periods=int(early_periods), _own=own, _entries=entries)


class _DiDCrit:
    """Adapter: the DiD's critical value for a contrast on its terms (for :class:`_EffectSet`)."""

    def __init__(self, did: DiDResults):
        self.did = did

    def critical_value(self, c: np.ndarray, alpha: float = 0.05) -> float:
        return self.did.critical_value(c, alpha)


def _verdict(cmp: P2PComparison, alpha: float) -> str:
    """``displacement``, ``common_fall`` or ``control``: the sign of the comparison series' own effect."""
    e = cmp.own_effect("control", "post") if alpha == cmp.alpha else _refit_alpha(cmp, "control", "post", alpha)
    if e["ci_low"] > 0:
        return "displacement"
    if e["ci_high"] < 0:
        return "common_fall"
    return "control"


def _refit_alpha(cmp: P2PComparison, series: str, window: str, alpha: float) -> dict[str, Any]:
    res = cmp.treated_its if series == "treated" else cmp.control_its
    last = None if window == "post" else cmp.early_periods - 1
    return window_relative(res, first=0, last=last, alpha=alpha)


def comparison_reading(comparison: P2PComparison, *, alpha: float | None = None) -> str:
    """Which reading of the comparison series the data support, in words with numbers and intervals.

    Parameters
    ----------
    comparison : P2PComparison
    alpha : float, optional
        Intervals at ``1 - alpha`` (default: the comparison's).

    Returns
    -------
    str
        Starts with ``Displacement:``, ``Common fall:`` or ``Control:``:

        * **Displacement** when the comparison series' own effect over the post window is
          significantly positive (its interval lies above zero): it is not an untouched
          control, the DiD overstates the treated series' drop, and the treated series' own
          effect is the estimate to quote.
        * **Common fall** when it is significantly negative: either a shock common to both
          series (then the DiD is the better estimate) or the event hit the comparison
          series as well (then the DiD understates the drop); these series cannot tell which.
        * **Control** when its interval includes zero: the data are consistent with an
          untouched comparison series and the DiD is the control reading.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.comparison import p2p_comparison, comparison_reading
    >>> idx = pd.date_range("2020-01-01", periods=220, freq="D")          # simulated
    >>> rng = np.random.default_rng(5)
    >>> post = np.arange(220) >= 150
    >>> data = pd.DataFrame({"scene": rng.poisson(2000 * np.exp(-0.6 * post)),
    ...                      "p2p": rng.poisson(40, 220)}, index=idx).astype(float)
    >>> cmp = p2p_comparison(data, event=idx[150], pre_periods=150, post_periods=70)
    >>> comparison_reading(cmp).split(":")[0]
    'Control'
    """
    a = comparison.alpha if alpha is None else alpha
    own = {(s, w): (comparison.own_effect(s, w) if a == comparison.alpha else _refit_alpha(comparison, s, w, a))
           for s in ("treated", "control") for w in WINDOWS}
    did = {w: comparison.did.effect(w, alpha=a, early_periods=comparison.early_periods) for w in WINDOWS}
    verdict = _verdict(comparison, a)
    T, C, ev = comparison.treated_label, comparison.control_label, comparison.event_label
    n = comparison.early_periods
    p, pe = own[("control", "post")], own[("control", "early")]
    s = own[("treated", "post")]
    dd = did["post"]
    p_text = (f"{C} changed by {_ci_text(p, a)} over the post window against its own pre-event trend "
              f"(first {n} days: {_ci_text(pe, a)})")
    did_text = f"the difference-in-differences of {T} against {C} is {_ci_text(dd, a)}"
    own_text = f"{T}'s own effect is {_ci_text(s, a)}"
    approx = math.log1p(s["estimate"]) - math.log1p(p["estimate"]) if s["estimate"] > -1 else float("nan")
    arith = (f" (on the log scale the DiD, {dd['estimate']:+.2f}, is close to {T}'s own change minus "
             f"{C}'s, {approx:+.2f})") if math.isfinite(approx) else ""
    if verdict == "displacement":
        return (f"Displacement: after {ev}, {p_text}, so {C} is not an untouched control and the data support the "
                f"destination reading. Used as a control, it subtracts that rise: {did_text}, which overstates "
                f"{T}'s drop{arith}; {own_text}, the estimate that does not rest on {C}. Whether the rise is work "
                f"moving from {T} to {C} or growth of {C} that its pre-event trend misses, these two series "
                f"cannot tell.")
    if verdict == "common_fall":
        return (f"Common fall: after {ev}, {p_text}. Either a shock common to both series, in which case "
                f"{did_text} and is the better estimate, or the event reached {C} as well, in which case that DiD "
                f"understates {T}'s drop and {own_text}; these two series cannot tell which.")
    return (f"Control: after {ev}, {p_text}. The interval includes no change, so the data do not show {C} "
            f"moving and the control reading is not rejected: {did_text}. Nor do they show {C} untouched: its "
            f"interval reaches {_fmt_pct(p['pct_ci_high'])}, and {own_text}; the gap between the two is {C}'s own "
            f"point estimate{arith}. Quote the DiD beside {T}'s own effect, not alone.")
