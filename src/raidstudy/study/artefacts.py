"""The study's artefacts: ``results.json``, ``run.json``, figures and tables in a run directory.

``results.json`` is the contract that the runner, the summary tables and users' scripts
read. It is deterministic: sorted keys, floats rounded to 12 significant digits, no clock
times (those go to ``run.json``), so the same inputs give a byte-identical file.
"""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from raidstudy.io import atomic_path, atomic_write_text, sha256_file, write_json
from raidstudy.lock import lock_checksum
from raidstudy.report.plots import SAVE_DPI, figure_png

__all__ = [
    "RESULTS_SCHEMA",
    "KEY_PACKAGES",
    "package_versions",
    "provenance",
    "study_results",
    "save_figure",
    "write_table",
    "write_study",
    "start_run_record",
    "read_results",
]

RESULTS_SCHEMA = "raidstudy.results/1"
KEY_PACKAGES = ("raidstudy", "numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyarrow", "matplotlib", "seaborn")


def package_versions(names=KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change a number in the results."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def provenance(spec) -> dict[str, Any]:
    """Where the numbers come from: package versions, Python, the data files and their checksums."""
    return {
        "python": platform.python_version(),
        "packages": package_versions(),
        "data_checksum": spec.data_checksum,
        "data_files": dict(sorted(spec.data_files.items())),
        "simulated_data": bool(spec.simulated),
        "lock_sha256": lock_checksum(),
    }


def dynamic_analysis(spec, results):
    """The study's dynamic path: the event-study bins and their step-plus-decay summary.

    Both use the study's model (trend, seasonality, transition periods) and covariance
    (:meth:`~raidstudy.study.parameters.StudySpec.fit_kwargs`).

    Returns
    -------
    (EventStudyResults, DynamicSummary)
    """
    import warnings

    from raidstudy.models.its.dynamic import EventStudy, dynamic_summary

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = EventStudy.from_model(results.model).fit(**spec.fit_kwargs())
        ds = dynamic_summary(results, alpha=spec.parameters["alpha"])
    return es, ds


def dynamic_results(spec, event_study, summary) -> dict[str, Any]:
    """The ``dynamic`` part of ``results.json``: the path, its effects and its summary."""
    p = spec.parameters
    d = event_study.to_dict(alpha=p["alpha"], recovery_share=p["recovery_share"], n_sim=p["n_sim"], seed=p["seed"])
    es = dict(d["event_study"])
    es["bin_width"] = int(event_study.model.bin_width)
    es["cov_description"] = event_study.cov_description
    eff = d["effects"]
    return {"event_study": es,
            "effects": {k: eff[k] for k in ("post_window", "relative", "cumulative") if k in eff},
            "summary": summary.to_dict()}


def study_results(spec, results, *, robustness: Mapping[str, Any] | None = None,
                  sentences: Mapping[str, str] | None = None, dynamic: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Assemble the ``results.json`` dictionary for a fitted study.

    Parameters
    ----------
    spec : StudySpec
        The validated study (from :func:`raidstudy.study.parameters.validate_parameters`).
    results : ITSResults
        The fitted model.
    robustness : mapping, optional
        Robustness fits (for example the ARIMA-errors model), already as plain dicts.
    sentences : mapping, optional
        Generated narrative sentences, stored so that reports quote the same words.
    """
    from raidstudy.study.parameters import event_position

    p = spec.parameters
    body = results.to_dict(alpha=p["alpha"], recovery_share=p["recovery_share"], n_sim=p["n_sim"], seed=p["seed"])
    event = spec.event.to_dict()
    # The date the study used; the catalogue's date is kept beside it when overridden.
    event["catalogue_date"] = event.get("date")
    event["date"] = spec.event_date
    # An imprecise date is not fitted as a day-level break: the periods left out and why.
    event["transition_periods"] = int(spec.transition)
    event["precision_handling"] = spec.precision_note or "known to the day"
    out: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        # Where the file is written is not a result: output_dir lives in run.json, so the
        # same study gives the same bytes wherever it runs.
        "parameters": {k: v for k, v in p.items() if k != "output_dir"},
        "event": event,
        "provenance": provenance(spec),
        "data": {
            "outcome": spec.outcome_label,
            "control": p["control_feeds"] or p["control_series"] or None,
            "frequency": spec.freq,
            "window_start": spec.outcome.index[0],
            "window_end": spec.outcome.index[-1],
            "n_periods": int(len(spec.outcome)),
            "event_period": spec.outcome.index[event_position(spec.outcome, spec.event_date, p["period_label"])],
            "period_label": p["period_label"],
            "n_missing": int(spec.outcome.isna().sum()),
            "missing_dates": [d for d in spec.outcome.index[spec.outcome.isna()]],
            "simulated": bool(spec.simulated),
        },
    }
    out.update(body)
    if dynamic:
        out["dynamic"] = dict(dynamic)
    if robustness:
        out["robustness"] = dict(robustness)
    if sentences:
        out["sentences"] = dict(sentences)
    return out


def save_figure(fig, path: str | Path, *, formats=("png", "pdf"), dpi: int = SAVE_DPI) -> list[Path]:
    """Save a figure as PNG and PDF atomically; return the paths written.

    The PNG is :func:`raidstudy.report.plots.figure_png`'s: a figure already shown with
    :func:`~raidstudy.report.plots.show_figure` and unchanged since is not drawn again,
    and the file holds the picture the notebook shows. The PDF's creation date is left
    out so that reruns give identical files.
    """
    path = Path(path)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        with atomic_path(target, suffix=f".{fmt}") as tmp:
            if fmt == "png":
                Path(tmp).write_bytes(figure_png(fig, dpi=dpi))
            else:
                meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)
        written.append(target)
    return written


def write_table(df: pd.DataFrame, path: str | Path, *, caption: str | None = None, label: str | None = None) -> list[Path]:
    """Write a table as Markdown (``.md``) and LaTeX (``.tex``) atomically."""
    from raidstudy.report import tables

    path = Path(path)
    md = path.with_suffix(".md")
    tex = path.with_suffix(".tex")
    atomic_write_text(md, tables.to_markdown(df) + "\n")
    atomic_write_text(tex, tables.to_latex(df, caption=caption, label=label) + "\n")
    return [md, tex]


def start_run_record(output_dir: str | Path, parameters: Mapping[str, Any], *, notebook: str | None = None) -> Path:
    """Mark a run directory as running before any work: stale results are removed first.

    An interrupted run therefore never leaves a ``results.json`` that looks complete:
    ``run.json`` says ``"status": "running"`` until the runner sets ``"complete"``.
    """
    import datetime as _dt

    out = Path(output_dir)
    clear_artefacts(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "status": "running",
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": dict(parameters),
        "notebook": notebook,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "lock_sha256": lock_checksum(),
    }
    return write_json(out / "run.json", record)


#: Set (to ``"1"``) by the runner in the environment of the kernels it starts: :func:`write_study`
#: then writes ``results.json`` as :data:`STAGED_RESULTS`, and the runner moves it into place
#: last, once the report is rendered and ``run.json`` says complete (issue 14).
STAGE_ENV = "RAIDSTUDY_STAGE_RESULTS"
STAGED_RESULTS = ".results.staged.json"

#: Files every run writes at the top of its directory, besides run.json.
RUN_FILES = ("results.json", "report.html", "notebook.ipynb", "notebook-failed.ipynb", ".notebook.partial.ipynb",
             STAGED_RESULTS)


def clear_artefacts(out: Path) -> None:
    """Remove an earlier raidstudy run's artefacts from ``out``, and nothing else.

    Only a folder that a run has marked with its ``run.json`` is cleared: the fixed run
    files, and the figures and tables that run recorded (empty ``figures/`` and
    ``tables/`` folders go too). A non-empty folder without ``run.json`` is refused, so a
    mistyped ``output_dir`` never deletes a user's own files.

    Raises
    ------
    ParameterError
        ``out`` holds files but no ``run.json``.
    """
    import json

    from raidstudy.errors import ParameterError

    if not out.exists():
        return
    run = out / "run.json"
    if not run.exists():
        # papermill run by hand may already have put its output notebook here
        if any(not f.name.endswith(".ipynb") for f in out.iterdir()):
            raise ParameterError(
                "output_dir", out.as_posix() if out.is_absolute() else str(out),
                "is a folder with files that no raidstudy run wrote (it has no run.json)",
                hint="choose a new or empty folder, e.g. results/my-study",
            )
        return
    try:
        record = json.loads(run.read_text())
    except ValueError:
        record = {}
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for rel in [f for files in (record.get("artefacts") or {}).values() for f in files]:
        target = (out / rel).resolve()
        if out.resolve() in target.parents:  # never outside the run directory
            target.unlink(missing_ok=True)
    for sub in ("figures", "tables"):
        d = out / sub
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _update_run_record(out: Path, **fields: Any) -> Path:
    import json

    path = out / "run.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(fields)
    return write_json(path, record)


def write_study(spec, results_dict: Mapping[str, Any], *, figures: Mapping[str, Any] | None = None,
                tables_: Mapping[str, tuple[pd.DataFrame, str]] | None = None) -> dict[str, list[str]]:
    """Write a study's artefacts into its run directory.

    Parameters
    ----------
    spec : StudySpec
        The validated study; its ``output_dir`` is the run directory.
    results_dict : mapping
        From :func:`study_results`; written to ``results.json`` last, so that its presence
        means every other artefact of the notebook is in place.
    figures : mapping of name to matplotlib Figure
        Written to ``figures/<name>.png`` and ``.pdf``.
    tables_ : mapping of name to (DataFrame, caption)
        Written to ``tables/<name>.md`` and ``.tex``.

    Returns
    -------
    dict
        Relative paths of the files written, by kind.
    """
    import json

    out = spec.output_dir
    out.mkdir(parents=True, exist_ok=True)
    prior = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    if prior.get("status") != "running":
        # Not started by `raidstudy run` (papermill or Jupyter directly): nothing cleared
        # the directory, so do it here and start a fresh record.
        clear_artefacts(out)
        (out / "run.json").unlink(missing_ok=True)
    from raidstudy.study.runs import KERNEL_THREADS

    written: dict[str, list[str]] = {"figures": [], "tables": []}
    for name, fig in (figures or {}).items():
        for f in save_figure(fig, out / "figures" / name):
            written["figures"].append(f.relative_to(out).as_posix())
    for name, (df, caption) in (tables_ or {}).items():
        for f in write_table(df, out / "tables" / name, caption=caption, label=f"tab:{name}"):
            written["tables"].append(f.relative_to(out).as_posix())
    # Under the runner, results.json appears only once the whole run is complete.
    staged = prior.get("status") == "running" and os.environ.get(STAGE_ENV) == "1"
    results_path = write_json(out / (STAGED_RESULTS if staged else "results.json"), results_dict)
    extra: dict[str, Any] = {}
    if prior.get("status") != "running":
        # Run straight with papermill or Jupyter, not through `raidstudy run`: no runner
        # will add the HTML report, so the record is complete now.
        extra = {"status": "complete (notebook only, no HTML report)", "parameters": dict(spec.parameters),
                 "python": sys.version.split()[0], "packages": package_versions()}
    _update_run_record(
        out,
        **extra,
        data_checksum=spec.data_checksum,
        data_files=dict(sorted(spec.data_files.items())),
        artefacts=written,
        results_sha256=sha256_file(results_path),
        # the kernel's BLAS threads: results.json's last digits depend on them
        threads={k: os.environ.get(k) for k in KERNEL_THREADS},
    )
    written["results"] = ["results.json"]
    return written


def counts_around_event(spec, *, days: int = 7, weeks: int = 4) -> dict[str, Any]:
    """The counts behind the headline: each day from ``days`` before to ``days`` after the
    event, and weekly totals (Monday to Sunday) for ``weeks`` weeks either side of the
    event's week, from the whole outcome series; for the bundled data, the published
    counts of this event replicated (``seed_numbers.csv``).

    Returns
    -------
    dict
        ``daily`` and ``weekly`` (lists of ``{"date"/"week_start", "count", "n_missing"}``;
        a count is None when a day is missing, and a week's total is over its observed days)
        and ``replication`` (rows of :func:`raidstudy.data.seed.replicate` for this event and
        outcome, or an empty list).
    """
    y = spec.full_outcome
    out: dict[str, Any] = {"daily": [], "weekly": [], "replication": []}
    if not spec.freq.startswith("D"):
        return out
    # centred on the catalogued date (the study's event window starts earlier for an
    # imprecise date; the counts a reader looks for are around the date the sources give)
    e = pd.Timestamp(spec.event.date).normalize() if spec.precision_note else spec.event_date.normalize()
    for d in pd.date_range(e - pd.Timedelta(days=days), e + pd.Timedelta(days=days), freq="D"):
        v = y.get(d, np.nan)
        out["daily"].append({"date": d, "day": f"{d:%a}", "days_from_event": int((d - e).days),
                             "count": None if pd.isna(v) else float(v)})
    monday = e - pd.Timedelta(days=e.weekday())
    for k in range(-weeks, weeks + 1):
        ws = monday + pd.Timedelta(weeks=k)
        seg = y.reindex(pd.date_range(ws, ws + pd.Timedelta(days=6), freq="D"))
        out["weekly"].append({"week_start": ws, "weeks_from_event": k, "count": float(seg.sum(min_count=1))
                              if seg.notna().any() else None, "n_missing": int(seg.isna().sum())})
    p = spec.parameters
    if not p["series_csv"] and p["measure"] == "n_releases" and p["families"].lower() == "all":
        from raidstudy.data.indicators import SEED_FILE

        path = resolve_data_dir(p) / SEED_FILE
        if path.is_file():
            t = pd.read_csv(path, keep_default_na=False, na_values=[""])
            feeds = "+".join(sorted(_split_feeds(p["feeds"])))
            if "event_id" in t.columns:
                t = t[(t["event_id"] == spec.event.id) & (t["feeds"].map(lambda f: "+".join(sorted(f.split("+")))) == feeds)]
                out["replication"] = [{k: (None if pd.isna(v) else v) for k, v in r.items()}
                                      for r in t.drop(columns=["event_id"]).to_dict("records")]
    return out


def _split_feeds(text: str) -> list[str]:
    return [f.strip() for f in str(text).split(",") if f.strip()]


def resolve_data_dir(p: Mapping[str, Any]) -> Path:
    from raidstudy.study.parameters import resolve_path

    return resolve_path(p["data_dir"])


def counts_tables(counts: Mapping[str, Any]) -> dict[str, tuple[pd.DataFrame, str]]:
    """:func:`counts_around_event` as report tables (name -> (DataFrame, caption))."""
    from raidstudy.report.tables import fmt_int

    out: dict[str, tuple[pd.DataFrame, str]] = {}
    if counts.get("daily"):
        d = pd.DataFrame(counts["daily"])
        out["daily_counts"] = (pd.DataFrame({
            "date": pd.to_datetime(d["date"]).dt.strftime("%Y-%m-%d"), "day": d["day"],
            "days from event": d["days_from_event"], "count": d["count"].map(fmt_int)}).set_index("date"),
            "Daily counts around the event (missing: not collected)")
    if counts.get("weekly"):
        w = pd.DataFrame(counts["weekly"])
        out["weekly_totals"] = (pd.DataFrame({
            "week (Mon-Sun)": pd.to_datetime(w["week_start"]).dt.strftime("%Y-%m-%d"),
            "weeks from event": w["weeks_from_event"], "total": w["count"].map(fmt_int),
            "missing days": w["n_missing"]}).set_index("week (Mon-Sun)"),
            "Weekly totals before and after the event's week")
    if counts.get("replication"):
        r = pd.DataFrame(counts["replication"])
        tab = pd.DataFrame({
            "period": [f"{q} of {s}" if q == "week" else s for q, s in zip(r["quantity"], r["period_start"])],
            "published": r["published"].map(fmt_int)})
        for col in r.columns:
            if col.startswith("ours ("):
                zone = col[6:-1]
                tab[f"ours, {zone} days"] = r[col].map(fmt_int)
                tab[f"difference, {zone}"] = r[f"difference % ({zone})"].map(
                    lambda v: "" if v is None or pd.isna(v) else f"{v:+.1f} %")
        out["replication"] = (tab.set_index("period"), "Published counts (TorrentFreak, from Predb.org) "
                                                       "against the nZEDb data")
    return out


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the one inside a run directory)."""
    import json

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text())



def data_sentence(spec) -> str:
    """One paragraph describing the indicator in the estimation window, from the data."""
    from raidstudy.study.parameters import event_position

    y = spec.outcome
    t0 = event_position(y, spec.event_date, spec.parameters["period_label"])
    pre, post = y.iloc[:t0], y.iloc[t0 + spec.transition:]
    from raidstudy.models.its.data import UNITS

    unit = UNITS.get(spec.freq[0].upper(), "period")
    n_pre_win = min(28, len(pre))
    n_post_win = min(28, len(post))
    before = pre.iloc[-n_pre_win:].mean()
    after = post.iloc[:n_post_win].mean()
    change = (after / before - 1) * 100 if before else float("nan")
    text = (
        f"The window runs from {y.index[0].date()} to {y.index[-1].date()} ({len(y)} {unit}s, "
        f"{int(y.isna().sum())} missing). In the {n_pre_win} {unit}s before the event the indicator "
        f"averaged {before:,.1f} per {unit}; in the first {n_post_win} {unit}s after the transition "
        f"it averaged {after:,.1f} ({change:+.0f}%). These raw means ignore trend and seasonality; "
        f"the model below accounts for both."
    )
    if spec.simulated:
        text = "**Simulated data.** " + text
    return text


def diagnostics_table(results_dict: Mapping[str, Any]) -> pd.DataFrame:
    """Residual checks and the ARIMA-errors robustness estimate, as one small table.

    Reads the ``diagnostics`` and ``robustness`` parts of a ``results.json`` dictionary.
    """
    d = results_dict.get("diagnostics", {})
    rows = []
    for key, label in (("ljung_box", "Ljung-Box"), ("breusch_godfrey", "Breusch-Godfrey")):
        if key in d:
            t = d[key]
            rows.append((f"{label} ({t['lags']} lags)", t["statistic"], t["p_value"], "residual autocorrelation"))
    disp = d.get("dispersion", {})
    if "pearson_dispersion" in disp:
        rows.append(("Pearson dispersion", disp["pearson_dispersion"], None, "about 1 if the family fits"))
    if "lr_vs_poisson" in disp:
        rows.append(("LR test, negative binomial vs Poisson", disp["lr_vs_poisson"], disp["lr_vs_poisson_p_value"],
                     "overdispersion"))
    arima = (results_dict.get("robustness") or {}).get("arima")
    if arima:
        lv = arima["level"]
        p_, d_, q_ = arima["order"]
        what = f"level change with ARMA({p_},{q_}) errors" if d_ == 0 else f"level change with ARIMA({p_},{d_},{q_}) errors"
        cov = "; under-covers on persistent series (docs/coverage.md)" if arima.get("coverage_note") else ""
        if "pct" in lv:
            rows.append((what + " (%)", lv["pct"], None,
                         f"interval {lv['pct_ci_low']:.1f}% to {lv['pct_ci_high']:.1f}%{cov}"))
        else:
            rows.append((what, lv["estimate"], None, f"interval {lv['ci_low']:.3g} to {lv['ci_high']:.3g}{cov}"))
    return pd.DataFrame(rows, columns=["check", "statistic", "p_value", "note"]).set_index("check")


def default_variants(spec) -> dict[str, dict[str, Any]]:
    """The specification checks :func:`sensitivity_table` runs by default.

    Each changes one choice of the main model (or two that belong together) and keeps the
    rest; lengths are in the series' own periods (two years is 730 days, 104 weeks or 24
    months), and the variants that make no sense for the data are left out (annual terms
    for yearly data, a P2P control for a user's own series, a month of HAC lags for
    anything but daily data).
    """
    p = spec.parameters
    from raidstudy.models.its.data import PERIODS_PER_YEAR

    ppy = int(round(PERIODS_PER_YEAR.get(spec.freq[0].upper()) or 0))
    v: dict[str, dict[str, Any]] = {"main specification": {}}
    if ppy > 1:
        v["two years before the event"] = {"pre_periods": 2 * ppy}
        v["two years before, 2 annual Fourier pairs"] = {"pre_periods": 2 * ppy, "fourier": 2}
    v["half the post window"] = {"post_periods": "half"}
    v["no transition period excluded"] = {"transition_periods": 0}
    v["three transition periods excluded"] = {"transition_periods": 3}
    v["no slope change"] = {"slope": False}
    for fam, label in (("negbin", "negative binomial family"), ("quasipoisson", "quasi-Poisson family"),
                       ("gaussian", "Gaussian family (OLS on counts)")):
        if fam != p["model_family"]:
            v[label] = {"model_family": fam}
    if p["cov_type"] == "ewc":
        v["EWC with twice the cosine terms"] = {"ewc_terms": 2 * p["ewc_terms"]}
    v["Newey-West HAC, plug-in lags, normal critical values"] = {"cov_type": "hac", "hac_lags": "auto"}
    if ppy == 365:
        v["Newey-West HAC with 28 lags (four weeks)"] = {"cov_type": "hac", "hac_lags": "28"}
    if not p["series_csv"] and "xrelp2p" not in p["feeds"]:
        v["P2P feed xrelp2p as control"] = {"control_feeds": "xrelp2p"}
    return v


def sensitivity_table(spec, *, variants: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Refit the study under alternative specifications and tabulate the level change.

    Each variant overrides some parameters of ``spec`` and goes through
    :func:`raidstudy.study.parameters.validate_parameters` like any study; a variant the data cannot
    support (say, a control feed for a user series) is listed with the reason instead of
    an estimate, never dropped.

    Parameters
    ----------
    spec : StudySpec
        The main study.
    variants : mapping of label to parameter overrides, optional
        Default :func:`default_variants`. ``post_periods="half"`` halves the main window.

    Returns
    -------
    DataFrame
        Index: variant label; columns ``level_pct`` (count families) or ``level``
        (gaussian, in outcome units), their interval, ``p_value``, ``nobs`` and ``note``.

    Notes
    -----
    Only the level change is compared: it is the one effect every variant defines the
    same way (the jump at the event period, conditional on the pre-event trend).
    """
    import warnings

    from raidstudy.errors import RaidstudyError
    from raidstudy.study.parameters import validate_parameters

    rows = []
    alpha = spec.parameters["alpha"]
    for label, over in (variants or default_variants(spec)).items():
        params = dict(spec.parameters)
        over = dict(over)
        if over.get("post_periods") == "half":
            over["post_periods"] = max(1 + params["transition_periods"], params["post_periods"] // 2)
        params.update(over)
        row: dict[str, Any] = {"variant": label, "family": params["model_family"]}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = spec if not over else validate_parameters(params)
                res = v.fit()
            # In a comparative model `level` is the control's jump; the effect is the difference.
            term = res.model.design.headline["level"]
            est = float(res.params[term])
            lo, hi = (float(x) for x in res.conf_int(alpha).loc[term])
            if res.family == "gaussian":
                row.update(level=est, level_ci_low=lo, level_ci_high=hi)
            else:
                import math

                row.update(level_pct=100 * (math.exp(est) - 1), level_pct_ci_low=100 * (math.exp(lo) - 1),
                           level_pct_ci_high=100 * (math.exp(hi) - 1))
            row.update(term=term, p_value=float(res.pvalues[term]), nobs=int(res.nobs), note="")
            lvl = 100 * (1 - alpha)
            if res.family == "gaussian":
                row["display"] = f"{est:,.1f} ({lo:,.1f} to {hi:,.1f})"
            else:
                row["display"] = (f"{row['level_pct']:+.1f}% ({row['level_pct_ci_low']:+.1f}% to "
                                  f"{row['level_pct_ci_high']:+.1f}%)")
            row["interval"] = f"{lvl:g}%"
        except RaidstudyError as err:
            row["note"] = f"not estimated: {err}"
            row["display"] = "not estimated"
        rows.append(row)
    cols = ["variant", "family", "term", "display", "interval", "level_pct", "level_pct_ci_low", "level_pct_ci_high", "level", "level_ci_low",
            "level_ci_high", "p_value", "nobs", "note"]
    df = pd.DataFrame(rows)
    return df[[c for c in cols if c in df.columns]].set_index("variant")


def robustness(spec, results, sensitivity: pd.DataFrame | None = None, placebo=None) -> dict[str, Any]:
    """The robustness part of ``results.json``: the ARIMA-errors refit and the sensitivity table.

    The ARIMA refit is defined for a single series; for a comparative model it is
    recorded as not estimated, with the reason.
    """
    out: dict[str, Any] = {}
    if spec.control is None:
        out["arima"] = results.arima(order=(1, 0, 1), alpha=spec.parameters["alpha"]).to_dict()
    else:
        out["arima"] = None
        out["arima_note"] = "not estimated: the ARMA-errors refit is defined for a single series, not a comparative model"
    if sensitivity is not None:
        out["sensitivity"] = sensitivity.reset_index().to_dict(orient="records")
    if placebo is not None:
        out["placebo"] = placebo.to_dict()
    elif spec.parameters["n_placebos"]:
        out["placebo"] = {"note": spec.notes.get("placebo", "not run")}
    return out


def placebo_check(spec, results):
    """In-time placebos over the whole history (:func:`raidstudy.models.placebo.in_time_placebos`).

    The same model and window design as the study, refitted on non-overlapping windows of
    the whole indicator outside the study's window (windows holding another catalogued
    event are excluded, unless the series is simulated), plus ``n_placebos`` overlapping
    placebo dates for the figure.
    Returns ``None`` when ``n_placebos`` is 0 or no window fits; :func:`robustness` then
    records why.
    """
    import warnings

    from raidstudy.data.events import load_events
    from raidstudy.errors import DataError, ParameterError
    from raidstudy.models.placebo import in_time_placebos

    p = spec.parameters
    if not p["n_placebos"]:
        return None
    full = pd.DataFrame({spec.outcome_column: spec.full_outcome})
    if spec.control is not None:
        full["control"] = spec.full_control
    # Real enforcement events can move any real indicator (a user's own series too), so their
    # windows are no placebos; a simulated series knows nothing of them.
    events = None
    if not spec.simulated:
        try:
            events = load_events()
        except (DataError, ParameterError, OSError):
            events = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return in_time_placebos(
                full, event=spec.event_date, pre_periods=p["pre_periods"], post_periods=p["post_periods"],
                its_kwargs=spec.its_kwargs(), fit_kwargs=spec.fit_kwargs(), other_events=events,
                n_dense=p["n_placebos"],
            )
    except (DataError, ParameterError) as err:
        spec.notes["placebo"] = f"not run: {err}"
        return None


def placebo_sentence(placebo, *, event_label: str, critical_value: float | None = None,
                     alpha: float = 0.05) -> str:
    """A quotable sentence on the placebo check, built from its numbers.

    It leads with the number of independent windows and the smallest p-value they allow,
    so that a p-value at its floor is never read as stronger evidence than it is. With the
    study's ``critical_value`` for the jump, it also says how often the dense placebo t
    statistics exceed it (``alpha`` would be exact calibration on a series without breaks).
    """
    import numpy as np

    d = placebo.to_dict()
    n, real = d["n_independent"], d["real"]
    w = d["window"]
    scale = "log rate ratio" if placebo.family != "gaussian" else "outcome"
    text = (f"Refitted with the same design ({w['pre_periods']} periods before a fake event, {w['post_periods']} "
            f"from it on) on {n} non-overlapping window{'s' if n != 1 else ''} of the whole history outside the "
            f"study window that hold{'s' if n == 1 else ''} no other catalogued event, the real jump "
            f"({real['estimate']:+.3f} on the "
            f"{scale} scale, t = {real['statistic']:+.1f}) ")
    if n:
        text += (f"was matched {d['n_as_extreme']} time{'s' if d['n_as_extreme'] != 1 else ''} "
                 f"(p = {d['p_value']:.2g}; studentized, p = {d['p_value_studentized']:.2g}); with {n} "
                 f"window{'s' if n != 1 else ''} the smallest attainable p-value is {d['min_attainable_p']:.2g}"
                 + (", so this check cannot reach the 5% level whatever the data" if not d["can_reach_5pct"]
                    else "") + ".")
    else:
        text += "could not be compared with any independent window."
    dense = placebo.dense
    if dense is not None and len(dense):
        est = dense["estimate"].to_numpy(dtype=float)
        st = dense["statistic"].to_numpy(dtype=float)
        ok = np.isfinite(est)
        k_jump = int(np.sum(np.abs(est[ok]) >= abs(real["estimate"])))
        k_t = int(np.sum(np.abs(st[np.isfinite(st)]) >= abs(real["statistic"])))
        n_t = max(int(np.isfinite(st).sum()), 1)
        text += (f" Descriptively, over {int(ok.sum())} overlapping placebo dates {k_jump} jump"
                 f"{'s were' if k_jump != 1 else ' was'} as large as the real one (the middle 95% lie between "
                 f"{np.quantile(est[ok], 0.025):+.3f} and {np.quantile(est[ok], 0.975):+.3f}) and "
                 f"{100 * k_t / n_t:.1f}% had a t statistic as extreme")
        if critical_value is not None:
            k_c = int(np.sum(np.abs(st[np.isfinite(st)]) >= critical_value))
            text += (f"; {100 * k_c / n_t:.1f}% of the placebo t statistics exceed the study's "
                     f"{100 * (1 - alpha):g}% critical value of {critical_value:.2f} ({100 * alpha:g}% would be exact "
                     f"calibration on a series without other breaks, which overlapping windows of a real series "
                     f"are not)")
        text += "."
    return text


def break_analysis(spec):
    """Would the data, unaided, date a break on the event? The study's breaks part.

    A sup-Wald scan for one break in level and slope with the study's family and seasonal
    terms over the estimation window, and Bai and Perron's method for several breaks on the
    log series (minimum regime 5 % of the window, so that a second break some weeks after
    the event can show). Returns ``(scan, bai_perron)``.
    """
    import warnings

    from raidstudy.models.breaks import BaiPerron, BreakScan

    p = spec.parameters
    y = spec.outcome.rename(spec.outcome_column)
    dow = p["dow"] and spec.freq == "D"
    count = p["model_family"] != "gaussian"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scan = BreakScan(y, family=p["model_family"], breaks_in=("level", "slope"), dow=dow,
                         fourier=p["fourier"]).fit(alpha=p["alpha"])
        bp = BaiPerron(y, log=count, breaks_in=("level", "slope"), dow=dow, fourier=p["fourier"], trim=0.05,
                       max_breaks=5).fit(alpha=p["alpha"])
    return scan, bp


def break_sentences(scan, bai_perron, *, event_date, event_label: str) -> dict[str, str]:
    """Quotable sentences on the break dating, from its numbers."""
    ev = pd.Timestamp(event_date)
    lvl = f"{100 * (1 - scan.alpha):g}%"
    inside = scan.contains(ev)
    ci = ("an interval that could not be computed" if scan.date_ci is None else
          f"{lvl} interval {scan.date_ci[0]} to {scan.date_ci[1]}")
    out = {"break_scan": (
        f"Asked to date one break in level and slope anywhere in the window, the data put it on {scan.date} "
        f"({ci}; sup-Wald {scan.sup_wald:.1f}, p = {scan.p_value:.2g}); the catalogued date of {event_label}, "
        f"{ev.date()}, lies {'inside' if inside else 'outside'} the interval.")}
    parts = []
    for rule, label in (("sequential", "the sequential test"), ("bic", "BIC")):
        br = bai_perron.breaks(rule)
        n = len(br)
        dates = ", ".join(str(d)[:10] for d in br["date"]) if n else "none"
        parts.append(f"{label} chooses {n} break{'s' if n != 1 else ''} ({dates})")
    later = {rule: [pd.Timestamp(d) for d in bai_perron.breaks(rule)["date"]
                    if 7 <= (pd.Timestamp(d) - ev).days <= 60] for rule in ("sequential", "bic")}
    found = [rule for rule, ds in later.items() if ds]
    if found:
        d = later[found[0]][0]
        who = "both place" if len(found) == 2 else ("the sequential test places" if found == ["sequential"]
                                                    else "BIC places")
        second = f"; {who} a further break on {d.date()}, {(d - ev).days} days after the event"
    else:
        second = "; neither finds a second break in the two months after the event"
    h = bai_perron.model.h
    out["break_multiple"] = (
        f"Allowing several breaks (Bai and Perron, segments of at least {h} periods), " + "; ".join(parts)
        + second + ".")
    return out
