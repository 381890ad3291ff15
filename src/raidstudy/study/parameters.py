"""Study parameters: one table of names, types and defaults, and one validation function.

The notebook's ``parameters`` cell, the CLI (``raidstudy run -p NAME VALUE``) and the batch
runner all go through :func:`validate_parameters`, so a parameter means the same thing
everywhere and bad input is refused the same way, before any model is fitted.

Papermill passes every value as a scalar (dates as strings, lists as comma-separated
strings), so every parameter here is a flat scalar.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from raidstudy.errors import DataError, ParameterError

__all__ = [
    "PARAMETERS",
    "Parameter",
    "StudySpec",
    "check_names",
    "coerce_parameters",
    "default_output_dir",
    "default_parameters",
    "notebook_parameters",
    "study_identity",
    "check_run_directory",
    "validate_parameters",
    "MODEL_FAMILIES",
    "COV_TYPES",
]

from raidstudy.models.its.vocabulary import COV_ALIASES, COV_TYPES, FAMILIES

#: The model families, the study's default first (the engine's own list).
MODEL_FAMILIES = FAMILIES
MEASURES = ("n_releases", "n_nuked")
PERIOD_LABELS = ("auto", "start", "end")


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One study parameter: its type, default and meaning."""

    name: str
    type: type
    default: Any
    help: str


def _p(name: str, typ: type, default: Any, help: str) -> Parameter:
    return Parameter(name, typ, default, help)


#: Every study parameter, in the order of the notebook's ``parameters`` cell. The defaults
#: are the SPARKS 2020 study. ``tests/study/test_notebooks.py`` checks that each notebook's
#: parameters cell lists exactly these names with these defaults.
PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in [
        _p("event_id", str, "sparks_2020", "event id from data/events.csv (`raidstudy events` lists them)"),
        _p("event_date", str, "", "override the catalogue date (YYYY-MM-DD); empty: use the catalogue"),
        _p("feeds", str, "#pre@corrupt,xrel", "comma-separated feeds summed into the outcome, or 'all'"),
        _p("families", str, "all", "comma-separated section families (tv, movies, ...), or 'all'"),
        _p("measure", str, "n_releases", "count measure: n_releases or n_nuked"),
        _p("control_feeds", str, "", "comma-separated feeds for a comparative ITS control; empty: none"),
        _p("data_dir", str, "data/processed", "folder of the processed indicator tables"),
        _p("series_csv", str, "", "a generic date,value[,series] CSV used instead of the bundled data"),
        _p("series_name", str, "", "which series of series_csv is the outcome (when it holds several)"),
        _p("control_series", str, "", "which series of series_csv is the control; empty: none"),
        _p("period_label", str, "auto", "weekly and coarser dates mark each period's 'start' or 'end' ('auto': infer)"),
        _p("pre_periods", int, 365, "periods before the event in the estimation window"),
        _p("post_periods", int, 120, "periods from the event on in the estimation window"),
        _p("transition_periods", int, 1, "periods from the event on excluded from the fit (a raid that lands mid-day)"),
        _p("model_family", str, "negbin", "negbin, poisson, quasipoisson or gaussian"),
        _p("slope", bool, True, "estimate a change of trend after the event"),
        _p("dow", bool, True, "day-of-week effects (daily series only)"),
        _p("fourier", int, 0, "annual Fourier pairs for seasonality (0: none; needs 2+ years before the event)"),
        _p("holidays", str, "", "comma-separated holiday dates (YYYY-MM-DD), each a dummy"),
        _p("cov_type", str, "ewc", "ewc (cosine long-run variance, design-simulated critical values), hac, newey, "
                                   "robust or nonrobust"),
        _p("ewc_terms", int, 6, "cosine terms of the ewc covariance"),
        _p("hac_lags", str, "auto", "HAC lags for hac/newey: 'auto' (Newey-West 1994 plug-in), 'rule' or a number"),
        _p("small_sample", bool, False, "Stata `newey` small-sample scaling of the HAC covariance"),
        _p("alpha", float, 0.05, "1 - confidence level of every interval"),
        _p("recovery_share", float, 0.9, "share of the counterfactual that counts as recovered"),
        _p("n_sim", int, 2000, "simulation draws for the effect intervals"),
        _p("seed", int, 20200825, "random seed for every simulation"),
        _p("n_placebos", int, 500, "placebo dates over the whole history for the figure (0: no placebo check); "
                                   "the p-value uses the non-overlapping windows"),
        _p("output_dir", str, "results/sparks-2020", "run directory for results.json, figures, tables"),
    ]
}

#: Fewest non-missing pre-event periods accepted, whatever the model.
MIN_PRE_PERIODS = 24
#: Most simulation draws accepted (memory grows with draws x periods).
MAX_SIM = 100_000


_NOTEBOOK_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}


def notebook_parameters(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The study parameters defined in a notebook's namespace (pass ``globals()``).

    Every public scalar (str, int, float, bool or None) and every list counts, so a
    misspelt name that papermill injected (``-p pre_period 100``) and a list value
    (``-y "feeds: [xrel, srrdb]"``) reach :func:`validate_parameters`, which joins a list
    for the comma-separated parameters and refuses it for the others, instead of either
    being silently ignored. Call it right after the parameters
    cell, before other scalars are defined.

    Examples
    --------
    >>> notebook_parameters({"event_id": "sparks_2020", "_hidden": 1, "pd": object()})
    {'event_id': 'sparks_2020'}
    """
    found = {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_") and k not in _NOTEBOOK_NAMES
        and (v is None or isinstance(v, (str, int, float, bool, list, tuple)))
    }
    default_dir = PARAMETERS["output_dir"].default
    if found.get("output_dir") == default_dir:
        # papermill without -p output_dir leaves the parameters cell's default, the SPARKS
        # 2020 folder: another study goes to its own folder instead of replacing that one.
        try:
            derived = coerce_parameters({k: v for k, v in found.items() if k != "output_dir"})["output_dir"]
        except ParameterError:
            return found  # validate_parameters reports the bad parameter
        if derived != default_dir:
            import warnings

            warnings.warn(
                f"output_dir {default_dir!r} is the default study's folder (SPARKS 2020); this study "
                f"({found.get('event_id', PARAMETERS['event_id'].default)}) writes to {derived!r}. "
                "Pass -p output_dir to choose another folder",
                stacklevel=2,
            )
            found["output_dir"] = derived
    try:
        check_run_directory(coerce_parameters(found))
    except ParameterError as err:
        if err.name == "output_dir":
            raise
    return found


def default_parameters() -> dict[str, Any]:
    """The default parameters (the SPARKS 2020 study), as a fresh dict."""
    return {name: p.default for name, p in PARAMETERS.items()}


def check_names(params: Mapping[str, Any]) -> None:
    """Refuse parameter names that the study does not know.

    Raises
    ------
    ParameterError
        Naming the first unknown name and listing the accepted ones.
    """
    for name in params:
        if name not in PARAMETERS:
            import difflib

            close = difflib.get_close_matches(name, PARAMETERS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see `raidstudy run --list-parameters`"
            raise ParameterError(name, params[name], "unknown parameter name", accepted=list(PARAMETERS), hint=hint)


#: The parameters that hold several comma-separated values; a list given for one of them
#: (papermill's ``-y "feeds: [xrel, srrdb]"``, a YAML plan) is joined with commas.
LIST_PARAMETERS = frozenset({"feeds", "families", "control_feeds", "holidays"})


def _date_string(name: str, value: Any) -> str:
    """A date object as ``YYYY-MM-DD``; a date-time with a time of day is refused."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        raise ParameterError(name, str(value), "carries a time zone; the indicators are UTC days",
                             hint="write the UTC date as YYYY-MM-DD")
    if ts != ts.normalize():
        raise ParameterError(name, str(value), "has a time of day; the indicators are days",
                             hint="write the date as YYYY-MM-DD")
    return ts.strftime("%Y-%m-%d")


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _coerce(p: Parameter, value: Any) -> Any:
    if value is None:
        raise ParameterError(p.name, value, f"must be a {p.type.__name__}, not None", hint=f"the default is {p.default!r}")
    if isinstance(value, np.generic):
        value = value.item()  # numpy scalars from Python callers behave as their Python twins
    if isinstance(value, (list, tuple)):
        if p.name not in LIST_PARAMETERS:
            raise ParameterError(p.name, list(value), "takes one value, not a list",
                                 hint="only " + ", ".join(sorted(LIST_PARAMETERS)) + " accept several values")
        items = []
        for v in value:
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, (_dt.date, pd.Timestamp)):
                v = _date_string(p.name, v)
            if not isinstance(v, str) or not v.strip() or "," in v:
                raise ParameterError(p.name, list(value), f"list item {v!r} is not a single name",
                                     hint="give a list of names or one comma-separated string")
            items.append(v.strip())
        return ",".join(items)
    if p.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ParameterError(p.name, value, "must be true or false", accepted=[True, False])
    if p.type is int:
        if isinstance(value, bool):
            raise ParameterError(p.name, value, "must be a whole number, not a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ParameterError(p.name, value, "must be a whole number", hint=f"the default is {p.default!r}")
    if p.type is float:
        if isinstance(value, bool):
            raise ParameterError(p.name, value, "must be a number, not a boolean")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ParameterError(p.name, value, "must be a number", hint=f"the default is {p.default!r}") from None
        if not math.isfinite(out):
            raise ParameterError(p.name, value, "must be a finite number")
        return out
    if p.type is str:
        if isinstance(value, (_dt.date, pd.Timestamp)):
            return _date_string(p.name, value)
        if hasattr(value, "isoformat") and not isinstance(value, str):
            return value.isoformat()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ParameterError(p.name, value, "must be a string")
        return value.strip()
    raise TypeError(p.type)  # pragma: no cover - the table holds only the four types


def coerce_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and coerce every value to its declared type; fill in defaults.

    Strings such as ``"365"`` or ``"false"`` (what a command line passes) become the
    declared type. No data are read: this is the cheap first half of
    :func:`validate_parameters`, used by the CLI before papermill starts.
    """
    check_names(params)
    out = default_parameters()
    for name, value in params.items():
        out[name] = _coerce(PARAMETERS[name], value)
    _check_scalars(out)
    if "output_dir" not in params:
        out["output_dir"] = default_output_dir(out)
    return out


#: The parameters that say which study a run is: the event, the indicator and the model.
#: A run directory holding a run of another study is not overwritten without ``--force``.
IDENTITY_PARAMETERS = ("event_id", "event_date", "series_csv", "series_name", "control_series", "feeds",
                       "families", "measure", "control_feeds", "model_family")


def study_identity(p: Mapping[str, Any]) -> dict[str, Any]:
    """The study a parameter set describes (event, indicator, model), for comparing runs."""
    defaults = default_parameters()
    return {k: p.get(k, defaults[k]) for k in IDENTITY_PARAMETERS}


_DEFAULT_IDENTITY = {k: PARAMETERS[k].default for k in IDENTITY_PARAMETERS}


def _slug_part(v: str) -> str:
    s = "".join(c if c.isalnum() or c in "._" else "-" for c in str(v).lower().replace("_", "-"))
    while "--" in s:
        s = s.replace("--", "-")
    return s.strip("-.") or "x"


def default_output_dir(p: Mapping[str, Any]) -> str:
    """The run directory of a study when ``output_dir`` is not given: ``results/<event>`` plus
    the indicator and the model when they are not the defaults.

    The default study (SPARKS 2020 with the default feeds and model) keeps
    ``results/sparks-2020``; other parameters (windows, covariance, ...) do not change it.

    Examples
    --------
    >>> default_output_dir(default_parameters())
    'results/sparks-2020'
    >>> default_output_dir({**default_parameters(), "event_id": "zlibrary_2022", "families": "books"})
    'results/zlibrary-2022-books'
    >>> default_output_dir({**default_parameters(), "feeds": "xrelp2p", "model_family": "gaussian"})
    'results/sparks-2020-xrelp2p-gaussian'
    """
    ident = study_identity(p)
    if ident == _DEFAULT_IDENTITY:
        return PARAMETERS["output_dir"].default
    d = _DEFAULT_IDENTITY
    parts = [_slug_part(ident["event_id"])]
    if ident["event_date"]:
        parts.append(ident["event_date"])
    if ident["series_csv"]:
        parts.append(_slug_part(ident["series_name"] or Path(ident["series_csv"]).stem))
    else:
        if ident["feeds"] != d["feeds"]:
            parts.append(_slug_part(ident["feeds"].replace(",", "+")))
        if ident["families"] != d["families"]:
            parts.append(_slug_part(ident["families"].replace(",", "+")))
        if ident["measure"] != d["measure"]:
            parts.append("nuked" if ident["measure"] == "n_nuked" else _slug_part(ident["measure"]))
    control = ident["control_feeds"] or ident["control_series"]
    if control:
        parts.append("vs-" + _slug_part(control.replace(",", "+")))
    if ident["model_family"] != d["model_family"]:
        parts.append(ident["model_family"])
    return "results/" + "-".join(parts)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _check_scalars(p: dict[str, Any]) -> None:
    """Range and vocabulary checks that need no data."""
    if p["model_family"] not in MODEL_FAMILIES:
        raise ParameterError("model_family", p["model_family"], "unknown model family", accepted=MODEL_FAMILIES)
    if p["cov_type"].lower() not in COV_ALIASES:
        raise ParameterError("cov_type", p["cov_type"], "unknown covariance type", accepted=COV_TYPES)
    p["cov_type"] = COV_ALIASES[p["cov_type"].lower()]
    if not 2 <= p["ewc_terms"] <= 64:
        raise ParameterError("ewc_terms", p["ewc_terms"], "must be between 2 and 64 cosine terms",
                             hint="6 (the default) suits a few hundred daily periods")
    if p["period_label"] not in PERIOD_LABELS:
        raise ParameterError("period_label", p["period_label"], "unknown period label", accepted=PERIOD_LABELS,
                             hint="'start' if a date marks the first day of its week or month")
    if p["measure"] not in MEASURES:
        raise ParameterError("measure", p["measure"], "unknown measure", accepted=MEASURES)
    if not 0 < p["alpha"] < 0.5:
        raise ParameterError("alpha", p["alpha"], "must lie strictly between 0 and 0.5", hint="0.05 gives 95% intervals")
    if not 0 < p["recovery_share"] < 1:
        raise ParameterError("recovery_share", p["recovery_share"], "must lie strictly between 0 and 1",
                             hint="0.9 means 90% of the counterfactual")
    if p["pre_periods"] < MIN_PRE_PERIODS:
        raise ParameterError(
            "pre_periods", p["pre_periods"], f"too few pre-event periods: at least {MIN_PRE_PERIODS} are needed",
            hint="a longer pre window identifies the trend and seasonality",
        )
    if p["post_periods"] < 1:
        raise ParameterError("post_periods", p["post_periods"], "must be at least 1")
    if not 0 <= p["transition_periods"] < p["post_periods"]:
        raise ParameterError(
            "transition_periods", p["transition_periods"],
            f"must be between 0 and post_periods - 1 = {p['post_periods'] - 1}",
        )
    if not 0 <= p["fourier"] <= 12:
        raise ParameterError("fourier", p["fourier"], "must be between 0 and 12 Fourier pairs")
    if not 100 <= p["n_sim"] <= MAX_SIM:
        raise ParameterError("n_sim", p["n_sim"], f"must be between 100 (stable intervals) and {MAX_SIM:,} draws")
    if not 0 <= p["n_placebos"] <= 2000:
        raise ParameterError("n_placebos", p["n_placebos"], "must be between 0 (no placebo check) and 2000")
    if p["seed"] < 0:
        raise ParameterError("seed", p["seed"], "must be a non-negative whole number")
    lags = p["hac_lags"]
    if lags not in ("auto", "rule"):
        try:
            n = int(lags)
        except ValueError:
            raise ParameterError("hac_lags", lags, "must be 'auto', 'rule' or a whole number >= 0") from None
        if n < 0:
            raise ParameterError("hac_lags", lags, "must be 'auto', 'rule' or a whole number >= 0")
        p["hac_lags"] = str(n)
    if p["event_date"]:
        _parse_date("event_date", p["event_date"])
    for d in _split(p["holidays"]):
        _parse_date("holidays", d)
    if not p["output_dir"]:
        raise ParameterError("output_dir", p["output_dir"], "must name a folder", hint="e.g. results/my-study")
    if p["series_csv"] and (p["feeds"] != PARAMETERS["feeds"].default or p["families"] != "all"):
        raise ParameterError(
            "feeds" if p["feeds"] != PARAMETERS["feeds"].default else "families",
            p["feeds"] if p["feeds"] != PARAMETERS["feeds"].default else p["families"],
            "selects bundled data, which series_csv replaces", hint="leave feeds and families at their defaults",
        )
    if p["series_csv"] and p["control_feeds"]:
        raise ParameterError(
            "control_feeds", p["control_feeds"], "feeds apply to the bundled data, not to series_csv",
            hint="name the control column of series_csv with control_series",
        )


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(name: str, value: str) -> pd.Timestamp:
    """An ISO date ``YYYY-MM-DD``; anything else (``01/09/2020`` is ambiguous) is refused."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        try:
            ts = pd.Timestamp(value) if isinstance(value, str) and _ISO_DATE.match(value.strip()) else None
        except (ValueError, TypeError):
            ts = None
        if ts is not None and ts is not pd.NaT and ts.tzinfo is not None:
            raise ParameterError(name, value, "carries a time zone; the indicators are UTC days",
                                 hint="write the UTC date as YYYY-MM-DD")
        raise ParameterError(name, value, "is not an ISO date (YYYY-MM-DD)",
                             hint="write dates as YYYY-MM-DD, e.g. 2020-09-01; day/month orders are ambiguous")
    value = value.strip()
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ParameterError(name, value, "is not a date", hint="write dates as YYYY-MM-DD") from None
    if ts is pd.NaT:
        raise ParameterError(name, value, "is not a date", hint="write dates as YYYY-MM-DD")
    if ts.tzinfo is not None:
        raise ParameterError(name, value, "carries a time zone; the indicators are UTC days",
                             hint="write the UTC date as YYYY-MM-DD")
    return ts


@dataclasses.dataclass
class StudySpec:
    """A validated study: the parameters, the event, and the series the model will see.

    Built only by :func:`validate_parameters`. ``outcome`` and ``control`` cover exactly
    the estimation window; ``full_outcome`` is the whole indicator, for context plots.
    """

    parameters: dict[str, Any]
    event: Any
    event_date: pd.Timestamp
    outcome: pd.Series
    control: pd.Series | None
    full_outcome: pd.Series
    freq: str
    data_files: dict[str, str]
    data_checksum: str
    outcome_label: str
    simulated: bool = False
    #: The whole control series (aligned with ``full_outcome``), for placebos over the history.
    full_control: pd.Series | None = None
    #: Why an optional step (such as the placebo check) did not run, for the results file.
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Periods the event's date precision spans (:func:`precision_transition`; 0: to the day).
    precision_periods: int = 0
    #: How the event's date precision was handled, in words (empty for day precision).
    precision_note: str = ""

    @property
    def transition(self) -> int:
        """Periods from the event on left out of the fit: ``transition_periods``, widened to
        the event's date precision."""
        return max(int(self.parameters["transition_periods"]), self.precision_periods)

    @property
    def output_dir(self) -> Path:
        return resolve_path(self.parameters["output_dir"])

    @property
    def hac_lags(self) -> int | str | None:
        """``maxlags`` for :meth:`ITS.fit`: None (plug-in), ``"rule"`` or a number."""
        lags = self.parameters["hac_lags"]
        return None if lags == "auto" else ("rule" if lags == "rule" else int(lags))

    @property
    def outcome_column(self) -> str:
        """A short name for the outcome in model tables: the measure, or the CSV series name."""
        p = self.parameters
        if p["series_csv"]:
            name = p["series_name"] or str(self.outcome.name or "outcome")
        else:
            name = {"n_releases": "releases", "n_nuked": "nuked_releases"}[p["measure"]]
        return name if name != "control" else "outcome"

    def model_data(self) -> pd.DataFrame:
        """The estimation window as a DataFrame: the outcome and, when set, ``control``."""
        df = pd.DataFrame({self.outcome_column: self.outcome})
        if self.control is not None:
            df["control"] = self.control
        return df

    def its_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`raidstudy.models.its.ITS` for this study (all but data and event)."""
        p = self.parameters
        holidays = [pd.Timestamp(d) for d in _split(p["holidays"])] or None
        return dict(
            outcome=self.outcome_column,
            control="control" if self.control is not None else None,
            family=p["model_family"],
            slope=p["slope"],
            dow=p["dow"] if self.freq == "D" else False,
            fourier=p["fourier"],
            holidays=holidays,
            exclude=self.transition,
            name=self.outcome_label,
            period_label=None if p["period_label"] == "auto" else p["period_label"],
        )

    def fit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`raidstudy.models.its.ITS.fit` for this study."""
        p = self.parameters
        out: dict[str, Any] = dict(cov_type=p["cov_type"], small_sample=p["small_sample"])
        if p["cov_type"] in ("hac", "newey"):
            out["maxlags"] = self.hac_lags
        if p["cov_type"] == "ewc":
            out.update(ewc_terms=p["ewc_terms"], seed=p["seed"])
        return out

    def build_model(self):
        """The :class:`raidstudy.models.its.ITS` model this spec describes (not fitted)."""
        from raidstudy.models.its import ITS

        return ITS(self.model_data(), event=self.event_date, **self.its_kwargs())

    def effect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`ITSResults.effects` (and ``to_dict``) for this study:
        ``alpha``, ``recovery_share``, ``n_sim`` and ``seed``, as the report uses them."""
        p = self.parameters
        return dict(alpha=p["alpha"], recovery_share=p["recovery_share"], n_sim=p["n_sim"], seed=p["seed"])

    def fit(self):
        """Build the model and fit it with the spec's covariance settings.

        The returned results' ``effects()``, ``predictions()`` and ``to_dict()`` default to
        the study's ``alpha``, ``recovery_share``, ``n_sim`` and ``seed``
        (:meth:`effect_kwargs`), so called without arguments they give the report's numbers;
        explicit keywords still override them.
        """
        import functools

        res = self.build_model().fit(**self.fit_kwargs())
        kw = self.effect_kwargs()
        for name, keys in (("effects", ("alpha", "recovery_share", "n_sim", "seed")),
                           ("to_dict", ("alpha", "recovery_share", "n_sim", "seed")),
                           ("predictions", ("n_sim", "seed"))):
            method = getattr(res, name, None)
            if method is not None:
                bound = functools.partial(method, **{k: kw[k] for k in keys})
                functools.update_wrapper(bound, method)
                setattr(res, name, bound)
        return res

    def describe(self) -> pd.DataFrame:
        """The study design as a two-column table (for the notebook and the report)."""
        p = self.parameters
        rows = [
            ("event", f"{self.event.name} ({self.event.id})"),
            ("event date", f"{self.event_date.date()} (precision: {self.event.precision})"),
            ("outcome", self.outcome_label),
            ("control", p["control_feeds"] or p["control_series"] or "none"),
            ("window", f"{self.outcome.index[0].date()} to {self.outcome.index[-1].date()} ({self.freq})"),
            ("pre / post periods", f"{p['pre_periods']} / {p['post_periods']}"),
            ("excluded transition periods", str(self.transition)
             + (f" (widened from {p['transition_periods']}: {self.precision_note})" if self.precision_note else "")),
            ("missing periods in window", str(int(self.outcome.isna().sum()))),
            ("model", f"{p['model_family']}, slope={'yes' if p['slope'] else 'no'}, "
                      f"day of week={'yes' if p['dow'] and self.freq == 'D' else 'no'}, Fourier pairs={p['fourier']}"),
            ("covariance", f"ewc ({p['ewc_terms']} cosine terms, design-simulated critical values)"
                           if p["cov_type"] == "ewc" else
                           f"{p['cov_type']} (lags {p['hac_lags']}{', small-sample' if p['small_sample'] else ''})"),
            ("data checksum (sha256)", self.data_checksum[:16] + "..."),
        ]
        if self.simulated:
            rows.insert(0, ("SIMULATED DATA", "this series is simulated, not observed"))
        return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def validate_parameters(params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> StudySpec:
    """Validate study parameters and load the series they select, before any fitting.

    Parameters
    ----------
    params : mapping, optional
        Parameter names and values (strings are coerced to the declared types).
    **kwargs
        More parameters, as keywords (the notebook passes its parameters this way).

    Returns
    -------
    StudySpec
        The validated parameters with the event and the windowed outcome series.

    Raises
    ------
    ParameterError
        For an unknown name, a value of the wrong type or range, an unknown event id,
        feed, family or series, an event outside the data, or a window with too few
        non-missing pre-event periods. The message names the parameter, the value and
        the accepted values.

    Notes
    -----
    The estimation window is ``[t0 - pre_periods, t0 + post_periods)`` in periods of the
    series' frequency, where ``t0`` is the period holding the event date. The window is
    cut to the data; at least ``max(24, 3 k)`` non-missing pre-event periods must remain,
    with ``k`` the number of pre-period parameters (constant, trend, day of week,
    Fourier terms, holidays).

    Examples
    --------
    >>> from raidstudy.study.parameters import validate_parameters
    >>> spec = validate_parameters(event_id="sparks_2020", pre_periods=200)
    >>> str(spec.event_date.date()), len(spec.outcome)
    ('2020-08-25', 320)
    >>> round(float(spec.fit().params["level"]), 1) < 0
    True
    """
    merged: dict[str, Any] = dict(params or {})
    merged.update(kwargs)
    p = coerce_parameters(merged)

    from raidstudy.data import events as _events
    from raidstudy.paths import repo_root

    # The event: from the catalogue, unless a date is given for an event outside it.
    try:
        event = _events.get_event(p["event_id"])
    except ParameterError:
        if not p["event_date"]:
            raise
        event = _events.Event(
            id=p["event_id"], date=pd.Timestamp(p["event_date"]), precision="day",
            name=p["event_id"], target_type=(), jurisdiction=(), description="user-supplied event",
            source="user-supplied", status="user-supplied",
        )
    event_date = _parse_date("event_date", p["event_date"]) if p["event_date"] else pd.Timestamp(event.date)
    precision = "day" if p["event_date"] else event.precision

    # The series.
    root = repo_root()
    if p["series_csv"]:
        outcome_full, control_full, files, label = _load_csv_series(p, root)
    else:
        outcome_full, control_full, files, label = _load_bundled(p, root)

    freq = _freq_of(outcome_full)
    event_date, precision_periods, precision_note = precision_transition(precision, event_date, freq, 0)
    if precision != "day" and not freq.startswith("D"):
        # count the periods the uncertain days span with the engine's own rule (period start
        # or end labels), not the calendar's
        last_day = pd.Timestamp(precision_note.rsplit(" to ", 1)[1])
        try:
            precision_periods = (event_position(outcome_full, last_day, p["period_label"])
                                 - event_position(outcome_full, event_date, p["period_label"]) + 1)
        except DataError:
            pass  # a span past the data's end: the window check below reports the event
    transition = max(precision_periods, p["transition_periods"])
    if transition >= p["post_periods"]:
        raise ParameterError(
            "post_periods", p["post_periods"],
            f"leaves nothing to estimate: the event's date is known only to the {precision} "
            f"({precision_note}), so the first {transition} periods are a transition",
            hint=f"use more than {transition} post-event periods, or give event_date if the day is known")
    outcome, control = _window(p, event, event_date, outcome_full, control_full, freq)
    _check_pre_counts(p, event_date, outcome, control, label)

    from raidstudy.io import sha256_bytes
    from raidstudy.models.simulate import is_simulated

    checksum = sha256_bytes("\n".join(f"{k} {v}" for k, v in sorted(files.items())).encode())
    spec = StudySpec(
        parameters=p,
        event=event,
        event_date=event_date,
        outcome=outcome,
        control=control,
        full_outcome=outcome_full,
        full_control=control_full.reindex(outcome_full.index) if control_full is not None else None,
        freq=freq,
        data_files=files,
        data_checksum=checksum,
        outcome_label=label,
        simulated=is_simulated(outcome_full),
        precision_periods=precision_periods,
        precision_note=precision_note,
    )
    # Building the design (no fitting) surfaces what the data cannot support -- too
    # short a series for the seasonality, a singular design -- before a kernel starts.
    model = spec.build_model()
    d = model.design
    n_t = int(np.sum(d.fit & d.treated_rows))
    if p["cov_type"] == "ewc" and p["ewc_terms"] > n_t // 2:
        raise ParameterError(
            "ewc_terms", p["ewc_terms"], f"too many cosine terms for {n_t} fitted periods (at most {n_t // 2})",
            hint="use fewer cosine terms or a longer window",
        )
    if isinstance(spec.hac_lags, int) and p["cov_type"] in ("hac", "newey"):
        k = d.X.shape[1]
        if spec.hac_lags >= n_t - k:
            raise ParameterError(
                "hac_lags", p["hac_lags"],
                f"too many lags for {n_t} fitted periods and {k} model terms (at most {n_t - k - 1})",
                hint="use 'auto' (the Newey-West rule) or fewer lags",
            )
    return spec


#: Days a date of each precision may be off by: before and after the catalogued date.
PRECISION_SPAN = {"day": (0, 0), "approx": (3, 3)}


def precision_transition(precision: str, date: pd.Timestamp, freq: str, transition: int
                         ) -> tuple[pd.Timestamp, int, str]:
    """Widen the transition to the event's date precision.

    An event known to the day starts at its date and leaves ``transition`` periods out of
    the fit. An ``approx`` date (within a few days) starts 3 days earlier and leaves out the
    periods up to 3 days after it; a ``month`` date starts on the first of the month and
    leaves out the whole month. The fit never treats an imprecise date as a day-level break.

    Parameters
    ----------
    precision : {"day", "approx", "month"}
        The catalogue's ``date_precision``.
    date : Timestamp
        The catalogued date (first of the month for ``month``).
    freq : str
        The series' frequency (``D``, ``W-...``, ``MS`` ...).
    transition : int
        The study's ``transition_periods``.

    Returns
    -------
    (Timestamp, int, str)
        The start of the event window, the periods left out from it, and a sentence saying
        what was done ('' for day precision).

    Examples
    --------
    >>> precision_transition("month", pd.Timestamp("2022-05-01"), "D", 1)[1:]
    (31, 'date known to the month: the transition covers 2022-05-01 to 2022-05-31')
    """
    if precision == "day":
        return date, transition, ""
    if precision == "month":
        start = date.replace(day=1)
        end = start + pd.offsets.MonthEnd(0)
        what = "date known to the month"
    elif precision == "approx":
        before, after = PRECISION_SPAN["approx"]
        start, end = date - pd.Timedelta(days=before), date + pd.Timedelta(days=after)
        what = f"date known within {before} days either way"
    else:
        raise ParameterError("date_precision", precision, "unknown precision", accepted=["day", "approx", "month"])
    days = pd.date_range(start, end, freq="D")
    if freq.startswith("D"):
        n = len(days)
    else:
        periods = pd.DatetimeIndex(days).to_period(pd.tseries.frequencies.to_offset(freq).rule_code
                                                    if not freq.startswith(("M", "Q", "A", "Y")) else freq[0])
        n = len(periods.unique())
    n = max(n, transition)
    return start, n, f"{what}: the transition covers {start.date()} to {end.date()}"


def resolve_path(value: str) -> Path:
    """A path parameter as a path: ``~`` expanded; a relative path is relative to the repository
    (the folder the runner starts kernels in; ``raidstudy run`` turns paths typed relative to
    the current directory into these)."""
    from raidstudy.paths import repo_root

    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else repo_root() / path


def check_run_directory(p: Mapping[str, Any]) -> None:
    """Refuse a run directory that holds a run of another study (event, indicator or model).

    Raises
    ------
    ParameterError
        Naming ``output_dir``, the study already there and what to do.
    """
    import json

    out = resolve_path(p["output_dir"])
    record = out / "run.json"
    if not record.is_file():
        return
    try:
        old = json.loads(record.read_text()).get("parameters")
    except (OSError, ValueError, AttributeError):
        return  # an unreadable record is the runner's business (it rewrites run.json)
    if not isinstance(old, dict) or not old:
        return  # a record that does not say which study it holds cannot be compared
    old_id, new_id = study_identity(old), study_identity(p)
    if old_id == new_id:
        return
    diff = [k for k in IDENTITY_PARAMETERS if old_id[k] != new_id[k]]
    was = ", ".join(f"{k}={old_id[k]!r}" for k in diff)
    raise ParameterError(
        "output_dir", p["output_dir"], f"holds a run of another study ({was}; this one has "
        + ", ".join(f"{k}={new_id[k]!r}" for k in diff) + ")",
        hint=f"choose another output_dir (e.g. {default_output_dir(p)}), or replace that run with --force "
             "(`raidstudy run --force`, `raidstudy batch --force`)",
    )


def _rel(path: Path, root: Path) -> str:
    from raidstudy.paths import display_path

    return display_path(path, keep_absolute=True)


def _load_bundled(p: dict[str, Any], root: Path):
    from raidstudy.data import indicators
    from raidstudy.io import sha256_file

    data_dir = resolve_path(p["data_dir"])
    if not data_dir.is_dir():
        raise ParameterError(
            "data_dir", p["data_dir"], "folder not found",
            hint="run `make data` (or `raidstudy build`) to rebuild the processed data",
        )
    feeds = None if p["feeds"].lower() == "all" else _split(p["feeds"])
    families = None if p["families"].lower() == "all" else _split(p["families"])
    if feeds is not None and not feeds:
        raise ParameterError("feeds", p["feeds"], "names no feed", accepted=indicators.available_feeds(data_dir))
    try:
        outcome = indicators.indicator_series(feeds=feeds, families=families, measure=p["measure"], data_dir=data_dir)
    except ParameterError as err:
        if err.name in ("feeds", "families"):
            # the study's parameter (and its value as given), in good English ("unknown family")
            problem = err.problem.replace("unknown familie", "unknown family")
            raise ParameterError(err.name, p[err.name] if err.value is None else err.value, problem,
                                 accepted=err.accepted) from None
        raise
    control = None
    if p["control_feeds"]:
        cfeeds = _split(p["control_feeds"])
        try:
            control = indicators.indicator_series(
                feeds=cfeeds, families=families, measure=p["measure"], data_dir=data_dir
            )
        except ParameterError as err:
            raise ParameterError("control_feeds", p["control_feeds"], err.problem, accepted=err.accepted) from None
        overlap = set(cfeeds) & set(feeds or indicators.available_feeds(data_dir))
        if overlap:
            raise ParameterError(
                "control_feeds", p["control_feeds"], f"feeds {sorted(overlap)} are in both outcome and control",
                hint="a control must not contain the treated series",
            )
    prov = outcome.attrs.get("provenance", {})
    files = dict(prov.get("files", {}))
    if not files:
        files = {_rel(f, root): sha256_file(f) for f in sorted(data_dir.iterdir()) if f.is_file()}
    what = "releases" if p["measure"] == "n_releases" else "nuked releases"
    label = f"{what} ({'feeds ' + ' + '.join(feeds) if feeds else 'all feeds'}"
    label += f"; {', '.join(families)})" if families else ")"
    return outcome, control, files, label


def _load_csv_series(p: dict[str, Any], root: Path):
    from raidstudy.io import sha256_file
    from raidstudy.data.sources.generic_csv import read_indicator_csv

    path = resolve_path(p["series_csv"])
    if not path.is_file():
        raise ParameterError("series_csv", p["series_csv"], "file not found", hint="give a date,value[,series] CSV")
    outcome = read_indicator_csv(path, series=p["series_name"] or None)
    if isinstance(outcome.index, pd.DatetimeIndex) and outcome.index.freq is not None:
        # A CSV's dates carry no convention: drop the anchored frequency the reader set, so
        # that weekly dates count as week *starts* unless period_label says 'end'.
        outcome.index = pd.DatetimeIndex(outcome.index, freq=None)
    control = read_indicator_csv(path, series=p["control_series"]) if p["control_series"] else None
    if control is not None:
        control = control.reindex(outcome.index)
    files = {_rel(path, root): sha256_file(path)}
    label = p["series_name"] or outcome.name or path.stem
    return outcome, control, files, str(label)


def _check_pre_counts(p: dict[str, Any], event_date: pd.Timestamp, outcome: pd.Series,
                      control: pd.Series | None, label: str) -> None:
    """Refuse a count model whose outcome (or control) is zero on every pre-event period.

    A rate ratio against a pre-period without a single event is undefined: the fit
    diverges and reports a level change with an absurd standard error instead of failing.
    """
    from raidstudy.models.its.vocabulary import COUNT_FAMILIES

    if p["model_family"] not in COUNT_FAMILIES:
        return
    t0 = event_position(outcome, event_date, p["period_label"])
    for what, series, name, hint in (
        ("outcome", outcome, "series_csv" if p["series_csv"] else "feeds",
         "choose an indicator with pre-event counts (other feeds, families or measure), or a later event"),
        ("control", control, "control_series" if p["series_csv"] else "control_feeds",
         "choose a control with pre-event counts"),
    ):
        if series is None:
            continue
        pre = series.iloc[:t0].dropna()
        if len(pre) and (pre == 0).all():
            value = p[name] or label
            raise ParameterError(
                name, value,
                f"the {what} ({label if what == 'outcome' else value}) is zero on all {len(pre)} observed pre-event "
                f"periods ({pre.index[0].date()} to {pre.index[-1].date()}), so a {p['model_family']} model "
                "has no rate to compare with (its level change would be meaningless)",
                hint=hint,
            )


def _freq_of(series: pd.Series) -> str:
    """The series' frequency by the engine's own rule: ``D``, ``W-<day>``, ``M``, ``Q-DEC`` or ``Y-DEC``."""
    from raidstudy.models.its.data import _kind_from_index, _period_alias

    idx = series.index
    if not isinstance(idx, pd.DatetimeIndex) or len(idx) < 2:
        raise DataError("the indicator series has no regular frequency; give a daily, weekly, monthly or yearly series")
    return _period_alias(_kind_from_index(idx), idx[0])


def _n_pre_params(p: dict[str, Any], freq: str) -> int:
    k = 2 + 2 * p["fourier"] + len(_split(p["holidays"]))
    if p["dow"] and freq == "D":
        k += 6
    return k


def event_position(series: pd.Series, event_date: pd.Timestamp, period_label: str | None = None) -> int:
    """Position in ``series`` (a regular series) of the period that contains ``event_date``.

    The same rule as the ITS engine's, so that the window, the model and the narrative
    agree on the event period whatever the labelling convention (period start or end).
    """
    from raidstudy.models.its.data import normalize_data, resolve_event

    frame = normalize_data(series.rename("y").to_frame(), outcome="y", control=None, offset=None, freq=None,
                           period_label=None if period_label in (None, "auto") else period_label)
    if len(frame.index) != len(series):
        raise DataError("the indicator series is not on a regular grid; pass one row per period")
    return resolve_event(frame, event_date)


def _window(p, event, event_date, outcome_full: pd.Series, control_full, freq: str):
    idx = outcome_full.index
    first, last = idx[0], idx[-1]
    try:
        t0 = event_position(outcome_full, event_date, p["period_label"])
    except DataError:
        from raidstudy.data import events as _events

        inside = _events.within(_events.load_events(), first, last)
        name = "event_date" if p["event_date"] else "event_id"
        raise ParameterError(
            name, p[name], f"the event date {event_date.date()} lies outside the data ({first.date()} to {last.date()})",
            accepted=list(inside["event_id"]) if name == "event_id" else None,
            hint="choose an event inside the data window, or other data with series_csv",
        ) from None
    if t0 - p["pre_periods"] < 0:
        import warnings

        warnings.warn(
            f"pre window cut by the start of the data: {t0} of {p['pre_periods']} pre-event periods available",
            stacklevel=3,
        )
    lo = max(0, t0 - p["pre_periods"])
    hi = min(len(idx), t0 + p["post_periods"])
    outcome = outcome_full.iloc[lo:hi]
    n_pre = int(outcome.iloc[: t0 - lo].notna().sum())
    need = max(MIN_PRE_PERIODS, 3 * _n_pre_params(p, freq))
    if n_pre < need:
        raise ParameterError(
            "pre_periods", p["pre_periods"],
            f"only {n_pre} non-missing pre-event periods in the data before {event_date.date()}; "
            f"this model needs at least {need}",
            hint="lengthen pre_periods, drop Fourier pairs or day-of-week terms, or choose a later event",
        )
    from raidstudy.models.its.data import PERIODS_PER_YEAR

    periods_per_year = PERIODS_PER_YEAR.get(freq[0])
    if p["fourier"] and periods_per_year and n_pre < 2 * periods_per_year:
        import warnings

        warnings.warn(
            f"fourier={p['fourier']} with {n_pre} pre-event periods (under two years): annual seasonality "
            "is barely separated from the trend, and the counterfactual may extrapolate it; "
            "lengthen pre_periods or set fourier=0",
            stacklevel=3,
        )
    if t0 + p["post_periods"] > len(idx):
        import warnings

        warnings.warn(
            f"post window cut by the end of the data: {len(idx) - t0} of {p['post_periods']} post periods available",
            stacklevel=3,
        )
    control = control_full.reindex(outcome.index) if control_full is not None else None
    return outcome, control
