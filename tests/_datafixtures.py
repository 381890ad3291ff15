"""Helpers that write small nZEDb-format dumps into a temporary folder (tests only)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd


def q(s: str | None) -> bytes:
    """Field text as the dumps write it: quoted string or ``\\N``."""
    if s is None:
        return b"\\N"
    return b"'" + s.replace("'", "\\'").encode("utf-8") + b"'"


def line(title, predate="2020-03-01 12:00:00", source="xrel", category="TV-X264", nuked="0",
         nukereason=None, raw_title: bytes | None = None, size: str | None = "100MB",
         files: str | None = None) -> bytes:
    """One dump line (without the line end), 12 fields joined by two tabs."""
    fields = [
        raw_title if raw_title is not None else q(title), b"\\N", q(size), q(files), q(""), q(nuked),
        q(nukereason), q(category), q(predate) if predate is not None else b"\\N", q(source), q("0"), b"\\N",
    ]
    return b"\t\t".join(fields)


def write_dump(folder: Path, created_unix: int, lines: list[bytes], *, truncate: int | None = None,
               raw: bytes | None = None) -> Path:
    """Write ``<folder>/dumps/<created>/<created>_predb_dump.csv.gz`` with CRLF line ends."""
    d = folder / "dumps" / str(created_unix - created_unix % 1000)
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{created_unix}_predb_dump.csv.gz"
    data = raw if raw is not None else b"".join(ln + b"\r\n" for ln in lines)
    blob = gzip.compress(data, mtime=0)
    if truncate is not None:
        blob = blob[:truncate]
    p.write_bytes(blob)
    return p


def unix(ts: str) -> int:
    return int(pd.Timestamp(ts, tz="UTC").timestamp())


def daily_dumps(folder: Path, start: str, days: int, per_feed: dict[str, int], *, hour: int = 10,
                overrides: dict | None = None, skip_days: set[int] | None = None, prefix: str = "R") -> list[Path]:
    """A run of daily dumps: dump ``k`` is created at ``start + k days + hour`` and holds
    ``per_feed[feed]`` releases per feed with pre times inside its 24-hour window.

    ``overrides[k] = {feed: n}`` changes the counts of dump ``k``; ``skip_days`` leaves dumps out.
    """
    out = []
    t0 = pd.Timestamp(start, tz="UTC") + pd.Timedelta(hours=hour)
    for k in range(days):
        if skip_days and k in skip_days:
            continue
        created = t0 + pd.Timedelta(days=k)
        counts = dict(per_feed)
        if overrides and k in overrides:
            counts.update(overrides[k])
        lines = []
        for feed, n in counts.items():
            for i in range(n):
                t = created - pd.Timedelta(seconds=int((i + 0.5) * 86000 / max(n, 1)))
                lines.append(line(f"{prefix}.{feed.strip('#@.')}.{k}.{i}-GRP{i % 3}",
                                  predate=t.strftime("%Y-%m-%d %H:%M:%S"), source=feed))
        out.append(write_dump(folder, int(created.timestamp()), lines))
    return out
