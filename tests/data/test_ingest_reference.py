"""The batched, threaded ingest against a line-by-line reference on random dumps.

The ingest reads files in batches (one CSV parse per batch, per-file parsing when a batch
holds a faulty line), deduplicates all valid rows once, in parts of the key space, and
compares each copy's pre time with the kept copy's in the same pass. The reference below does the same job the obvious way, one line at a time, so any slip in the
bookkeeping (first copy, accounting, conflict counts and examples) shows up as a difference.
"""
from __future__ import annotations

import datetime as dt
import functools
import gzip
import random

import pytest

from raidstudy.data import ingest
from raidstudy.data.sources import nzedb

from _datafixtures import line, write_dump

_TIMES = ["2020-03-01 10:00:00", "2020-03-01 10:00:00", "2020-03-01 18:00:00", "2020-03-03 09:30:00"]
_FEEDS = ["xrel", "xrelp2p", "#pre@corrupt", "xrel", "somewhere"]
_SECTIONS = ["TV-X264", "PRE", "MP3", "X264", None]


def _random_dumps(folder, seed: int) -> None:
    rng = random.Random(seed)
    pool = [f"Show.{n}.S01E0{n % 7}.720p.WEB.h264-GRP{n % 5}" for n in range(25)]
    pool += ["It's.Quoted-GRP", "Caf\u00e9.Titel-GRP", "NoGroupHere"]
    for k in range(9):
        lines = []
        for _ in range(rng.randint(1, 40) if k != 2 else 0):  # dump 2 is empty
            t = rng.choice(pool)
            t = t.upper() if rng.random() < 0.15 else t
            lines.append(line(t, predate=rng.choice(_TIMES), source=rng.choice(_FEEDS),
                              category=rng.choice(_SECTIONS)))
        if k == 3:
            lines.insert(2, b"\t\t".join([b"'Short-GRP'", b"\\N"]))  # wrong field count
        if k == 5:
            lines.append(line("Bad.Time-GRP", predate="2020-13-45 99:00:00"))
        if k == 6:
            lines.insert(1, line("Has\rCR-GRP"))  # the exact line-by-line path
        write_dump(folder, 1583056800 + 86400 * k, lines)


def _reference(dumps):
    """Releases (title, feed, pre time, origin, line) and the duplicate counts, line by line."""
    first: dict[str, tuple] = {}
    copies: dict[str, list[tuple]] = {}
    n_lines = 0
    for fi, d in enumerate(dumps):
        text = gzip.decompress(d.path.read_bytes()).decode("utf-8")
        for no, raw in enumerate(text.split("\n")[:-1], 1):
            n_lines += 1
            fields = raw.removesuffix("\r").split("\t\t")
            if len(fields) != 12:
                continue
            title, predate, feed = fields[0], fields[8], fields[9].strip("'")
            if not (title.startswith("'") and title.endswith("'") and len(title) > 2):
                continue
            try:
                when = dt.datetime.strptime(predate, "'%Y-%m-%d %H:%M:%S'")
            except ValueError:
                continue
            if feed not in ingest.KNOWN_FEEDS:
                continue
            title = title[1:-1].replace("\\'", "'")
            key = title.lower()
            copy = (fi, no, title, feed, when, d.relpath)
            copies.setdefault(key, []).append(copy)
            first.setdefault(key, copy)
    conflicts = [k for k in first if len({c[4] for c in copies[k]}) > 1]
    far = [k for k in conflicts if max(abs((c[4] - first[k][4]).total_seconds()) for c in copies[k]) > 86400]
    examples = ["; ".join(f"{c[2]} [{c[3]}] {c[4]:%Y-%m-%d %H:%M:%S} ({c[5]} line {c[1]})" for c in copies[k])
                for k in conflicts[: ingest.MAX_EXAMPLES]]
    kept = sorted(first.values())
    return kept, n_lines, len(conflicts), len(far), examples


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("batch_files", [1, 2, 32])
@pytest.mark.parametrize("cpus", [1, 5])  # threads of the deduplication
def test_ingest_matches_line_by_line_reference(tmp_path, monkeypatch, seed, batch_files, cpus):
    monkeypatch.setattr(nzedb, "default_threads", lambda: cpus)
    _random_dumps(tmp_path, seed)
    dumps = nzedb.list_dumps(tmp_path)
    batches = ingest.read_and_clean(dumps, batch_files=batch_files, threads=2)
    releases, _, rep = ingest.ingest_tables(batches, dumps)
    kept, n_lines, n_conflict, n_far, examples = _reference(dumps)

    got = sorted(zip([dumps.index(next(d for d in dumps if d.relpath == o)) for o in releases["origin"].to_pylist()],
                     releases["line"].to_pylist(), releases["title"].to_pylist(), releases["feed"].to_pylist(),
                     [t.replace(tzinfo=None) for t in releases["pre_time"].to_pylist()],
                     releases["origin"].to_pylist()))
    assert got == kept
    assert rep["lines_read"] == n_lines
    assert rep["rows_kept"] == len(kept)
    assert rep["accounting_balances"]
    assert rep["duplicate_titles_with_different_times"] == n_conflict
    assert rep["duplicate_titles_with_times_over_1_day_apart"] == n_far
    assert rep["duplicate_titles_with_different_times_examples"] == examples
    assert rep["skipped"]["wrong_field_count"] == 1 and rep["skipped"]["bad_timestamp"] == 1
    assert rep["files_slow_path"] == [dumps[3].relpath, dumps[6].relpath]  # the faulty lines


@pytest.mark.parametrize("seed", [1, 2])
def test_releases_file_reads_back_as_a_plain_write(tmp_path, monkeypatch, seed):
    """The writer receives the releases piece by piece: the file must read back exactly like
    the releases table written in one go (same schema and metadata, same values), in row
    groups of ROW_GROUP_ROWS rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raidstudy.data.releases import RELEASES_SCHEMA

    read_and_clean = ingest.read_and_clean
    raw = tmp_path / "raw"
    _random_dumps(raw, seed)
    dumps = nzedb.list_dumps(raw)
    releases, _, _ = ingest.ingest_tables(ingest.read_and_clean(dumps, threads=2), dumps)
    assert releases.schema.equals(RELEASES_SCHEMA)
    plain = tmp_path / "plain.parquet"
    pq.write_table(releases, plain)
    for rows_per_group in (1 << 20, 7):
        monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", rows_per_group)
        # batches of 2 files: several pieces per row group, and pieces across row groups
        monkeypatch.setattr(ingest, "read_and_clean", functools.partial(read_and_clean, batch_files=2))
        ingest.ingest(raw, tmp_path / "out", quiet=True)
        got_file = pq.ParquetFile(tmp_path / "out" / "releases.parquet")
        got, want = got_file.read(), pq.read_table(plain)
        assert got.schema.equals(want.schema, check_metadata=True)
        assert got.equals(want)
        assert got_file.metadata.metadata == pq.ParquetFile(plain).metadata.metadata
        assert got_file.metadata.num_row_groups == -(-releases.num_rows // rows_per_group)
        assert isinstance(got.column("origin").type, pa.DictionaryType)
        assert got.column("group").type == pa.string()
