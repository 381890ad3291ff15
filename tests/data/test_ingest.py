"""Ingest of nZEDb dumps: exact row accounting on malformed input, dedup, report, real data."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest


from raidstudy.data import ingest
from raidstudy.errors import IngestError, ParameterError
from raidstudy.paths import default_dumps_dir, shared_dir
from raidstudy.data.sources import nzedb

from _datafixtures import line, q, write_dump


def _run(tmp_path, **kw):
    return ingest.ingest(tmp_path / "raw", tmp_path / "out", quiet=True, **kw)


def test_escaped_quotes_exact_accounting(tmp_path):
    raw = tmp_path / "raw"
    lines = [
        line("Ocean's.Eight.2018.720p.BluRay.x264-DON", source="xrelp2p", category="Movie HD-720p"),
        line("Dont.Worry.He.Won't.Get.Far.on.Foot.2018.1080p-MTeam", source="xrelp2p"),
        line("It's.Always.Sunny.S01E01.720p.WEB.h264-GRP", source="xrel"),
        line("Plain.Title-GRP", source="xrel"),
        # the same title again (escaped), later in the file: a duplicate, not a new row
        line("Ocean's.Eight.2018.720p.BluRay.x264-DON", source="xrel", category="X264"),
    ]
    assert b"\\'" in lines[0]
    write_dump(raw, 1583056800, lines)
    rep = _run(tmp_path)
    assert rep["lines_read"] == 5
    assert rep["rows_kept"] == 4
    assert rep["duplicates"] == 1
    assert rep["skipped_total"] == 0
    assert rep["accounting_balances"]
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas()
    assert "Ocean's.Eight.2018.720p.BluRay.x264-DON" in set(t["title"])
    assert "Dont.Worry.He.Won't.Get.Far.on.Foot.2018.1080p-MTeam" in set(t["title"])
    row = t[t["title"].str.startswith("Ocean")].iloc[0]
    assert row["feed"] == "xrelp2p" and row["family"] == "movies" and row["group"] == "DON"
    assert row["line"] == 1


def test_malformed_lines_counted_with_examples(tmp_path):
    raw = tmp_path / "raw"
    good = [line(f"Good.{i}-GRP") for i in range(5)]
    bad_fields = b"\t\t".join([q("Short.Line-GRP"), b"\\N", q("1MB")])
    bad_ts = line("Bad.Time-GRP", predate="2020-13-45 99:00:00")
    null_ts = line("Null.Time-GRP", predate=None)
    unknown = line("Unknown.Feed-GRP", source="somewhere")
    no_title = line(None, raw_title=b"\\N")
    bad_bytes = line("Caf\u00e9.Title-GRP").replace("Café".encode(), b"Caf\xe9")
    lines = good + [bad_fields, bad_ts, null_ts, unknown, no_title, bad_bytes, b""]
    write_dump(raw, 1583056800, lines)
    rep = _run(tmp_path)
    assert rep["lines_read"] == len(lines) == 12
    assert rep["skipped"]["wrong_field_count"] == 2  # the short line and the blank line
    assert rep["skipped"]["bad_timestamp"] == 2
    assert rep["skipped"]["unknown_feed"] == 1
    assert rep["skipped"]["bad_title"] == 1
    assert rep["rows_with_bad_bytes"] == 1
    assert rep["rows_kept"] == 6
    assert rep["lines_read"] == rep["rows_kept"] + rep["duplicates"] + rep["skipped_total"]
    for reason in ("wrong_field_count", "bad_timestamp", "unknown_feed", "bad_title"):
        assert rep["skipped_examples"][reason], reason
    assert "Unknown.Feed-GRP" in rep["skipped_examples"]["unknown_feed"][0]
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas()
    assert any("\ufffd" in x for x in t["title"])
    # the report is on disk too
    on_disk = json.loads((tmp_path / "out" / "ingest_report.json").read_text())
    assert on_disk["skipped"] == rep["skipped"]


def test_accept_feed_option(tmp_path):
    write_dump(tmp_path / "raw", 1583056800, [line("A-G", source="newfeed"), line("B-G")])
    # without the option the unknown feed's row is skipped and counted
    rep0 = ingest.ingest(tmp_path / "raw", tmp_path / "out0", quiet=True)
    assert rep0["skipped"]["unknown_feed"] == 1 and rep0["rows_kept"] == 1
    assert "newfeed" in rep0["skipped_examples"]["unknown_feed"][0]
    rep = _run(tmp_path, accept_feeds=["newfeed"])
    assert rep["skipped"]["unknown_feed"] == 0 and rep["rows_kept"] == 2
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas()
    assert sorted(t["title"]) == ["A-G", "B-G"]
    assert "newfeed" in set(t["feed"].astype(str))


def test_truncated_gzip_counts_partial_line(tmp_path):
    raw = tmp_path / "raw"
    lines = [line(f"Release.Number.{i:05d}.With.A.Long.Name-GRP{i}") for i in range(3000)]
    full = write_dump(raw, 1583056800, lines)
    size = full.stat().st_size
    write_dump(raw, 1583056800, lines, truncate=size // 2)
    rep = _run(tmp_path)
    assert rep["files_truncated_or_corrupt"] == ["dumps/1583056000/1583056800_predb_dump.csv.gz"]
    n = rep["lines_read"]
    assert 0 < n < 3000
    assert rep["skipped"]["truncated_line"] in (0, 1)
    assert n == rep["rows_kept"] + rep["skipped"]["truncated_line"]


def test_duplicates_with_different_times_reported(tmp_path):
    raw = tmp_path / "raw"
    write_dump(raw, 1583056800, [line("Same.Title-GRP", predate="2020-03-01 10:00:00", source="xrel")])
    write_dump(raw, 1583143200, [line("same.title-grp", predate="2020-03-01 18:00:00", source="m2v.ru"),
                                 line("Other-GRP", predate="2020-03-02 01:00:00")])
    rep = _run(tmp_path)
    assert rep["duplicates"] == 1
    assert rep["duplicate_titles_with_different_times"] == 1
    assert "Same.Title-GRP [xrel]" in rep["duplicate_titles_with_different_times_examples"][0]
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas()
    kept = t[t["title"].str.lower() == "same.title-grp"]
    assert len(kept) == 1 and kept.iloc[0]["feed"] == "xrel"  # first file wins
    # the dumps write Central European time: 10:00 CET is 09:00 UTC
    assert str(kept.iloc[0]["pre_time"]) == "2020-03-01 09:00:00+00:00"
    # every copy counts: the m2v.ru copy is kept in the copies table with its own time
    c = pq.read_table(tmp_path / "out" / "copies.parquet").to_pandas()
    mine = c[c["release"] == kept.index[0]].sort_values("feed")
    assert mine["feed"].astype(str).tolist() == ["m2v.ru", "xrel"]
    assert [str(x) for x in mine["pre_time"]] == ["2020-03-01 17:00:00+00:00", "2020-03-01 09:00:00+00:00"]


def test_source_zone_is_applied_and_checked(tmp_path):
    raw = tmp_path / "raw"
    # summer (CEST, UTC+2), winter (CET, UTC+1), the repeated hour of 2020-10-25 (first reading)
    write_dump(raw, 1603620000, [line("S-GRP", predate="2020-07-01 12:00:00"),
                                 line("W-GRP", predate="2020-01-15 12:00:00"),
                                 line("A-GRP", predate="2020-10-25 02:30:00")])
    rep = ingest.ingest(raw, tmp_path / "out", quiet=True)
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas().set_index("title")
    assert str(t.loc["S-GRP", "pre_time"]) == "2020-07-01 10:00:00+00:00"
    assert str(t.loc["W-GRP", "pre_time"]) == "2020-01-15 11:00:00+00:00"
    assert str(t.loc["A-GRP", "pre_time"]) == "2020-10-25 00:30:00+00:00"
    assert rep["source_zone"] == "Europe/Berlin" and rep["pre_times_ambiguous_in_zone"] == 1
    assert rep["pre_times_nonexistent_in_zone"] == 0
    rep = ingest.ingest(raw, tmp_path / "utc", quiet=True, zone="UTC")
    t = pq.read_table(tmp_path / "utc" / "releases.parquet").to_pandas().set_index("title")
    assert str(t.loc["S-GRP", "pre_time"]) == "2020-07-01 12:00:00+00:00"
    with pytest.raises(ParameterError, match="'Mars/Olympus'.*not a time zone"):
        ingest.ingest(raw, tmp_path / "bad", quiet=True, zone="Mars/Olympus")
    assert not (tmp_path / "bad").exists()  # refused before any work


def test_sizes_and_nukes_from_every_copy(tmp_path):
    raw = tmp_path / "raw"
    write_dump(raw, 1583056800, [line("N-GRP", predate="2020-03-01 10:00:00", size=None),
                                 line("U-GRP", predate="2020-03-01 10:00:00", nuked="2", nukereason="dupe")])
    write_dump(raw, 1583143200, [line("N-GRP", predate="2020-03-01 10:00:00", source="xrel", nuked="2",
                                      nukereason="bad.ts", size="1.5GB"),
                                 line("U-GRP", predate="2020-03-01 10:00:00", nuked="1", nukereason="fixed"),
                                 line("J-GRP", predate="2020-03-02 01:00:00", size="2CD", files="12F")])
    rep = ingest.ingest(raw, tmp_path / "out", quiet=True)
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas().set_index("title")
    # a nuke logged on a later copy counts; a later unnuke undoes an earlier nuke
    assert (t.loc["N-GRP", "nuke_code"], t.loc["N-GRP", "nuked"], t.loc["N-GRP", "nuke_reason"]) == (2, True, "bad.ts")
    assert (t.loc["U-GRP", "nuke_code"], t.loc["U-GRP", "nuked"]) == (1, False)
    assert t.loc["N-GRP", "size_mb"] == 1500.0 and np.isnan(t.loc["J-GRP", "size_mb"])
    assert t.loc["J-GRP", "n_files"] == 12
    assert rep["titles_nuke_status_from_later_copy"] == 2
    assert rep["size_values_unparsed"] == {"2CD": 1} and rep["rows_with_unparsed_files"] == 0


def test_unreadable_file_error_and_skip(tmp_path):
    raw = tmp_path / "raw"
    write_dump(raw, 1583056800, [line("A-G")])
    bad = raw / "dumps" / "1583143000" / "1583143200_predb_dump.csv.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not gzip at all")
    with pytest.raises(IngestError, match="1583143200_predb_dump.csv.gz.*--skip-unreadable"):
        _run(tmp_path)
    rep = _run(tmp_path, skip_unreadable=True)
    assert rep["files_unreadable"] == ["dumps/1583143000/1583143200_predb_dump.csv.gz"]
    assert rep["rows_kept"] == 1
    d = pd.read_parquet(tmp_path / "out" / "dumps.parquet")
    assert "unreadable" in set(d["status"])


def test_stray_carriage_return_uses_exact_path(tmp_path):
    raw = tmp_path / "raw"
    weird = line("Has\rCR-GRP")
    write_dump(raw, 1583056800, [line("A-GRP"), weird, line("B-GRP")])
    rep = _run(tmp_path)
    assert rep["lines_read"] == 3
    assert rep["rows_kept"] == 3
    assert rep["files_slow_path"]


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(IngestError, match="no \\*_predb_dump.csv.gz"):
        _run(tmp_path)


def test_multimember_gzip(tmp_path):
    raw = tmp_path / "raw"
    p = write_dump(raw, 1583056800, [line("A-G")])
    p.write_bytes(gzip.compress(line("A-G") + b"\r\n", mtime=0) + gzip.compress(line("B-G") + b"\r\n", mtime=0))
    rep = _run(tmp_path)
    assert rep["rows_kept"] == 2 and rep["files_truncated_or_corrupt"] == []


def _real_dumps():
    sh = shared_dir()
    if sh is None:
        pytest.skip("../shared is absent")
    d = default_dumps_dir()
    if not (d / "dumps").is_dir():
        pytest.skip("the nZEDb dumps are not in ../shared")
    return d


@pytest.mark.shared
def test_real_dumps_subset(tmp_path):
    d = _real_dumps()
    dumps = nzedb.list_dumps(d)[:40]
    res = ingest.read_and_clean(dumps)
    rel, _, _, rep = ingest.ingest_tables(res, dumps)
    # independent count with a plain split loop
    n_lines = 0
    titles = set()
    for df in dumps:
        for ln in gzip.decompress(df.path.read_bytes()).split(b"\n"):
            if not ln:
                continue
            n_lines += 1
            parts = ln.rstrip(b"\r").split(b"\t\t")
            assert len(parts) == 12
            titles.add(parts[0][1:-1].replace(b"\\'", b"'").decode("utf-8", "replace").lower())
    assert rep["lines_read"] == n_lines
    assert rep["skipped_total"] == 0
    assert rel.num_rows == len(titles)
    assert rep["accounting_balances"]


@pytest.mark.shared
def test_real_escaped_quote_lines_kept():
    d = _real_dumps()
    dumps = [x for x in nzedb.list_dumps(d) if x.created_unix in (1535968000 - 1, 1535968000)] or \
        nzedb.list_dumps(d)[30:40]
    res = ingest.read_and_clean(dumps)
    rel, _, _, rep = ingest.ingest_tables(res, dumps)
    esc = 0
    quoted = set()  # independent: titles with an escaped quote, unescaped by a plain split
    for df in dumps:
        raw = gzip.decompress(df.path.read_bytes())
        esc += raw.count(b"\\'")
        for ln in raw.split(b"\n"):
            title = ln.rstrip(b"\r").split(b"\t\t")[0][1:-1]
            if b"\\'" in title:
                quoted.add(title.replace(b"\\'", b"'").decode("utf-8", "replace").lower())
    assert esc > 0 and quoted, "the selected dumps must hold escaped quotes, or this test checks nothing"
    titles = rel.column("title").to_pylist()
    assert not any("\\'" in t for t in titles)
    assert quoted <= {t.lower() for t in titles}
    assert rep["skipped_total"] == 0


def test_dedup_first_exact_on_chunked_keys():
    import numpy as np
    import pyarrow as pa

    from raidstudy.data.ingest import _dedup_first

    key = pa.chunked_array([["a", "b", "a"], [], ["c", "b", "a", "c"]], pa.string())
    is_dup, rep = _dedup_first(key)
    assert is_dup.tolist() == [False, False, True, False, True, True, True]
    assert rep.tolist() == [0, 1, 0, 3, 1, 0, 3]
    e_dup, e_rep = _dedup_first(pa.chunked_array([], pa.string()))
    assert len(e_dup) == 0 and len(e_rep) == 0 and e_rep.dtype == np.int64


def test_first_of_needs_codes_in_order_of_first_occurrence():
    """The first-copy positions come from the order in which Arrow numbers dictionary codes
    (first occurrence), which Arrow does not document: any other numbering is refused."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from raidstudy.data.ingest import _first_of

    keys = pa.array(["b", "a", "b", "c", "a", "c", "d"])
    enc = pc.dictionary_encode(keys)
    assert enc.dictionary.to_pylist() == ["b", "a", "c", "d"]
    assert _first_of(enc.indices.to_numpy(), 4).tolist() == [0, 1, 0, 3, 1, 3, 6]
    assert _first_of(np.zeros(0, np.int32), 0).tolist() == []
    for codes in ([1, 0, 1], [0, 2, 1], [0, 0, 1]):
        with pytest.raises(AssertionError, match="order of first occurrence"):
            _first_of(np.array(codes), 3)


def test_progress_bar_only_on_a_terminal_and_not_when_quiet(monkeypatch, tmp_path):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert ingest._progress(3, "reading dumps", quiet=False) is None  # not a terminal
    monkeypatch.setattr(sys, "stderr", Tty())
    assert ingest._progress(3, "reading dumps", quiet=True) is None
    bar = ingest._progress(3, "reading dumps", quiet=False)
    bar.update(3)
    assert bar.n == 3
    bar.close()
    assert "reading dumps:" in sys.stderr.getvalue() and "0/3" in sys.stderr.getvalue()


def test_part_ids_equal_keys_share_a_part():
    import numpy as np
    import pyarrow as pa

    from raidstudy.data.ingest import _N_PARTS, _part_ids

    keys = ["a-grp", "", "b", "a-grp", "", "\u00e9t\u00e9-x", "b"] + [f"title.{'x' * (i % 13)}-grp{i}" for i in range(500)]
    for arr in (pa.array(keys), pa.array(keys).slice(1, 6), pa.array([""] * 3), pa.array([], pa.string())):
        pid = _part_ids(arr)
        assert pid.dtype == np.uint8 and len(pid) == len(arr) and (pid < _N_PARTS).all()
        by_key = {}
        for k, p in zip(arr.to_pylist(), pid.tolist()):
            assert by_key.setdefault(k, p) == p
    assert len(set(_part_ids(pa.array(keys)).tolist())) > _N_PARTS // 2  # spread over the parts


def test_arrow_default_pool_is_restored(tmp_path):
    import pyarrow as pa

    before = pa.default_memory_pool().backend_name
    write_dump(tmp_path / "raw", 1583056800, [line("A.Title-GRP")])
    _run(tmp_path)
    assert pa.default_memory_pool().backend_name == before
