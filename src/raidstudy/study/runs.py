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
import sys
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
    "run_is_complete",
    "BatchInterrupted",
    "summarise_runs",
    "adjust_p_values",
    "plan_roles",
    "forest_data",
    "plot_forest",
    "write_batch_summary",
    "check_scheduler",
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


#: The thread counts of the BLAS and OpenMP libraries in the study kernels the runner starts.
#: OpenBLAS splits a long sum differently with each thread count, so the fitted numbers
#: change in their last digits with it: on 2 threads and on 1, results.json of the SPARKS
#: study differed in its 12th significant digit. One thread gives the same bytes on a
#: laptop and on a 64-core server; the study's matrices are small, so it costs no time.
KERNEL_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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
    from raidstudy.study.artefacts import STAGE_ENV, STAGED_RESULTS, start_run_record

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
        with _kernel_env(MPLBACKEND=INLINE_BACKEND, **KERNEL_THREADS, **{STAGE_ENV: "1"}):
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
    # The notebook's write_study staged results.json (see STAGE_ENV); a notebook that writes
    # results.json itself is taken as it is.
    staged, results = out / STAGED_RESULTS, out / "results.json"
    body = staged if staged.exists() else results
    if not body.exists():
        raise RunError(f"{_relpath(nb_path)} ran but wrote no results.json in {_relpath(out)}")
    try:
        title = report_title(json.loads(body.read_text()))
    except ValueError:
        title = None
    html = render_html(executed, out / "report.html", title=title)
    seconds = time.perf_counter() - t0
    rec = RunRecord(out, executed, html, results, seconds)
    from raidstudy.study.artefacts import _update_run_record

    _update_run_record(
        out, status="complete", finished_at=_now(), seconds=round(seconds, 1),
        executed_notebook="notebook.ipynb", report="report.html",
    )
    # Last, and atomically: results.json beside a complete run.json is what makes a run
    # complete (run_is_complete); an interruption before this line leaves no results.json.
    if body is staged:
        os.replace(staged, results)
    return rec


def _relative_papermill_paths(path: Path, source: Path, final: Path) -> None:
    """Record repository-relative paths in papermill's metadata (no machine paths in outputs)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get("papermill", {})
    meta["input_path"] = _relpath(source)
    meta["output_path"] = _relpath(final)
    nbformat.write(nb, str(path))


def _record_failure(out: Path, err: BaseException | str, status: str = "failed") -> None:
    """Mark a run as failed (or ``interrupted``) in run.json and withdraw any results it wrote."""
    from raidstudy.study.artefacts import STAGED_RESULTS, _update_run_record

    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        status = "interrupted"
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}".strip()
    _update_run_record(out, status=status, finished_at=_now(), error=text[:2000])
    (out / "results.json").unlink(missing_ok=True)
    (out / STAGED_RESULTS).unlink(missing_ok=True)


def _relpath(p: Path) -> str:
    return display_path(p, keep_absolute=True)


# ----------------------------------------------------------------------------- batches


def expand_plan(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Expand a batch plan into one parameter set per run.

    A plan has ``base`` (parameters shared by every run) and ``grid`` (parameter name to
    a list of values); every combination of the grid is one run. ``controls`` (optional)
    lists event ids whose expected effect is null; the summary labels their runs
    (:func:`plan_roles`). Each run's
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
    keys = ["base", "grid", "output_root", "notebook", "controls"]
    unknown = set(plan) - set(keys)
    if unknown:
        raise ParameterError("plan", sorted(unknown), "unknown plan keys", accepted=keys)
    base = dict(plan.get("base", {}))
    grid = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in dict(plan.get("grid", {})).items()}
    check_names(base)
    check_names(grid)
    for name, values in grid.items():
        _check_grid_values(name, values)
    root = str(plan.get("output_root", "results/batch")).rstrip("/")
    if not root.strip():
        raise ParameterError("output_root", plan.get("output_root"), "is empty",
                             hint="name the batch's folder, e.g. results/my-batch (relative to the current "
                                  "directory, or absolute, or ~/...: as for `raidstudy run -p output_dir`)")
    if Path(os.path.expanduser(root)).exists() and not Path(os.path.expanduser(root)).is_dir():
        raise ParameterError("output_root", plan.get("output_root"), "is a file, not a folder",
                             hint="choose a folder for the batch's runs and summary")
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
    _check_controls(plan.get("controls"), runs)
    return runs


def _check_controls(controls: Any, runs: Sequence[Mapping[str, Any]]) -> None:
    """A plan's ``controls`` must be a list of event ids that its runs use."""
    from raidstudy.study.parameters import PARAMETERS

    if controls is None:
        return
    if not isinstance(controls, (list, tuple)) or not all(isinstance(c, str) for c in controls):
        raise ParameterError("controls", controls, "must be a list of event ids",
                             hint="e.g. controls: [evo_2023] for events whose expected effect is null")
    used = {str(r.get("event_id", PARAMETERS["event_id"].default)).strip() for r in runs}
    stray = [c for c in controls if c.strip() not in used]
    if stray:
        raise ParameterError("controls", stray, "no run of the plan studies these events", accepted=sorted(used),
                             hint="list event ids from base.event_id or grid.event_id")


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
    """Run one parameter set; a failure becomes a status row (one failed run must not stop the batch)."""
    try:
        rec = execute_notebook(_resolve(notebook), params, force=force)
        return {"output_dir": params["output_dir"], "status": "complete", "seconds": round(rec.seconds, 1)}
    except Exception as err:  # one failed run (a dead kernel included) must not stop the batch
        return {"output_dir": params["output_dir"], "status": "failed", "error": f"{type(err).__name__}: {err}"}


# ------------------------------------------------------------------ complete runs and reruns


def _read_record(out: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def run_is_complete(output_dir: str | Path) -> bool:
    """Whether a run directory holds a finished run.

    A run is complete when its ``run.json`` says ``"complete"`` and its ``results.json`` is
    in place (the runner moves ``results.json`` into place last); anything else is a run
    that failed, was interrupted, or is still running.

    Parameters
    ----------
    output_dir : path
        The run directory.

    Returns
    -------
    bool
    """
    out = _resolve(output_dir)
    rec = _read_record(out)
    return bool(rec) and rec.get("status") == "complete" and (out / "results.json").is_file()


def _same_run(params: Mapping[str, Any], data_checksum: str, notebook: str) -> bool:
    """Whether ``params["output_dir"]`` already holds this run, complete: the same parameters,
    data checksum, notebook and raidstudy version, and results.json as the run recorded it."""
    from raidstudy.io import dumps_json, sha256_file
    from raidstudy.study.artefacts import package_versions

    out = _resolve(params["output_dir"])
    if not run_is_complete(out):
        return False
    rec = _read_record(out) or {}
    same_results = rec.get("results_sha256") in (None, sha256_file(out / "results.json"))
    return (same_results
            and rec.get("parameters") == json.loads(dumps_json(dict(params)))
            and rec.get("data_checksum") == data_checksum
            and rec.get("notebook") == notebook
            and (rec.get("packages") or {}).get("raidstudy") == package_versions(("raidstudy",))["raidstudy"])


# ------------------------------------------------------------------ local worker processes
#
# Each local worker is a child process in its own session (so a Ctrl-C typed at the terminal
# reaches only the batch, which then stops the workers in order). A worker takes one run at a
# time from its standard input and answers on a private pipe, so nothing is queued inside a
# worker: when the batch goes, no further run starts. A worker ends, after ending its kernel
# and marking its run "interrupted", when
#   * the batch sends it SIGTERM (Ctrl-C or SIGTERM to the batch),
#   * the batch dies, however (even SIGKILL): on Linux the kernel sends the worker SIGTERM
#     (prctl PR_SET_PDEATHSIG, set through ctypes), and on every platform the worker's
#     standard input reaches end-of-file, which a thread of the worker watches.
# The Jupyter kernels are the workers' children and, as a last resort, watch their parent
# too (ipykernel's parent poller, JPY_PARENT_PID).

_PARENT_ENV = "RAIDSTUDY_BATCH_PARENT"
_WORKER_CODE = "from raidstudy.study.runs import _worker_main; _worker_main()"
#: Seconds a stopped worker gets to end its kernel and mark its run before it is killed.
STOP_GRACE = 15.0


class BatchInterrupted(KeyboardInterrupt):
    """A batch stopped by Ctrl-C (or SIGTERM); ``rows`` holds every run's status so far."""

    def __init__(self, rows: list[dict[str, Any]]):
        super().__init__("batch interrupted")
        self.rows = rows


def _set_parent_death_signal(sig: int) -> bool:
    """On Linux, have the kernel send ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(sig), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _descendants(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (psutil when installed, else /proc)."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except ImportError:
        pass
    except Exception:  # psutil.NoSuchProcess: nothing left
        return []
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = entry.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _end_processes(pids: Iterable[int], timeout: float = 5.0) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL whatever is left."""
    import signal

    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child, now reaped
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError):  # a zombie waiting for a parent that is not us
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _worker_main() -> None:
    """A local batch worker (started by :func:`run_batch`; not for direct use)."""
    import queue
    import signal
    import threading

    parent = int(os.environ.get(_PARENT_ENV) or 0)
    _set_parent_death_signal(signal.SIGTERM)
    if parent and os.getppid() != parent:  # the batch died before the signal was armed
        os._exit(1)
    proto = os.fdopen(os.dup(1), "w", buffering=1)  # answers to the batch; fd 1 becomes stderr
    os.dup2(2, 1)
    state: dict[str, Any] = {"current": None}
    stopping = threading.Lock()

    def stop(reason: str) -> None:
        # Once only: a second SIGTERM (parent death and the batch's own) may arrive while the
        # first is being handled, on the same stack; it must let the first one finish.
        if not stopping.acquire(blocking=False):
            return
        task = state["current"]
        _end_processes(_descendants(os.getpid()))  # the kernel first, so it writes nothing more
        if task is not None:
            out = _resolve(task["params"]["output_dir"])
            with contextlib.suppress(Exception):
                (out / ".notebook.partial.ipynb").unlink(missing_ok=True)
                if (out / "run.json").exists() and not run_is_complete(out):
                    _record_failure(out, reason, status="interrupted")
        os._exit(143)

    def read_tasks() -> None:
        for line in sys.stdin:
            tasks.put(json.loads(line))
        tasks.put(None)  # end of input: the batch is done, or gone
        if state["current"] is not None:
            os.kill(os.getpid(), signal.SIGTERM)  # stop in the main thread, between two steps
            time.sleep(STOP_GRACE)  # the main thread is stuck: end the kernel and go
            _end_processes(_descendants(os.getpid()), timeout=2.0)
            os._exit(143)

    tasks: "queue.Queue[dict[str, Any] | None]" = queue.Queue()
    signal.signal(signal.SIGTERM, lambda *_: stop("interrupted: the batch was stopped before this run finished"))
    threading.Thread(target=read_tasks, daemon=True).start()
    while (task := tasks.get()) is not None:
        state["current"] = task
        row = _run_one(task["notebook"], task["params"], task["force"])
        state["current"] = None
        try:
            proto.write(json.dumps(row) + "\n")
        except OSError:
            break


def _start_worker():
    import subprocess

    env = dict(os.environ, **{_PARENT_ENV: str(os.getpid())})
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER_CODE, "raidstudy-batch-worker"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env=env, cwd=str(repo_root()), start_new_session=True, text=True, bufsize=1,
    )


def _stop_workers(workers: Sequence[Any], busy: Iterable[Any]) -> None:
    """End the workers: busy ones by SIGTERM (they end their kernel and mark their run), idle
    ones by closing their input; whatever is left after :data:`STOP_GRACE` seconds is killed,
    with its children."""
    import signal

    for w in busy:
        with contextlib.suppress(OSError):
            w.send_signal(signal.SIGTERM)
    for w in workers:
        with contextlib.suppress(OSError):
            w.stdin.close()
    deadline = time.monotonic() + STOP_GRACE
    for w in workers:
        kids = _descendants(w.pid)
        try:
            w.wait(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # subprocess.TimeoutExpired
            kids = _descendants(w.pid) + kids
            w.kill()
            w.wait()
        _end_processes([k for k in kids if _alive(k)], timeout=2.0)
        with contextlib.suppress(OSError):
            w.stdout.close()


def _run_local(nb: str, todo: list[tuple[int, dict[str, Any]]], workers: int, force: bool, bar) -> tuple[dict, bool]:
    """Run ``todo`` on local worker processes; returns ({index: row}, interrupted)."""
    import collections
    import selectors

    rows: dict[int, dict[str, Any]] = {}
    queue = collections.deque(todo)
    procs = [_start_worker() for _ in range(min(workers, len(todo)))]
    idle, busy = list(procs), {}
    sel = selectors.DefaultSelector()
    interrupted = False
    try:
        while queue or busy:
            while queue and idle:
                w = idle.pop()
                i, params = queue.popleft()
                w.stdin.write(json.dumps({"notebook": nb, "params": params, "force": force}) + "\n")
                w.stdin.flush()
                busy[w] = (i, params)
                sel.register(w.stdout, selectors.EVENT_READ, w)
            for key, _ in sel.select(timeout=1.0):
                w = key.data
                line = w.stdout.readline()
                sel.unregister(w.stdout)
                i, params = busy.pop(w)
                if line:
                    rows[i] = json.loads(line)
                    idle.append(w)
                else:  # the worker died (killed from outside, out of memory, ...)
                    code = w.wait()
                    _end_processes(_descendants(w.pid))
                    msg = f"RunError: the worker process running it ended unexpectedly (exit status {code})"
                    rows[i] = {"output_dir": params["output_dir"], "status": "failed", "error": msg}
                    out = _resolve(params["output_dir"])
                    if (out / "run.json").exists() and not run_is_complete(out):
                        _record_failure(out, msg)
                    procs.remove(w)
                    if queue:
                        procs.append(_start_worker())
                        idle.append(procs[-1])
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        with _ignore_interrupts():
            _stop_workers(procs, list(busy))
            sel.close()
    for i, params in busy.values():
        out = _resolve(params["output_dir"])
        if (out / "run.json").exists() and not run_is_complete(out):
            rec = _read_record(out) or {}
            if rec.get("status") == "running":  # the worker could not say so itself
                _record_failure(out, "interrupted: the batch was stopped before this run finished", "interrupted")
        rows[i] = {"output_dir": params["output_dir"], "status": "complete" if run_is_complete(out) else "interrupted"}
    for i, params in queue:
        rows[i] = {"output_dir": params["output_dir"], "status": "not started"}
    return rows, interrupted


@contextlib.contextmanager
def _ignore_interrupts():
    """Ignore a second Ctrl-C while the workers are being stopped (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within the block, SIGTERM stops the batch as Ctrl-C does (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run_dask(scheduler: str, nb: str, todo: list[tuple[int, dict[str, Any]]], force: bool, bar) -> tuple[dict, bool]:
    """Run ``todo`` on a Dask cluster; returns ({index: row}, interrupted)."""
    from distributed import as_completed

    rows: dict[int, dict[str, Any]] = {}
    interrupted = False
    with _connect(scheduler) as client:
        futs = {client.submit(_run_one, nb, params, force, pure=False): (i, params) for i, params in todo}
        try:
            for fut in as_completed(futs):
                i, params = futs[fut]
                try:
                    rows[i] = fut.result()
                except Exception as err:  # a worker that died (KilledWorker), a lost connection
                    rows[i] = {"output_dir": params["output_dir"], "status": "failed",
                               "error": f"{type(err).__name__}: {err}"}
                bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
            with _ignore_interrupts():
                client.cancel([f for f in futs if not f.done()])
    for i, params in todo:
        # Dask cannot stop a task that has started: such a run finishes on its worker
        rows.setdefault(i, {"output_dir": params["output_dir"], "status": "cancelled"})
    return rows, interrupted


def run_batch(
    notebook: str | Path,
    runs: Sequence[Mapping[str, Any]],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    force: bool = False,
    rerun: bool = False,
) -> list[dict[str, Any]]:
    """Run a notebook once per parameter set, in parallel; stop and resume cleanly.

    Every parameter set is validated before any run starts, so a typo in run 40 does not
    surface after 39 finished runs. A run whose directory already holds it complete (same
    parameters, data checksum, notebook and raidstudy version) is skipped unless
    ``rerun``. A run's ``results.json`` appears only once the run is complete.

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
    rerun : bool
        Run again the runs that are already complete for the same inputs.

    Returns
    -------
    list of dict
        One status row per run, in the order given: ``output_dir``, ``status``
        (``complete``, ``skipped`` (complete before, not run again), ``failed``) and
        ``error`` or ``seconds``.

    Raises
    ------
    BatchInterrupted
        Ctrl-C or SIGTERM: queued runs do not start, running ones are stopped (their
        kernels too) and marked ``interrupted`` in their ``run.json``; the exception's
        ``rows`` say so per run (``interrupted``, ``not started``; ``cancelled`` on Dask).
    ParameterError, RunError
        Bad parameters (before anything runs); an unreachable scheduler.

    Notes
    -----
    The local workers end with the batch however it ends, SIGKILL included (see the
    comment above ``_worker_main`` and docs/batch.md).
    """
    from tqdm.auto import tqdm

    from raidstudy.study.parameters import check_run_directory, coerce_parameters, validate_parameters

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError("workers", workers, "must be a whole number of at least 1",
                             hint=f"leave it out to use every CPU ({os.cpu_count() or 1} here)")
    if scheduler is not None:
        scheduler = check_scheduler(scheduler)
    nb_path = _resolve(notebook)
    if not nb_path.is_file():
        raise ParameterError("notebook", str(notebook), "file not found", hint="see notebooks/ for the study notebooks")
    nb = _relpath(nb_path)
    runs = [coerce_parameters(dict(r)) for r in runs]
    rows: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, dict[str, Any]]] = []
    for i, r in enumerate(runs):
        check_output_dir(_resolve(r["output_dir"]), r["output_dir"])
        if not force:
            check_run_directory(r)
        spec = validate_parameters(r)
        if not rerun and _same_run(r, spec.data_checksum, nb):
            rows[i] = {"output_dir": r["output_dir"], "status": "skipped"}
        else:
            todo.append((i, r))
    disable = not (sys.stderr.isatty() if progress is None else progress)
    interrupted = False
    if todo:
        with tqdm(total=len(todo), disable=disable, desc="runs") as bar, _sigterm_as_interrupt():
            if scheduler:
                done, interrupted = _run_dask(scheduler, nb, todo, force, bar)
            else:
                done, interrupted = _run_local(nb, todo, workers or os.cpu_count() or 1, force, bar)
        rows.update(done)
    # (a run lost between the queue and a worker by an ill-timed Ctrl-C counts as not started)
    out = [rows.get(i) or {"output_dir": r["output_dir"], "status": "not started"} for i, r in enumerate(runs)]
    if interrupted:
        raise BatchInterrupted(out)
    return out


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


# ----------------------------------------------------------------------------- summaries

#: Columns of the batch summary (:func:`summarise_runs`), in order.
SUMMARY_COLUMNS = (
    "run", "role", "status", "reused", "event", "date_precision", "outcome", "family", "term",
    "level", "level_ci_low", "level_ci_high", "level_pct", "level_pct_ci_low", "level_pct_ci_high", "ci_level",
    "p_value", "p_value_holm", "p_value_bh", "placebo_p_value", "placebo_min_p", "n_missing", "report", "error",
)


def _precision(event_id: Any, results: Mapping[str, Any] | None) -> str | None:
    """The event's date precision from the catalogue; a study's own event (not catalogued)
    keeps what its results say, else ``"not catalogued"``."""
    from raidstudy.data.events import get_event

    if not event_id:
        return None
    try:
        return get_event(str(event_id)).precision
    except RaidstudyError:
        return ((results or {}).get("event") or {}).get("precision") or "not catalogued"


def adjust_p_values(p_values: Sequence[float | None]) -> "Any":
    """Holm and Benjamini-Hochberg adjustments of a family of p-values.

    Missing p-values (``None``, NaN: a run that failed or was not run) are left out of the
    family and stay missing.

    Parameters
    ----------
    p_values : sequence of float or None

    Returns
    -------
    DataFrame
        Columns ``p_value_holm`` (family-wise error rate) and ``p_value_bh`` (false
        discovery rate), one row per input.

    Examples
    --------
    >>> adjust_p_values([0.01, None, 0.04, 0.03]).round(3).to_dict("list")
    {'p_value_holm': [0.03, nan, 0.06, 0.06], 'p_value_bh': [0.03, nan, 0.04, 0.04]}
    """
    import numpy as np
    import pandas as pd
    from statsmodels.stats.multitest import multipletests

    p = pd.to_numeric(pd.Series(list(p_values), dtype=object), errors="coerce").astype(float)
    out = pd.DataFrame({"p_value_holm": np.nan, "p_value_bh": np.nan}, index=p.index)
    ok = p.notna().to_numpy()
    if ok.any():
        out.loc[ok, "p_value_holm"] = _holm(p[ok].to_numpy())
        out.loc[ok, "p_value_bh"] = multipletests(p[ok].to_numpy(), method="fdr_bh")[1]
    return out


def _holm(p: "Any") -> "Any":
    """Holm's step-down adjustment, as ``multipletests(p, method="holm")[1]`` computes it.

    statsmodels' Holm branch ends with ``gc.collect()``: a full garbage collection on every
    call, 0.2-0.3 s in a process holding a large heap (a notebook, a test worker), for a
    cumulative maximum over a handful of numbers.
    """
    import numpy as np

    order = np.argsort(p)
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    out = np.empty(len(p))
    out[order] = np.minimum(stepped, 1.0)
    return out


def summarise_runs(output_dirs: Iterable[str | Path], *, roles: Sequence[str] | None = None,
                   batch_rows: Sequence[Mapping[str, Any]] | None = None) -> "Any":
    """One row per run: status, event, outcome, model, the headline level change and what a
    reader needs to weigh it.

    Parameters
    ----------
    output_dirs : iterable of paths
        The runs' directories (the runs of one plan).
    roles : sequence of str, optional
        ``"event"`` or ``"control"`` (an event whose expected effect is null) per run;
        see :func:`plan_roles`.
    batch_rows : sequence of mappings, optional
        The status rows of :func:`run_batch`: a run this batch did not complete
        (``failed``, ``interrupted``, ``not started``, ``cancelled``) is shown with that
        status and no estimates, whatever an earlier run left in its directory.

    Returns
    -------
    DataFrame
        Columns :data:`SUMMARY_COLUMNS`. A run counts as complete only when
        :func:`run_is_complete` says so; any other run is listed with its status
        (``running`` for one interrupted without a chance to say so, ``failed``, ``missing``)
        rather than dropped. ``level`` is the study's headline term (``treated_level`` in a
        comparative model) on the log scale, ``level_pct`` its percentage for count
        families; ``p_value`` is the study's p-value for it (the covariance of the study,
        EWC by default); ``p_value_holm`` and ``p_value_bh`` adjust it across the complete
        runs given (controls included); ``placebo_p_value`` is the in-time placebo p-value and
        ``placebo_min_p`` the smallest it could be with the windows available;
        ``n_missing`` counts missing periods in the estimation window; ``date_precision``
        is the catalogue's (``day``, ``approx``, ``month``); ``report`` is the run's
        ``report.html``.
    """
    import pandas as pd

    dirs = [_resolve(d) for d in output_dirs]
    rows = []
    for k, d in enumerate(dirs):
        run_path, res_path = d / "run.json", d / "results.json"
        rec = _read_record(d) if run_path.exists() else None
        status = "missing" if rec is None and not run_path.exists() else (rec or {}).get("status", "unknown")
        if status == "complete" and not res_path.is_file():
            status = "interrupted"  # stopped between run.json and the final move of results.json
        batch = dict(batch_rows[k]) if batch_rows is not None else {}
        if batch.get("status") not in (None, "complete", "skipped"):
            status = batch["status"]
        row: dict[str, Any] = {"run": _relpath(d), "role": roles[k] if roles is not None else None,
                               "status": status, "reused": batch.get("status") == "skipped" if batch else None}
        event_id = ((rec or {}).get("parameters") or {}).get("event_id")
        res = None
        if status == "complete":
            res = json.loads(res_path.read_text())
            lvl = res.get("effects", {}).get("level", {})
            placebo = (res.get("robustness") or {}).get("placebo") or {}
            alpha = (res.get("parameters") or {}).get("alpha")
            event_id = res.get("event", {}).get("id", event_id)
            row.update({
                "outcome": res.get("data", {}).get("outcome"),
                "family": res.get("model", {}).get("family"),
                "term": lvl.get("term"),
                "level": lvl.get("estimate"),
                "level_ci_low": lvl.get("ci_low"),
                "level_ci_high": lvl.get("ci_high"),
                "level_pct": lvl.get("pct"),
                "level_pct_ci_low": lvl.get("pct_ci_low"),
                "level_pct_ci_high": lvl.get("pct_ci_high"),
                "ci_level": None if alpha is None else round(100 * (1 - float(alpha)), 6),
                "p_value": lvl.get("p_value"),
                "placebo_p_value": placebo.get("p_value"),
                "placebo_min_p": placebo.get("min_attainable_p"),
                "n_missing": (res.get("data") or {}).get("n_missing"),
                "report": _relpath(d / "report.html") if (d / "report.html").exists() else None,
            })
        elif rec and rec.get("error"):
            row["error"] = str(rec["error"]).splitlines()[0][:300] if rec.get("error") else None
        if batch.get("error"):
            row["error"] = str(batch["error"]).splitlines()[0][:300]
        row["event"] = event_id
        row["date_precision"] = _precision(event_id, res)
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    adj = adjust_p_values([r if s == "complete" else None for r, s in zip(df["p_value"], df["status"])])
    df["p_value_holm"], df["p_value_bh"] = adj["p_value_holm"].to_numpy(), adj["p_value_bh"].to_numpy()
    for c in ("level", "level_ci_low", "level_ci_high", "level_pct", "level_pct_ci_low", "level_pct_ci_high",
              "ci_level", "p_value", "placebo_p_value", "placebo_min_p"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["n_missing"] = pd.to_numeric(df["n_missing"], errors="coerce").astype("Int64")
    return df


def plan_roles(plan: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each run's role: ``"control"`` when its event is among the plan's ``controls``
    (events whose expected effect is null), else ``"event"``.

    Examples
    --------
    >>> plan = {"grid": {"event_id": ["sparks_2020", "evo_2023"]}, "controls": ["evo_2023"]}
    >>> plan_roles(plan, expand_plan(plan))
    ['event', 'control']
    """
    from raidstudy.study.parameters import PARAMETERS

    controls = {str(c).strip() for c in plan.get("controls") or []}
    default = PARAMETERS["event_id"].default
    return ["control" if str(r.get("event_id", default)).strip() in controls else "event" for r in runs]


def forest_data(summary: "Any") -> "Any":
    """The data of the forest plot: one row per complete run with a percentage level change.

    Parameters
    ----------
    summary : DataFrame
        From :func:`summarise_runs`.

    Returns
    -------
    DataFrame
        ``label`` (event, outcome and run), ``run``, ``role``, ``event``, ``outcome``,
        ``estimate``, ``ci_low``, ``ci_high`` (level change in %), ``p_value``,
        ``p_value_holm``, ``p_value_bh``, in plotting order (by event, then outcome, then run).
        Runs of the Gaussian family (a level change in outcome units) are left out; the
        summary table lists them.
    """
    import pandas as pd

    s = summary[(summary["status"] == "complete") & summary["level_pct"].notna()]
    df = pd.DataFrame({
        "label": [f"{e} | {o} | {Path(r).name}" for e, o, r in zip(s["event"], s["outcome"], s["run"])],
        "run": s["run"], "role": s["role"].fillna("event"), "event": s["event"], "outcome": s["outcome"],
        "estimate": s["level_pct"], "ci_low": s["level_pct_ci_low"], "ci_high": s["level_pct_ci_high"],
        "p_value": s["p_value"], "p_value_holm": s["p_value_holm"], "p_value_bh": s["p_value_bh"],
    })
    return df.sort_values(["event", "outcome", "run"], kind="stable").reset_index(drop=True)


def plot_forest(*, data: "Any", ax=None, title: str | None = None, n_left_out: int = 0):
    """Forest plot of the level change across the runs of a batch (events x indicators).

    Parameters
    ----------
    data : DataFrame
        From :func:`forest_data`.
    ax : matplotlib Axes, optional
    title : str, optional
    n_left_out : int
        Runs not shown (not complete, or Gaussian); said under the plot.

    Returns
    -------
    (Figure, Axes)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from raidstudy.report.plots import COLORS, style

    n = len(data)
    with style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * max(n, 1)), layout="constrained")
        else:
            fig = ax.figure
        y = np.arange(n)[::-1]
        for role, color, label in (("event", COLORS["fitted"], "event"),
                                   ("control", COLORS["control"], "control (expected null)")):
            m = (data["role"] == role).to_numpy()
            if not m.any():
                continue
            est = data["estimate"].to_numpy(float)[m]
            lo, hi = data["ci_low"].to_numpy(float)[m], data["ci_high"].to_numpy(float)[m]
            ax.errorbar(est, y[m], xerr=[est - lo, hi - est], fmt="o", color=color, ecolor=color,
                        capsize=2, lw=1.2, ms=4, label=label)
        ax.axvline(0, color=COLORS["event"], lw=0.8)
        ax.set_yticks(y, list(data["label"]))
        ax.set_xlabel("level change at the event, % (with each run's confidence interval)")
        ax.set_ylim(-0.7, max(n, 1) - 0.3)
        if data["role"].eq("control").any():
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        if title:
            ax.set_title(title, loc="left")
        if n_left_out:
            ax.annotate(f"{n_left_out} run{'s' if n_left_out != 1 else ''} not shown (not complete, or a "
                        "Gaussian level change in outcome units): see the summary table",
                        xy=(0, 0), xycoords="figure fraction", xytext=(4, 2), textcoords="offset points",
                        fontsize=7, color="#555555")
        if not n:
            ax.text(0.5, 0.5, "no complete run with a percentage level change", transform=ax.transAxes,
                    ha="center", va="center")
    return fig, ax


def _display_level(row: Mapping[str, Any]) -> str:
    import math

    from raidstudy.report.tables import readable_number

    def ok(v):
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    if ok(row.get("level_pct")):
        return f"{row['level_pct']:+.1f}% ({row['level_pct_ci_low']:+.1f}% to {row['level_pct_ci_high']:+.1f}%)"
    if ok(row.get("level")):
        return (f"{readable_number(row['level'])} ({readable_number(row['level_ci_low'])} to "
                f"{readable_number(row['level_ci_high'])})")
    return ""


#: The summary's columns as shown in summary.md and index.html, with their headers.
DISPLAY_COLUMNS = {
    "role": "role", "status": "status", "event": "event", "date_precision": "date precision",
    "outcome": "outcome", "family": "family", "level_change": "level change (CI)", "p_value": "p_value",
    "p_value_holm": "p_value Holm", "p_value_bh": "p_value BH", "placebo_p_value": "placebo p_value",
    "n_missing": "missing periods", "error": "note",
}


def _display_table(summary: "Any") -> "Any":
    from raidstudy.report.tables import readable

    df = summary.copy()
    df["level_change"] = [_display_level(r) for r in df.to_dict("records")]
    df = df.set_index("run")[list(DISPLAY_COLUMNS)]
    shown = readable(df)
    shown.columns = list(DISPLAY_COLUMNS.values())
    return shown


def _summary_notes(summary: "Any") -> list[str]:
    n_p = int(((summary["status"] == "complete") & summary["p_value"].notna()).sum())
    return [
        f"{int((summary['status'] == 'complete').sum())} of {len(summary)} runs complete "
        f"({int(summary['reused'].eq(True).sum())} reused from an earlier batch).",
        f"Holm (family-wise error) and Benjamini-Hochberg (false discovery rate) adjust the p-values across "
        f"the {n_p} complete runs of this plan, controls included.",
        "Placebo p_value: in-time placebos on independent windows of the history; with few windows it "
        "cannot be small (see placebo_min_p in summary.csv).",
        "Controls are events whose expected effect is null; an effect there questions the design.",
    ]


def _index_html(summary: "Any", root: Path, title: str) -> str:
    """index.html for a batch folder: the summary table with links to each run's report."""
    from html import escape

    shown = _display_table(summary)
    head = "".join(f"<th>{escape(c)}</th>" for c in ["run", *shown.columns])
    body = []
    for (run, row), report in zip(shown.iterrows(), summary["report"]):
        name = escape(Path(run).name)
        if isinstance(report, str) and report:
            href = Path(os.path.relpath(_resolve(report), root)).as_posix()
            cell = f'<a href="{escape(href, quote=True)}">{name}</a>'
        else:
            cell = name
        tds = "".join(f"<td>{escape(str(v))}</td>" for v in row)
        body.append(f"<tr><td>{cell}</td>{tds}</tr>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in _summary_notes(summary))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p>Files: <a href="summary.md">summary.md</a>, <a href="summary.csv">summary.csv</a> (every column),
forest plot <a href="forest.png">PNG</a> and <a href="forest.pdf">PDF</a>
(data: <a href="forest.csv">forest.csv</a>). Each run's name links to its report.</p>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
<ul>{notes}</ul>
<p><img src="forest.png" alt="Forest plot of the level change across the runs"></p>
</body>
</html>
"""


def write_batch_summary(output_dirs: Sequence[str | Path], output_root: str | Path, *,
                        roles: Sequence[str] | None = None,
                        batch_rows: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Path]:
    """Write a batch's summary into ``output_root``: ``summary.md``, ``summary.csv``,
    ``forest.png``/``.pdf`` (data in ``forest.csv``) and ``index.html``.

    Parameters
    ----------
    output_dirs : sequence of paths
        The runs' directories, in plan order.
    output_root : path
        The batch folder (relative paths are relative to the repository).
    roles, batch_rows
        As for :func:`summarise_runs`.

    Returns
    -------
    dict
        The paths written, by name.
    """
    import matplotlib.pyplot as plt

    from raidstudy.io import atomic_path
    from raidstudy.report.tables import to_markdown
    from raidstudy.study.artefacts import save_figure

    root = _resolve(output_root)
    root.mkdir(parents=True, exist_ok=True)
    summary = summarise_runs(output_dirs, roles=roles, batch_rows=batch_rows)
    shown = _display_table(summary)
    title = f"raidstudy batch: {_relpath(root)}"
    md = (f"# {title}\n\n" + to_markdown(shown) + "\n\n" + "\n".join(f"- {n}" for n in _summary_notes(summary))
          + "\n")
    paths = {"summary.md": atomic_write_text(root / "summary.md", md)}
    with atomic_path(root / "summary.csv", suffix=".csv") as tmp:
        summary.to_csv(tmp, index=False)
    paths["summary.csv"] = root / "summary.csv"
    fd = forest_data(summary)
    with atomic_path(root / "forest.csv", suffix=".csv") as tmp:
        fd.to_csv(tmp, index=False)
    paths["forest.csv"] = root / "forest.csv"
    fig, _ = plot_forest(data=fd, n_left_out=len(summary) - len(fd))
    try:
        png, pdf = save_figure(fig, root / "forest")
    finally:
        plt.close(fig)
    paths.update({"forest.png": png, "forest.pdf": pdf})
    paths["index.html"] = atomic_write_text(root / "index.html", _index_html(summary, root, title))
    return paths
