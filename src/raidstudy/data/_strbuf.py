"""Byte-level views of Arrow string arrays, for the ingest's hot paths where a scan of the
data buffer beats a per-value compute kernel."""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (int64, ``len(arr) + 1`` of them) and the data bytes of a string array,
    without copying the data."""
    if not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
        raise TypeError(f"expected a string or binary array with 32-bit offsets, got {arr.type}")
    n = len(arr)
    off = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    buf = arr.buffers()[2]
    return off, (np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8))


def _rows_holding(arr: pa.Array, find) -> np.ndarray:
    """A mask of the values of a string array that hold one of the byte positions
    ``find(data)`` returns, ``data`` being the values' bytes end to end."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    mask = np.zeros(len(arr), bool)
    if len(arr) == 0:
        return mask
    off, data = string_buffers(arr)
    at = find(data[off[0]:off[-1]]) + off[0]
    mask[np.searchsorted(off, at, side="right") - 1] = True
    return mask


def rows_containing(arr: pa.Array, word: bytes) -> np.ndarray:
    """Which values of a string array hold ``word`` (one scan of the data buffer).

    Exact for a single byte. For longer words an occurrence may straddle two neighbouring
    values, so the mask is then a superset: a test that must be exact decides on the rows it
    marks.
    """
    def find(data: np.ndarray) -> np.ndarray:
        span = len(data) - len(word) + 1
        if span <= 0:
            return np.zeros(0, np.int64)
        hit = data[:span] == word[0]
        for i, byte in enumerate(word[1:], 1):
            hit &= data[i:span + i] == byte
        return np.flatnonzero(hit)

    return _rows_holding(arr, find)

