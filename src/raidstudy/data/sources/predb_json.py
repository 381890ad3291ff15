"""predb-style JSON records, as users save them from public pre-databases.

Two shapes are recognised, record by record:

* **predb.ovh** (``/v1/?q=...`` API, or its ``data.rows`` saved as a list)::

      {"name": "Some.Show.S01E02.720p.WEB.h264-GRP", "team": "GRP", "cat": "TV-HD",
       "genre": "", "size": 1234.5, "files": 30, "preAt": 1598400000,
       "nuke": {"type": "nuke", "reason": "mislabeled"}}

  ``preAt`` is Unix seconds (UTC); ``nuke`` is null or an object whose ``type`` is
  ``nuke``, ``unnuke``, ``modnuke``, ``renuke`` or ``oldnuke``.

* **predb.net**::

      {"release": "Some.Album-WEB-2020-GRP", "group": "GRP", "section": "MP3",
       "pretime": 1598400000, "status": 0}

  ``pretime`` is Unix seconds or ``YYYY-MM-DD HH:MM:SS`` (UTC); ``status`` 0 = fine,
  1 = nuked, 2 = unnuked (a string ``nuked``/``unnuked``/``modnuked`` works too).

The file may be a JSON list, an object holding the list under ``data.rows``, ``rows``,
``data`` or ``results``, or JSON Lines (one object a line). Records are turned into the
releases-table schema (:data:`raidstudy.data.releases.RELEASES_SCHEMA`), deduplicated on the
lower-cased title (first kept). Records without a title or a readable time are skipped and
counted in ``attrs["skipped"]`` with examples (never silently dropped).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from raidstudy.errors import DataError
from raidstudy.data.releases import NUKED_CODES, RELEASES_SCHEMA, group_from_title, section_families

__all__ = ["read_predb_json"]

_NUKE_TYPES = {"": 0, "none": 0, "ok": 0, "unnuke": 1, "unnuked": 1, "nuke": 2, "nuked": 2,
               "modnuke": 3, "modnuked": 3, "renuke": 4, "renuked": 4, "oldnuke": 5, "oldnuked": 5}
_NET_STATUS = {0: 0, 1: 2, 2: 1, 3: 3}


def _records(p: Path) -> list[Any]:
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as first_err:
        recs = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(f"{p.name} is neither JSON nor JSON Lines (line {i}: {first_err.msg}); "
                                "save the records as a JSON list") from None
        return recs
    for path in (("data", "rows"), ("rows",), ("data",), ("results",)):
        cur = obj
        for k in path:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if isinstance(cur, list):
            return cur
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and ("name" in obj or "release" in obj):
        return [obj]
    raise DataError(f"{p.name}: no list of records found (looked at the top level, data.rows, rows, data, results)")


def _time(v) -> pd.Timestamp | None:
    if v is None or v == "":
        return None
    try:
        if isinstance(v, (int, float)) or (isinstance(v, str) and v.strip().lstrip("-").isdigit()):
            return pd.Timestamp(int(float(v)), unit="s", tz="UTC")
        ts = pd.Timestamp(str(v))
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError):
        return None


def _nuke_ovh(v) -> tuple[int, str, str | None]:
    """nZEDb code, reason and, for a value outside the known set, a label for the report."""
    if v in (None, "", 0, False):
        return 0, "", None
    if isinstance(v, dict):
        t = str(v.get("type") or v.get("typeId") or "nuke").lower()
        code = _NUKE_TYPES.get(t, {1: 2, 2: 1, 3: 3, 4: 4, 5: 5}.get(int(t) if t.isdigit() else -9, -1))
        return code, str(v.get("reason") or ""), (f"nuke.type {t!r}" if code == -1 else None)
    if isinstance(v, str):
        code = _NUKE_TYPES.get(v.strip().lower(), -1)
        return code, "", (f"nuke {v!r}" if code == -1 else None)
    return -1, "", f"nuke {v!r}"


def _nuke_net(v) -> tuple[int, str | None]:
    if v in (None, ""):
        return 0, None
    if isinstance(v, str) and not v.strip().isdigit():
        code = _NUKE_TYPES.get(v.strip().lower(), -1)
        return code, (f"status {v!r}" if code == -1 else None)
    try:
        code = _NET_STATUS.get(int(v), -1)
    except (TypeError, ValueError):
        code = -1
    return code, (f"status {v!r}" if code == -1 else None)


def read_predb_json(path: str | os.PathLike, *, feed: str | None = None) -> pd.DataFrame:
    """Read predb.ovh / predb.net style JSON records into the releases-table schema.

    Parameters
    ----------
    path : path
        JSON list, wrapped list (``data.rows``...) or JSON Lines.
    feed : str, optional
        Feed name for every row (default ``predb.ovh`` or ``predb.net``, per record shape).

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`raidstudy.data.releases.RELEASES_SCHEMA` (``pre_time`` tz-aware UTC),
        one row per unique lower-cased title. ``attrs["skipped"]`` counts skipped records by
        reason (``not_an_object``, ``no_title``, ``bad_time``), ``attrs["examples"]`` gives a
        few of each, ``attrs["duplicates"]`` counts repeated titles.

    Raises
    ------
    DataError
        Missing file, no records found, or no usable record (the message counts the
        skipped records by reason).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"predb JSON file {p} not found")
    recs = _records(p)
    rows: list[dict] = []
    skipped = {"not_an_object": 0, "no_title": 0, "bad_time": 0}
    examples: dict[str, list[str]] = {k: [] for k in skipped}
    unknown_nuke: dict[str, int] = {}

    def skip(reason, i, r):
        skipped[reason] += 1
        if len(examples[reason]) < 5:
            examples[reason].append(f"{p.name} record {i}: {json.dumps(r, default=str)[:200]}")

    for i, r in enumerate(recs, 1):
        if not isinstance(r, dict):
            skip("not_an_object", i, r)
            continue
        if "name" in r or "preAt" in r or "team" in r:
            title, group, section = r.get("name"), r.get("team"), r.get("cat")
            ts = _time(r.get("preAt"))
            code, reason, odd = _nuke_ovh(r.get("nuke"))
            fd = feed or "predb.ovh"
        else:
            title, group, section = r.get("release"), r.get("group"), r.get("section")
            ts = _time(r.get("pretime"))
            (code, odd), reason = _nuke_net(r.get("status")), str(r.get("reason") or "")
            fd = feed or "predb.net"
        if not isinstance(title, str) or not title.strip():
            skip("no_title", i, r)
            continue
        if ts is None:
            skip("bad_time", i, r)
            continue
        title = title.strip()
        if odd is not None:
            unknown_nuke[odd] = unknown_nuke.get(odd, 0) + 1
        rows.append({"title": title, "group": str(group).strip() if group else group_from_title(title),
                     "section": str(section or ""), "feed": fd, "pre_time": ts, "nuke_code": code,
                     "nuke_reason": reason, "origin": p.name, "line": i})
    if not rows and not any(skipped.values()):
        raise DataError(f"{p.name} holds no records")
    if not rows:
        counts = ", ".join(f"{k} {v}" for k, v in skipped.items() if v)
        first = next(iter(v for v in examples.values() if v))[0]
        raise DataError(f"{p.name}: none of its {len(recs)} records is usable ({counts}; e.g. {first}); expected "
                        "predb.ovh records (name, preAt) or predb.net records (release, pretime)")
    if unknown_nuke:
        import warnings

        warnings.warn(
            f"{p.name}: {sum(unknown_nuke.values())} record(s) with a nuke type or status outside the known set "
            f"({', '.join(f'{k} x{v}' for k, v in list(unknown_nuke.items())[:5])}); kept with nuke_code -1 "
            "(unknown, not counted as nuked); see attrs['unknown_nuke']",
            stacklevel=2,
        )
    df = pd.DataFrame(rows, columns=["title", "group", "section", "feed", "pre_time", "nuke_code", "nuke_reason",
                                     "origin", "line"])
    n_before = len(df)
    if n_before:
        df = df[~df["title"].str.lower().duplicated(keep="first")].reset_index(drop=True)
        fam = section_families(pa.array(df["section"].tolist(), pa.string()), pa.array(df["title"].tolist(), pa.string()))
        df["family"] = fam.to_pylist()
    else:
        df["family"] = pd.Series(dtype=str)
    df["pre_time"] = pd.to_datetime(df["pre_time"], utc=True).astype("datetime64[s, UTC]")
    df["nuke_code"] = df["nuke_code"].astype("int8")
    df["nuked"] = df["nuke_code"].isin(NUKED_CODES)
    df["line"] = df["line"].astype("int32")
    # predb JSON exports state no size or file count
    df["size_mb"] = np.nan
    df["n_files"] = pd.array([pd.NA] * len(df), dtype="Int32")
    df = df[[f.name for f in RELEASES_SCHEMA]]
    df.attrs["skipped"] = skipped
    df.attrs["examples"] = {k: v for k, v in examples.items() if v}
    df.attrs["duplicates"] = int(n_before - len(df))
    df.attrs["unknown_nuke"] = dict(unknown_nuke)
    return df
