"""No silent wrong input in the data readers (issue 14, part 2): each bad input is refused
with one line naming the file, the value and what to do, or counted and reported."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from raidstudy.data import ingest
from raidstudy.data.sources import generic_csv, predb_json
from raidstudy.errors import DataError

from _datafixtures import line, write_dump


def _ingest(tmp_path, **kw):
    return ingest.ingest(tmp_path / "raw", tmp_path / "out", quiet=True, **kw)


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity"])
def test_csv_infinite_value_refused_with_line_and_column(tmp_path, value):
    p = tmp_path / "ind.csv"
    p.write_text(f"date,value\n2020-01-01,1\n2020-01-02,{value}\n2020-01-03,3\n")
    with pytest.raises(DataError) as err:
        generic_csv.read_indicator_csv(p)
    msg = str(err.value)
    assert "ind.csv line 3" in msg and "column value" in msg and repr(value) in msg
    assert "\n" not in msg


def test_csv_empty_value_still_missing(tmp_path):
    p = tmp_path / "ind.csv"
    p.write_text("date,value\n2020-01-01,1\n2020-01-02,\n2020-01-03,NA\n2020-01-04,4\n")
    s = generic_csv.read_indicator_csv(p)
    assert int(s.isna().sum()) == 2


def test_zero_byte_dump_is_skipped_with_reason(tmp_path):
    raw = tmp_path / "raw"
    write_dump(raw, 1583056800, [line("A-G"), line("B-G")])
    empty = raw / "dumps" / "1583143000" / "1583143200_predb_dump.csv.gz"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    rep = _ingest(tmp_path)  # not an error: skipped and reported
    assert rep["rows_kept"] == 2 and rep["accounting_balances"]
    assert [f["origin"] for f in rep["files_skipped"]] == ["dumps/1583143000/1583143200_predb_dump.csv.gz"]
    assert "0-byte" in rep["files_skipped"][0]["reason"]
    per_file = {f["origin"]: f["status"] for f in rep["per_file"]}
    assert per_file["dumps/1583143000/1583143200_predb_dump.csv.gz"] == "skipped"
    assert per_file["dumps/1583056000/1583056800_predb_dump.csv.gz"] == "ok"
    # its day counts as unread in the coverage input, never as a collected day with no releases
    d = pd.read_parquet(tmp_path / "out" / "dumps.parquet")
    assert d.set_index("origin").loc["dumps/1583143000/1583143200_predb_dump.csv.gz", "status"] == "unreadable"
    on_disk = json.loads((tmp_path / "out" / ingest.REPORT_FILE).read_text())
    assert on_disk["files_skipped"] == rep["files_skipped"]
    assert "SKIPPED dumps/1583143000/1583143200_predb_dump.csv.gz: 0-byte" in ingest.summarise(rep)


def test_unknown_nuke_codes_counted_not_mapped(tmp_path):
    raw = tmp_path / "raw"
    write_dump(raw, 1583056800, [line("A-G", nuked="2"), line("B-G", nuked="7"), line("C-G", nuked="x"),
                                 line("D-G", nuked="7"), line("E-G", nuked="0")])
    rep = _ingest(tmp_path)
    assert rep["rows_with_unknown_nuke"] == 3
    assert rep["nuke_values_unknown"] == {"7": 2, "x": 1}
    t = pq.read_table(tmp_path / "out" / "releases.parquet").to_pandas().set_index("title")
    assert t.loc["B-G", "nuke_code"] == 7 and not t.loc["B-G", "nuked"]  # kept as read, not nuked
    assert t.loc["C-G", "nuke_code"] == -1 and not t.loc["C-G", "nuked"]
    assert t.loc["A-G", "nuked"]
    assert "outside nZEDb's codes 0-5" in ingest.summarise(rep)


def test_known_nuke_codes_report_nothing(tmp_path):
    write_dump(tmp_path / "raw", 1583056800, [line(f"T{i}-G", nuked=str(i)) for i in range(6)])
    rep = _ingest(tmp_path)
    assert rep["rows_with_unknown_nuke"] == 0 and rep["nuke_values_unknown"] == {}


def test_predb_json_without_usable_record_is_an_error(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps([{"name": "", "preAt": 1598400000}, {"name": "A-G"}, 3]))
    with pytest.raises(DataError) as err:
        predb_json.read_predb_json(p)
    msg = str(err.value)
    assert "x.json" in msg and "none of its 3 records" in msg
    assert "no_title 1" in msg and "bad_time 1" in msg and "not_an_object 1" in msg


def test_predb_json_unknown_nuke_types_counted(tmp_path):
    p = tmp_path / "x.json"
    recs = [
        {"name": "A-G", "preAt": 1598400000, "nuke": {"type": "nuke"}},
        {"name": "B-G", "preAt": 1598400000, "nuke": {"type": "weirdnuke"}},
        {"name": "C-G", "preAt": 1598400000, "nuke": "strange"},
        {"release": "D-G", "pretime": 1598400000, "status": 9},
        {"release": "E-G", "pretime": 1598400000, "status": "nuked"},
    ]
    p.write_text(json.dumps(recs))
    with pytest.warns(UserWarning, match="3 record"):
        df = predb_json.read_predb_json(p)
    assert df.attrs["unknown_nuke"] == {"nuke.type 'weirdnuke'": 1, "nuke 'strange'": 1, "status 9": 1}
    codes = df.set_index("title")["nuke_code"]
    assert codes["B-G"] == -1 and codes["C-G"] == -1 and codes["D-G"] == -1
    assert codes["A-G"] == 2 and codes["E-G"] == 2
