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
import re
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
    "copies_table",
    "check_zone",
    "SOURCE_ZONE",
    "COPIES_FILE",
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
COPIES_FILE = "copies.parquet"
#: The zone the dumps' pre times are written in (see :func:`clock_evidence` and
#: ``data/README.md``): the newest pre of every dump is 1 h after the file's UTC creation
#: time in winter and 2 h in summer, switching on the European daylight-saving dates.
SOURCE_ZONE = "Europe/Berlin"
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
    #: Valid rows whose ``size`` / ``files`` text is not a size / file count, by raw value.
    unknown_size: dict[str, int] | None = None
    unknown_files: dict[str, int] | None = None
    #: Pre times that the source zone makes ambiguous (the repeated hour when daylight
    #: saving ends: read as the first, summer-time, occurrence) or nonexistent (the hour
    #: skipped when it starts: shifted forward), counted.
    tz_ambiguous: int = 0
    tz_nonexistent: int = 0
    #: The newest pre time per (file index, feed), as written (local clock), in seconds.
    newest: dict[tuple[int, str], int] | None = None


_NO_ROWS = np.zeros(0, np.int64)


def _empty_batch() -> _Batch:
    rows = RELEASES_SCHEMA.empty_table().drop_columns(["group", "family"])
    return _Batch(rows, {}, 0)


_SIZE_RE = r"^(?P<n>\d+(?:\.\d+)?) ?(?P<unit>[KMGT]B)$"
_SIZE_UNIT = {"KB": 1e-3, "MB": 1.0, "GB": 1e3, "TB": 1e6}
_FILES_RE = r"^(?P<n>\d{1,6})F$"


def _size_numbers(m: pa.StructArray) -> np.ndarray:
    """Sizes in MB from :data:`_SIZE_RE`'s groups (the number times its unit's factor, in
    float64 as Python computes ``float(n) * factor``)."""
    unit = pc.index_in(m.field("unit"), pa.array(list(_SIZE_UNIT))).to_numpy(zero_copy_only=False)
    return pc.cast(m.field("n"), pa.float64()).to_numpy(zero_copy_only=False) * \
        np.array(list(_SIZE_UNIT.values()))[unit]


def _files_numbers(m: pa.StructArray) -> np.ndarray:
    return pc.cast(m.field("n"), pa.float64()).to_numpy(zero_copy_only=False)


def _parse_dict_numbers(values: pa.Array, pattern: str, convert, vector=None) -> tuple[np.ndarray, np.ndarray]:
    """Parse a dictionary's distinct values (unquoted; null = ``\\N``): the number of each
    (NaN when null or not matching ``pattern``) and whether a non-null value failed to parse.

    ``vector(matches)``, given the struct array of ``pattern``'s named groups of the values
    that match it as they stand (ASCII, no surrounding space), returns their numbers, as
    ``convert`` would, in one Arrow pass; the others (few: unparsable text, padded values)
    go through Python's ``re`` and ``convert`` one by one.
    """
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), bool)
    rest = np.flatnonzero(pc.is_valid(values).to_numpy(zero_copy_only=False))
    if vector is not None and len(rest):
        hit = pc.fill_null(pc.match_substring_regex(values, pattern), False)
        at = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        try:
            out[at] = vector(pc.extract_regex(values.filter(hit), pattern))
            rest = np.setdiff1d(rest, at, assume_unique=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # pragma: no cover - e.g. a huge number
            pass
    if not len(rest):
        return out, bad
    rx = re.compile(pattern)
    for i, t in zip(rest.tolist(), values.take(pa.array(rest)).to_pylist()):
        m = rx.match(t.strip())
        if m is None:
            bad[i] = True
        else:
            out[i] = convert(m)
    return out, bad


def _tally(values: pa.Array, idx: pa.Array, bad: np.ndarray) -> dict[str, int]:
    """Rows whose dictionary value is flagged ``bad``, counted by raw value."""
    if not bad.any():
        return {}
    per_value = np.bincount(idx.to_numpy(zero_copy_only=False), minlength=len(values))
    raw = values.to_pylist()
    out: dict[str, int] = {}
    for j in np.flatnonzero(bad & (per_value > 0)).tolist():
        out[str(raw[j])] = out.get(str(raw[j]), 0) + int(per_value[j])
    return out


def _to_utc(naive: np.ndarray, zone: str) -> tuple[np.ndarray, int, int]:
    """Local wall-clock seconds (as written in ``zone``) -> UTC seconds, with the counts of
    ambiguous and nonexistent times (see :attr:`_Batch.tz_ambiguous`)."""
    if zone == "UTC":
        return naive, 0, 0
    import pandas as pd

    def seconds(loc) -> np.ndarray:
        return loc.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[s]").astype(np.int64)

    idx = pd.DatetimeIndex(naive.astype("datetime64[s]"))
    loc = idx.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    bad = np.asarray(loc.isna())
    if not bad.any():
        return seconds(loc), 0, 0
    out = seconds(loc)
    summer = np.ones(int(bad.sum()), bool)
    n_non = int(np.asarray(idx[bad].tz_localize(zone, ambiguous=summer, nonexistent="NaT").isna()).sum())
    out[bad] = seconds(idx[bad].tz_localize(zone, ambiguous=summer, nonexistent="shift_forward"))
    return out, int(bad.sum()) - n_non, n_non


class _Cleaner:
    """Cleaning of a batch of files, run in the reader threads (see :func:`read_and_clean`).

    Validates and converts the raw columns; the titles are compared later
    (:func:`_dedup_parts`), and group and family are derived from the kept rows
    (:func:`_writer_piece`). Adds skip counts and examples to each file's FileResult.
    """

    def __init__(self, origins: Sequence[str], accept_feeds: Iterable[str] | None,
                 zone: str = SOURCE_ZONE):
        self.origins = pa.array(list(origins), pa.string())
        self.zone = zone
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
        pair_id = (file_index - first_file).astype(np.int64) * len(names) + feed_idx.to_numpy()
        pair_n = np.bincount(pair_id)
        naive = ts.cast(pa.int64()).to_numpy()
        pair_newest = np.full(len(pair_n), np.iinfo(np.int64).min)
        np.maximum.at(pair_newest, pair_id, naive)
        pairs = np.flatnonzero(pair_n)
        newest: dict[tuple[int, str], int] = {}
        for p, c, t in zip((pairs + first_file * len(names)).tolist(), pair_n[pairs].tolist(),
                           pair_newest[pairs].tolist()):
            k = (p // len(names), names[p % len(names)])
            per_feed[k] = per_feed.get(k, 0) + c
            newest[k] = max(newest.get(k, t), t)
        utc, n_amb, n_non = _to_utc(naive, self.zone)
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
        size_values, size_idx = _unquote_codes(col["size"])
        size_num, size_bad = _parse_dict_numbers(
            size_values, _SIZE_RE, lambda m: float(m.group(1)) * _SIZE_UNIT[m.group(2)], _size_numbers)
        files_values, files_idx = _unquote_codes(col["files"])
        files_num, files_bad = _parse_dict_numbers(files_values, _FILES_RE, lambda m: float(m.group(1)),
                                                   _files_numbers)
        size_mb = size_num[size_idx.to_numpy(zero_copy_only=False)]
        n_files = files_num[files_idx.to_numpy(zero_copy_only=False)]
        rows = pa.table({
            "title": title,
            "section": pa.DictionaryArray.from_arrays(sec_idx, pc.fill_null(sec_values, "")),
            "feed": pa.DictionaryArray.from_arrays(feed_idx, feed_values),
            "pre_time": pa.array(utc, pa.timestamp("s", tz="UTC")),
            "nuke_code": nuke_code,
            "nuked": pc.is_in(nuke_code, pa.array(NUKED_CODES, pa.int8())),
            "nuke_reason": pa.DictionaryArray.from_arrays(nr_idx, pc.fill_null(nr_values, "")),
            "size_mb": pa.array(size_mb, pa.float64(), from_pandas=True),
            "n_files": pa.array(n_files, pa.float64(), from_pandas=True).cast(pa.int32()),
            "origin": pa.DictionaryArray.from_arrays(col["file_index"], self.origins),
            "line": col["line"],
        })
        return _Batch(rows, per_feed, n, unknown_nuke,
                      unknown_size=_tally(size_values, size_idx, size_bad),
                      unknown_files=_tally(files_values, files_idx, files_bad),
                      tz_ambiguous=n_amb, tz_nonexistent=n_non, newest=newest)


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
    copies over a day apart.

    Every copy counts: ``copies`` holds, per title and feed that announced it, the first
    copy (``rep``), the feed (a code over ``feeds``) and the feed's earliest pre time;
    ``nuke_at`` / ``nuke_from`` pair a title's first copy with the latest copy that carries
    a nuke status when that is another row; ``size_mb`` and ``n_files`` hold, at the first
    copies, the largest value over every copy (NaN / -1 when no copy states one).
    """

    is_dup: np.ndarray
    rep: np.ndarray
    n_conflicts: int
    first_conflicts: np.ndarray
    n_far: int
    feeds: list[str]
    copies: tuple[np.ndarray, np.ndarray, np.ndarray]
    nuke_at: np.ndarray
    nuke_from: np.ndarray
    nuke_code: np.ndarray
    size_mb: np.ndarray
    n_files: np.ndarray


def _dict_column(col) -> pa.DictionaryArray:
    arr = _one(col)
    return arr if isinstance(arr, pa.DictionaryArray) else pc.dictionary_encode(arr)


def _feed_vocabulary(parts: Sequence[_Batch]) -> list[str]:
    names: set[str] = set()
    for b in parts:
        names.update(v for v in _dict_column(b.rows.column("feed")).dictionary.to_pylist() if v is not None)
    return sorted(names)


def _dedup_parts(parts: Sequence[_Batch], offsets: np.ndarray) -> _Dedup:
    """:func:`_dedup_first` over the batches' titles, lower-cased (global row numbers), part
    by part in one thread per CPU (see :data:`_N_PARTS`); in the same pass, the copies' pre
    times are compared (a copy differs when its time is not the kept copy's) and every
    copy's feed, time, nuke status, size and file count are gathered onto its title.

    The keys are made here rather than in the reader threads, so that they live only for
    this step, in memory the readers have freed: about 0.2 GB less at the peak. Every row belongs to one part, which fills in its
    ``is_dup`` and ``rep``.
    """
    n = int(offsets[-1])
    is_dup = np.empty(n, dtype=bool)
    rep = np.empty(n, dtype=np.int64)
    size_mb = np.full(n, np.nan)
    n_files = np.full(n, -1, dtype=np.int32)
    feeds = _feed_vocabulary(parts)
    code_of = {f: i for i, f in enumerate(feeds)}
    n_feeds = max(len(feeds), 1)

    def prepare(b: _Batch):
        rows = b.rows
        pre_time = _one(rows.column("pre_time")).cast(pa.int64()).to_numpy()
        feed = _dict_column(rows.column("feed"))
        to_code = np.array([code_of.get(v, 0) for v in feed.dictionary.to_pylist()] or [0], np.int16)
        fc = to_code[feed.indices.to_numpy(zero_copy_only=False)]
        nk = _one(rows.column("nuke_code")).to_numpy(zero_copy_only=False)
        sz = _one(rows.column("size_mb")).to_numpy(zero_copy_only=False)
        nf = pc.fill_null(_one(rows.column("n_files")), -1).to_numpy(zero_copy_only=False)
        return (*_batch_keys(_one(rows.column("title"))), pre_time, fc, nk, sz, nf)

    def cat(j: int, rows) -> np.ndarray:
        return np.concatenate([k[j][r] for k, r in zip(keyed, rows)] or [_NO_ROWS])

    def work(p: int):
        keys = pa.chunked_array([k[0].slice(k[1][p], k[1][p + 1] - k[1][p]) for k in keyed], pa.string())
        rows = [k[2][k[1][p]:k[1][p + 1]] for k in keyed]
        where = np.concatenate([o + r for o, r in zip(offsets, rows)] or [_NO_ROWS])
        ts, fc, nk, sz, nf = (cat(j, rows) for j in range(3, 8))
        d, r = _dedup_first(keys)
        is_dup[where] = d
        rep[where] = where[r]
        # A part holds every copy of its titles, so its conflicts are its own.
        dup_at = np.flatnonzero(d)
        kept_at = r[dup_at]
        gap = np.abs(ts[dup_at] - ts[kept_at])
        conflicts = np.unique(where[kept_at[gap != 0]])
        # every copy: each feed's earliest time for each title
        key = r.astype(np.int64) * n_feeds + fc
        order = np.lexsort((ts, key))
        ks = key[order]
        first = order[np.concatenate(([True], ks[1:] != ks[:-1]))] if len(ks) else order
        copies = (where[r[first]], fc[first], ts[first])
        # the nuke status of the latest copy that states one (copies come in file order)
        nz = np.flatnonzero(nk > 0)  # an unknown code (-1) states no status
        at = src = _NO_ROWS
        code = np.zeros(0, np.int8)
        if len(nz):
            rev = r[nz][::-1]
            u, i_rev = np.unique(rev, return_index=True)
            last = nz[len(nz) - 1 - i_rev]
            moved = last != u
            at, src, code = where[u[moved]], where[last[moved]], nk[last[moved]]
        # size and file count: the largest any copy states
        if len(dup_at):
            s_ = sz.copy()
            np.fmax.at(s_, kept_at, sz[dup_at])
            f_ = nf.copy()
            np.maximum.at(f_, kept_at, nf[dup_at])
        else:
            s_, f_ = sz, nf
        kept = np.flatnonzero(~d)
        size_mb[where[kept]] = s_[kept]
        n_files[where[kept]] = f_[kept]
        return (len(conflicts), conflicts[:MAX_EXAMPLES], len(np.unique(kept_at[gap > _DAY])),
                copies, (at, src, code))

    with ThreadPoolExecutor(max_workers=nzedb.default_threads()) as pool:
        keyed = list(pool.map(prepare, parts))
        found = list(pool.map(work, range(_N_PARTS)))
    del keyed
    first = np.sort(np.concatenate([f[1] for f in found] or [_NO_ROWS]))[:MAX_EXAMPLES]
    copies = tuple(np.concatenate([f[3][j] for f in found]) for j in range(3)) if found else \
        (_NO_ROWS, _NO_ROWS, _NO_ROWS)
    nuke = [np.concatenate([f[4][j] for f in found]) for j in range(3)] if found else \
        [_NO_ROWS, _NO_ROWS, np.zeros(0, np.int8)]
    o = np.argsort(nuke[0], kind="stable")
    return _Dedup(is_dup, rep, sum(f[0] for f in found), first, sum(f[2] for f in found),
                  feeds, copies, nuke[0][o], nuke[1][o], nuke[2][o].astype(np.int8), size_mb, n_files)


def _conflicts(parts: Sequence[_Batch], offsets: np.ndarray, dedup: _Dedup,
               origins: Sequence[str]) -> dict[str, Any]:
    """The report's counts and examples of titles whose copies carry different pre times."""
    examples = _conflict_examples(dedup.first_conflicts, dedup.rep, parts, offsets, origins) \
        if dedup.n_conflicts else []
    return {"duplicate_titles_with_different_times": dedup.n_conflicts,
            "duplicate_titles_with_times_over_1_day_apart": dedup.n_far,
            "duplicate_titles_with_different_times_examples": examples}


def _kept_rows(rows: pa.Table, keep: np.ndarray, size_mb: np.ndarray, n_files: np.ndarray,
               patch: tuple[np.ndarray, np.ndarray, list[str]]) -> pa.Table:
    """A batch's kept rows (``keep``), with the size and file count gathered over every copy
    and the nuke status of the latest copy that states one (``patch``: the rows, local to the
    batch, their codes and reasons)."""
    at, code, reason = patch
    rows = rows.set_column(rows.schema.get_field_index("size_mb"), "size_mb",
                           pa.array(size_mb, pa.float64(), from_pandas=True))
    rows = rows.set_column(rows.schema.get_field_index("n_files"), "n_files",
                           pa.array(n_files, pa.int32(), mask=n_files < 0))
    if len(at):
        nk = _one(rows.column("nuke_code")).to_numpy(zero_copy_only=False).copy()
        nk[at] = code
        mask = np.zeros(rows.num_rows, bool)
        mask[at] = True
        nr = pc.replace_with_mask(_one(rows.column("nuke_reason")).cast(pa.string()), pa.array(mask),
                                  pa.array(reason, pa.string()))
        nk_arr = pa.array(nk, pa.int8())
        for name, arr in (("nuke_code", nk_arr), ("nuked", pc.is_in(nk_arr, pa.array(NUKED_CODES, pa.int8()))),
                          ("nuke_reason", nr)):
            rows = rows.set_column(rows.schema.get_field_index(name), name, arr)
    return rows if keep.all() else rows.filter(pa.array(keep))


def _rows_text(parts: Sequence[_Batch], offsets: np.ndarray, where: np.ndarray, column: str) -> list[str]:
    """The text of ``column`` at the global rows ``where`` (in that order)."""
    out: list[str] = [""] * len(where)
    if not len(where):
        return out
    batch_of = np.searchsorted(offsets, where, side="right") - 1
    for b in np.unique(batch_of).tolist():
        sel = np.flatnonzero(batch_of == b)
        vals = _one(parts[b].rows.column(column)).take(pa.array(where[sel] - offsets[b])).cast(pa.string())
        for i, v in zip(sel.tolist(), vals.to_pylist()):
            out[i] = v or ""
    return out


@dataclass
class _CopyInput:
    """What :func:`copies_table` needs of a :class:`_Dedup` (so that the rest can be freed)."""

    copies: tuple[np.ndarray, np.ndarray, np.ndarray]
    feeds: list[str]


def copies_table(dedup: "_Dedup | _CopyInput", keep: np.ndarray) -> pa.Table:
    """Every copy counts: one row per release and feed that announced it, with the feed's
    earliest pre time (``release`` is the row number in the releases table)."""
    rank = np.cumsum(keep, dtype=np.int64) - 1
    rep, fc, ts = dedup.copies
    release = rank[rep]
    # one sort of a packed key: 30 % faster than lexsort on the two columns (pairs are unique)
    o = np.argsort(release * max(len(dedup.feeds), 1) + fc, kind="stable")
    feeds = pa.array(dedup.feeds, pa.string())
    return pa.table({
        "release": pa.array(release[o].astype(np.int32)),
        "feed": pa.DictionaryArray.from_arrays(pa.array(fc[o].astype(np.int32)), feeds),
        "pre_time": pa.array(ts[o], pa.timestamp("s", tz="UTC")),
    })


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
    *,
    zone: str = SOURCE_ZONE,
) -> tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]:
    """Deduplicate the per-batch cleaned rows across batches and assemble the accounting.

    Parameters
    ----------
    batches : sequence of (list of FileResult, batch)
        What :func:`read_and_clean` returns: per batch of consecutive files, their
        FileResults and their cleaned rows, in creation order. The batches are consumed:
        their rows are released once cut down to the kept rows.
    dumps : sequence of DumpFile
        The same files (for names and creation times).
    zone : str
        The zone the pre times were read in (recorded in the report; the conversion to UTC
        happens in :func:`read_and_clean`).

    Returns
    -------
    releases : pyarrow.Table
        Unique releases, :data:`raidstudy.data.releases.RELEASES_SCHEMA`.
    dumps_table : pyarrow.Table
        Per file x feed row counts (see module docs).
    copies : pyarrow.Table
        Every copy counts: ``release, feed, pre_time``, one row per release and feed that
        announced it, with that feed's earliest pre time (see :func:`copies_table`).
    report : dict
        The accounting (JSON-ready).

    Notes
    -----
    A title's first copy is its first row in batch order, then row order; the keys are
    compared in parts (:func:`_dedup_parts`). A title's copies differ in time when a later
    copy's time is not the kept copy's.
    """
    pieces, dumps_table, make_copies, report = _ingest_tables(batches, dumps, zone=zone)
    copies = make_copies()
    out = list(pieces)
    return (pa.concat_tables(out).cast(RELEASES_SCHEMA) if out else RELEASES_SCHEMA.empty_table()), \
        dumps_table, copies, report


def _ingest_tables(
    batches: Sequence[tuple[list[nzedb.FileResult], _Batch | None]],
    dumps: Sequence[nzedb.DumpFile],
    *,
    zone: str = SOURCE_ZONE,
) -> tuple[Iterator[pa.Table], pa.Table, Any, dict[str, Any]]:
    """:func:`ingest_tables` with the releases as a stream of per-batch tables, in order,
    computed two at a time in threads while the caller consumes (writes) them, and the
    copies table as a function that makes it (:func:`ingest` runs it beside the writer).

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
    unknown_size: dict[str, int] = {}
    unknown_files: dict[str, int] = {}
    for b in parts:
        for acc, got in ((unknown_nuke, b.unknown_nuke), (unknown_size, b.unknown_size),
                         (unknown_files, b.unknown_files)):
            for k, v in (got or {}).items():
                acc[k] = acc.get(k, 0) + v
    offsets = np.cumsum([0] + [b.rows.num_rows for b in parts]).astype(np.int64)
    dedup = _dedup_parts(parts, offsets)
    is_dup = dedup.is_dup

    n_unique = int(len(is_dup) - np.count_nonzero(is_dup))
    dup_total = n_valid - n_unique
    keep = ~is_dup
    conflicts = _conflicts(parts, offsets, dedup, [d.relpath for d in dumps])
    reasons = _rows_text(parts, offsets, dedup.nuke_from, "nuke_reason")
    cut = np.searchsorted(dedup.nuke_at, offsets)
    patches = [(dedup.nuke_at[cut[i]:cut[i + 1]] - offsets[i], dedup.nuke_code[cut[i]:cut[i + 1]],
                reasons[cut[i]:cut[i + 1]]) for i in range(len(parts))]
    n_nuke_moved = len(dedup.nuke_at)
    n_copies = len(dedup.copies[0])
    copy_input = _CopyInput(dedup.copies, dedup.feeds)

    def make_copies(keep: np.ndarray = keep) -> pa.Table:
        return copies_table(copy_input, keep)

    with ThreadPoolExecutor(max_workers=nzedb.default_threads()) as pool:
        kept: list[pa.Table | None] = list(pool.map(
            _kept_rows, [b.rows for b in parts], np.split(keep, offsets[1:-1]),
            np.split(dedup.size_mb, offsets[1:-1]), np.split(dedup.n_files, offsets[1:-1]), patches))
    for b in parts:
        b.rows = None  # cut down to the kept rows: release the rest
    del dedup, is_dup, keep, patches, reasons

    def final(i: int) -> pa.Table:
        rows, kept[i] = kept[i], None
        return _writer_piece(rows)

    def pieces() -> Iterator[pa.Table]:
        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            yield from pool.map(final, range(len(kept)))

    by_file: dict[int, dict[str, int]] = {}
    newest: dict[tuple[int, str], int] = {}
    for b in parts:
        for (fi, fd), n in b.per_feed.items():
            by_file.setdefault(fi, {})[fd] = by_file.get(fi, {}).get(fd, 0) + n
        for k, t in (b.newest or {}).items():
            newest[k] = max(newest.get(k, t), t)
    d_rows: dict[str, list] = {k: [] for k in (
        "origin", "created_unix", "sha256", "status", "lines", "rows_parsed", "feed", "rows_valid",
        "newest_pre_local")}
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
            d_rows["newest_pre_local"].append(newest.get((res.index, fd)))
    dumps_table = pa.table({
        "origin": pa.array(d_rows["origin"], pa.string()),
        "created_unix": pa.array(d_rows["created_unix"], pa.int64()),
        "sha256": pa.array(d_rows["sha256"], pa.string()),
        "status": pa.array(d_rows["status"], pa.string()),
        "lines": pa.array(d_rows["lines"], pa.int64()),
        "rows_parsed": pa.array(d_rows["rows_parsed"], pa.int64()),
        "feed": pa.array(d_rows["feed"], pa.string()),
        "rows_valid": pa.array(d_rows["rows_valid"], pa.int64()),
        # the newest pre time of the feed in the file, as written (wall clock of the source
        # zone, as seconds since 1970-01-01 00:00 of that clock): the evidence for the zone
        "newest_pre_local": pa.array(d_rows["newest_pre_local"], pa.int64()),
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
        # a title's nuke status is the latest copy's that states one (a nuke is usually
        # logged on a later copy); titles whose status came from a later copy:
        "titles_nuke_status_from_later_copy": n_nuke_moved,
        # sizes and file counts: the largest any copy states; text that is not a size
        # ('792MB', '1.2GB') or a file count ('24F') is kept as unknown, counted by value
        "rows_with_unparsed_size": sum(unknown_size.values()),
        "size_values_unparsed": dict(sorted(unknown_size.items(), key=lambda kv: (-kv[1], kv[0]))[:20]),
        "rows_with_unparsed_files": sum(unknown_files.values()),
        "files_values_unparsed": dict(sorted(unknown_files.items(), key=lambda kv: (-kv[1], kv[0]))[:20]),
        # pre times are written in the source zone and stored in UTC
        "source_zone": zone,
        "pre_times_ambiguous_in_zone": sum(b.tz_ambiguous for b in parts),
        "pre_times_nonexistent_in_zone": sum(b.tz_nonexistent for b in parts),
        "copies": n_copies,
        "skipped": skipped,
        "skipped_total": n_skipped,
        "skipped_examples": {k: v for k, v in examples.items() if v},
        "accounting_balances": lines_read == n_unique + dup_total + n_skipped,
        "per_file": files_report,
    }
    if not report["accounting_balances"]:  # pragma: no cover - a bug, not bad input
        raise AssertionError(f"row accounting does not balance: { {k: report[k] for k in ('lines_read', 'rows_kept', 'duplicates', 'skipped')} }")
    return pieces(), dumps_table, make_copies, report


#: String columns of the releases table with few distinct values (dictionary-encoded on disk).
_DICT_COLUMNS = ("group", "section", "family", "feed", "nuke_reason", "origin")


def _write_releases(pieces: Iterable[pa.Table], path: Path) -> int:
    """Write the releases table from its pieces, in row groups of :data:`ROW_GROUP_ROWS`
    rows (as ``pq.write_table`` of the whole table would); returns the number of rows."""
    total = 0
    # The writer is single-threaded and on the ingest's critical path: dictionaries only for
    # the few-valued string columns (not the titles), delta encoding for the pre times and
    # line numbers, statistics for five columns: a fifth less CPU (1.34 s against 1.66 s,
    # best of 5), the same table read back.
    with pq.ParquetWriter(path, RELEASES_SCHEMA, compression="zstd", use_dictionary=list(_DICT_COLUMNS),
                          column_encoding={"pre_time": "DELTA_BINARY_PACKED", "line": "DELTA_BINARY_PACKED"},
                          write_statistics=["pre_time", "nuke_code", "nuked", "origin", "line"]) as w:
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
    zone: str = SOURCE_ZONE,
) -> list[tuple[list[nzedb.FileResult], _Batch]]:
    """Read and clean every dump in a thread pool (see :func:`raidstudy.data.sources.nzedb.read_dumps`).

    Returns, per batch of ``batch_files`` consecutive files, their FileResults and the
    cleaned batch (its valid rows); pass the list to
    :func:`ingest_tables`. ``zone`` is the zone the pre times are written in
    (:data:`SOURCE_ZONE`); they are stored in UTC.
    """
    cleaner = _Cleaner([d.relpath for d in dumps], accept_feeds, check_zone(zone))
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
    zone: str = SOURCE_ZONE,
) -> dict[str, Any]:
    """Read all dumps under ``raw_dir`` and write the releases table, the copies table, the
    dumps table and the report.

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
    zone : str
        IANA zone the dumps' pre times are written in (default :data:`SOURCE_ZONE`,
        established from the dumps themselves: see ``data/README.md``); stored in UTC.

    Returns
    -------
    dict
        The report (also written to ``out_dir/ingest_report.json``).
    """
    zone = check_zone(zone)
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
                                 checksums=checksums, zone=zone)
        if bar is not None:
            bar.close()
        pieces, dumps_table, make_copies, report = _ingest_tables(results, dumps, zone=zone)
        del results
        out_dir.mkdir(parents=True, exist_ok=True)

        def write_copies() -> None:
            with atomic_path(out_dir / COPIES_FILE) as tmp:
                # ``release`` ascends: delta-encoded, not dictionary-encoded (which Arrow would
                # try on six million distinct values): the write is 30 % faster, the file 45 %
                # smaller
                pq.write_table(make_copies(), tmp, compression="zstd", use_dictionary=["feed"],
                               column_encoding={"release": "DELTA_BINARY_PACKED"})

        # The copies table is sorted and written in a thread beside the releases' writer,
        # which leaves part of a core idle (about 0.6 s of the ingest's critical path).
        with ThreadPoolExecutor(max_workers=1) as side:
            copies_done = side.submit(write_copies)
            with atomic_path(out_dir / RELEASES_FILE) as tmp:
                written = _write_releases(pieces, tmp)
            copies_done.result()
    finally:
        pa.set_memory_pool(default_pool)
    if written != report["rows_kept"]:  # pragma: no cover - a bug, not bad input
        raise AssertionError(f"wrote {written} releases, the accounting kept {report['rows_kept']}")
    report["raw_dir"] = display_path(raw_dir)
    report["package_version"] = __version__
    with atomic_path(out_dir / DUMPS_FILE) as tmp:
        pq.write_table(dumps_table, tmp, compression="zstd")
    report["outputs"] = {name: sha256_file(out_dir / name) for name in (RELEASES_FILE, COPIES_FILE, DUMPS_FILE)}
    write_json(out_dir / REPORT_FILE, report)
    return report


def check_zone(zone: str) -> str:
    """``zone`` if it names an IANA time zone, else one clear error naming it.

    Examples
    --------
    >>> check_zone("Europe/Berlin")
    'Europe/Berlin'
    """
    import zoneinfo

    from raidstudy.errors import ParameterError

    if not isinstance(zone, str) or not zone:
        raise ParameterError("zone", zone, "is not a time-zone name", hint="use an IANA name such as Europe/Berlin or UTC")
    if zone == "UTC":
        return zone
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ParameterError("zone", zone, "is not a time zone this machine knows",
                             hint="use an IANA name such as Europe/Berlin or UTC "
                                  "(python -c 'import zoneinfo; print(sorted(zoneinfo.available_timezones()))')") from None
    return zone


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
