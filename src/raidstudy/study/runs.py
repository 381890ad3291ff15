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


#: The report's template: the lab template without anything loaded from the network
#: (require.js, MathJax, Mermaid and the widget manager come from a CDN), so the report
#: renders the same offline. The study notebooks use no LaTeX math, diagrams or widgets.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def report_title(results: Mapping[str, Any] | None) -> str:
    """The report's HTML title from a ``results.json`` dict: the event, its date and the outcome."""
    if not results:
        return "raidstudy report"
    ev = results.get("event") or {}
    name = ev.get("name") or ev.get("id") or "event"
    date = str(ev.get("date") or "")[:10]
    outcome = (results.get("data") or {}).get("outcome")
    title = f"{name}" + (f", {date}" if date else "")
    if outcome:
        title += f": {outcome}"
    return f"raidstudy: {title}"


def render_html(notebook: str | Path, html: str | Path, *, title: str | None = None) -> Path:
    """Render an executed notebook as HTML for readers: narrative, tables and figures, no code.

    The page loads nothing from the network (it reads the same offline), and its title
    is ``title`` (default: from the ``results.json`` beside ``html``, naming the study).
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    if title is None:
        res_path = Path(html).parent / "results.json"
        try:
            title = report_title(json.loads(res_path.read_text())) if res_path.is_file() else None
        except (OSError, ValueError):
            title = None
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        extra_loaders=[jinja2.DictLoader({"raidstudy_report.html.j2": _OFFLINE_TEMPLATE})],
        template_file="raidstudy_report.html.j2",
    )
    nb.metadata["title"] = title or "raidstudy report"
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_text(html, body)


def check_output_dir(out: Path, given: Any = None) -> None:
    """Refuse a run directory that is a file, or lies under one (before anything runs)."""
    given = str(given if given is not None else out)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == out else f"lies under {_relpath(p)}, which is a file"
            raise ParameterError("output_dir", given, f"{what}, not a folder",
                                 hint="choose a folder for the run's results (it is created if needed)")
        if p.is_dir():
            break


def _resolve(path: str | Path) -> Path:
    path = Path(os.path.expanduser(str(path)))
    return path if path.is_absolute() else repo_root() / path


def execute_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    progress: bool = False,
    log_output: bool = False,
    validate: bool = True,
    force: bool = False,
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
    force : bool
        Replace a run of another study (event, indicator or model) in ``output_dir``;
        without it such a run directory is refused. A rerun of the same study always
        replaces the earlier run.

    Without ``output_dir`` the run directory follows the study
    (:func:`raidstudy.study.parameters.default_output_dir`): ``results/sparks-2020`` for the
    default study, ``results/zlibrary-2022`` for ``event_id=zlibrary_2022``, and so on.

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

    from raidstudy.study.parameters import check_run_directory, coerce_parameters, validate_parameters
    from raidstudy.study.artefacts import start_run_record

    nb_path = _resolve(notebook)
    if not nb_path.is_file():
        raise ParameterError("notebook", str(notebook), "file not found", hint="see notebooks/ for the study notebooks")
    params = coerce_parameters(dict(parameters or {}))
    out = _resolve(params["output_dir"])
    check_output_dir(out, params["output_dir"])
    if not force:
        check_run_directory(params)
    if validate:
        validate_parameters(params)
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
    for name, values in grid.items():
        _check_grid_values(name, values)
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


def _check_grid_values(name: str, values: list[Any]) -> None:
    """Refuse an empty grid list and values that are the same once parsed (``"5"`` and ``"05"``)."""
    from raidstudy.study.parameters import PARAMETERS, _coerce

    if not values:
        raise ParameterError(f"grid.{name}", values, "is an empty list", hint="give at least one value or drop it")
    seen: dict[Any, Any] = {}
    for v in values:
        parsed = _coerce(PARAMETERS[name], v)
        key = parsed.lower() if isinstance(parsed, str) and name != "holidays" else parsed
        if key in seen:
            raise ParameterError(f"grid.{name}", values,
                                 f"values {seen[key]!r} and {v!r} are the same study once parsed ({parsed!r})",
                                 hint="list each value once")
        seen[key] = v


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
            return _load_yaml_unique(text)
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as err:
        raise ParameterError("plan", str(path), f"key {err.key!r} appears twice{err.where}",
                             hint="each key may appear once; the second would silently replace the first") from None
    except Exception as err:  # yaml and json raise their own error types
        raise ParameterError("plan", str(path), f"cannot be parsed ({type(err).__name__}: {err})".replace("\n", " ")) from None


class _DuplicateKey(Exception):
    def __init__(self, key: Any, where: str = ""):
        super().__init__(key)
        self.key, self.where = key, where


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _load_yaml_unique(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key repeated in one mapping (PyYAML keeps the last)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, f" (lines {seen[key] + 1} and {key_node.start_mark.line + 1})")
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _run_one(notebook: str, params: dict[str, Any], force: bool = False) -> dict[str, Any]:
    try:
        rec = execute_notebook(notebook, params, force=force)
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
    force: bool = False,
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
    force : bool
        Replace runs of other studies found in the runs' directories (else refused before
        any run starts).

    Returns
    -------
    list of dict
        One status row per run, in the order given.
    """
    import sys

    from tqdm.auto import tqdm

    from raidstudy.study.parameters import check_run_directory, coerce_parameters, validate_parameters

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError("workers", workers, "must be a whole number of at least 1",
                             hint=f"leave it out to use every CPU ({os.cpu_count() or 1} here)")
    if scheduler is not None:
        scheduler = check_scheduler(scheduler)
    runs = [dict(r) for r in runs]
    for r in runs:
        check_output_dir(_resolve(r["output_dir"]), r["output_dir"])
        if not force:
            check_run_directory(coerce_parameters(r))
        validate_parameters(r)
    nb = str(_resolve(notebook))
    disable = not (sys.stderr.isatty() if progress is None else progress)
    results: list[dict[str, Any] | None] = [None] * len(runs)
    if scheduler:
        from distributed import as_completed

        with _connect(scheduler) as client:
            futs = {client.submit(_run_one, nb, r, force, pure=False): i for i, r in enumerate(runs)}
            for fut in tqdm(as_completed(futs), total=len(futs), disable=disable, desc="runs"):
                results[futs[fut]] = fut.result()
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed as cf_completed

        n = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=n) as pool:
            futs = {pool.submit(_run_one, nb, r, force): i for i, r in enumerate(runs)}
            for fut in tqdm(cf_completed(futs), total=len(futs), disable=disable, desc="runs"):
                results[futs[fut]] = fut.result()
    return [r for r in results if r is not None]


#: Seconds to wait for a Dask scheduler before giving up with one line.
SCHEDULER_TIMEOUT = 10


def check_scheduler(address: str) -> str:
    """A Dask scheduler address as ``tcp://host:port`` (or ``tls://``, ``ws://``, ``wss://``, ``inproc://``);
    anything else is refused with one line before a connection is tried."""
    import re

    a = str(address).strip()
    m = re.fullmatch(r"(?:(tcp|tls|ws|wss|inproc|ucx)://)?([^\s:/]+|\[[0-9a-fA-F:]+\])(?::(\d+))?/?", a)
    if not a or m is None or (m.group(1) != "inproc" and m.group(3) is None):
        raise ParameterError("scheduler", address, "is not a scheduler address",
                             hint="write it as tcp://HOST:PORT, e.g. tcp://scheduler:8786")
    if m.group(3) is not None and not 0 < int(m.group(3)) < 65536:
        raise ParameterError("scheduler", address, f"port {m.group(3)} is out of range (1-65535)",
                             hint="the Dask scheduler's default port is 8786")
    return a if m.group(1) else "tcp://" + a


def _connect(address: str):
    """A ``distributed.Client`` for ``address``, or one line saying why not (in seconds, not minutes)."""
    from distributed import Client

    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as err:
        raise RunError(f"cannot reach the Dask scheduler at {address} within {SCHEDULER_TIMEOUT} s "
                       f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no answer'}); "
                       "check the address and that the scheduler is running") from None


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
