"""The event catalogue: dated enforcement actions (raids, takedowns, blocking orders).

The catalogue lives in ``data/events.csv`` (UTF-8, one row per event, sorted by date
then id) and is described in ``data/events.md``. :func:`load_events` reads and
validates it, :func:`get_event` returns one event as an :class:`Event`,
:func:`within` keeps the events inside a data window and
:func:`format_events_table` renders the listing that ``raidstudy events`` prints.

Columns (:data:`EVENT_COLUMNS`):

``event_id``
    Lowercase snake case, unique, e.g. ``sparks_2020``.
``date``
    ``YYYY-MM-DD``. For ``month`` precision, the first day of the month.
``date_precision``
    One of :data:`DATE_PRECISIONS`: ``day`` (the day of the action),
    ``approx`` (within a few days; see the description) or ``month``
    (only the month is known).
``name``
    A short human-readable name.
``target_type``
    Semicolon-separated values from :data:`TARGET_TYPES`.
``jurisdiction``
    Semicolon-separated ISO 3166-1 alpha-2 codes (``GB``, not ``UK``).
``description``
    What happened, in a few sentences.
``source``
    Public source(s): publication, title and date.
``status``
    One of :data:`STATUSES`: ``confirmed`` (a public source states the date at
    the stated precision), ``approximate`` (the event is documented but its date
    at that precision is inferred) or ``unverified`` (not yet checked).

Whether an event falls inside a data window is computed, not stored: see
:func:`within` and :data:`NZEDB_WINDOW`.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from raidstudy import paths
from raidstudy.io import atomic_path
from raidstudy.errors import DataError, ParameterError

__all__ = [
    "EVENT_COLUMNS",
    "TARGET_TYPES",
    "DATE_PRECISIONS",
    "STATUSES",
    "NZEDB_WINDOW",
    "Event",
    "default_events_path",
    "load_events",
    "get_event",
    "within",
    "format_events_table",
    "write_events",
]

#: The catalogue's columns, in file order.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "date",
    "date_precision",
    "name",
    "target_type",
    "jurisdiction",
    "description",
    "source",
    "status",
)

#: The controlled vocabulary of ``target_type`` values, with their meaning.
TARGET_TYPES: dict[str, str] = {
    "scene_group": "a Scene release group (publishes first, to topsites)",
    "topsite": "a Scene topsite: a private high-speed FTP server that distributes releases",
    "p2p_release_group": "a release group that publishes on P2P/torrent sites rather than in the Scene",
    "p2p_network": "a peer-to-peer file-sharing network or its hubs (e.g. Direct Connect)",
    "torrent_site": "a public BitTorrent index or tracker",
    "private_tracker": "an invitation-only BitTorrent tracker",
    "cyberlocker": "a file-hosting service used to share pirated files",
    "ddl_site": "a direct-download link site (links to files on cyberlockers)",
    "streaming_link_site": "a site that indexes links to streams hosted elsewhere",
    "streaming_site": "a free pirate video streaming site or network",
    "subscription_streaming": "a paid pirate streaming service",
    "iptv_service": "a pirate IPTV service or the platform behind resellers",
    "shadow_library": "a pirate library of e-books and articles",
    "site_block": "a court-ordered ISP block of several piracy sites",
    "torrent_site_block": "a court-ordered ISP block of a torrent site",
}

#: The accepted ``date_precision`` values.
DATE_PRECISIONS: tuple[str, ...] = ("day", "approx", "month")

#: The accepted ``status`` values.
STATUSES: tuple[str, ...] = ("confirmed", "approximate", "unverified")

#: The span of the bundled nZEDb pre-database dumps (first and last day, inclusive).
NZEDB_WINDOW: tuple[str, str] = ("2018-08-01", "2024-05-02")

_ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO2_RE = re.compile(r"^[A-Z]{2}$")
#: Codes people often write that are not ISO 3166-1 alpha-2, with the right code.
_NOT_ISO2 = {"UK": "GB", "EL": "GR"}

_HINT = "see data/events.csv or `raidstudy events`"


def default_events_path() -> Path:
    """The bundled catalogue, ``data/events.csv`` under the repository root."""
    return paths.data_dir() / "events.csv"


@dataclass(frozen=True)
class Event:
    """One event of the catalogue.

    Attributes
    ----------
    id : str
        The event id, e.g. ``"sparks_2020"``.
    date : pandas.Timestamp
        The event date (midnight, no time zone).
    precision : str
        ``"day"``, ``"approx"`` or ``"month"`` (see :data:`DATE_PRECISIONS`).
    name, description, source, status : str
        As in the catalogue.
    target_type, jurisdiction : tuple of str
        The parsed semicolon lists.

    Examples
    --------
    >>> from raidstudy.data.events import get_event
    >>> ev = get_event("sparks_2020")
    >>> ev.date.date(), ev.precision
    (datetime.date(2020, 8, 25), 'day')
    >>> "scene_group" in ev.target_type
    True
    >>> ev.to_dict()["date"]
    '2020-08-25'
    """

    id: str
    date: pd.Timestamp
    precision: str
    name: str
    target_type: tuple[str, ...] = field(default_factory=tuple)
    jurisdiction: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    source: str = ""
    status: str = "unverified"

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON types (date as ``YYYY-MM-DD``, lists for tuples)."""
        return {
            "id": self.id,
            "date": pd.Timestamp(self.date).date().isoformat(),
            "precision": self.precision,
            "name": self.name,
            "target_type": list(self.target_type),
            "jurisdiction": list(self.jurisdiction),
            "description": self.description,
            "source": self.source,
            "status": self.status,
        }


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in str(value).split(";") if v.strip())


def _read_raw(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(
            f"event catalogue {path} not found; pass path= to an events CSV, "
            f"or restore data/events.csv from the repository"
        )
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"event catalogue {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        return pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(
            f"event catalogue {path} cannot be parsed as CSV ({exc}); "
            f"check the quoting: fields with commas or quotes must be in double quotes"
        ) from None


def _validate(df: pd.DataFrame, path: Path) -> list[str]:
    """All problems in the raw catalogue, each naming row, column, value and fix."""
    problems: list[str] = []
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        problems.append(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; the header must hold "
            f"{', '.join(EVENT_COLUMNS)}"
        )
        return problems

    def where(i: int, col: str) -> str:
        # Row numbers are 1-based data rows; the file line is one more (the header).
        eid = df.at[i, "event_id"]
        who = f" (event_id {eid!r})" if eid and col != "event_id" else ""
        return f"row {i + 1}{who}, column {col!r}"

    seen: dict[str, int] = {}
    for i in range(len(df)):
        for col in EVENT_COLUMNS:
            if not str(df.at[i, col]).strip():
                problems.append(f"{where(i, col)}: empty value; every column is required")

        eid = str(df.at[i, "event_id"]).strip()
        if eid and not _ID_RE.match(eid):
            problems.append(
                f"{where(i, 'event_id')}: value {eid!r} is not lowercase snake case; "
                f"use letters, digits and single underscores, e.g. 'sparks_2020'"
            )
        if eid in seen:
            problems.append(
                f"{where(i, 'event_id')}: duplicate id {eid!r} (first on row {seen[eid] + 1}); "
                f"ids must be unique, rename one of them"
            )
        elif eid:
            seen[eid] = i

        d = str(df.at[i, "date"]).strip()
        ts = None
        if d:
            try:
                ts = pd.Timestamp(d) if _DATE_RE.match(d) else None
            except ValueError:
                ts = None
            if ts is None:
                problems.append(
                    f"{where(i, 'date')}: value {d!r} is not a date in YYYY-MM-DD form; "
                    f"write it as e.g. 2020-08-25"
                )

        prec = str(df.at[i, "date_precision"]).strip()
        if prec and prec not in DATE_PRECISIONS:
            problems.append(
                f"{where(i, 'date_precision')}: value {prec!r} is not one of "
                f"{', '.join(DATE_PRECISIONS)}; use 'approx' for a date known within a few days"
            )
        if prec == "month" and ts is not None and ts.day != 1:
            problems.append(
                f"{where(i, 'date')}: value {d!r} has precision 'month' but is not the first of "
                f"the month; write {ts.strftime('%Y-%m')}-01 or use precision 'approx'"
            )

        for t in _split(df.at[i, "target_type"]):
            if t not in TARGET_TYPES:
                problems.append(
                    f"{where(i, 'target_type')}: value {t!r} is not in the vocabulary "
                    f"({', '.join(TARGET_TYPES)}); use one of these (documented in data/events.md), "
                    f"separated by ';'"
                )

        for j in _split(df.at[i, "jurisdiction"]):
            if j in _NOT_ISO2:
                problems.append(
                    f"{where(i, 'jurisdiction')}: value {j!r} is not an ISO 3166-1 alpha-2 code; "
                    f"write {_NOT_ISO2[j]!r}"
                )
            elif not _ISO2_RE.match(j):
                problems.append(
                    f"{where(i, 'jurisdiction')}: value {j!r} is not a two-letter upper-case "
                    f"ISO 3166-1 code; write e.g. 'US;SE'"
                )

        st = str(df.at[i, "status"]).strip()
        if st and st not in STATUSES:
            problems.append(
                f"{where(i, 'status')}: value {st!r} is not one of {', '.join(STATUSES)}"
            )
    return problems


def load_events(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and validate the event catalogue.

    Parameters
    ----------
    path : str or path-like, optional
        An events CSV; default ``data/events.csv`` (:func:`default_events_path`).

    Returns
    -------
    pandas.DataFrame
        One row per event, columns :data:`EVENT_COLUMNS` in that order (extra
        columns in the file are kept after them), sorted by date then id, with a
        fresh ``RangeIndex``. ``date`` is ``datetime64``; ``target_type`` and
        ``jurisdiction`` are tuples of strings; the other columns are strings.

    Raises
    ------
    raidstudy.errors.DataError
        If the file is missing or unreadable, or any row breaks the schema: a
        missing column, an empty value, a duplicate or malformed id, a date that
        is not ``YYYY-MM-DD``, a precision, target type, jurisdiction or status
        outside its vocabulary. The message names the file, then each problem's
        row, column and value and how to fix it.

    Examples
    --------
    >>> from raidstudy.data.events import load_events
    >>> ev = load_events()
    >>> len(ev) >= 20 and ev["event_id"].is_unique
    True
    >>> row = ev.set_index("event_id").loc["sparks_2020"]
    >>> str(row["date"].date()), row["date_precision"]
    ('2020-08-25', 'day')
    """
    path = Path(path) if path is not None else default_events_path()
    df = _read_raw(path)
    problems = _validate(df, path)
    if problems:
        shown = problems[:10]
        more = f"; (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise DataError(
            f"event catalogue {path}: {len(problems)} problem(s): " + "; ".join(shown) + more
        )
    out = df.copy()
    for col in out.columns:
        out[col] = out[col].astype(str).str.strip()
    out["date"] = pd.to_datetime(out["date"], format="%Y-%m-%d")
    out["target_type"] = [_split(v) for v in out["target_type"]]
    out["jurisdiction"] = [_split(v) for v in out["jurisdiction"]]
    extra = [c for c in out.columns if c not in EVENT_COLUMNS]
    out = out[list(EVENT_COLUMNS) + extra]
    return out.sort_values(["date", "event_id"], kind="mergesort").reset_index(drop=True)


def _row_to_event(row: pd.Series) -> Event:
    return Event(
        id=row["event_id"],
        date=pd.Timestamp(row["date"]),
        precision=row["date_precision"],
        name=row["name"],
        target_type=tuple(row["target_type"]),
        jurisdiction=tuple(row["jurisdiction"]),
        description=row["description"],
        source=row["source"],
        status=row["status"],
    )


def get_event(event_id: str, path: str | os.PathLike | None = None) -> Event:
    """One event of the catalogue.

    Parameters
    ----------
    event_id : str
        The id, e.g. ``"sparks_2020"`` (surrounding spaces are ignored).
    path : str or path-like, optional
        An events CSV; default ``data/events.csv``.

    Returns
    -------
    Event

    Raises
    ------
    raidstudy.errors.ParameterError
        If no event has that id; the message lists the accepted ids.
    raidstudy.errors.DataError
        If the catalogue itself is invalid (see :func:`load_events`).

    Examples
    --------
    >>> from raidstudy.data.events import get_event
    >>> get_event("zlibrary_2022").date.date()
    datetime.date(2022, 11, 3)
    >>> get_event("no_such_event")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    raidstudy.errors.ParameterError: parameter 'event_id' = 'no_such_event': unknown event id; accepted values: ...
    """
    df = load_events(path)
    key = event_id.strip() if isinstance(event_id, str) else event_id
    hit = df[df["event_id"] == key]
    if hit.empty:
        raise ParameterError(
            "event_id", event_id, "unknown event id", accepted=list(df["event_id"]), hint=_HINT
        )
    return _row_to_event(hit.iloc[0])


def _as_timestamp(name: str, value: Any) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = None
    if ts is None or ts is pd.NaT:
        raise ParameterError(name, value, "not a date", hint="give a date such as '2020-08-25'")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def within(
    df: pd.DataFrame,
    start: Any,
    end: Any,
    *,
    min_pre_days: int = 0,
    min_post_days: int = 0,
) -> pd.DataFrame:
    """The events whose date lies inside a data window.

    Parameters
    ----------
    df : pandas.DataFrame
        A catalogue from :func:`load_events`.
    start, end : date-like
        The first and last day of the data (inclusive); strings such as
        ``"2018-08-01"`` or timestamps.
    min_pre_days, min_post_days : int, default 0
        Require at least this many days of data before / after the event date,
        i.e. keep events with ``start + min_pre_days <= date <= end - min_post_days``.

    Returns
    -------
    pandas.DataFrame
        The matching rows, same columns and order, with a fresh index.

    Raises
    ------
    raidstudy.errors.ParameterError
        If a bound is not a date, ``start`` is after ``end`` or a margin is negative.

    Examples
    --------
    >>> from raidstudy.data.events import load_events, within, NZEDB_WINDOW
    >>> ev = load_events()
    >>> inside = within(ev, *NZEDB_WINDOW)
    >>> "sparks_2020" in set(inside["event_id"]), "megaupload_2012" in set(inside["event_id"])
    (True, False)
    >>> "rarbg_2023" in set(within(ev, *NZEDB_WINDOW, min_post_days=365)["event_id"])
    False
    """
    lo = _as_timestamp("start", start).normalize()
    hi = _as_timestamp("end", end).normalize()
    if lo > hi:
        raise ParameterError(
            "start", str(lo.date()), f"the window starts after it ends ({hi.date()})",
            hint="swap start and end",
        )
    for name, val in (("min_pre_days", min_pre_days), ("min_post_days", min_post_days)):
        if int(val) < 0:
            raise ParameterError(name, val, "must be zero or positive")
    lo = lo + pd.Timedelta(days=int(min_pre_days))
    hi = hi - pd.Timedelta(days=int(min_post_days))
    dates = pd.to_datetime(df["date"])
    return df[(dates >= lo) & (dates <= hi)].reset_index(drop=True)


def format_events_table(df: pd.DataFrame) -> str:
    """A plain-text listing, one line per event: id, date, precision, name.

    Parameters
    ----------
    df : pandas.DataFrame
        A catalogue from :func:`load_events` (or a subset of it).

    Returns
    -------
    str
        A header line, then one aligned line per event (no trailing newline);
        ``"(no events)"`` for an empty frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from raidstudy.data.events import format_events_table
    >>> df = pd.DataFrame({"event_id": ["sparks_2020", "zlibrary_2022"],
    ...                    "date": pd.to_datetime(["2020-08-25", "2022-11-03"]),
    ...                    "date_precision": ["day", "day"],
    ...                    "name": ["SPARKS raids", "Z-Library takedown"]})
    >>> print(format_events_table(df))
    event_id       date        precision  name
    sparks_2020    2020-08-25  day        SPARKS raids
    zlibrary_2022  2022-11-03  day        Z-Library takedown
    """
    if len(df) == 0:
        return "(no events)"
    rows = [
        (str(r.event_id), pd.Timestamp(r.date).strftime("%Y-%m-%d"), str(r.date_precision), str(r.name))
        for r in df.itertuples(index=False)
    ]
    header = ("event_id", "date", "precision", "name")
    w = [max(len(header[k]), *(len(r[k]) for r in rows)) for k in range(3)]
    lines = [
        f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d}".rstrip()
        for a, b, c, d in [header, *rows]
    ]
    return "\n".join(lines)


def _to_csv_text(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    ordered = df.assign(_d=pd.to_datetime(df["date"])).sort_values(["_d", "event_id"], kind="mergesort")
    for r in ordered.to_dict(orient="records"):
        vals = []
        for col in EVENT_COLUMNS:
            v = r[col]
            if col == "date":
                v = pd.Timestamp(v).strftime("%Y-%m-%d")
            elif isinstance(v, (tuple, list)):
                v = ";".join(v)
            vals.append(str(v))
        writer.writerow(vals)
    return buf.getvalue()


def write_events(df: pd.DataFrame, path: str | os.PathLike | None = None) -> Path:
    """Write a catalogue in canonical form (UTF-8, minimal quoting, sorted by date then id).

    The text is validated with :func:`load_events` before it replaces ``path``;
    on a problem a :class:`~raidstudy.errors.DataError` names the file and
    nothing is written.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns :data:`EVENT_COLUMNS`; list columns may be tuples or ``;`` strings.
    path : str or path-like, optional
        Default ``data/events.csv``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path) if path is not None else default_events_path()
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"cannot write {path}: missing column(s) {', '.join(missing)}")
    with atomic_path(path, suffix=".csv") as tmp:
        tmp.write_text(_to_csv_text(df), encoding="utf-8", newline="")
        try:
            load_events(tmp)
        except DataError as exc:
            raise DataError(str(exc).replace(str(tmp), str(path)) + " (file not written)") from None
    return path
