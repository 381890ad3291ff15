"""Byte scans over Arrow string arrays."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from raidstudy.data._strbuf import rows_containing, string_buffers


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("xX\\a-é"), max_size=8), max_size=20), st.integers(0, 4))
def test_rows_containing_matches_python(values, start):
    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    rest = values[start:]
    # one byte: exact
    assert rows_containing(arr, b"\\").tolist() == ["\\" in v for v in rest]
    # a word: never misses a value that holds it
    found = rows_containing(arr, b"xX").tolist()
    assert all(f for f, v in zip(found, rest) if "xX" in v)


def test_rows_containing_edges():
    assert rows_containing(pa.array([], pa.string()), b"x").tolist() == []
    assert rows_containing(pa.array(["", "x"]), b"xxx").tolist() == [False, False]
    assert rows_containing(pa.chunked_array([["ab"], ["XXy"]]), b"XX").tolist() == [False, True]
    off, data = string_buffers(pa.array(["ab", "c"]).slice(1))
    assert off.tolist() == [2, 3] and bytes(data[off[0]:off[-1]]) == b"c"


def test_string_buffers_refuse_other_layouts():
    import pytest

    with pytest.raises(TypeError, match="32-bit offsets"):
        string_buffers(pa.array(["a"], pa.large_string()))
    with pytest.raises(TypeError, match="32-bit offsets"):
        rows_containing(pa.array([1, 2]), b"x")
