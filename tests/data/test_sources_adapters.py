"""predb-style JSON records and the generic indicator CSV."""
from __future__ import annotations

import json

import numpy as np
import pytest

from raidstudy.errors import DataError, ParameterError
from raidstudy.data.releases import RELEASES_SCHEMA
from raidstudy.data.sources.generic_csv import read_indicator_csv
from raidstudy.data.sources.predb_json import read_predb_json

OVH = [
    {"name": "Some.Show.S01E02.720p.WEB.h264-GRP", "team": "GRP", "cat": "TV-HD", "genre": "", "size": 812.5,
     "files": 17, "preAt": 1598400000, "nuke": None},
    {"name": "Bad.Movie.2020.1080p.BluRay.x264-OTHER", "team": "OTHER", "cat": "X264", "genre": "", "size": 0,
     "files": 0, "preAt": 1598403600, "nuke": {"type": "nuke", "reason": "mislabeled"}},
    {"name": "some.show.s01e02.720p.web.h264-grp", "team": "GRP", "cat": "TV-HD", "preAt": 1598407200},
    {"name": "", "team": "X", "cat": "TV", "preAt": 1598400000},
    {"name": "No.Time-GRP", "team": "GRP", "cat": "TV", "preAt": "soon"},
]
NET = [
    {"release": "Artist-Album-WEB-2020-MUSICGRP", "group": "MUSICGRP", "section": "MP3",
     "pretime": "2020-08-26 01:02:03", "status": 0},
    {"release": "Game.Name-CODEX", "group": "CODEX", "section": "GAMES", "pretime": 1598400000, "status": 1},
]


def test_predb_ovh(tmp_path):
    p = tmp_path / "ovh.json"
    p.write_text(json.dumps({"status": "success", "data": {"rows": OVH}}))
    df = read_predb_json(p)
    assert list(df.columns) == [f.name for f in RELEASES_SCHEMA]
    assert len(df) == 2 and df.attrs["duplicates"] == 1
    assert df.attrs["skipped"] == {"not_an_object": 0, "no_title": 1, "bad_time": 1}
    assert df.attrs["examples"]["bad_time"]
    r = df.set_index("title")
    assert r.loc["Some.Show.S01E02.720p.WEB.h264-GRP", "family"] == "tv"
    assert r.loc["Bad.Movie.2020.1080p.BluRay.x264-OTHER", "nuked"]
    assert r.loc["Bad.Movie.2020.1080p.BluRay.x264-OTHER", "nuke_reason"] == "mislabeled"
    assert str(r.loc["Some.Show.S01E02.720p.WEB.h264-GRP", "pre_time"]) == "2020-08-26 00:00:00+00:00"
    assert set(df["feed"]) == {"predb.ovh"}


def test_predb_net_jsonl_and_list(tmp_path):
    p = tmp_path / "net.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in NET) + "\n")
    df = read_predb_json(p)
    assert list(df["feed"]) == ["predb.net", "predb.net"]
    assert list(df["family"]) == ["music", "games"]
    assert list(df["nuked"]) == [False, True]
    assert str(df["pre_time"].iloc[0]) == "2020-08-26 01:02:03+00:00"
    q = tmp_path / "net.json"
    q.write_text(json.dumps(NET))
    assert read_predb_json(q, feed="mine")["feed"].tolist() == ["mine", "mine"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="JSON"):
        read_predb_json(bad)


def _csv(tmp_path, text, name="ind.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_generic_csv_daily_with_gaps(tmp_path):
    s = read_indicator_csv(_csv(tmp_path, "date,value\n2020-01-01,5\n2020-01-02,6\n2020-01-05,\n2020-01-06,9\n"))
    assert s.index.freq == "D" and len(s) == 6 and s.index.name == "date"
    assert np.isnan(s.loc["2020-01-03"]) and np.isnan(s.loc["2020-01-05"]) and s.loc["2020-01-06"] == 9
    assert s.attrs["provenance"]["freq"] == "D"


@pytest.mark.parametrize("dates,freq,n", [
    (["2020-01-06", "2020-01-13", "2020-01-27"], "W-MON", 4),
    (["2020-01-01", "2020-02-01", "2020-04-01"], "MS", 4),
    (["2020-01-31", "2020-02-29", "2020-04-30"], "ME", 4),
    (["2018-01-01", "2019-01-01", "2021-01-01"], "YS-JAN", 4),
])
def test_generic_csv_frequencies(tmp_path, dates, freq, n):
    s = read_indicator_csv(_csv(tmp_path, "date,value\n" + "".join(f"{d},1\n" for d in dates)))
    assert s.index.freqstr == freq and len(s) == n and s.isna().sum() == 1


def test_generic_csv_series_and_errors(tmp_path):
    p = _csv(tmp_path, "Date, Value, Series\n2020-01-01,1,a\n2020-01-02,2,a\n2020-01-01,7,b\n")
    with pytest.raises(ParameterError, match="'a', 'b'"):
        read_indicator_csv(p)
    b = read_indicator_csv(p, series="b")
    assert b.name == "b" and b.iloc[0] == 7
    with pytest.raises(ParameterError):
        read_indicator_csv(p, series="c")
    with pytest.raises(DataError, match="lacks column.*value"):
        read_indicator_csv(_csv(tmp_path, "date,count\n2020-01-01,1\n"))
    with pytest.raises(DataError, match="line 3.*2020-13-01"):
        read_indicator_csv(_csv(tmp_path, "date,value\n2020-01-01,1\n2020-13-01,2\n"))
    with pytest.raises(DataError, match="duplicate date"):
        read_indicator_csv(_csv(tmp_path, "date,value\n2020-01-01,1\n2020-01-01,2\n"))
    with pytest.raises(DataError, match="line 2.*not a number"):
        read_indicator_csv(_csv(tmp_path, "date,value\n2020-01-01,abc\n"))
    with pytest.raises(DataError, match="not found"):
        read_indicator_csv(tmp_path / "missing.csv")
    with pytest.raises(ParameterError):
        read_indicator_csv(_csv(tmp_path, "date,value\n2020-01-01,1\n"), series="x")
