"""Adapter for the nZEDb daily PreDB dumps (https://github.com/nZEDb/nZEDbPre_Dumps).

Format (checked on all 2,096 files of 2018-08 .. 2024-05): gzip, no header, one release a
line ending in ``\\r\\n``; 12 fields separated by *two* tab characters; strings single-quoted
(``'...'``) with MySQL escapes (``\\'`` inside a title); NULL is the literal ``\\N``. Field
order (the nZEDb ``predb_imports`` table): title, nfo, size, files, filename, nuked,
nukereason, category, predate, source, requestid, groupname.

The fast path decompresses each file in a thread pool (:mod:`zlib`, which also salvages
what it can of a truncated or corrupt stream) and lets :func:`pyarrow.csv.read_csv` split the fields on a single tab with quoting *disabled*, so an escaped quote inside a title
can never merge or split rows (quotes are stripped and ``\\'`` unescaped afterwards,
column-wise). Every line is accounted for: the
number of parsed rows plus the rows refused by the parser must equal the number of lines in
the file, otherwise the file is re-read by an exact (slower) line-by-line path.
"""
from __future__ import annotations

import hashlib
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from raidstudy.errors import IngestError

__all__ = [
    "FIELDS",
    "N_FIELDS",
    "DumpFile",
    "FileResult",
    "list_dumps",
    "read_dump_file",
    "read_dump_batch",
    "read_dumps",
    "default_threads",
    "MAX_EXAMPLES",
]

#: Field names, in file order (nZEDb ``predb_imports``).
FIELDS = (
    "title", "nfo", "size", "files", "filename", "nuked", "nukereason",
    "category", "predate", "source", "requestid", "groupname",
)
N_FIELDS = len(FIELDS)
#: Fields kept by the reader (by position).
_KEEP = {"title": 0, "size": 2, "files": 3, "nuked": 5, "nukereason": 6, "category": 7, "predate": 8,
         "source": 9}
#: Examples kept per skip reason.
MAX_EXAMPLES = 5
_DUMP_RE = re.compile(r"^(\d+)_predb_dump\.csv\.gz$")


@dataclass(frozen=True)
class DumpFile:
    """One dump file: its path, its path relative to the dumps folder and its creation time."""

    path: Path
    relpath: str
    created_unix: int


#: ``FileResult.problem`` of a 0-byte file (skipped by the ingest, reported with this reason).
EMPTY_FILE = "empty_file"


@dataclass
class FileResult:
    """What reading one file produced: raw (still quoted) string columns and the accounting."""

    index: int
    relpath: str
    table: pa.Table | None = None
    n_lines: int = 0
    n_rows: int = 0
    problem: str | None = None  # "truncated_gzip", "corrupt_gzip", EMPTY_FILE, or unreadable reason
    unreadable: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    n_bad_bytes_rows: int = 0
    slow_path: bool = False
    sha256: str | None = None
    is_ascii: bool = True
    n_valid: int = 0

    def skip(self, reason: str, text: str | bytes | None, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        ex = self.examples.setdefault(reason, [])
        if text is not None and len(ex) < MAX_EXAMPLES:
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            ex.append(f"{self.relpath}: {text[:300]}")


def list_dumps(raw_dir: str | os.PathLike) -> list[DumpFile]:
    """All ``<unix>_predb_dump.csv.gz`` files under ``raw_dir``, oldest first.

    Parameters
    ----------
    raw_dir : path
        A folder holding dumps, in any sub-folder layout (the upstream one is
        ``dumps/<folder>/<unix>_predb_dump.csv.gz``).

    Returns
    -------
    list of DumpFile
        Sorted by the creation time in the file name, then by relative path.

    Raises
    ------
    IngestError
        If the folder does not exist or holds no dump.
    """
    raw = Path(raw_dir)
    if not raw.is_dir():
        raise IngestError(
            f"dumps folder {raw} does not exist; pass the folder holding the nZEDb "
            "*_predb_dump.csv.gz files, or download them with `raidstudy fetch nzedb`"
        )
    out = []
    for p in raw.rglob("*_predb_dump.csv.gz"):
        m = _DUMP_RE.match(p.name)
        if m and p.is_file():
            out.append(DumpFile(p, p.relative_to(raw).as_posix(), int(m.group(1))))
    if not out:
        raise IngestError(
            f"no *_predb_dump.csv.gz file under {raw}; pass the folder holding the nZEDb dumps "
            "or download them with `raidstudy fetch nzedb --from DATE --to DATE`"
        )
    out.sort(key=lambda d: (d.created_unix, d.relpath))
    return out


def _decompress(raw: bytes) -> tuple[bytes, str | None]:
    """Decompress (possibly multi-member) gzip. Returns data and a problem tag or None.

    A truncated stream yields what could be decompressed and ``"truncated_gzip"``; a
    corrupt one yields the salvageable prefix and ``"corrupt_gzip"``. Data that is not
    gzip at all raises :class:`zlib.error`.
    """
    parts = []
    pos = 0
    problem = None
    first = True
    while pos < len(raw):
        d = zlib.decompressobj(wbits=47)
        try:
            parts.append(d.decompress(raw[pos:] if pos else raw))
        except zlib.error:
            if first:
                # Salvage the prefix chunk by chunk, so a corrupt block late in the
                # file loses only what follows it.
                d = zlib.decompressobj(wbits=47)
                got = []
                src = memoryview(raw)
                try:
                    for i in range(0, len(src), 1 << 16):
                        got.append(d.decompress(src[i:i + (1 << 16)]))
                except zlib.error:
                    pass
                if not got or not any(got):
                    raise
                parts.append(b"".join(got))
            problem = "corrupt_gzip"
            break
        first = False
        if not d.eof:
            problem = "truncated_gzip"
            break
        rest = d.unused_data
        if not rest or not rest.strip(b"\x00"):
            break
        pos = len(raw) - len(rest)
    return b"".join(parts), problem


def _slow_parse(data: bytes, res: FileResult) -> pa.Table:
    """Exact line-by-line parse (used when the fast path's accounting does not balance)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    cols: dict[str, list] = {k: [] for k in _KEEP}
    numbers: list[int] = []
    bad_bytes = 0
    for no, line in enumerate(lines, 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        parts = line.split(b"\t\t")
        if len(parts) != N_FIELDS:
            res.skip("wrong_field_count", line)
            continue
        try:
            vals = [parts[i].decode("utf-8") for i in _KEEP.values()]
        except UnicodeDecodeError:
            bad_bytes += 1
            vals = [parts[i].decode("utf-8", "replace") for i in _KEEP.values()]
        for k, v in zip(_KEEP, vals):
            cols[k].append(v)
        numbers.append(no)
    res.n_bad_bytes_rows += bad_bytes
    tbl = pa.table({k: (pa.array(v, pa.string()) if k in ("title", "predate")
                        else pa.array(v, pa.string()).dictionary_encode()) for k, v in cols.items()})
    return tbl.append_column("line", pa.array(numbers, pa.int32()))


def _repair_utf8(data: bytes, res: FileResult) -> bytes:
    """Replace undecodable bytes line by line, counting the affected lines."""
    lines = data.split(b"\n")
    n = 0
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            lines[i] = line.decode("utf-8", "replace").encode("utf-8")
            n += 1
    res.n_bad_bytes_rows += n
    return b"\n".join(lines)


_N_PIECES = 2 * N_FIELDS - 1
_DICT = pa.dictionary(pa.int32(), pa.string())
_READ_OPTS = pacsv.ReadOptions(
    column_names=[f"f{i}" for i in range(_N_PIECES)], use_threads=False, block_size=1 << 26
)
_PARSE_OPTS = pacsv.ParseOptions(
    delimiter="\t", quote_char=False, escape_char=False, double_quote=False,
    newlines_in_values=False, ignore_empty_lines=False,
)
_CONVERT_OPTS = pacsv.ConvertOptions(
    include_columns=[f"f{2 * i}" for i in _KEEP.values()],
    column_types={f"f{2 * i}": (pa.string() if name in ("title", "predate") else _DICT)
                  for name, i in _KEEP.items()},
    strings_can_be_null=False,
    quoted_strings_can_be_null=False,
    null_values=[],
    check_utf8=False,  # validated (and repaired) before parsing
)


def _load(dump: DumpFile, index: int, checksum: bool) -> tuple[FileResult, bytes, int]:
    """Read, checksum and decompress one dump, set aside the incomplete last line of a cut-off
    file and repair undecodable bytes: returns its FileResult (``n_lines`` counted), its text
    and the number of lines in that text. ``unreadable`` is set when nothing could be read."""
    res = FileResult(index=index, relpath=dump.relpath)
    try:
        raw = dump.path.read_bytes()
    except OSError as exc:
        res.unreadable, res.problem = True, f"cannot read: {exc.strerror or exc}"
        return res, b"", 0
    if checksum:
        res.sha256 = hashlib.sha256(raw).hexdigest()
    if not raw:
        # A 0-byte file (an interrupted download) holds no rows and says nothing about its
        # day: the ingest skips it with this reason, and coverage treats its window as unread.
        res.problem = EMPTY_FILE
        return res, b"", 0
    try:
        data, res.problem = _decompress(raw)
    except zlib.error as exc:
        res.unreadable, res.problem = True, f"not a readable gzip file ({exc})"
        return res, b"", 0
    del raw
    if res.problem is not None and data:
        # The last line of a cut-off file is incomplete: count it, do not parse it.
        cut = data.rfind(b"\n")
        tail = data[cut + 1:]
        data = data[: cut + 1]
        if tail:
            res.skip("truncated_line", tail)
            res.n_lines += 1
    if not data:
        return res, data, 0
    if not data.isascii():
        res.is_ascii = False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = _repair_utf8(data, res)
    n_text = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    res.n_lines += n_text
    return res, data, n_text


def _fast_parse(data: bytes) -> pa.Table | None:
    """Arrow's CSV reader on dump text (None if some line does not split into 23 pieces)."""
    try:
        # Delimiter: one tab. A well-formed line then has 23 pieces, the odd ones being the
        # empty gaps inside each two-tab separator; any other count raises and the exact
        # line-by-line path takes over (it counts wrong field counts, blank lines, etc.).
        tbl = pacsv.read_csv(pa.py_buffer(data), read_options=_READ_OPTS,
                             parse_options=_PARSE_OPTS, convert_options=_CONVERT_OPTS)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return tbl.rename_columns(list(_KEEP))


def _parse(data: bytes, n_text: int, res: FileResult) -> pa.Table:
    """One file's text -> raw columns plus ``line`` and ``file_index`` (fast path, or the exact
    line-by-line path when the fast path's row count differs from the line count)."""
    tbl = _fast_parse(data) if data else None
    if tbl is None or tbl.num_rows != n_text:
        res.slow_path = bool(data)  # an empty text has nothing to parse either way
        tbl = _slow_parse(data, res)
    else:
        tbl = tbl.append_column("line", pa.array(np.arange(1, n_text + 1, dtype=np.int32)))
    res.n_rows = tbl.num_rows
    return tbl.append_column("file_index", pa.array(np.full(tbl.num_rows, res.index, dtype=np.int32)))


def read_dump_file(dump: DumpFile, index: int = 0, checksum: bool = True) -> FileResult:
    """Read one dump into raw string columns, with exact line accounting.

    Parameters
    ----------
    dump : DumpFile
        The file.
    index : int
        Its position in creation order (kept as ``file_index``).
    checksum : bool
        Record the SHA-256 of the compressed file in ``sha256``.

    Returns
    -------
    FileResult
        ``table`` has the columns ``title, size, files, nuked, nukereason, category,
        predate, source`` (raw field text, still quoted) plus ``line`` and ``file_index``.
        ``unreadable`` is set (and ``table`` is None) when nothing could be read.
    """
    res, data, n_text = _load(dump, index, checksum)
    if not res.unreadable:
        res.table = _parse(data, n_text, res)
    return res


def read_dump_batch(items: Sequence[tuple[int, DumpFile]], checksum: bool = True,
                    skip_unreadable: bool = False) -> tuple[list[FileResult], pa.Table | None]:
    """Read consecutive dumps into one table of raw columns (as :func:`read_dump_file`).

    The files' texts are parsed in one call of the CSV reader, which is faster and holds
    the GIL less often than one call per file; if any line of the batch does not parse, each
    file is parsed on its own (and the exact line-by-line path takes the faulty ones).

    Parameters
    ----------
    items : sequence of (index, DumpFile)
        The files with their positions in creation order.
    checksum : bool
        Record each compressed file's SHA-256.
    skip_unreadable : bool
        Read the other files when one is wholly unreadable (else stop at once).

    Returns
    -------
    results : list of FileResult
        One per file, in order, with the accounting (``table`` is None).
    table : pyarrow.Table or None
        The raw columns of every readable file, with ``line`` and ``file_index``; None when
        a file is unreadable and ``skip_unreadable`` is False.
    """
    loaded = [_load(d, i, checksum) for i, d in items]
    results = [r for r, _, _ in loaded]
    if not skip_unreadable and any(r.unreadable for r in results):
        return results, None
    texts = [(r, d, n) for r, d, n in loaded if n]
    total = sum(n for _, _, n in texts)
    tbl = _fast_parse(b"".join(d if d.endswith(b"\n") else d + b"\n" for _, d, _ in texts)) if texts else None
    if tbl is None or tbl.num_rows != total:
        tables = [_parse(d, n, r) for r, d, n in loaded if not r.unreadable]
        return results, pa.concat_tables(tables) if tables else None
    counts = np.array([n for _, _, n in texts], np.int64)
    for r, _, n in texts:
        r.n_rows = n
    line = np.arange(1, total + 1, dtype=np.int32)
    line -= np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)  # restart at each file
    tbl = tbl.append_column("line", pa.array(line))
    return results, tbl.append_column("file_index", pa.array(
        np.repeat(np.array([r.index for r, _, _ in texts], np.int32), counts)))


def default_threads() -> int:
    """Reader threads: one per CPU (at most 8).

    The readers spend nearly all their time in zlib, Arrow and numpy, which release the
    GIL, so one thread keeps a core busy.
    """
    return min(8, os.cpu_count() or 1)


def read_dumps(
    dumps: Sequence[DumpFile],
    *,
    skip_unreadable: bool = False,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    checksums: bool = True,
    transform: Callable[[list[FileResult], pa.Table | None], Any] | None = None,
    batch_files: int = 32,
) -> list[FileResult] | list[tuple[list[FileResult], Any]]:
    """Read many dumps in a thread pool (zlib and Arrow release the GIL).

    Parameters
    ----------
    dumps : sequence of DumpFile
        In creation order.
    skip_unreadable : bool
        If False (default) a wholly unreadable file raises :class:`IngestError` naming
        it; if True it is returned with ``unreadable=True`` for the report.
    threads : int, optional
        Worker threads (default :func:`default_threads`).
    progress : callable, optional
        Called with the number of files finished after each batch.
    checksums : bool
        Record each file's SHA-256.
    transform : callable, optional
        Called in the worker thread with each batch of ``batch_files`` consecutive files as
        ``transform(results, table)``, ``table`` being :func:`read_dump_batch`'s table of
        their rows (the ingest cleans rows this way, in parallel).
    batch_files : int
        Files per task.

    Returns
    -------
    list
        Without ``transform``: the FileResults in the order of ``dumps``. With it: a list of
        ``(batch_results, transform_output)`` pairs, in order.
    """
    threads = threads or default_threads()
    batches = [list(enumerate(dumps))[i:i + batch_files] for i in range(0, len(dumps), batch_files)]

    def work(batch):
        if transform is None:
            return [read_dump_file(d, i, checksums) for i, d in batch], None
        res, table = read_dump_batch(batch, checksums, skip_unreadable)
        if not skip_unreadable and any(r.unreadable for r in res):
            return res, None
        return res, transform(res, table)

    out: list = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for res, val in pool.map(work, batches):
            for r in res:
                if r.unreadable and not skip_unreadable:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise IngestError(
                        f"dump file {r.relpath} is unreadable: {r.problem}. Replace it "
                        "(e.g. `raidstudy fetch nzedb` again) or rerun with --skip-unreadable to "
                        "ingest the other files and list this one in the coverage report"
                    )
            if transform is None:
                out.extend(res)
            else:
                out.append((res, val))
            if progress is not None:
                progress(len(res))
    return out
