"""Ingest raw nZEDb dumps into the releases table, with an exact row accounting.

``raidstudy ingest [RAW_DIR] [--out DIR]`` reads every ``*_predb_dump.csv.gz`` under
``RAW_DIR`` (default :func:`raidstudy.paths.default_dumps_dir`) and writes, under ``DIR``
(default ``data/interim/``):

* ``releases.parquet``: one row per unique release (schema in :mod:`raidstudy.data.releases`);
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

How: batches of 32 consecutive files are read (one CSV parse per batch) and cleaned in a
thread pool (one thread per CPU); the titles, lower-cased, are then split into 64 parts of
the key space and deduplicated part by part, in batch and row order, in as many threads,
which finds each title's first copy with one hash of every key and compares the copies'
pre times in the same pass. Group and family are derived from the kept rows in two helper
threads beside the single-threaded Parquet writer. Arrow allocates from the C library's
malloc while the ingest runs (its default pool costs about 2 s more CPU here).
``benchmarks/bench_ingest.py`` times the whole against ``zcat``.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raidstudy import __version__
from raidstudy.io import atomic_path, sha256_file, write_json
from raidstudy.paths import default_dumps_dir, display_path, interim_dir
from raidstudy.data._strbuf import rows_containing, string_buffers
from raidstudy.data.releases import NUKED_CODES, RELEASES_SCHEMA, families_array, family_codes, groups_from_titles
from raidstudy.data.sources import nzedb

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
#: nZEDb's ``nuked`` codes (0 none, 1 unnuke, 2 nuke, 3 modnuke, 4 renuke, 5 oldnuke); any
#: other value is kept (a number as read, anything else as -1), never counted as nuked, and
#: counted by raw value in the report's ``nuke_values_unknown``.
KNOWN_NUKE_CODES = (0, 1, 2, 3, 4, 5)

KNOWN_FEEDS = (
    "#pre@corrupt", "xrel", "srrdb", "xrelp2p", "m2v.ru", "orlydb", "prelist",
    "predb.me", "zenet", "abgx", "omgwtfnzbs", "womble", "usenet-crawler",
)
_KNOWN_PREFIXES = ("#a.b.",)

SKIP_REASONS = ("wrong_field_count", "truncated_line", "bad_title", "bad_timestamp", "unknown_feed")

RELEASES_FILE = "releases.parquet"
DUMPS_FILE = "dumps.parquet"
REPORT_FILE = "ingest_report.json"
#: Rows per row group of the releases table.
ROW_GROUP_ROWS = 1 << 20
MAX_EXAMPLES = nzedb.MAX_EXAMPLES


def _unquote(arr):
    """Strip single quotes; ``\\N`` -> null; other (malformed) text is kept as is."""
    quoted = pc.and_(pc.starts_with(arr, "'"), pc.ends_with(arr, "'"))
    quoted = pc.and_(quoted, pc.greater_equal(pc.binary_length(arr), 2))
    inner = pc.utf8_slice_codeunits(arr, 1, -1)
    return pc.if_else(quoted, inner, pc.if_else(pc.equal(arr, "\\N"), pa.scalar(None, pa.string()), arr))


def _replace_where(arr: pa.Array, mask: np.ndarray, fix) -> pa.Array:
    """``arr`` with the values where ``mask`` holds replaced by ``fix`` of them: the work is
    done on those values only."""
    if not mask.any():
        return arr
    mask = pa.array(mask)
    return pc.replace_with_mask(_one(arr), mask, fix(pc.filter(arr, mask)))


def _unescape(arr: pa.Array) -> pa.Array:
    """Undo MySQL backslash escapes (``\\'``, ``\\"``, ``\\\\``), touching only the values that
    hold a backslash (found by a byte scan: several times faster than ``pc.match_substring``)."""
    return _replace_where(arr, rows_containing(arr, b"\\"),
                          lambda held: pc.replace_substring_regex(held, r"\\(['\"\\])", r"\1"))


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


_NUM = r"^-?\d{1,3}$"

#: Keys are compared in parts (the same part for equal keys), so that every hash table stays
#: small: on the 2-core development VM, 64 parts of about 70,000 keys were encoded about twice
#: as fast as 2 parts of 2.3 million (cache and TLB misses dominate); the full dumps give
#: parts of about 97,000 keys, which one thread per CPU share.
_N_PARTS = 64
_DAY = 86400


#: The pre time as the dumps write it, quotes included.
_TIME_FORMAT = "'%Y-%m-%d %H:%M:%S'"


def _part_ids(key: pa.Array) -> np.ndarray:
    """The part (0 .. _N_PARTS - 1) of each key, from its byte length and its last byte:
    equal keys always share a part, and the parts come out about equally large."""
    off, data = string_buffers(key)
    length = np.diff(off)
    if length.all():
        last = data[off[1:] - 1]
    else:  # (an empty key's last byte counts as 0)
        last = np.zeros(len(key), np.uint8)
        last[length > 0] = data[off[1:][length > 0] - 1]
    return ((length * 7 + last) & (_N_PARTS - 1)).astype(np.uint8)


def _batch_keys(title: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """A batch's comparison keys (lower-cased titles) grouped into parts, row order kept
    inside a part: the keys, the parts' bounds in them, and each key's row."""
    key = pc.utf8_lower(title)
    pid = _part_ids(key)
    key_rows = np.argsort(pid, kind="stable")
    bounds = np.searchsorted(pid[key_rows], np.arange(_N_PARTS + 1))
    return key.take(pa.array(key_rows)), bounds, key_rows


def _first_of(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """For each row, the position of the first row with the same code.

    The codes must be numbered in the order of their first occurrence, as Arrow's
    ``dictionary_encode`` numbers them: a code occurs first exactly where it exceeds every
    code before it. Checked, because Arrow does not document that order.
    """
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    top = np.maximum.accumulate(codes)
    firsts = np.flatnonzero(np.concatenate(([True], top[1:] > top[:-1])))
    if len(firsts) != n_codes or not np.array_equal(codes[firsts], np.arange(n_codes)):
        raise AssertionError("dictionary codes are not numbered in order of first occurrence")
    return firsts[codes]


@dataclass
class _Batch:
    """What the cleaning of one batch of consecutive files hands to :func:`ingest_tables`.

    ``rows`` holds the batch's valid rows, in file then line order, in the releases schema
    except that ``group`` and ``family`` are not derived yet (see :func:`_writer_piece`)
    and the string columns with few distinct values are still dictionary-encoded;
    ``per_feed`` counts valid rows by (file index, feed).
    """

    rows: pa.Table | None
    per_feed: dict[tuple[int, str], int]
    n_valid: int
    #: Valid rows whose ``nuked`` value is outside nZEDb's codes 0-5, by raw value.
    unknown_nuke: dict[str, int] | None = None


_NO_ROWS = np.zeros(0, np.int64)


def _empty_batch() -> _Batch:
    rows = RELEASES_SCHEMA.empty_table().drop_columns(["group", "family"])
    return _Batch(rows, {}, 0)


class _Cleaner:
    """Cleaning of a batch of files, run in the reader threads (see :func:`read_and_clean`).

    Validates and converts the raw columns; the titles are compared later
    (:func:`_dedup_parts`), and group and family are derived from the kept rows
    (:func:`_writer_piece`). Adds skip counts and examples to each file's FileResult.
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

    def __call__(self, results: list[nzedb.FileResult], raw: pa.Table | None) -> _Batch:
        if raw is None or raw.num_rows == 0:
            for r in results:
                r.n_valid = 0
            return _empty_batch()
        raw = raw.combine_chunks()
        col = {k: _one(raw.column(k)) for k in raw.column_names}
        title_raw = col["title"]
        title_ok = pc.and_(pc.and_(pc.starts_with(title_raw, "'"), pc.ends_with(title_raw, "'")),
                           pc.greater(pc.binary_length(title_raw), 2))
        ts = pc.strptime(col["predate"], format=_TIME_FORMAT, unit="s", error_is_null=True)
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
        del raw
        n = len(file_index)
        if n == 0:
            return _empty_batch()
        # Unquoting may map two raw spellings onto one feed name, hence the dict.
        per_feed: dict[tuple[int, str], int] = {}
        names = feed_values.to_pylist()
        first_file = int(file_index[0])  # the batch's files are consecutive
        pair_n = np.bincount((file_index - first_file).astype(np.int64) * len(names) + feed_idx.to_numpy())
        pairs = np.flatnonzero(pair_n)
        for p, c in zip((pairs + first_file * len(names)).tolist(), pair_n[pairs].tolist()):
            k = (p // len(names), names[p % len(names)])
            per_feed[k] = per_feed.get(k, 0) + c
        title = _unescape(_strip_quotes(col["title"]))
        sec_values, sec_idx = _unquote_codes(col["category"])
        nk_values, nk_idx = _unquote_codes(col["nuked"])
        nuke_s = pc.fill_null(nk_values, "0")
        is_num = pc.match_substring_regex(nuke_s, _NUM)
        nk_codes = pc.if_else(is_num, pc.cast(pc.if_else(is_num, nuke_s, "-1"), pa.int8()),
                              pa.scalar(-1, pa.int8()))
        nuke_code = nk_codes.take(nk_idx)
        known = pc.fill_null(pc.is_in(nk_codes, pa.array(KNOWN_NUKE_CODES, pa.int8())), False).to_numpy(
            zero_copy_only=False)
        unknown_nuke: dict[str, int] = {}
        if not known.all():
            per_value = np.bincount(nk_idx.to_numpy(zero_copy_only=False), minlength=len(nk_values))
            raw_values = nk_values.to_pylist()
            for j in np.flatnonzero(~known & (per_value > 0)).tolist():
                key = str(raw_values[j])
                unknown_nuke[key] = unknown_nuke.get(key, 0) + int(per_value[j])
        nr_values, nr_idx = _unquote_codes(col["nukereason"])
        rows = pa.table({
            "title": title,
            "section": pa.DictionaryArray.from_arrays(sec_idx, pc.fill_null(sec_values, "")),
            "feed": pa.DictionaryArray.from_arrays(feed_idx, feed_values),
            "pre_time": ts.cast(pa.timestamp("s", tz="UTC")),
            "nuke_code": nuke_code,
            "nuked": pc.is_in(nuke_code, pa.array(NUKED_CODES, pa.int8())),
            "nuke_reason": pa.DictionaryArray.from_arrays(nr_idx, pc.fill_null(nr_values, "")),
            "origin": pa.DictionaryArray.from_arrays(col["file_index"], self.origins),
            "line": col["line"],
        })
        return _Batch(rows, per_feed, n, unknown_nuke)


def _dedup_first(key) -> tuple[np.ndarray, np.ndarray]:
    """Exact first-occurrence deduplication on ``key`` (one string array, or chunks of one).

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
    rep = _first_of(codes.indices.to_numpy(), len(codes.dictionary))
    return rep != np.arange(n), rep


@dataclass
class _Dedup:
    """What :func:`_dedup_parts` finds (global row numbers): ``is_dup`` marks every row whose
    title occurred earlier and ``rep`` gives each row's first copy; ``n_conflicts`` counts
    the titles whose copies carry different pre times and ``first_conflicts`` holds the
    first copies of the first :data:`MAX_EXAMPLES` of them; ``n_far`` counts the titles with
    copies over a day apart."""

    is_dup: np.ndarray
    rep: np.ndarray
    n_conflicts: int
    first_conflicts: np.ndarray
    n_far: int


def _dedup_parts(parts: Sequence[_Batch], offsets: np.ndarray) -> _Dedup:
    """:func:`_dedup_first` over the batches' titles, lower-cased (global row numbers), part
    by part in one thread per CPU (see :data:`_N_PARTS`); the copies' pre times are compared
    in the same pass (a copy differs when its time is not the kept copy's).

    The keys are made here rather than in the reader threads, so that they live only for
    this step, in memory the readers have freed: about 0.2 GB less at the peak. Every row belongs to one part, which fills in its
    ``is_dup`` and ``rep``.
    """
    n = int(offsets[-1])
    is_dup = np.empty(n, dtype=bool)
    rep = np.empty(n, dtype=np.int64)

    def prepare(b: _Batch) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
        pre_time = _one(b.rows.column("pre_time")).cast(pa.int64()).to_numpy()
        return (*_batch_keys(_one(b.rows.column("title"))), pre_time)

    def work(p: int) -> tuple[int, np.ndarray, int]:
        keys = pa.chunked_array([k.slice(b[p], b[p + 1] - b[p]) for k, b, _, _ in keyed], pa.string())
        rows = [r[b[p]:b[p + 1]] for _, b, r, _ in keyed]
        where = np.concatenate([o + r for o, r in zip(offsets, rows)] or [_NO_ROWS])
        ts = np.concatenate([t[r] for (_, _, _, t), r in zip(keyed, rows)] or [_NO_ROWS])
        d, r = _dedup_first(keys)
        is_dup[where] = d
        rep[where] = where[r]
        # A part holds every copy of its titles, so its conflicts are its own.
        dup_at = np.flatnonzero(d)
        kept_at = r[dup_at]
        gap = np.abs(ts[dup_at] - ts[kept_at])
        conflicts = np.unique(where[kept_at[gap != 0]])
        return len(conflicts), conflicts[:MAX_EXAMPLES], len(np.unique(kept_at[gap > _DAY]))

    with ThreadPoolExecutor(max_workers=nzedb.default_threads()) as pool:
        keyed = list(pool.map(prepare, parts))
        found = list(pool.map(work, range(_N_PARTS)))
    first = np.sort(np.concatenate([f for _, f, _ in found] or [_NO_ROWS]))[:MAX_EXAMPLES]
    return _Dedup(is_dup, rep, sum(c for c, _, _ in found), first, sum(f for _, _, f in found))


def _conflicts(parts: Sequence[_Batch], offsets: np.ndarray, dedup: _Dedup,
               origins: Sequence[str]) -> dict[str, Any]:
    """The report's counts and examples of titles whose copies carry different pre times."""
    examples = _conflict_examples(dedup.first_conflicts, dedup.rep, parts, offsets, origins) \
        if dedup.n_conflicts else []
    return {"duplicate_titles_with_different_times": dedup.n_conflicts,
            "duplicate_titles_with_times_over_1_day_apart": dedup.n_far,
            "duplicate_titles_with_different_times_examples": examples}


def _kept_rows(rows: pa.Table, keep: np.ndarray) -> pa.Table:
    """A batch's kept rows (``keep``)."""
    return rows if keep.all() else rows.filter(pa.array(keep))


def _writer_piece(rows: pa.Table) -> pa.Table:
    """A batch's kept rows (:func:`_kept_rows`) with the columns derived from the title
    (group, family), in :data:`~raidstudy.data.releases.RELEASES_SCHEMA`.

    Group and family are derived here, after the deduplication, rather than in the reader
    threads: this work then runs beside the single-threaded Parquet writer, on the core it
    leaves idle, and only on the rows that are kept.
    """
    title, section = _one(rows.column("title")), _one(rows.column("section"))
    family = families_array().take(pa.array(family_codes(section, title)))
    group = groups_from_titles(title)
    return rows.add_column(1, "group", group).add_column(3, "family", family).cast(RELEASES_SCHEMA)


def _conflict_examples(reps: np.ndarray, rep: np.ndarray, parts: Sequence[_Batch], offsets: np.ndarray,
                       origins: Sequence[str]) -> list[str]:
    """Every copy of each title in ``reps`` (global row numbers), in file then line order."""
    is_rep = np.zeros(len(rep), bool)
    is_rep[reps] = True
    where = np.flatnonzero(is_rep[rep])  # every copy, in row (file, then line) order
    batch_of = np.searchsorted(offsets, where, side="right") - 1
    out: list[list[str]] = [[] for _ in reps]
    slot = {int(r): i for i, r in enumerate(reps)}
    for b in np.unique(batch_of).tolist():
        at = where[batch_of == b]
        sub = parts[b].rows.select(["title", "feed", "pre_time", "origin", "line"]).take(pa.array(at - offsets[b]))
        files = sub.column("origin").combine_chunks().indices.to_pylist()  # the dictionary is every origin
        for g, c, fi in zip(at.tolist(), sub.to_pylist(), files):
            out[slot[int(rep[g])]].append(
                f"{c['title']} [{c['feed']}] {c['pre_time']:%Y-%m-%d %H:%M:%S} ({origins[fi]} line {c['line']})")
    return ["; ".join(copies) for copies in out]


def ingest_tables(
    batches: Sequence[tuple[list[nzedb.FileResult], _Batch | None]],
    dumps: Sequence[nzedb.DumpFile],
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Deduplicate the per-batch cleaned rows across batches and assemble the accounting.

    Parameters
    ----------
    batches : sequence of (list of FileResult, batch)
        What :func:`read_and_clean` returns: per batch of consecutive files, their
        FileResults and their cleaned rows, in creation order. The batches are consumed:
        their rows are released once cut down to the kept rows.
    dumps : sequence of DumpFile
        The same files (for names and creation times).

    Returns
    -------
    releases : pyarrow.Table
        Unique releases, :data:`raidstudy.data.releases.RELEASES_SCHEMA`.
    dumps_table : pyarrow.Table
        Per file x feed row counts (see module docs).
    report : dict
        The accounting (JSON-ready).

    Notes
    -----
    A title's first copy is its first row in batch order, then row order; the keys are
    compared in parts (:func:`_dedup_parts`). A title's copies differ in time when a later
    copy's time is not the kept copy's.
    """
    pieces, dumps_table, report = _ingest_tables(batches, dumps)
    out = list(pieces)
    return (pa.concat_tables(out).cast(RELEASES_SCHEMA) if out else RELEASES_SCHEMA.empty_table()), \
        dumps_table, report


def _ingest_tables(
    batches: Sequence[tuple[list[nzedb.FileResult], _Batch | None]],
    dumps: Sequence[nzedb.DumpFile],
) -> tuple[Iterator[pa.Table], pa.Table, dict[str, Any]]:
    """:func:`ingest_tables` with the releases as a stream of per-batch tables, in order,
    computed two at a time in threads while the caller consumes (writes) them.

    After the deduplication, the conflicts' examples are read from the batches' rows and
    each batch is cut down to its kept rows in one thread per CPU; the rest of each piece (group
    and family, :func:`_writer_piece`) is made beside the writer.
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
    unknown_nuke: dict[str, int] = {}
    for b in parts:
        for k, v in (b.unknown_nuke or {}).items():
            unknown_nuke[k] = unknown_nuke.get(k, 0) + v
    offsets = np.cumsum([0] + [b.rows.num_rows for b in parts]).astype(np.int64)
    dedup = _dedup_parts(parts, offsets)
    is_dup = dedup.is_dup

    n_unique = int(len(is_dup) - np.count_nonzero(is_dup))
    dup_total = n_valid - n_unique
    keep = ~is_dup
    conflicts = _conflicts(parts, offsets, dedup, [d.relpath for d in dumps])
    with ThreadPoolExecutor(max_workers=nzedb.default_threads()) as pool:
        kept: list[pa.Table | None] = list(pool.map(_kept_rows, [b.rows for b in parts],
                                                    np.split(keep, offsets[1:-1])))
    for b in parts:
        b.rows = None  # cut down to the kept rows: release the rest
    del dedup, is_dup, keep

    def final(i: int) -> pa.Table:
        rows, kept[i] = kept[i], None
        return _writer_piece(rows)

    def pieces() -> Iterator[pa.Table]:
        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            yield from pool.map(final, range(len(kept)))

    by_file: dict[int, dict[str, int]] = {}
    for b in parts:
        for (fi, fd), n in b.per_feed.items():
            by_file.setdefault(fi, {})[fd] = by_file.get(fi, {}).get(fd, 0) + n
    d_rows: dict[str, list] = {k: [] for k in (
        "origin", "created_unix", "sha256", "status", "lines", "rows_parsed", "feed", "rows_valid")}
    files_report = []
    for res, d in zip(results, dumps):
        status = "unreadable" if res.unreadable else (res.problem or "ok")
        if res.problem == nzedb.EMPTY_FILE:
            status = "skipped"
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
            # a skipped (0-byte) file tells nothing about its day: coverage treats it as unread
            d_rows["status"].append("unreadable" if status == "skipped" else status)
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
        "files_skipped": [{"origin": f["origin"], "reason": EMPTY_FILE_REASON}
                          for f in files_report if f["status"] == "skipped"],
        "files_slow_path": [r.relpath for r in results if r.slow_path],
        "lines_read": lines_read,
        "rows_parsed": sum(r.n_rows for r in results),
        "rows_valid": n_valid,
        "rows_kept": n_unique,
        "duplicates": dup_total,
        **conflicts,
        "rows_with_bad_bytes": sum(r.n_bad_bytes_rows for r in results),
        # valid rows (before deduplication) whose nuke value is not one of nZEDb's codes 0-5:
        # kept (a number as read, other text as -1), never counted as nuked, by raw value
        "rows_with_unknown_nuke": sum(unknown_nuke.values()),
        "nuke_values_unknown": dict(sorted(unknown_nuke.items())),
        "skipped": skipped,
        "skipped_total": n_skipped,
        "skipped_examples": {k: v for k, v in examples.items() if v},
        "accounting_balances": lines_read == n_unique + dup_total + n_skipped,
        "per_file": files_report,
    }
    if not report["accounting_balances"]:  # pragma: no cover - a bug, not bad input
        raise AssertionError(f"row accounting does not balance: { {k: report[k] for k in ('lines_read', 'rows_kept', 'duplicates', 'skipped')} }")
    return pieces(), dumps_table, report


def _write_releases(pieces: Iterable[pa.Table], path: Path) -> int:
    """Write the releases table from its pieces, in row groups of :data:`ROW_GROUP_ROWS`
    rows (as ``pq.write_table`` of the whole table would); returns the number of rows."""
    total = 0
    with pq.ParquetWriter(path, RELEASES_SCHEMA, compression="zstd") as w:
        held: list[pa.Table] = []
        n = 0
        for piece in pieces:
            if not piece.num_rows:
                continue  # (an empty batch's origin column has no dictionary: leave it out)
            held.append(piece)
            n += piece.num_rows
            total += piece.num_rows
            while n >= ROW_GROUP_ROWS:
                t = pa.concat_tables(held)
                w.write_table(t.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                held = [t.slice(ROW_GROUP_ROWS)] if n > ROW_GROUP_ROWS else []
                n -= ROW_GROUP_ROWS
        if n or not total:
            w.write_table(pa.concat_tables(held) if held else RELEASES_SCHEMA.empty_table(),
                          row_group_size=ROW_GROUP_ROWS)
    return total


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
    """Read and clean every dump in a thread pool (see :func:`raidstudy.data.sources.nzedb.read_dumps`).

    Returns, per batch of ``batch_files`` consecutive files, their FileResults and the
    cleaned batch (its valid rows); pass the list to
    :func:`ingest_tables`.
    """
    cleaner = _Cleaner([d.relpath for d in dumps], accept_feeds)
    return nzedb.read_dumps(dumps, skip_unreadable=skip_unreadable, threads=threads, progress=progress,
                            checksums=checksums, transform=cleaner, batch_files=batch_files)


def _progress(total: int, desc: str, quiet: bool):
    """A tqdm bar on stderr, or None when asked to be quiet or stderr is not a terminal
    (tqdm is then not even imported: 0.1 s saved on every scripted run)."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="file", leave=False)


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
        Reader threads (default :func:`raidstudy.data.sources.nzedb.default_threads`).
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
    # Arrow allocates from the C library's malloc during the ingest: its default pool
    # (mimalloc in pyarrow 26) gives the many short-lived multi-megabyte buffers back to the
    # system and faults them in again (see benchmarks/README.md).
    default_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        results = read_and_clean(dumps, skip_unreadable=skip_unreadable, accept_feeds=accept_feeds,
                                 threads=threads, progress=(bar.update if bar is not None else None),
                                 checksums=checksums)
        if bar is not None:
            bar.close()
        pieces, dumps_table, report = _ingest_tables(results, dumps)
        del results
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / RELEASES_FILE) as tmp:
            written = _write_releases(pieces, tmp)
    finally:
        pa.set_memory_pool(default_pool)
    if written != report["rows_kept"]:  # pragma: no cover - a bug, not bad input
        raise AssertionError(f"wrote {written} releases, the accounting kept {report['rows_kept']}")
    report["raw_dir"] = display_path(raw_dir)
    report["package_version"] = __version__
    with atomic_path(out_dir / DUMPS_FILE) as tmp:
        pq.write_table(dumps_table, tmp, compression="zstd")
    report["outputs"] = {RELEASES_FILE: sha256_file(out_dir / RELEASES_FILE),
                         DUMPS_FILE: sha256_file(out_dir / DUMPS_FILE)}
    write_json(out_dir / REPORT_FILE, report)
    return report


#: Why a 0-byte dump is skipped (in ``ingest_report.json``'s ``files_skipped``).
EMPTY_FILE_REASON = ("0-byte file: nothing to read (an interrupted download?); its day counts as unread "
                     "in the coverage. Fetch it again with `raidstudy fetch nzedb`")


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
    if report.get("rows_with_unknown_nuke"):
        vals = ", ".join(f"{k!r} x{v:,}" for k, v in list(report["nuke_values_unknown"].items())[:5])
        lines.append(f"  rows with a nuke value outside nZEDb's codes 0-5 (kept, not counted as nuked): "
                     f"{report['rows_with_unknown_nuke']:,} ({vals})")
    if report["rows_with_bad_bytes"]:
        lines.append(f"  rows with undecodable bytes (kept, replaced by U+FFFD): {report['rows_with_bad_bytes']:,}")
    if report["duplicate_titles_with_different_times"]:
        lines.append(f"  duplicate titles with different pre times (first kept): "
                     f"{report['duplicate_titles_with_different_times']:,}")
    for f in report.get("files_skipped", []):
        lines.append(f"  SKIPPED {f['origin']}: {f['reason']}")
    for f in report["files_unreadable"]:
        lines.append(f"  UNREADABLE (skipped): {f}")
    for f in report["files_truncated_or_corrupt"]:
        lines.append(f"  truncated/corrupt gzip (read up to the damage): {f}")
    return "\n".join(lines)
