"""SIMULATED staggered panels with planted heterogeneous, dynamic effects (for tests and docs)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from raidstudy.errors import ParameterError

__all__ = ["simulate_staggered"]


def simulate_staggered(n_units: int = 90, n_periods: int = 12, *, cohorts: Sequence[int] = (3, 6, 9),
                       never_share: float = 0.25, effects: Sequence[float] | None = None, growth: float = 0.5,
                       noise: float = 1.0, rho: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """A SIMULATED balanced panel under staggered adoption with cohort-specific, growing effects.

    Unit ``i`` of cohort ``c`` has ``y_it = a_i + b_t + tau_{c,e} + u_it`` with
    ``tau_{c,e} = effects[c] * (1 + growth * e)`` for ``e = t - c >= 0`` (zero before),
    unit and period effects drawn at random and AR(1) errors ``u`` (coefficient ``rho``).
    Earlier cohorts get larger effects by default, the case in which already-treated units
    used as controls bias two-way fixed effects.

    Returns
    -------
    pandas.DataFrame
        Columns ``unit``, ``period`` (1..n_periods), ``cohort`` (first treated period;
        10000 for never treated, as fixest's ``base_stagg``), ``rel``, ``effect`` (the
        planted effect), ``y``; ``attrs["true_att"]`` is the mean planted effect over
        treated post-treatment observations, which the ``ATT`` of :class:`SunAbraham` and
        :class:`StackedEventStudy` estimates; ``attrs["true_path"]`` the mean by relative
        period; ``attrs["simulated"] = True``.
    """
    for nm, v, lo in (("n_units", n_units, 2), ("n_periods", n_periods, 3)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ParameterError(nm, v, f"must be a whole number >= {lo}")
    cohorts = [int(c) for c in cohorts]
    if not cohorts or min(cohorts) < 2 or max(cohorts) > n_periods:
        raise ParameterError("cohorts", cohorts, f"must be periods from 2 to {n_periods} (period 1 is a pre-period)")
    if not 0 <= never_share < 1:
        raise ParameterError("never_share", never_share, "must lie in [0, 1)")
    if effects is None:
        effects = np.linspace(3.0, 1.0, len(cohorts))
    effects = np.asarray(effects, dtype=float)
    if effects.shape != (len(cohorts),):
        raise ParameterError("effects", list(effects), f"needs one effect per cohort ({len(cohorts)})")
    rng = np.random.default_rng(seed)
    n_never = round(never_share * n_units)
    coh = np.r_[np.full(n_never, 10000), np.resize(cohorts, n_units - n_never)]
    eff_of = dict(zip(cohorts, effects))
    t = np.arange(1, n_periods + 1)
    a = rng.normal(0, 1, n_units)
    b = np.cumsum(rng.normal(0.1, 0.3, n_periods))
    u = np.empty((n_units, n_periods))
    u[:, 0] = rng.normal(0, noise, n_units) / np.sqrt(max(1e-12, 1 - rho ** 2))
    for j in range(1, n_periods):
        u[:, j] = rho * u[:, j - 1] + rng.normal(0, noise, n_units)
    rel = t[None, :] - coh[:, None]
    eff = np.zeros((n_units, n_periods))
    for c, e0 in eff_of.items():
        m = (coh == c)[:, None] & (rel >= 0)
        eff = np.where(m, e0 * (1 + growth * rel), eff)
    y = a[:, None] + b[None, :] + eff + u
    df = pd.DataFrame({"unit": np.repeat(np.arange(n_units), n_periods), "period": np.tile(t, n_units),
                       "cohort": np.repeat(coh, n_periods), "rel": rel.ravel(), "effect": eff.ravel(), "y": y.ravel()})
    post = (df["cohort"] < 10000) & (df["rel"] >= 0)
    df.attrs["true_att"] = float(df.loc[post, "effect"].mean())
    df.attrs["true_path"] = df[df["cohort"] < 10000].groupby("rel")["effect"].mean().to_dict()
    df.attrs["simulated"] = True
    return df


def bias_table(reps: int = 200, *, seed: int = 0, alpha: float = 0.05, pre: int = 2, post: int = 3,
               **sim_kwargs) -> pd.DataFrame:
    """Bias, RMSE and interval coverage of the aggregate effect over SIMULATED panels.

    Each replication draws :func:`simulate_staggered` (``sim_kwargs``; seeds ``seed`` ...
    ``seed + reps - 1``) and fits static and dynamic TWFE, Sun-Abraham and the stacked
    estimator (one event per cohort, window ``-pre..+post``), each against its own target:
    the mean planted effect over the treated post-treatment observations that the estimator
    averages (all of them for TWFE and Sun-Abraham, those inside the windows for stacking).

    Returns
    -------
    pandas.DataFrame
        One row per estimator: ``truth`` (mean target), ``mean_estimate``, ``bias``,
        ``rmse``, ``mean_se``, ``sd_estimate`` and ``coverage`` of the ``1 - alpha`` interval.
    """
    from raidstudy.models.staggered.estimators import (
        TWFE,
        StackedEventStudy,
        SunAbraham,
    )

    rows = []
    for r in range(int(reps)):
        p = simulate_staggered(seed=seed + r, **sim_kwargs)
        truth = p.attrs["true_att"]
        coh = sorted(c for c in p["cohort"].unique() if c < 10000)
        ev = pd.DataFrame({"event": [f"cohort {c}" for c in coh], "time": coh,
                           "units": [sorted(p.loc[p["cohort"] == c, "unit"].unique()) for c in coh]})
        ok = [c for c in coh if c - pre >= 1 and c + post <= p["period"].max()]
        ev = ev[ev["time"].isin(ok)]
        win = p[p["cohort"].isin(ok) & (p["rel"] >= 0) & (p["rel"] <= post)]
        kw = {"outcome": "y", "unit": "unit", "time": "period"}
        fits = {
            "TWFE (static)": (TWFE(p, cohort="cohort", **kw).fit(), truth),
            "TWFE (dynamic, averaged)": (TWFE(p, cohort="cohort", dynamic=True, **kw).fit(), truth),
            "Sun-Abraham IW": (SunAbraham(p, cohort="cohort", **kw).fit(), truth),
            "stacked, clean controls": (StackedEventStudy(p, events=ev, pre=pre, post=post, **kw).fit(),
                                        float(win["effect"].mean())),
        }
        for name, (res, tr) in fits.items():
            ci = res.conf_int(alpha).loc["ATT"]
            rows.append({"estimator": name, "rep": r, "truth": tr, "estimate": float(res.params["ATT"]),
                         "se": float(res.std_errors["ATT"]), "covered": bool(ci["lower"] <= tr <= ci["upper"])})
    d = pd.DataFrame(rows)
    d["err"] = d["estimate"] - d["truth"]
    out = d.groupby("estimator", sort=False).agg(
        truth=("truth", "mean"), mean_estimate=("estimate", "mean"), bias=("err", "mean"),
        rmse=("err", lambda e: float(np.sqrt(np.mean(e ** 2)))), mean_se=("se", "mean"),
        sd_estimate=("estimate", "std"), coverage=("covered", "mean"))
    out.attrs["reps"] = int(reps)
    return out.reset_index()
