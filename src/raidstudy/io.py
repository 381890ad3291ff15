"""Small I/O helpers shared by every module: atomic writes, checksums, deterministic JSON.

Everything the project writes goes through :func:`atomic_write_bytes` (or a wrapper of
it), so that an interrupted run never leaves a file that looks complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_path",
    "sha256_file",
    "sha256_bytes",
    "dumps_json",
    "write_json",
    "to_jsonable",
]

#: Significant digits kept for floats in results files. Fifteen would expose
#: last-bit differences between BLAS builds; twelve keeps every published
#: precision while making files stable across machines of one kind.
JSON_SIG_DIGITS = 12


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same directory so that the final
    :func:`os.replace` is atomic on POSIX file systems. On any exception the
    temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates files readable by the owner only; give the final file the
        # permissions an ordinary open() would have (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically, with ``\\n`` line ends."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def _round_float(x: float) -> float | None:
    if math.isnan(x) or math.isinf(x):
        return None
    if x == 0:
        return 0.0
    return float(f"{x:.{JSON_SIG_DIGITS}g}")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/pandas scalars, arrays and containers to plain JSON types.

    Floats are rounded to :data:`JSON_SIG_DIGITS` significant digits; NaN and
    infinities become ``null`` (JSON has no NaN).
    """
    import pandas as pd

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, pd.Series):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat() if obj.time() != pd.Timestamp(0).time() else obj.date().isoformat()
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _round_float(float(obj))
    if obj is pd.NaT:
        return None
    if isinstance(obj, Path):
        return obj.as_posix()
    return obj


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, rounded floats, two-space indent, final newline."""
    return json.dumps(to_jsonable(obj), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write :func:`dumps_json` of ``obj`` to ``path`` atomically."""
    return atomic_write_text(path, dumps_json(obj))


def json_number(v: Any) -> Any:
    """A number as results files store it: Python bool/int/float, ``None`` for NaN, inf or None.

    Other values (strings, dates) pass through unchanged.

    Examples
    --------
    >>> json_number(np.float64(1.5)), json_number(np.int64(3)), json_number(float("nan")), json_number("x")
    (1.5, 3, None, 'x')
    """
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    return v
