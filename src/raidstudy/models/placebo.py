"""Inference beyond the model's own standard errors: in-time placebo events.

Would any other day have looked as extreme? :func:`placebo_in_time` refits the same model
on the pre-event data alone with fake event dates, and compares the real level change with
the distribution of placebo level changes. Because the placebo fits never see the real
event, their spread measures how large a "raid effect" the series produces by itself —
trend breaks, outages, seasonality the model misses — and the rank of the real estimate is
a permutation-style p-value that does not lean on the HAC standard errors.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from raidstudy.errors import DataError, RaidstudyError

__all__ = ["PlaceboResult", "placebo_in_time"]


@dataclasses.dataclass
class PlaceboResult:
    """In-time placebo estimates and the rank of the real estimate among them.

    Attributes
    ----------
    table : DataFrame
        One row per placebo date: ``date``, ``estimate`` (the placebo ``level``),
        ``std_error``, ``note`` (why a placebo could not be fitted, else empty).
    real : float
        The real level change (same term and scale).
    p_value : float
        ``(1 + #{|placebo| >= |real|}) / (1 + n)`` over the fitted placebos: the share of
        placebo dates whose jump is at least as large, counting the real date itself.
    term : str
        The coefficient compared (``level``, or ``treated_level`` in a comparative model).
    post_periods : int
        Periods after each placebo date used in its fit.
    """

    table: pd.DataFrame
    real: float
    p_value: float
    term: str
    post_periods: int
    family: str = "negbin"

    @property
    def n(self) -> int:
        """Number of placebo fits that succeeded."""
        return int(self.table["estimate"].notna().sum())

    def to_dict(self) -> dict[str, Any]:
        est = self.table["estimate"].dropna().to_numpy()
        # Quantiles of a handful of placebos would be interpolation; show the range instead.
        spread = ({"min": float(est.min()), "max": float(est.max())} if 0 < len(est) < 20 else
                  {q: float(np.quantile(est, q)) for q in (0.025, 0.5, 0.975)} if len(est) else {})
        return {
            "method": "in-time placebo: the same model refitted on pre-event data with fake event dates",
            "term": self.term,
            "family": self.family,
            "real": self.real,
            "n_placebos": self.n,
            "n_failed": int(self.table["estimate"].isna().sum()),
            "post_periods": self.post_periods,
            "p_value": self.p_value,
            "n_as_extreme": int(np.sum(np.abs(est) >= abs(self.real))),
            "placebo_spread": spread,
            "placebos": [
                {"date": d, "estimate": e, "std_error": s, "note": n}
                for d, e, s, n in self.table[["date", "estimate", "std_error", "note"]].itertuples(index=False)
            ],
        }


def placebo_in_time(
    data: pd.DataFrame,
    *,
    event: Any,
    real: float,
    n_placebos: int = 40,
    min_pre: int | None = None,
    post_periods: int | None = None,
    its_kwargs: Mapping[str, Any] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
) -> PlaceboResult:
    """Fit the ITS model at fake event dates before the real one.

    Parameters
    ----------
    data : DataFrame
        The estimation window (the outcome, and ``control`` for a comparative model) on a
        regular index; only the periods before ``event`` are used.
    event : date-like
        The real event; placebo dates lie strictly before it.
    real : float
        The real estimate of the compared term (its log rate ratio for count families).
    n_placebos : int
        How many placebo dates, evenly spaced over the eligible pre-event periods.
    min_pre : int, optional
        Periods required before a placebo date. Default: 60 days, 26 weeks, 24 months,
        12 quarters or 10 years; with annual Fourier terms at least one year and a day
        (the engine's own minimum for them).
    post_periods : int, optional
        Periods after each placebo date in its fit (default: as many as fit before the real
        event, at most a third of the pre-event data, at least 14).
    its_kwargs, fit_kwargs : mapping
        Passed to :class:`raidstudy.models.its.ITS` (``outcome``, ``family``, ``dow``, ...) and to
        :meth:`~raidstudy.models.its.ITS.fit`.

    Returns
    -------
    PlaceboResult

    Notes
    -----
    For placebo date :math:`d` the model is the study's own, fitted to
    :math:`[t_0, d + L)` with :math:`d + L` before the real event, and the placebo effect
    is its ``level`` coefficient :math:`\\hat\\beta_L(d)`. The p-value is

    .. math:: p = \\frac{1 + \\#\\{d : |\\hat\\beta_L(d)| \\ge |\\hat\\beta_L|\\}}{1 + n}.

    Placebo fits overlap, so they are not independent draws; read :math:`p` as a
    calibration of the real jump against the series' own jumps, not as an exact test.

    Examples
    --------
    >>> from raidstudy.models.simulate import simulate_its
    >>> from raidstudy.models.its import ITS
    >>> d = simulate_its(family="poisson", n=400, event=300, level=-0.7, seed=2)
    >>> real = ITS(d, outcome="y", event=d.index[300], family="poisson").fit().params["level"]
    >>> res = placebo_in_time(d[["y"]], event=d.index[300], real=real, n_placebos=10,
    ...                       its_kwargs={"outcome": "y", "family": "poisson"})
    >>> res.p_value < 0.2
    True
    """
    from raidstudy.models.its import ITS

    its_kwargs = dict(its_kwargs or {})
    fit_kwargs = dict(fit_kwargs or {})
    its_kwargs.pop("exclude", None)  # transition periods belong to the real event
    term = "treated_level" if its_kwargs.get("control") else "level"
    # The engine's own rule places the event (period start or end labels alike), so that
    # no placebo window reaches into the event period.
    probe = ITS(data, event=event, **its_kwargs)
    t_event = int(probe.event_pos)
    kind = probe.frame.freq.kind
    if min_pre is None:
        min_pre = {"D": 60, "W": 26, "M": 24, "Q": 12, "Y": 10}.get(kind, 24)
        if its_kwargs.get("fourier") and probe.frame.freq.periods_per_year:
            min_pre = max(min_pre, int(np.ceil(probe.frame.freq.periods_per_year)) + 1)
    # every row labelled before the event period (the data may skip missing periods)
    pre = data[data.index < probe.frame.index[t_event]]
    n_pre = len(pre)
    L = post_periods if post_periods is not None else max(14, min(n_pre // 3, n_pre - min_pre))
    first, last = min_pre, n_pre - L
    if last <= first:
        raise DataError(
            f"only {n_pre} pre-event periods: a placebo needs {min_pre} before it and {L} after it "
            "inside the pre-event data; lengthen pre_periods or set n_placebos=0"
        )
    positions = np.unique(np.linspace(first, last, num=min(n_placebos, last - first + 1)).round().astype(int))
    rows = []
    for pos in positions:
        window = pre.iloc[: pos + L]
        date = pre.index[pos]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_kw = dict(fit_kwargs)
                if isinstance(fit_kw.get("maxlags"), int) and fit_kw["maxlags"] >= len(window) // 4:
                    fit_kw["maxlags"] = None  # a fixed lag the short placebo window cannot carry
                res = ITS(window, event=date, **its_kwargs).fit(**fit_kw)
            rows.append((date, float(res.params[term]), float(res.std_errors[term]), ""))
        except RaidstudyError as err:
            rows.append((date, np.nan, np.nan, f"not fitted: {err}"))
    table = pd.DataFrame(rows, columns=["date", "estimate", "std_error", "note"])
    est = table["estimate"].dropna().to_numpy()
    if len(est) == 0:
        raise DataError("no placebo date could be fitted; see the notes of placebo_in_time for the reasons")
    p = (1 + int(np.sum(np.abs(est) >= abs(real)))) / (1 + len(est))
    return PlaceboResult(table=table, real=float(real), p_value=float(p), term=term, post_periods=int(L),
                         family=str(its_kwargs.get("family", "negbin")))
