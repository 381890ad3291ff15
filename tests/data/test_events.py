"""Tests for the event catalogue (data/events.csv) and raidstudy.data.events."""
from __future__ import annotations

import csv
import doctest
import io
from pathlib import Path

import pandas as pd
import pytest

import raidstudy.data.events as events_mod
from raidstudy.errors import DataError, ParameterError
from raidstudy.data.events import (
    DATE_PRECISIONS,
    EVENT_COLUMNS,
    NZEDB_WINDOW,
    STATUSES,
    TARGET_TYPES,
    Event,
    default_events_path,
    format_events_table,
    get_event,
    load_events,
    within,
    write_events,
)

HEADER = ",".join(EVENT_COLUMNS)
GOOD_ROWS = [
    "alpha_2020,2020-08-25,day,Alpha raid,scene_group;topsite,US;SE,Something happened.,Some paper (2020-08-26),confirmed",
    "beta_2021,2021-03-01,month,Beta takedown,torrent_site,GB,Another thing.,Other paper (2021-03),approximate",
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# --- the bundled catalogue --------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return load_events()


def test_bundled_catalogue_loads_with_schema(bundled):
    assert tuple(bundled.columns[: len(EVENT_COLUMNS)]) == EVENT_COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(bundled["date"])
    assert len(bundled) >= 20


def test_bundled_ids_unique_and_snake_case(bundled):
    assert bundled["event_id"].is_unique
    assert bundled["event_id"].str.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*").all()


def test_sparks_2020_is_day_precise():
    ev = get_event("sparks_2020")
    assert ev.date == pd.Timestamp("2020-08-25")
    assert ev.precision == "day"
    assert ev.status == "confirmed"
    assert "scene_group" in ev.target_type and "US" in ev.jurisdiction


@pytest.mark.parametrize(
    "event_id, date",
    [("zlibrary_2022", "2022-11-03"), ("rarbg_2023", "2023-05-31"), ("megaupload_2012", "2012-01-19")],
)
def test_known_dates(event_id, date):
    assert get_event(event_id).date == pd.Timestamp(date)


def test_every_row_has_a_source_and_description(bundled):
    for col in ("source", "description", "name"):
        assert (bundled[col].str.strip().str.len() > 10).all(), col
    # a source names at least one dated publication
    assert bundled["source"].str.contains(r"\([^)]*\b(?:19|20)\d{2}").all()


def test_bundled_vocabularies(bundled):
    assert set(bundled["date_precision"]) <= set(DATE_PRECISIONS)
    assert set(bundled["status"]) <= set(STATUSES)
    for tt in bundled["target_type"]:
        assert tt and set(tt) <= set(TARGET_TYPES)
    for j in bundled["jurisdiction"]:
        assert j and all(len(c) == 2 and c.isupper() and c != "UK" for c in j)
    months = bundled[bundled["date_precision"] == "month"]
    assert (months["date"].dt.day == 1).all()


def test_bundled_file_is_canonical_utf8_sorted():
    path = default_events_path()
    text = path.read_bytes().decode("utf-8")
    assert "\r" not in text and text.endswith("\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    keys = [(r["date"], r["event_id"]) for r in rows]
    assert keys == sorted(keys)
    # re-serialising gives the same bytes: order, quoting and line ends are deterministic
    assert events_mod._to_csv_text(load_events(path)) == text


def test_catalogue_has_events_inside_nzedb_window(bundled):
    inside = within(bundled, *NZEDB_WINDOW)
    assert len(inside) >= 5
    assert {"sparks_2020", "zlibrary_2022", "evo_2023", "rarbg_2023"} <= set(inside["event_id"])
    assert "megaupload_2012" not in set(inside["event_id"])
    assert "fmovies_2024" not in set(inside["event_id"])  # after the dumps end


# --- within -----------------------------------------------------------------------------


def test_within_bounds_inclusive_and_margins(bundled):
    on_day = within(bundled, "2020-08-25", "2020-08-25")
    assert list(on_day["event_id"]) == ["sparks_2020"]
    assert within(bundled, pd.Timestamp("2020-08-26"), "2020-08-27").empty
    assert "sparks_2020" not in set(within(bundled, "2020-08-01", "2020-09-01", min_post_days=30)["event_id"])
    assert "sparks_2020" in set(within(bundled, "2020-08-01", "2020-09-30", min_post_days=30)["event_id"])


def test_within_rejects_bad_window(bundled):
    with pytest.raises(ParameterError, match="starts after it ends"):
        within(bundled, "2024-01-01", "2020-01-01")
    with pytest.raises(ParameterError, match="not a date"):
        within(bundled, "someday", "2020-01-01")
    with pytest.raises(ParameterError, match="min_pre_days"):
        within(bundled, "2020-01-01", "2021-01-01", min_pre_days=-1)


# --- get_event / Event ------------------------------------------------------------------


def test_unknown_event_id_lists_accepted_ids(bundled):
    with pytest.raises(ParameterError) as info:
        get_event("sparks_2021")
    err = info.value
    assert err.name == "event_id" and err.value == "sparks_2021"
    assert "unknown event id" in str(err)
    assert set(err.accepted) == set(bundled["event_id"])
    assert "'sparks_2020'" in str(err)
    assert "raidstudy events" in str(err)


def test_event_is_frozen_and_to_dict_is_plain(tmp_path):
    ev = get_event("alpha_2020", path=write_csv(tmp_path, GOOD_ROWS))
    assert isinstance(ev, Event)
    with pytest.raises(Exception):
        ev.id = "x"  # type: ignore[misc]
    d = ev.to_dict()
    assert d == {
        "id": "alpha_2020", "date": "2020-08-25", "precision": "day", "name": "Alpha raid",
        "target_type": ["scene_group", "topsite"], "jurisdiction": ["US", "SE"],
        "description": "Something happened.", "source": "Some paper (2020-08-26)", "status": "confirmed",
    }


def test_event_can_be_built_by_keyword_for_user_supplied_events():
    # validate_parameters builds an Event for a date outside the catalogue
    ev = Event(id="mine", date=pd.Timestamp("2021-01-01"), precision="day", name="mine",
               target_type=(), jurisdiction=(), description="user-supplied event",
               source="user-supplied", status="user-supplied")
    assert ev.to_dict()["date"] == "2021-01-01"


# --- bad catalogues -----------------------------------------------------------------------


def test_loads_good_tmp_catalogue_sorted(tmp_path):
    df = load_events(write_csv(tmp_path, list(reversed(GOOD_ROWS))))
    assert list(df["event_id"]) == ["alpha_2020", "beta_2021"]
    assert df.loc[0, "target_type"] == ("scene_group", "topsite")


def test_duplicate_id(tmp_path):
    path = write_csv(tmp_path, GOOD_ROWS + [GOOD_ROWS[0].replace("2020-08-25", "2020-09-01")])
    with pytest.raises(DataError) as info:
        load_events(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "row 3" in msg and "'event_id'" in msg and "duplicate id 'alpha_2020'" in msg
    assert "first on row 1" in msg and "unique" in msg


def test_bad_date(tmp_path):
    path = write_csv(tmp_path, [GOOD_ROWS[0].replace("2020-08-25", "2020-13-45"), GOOD_ROWS[1]])
    with pytest.raises(DataError) as info:
        load_events(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "row 1 (event_id 'alpha_2020'), column 'date'" in msg
    assert "'2020-13-45'" in msg and "YYYY-MM-DD" in msg


@pytest.mark.parametrize("bad", ["25/08/2020", "2020-8-25", "Aug 2020"])
def test_date_must_be_iso(tmp_path, bad):
    path = write_csv(tmp_path, [GOOD_ROWS[0].replace("2020-08-25", bad)])
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        load_events(path)


def test_bad_precision(tmp_path):
    path = write_csv(tmp_path, [GOOD_ROWS[0].replace(",day,", ",week,")])
    with pytest.raises(DataError) as info:
        load_events(path)
    msg = str(info.value)
    assert "column 'date_precision'" in msg and "'week'" in msg
    assert "day, approx, month" in msg


def test_month_precision_needs_first_of_month(tmp_path):
    path = write_csv(tmp_path, [GOOD_ROWS[1].replace("2021-03-01", "2021-03-15")])
    with pytest.raises(DataError, match=r"precision 'month' but is not the first of the month; write 2021-03-01"):
        load_events(path)


def test_missing_column(tmp_path):
    header = HEADER.replace(",status", "")
    rows = [r.rsplit(",", 1)[0] for r in GOOD_ROWS]
    path = write_csv(tmp_path, rows, header=header)
    with pytest.raises(DataError) as info:
        load_events(path)
    msg = str(info.value)
    assert str(path) in msg and "missing column(s) 'status'" in msg
    assert "event_id, date, date_precision" in msg  # tells the full header


def test_bad_target_type_and_jurisdiction(tmp_path):
    row = GOOD_ROWS[0].replace("scene_group;topsite", "scene_group;warez_board").replace("US;SE", "UK;usa")
    with pytest.raises(DataError) as info:
        load_events(write_csv(tmp_path, [row]))
    msg = str(info.value)
    assert "column 'target_type'" in msg and "'warez_board'" in msg and "scene_group" in msg
    assert "'UK' is not an ISO 3166-1 alpha-2 code; write 'GB'" in msg
    assert "'usa'" in msg
    assert "4 problem(s)" not in msg and "3 problem(s)" in msg


def test_empty_value_and_bad_status(tmp_path):
    row = GOOD_ROWS[0].replace("Some paper (2020-08-26)", "").replace(",confirmed", ",probably")
    with pytest.raises(DataError) as info:
        load_events(write_csv(tmp_path, [row]))
    msg = str(info.value)
    assert "column 'source': empty value" in msg
    assert "column 'status'" in msg and "'probably'" in msg


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_events(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes((HEADER + "\n" + GOOD_ROWS[0].replace("Alpha", "Zone-Téléchargement") + "\n").encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_events(bad)


# --- formatting and writing -----------------------------------------------------------------


def test_format_events_table(bundled):
    text = format_events_table(bundled)
    lines = text.splitlines()
    assert len(lines) == len(bundled) + 1
    assert lines[0].split() == ["event_id", "date", "precision", "name"]
    sparks = next(line for line in lines if line.startswith("sparks_2020 "))
    assert sparks.split()[1:3] == ["2020-08-25", "day"]
    assert format_events_table(bundled.iloc[:0]) == "(no events)"


def test_write_events_roundtrip_and_refuses_invalid(tmp_path):
    src = load_events(write_csv(tmp_path, GOOD_ROWS, name="in.csv"))
    out = write_events(src, tmp_path / "out.csv")
    again = load_events(out)
    pd.testing.assert_frame_equal(src, again)
    bad = src.copy()
    bad.loc[1, "event_id"] = "alpha_2020"
    target = tmp_path / "bad.csv"
    with pytest.raises(DataError, match="duplicate id"):
        write_events(bad, target)
    assert not target.exists()


def test_docstring_examples_run():
    result = doctest.testmod(events_mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0
