"""Byte scans over Arrow string arrays."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from raidstudy.data._strbuf import rows_containing, rows_not_ascii, string_buffers


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("xX\\a-é"), max_size=8), max_size=20), st.integers(0, 4))
def test_rows_containing_matches_python(values, start):
    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    rest = values[start:]
    # one byte: exact
    assert rows_containing(arr, b"\\").tolist() == ["\\" in v for v in rest]
    # a word, any ASCII case: never misses a value that holds it
    found = rows_containing(arr, b"xx", fold_ascii_case=True).tolist()
    assert all(f for f, v in zip(found, rest) if "xx" in v.lower())


def test_rows_containing_edges():
    assert rows_containing(pa.array([], pa.string()), b"x").tolist() == []
    assert rows_containing(pa.array(["", "x"]), b"xxx").tolist() == [False, False]
    assert rows_containing(pa.chunked_array([["ab"], ["XXy"]]), b"xx", fold_ascii_case=True).tolist() == [False, True]
    off, data = string_buffers(pa.array(["ab", "c"]).slice(1))
    assert off.tolist() == [2, 3] and bytes(data[off[0]:off[-1]]) == b"c"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("aZ-\x7f\u00e9\u4e2d\U0001f600"), max_size=6), max_size=20),
       st.integers(0, 4))
def test_rows_not_ascii_matches_python(values, start):
    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    assert rows_not_ascii(arr).tolist() == [not v.isascii() for v in values[start:]]
    assert rows_not_ascii(pa.chunked_array([arr, arr], pa.string())).tolist() == \
        [not v.isascii() for v in values[start:]] * 2


def test_string_buffers_refuse_other_layouts():
    import pytest

    with pytest.raises(TypeError, match="32-bit offsets"):
        string_buffers(pa.array(["a"], pa.large_string()))
    with pytest.raises(TypeError, match="32-bit offsets"):
        rows_not_ascii(pa.array([1, 2]))
