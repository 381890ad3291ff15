"""Ingest raw nZEDb dumps into the releases table, with an exact row accounting.

``raidstudy ingest [RAW_DIR] [--out DIR]`` reads every ``*_predb_dump.csv.gz`` under
``RAW_DIR`` (default :func:`raidstudy.paths.default_dumps_dir`) and writes, under ``DIR``
(default ``data/interim/``):

* ``releases.parquet``: one row per unique release (schema in :mod:`raidstudy.releases`);
* ``dumps.parquet``: one row per input file x feed (rows read, rows valid) plus the file's
  creation time, checksum and problems -- the input of the coverage rule;
* ``ingest_report.json``: the accounting. For every file, ``lines == rows_parsed +
  skipped``; overall, ``lines_read == rows_kept + duplicates + sum(skipped.values())``.

Rows are never dropped silently. Skip reasons (each row counted once, first reason wins):

``wrong_field_count``  the line does not split into 12 fields on ``\\t\\t`` (also blank lines)
``truncated_line``     the incomplete last line of a truncated or corrupt gzip file
``bad_title``          the title is NULL, empty or not single-quoted
``bad_timestamp``      ``predate`` is NULL or not ``'YYYY-MM-DD HH:MM:SS'``
``unknown_feed``       ``source`` is not one of :data:`KNOWN_FEEDS` (see ``accept_feeds``)

Rows whose bytes are not valid UTF-8 are kept (bytes replaced by U+FFFD) and counted as
``rows_with_bad_bytes``. Duplicates (same lower-cased title) keep the first row in file
creation order, then line order; titles whose copies carry different pre times are counted
(``duplicate_titles_with_different_times``) and reported with examples.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from ._io import atomic_path, sha256_file, write_json
from .paths import default_dumps_dir, display_path, interim_dir
from .releases import NUKED_CODES, RELEASES_SCHEMA, groups_from_titles, section_families
from .sources import nzedb

__all__ = [
    "KNOWN_FEEDS",
    "SKIP_REASONS",
    "RELEASES_FILE",
    "DUMPS_FILE",
    "REPORT_FILE",
    "ingest",
    "ingest_tables",
    "read_and_clean",
    "summarise",
    "display_path",
]

#: Feeds accepted by default: every feed seen in the 2014-2024 nZEDb dumps
#: (usenet ``#a.b.*`` channels are accepted by prefix).
KNOWN_FEEDS = (
    "#pre@corrupt", "xrel", "srrdb", "xrelp2p", "m2v.ru", "orlydb", "prelist",
    "predb.me", "zenet", "abgx", "omgwtfnzbs", "womble", "usenet-crawler",
)
_KNOWN_PREFIXES = ("#a.b.",)

SKIP_REASONS = ("wrong_field_count", "truncated_line", "bad_title", "bad_timestamp", "unknown_feed")

RELEASES_FILE = "releases.parquet"
DUMPS_FILE = "dumps.parquet"
REPORT_FILE = "ingest_report.json"
MAX_EXAMPLES = nzedb.MAX_EXAMPLES


def _unquote(arr):
    """Strip single quotes; ``\\N`` -> null; other (malformed) text is kept as is."""
    quoted = pc.and_(pc.starts_with(arr, "'"), pc.ends_with(arr, "'"))
    quoted = pc.and_(quoted, pc.greater_equal(pc.binary_length(arr), 2))
    inner = pc.utf8_slice_codeunits(arr, 1, -1)
    return pc.if_else(quoted, inner, pc.if_else(pc.equal(arr, "\\N"), pa.scalar(None, pa.string()), arr))


def _unquote_dict(arr) -> pa.ChunkedArray:
    """:func:`_unquote` of a (chunked) dictionary array, once per distinct value; returns strings."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = []
    for ch in chunks:
        if pa.types.is_dictionary(ch.type):
            out.append(pc.take(_unquote(ch.dictionary), ch.indices))
        else:
            out.append(_unquote(ch))
    return pa.chunked_array(out, pa.string())


def _unescape(arr: pa.Array) -> pa.Array:
    """Undo MySQL backslash escapes (``\\'``, ``\\"``, ``\\\\``) where a backslash occurs."""
    has = pc.match_substring(arr, "\\")
    if not pc.any(has).as_py():
        return arr
    if isinstance(arr, pa.ChunkedArray):
        arr, has = arr.combine_chunks(), has.combine_chunks()
    fixed = pc.replace_substring_regex(pc.filter(arr, has), r"\\(['\"\\])", r"\1")
    return pc.replace_with_mask(arr, has, fixed)


_NUM = r"^-?\d{1,3}$"
_RAW_COLUMNS = ("title", "nuked", "nukereason", "category", "predate", "source")


class _Cleaner:
    """Cleaning of a batch of files, run in the reader threads (see :func:`read_and_clean`).

    Returns the batch's valid rows in the releases schema plus a ``key`` column (the
    lower-cased title); adds its skip counts and examples to each file's FileResult.
    """

    def __init__(self, origins: Sequence[str], accept_feeds: Iterable[str] | None):
        self.origins = pa.array(list(origins), pa.string())
        acc = list(accept_feeds or [])
        self.any_feed = "*" in acc
        self.known = pa.array(list(KNOWN_FEEDS) + [f for f in acc if f != "*"], pa.string())

    def _skip(self, by_index: dict, raw: pa.Table, mask, reason: str) -> None:
        if not pc.any(mask).as_py():
            return
        hit = pc.indices_nonzero(mask)
        sub = raw.take(hit)
        fi = sub["file_index"].to_numpy()
        for k in np.unique(fi):
            res = by_index[int(k)]
            rows = np.nonzero(fi == k)[0]
            res.skipped[reason] = res.skipped.get(reason, 0) + len(rows)
            ex = res.examples.setdefault(reason, [])
            for r in sub.take(pa.array(rows[: max(0, MAX_EXAMPLES - len(ex))])).to_pylist():
                ex.append(f"{res.relpath} line {r['line']}: title={r['title']} predate={r['predate']} "
                          f"source={r['source']}")

    def __call__(self, results: list[nzedb.FileResult]) -> pa.Table:
        tables = [r.table for r in results if r.table is not None and r.table.num_rows]
        if not tables:
            return _EMPTY_KEYED
        raw = pa.concat_tables(tables)
        col = {k: raw.column(k) for k in raw.column_names}
        title_raw = col["title"]
        title_ok = pc.and_(pc.and_(pc.starts_with(title_raw, "'"), pc.ends_with(title_raw, "'")),
                           pc.greater(pc.binary_length(title_raw), 2))
        ts = pc.strptime(col["predate"], format="'%Y-%m-%d %H:%M:%S'", unit="s", error_is_null=True)
        ts_ok = pc.is_valid(ts)
        feed = _unquote_dict(col["source"])
        if self.any_feed:
            feed_ok = pc.fill_null(pc.greater(pc.binary_length(feed), 0), False)
        else:
            feed_ok = pc.fill_null(pc.or_(pc.is_in(feed, self.known), pc.starts_with(feed, _KNOWN_PREFIXES[0])),
                                   False)
        valid = pc.and_(pc.and_(title_ok, ts_ok), feed_ok)
        if not pc.all(valid).as_py():
            by_index = {r.index: r for r in results}
            raw_s = pa.table({"title": title_raw, "predate": col["predate"],
                              "source": _unquote_dict(col["source"]), "line": col["line"],
                              "file_index": col["file_index"]})
            self._skip(by_index, raw_s, pc.invert(title_ok), "bad_title")
            self._skip(by_index, raw_s, pc.and_(title_ok, pc.invert(ts_ok)), "bad_timestamp")
            self._skip(by_index, raw_s, pc.and_(pc.and_(title_ok, ts_ok), pc.invert(feed_ok)), "unknown_feed")
            col = {k: pc.filter(v, valid) for k, v in col.items()}
            ts = pc.filter(ts, valid)
            feed = pc.filter(feed, valid)
        counts = np.bincount(np.asarray(col["file_index"]), minlength=max(r.index for r in results) + 1)
        for r in results:
            r.n_valid = int(counts[r.index])
            r.table = None  # the raw columns are no longer needed: free them early
        title = _unescape(pc.utf8_slice_codeunits(col["title"], 1, -1))
        all_ascii = all(r.is_ascii for r in results)
        key = pc.ascii_lower(title) if all_ascii else pc.utf8_lower(title)
        section = pc.fill_null(_unquote_dict(col["category"]), "")
        nuke_s = pc.fill_null(_unquote_dict(col["nuked"]), "0")
        is_num = pc.match_substring_regex(nuke_s, _NUM)
        nuke_code = pc.if_else(is_num, pc.cast(pc.if_else(is_num, nuke_s, "-1"), pa.int8()),
                               pa.scalar(-1, pa.int8()))
        return pa.table({
            "title": title,
            "group": _nulls_like(title),
            "section": section,
            "family": _nulls_like(title),
            "feed": feed,
            "pre_time": pc.assume_timezone(ts, "UTC"),
            "nuke_code": nuke_code,
            "nuked": pc.is_in(nuke_code, pa.array(NUKED_CODES, pa.int8())),
            "nuke_reason": pc.fill_null(_unquote_dict(col["nukereason"]), ""),
            "origin": pa.chunked_array([pa.DictionaryArray.from_arrays(c, self.origins)
                                        for c in col["file_index"].chunks],
                                       pa.dictionary(pa.int32(), pa.string())),
            "line": col["line"],
            "key": key,
        })


def _nulls_like(arr) -> pa.Array | pa.ChunkedArray:
    """A null string column shaped like ``arr`` (a placeholder filled after deduplication)."""
    if isinstance(arr, pa.Array):
        return pa.nulls(len(arr), pa.string())
    return pa.chunked_array([pa.nulls(len(c), pa.string()) for c in arr.chunks], pa.string())


_EMPTY_KEYED = RELEASES_SCHEMA.append(pa.field("key", pa.string())).empty_table()

def _dedup_first(key) -> tuple[np.ndarray, np.ndarray]:
    """Exact first-occurrence deduplication on ``key`` (Arrow's hash table compares the
    strings themselves, so there is no collision to guard against).

    Returns
    -------
    is_dup : bool array
        True for every row whose key occurred earlier.
    rep : int64 array
        The index of the first row with the same key (itself for first occurrences).
    """
    n = len(key)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    if isinstance(key, pa.ChunkedArray):
        try:
            key = key.combine_chunks()  # one memo table pass: much faster than chunk by chunk
        except (pa.ArrowInvalid, pa.ArrowCapacityError):  # pragma: no cover - over 2 GB of keys
            pass
    codes = pc.dictionary_encode(key)
    if isinstance(codes, pa.ChunkedArray):  # pragma: no cover - see above
        codes = codes.combine_chunks()
    idx = codes.indices.to_numpy()
    ndist = len(codes.dictionary)
    del codes, key
    ar = np.arange(n, dtype=np.int64)
    first = np.empty(ndist, dtype=np.int64)
    first[idx[::-1]] = ar[::-1]  # the earliest index is written last
    rep = first[idx]
    return rep != ar, rep


def _add_families(t: pa.Table, threads: int | None = None) -> pa.Table:
    """Fill ``group`` and ``family`` (after deduplication, so only unique titles are looked at)."""
    from concurrent.futures import ThreadPoolExecutor

    t = t.combine_chunks() if t.column("title").num_chunks > 256 else t
    sec, tit = t.column("section").chunks, t.column("title").chunks

    def work(a):
        return groups_from_titles(a[1]), section_families(a[0], a[1])

    with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1)) as pool:
        out = list(pool.map(work, zip(sec, tit)))
    t = t.set_column(t.schema.get_field_index("group"), "group",
                     pa.chunked_array([g for g, _ in out], pa.string()))
    return t.set_column(t.schema.get_field_index("family"), "family",
                        pa.chunked_array([f for _, f in out], pa.string()))


def ingest_tables(
    batches: Sequence[tuple[list[nzedb.FileResult], pa.Table | None]],
    dumps: Sequence[nzedb.DumpFile],
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Deduplicate the per-file cleaned tables and assemble the accounting.

    Parameters
    ----------
    batches : sequence of (list of FileResult, pyarrow.Table)
        What :func:`read_and_clean` returns: per batch of consecutive files, their
        FileResults and their cleaned rows, in creation order.
    dumps : sequence of DumpFile
        The same files (for names and creation times).

    Returns
    -------
    releases : pyarrow.Table
        Unique releases, :data:`raidstudy.releases.RELEASES_SCHEMA`.
    dumps_table : pyarrow.Table
        Per file x feed row counts (see module docs).
    report : dict
        The accounting (JSON-ready).
    """
    results = [r for rs, _ in batches for r in rs]
    skipped: dict[str, int] = {r: 0 for r in SKIP_REASONS}
    examples: dict[str, list[str]] = {r: [] for r in SKIP_REASONS}
    for res in results:
        for k, v in res.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
            ex = examples.setdefault(k, [])
            ex.extend(res.examples.get(k, [])[: max(0, MAX_EXAMPLES - len(ex))])
    tables = [t for _, t in batches if t is not None and t.num_rows]
    t = pa.concat_tables(tables) if tables else _EMPTY_KEYED
    for r in results:
        r.table = None  # free the raw columns
    n_valid = t.num_rows

    # Per file x feed valid rows (before deduplication), for the coverage rule.
    per = pa.table({"f": pc.dictionary_encode(t["origin"]).chunk(0).indices if False else
                    pa.chunked_array([c.indices for c in t["origin"].chunks], pa.int32()),
                    "feed": t["feed"]}).group_by(["f", "feed"], use_threads=False).aggregate([("feed", "count")]) \
        if n_valid else pa.table({"f": pa.array([], pa.int32()), "feed": pa.array([], pa.string()),
                                   "feed_count": pa.array([], pa.int64())})

    ts = np.concatenate([c.cast(pa.int64()).to_numpy() for c in t["pre_time"].chunks]) if n_valid else \
        np.zeros(0, np.int64)
    is_dup, rep = _dedup_first(t["key"])
    differs = is_dup & (ts != ts[rep])
    mark = np.zeros(n_valid, dtype=bool)
    mark[rep[differs]] = True
    conflict_reps = np.flatnonzero(mark)
    n_conflict = len(conflict_reps)
    mark[:] = False
    mark[rep[is_dup & (np.abs(ts - ts[rep]) > 86400)]] = True
    n_far = int(mark.sum())
    del mark, differs
    conflict_examples = []
    if n_conflict:
        for r0 in conflict_reps[:MAX_EXAMPLES]:
            copies = np.nonzero(rep == r0)[0]
            sub = t.select(["title", "feed", "pre_time", "origin", "line"]).take(pa.array(copies)).to_pylist()
            conflict_examples.append("; ".join(
                f"{c['title']} [{c['feed']}] {c['pre_time']:%Y-%m-%d %H:%M:%S} ({c['origin']} line {c['line']})"
                for c in sub))
    dup_total = int(is_dup.sum())
    releases = t.drop_columns(["key"])
    del t, rep
    if dup_total:
        releases = releases.filter(pa.array(~is_dup))
    releases = _add_families(releases).cast(RELEASES_SCHEMA)

    pff = per.to_pydict()
    by_file: dict[int, dict[str, int]] = {}
    for fi, fd, n in zip(pff["f"], pff["feed"], pff["feed_count"]):
        by_file.setdefault(fi, {})[fd] = n
    d_rows: dict[str, list] = {k: [] for k in (
        "origin", "created_unix", "sha256", "status", "lines", "rows_parsed", "feed", "rows_valid")}
    files_report = []
    for res, d in zip(results, dumps):
        status = "unreadable" if res.unreadable else (res.problem or "ok")
        files_report.append({
            "origin": d.relpath, "created_unix": d.created_unix, "status": status,
            "problem": res.problem, "lines": res.n_lines, "rows_parsed": res.n_rows,
            "rows_valid": getattr(res, "n_valid", 0),
            "skipped": dict(sorted(res.skipped.items())),
            "rows_with_bad_bytes": res.n_bad_bytes_rows, "sha256": res.sha256,
        })
        feeds = by_file.get(res.index, {}) or {"": 0}
        for fd, n in sorted(feeds.items()):
            d_rows["origin"].append(d.relpath)
            d_rows["created_unix"].append(d.created_unix)
            d_rows["sha256"].append(res.sha256 or "")
            d_rows["status"].append(status)
            d_rows["lines"].append(res.n_lines)
            d_rows["rows_parsed"].append(res.n_rows)
            d_rows["feed"].append(fd)
            d_rows["rows_valid"].append(n)
    dumps_table = pa.table({
        "origin": pa.array(d_rows["origin"], pa.string()),
        "created_unix": pa.array(d_rows["created_unix"], pa.int64()),
        "sha256": pa.array(d_rows["sha256"], pa.string()),
        "status": pa.array(d_rows["status"], pa.string()),
        "lines": pa.array(d_rows["lines"], pa.int64()),
        "rows_parsed": pa.array(d_rows["rows_parsed"], pa.int64()),
        "feed": pa.array(d_rows["feed"], pa.string()),
        "rows_valid": pa.array(d_rows["rows_valid"], pa.int64()),
    })
    lines_read = sum(r.n_lines for r in results)
    n_skipped = sum(skipped.values())
    report = {
        "files": len(results),
        "files_unreadable": [f["origin"] for f in files_report if f["status"] == "unreadable"],
        "files_truncated_or_corrupt": [f["origin"] for f in files_report
                                       if f["status"] in ("truncated_gzip", "corrupt_gzip")],
        "files_slow_path": [r.relpath for r in results if r.slow_path],
        "lines_read": lines_read,
        "rows_parsed": sum(r.n_rows for r in results),
        "rows_valid": n_valid,
        "rows_kept": releases.num_rows,
        "duplicates": dup_total,
        "duplicate_titles_with_different_times": n_conflict,
        "duplicate_titles_with_times_over_1_day_apart": n_far,
        "duplicate_titles_with_different_times_examples": conflict_examples,
        "rows_with_bad_bytes": sum(r.n_bad_bytes_rows for r in results),
        "skipped": skipped,
        "skipped_total": n_skipped,
        "skipped_examples": {k: v for k, v in examples.items() if v},
        "accounting_balances": lines_read == releases.num_rows + dup_total + n_skipped,
        "per_file": files_report,
    }
    if not report["accounting_balances"]:  # pragma: no cover - a bug, not bad input
        raise AssertionError(f"row accounting does not balance: { {k: report[k] for k in ('lines_read', 'rows_kept', 'duplicates', 'skipped')} }")
    return releases, dumps_table, report


def read_and_clean(
    dumps: Sequence[nzedb.DumpFile],
    *,
    skip_unreadable: bool = False,
    accept_feeds: Iterable[str] | None = None,
    threads: int | None = None,
    checksums: bool = True,
    progress=None,
    batch_files: int = 32,
) -> list[tuple[list[nzedb.FileResult], pa.Table]]:
    """Read and clean every dump in a thread pool (see :func:`raidstudy.sources.nzedb.read_dumps`)."""
    cleaner = _Cleaner([d.relpath for d in dumps], accept_feeds)
    return nzedb.read_dumps(dumps, skip_unreadable=skip_unreadable, threads=threads, progress=progress,
                            checksums=checksums, transform=cleaner, batch_files=batch_files)


def _progress(total: int, desc: str, quiet: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    import sys

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="file", disable=disable, leave=False)


def ingest(
    raw_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    skip_unreadable: bool = False,
    accept_feeds: Iterable[str] | None = None,
    quiet: bool = False,
    threads: int | None = None,
    checksums: bool = True,
) -> dict[str, Any]:
    """Read all dumps under ``raw_dir`` and write the releases table, dumps table and report.

    Parameters
    ----------
    raw_dir : path, optional
        Folder of nZEDb dumps (any depth). Default :func:`raidstudy.paths.default_dumps_dir`.
    out_dir : path, optional
        Output folder (default ``data/interim/``).
    skip_unreadable : bool
        Go on past wholly unreadable files (listed in the report and the coverage table)
        instead of raising :class:`raidstudy.errors.IngestError`.
    accept_feeds : iterable of str, optional
        Feeds to accept besides :data:`KNOWN_FEEDS` (``["*"]``: any).
    quiet : bool
        No progress bar (it is also off when stderr is not a terminal).
    threads : int, optional
        Reader threads (default: CPU count, at most 8).
    checksums : bool
        Record each input file's SHA-256 (default True).

    Returns
    -------
    dict
        The report (also written to ``out_dir/ingest_report.json``).
    """
    raw_dir = Path(raw_dir) if raw_dir is not None else default_dumps_dir()
    out_dir = Path(out_dir) if out_dir is not None else interim_dir()
    dumps = nzedb.list_dumps(raw_dir)
    bar = _progress(len(dumps), "reading dumps", quiet)
    results = read_and_clean(dumps, skip_unreadable=skip_unreadable, accept_feeds=accept_feeds, threads=threads,
                             progress=(bar.update if bar is not None else None), checksums=checksums)
    if bar is not None:
        bar.close()
    releases, dumps_table, report = ingest_tables(results, dumps)
    report["raw_dir"] = display_path(raw_dir)
    report["package_version"] = __version__
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / RELEASES_FILE) as tmp:
        pq.write_table(releases, tmp, compression="zstd", compression_level=1,
                       use_dictionary=["group", "section", "family", "feed", "origin", "nuke_reason"],
                       row_group_size=1 << 20)
    with atomic_path(out_dir / DUMPS_FILE) as tmp:
        pq.write_table(dumps_table, tmp, compression="zstd")
    report["outputs"] = {RELEASES_FILE: sha256_file(out_dir / RELEASES_FILE),
                         DUMPS_FILE: sha256_file(out_dir / DUMPS_FILE)}
    write_json(out_dir / REPORT_FILE, report)
    return report


def summarise(report: dict[str, Any]) -> str:
    """A few lines for stdout from an ingest report."""
    lines = [
        f"read {report['files']} files, {report['lines_read']:,} lines -> {report['rows_kept']:,} unique "
        f"releases ({report['duplicates']:,} duplicates, {report['skipped_total']:,} rows skipped)",
    ]
    for k, v in report["skipped"].items():
        if v:
            ex = report["skipped_examples"].get(k, [""])[0]
            lines.append(f"  skipped {k}: {v:,}  e.g. {ex[:160]}")
    if report["rows_with_bad_bytes"]:
        lines.append(f"  rows with undecodable bytes (kept, replaced by U+FFFD): {report['rows_with_bad_bytes']:,}")
    if report["duplicate_titles_with_different_times"]:
        lines.append(f"  duplicate titles with different pre times (first kept): "
                     f"{report['duplicate_titles_with_different_times']:,}")
    for f in report["files_unreadable"]:
        lines.append(f"  UNREADABLE (skipped): {f}")
    for f in report["files_truncated_or_corrupt"]:
        lines.append(f"  truncated/corrupt gzip (read up to the damage): {f}")
    return "\n".join(lines)
