"""Download the upstream nZEDb dumps (``raidstudy fetch nzedb --from DATE --to DATE``).

Files come from https://github.com/nZEDb/nZEDbPre_Dumps at the pinned commit
(:data:`raidstudy.data.indicators.UPSTREAM_COMMIT`). The list of files comes from an *index*:
by default the GitHub contents API (``{index_url}/dumps?ref=COMMIT`` lists the folders,
``{index_url}/dumps/<folder>?ref=COMMIT`` the files in one); a plain JSON manifest
``{"files": [{"path": "dumps/<folder>/<unix>_predb_dump.csv.gz", "size": N, "sha256": "..."}]}``
at ``index_url`` works too. Each file is downloaded from ``{base_url}/{path}``.

* Safe names: every path that comes over the network must be ``dumps/<digits>/<digits>
  _predb_dump.csv.gz``; anything else (``..``, absolute paths, other names) is refused with an
  :class:`raidstudy.errors.IngestError`, and the target must resolve inside the output folder.
* Resume: a download goes to ``<name>.part``; an interrupted one resumes with an HTTP
  ``Range`` request (or restarts if the server ignores it).
* Retries: network errors, HTTP 5xx and 429 are retried with exponential back-off
  (``backoff(attempt)`` seconds, injectable with ``sleep`` for tests).
* Checksums: the size and (when the index gives one) the git blob SHA-1 or SHA-256 are
  verified; the SHA-256 of every file is recorded in ``SHA256SUMS`` in the output folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from raidstudy.io import atomic_write_text, sha256_file
from raidstudy.errors import IngestError, ParameterError
from raidstudy.paths import raw_dir

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_INDEX_URL", "fetch_nzedb", "list_remote", "safe_target"]

_COMMIT = "837207b065a1856e1b012fd1c61bedf81eb843e2"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/nZEDb/nZEDbPre_Dumps/{_COMMIT}"
DEFAULT_INDEX_URL = "https://api.github.com/repos/nZEDb/nZEDbPre_Dumps/contents"
_FOLDER_RE = re.compile(r"^\d{1,12}$")
_FILE_RE = re.compile(r"^(\d{1,12})_predb_dump\.csv\.gz$")
_UA = "raidstudy-fetch/0.1 (+https://github.com/nZEDb/nZEDbPre_Dumps)"


class _Retryable(Exception):
    pass


def default_backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): 1, 2, 4, 8, ... capped at 60."""
    return float(min(60, 2 ** (attempt - 1)))


def safe_target(out_dir: Path, path: str) -> Path:
    """Check a remote path (``dumps/<digits>/<digits>_predb_dump.csv.gz``) and map it into ``out_dir``.

    Raises
    ------
    IngestError
        For any other shape (traversal, absolute paths, odd names).
    """
    parts = path.split("/")
    ok = (len(parts) == 3 and parts[0] == "dumps" and _FOLDER_RE.match(parts[1] or "")
          and _FILE_RE.match(parts[2] or ""))
    if not ok or "\\" in path or "\x00" in path:
        raise IngestError(
            f"refusing unsafe file name from the index: {path!r}; expected "
            "'dumps/<digits>/<digits>_predb_dump.csv.gz'. Check --index-url"
        )
    target = (out_dir / parts[0] / parts[1] / parts[2]).resolve()
    if out_dir.resolve() not in target.parents:
        raise IngestError(f"refusing {path!r}: it resolves outside {out_dir}")
    return target


def _open(url: str, headers: dict | None = None, timeout: float = 60.0):
    req = urllib.request.Request(url, headers={"User-Agent": _UA, **(headers or {})})
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (scheme checked by caller)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code} for {url}") from None
        if exc.code == 416:
            raise
        raise IngestError(f"HTTP {exc.code} fetching {url}: {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise _Retryable(f"{exc} for {url}") from None


def _with_retries(fn: Callable[[], Any], what: str, retries: int, sleep, backoff) -> Any:
    for attempt in range(retries + 1):
        try:
            return fn()
        except _Retryable as exc:
            if attempt == retries:
                raise IngestError(f"giving up on {what} after {retries + 1} attempts: {exc}. "
                                  "Rerun later: finished files are kept and partial ones resume") from None
            sleep(backoff(attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _get_json(url: str, retries: int, sleep, backoff) -> Any:
    def go():
        with _open(url, {"Accept": "application/vnd.github+json"}) as resp:
            try:
                return json.loads(resp.read().decode("utf-8"))
            except (ValueError, ConnectionError, OSError) as exc:
                raise _Retryable(f"bad index response ({exc})") from None
    return _with_retries(go, url, retries, sleep, backoff)


def _with_ref(url: str, ref: str | None) -> str:
    if not ref:
        return url
    return url + ("&" if "?" in url else "?") + f"ref={ref}"


def list_remote(index_url: str, date_from: pd.Timestamp, date_to: pd.Timestamp, *, ref: str | None = _COMMIT,
                retries: int = 4, sleep=time.sleep, backoff=default_backoff) -> list[dict]:
    """Files in the index whose creation date (UTC) is within ``[date_from, date_to]``.

    Returns
    -------
    list of dict
        ``path`` (``dumps/<folder>/<file>``), ``size`` (or None), ``sha`` (git blob SHA-1 or
        None), ``sha256`` (or None), sorted by path.
    """
    lo = int(date_from.timestamp())
    hi = int((date_to + pd.Timedelta(days=1)).timestamp())
    top = _get_json(_with_ref(index_url.rstrip("/") + "/dumps", ref) if not index_url.endswith(".json")
                    else index_url, retries, sleep, backoff)
    files: list[dict] = []
    if isinstance(top, dict) and "files" in top:
        for f in top["files"]:
            files.append({"path": str(f.get("path", "")), "size": f.get("size"), "sha": f.get("sha"),
                          "sha256": f.get("sha256")})
    elif isinstance(top, list):
        dirs = sorted((e for e in top if e.get("type") == "dir"), key=lambda e: str(e.get("name")))
        starts = []
        for e in dirs:
            name = str(e.get("name", ""))
            if not _FOLDER_RE.match(name):
                raise IngestError(f"refusing unsafe folder name from the index: {name!r}")
            starts.append(int(name))
        order = sorted(range(len(dirs)), key=lambda i: starts[i])
        for j, i in enumerate(order):
            f_lo = starts[i]
            f_hi = starts[order[j + 1]] if j + 1 < len(order) else None
            if f_lo >= hi or (f_hi is not None and f_hi <= lo):
                continue  # this folder's files are all outside the range
            sub = _get_json(_with_ref(index_url.rstrip("/") + f"/dumps/{dirs[i]['name']}", ref), retries, sleep, backoff)
            for e in sub if isinstance(sub, list) else []:
                if e.get("type") != "file":
                    continue
                files.append({"path": str(e.get("path") or f"dumps/{dirs[i]['name']}/{e.get('name')}"),
                              "size": e.get("size"), "sha": e.get("sha"), "sha256": None})
    else:
        raise IngestError(f"index {index_url} is neither a GitHub contents listing nor a manifest")
    out = []
    for f in files:
        name = f["path"].rsplit("/", 1)[-1]
        m = _FILE_RE.match(name)
        if not m:
            if name.endswith(".gz") or "/" in f["path"]:
                safe_target(Path("."), f["path"])  # raises with a clear message
            continue
        if lo <= int(m.group(1)) < hi:
            out.append(f)
    return sorted(out, key=lambda f: f["path"])


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1()
    h.update(b"blob %d\x00" % path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, target: Path, size: int | None, *, retries: int, sleep, backoff, bar=None) -> str:
    """Download with resume; returns "downloaded" or "resumed"."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {"resumed": False}

    def go():
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            resp = _open(url, headers)
        except urllib.error.HTTPError as exc:  # 416: the part file is already complete (or bigger)
            if exc.code == 416 and size is not None and have == size:
                return
            part.unlink(missing_ok=True)
            raise _Retryable(f"HTTP 416 for {url}; restarting") from None
        with resp:
            status = getattr(resp, "status", 200)
            mode = "ab" if (have and status == 206) else "wb"
            if mode == "ab":
                state["resumed"] = True
            try:
                with open(part, mode) as fh:
                    while True:
                        block = resp.read(1 << 16)
                        if not block:
                            break
                        fh.write(block)
                        if bar is not None:
                            bar.update(len(block))
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise _Retryable(f"connection lost ({exc})") from None
        got = part.stat().st_size
        expected = size
        length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        if expected is None and length is not None and mode == "wb":
            expected = int(length)
        if expected is not None and got < expected:
            raise _Retryable(f"incomplete download ({got} of {expected} bytes)")
        if expected is not None and got > expected:
            part.unlink(missing_ok=True)
            raise _Retryable(f"download larger than expected ({got} > {expected} bytes); restarting")

    _with_retries(go, url, retries, sleep, backoff)
    os.replace(part, target)
    return "resumed" if state["resumed"] else "downloaded"


def fetch_nzedb(
    date_from,
    date_to,
    *,
    out_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    index_url: str | None = None,
    ref: str | None = _COMMIT,
    retries: int = 4,
    sleep: Callable[[float], None] = time.sleep,
    backoff: Callable[[int], float] = default_backoff,
    quiet: bool = False,
) -> dict[str, Any]:
    """Download the dumps created between two dates (inclusive, UTC) into ``out_dir``.

    Parameters
    ----------
    date_from, date_to : date-like
        First and last creation day.
    out_dir : path, optional
        Target folder (default ``data/raw/nzedb``); files land in ``dumps/<folder>/``.
    base_url : str, optional
        Download root (default :data:`DEFAULT_BASE_URL`). Must be ``https://`` unless it
        points at ``127.0.0.1``/``localhost`` (tests) or is given explicitly as ``http://``.
    index_url : str, optional
        GitHub contents API root or a JSON manifest (default :data:`DEFAULT_INDEX_URL`).
    ref : str, optional
        Git ref passed to the contents API (default: the pinned commit).
    retries : int
        Attempts after the first for each request.
    sleep, backoff : callable
        Waiting between retries (``sleep(backoff(attempt))``); injectable for tests.
    quiet : bool
        No progress bar (also off when stderr is not a terminal).

    Returns
    -------
    dict
        ``downloaded``, ``resumed``, ``skipped`` (already complete), ``files`` (paths) and
        ``checksums_file``.
    """
    try:
        d0, d1 = pd.Timestamp(date_from), pd.Timestamp(date_to)
    except (ValueError, TypeError) as exc:
        raise ParameterError("--from/--to", (date_from, date_to), f"not dates ({exc})", hint="use YYYY-MM-DD") from None
    if d0 > d1:
        raise ParameterError("--from", date_from, f"is after --to {date_to}", hint="swap them")
    if retries < 0:
        raise ParameterError("retries", retries, "must be >= 0")
    base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    index_url = index_url or DEFAULT_INDEX_URL
    for name, url in (("--base-url", base_url), ("--index-url", index_url)):
        if not url.startswith(("https://", "http://")):
            raise ParameterError(name, url, "must be an https:// (or explicit http://) URL")
    out = Path(out_dir) if out_dir is not None else raw_dir() / "nzedb"
    out.mkdir(parents=True, exist_ok=True)
    files = list_remote(index_url, d0, d1, ref=ref, retries=retries, sleep=sleep, backoff=backoff)
    targets = [(f, safe_target(out, f["path"])) for f in files]  # check every name before any download
    total = sum(int(f["size"] or 0) for f in files)
    bar = None
    try:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, unit="B", unit_scale=True, desc="fetching dumps",
                   disable=quiet or not sys.stderr.isatty(), leave=False)
    except ImportError:  # pragma: no cover
        pass
    counts = {"downloaded": 0, "resumed": 0, "skipped": 0}
    sums_path = out / "SHA256SUMS"
    sums: dict[str, str] = {}
    if sums_path.is_file():
        for line in sums_path.read_text().splitlines():
            if "  " in line:
                h, p = line.split("  ", 1)
                sums[p] = h
    try:
        for f, target in targets:
            size = int(f["size"]) if f.get("size") is not None else None
            if target.is_file() and (size is None or target.stat().st_size == size):
                counts["skipped"] += 1
                if bar is not None and size:
                    bar.update(size)
            else:
                how = _download(f"{base_url}/{f['path']}", target, size, retries=retries, sleep=sleep,
                                backoff=backoff, bar=bar)
                counts[how] += 1
            if f.get("sha") and re.fullmatch(r"[0-9a-f]{40}", str(f["sha"])):
                if _git_blob_sha1(target) != f["sha"]:
                    bad = target.with_name(target.name + ".bad")
                    os.replace(target, bad)
                    raise IngestError(f"checksum mismatch for {f['path']} (git blob sha1); moved it to "
                                      f"{bad.name}. Rerun to download it again")
            digest = sha256_file(target)
            if f.get("sha256") and f["sha256"] != digest:
                bad = target.with_name(target.name + ".bad")
                os.replace(target, bad)
                raise IngestError(f"checksum mismatch for {f['path']} (sha256); moved it to {bad.name}. "
                                  "Rerun to download it again")
            sums[target.relative_to(out.resolve()).as_posix() if target.is_absolute() else f["path"]] = digest
    finally:
        if bar is not None:
            bar.close()
        if sums:
            atomic_write_text(sums_path, "".join(f"{h}  {p}\n" for p, h in sorted(sums.items())))
    return {**counts, "files": [f["path"] for f in files], "checksums_file": "SHA256SUMS"}
