"""Running notebooks: papermill execution, the HTML report, run directories, batches.

A run directory holds ``notebook.ipynb`` (the executed notebook), ``report.html`` (for
readers: narrative, figures and tables, no code), ``results.json``, ``run.json``,
``figures/`` and ``tables/``. ``run.json`` says ``"status": "running"`` from the first
moment and ``"complete"`` only once everything is written, so an interrupted run never
looks complete.

Batches run many parameter sets of one notebook: in local worker processes by default,
or on a Dask cluster (``scheduler="tcp://host:8786"``) when one machine is not enough.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from raidstudy.io import atomic_write_text
from raidstudy.errors import ParameterError, RaidstudyError
from raidstudy.paths import display_path, repo_root

__all__ = [
    "RunError",
    "RunRecord",
    "execute_notebook",
    "render_html",
    "expand_plan",
    "load_plan",
    "run_batch",
    "summarise_runs",
]

KERNEL = "python3"
#: The kernel draws with the inline backend whatever the caller's MPLBACKEND says (a
#: headless server often sets Agg, which would leave the report without figures).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@contextlib.contextmanager
def _kernel_env(**env: str):
    """Set environment variables for a kernel started inside the block, then restore them."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class RunError(RaidstudyError):
    """A notebook failed while running; the message names the cell and the error."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Where a finished run left its artefacts."""

    output_dir: Path
    notebook: Path
    html: Path
    results: Path
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.as_posix() if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def render_html(notebook: str | Path, html: str | Path) -> Path:
    """Render an executed notebook as HTML for readers: narrative, tables and figures, no code."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_text(html, body)


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else repo_root() / path


def execute_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    progress: bool = False,
    log_output: bool = False,
    validate: bool = True,
) -> RunRecord:
    """Validate parameters, run a notebook with papermill and render its HTML report.

    Parameters
    ----------
    notebook : path
        The notebook to run (relative paths are relative to the repository).
    parameters : mapping, optional
        Study parameters; unknown names are refused, strings are coerced to the declared
        types, and the data they select are checked, all before the kernel starts.
    progress, log_output : bool
        Passed to papermill (a progress bar; the cells' output on the terminal).
    validate : bool
        Run the full :func:`raidstudy.study.parameters.validate_parameters` (loads the series) first.

    Returns
    -------
    RunRecord
        The paths of the executed notebook, the HTML report and ``results.json``.

    Raises
    ------
    ParameterError
        Bad parameters (before anything runs).
    RunError
        A cell failed; the partial notebook is kept as ``notebook-failed.ipynb``.
    """
    import papermill as pm

    from raidstudy.study.parameters import coerce_parameters, validate_parameters
    from raidstudy.study.artefacts import start_run_record

    nb_path = _resolve(notebook)
    if not nb_path.is_file():
        raise ParameterError("notebook", str(notebook), "file not found", hint="see notebooks/ for the study notebooks")
    params = coerce_parameters(dict(parameters or {}))
    if validate:
        validate_parameters(params)
    out = _resolve(params["output_dir"])
    start_run_record(out, params, notebook=_relpath(nb_path))
    t0 = time.perf_counter()
    executed = out / "notebook.ipynb"
    failed = out / "notebook-failed.ipynb"
    failed.unlink(missing_ok=True)
    partial = out / ".notebook.partial.ipynb"
    try:
        with _kernel_env(MPLBACKEND=INLINE_BACKEND):
            pm.execute_notebook(
                str(nb_path), str(partial), parameters=params, kernel_name=KERNEL,
                progress_bar=progress, log_output=log_output, cwd=str(repo_root()),
                # the kernel's own start-up and shut-down chatter is not the user's business
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
    except pm.PapermillExecutionError as err:
        if partial.exists():
            os.replace(partial, failed)
        _record_failure(out, err)
        raise RunError(
            f"{_relpath(nb_path)} failed in cell {err.exec_count}: {err.ename}: {err.evalue}"
            f" (the partial notebook is {_relpath(failed)})"
        ) from None
    except BaseException as err:
        partial.unlink(missing_ok=True)
        _record_failure(out, err)
        raise
    _relative_papermill_paths(partial, nb_path, executed)
    os.replace(partial, executed)
    html = render_html(executed, out / "report.html")
    results = out / "results.json"
    if not results.exists():
        raise RunError(f"{_relpath(nb_path)} ran but wrote no results.json in {_relpath(out)}")
    seconds = time.perf_counter() - t0
    rec = RunRecord(out, executed, html, results, seconds)
    from raidstudy.study.artefacts import _update_run_record

    _update_run_record(
        out, status="complete", finished_at=_now(), seconds=round(seconds, 1),
        executed_notebook="notebook.ipynb", report="report.html",
    )
    return rec


def _relative_papermill_paths(path: Path, source: Path, final: Path) -> None:
    """Record repository-relative paths in papermill's metadata (no machine paths in outputs)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get("papermill", {})
    meta["input_path"] = _relpath(source)
    meta["output_path"] = _relpath(final)
    nbformat.write(nb, str(path))


def _record_failure(out: Path, err: BaseException) -> None:
    from raidstudy.study.artefacts import _update_run_record

    _update_run_record(out, status="failed", finished_at=_now(), error=f"{type(err).__name__}: {err}".strip()[:2000])
    (out / "results.json").unlink(missing_ok=True)


def _relpath(p: Path) -> str:
    return display_path(p, keep_absolute=True)


# ----------------------------------------------------------------------------- batches


def expand_plan(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Expand a batch plan into one parameter set per run.

    A plan has ``base`` (parameters shared by every run) and ``grid`` (parameter name to
    a list of values); every combination of the grid is one run. Each run's
    ``output_dir`` is ``<output_root>/<run-id>``, the run id joining the grid values.

    Examples
    --------
    >>> runs = expand_plan({"base": {"pre_periods": 200}, "grid": {"event_id": ["a", "b"]},
    ...                     "output_root": "results/batch"})
    >>> [r["output_dir"] for r in runs]
    ['results/batch/a', 'results/batch/b']
    """
    from raidstudy.study.parameters import check_names

    if not isinstance(plan, Mapping):
        raise ParameterError("plan", type(plan).__name__, "must be a mapping with base, grid and output_root")
    unknown = set(plan) - {"base", "grid", "output_root", "notebook"}
    if unknown:
        raise ParameterError("plan", sorted(unknown), "unknown plan keys", accepted=["base", "grid", "output_root", "notebook"])
    base = dict(plan.get("base", {}))
    grid = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in dict(plan.get("grid", {})).items()}
    check_names(base)
    check_names(grid)
    root = str(plan.get("output_root", "results/batch")).rstrip("/")
    if not root or Path(root).is_absolute() or ".." in Path(root).parts:
        raise ParameterError("output_root", plan.get("output_root"), "must be a folder inside the repository",
                             hint="e.g. results/my-batch")
    for where, params in (("base", base), ("grid", grid)):
        if "output_dir" in params:
            raise ParameterError(f"{where}.output_dir", params["output_dir"],
                                 "is set by the runner (output_root/run-id)", hint="set output_root instead")
    names = sorted(grid)
    runs = []
    for combo in itertools.product(*(grid[n] for n in names)) if names else [()]:
        params = dict(base)
        params.update(dict(zip(names, combo)))
        run_id = "__".join(_slug(v) for v in combo) or "run"
        params["output_dir"] = f"{root}/{run_id}"
        runs.append(params)
    ids = [r["output_dir"] for r in runs]
    if len(set(ids)) != len(ids):
        raise ParameterError("grid", grid, "two runs would share one output directory")
    return runs


def _slug(v: Any) -> str:
    s = str(v).lower()
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in s).strip("-") or "x"


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read a batch plan from JSON or YAML."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError("plan", str(path), "file not found", hint="see plans/ for an example")
    text = path.read_text()
    try:
        if path.suffix in (".yml", ".yaml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as err:  # yaml and json raise their own error types
        raise ParameterError("plan", str(path), f"cannot be parsed ({type(err).__name__}: {err})".replace("\n", " ")) from None


def _run_one(notebook: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        rec = execute_notebook(notebook, params)
        return {"output_dir": params["output_dir"], "status": "complete", "seconds": round(rec.seconds, 1)}
    except Exception as err:  # one failed run (a dead kernel included) must not stop the batch
        return {"output_dir": params["output_dir"], "status": "failed", "error": f"{type(err).__name__}: {err}"}


def run_batch(
    notebook: str | Path,
    runs: Sequence[Mapping[str, Any]],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Run a notebook once per parameter set, in parallel.

    Every parameter set is validated before any run starts, so a typo in run 40 does not
    surface after 39 finished runs.

    Parameters
    ----------
    notebook : path
        The notebook to run.
    runs : sequence of mappings
        Parameter sets, e.g. from :func:`expand_plan`.
    workers : int, optional
        Local worker processes (default: the number of CPUs). Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler; the runs go to its workers,
        which must see the same repository and data at the same relative paths.
    progress : bool, optional
        A tqdm bar; default: only when standard error is a terminal.

    Returns
    -------
    list of dict
        One status row per run, in the order given.
    """
    import sys

    from tqdm.auto import tqdm

    from raidstudy.study.parameters import validate_parameters

    runs = [dict(r) for r in runs]
    for r in runs:
        validate_parameters(r)
    nb = str(_resolve(notebook))
    disable = not (sys.stderr.isatty() if progress is None else progress)
    results: list[dict[str, Any] | None] = [None] * len(runs)
    if scheduler:
        from distributed import Client, as_completed

        with Client(scheduler) as client:
            futs = {client.submit(_run_one, nb, r, pure=False): i for i, r in enumerate(runs)}
            for fut in tqdm(as_completed(futs), total=len(futs), disable=disable, desc="runs"):
                results[futs[fut]] = fut.result()
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed as cf_completed

        n = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=n) as pool:
            futs = {pool.submit(_run_one, nb, r): i for i, r in enumerate(runs)}
            for fut in tqdm(cf_completed(futs), total=len(futs), disable=disable, desc="runs"):
                results[futs[fut]] = fut.result()
    return [r for r in results if r is not None]


def summarise_runs(output_dirs: Iterable[str | Path]) -> "Any":
    """One row per run: status, event, outcome, model and the headline level change.

    A run counts as complete only when its ``run.json`` says so; any other run is listed
    with its status (``running`` for an interrupted one, ``failed``, ``missing``) rather
    than dropped. The level change is the study's headline term (``treated_level`` in a
    comparative model), on the log scale with its percentage for count families.
    """
    import pandas as pd

    rows = []
    for d in output_dirs:
        d = _resolve(d)
        run_path, res_path = d / "run.json", d / "results.json"
        status = json.loads(run_path.read_text()).get("status", "unknown") if run_path.exists() else "missing"
        row: dict[str, Any] = {"run": _relpath(d), "status": status}
        if status == "complete" and res_path.exists():
            res = json.loads(res_path.read_text())
            lvl = res.get("effects", {}).get("level", {})
            row.update({
                "event": res.get("event", {}).get("id"),
                "outcome": res.get("data", {}).get("outcome"),
                "family": res.get("model", {}).get("family"),
                "term": lvl.get("term"),
                "level": lvl.get("estimate"),
                "level_ci_low": lvl.get("ci_low"),
                "level_ci_high": lvl.get("ci_high"),
                "level_pct": lvl.get("pct"),
                "level_pct_ci_low": lvl.get("pct_ci_low"),
                "level_pct_ci_high": lvl.get("pct_ci_high"),
                "p_value": lvl.get("p_value"),
            })
        rows.append(row)
    return pd.DataFrame(rows)
