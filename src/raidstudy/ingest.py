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

How: batches of consecutive files are read, cleaned and deduplicated within the batch in a
thread pool (the batch keeps each title's first copy and the time range of its copies);
the batches' first copies are then deduplicated against each other, in order, which gives
the same first copy overall. ``benchmarks/bench_ingest.py`` times the whole against ``zcat``.
"""
from __future__ import annotations

import datetime as _dt
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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


def _unescape(arr: pa.Array) -> pa.Array:
    """Undo MySQL backslash escapes (``\\'``, ``\\"``, ``\\\\``) where a backslash occurs."""
    has = pc.match_substring(arr, "\\")
    if not pc.any(has).as_py():
        return arr
    if isinstance(arr, pa.ChunkedArray):
        arr, has = arr.combine_chunks(), has.combine_chunks()
    fixed = pc.replace_substring_regex(pc.filter(arr, has), r"\\(['\"\\])", r"\1")
    return pc.replace_with_mask(arr, has, fixed)


def _one(col) -> pa.Array:
    """A column as one contiguous array (dictionaries unified)."""
    if isinstance(col, pa.Array):
        return col
    if col.num_chunks == 1:
        return col.chunk(0)
    return col.combine_chunks()


def _unquote_codes(arr: pa.DictionaryArray) -> tuple[pa.Array, pa.Array]:
    """The unquoted dictionary of a dictionary column, and its indices (work per distinct value)."""
    return _unquote(arr.dictionary), arr.indices


def _strip_quotes(quoted: pa.Array) -> pa.Array:
    """Drop the first and last byte (the ASCII quotes of a valid title, so UTF-8 stays valid)."""
    return pc.binary_slice(quoted.view(pa.binary()), 1, -1).view(pa.string())


def _has_backslash(arr: pa.Array) -> bool:
    """Whether any value of a string array holds a backslash (one scan of its data buffer)."""
    data = arr.buffers()[2] if len(arr) else None
    return data is not None and bool((np.frombuffer(data, np.uint8) == 0x5C).any())


def _lower_key(title: pa.Array) -> pa.Array:
    """Lower-cased titles: ASCII lowering everywhere, Unicode lowering only where it matters."""
    key = pc.ascii_lower(title)
    non_ascii = pc.invert(pc.string_is_ascii(title))
    if pc.any(non_ascii).as_py():
        key = pc.replace_with_mask(key, non_ascii, pc.utf8_lower(pc.filter(title, non_ascii)))
    return key


_NUM = r"^-?\d{1,3}$"
_RAW_COLUMNS = ("title", "nuked", "nukereason", "category", "predate", "source")


@dataclass
class _Batch:
    """What the cleaning of one batch of consecutive files hands to :func:`ingest_tables`.

    ``rows`` holds the batch's valid rows that are the *first* of their title within the
    batch, in the releases schema plus ``key`` (the lower-cased title) and ``ts_min`` /
    ``ts_max`` (the earliest and latest pre time among the title's copies in the batch);
    ``dups`` holds the later copies (key, title, feed, pre_time, file_index, line), kept
    for the conflict examples; ``per_feed`` counts valid rows by (file index, feed).
    """

    rows: pa.Table
    dups: pa.Table
    per_feed: dict[tuple[int, str], int]
    n_valid: int
    #: ``rows``' keys split by the parity of their byte length (equal keys share a part), with
    #: their positions in ``rows``: the cross-batch comparison then runs as two threads.
    parts: tuple[tuple[pa.Array, np.ndarray], ...] = ()


class _Cleaner:
    """Cleaning of a batch of files, run in the reader threads (see :func:`read_and_clean`).

    Validates and converts the raw columns, drops the batch's own duplicates (keeping the
    first copy, with the pre-time range of all copies) and derives group and family, so
    that the serial step after the threads only has to compare titles across batches.
    Adds skip counts and examples to each file's FileResult.
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

    def __call__(self, results: list[nzedb.FileResult]) -> _Batch:
        tables = [r.table for r in results if r.table is not None and r.table.num_rows]
        if not tables:
            for r in results:
                r.n_valid, r.table = 0, None
            return _Batch(_EMPTY_ROWS, _EMPTY_DUPS, {}, 0, _EMPTY_PARTS)
        raw = pa.concat_tables(tables).combine_chunks()
        col = {k: _one(raw.column(k)) for k in raw.column_names}
        title_raw = col["title"]
        title_ok = pc.and_(pc.and_(pc.starts_with(title_raw, "'"), pc.ends_with(title_raw, "'")),
                           pc.greater(pc.binary_length(title_raw), 2))
        ts = pc.strptime(col["predate"], format="'%Y-%m-%d %H:%M:%S'", unit="s", error_is_null=True)
        ts_ok = pc.is_valid(ts)
        feed_values, feed_idx = _unquote_codes(col["source"])
        if self.any_feed:
            ok_values = pc.fill_null(pc.greater(pc.binary_length(feed_values), 0), False)
        else:
            ok_values = pc.fill_null(pc.or_(pc.is_in(feed_values, self.known),
                                            pc.starts_with(feed_values, _KNOWN_PREFIXES[0])), False)
        feed_ok = pc.fill_null(ok_values.take(feed_idx), False)
        valid = pc.and_(pc.and_(title_ok, ts_ok), feed_ok)
        if not pc.all(valid).as_py():
            by_index = {r.index: r for r in results}
            raw_s = pa.table({"title": title_raw, "predate": col["predate"],
                              "source": feed_values.take(feed_idx), "line": col["line"],
                              "file_index": col["file_index"]})
            self._skip(by_index, raw_s, pc.invert(title_ok), "bad_title")
            self._skip(by_index, raw_s, pc.and_(title_ok, pc.invert(ts_ok)), "bad_timestamp")
            self._skip(by_index, raw_s, pc.and_(pc.and_(title_ok, ts_ok), pc.invert(feed_ok)), "unknown_feed")
            col = {k: pc.filter(v, valid) for k, v in col.items()}
            ts = pc.filter(ts, valid)
            feed_idx = pc.filter(feed_idx, valid)
        file_index = col["file_index"].to_numpy()
        counts = np.bincount(file_index, minlength=max(r.index for r in results) + 1)
        for r in results:
            r.n_valid = int(counts[r.index])
            r.table = None  # the raw columns are no longer needed: free them early
        n = len(file_index)
        per_feed: dict[tuple[int, str], int] = {}
        if n:
            # Unquoting may map two raw spellings onto one feed name, hence the dict.
            names = feed_values.to_pylist()
            pairs, pair_n = np.unique(file_index.astype(np.int64) * len(names) + feed_idx.to_numpy(),
                                      return_counts=True)
            for p, c in zip(pairs.tolist(), pair_n.tolist()):
                k = (p // len(names), names[p % len(names)])
                per_feed[k] = per_feed.get(k, 0) + c
        # Titles are compared lower-cased, quotes included (every valid title has them);
        # MySQL escapes are undone first where a title holds a backslash.
        quoted = col["title"]
        if _has_backslash(quoted):
            quoted = pc.binary_join_element_wise("'", _unescape(_strip_quotes(quoted)), "'", "")
        key = _lower_key(quoted)

        # Duplicates inside the batch: keep the first copy, remember the copies' time range.
        is_dup, rep = _dedup_first(key)
        is_first = ~is_dup
        tsi = ts.cast(pa.int64()).to_numpy()
        lo = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(lo, rep, tsi)  # indexed by each title's first row
        np.maximum.at(hi, rep, tsi)
        keep = None if is_first.all() else pa.array(is_first)

        def pick(a):
            return a if keep is None else pc.filter(a, keep)

        if keep is None:
            dups = _EMPTY_DUPS
        else:
            dmask = pa.array(~is_first)
            dups = pa.table({
                "key": pc.filter(key, dmask), "title": _strip_quotes(pc.filter(quoted, dmask)),
                "feed_code": pc.filter(feed_idx, dmask), "pre_time": pc.filter(ts, dmask),
                "file_index": pc.filter(col["file_index"], dmask), "line": pc.filter(col["line"], dmask),
            })
            dups = dups.append_column("feed", feed_values.take(dups["feed_code"])).drop_columns(["feed_code"])
        title_u = _strip_quotes(pick(quoted))
        sec_values, sec_idx = _unquote_codes(col["category"])
        section = pc.fill_null(sec_values, "").take(pick(sec_idx))
        nk_values, nk_idx = _unquote_codes(col["nuked"])
        nuke_s = pc.fill_null(nk_values, "0")
        is_num = pc.match_substring_regex(nuke_s, _NUM)
        nk_codes = pc.if_else(is_num, pc.cast(pc.if_else(is_num, nuke_s, "-1"), pa.int8()),
                              pa.scalar(-1, pa.int8()))
        nuke_code = nk_codes.take(pick(nk_idx))
        nr_values, nr_idx = _unquote_codes(col["nukereason"])
        fi_u = pick(col["file_index"])
        rows = pa.table({
            "title": title_u,
            "group": groups_from_titles(title_u),
            "section": section,
            "family": section_families(section, title_u),
            "feed": feed_values.take(pick(feed_idx)),
            "pre_time": pick(ts).cast(pa.timestamp("s", tz="UTC")),
            "nuke_code": nuke_code,
            "nuked": pc.is_in(nuke_code, pa.array(NUKED_CODES, pa.int8())),
            "nuke_reason": pc.fill_null(nr_values, "").take(pick(nr_idx)),
            "origin": pa.DictionaryArray.from_arrays(fi_u, self.origins),
            "line": pick(col["line"]),
            "key": pick(key),
            "ts_min": pa.array(lo[is_first]),
            "ts_max": pa.array(hi[is_first]),
        })
        key_u = rows.column("key").chunk(0) if rows.column("key").num_chunks == 1 else \
            rows.column("key").combine_chunks()
        odd = np.asarray(pc.bit_wise_and(pc.binary_length(key_u), 1)).astype(bool)
        parts = tuple((pc.filter(key_u, pa.array(m)), np.flatnonzero(m)) for m in (~odd, odd))
        return _Batch(rows, dups, per_feed, n, parts)


_EMPTY_ROWS = RELEASES_SCHEMA.append(pa.field("key", pa.string())).append(
    pa.field("ts_min", pa.int64())).append(pa.field("ts_max", pa.int64())).empty_table()
_EMPTY_PARTS = ((pa.array([], pa.string()), np.zeros(0, np.int64)),) * 2
_EMPTY_DUPS = pa.schema([("key", pa.string()), ("title", pa.string()), ("pre_time", pa.timestamp("s")),
                         ("file_index", pa.int32()), ("line", pa.int32()), ("feed", pa.string())]).empty_table()


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


def _int64s(col: pa.ChunkedArray) -> np.ndarray:
    """A (timestamp or integer) column as one int64 numpy array."""
    if not len(col):
        return np.zeros(0, np.int64)
    return np.concatenate([c.cast(pa.int64()).to_numpy() for c in col.chunks])


def _dedup_parts(parts: Sequence[_Batch], n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_dedup_first` over the batches' rows, one thread per key part (see :class:`_Batch`)."""
    is_dup = np.zeros(n, dtype=bool)
    rep = np.arange(n, dtype=np.int64)
    offsets = np.cumsum([0] + [b.rows.num_rows for b in parts])

    def work(p: int):
        keys = pa.chunked_array([b.parts[p][0] for b in parts], pa.string())
        where = np.concatenate([o + b.parts[p][1] for o, b in zip(offsets, parts)] or [np.zeros(0, np.int64)])
        d, r = _dedup_first(keys)
        is_dup[where] = d
        rep[where] = where[r]

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(work, (0, 1)))
    return is_dup, rep


def _conflict_examples(reps: np.ndarray, rep: np.ndarray, parts: Sequence[_Batch],
                       origins: Sequence[str]) -> list[str]:
    """Every copy of each title in ``reps`` (global row numbers), in file then line order."""
    offsets = np.cumsum([0] + [b.rows.num_rows for b in parts])

    def locate(rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(offsets, rows, side="right") - 1

    rep_keys = [parts[b].rows.column("key")[int(r - offsets[b])].as_py() for r, b in zip(reps, locate(reps))]
    order = {k: i for i, k in enumerate(rep_keys)}
    cols = ["key", "title", "feed", "pre_time", "origin", "line"]
    found: list[dict] = []
    where = np.flatnonzero(np.isin(rep, reps))  # first copies in every batch
    batch_of = locate(where)
    for b in np.unique(batch_of):
        for c in parts[b].rows.select(cols).take(pa.array(where[batch_of == b] - offsets[b])).to_pylist():
            c["file_index"] = origins.index(c["origin"])
            found.append(c)
    value_set = pa.array(rep_keys, pa.string())
    for b in parts:  # later copies inside each batch
        if b.dups.num_rows:
            for c in b.dups.filter(pc.is_in(b.dups.column("key"), value_set=value_set)).to_pylist():
                c["pre_time"] = c["pre_time"].replace(tzinfo=_dt.timezone.utc)
                found.append(c)
    out: list[list[dict]] = [[] for _ in rep_keys]
    for c in sorted(found, key=lambda c: (c["file_index"], c["line"])):
        out[order[c["key"]]].append(c)
    return ["; ".join(f"{c['title']} [{c['feed']}] {c['pre_time']:%Y-%m-%d %H:%M:%S} "
                      f"({origins[c['file_index']]} line {c['line']})" for c in copies) for copies in out]


def ingest_tables(
    batches: Sequence[tuple[list[nzedb.FileResult], _Batch | None]],
    dumps: Sequence[nzedb.DumpFile],
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Deduplicate the per-batch cleaned rows across batches and assemble the accounting.

    Parameters
    ----------
    batches : sequence of (list of FileResult, batch)
        What :func:`read_and_clean` returns: per batch of consecutive files, their
        FileResults and their cleaned rows (already free of the batch's own duplicates),
        in creation order.
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

    Notes
    -----
    A title's first copy overall is the first copy of the first batch that holds it, so
    the batches' first copies are deduplicated once more, in order. A title's copies differ
    in time when any batch's time range for it (``ts_min``, ``ts_max``) differs from the
    kept copy's time.
    """
    results = [r for rs, _ in batches for r in rs]
    skipped: dict[str, int] = {r: 0 for r in SKIP_REASONS}
    examples: dict[str, list[str]] = {r: [] for r in SKIP_REASONS}
    for res in results:
        for k, v in res.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
            ex = examples.setdefault(k, [])
            ex.extend(res.examples.get(k, [])[: max(0, MAX_EXAMPLES - len(ex))])
    parts = [b for _, b in batches if b is not None]
    for r in results:
        r.table = None  # free the raw columns
    n_valid = sum(b.n_valid for b in parts)
    rows = [b.rows for b in parts if b.rows.num_rows]
    t = pa.concat_tables(rows) if rows else _EMPTY_ROWS  # zero-copy: one chunk per batch

    is_dup, rep = _dedup_parts(parts, t.num_rows)

    ts, lo, hi = (_int64s(t.column(c)) for c in ("pre_time", "ts_min", "ts_max"))
    ts_rep = ts[rep]
    mark = np.zeros(t.num_rows, dtype=bool)
    mark[rep[(lo != ts_rep) | (hi != ts_rep)]] = True
    conflict_reps = np.flatnonzero(mark)
    n_conflict = len(conflict_reps)
    mark[:] = False
    mark[rep[(np.abs(lo - ts_rep) > 86400) | (np.abs(hi - ts_rep) > 86400)]] = True
    n_far = int(mark.sum())
    del mark, lo, hi, ts_rep
    conflict_examples = _conflict_examples(conflict_reps[:MAX_EXAMPLES], rep, parts,
                                           [d.relpath for d in dumps]) if n_conflict else []
    n_unique = int(t.num_rows - is_dup.sum())
    dup_total = n_valid - n_unique
    keep = ~is_dup
    pieces = []
    for b, start in zip(parts, np.cumsum([0] + [b.rows.num_rows for b in parts])):
        pieces.append((b.rows, keep[start:start + b.rows.num_rows]))

    def final(item):
        rows, k = item
        rows = rows.drop_columns(["key", "ts_min", "ts_max"])
        return (rows if k.all() else rows.filter(pa.array(k))).cast(RELEASES_SCHEMA)

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        out = list(pool.map(final, pieces))
    del t, rep, is_dup, pieces
    releases = pa.concat_tables(out) if out else RELEASES_SCHEMA.empty_table()

    by_file: dict[int, dict[str, int]] = {}
    for b in parts:
        for (fi, fd), n in b.per_feed.items():
            by_file.setdefault(fi, {})[fd] = by_file.get(fi, {}).get(fd, 0) + n
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
) -> list[tuple[list[nzedb.FileResult], _Batch]]:
    """Read and clean every dump in a thread pool (see :func:`raidstudy.sources.nzedb.read_dumps`).

    Returns, per batch of ``batch_files`` consecutive files, their FileResults and the
    cleaned batch (its valid rows without the batch's own duplicates); pass the list to
    :func:`ingest_tables`.
    """
    cleaner = _Cleaner([d.relpath for d in dumps], accept_feeds)
    return nzedb.read_dumps(dumps, skip_unreadable=skip_unreadable, threads=threads, progress=progress,
                            checksums=checksums, transform=cleaner, batch_files=batch_files)


@contextmanager
def _bulk_memory_pool():
    """Make Arrow's jemalloc pool the default while the ingest runs, where pyarrow has it.

    The ingest allocates and frees gigabytes in short-lived buffers. On the 2-core
    development VM the default mimalloc pool hands that memory back to the system and
    faults it in again, which cost 9.3 s of system time per full ingest against 3.9 s with
    jemalloc (``benchmarks/bench_ingest.py``). Buffers keep the pool they came from, so
    switching back afterwards is safe.
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - pyarrow built without jemalloc (Windows)
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


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
    with _bulk_memory_pool():
        results = read_and_clean(dumps, skip_unreadable=skip_unreadable, accept_feeds=accept_feeds,
                                 threads=threads, progress=(bar.update if bar is not None else None),
                                 checksums=checksums)
        if bar is not None:
            bar.close()
        releases, dumps_table, report = ingest_tables(results, dumps)
        del results
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / RELEASES_FILE) as tmp:
            pq.write_table(releases, tmp, compression="zstd", compression_level=1,
                           use_dictionary=["group", "section", "family", "feed", "origin", "nuke_reason"],
                           row_group_size=1 << 20)
        del releases
    report["raw_dir"] = display_path(raw_dir)
    report["package_version"] = __version__
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
