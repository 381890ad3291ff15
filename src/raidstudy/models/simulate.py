"""Simulated series with planted raid effects, for tests, examples and benchmarks.

Everything produced here is labelled as simulated: the series name starts with
``simulated``, ``attrs["simulated"]`` is true, and a study run on such a series says so in
its notebook and in ``results.json``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from raidstudy.io import atomic_write_text

__all__ = [
    "Calibration",
    "calibrate",
    "fit_arma11",
    "is_simulated",
    "simulate_calibrated",
    "simulate_its",
    "write_simulated_csv",
]

#: Planted weekly pattern on the log scale (Mon..Sun): weekends busier.
DOW_EFFECT = np.array([0.0, -0.05, 0.0, 0.02, 0.05, 0.20, 0.15])


def simulate_its(
    *,
    family: str = "negbin",
    n: int = 730,
    event: int = 500,
    level: float = -0.5,
    slope: float = 0.002,
    trend: float = 0.0002,
    base: float = 100.0,
    ar: float = 0.3,
    noise_sd: float = 0.05,
    nb_alpha: float = 0.05,
    fourier_amp: float = 0.1,
    start: str = "2018-01-01",
    seed: int = 0,
) -> pd.DataFrame:
    """One simulated daily series with a planted level and slope change.

    The linear predictor (log scale for count families, identity for gaussian) is
    ``log(base) + trend*t + level*L + slope*(t-event)*L + dow + fourier + u_t`` with
    AR(1) errors ``u_t = ar*u_{t-1} + e_t``, ``e_t ~ N(0, noise_sd^2)``. Counts are then
    Poisson (``poisson``/``quasipoisson``) or NB2 with ``nb_alpha`` (``negbin``) around
    ``exp(eta)``; for ``gaussian`` the outcome is ``base * eta_without_log`` on a scale
    where the effects are additive: ``y = base + base*(trend*t + level*L + ...) + base*u_t``.

    Returns a DataFrame indexed by date with ``y`` (simulated) and ``mu`` (the
    conditional mean given the AR errors), with ``attrs["simulated"] = True``.
    """
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq="D")
    t = np.arange(n, dtype=float)
    L = (t >= event).astype(float)
    e = rng.standard_normal(n) * noise_sd
    u = np.empty(n)
    u[0] = e[0] / np.sqrt(1 - ar ** 2) if abs(ar) < 1 else e[0]
    for i in range(1, n):
        u[i] = ar * u[i - 1] + e[i]
    seas = DOW_EFFECT[np.asarray(idx.day_of_week)] + fourier_amp * np.sin(2 * np.pi * np.asarray(idx.day_of_year) / 365.25)
    lin = trend * t + level * L + slope * (t - event) * L + seas
    if family == "gaussian":
        mu = base * (1.0 + lin)
        y = mu + base * u
        out = pd.DataFrame({"y": y, "mu": mu}, index=idx)
    else:
        mu = np.exp(np.log(base) + lin + u)
        if family == "negbin":
            lam = rng.gamma(1.0 / nb_alpha, nb_alpha * mu)
            y = rng.poisson(lam)
        else:
            y = rng.poisson(mu)
        out = pd.DataFrame({"y": y.astype(float), "mu": mu}, index=idx)
    out.index.name = "date"
    out.attrs["simulated"] = True
    return out


def write_simulated_csv(
    path,
    *,
    start: str = "2021-01-01",
    n_days: int = 400,
    event: str = "2021-10-01",
    level_ratio: float = 0.5,
    base: float = 200.0,
    seed: int = 0,
    **kwargs,
) -> pd.DataFrame:
    """Write a SIMULATED treated series and a control as a generic ``date,value,series`` CSV.

    ``simulated_counts`` has a planted jump of ``level_ratio`` (a rate ratio) at ``event``;
    ``simulated_control`` has none. Other keywords go to :func:`simulate_its`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "sim.csv"
    >>> df = write_simulated_csv(p, n_days=60, event="2021-02-01")
    >>> sorted(df["series"].unique())
    ['simulated_control', 'simulated_counts']
    """
    pos = int(pd.date_range(start, periods=n_days, freq="D").searchsorted(pd.Timestamp(event)))
    common = dict(n=n_days, event=pos, start=start, base=base, trend=0.0, slope=0.0, fourier_amp=0.0)
    common.update(kwargs)
    treated = simulate_its(level=math.log(level_ratio), seed=seed, **common)
    control = simulate_its(level=0.0, seed=seed + 1, **common)
    frames = [
        pd.DataFrame({"date": d.index.strftime("%Y-%m-%d"), "value": d["y"].round().astype(int), "series": name})
        for name, d in (("simulated_counts", treated), ("simulated_control", control))
    ]
    both = pd.concat(frames, ignore_index=True)
    atomic_write_text(path, both.to_csv(index=False, lineterminator="\n"))
    return both


def is_simulated(series: pd.Series) -> bool:
    """True when a series is labelled as simulated (by ``attrs`` or by its name)."""
    if series.attrs.get("simulated"):
        return True
    return str(series.name or "").lower().startswith("simulated")


# --------------------------------------------------------------------------- calibrated simulator
@dataclass(frozen=True)
class Calibration:
    """A simulator calibrated on a fitted ITS model (see :func:`calibrate`).

    The truth is the fitted linear predictor of the calibrating model (the planted level
    and slope are its estimates), on the same grid, with the same missing and excluded
    periods; the noise on the log scale is the ARMA(1,1) fitted to its log residuals.
    """

    index: pd.Index  # the regular grid of the series
    outcome: str  # the simulated outcome column (starts with "simulated")
    source: str  # what it was calibrated on (model name / outcome)
    event: Any  # the event label, as given to ITS
    event_pos: int
    family: str
    its_kwargs: dict  # ITS keywords that rebuild the same design (all but data and event)
    names: tuple  # term names in design order
    params: pd.Series  # the truth: coefficients of the calibrating fit
    eta: np.ndarray  # true linear predictor (with log offset) on every grid period
    eta_cf: np.ndarray  # the same with the event terms set to zero (counterfactual)
    missing: np.ndarray  # bool, periods with no outcome (NaN in every simulated series)
    excluded: np.ndarray  # bool, transition periods (simulated, but left out of the fit)
    offset: np.ndarray | None  # exposure on the grid (None without an offset)
    residuals: np.ndarray  # log((y + 0.5) / mu) on the fitted periods (y - mu for gaussian), NaN elsewhere
    phi: float  # ARMA(1,1) of the residuals (statsmodels SARIMAX, NaN where not fitted)
    theta: float
    sigma: float  # innovation standard deviation
    arma_converged: bool
    level_term: str = "level"
    slope_term: str | None = "slope"

    @property
    def level(self) -> float:
        """True level change (the planted jump on the link scale)."""
        return float(self.params[self.level_term])

    @property
    def slope(self) -> float:
        return float(self.params[self.slope_term]) if self.slope_term else 0.0

    def marginal_sd(self, phi: float | None = None, theta: float | None = None, sigma: float | None = None) -> float:
        """Stationary SD of ARMA(1,1) noise ``u_t = phi u_{t-1} + e_t + theta e_{t-1}``."""
        ph = self.phi if phi is None else phi
        th = self.theta if theta is None else theta
        sg = self.sigma if sigma is None else sigma
        return float(sg * math.sqrt((1 + 2 * ph * th + th ** 2) / (1 - ph ** 2)))

    @property
    def post(self) -> np.ndarray:
        """Post window of the effects: observed periods from the event on (transition periods included)."""
        return (np.arange(len(self.index)) >= self.event_pos) & ~self.missing

    def true_mean(self) -> np.ndarray:
        """The true mean path E[y_t] (inverse link of ``eta``)."""
        return self.eta if self.family == "gaussian" else np.exp(self.eta)

    def true_counterfactual(self) -> np.ndarray:
        """The true counterfactual mean path (event terms zero)."""
        return self.eta_cf if self.family == "gaussian" else np.exp(self.eta_cf)

    def true_relative(self, y: Any | None = None) -> float:
        """True relative effect over the post window, ``sum(obs) / sum(true counterfactual mean) - 1``.

        With ``y`` (a simulated series) the observed sum is that series' own (the quantity the
        interval of ``ITSResults.effects()["relative"]`` is about: observed against the
        counterfactual mean); without, the true mean path replaces it.
        """
        post = self.post
        cf = self.true_counterfactual()[post].sum()
        if y is None:
            obs = self.true_mean()[post].sum()
        else:
            obs = float(np.nansum(np.asarray(y, dtype=float)[post]))
        return float(obs / cf - 1.0)

    def model(self, data: pd.DataFrame):
        """The ITS model of the calibrating study on a simulated frame (not fitted)."""
        from raidstudy.models.its import ITS

        return ITS(data, outcome=self.outcome, event=self.event, **self.its_kwargs)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "family": self.family, "periods": len(self.index),
                "start": str(self.index[0]), "end": str(self.index[-1]), "event": str(self.event),
                "n_missing": int(self.missing.sum()), "n_excluded": int(self.excluded.sum()),
                "level": self.level, "slope": self.slope, "phi": self.phi, "theta": self.theta,
                "sigma": self.sigma, "marginal_sd": self.marginal_sd(), "arma_converged": self.arma_converged}


def fit_arma11(x: np.ndarray) -> tuple[float, float, float, bool]:
    """ARMA(1,1) without a mean fitted by statsmodels SARIMAX (Kalman filter; NaN = missing).

    Returns ``(phi, theta, sigma, converged)`` in the convention
    ``u_t = phi u_{t-1} + e_t + theta e_{t-1}``.
    """
    import warnings

    from statsmodels.tsa.statespace.sarimax import SARIMAX

    x = np.asarray(x, dtype=float)
    x = x - np.nanmean(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = SARIMAX(x, order=(1, 0, 1), trend="n").fit(disp=False)
    p = dict(zip(f.model.param_names, np.asarray(f.params)))
    return (float(p["ar.L1"]), float(p["ma.L1"]), float(math.sqrt(p["sigma2"])),
            bool(f.mle_retvals.get("converged", False)))


def calibrate(results) -> Calibration:
    """Calibrate a simulator on a fitted single-series ITS model (``ITSResults``).

    * truth: the fitted linear predictor ``X beta_hat + log offset`` on every period of the
      grid (the planted level and slope are the fit's estimates); the counterfactual sets
      the event terms to zero;
    * grid, missing and excluded periods: those of the fitted model;
    * noise: an ARMA(1,1) fitted with statsmodels (SARIMAX, Kalman filter) to the log residuals
      ``log((y + 0.5) / mu)`` on the fitted periods, NaN elsewhere (``y - mu`` for the gaussian
      family), centred; its innovation SD.

    Simulate from it with :func:`simulate_calibrated`.
    """
    from raidstudy.errors import ModelError

    model = results.model
    if model.controls:
        raise ModelError("calibrate() needs a single-series model; this one has control series "
                         f"{model.controls}")
    d = model.design
    b = results.params.to_numpy()
    eta = d.X @ b + d.log_offset
    Xcf = d.X.copy()
    Xcf[:, d.effect_cols] = 0.0
    eta_cf = Xcf @ b + d.log_offset
    fam = results.family
    if fam == "gaussian":
        resid = d.y - eta
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            resid = np.log((d.y + 0.5) / np.exp(eta))
    resid = np.where(d.fit, resid, np.nan)
    phi, theta, sigma, conv = fit_arma11(resid)
    idx = model.frame.index
    its_kwargs = {"family": fam, "slope": model.slope, "dow": model.dow, "fourier": model.fourier,
                  "holidays": model.holidays, "exclude": list(idx[np.asarray(model.excluded_pos, dtype=int)]),
                  "freq": model.frame.freq.code}
    offset = None
    if model.offset:
        offset = np.exp(d.log_offset)
        its_kwargs["offset"] = "exposure"
    outcome = "simulated_" + str(model.outcome or "y")
    return Calibration(
        index=idx, outcome=outcome, source=str(model.name or model.outcome), event=idx[model.event_pos],
        event_pos=int(model.event_pos), family=fam, its_kwargs=its_kwargs, names=tuple(d.names),
        params=results.params.copy(), eta=eta, eta_cf=eta_cf, missing=d.missing.copy(),
        excluded=d.excluded.copy(), offset=offset, residuals=resid, phi=phi, theta=theta, sigma=sigma,
        arma_converged=conv, level_term=d.headline.get("level", "level"),
        slope_term=d.headline.get("slope") if model.slope else None)


def _arma_path(n: int, phi: float, theta: float, sd: np.ndarray, rng: np.random.Generator,
               burn: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """ARMA(1,1) path with time-varying innovation SD ``sd`` (started at stationarity by a burn-in).

    Returns the path and its exact variance at each period.
    """
    e = rng.standard_normal(n + burn)
    s = np.r_[np.full(burn, sd[0]), sd]
    e = e * s
    u = np.empty(n + burn)
    var = np.empty(n + burn)
    u[0] = e[0]
    var[0] = s[0] ** 2 * (1 + 2 * phi * theta + theta ** 2) / (1 - phi ** 2) if abs(phi) < 1 else s[0] ** 2
    for t in range(1, n + burn):
        u[t] = phi * u[t - 1] + e[t] + theta * e[t - 1]
        var[t] = phi ** 2 * var[t - 1] + (theta ** 2 + 2 * phi * theta) * s[t - 1] ** 2 + s[t] ** 2
    return u[burn:], var[burn:]


def simulate_calibrated(
    cal: Calibration,
    *,
    seed: int | Sequence[int],
    post_innovation_ratio: float = 1.0,
    phi: float | None = None,
    theta: float | None = None,
    sigma: float | None = None,
    level: float | None = None,
) -> pd.DataFrame:
    """One SIMULATED series from a :class:`Calibration`.

    ``y_t ~ Poisson(exp(eta_t + u_t - v_t / 2))`` for count families (``y_t = eta_t + u_t``
    for gaussian), with ``u`` ARMA(1,1) (``phi``, ``theta``, innovation SD ``sigma``; by
    default the calibrated ones) started at stationarity, and ``v_t`` the exact variance
    of ``u_t``, so that the mean path is exactly the truth ``exp(eta_t)`` even when the
    noise variance changes. ``post_innovation_ratio`` is the ratio of the post-event to the
    pre-event innovation *variance* (2.3: the post-event innovations have 2.3 times the
    variance). ``level`` replaces the planted level change (default: the calibrated one).
    Missing periods are NaN; excluded (transition) periods are simulated as any other.

    Returns a frame on the calibration grid with the outcome column ``cal.outcome``
    (``simulated_<outcome>``), ``mu`` (the conditional mean given ``u``) and, with an
    offset, ``exposure``; ``attrs["simulated"] = True`` and ``attrs["truth"]``.
    """
    if post_innovation_ratio <= 0:
        raise ValueError(f"post_innovation_ratio must be positive, got {post_innovation_ratio}")
    rng = np.random.default_rng(seed)
    ph = cal.phi if phi is None else float(phi)
    th = cal.theta if theta is None else float(theta)
    sg = cal.sigma if sigma is None else float(sigma)
    n = len(cal.index)
    t = np.arange(n)
    sd = np.where(t >= cal.event_pos, sg * math.sqrt(post_innovation_ratio), sg)
    u, var = _arma_path(n, ph, th, sd, rng)
    eta = cal.eta
    if level is not None:
        eta = eta + (float(level) - cal.level) * (t >= cal.event_pos)
    if cal.family == "gaussian":
        mu = eta + u
        y = mu.copy()
    else:
        mu = np.exp(eta + u - var / 2.0)
        y = rng.poisson(mu).astype(float)
    y[cal.missing] = np.nan
    out = pd.DataFrame({cal.outcome: y, "mu": mu}, index=cal.index)
    if cal.offset is not None:
        out["exposure"] = cal.offset
    out.attrs["simulated"] = True
    out.attrs["name"] = cal.outcome
    out.attrs["truth"] = {"level": cal.level if level is None else float(level), "slope": cal.slope,
                          "phi": ph, "theta": th, "sigma": sg, "post_innovation_ratio": float(post_innovation_ratio)}
    return out
