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
import zoneinfo

import pytest

from raidstudy.data import ingest
from raidstudy.data.sources import nzedb

from _datafixtures import line, write_dump

_TIMES = ["2020-03-01 10:00:00", "2020-03-01 10:00:00", "2020-03-01 18:00:00", "2020-03-03 09:30:00"]
_FEEDS = ["xrel", "xrelp2p", "#pre@corrupt", "xrel", "somewhere"]
_SECTIONS = ["TV-X264", "PRE", "MP3", "X264", None]
# the last two: the hour repeated when summer time ends (ambiguous) and a time in it
_TIMES += ["2020-10-25 02:30:00"]
_NUKES = ["0", "0", "0", "2", "1", "3"]
_SIZES = ["100MB", "1.5GB", None, "2CD", "700MB"]
_BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _utc(local: dt.datetime) -> dt.datetime:
    """Berlin wall clock -> naive UTC, independently of the ingest (fold=0: the first,
    summer-time reading of the repeated hour)."""
    return local.replace(tzinfo=_BERLIN, fold=0).astimezone(dt.timezone.utc).replace(tzinfo=None)


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
                              category=rng.choice(_SECTIONS), nuked=rng.choice(_NUKES),
                              nukereason=rng.choice([None, "dupe", "bad.ts"]), size=rng.choice(_SIZES)))
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
    status: dict[str, tuple[int, str]] = {}
    sizes: dict[str, float] = {}
    n_lines = 0
    for fi, d in enumerate(dumps):
        text = gzip.decompress(d.path.read_bytes()).decode("utf-8")
        for no, raw in enumerate(text.split("\n")[:-1], 1):
            n_lines += 1
            fields = raw.removesuffix("\r").split("\t\t")
            if len(fields) != 12:
                continue
            title, predate, feed = fields[0], fields[8], fields[9].strip("'")
            nuke, reason, size = int(fields[5].strip("'")), fields[6], fields[2]
            if not (title.startswith("'") and title.endswith("'") and len(title) > 2):
                continue
            try:
                when = _utc(dt.datetime.strptime(predate, "'%Y-%m-%d %H:%M:%S'"))
            except ValueError:
                continue
            if feed not in ingest.KNOWN_FEEDS:
                continue
            title = title[1:-1].replace("\\'", "'")
            key = title.lower()
            copy = (fi, no, title, feed, when, d.relpath)
            copies.setdefault(key, []).append(copy)
            first.setdefault(key, copy)
            if key not in status or nuke > 0:  # every copy counts: the latest copy that states a status wins
                status[key] = (nuke, "" if reason == "\\N" else reason.strip("'"))
            mb = {"100MB": 100.0, "'100MB'": 100.0, "'1.5GB'": 1500.0, "'700MB'": 700.0}.get(size)
            sizes[key] = max(sizes.get(key, -1.0), mb if mb is not None else -1.0)
    conflicts = [k for k in first if len({c[4] for c in copies[k]}) > 1]
    far = [k for k in conflicts if max(abs((c[4] - first[k][4]).total_seconds()) for c in copies[k]) > 86400]
    examples = ["; ".join(f"{c[2]} [{c[3]}] {c[4]:%Y-%m-%d %H:%M:%S} ({c[5]} line {c[1]})" for c in copies[k])
                for k in conflicts[: ingest.MAX_EXAMPLES]]
    kept = sorted(first.values())
    per_feed = sorted((first[k][2], c[3], min(x[4] for x in copies[k] if x[3] == c[3]))
                      for k in first for c in {c[3]: c for c in copies[k]}.values())
    extra = {first[k][2]: (status[k], sizes[k] if sizes[k] >= 0 else None) for k in first}
    return kept, n_lines, len(conflicts), len(far), examples, per_feed, extra


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("batch_files", [1, 2, 32])
@pytest.mark.parametrize("cpus", [1, 5])  # threads of the deduplication
def test_ingest_matches_line_by_line_reference(tmp_path, monkeypatch, seed, batch_files, cpus):
    monkeypatch.setattr(nzedb, "default_threads", lambda: cpus)
    _random_dumps(tmp_path, seed)
    dumps = nzedb.list_dumps(tmp_path)
    batches = ingest.read_and_clean(dumps, batch_files=batch_files, threads=2)
    releases, _, copies, rep = ingest.ingest_tables(batches, dumps)
    kept, n_lines, n_conflict, n_far, examples, per_feed, extra = _reference(dumps)

    got = sorted(zip([dumps.index(next(d for d in dumps if d.relpath == o)) for o in releases["origin"].to_pylist()],
                     releases["line"].to_pylist(), releases["title"].to_pylist(), releases["feed"].to_pylist(),
                     [t.replace(tzinfo=None) for t in releases["pre_time"].to_pylist()],
                     releases["origin"].to_pylist()))
    assert got == kept
    # every copy counts: each feed's earliest time for each title
    titles = releases["title"].to_pylist()
    got_copies = sorted(zip([titles[i] for i in copies["release"].to_pylist()], copies["feed"].to_pylist(),
                            [t.replace(tzinfo=None) for t in copies["pre_time"].to_pylist()]))
    assert got_copies == per_feed
    # nuke status of the latest copy that states one; the largest size any copy states
    got_extra = {t: ((c, r), s) for t, c, r, s in zip(titles, releases["nuke_code"].to_pylist(),
                                                       releases["nuke_reason"].to_pylist(),
                                                       releases["size_mb"].to_pylist())}
    assert got_extra == extra
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
    releases, _, _, _ = ingest.ingest_tables(ingest.read_and_clean(dumps, threads=2), dumps)
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
