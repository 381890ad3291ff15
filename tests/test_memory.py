"""The ingest's allocator settings (raidstudy._memory): applied inside the block only, undone
afterwards (after an error too), and left alone when the user tunes malloc."""
from __future__ import annotations

import pyarrow as pa
import pytest

from raidstudy import _memory


class FakeLibc:
    """Records the mallopt / malloc_trim calls instead of making them."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def fake(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(_memory, "_glibc", lambda: libc)
    for k in _memory._USER_TUNING:
        monkeypatch.delenv(k, raising=False)
    return libc


SET = [("mallopt", _memory.M_MMAP_THRESHOLD, _memory.MMAP_THRESHOLD),
       ("mallopt", _memory.M_TRIM_THRESHOLD, _memory.TRIM_THRESHOLD)]
RESTORE = [("mallopt", _memory.M_MMAP_THRESHOLD, _memory.GLIBC_DEFAULT_THRESHOLD),
           ("mallopt", _memory.M_TRIM_THRESHOLD, _memory.GLIBC_DEFAULT_THRESHOLD),
           ("malloc_trim", 0)]


def test_settings_apply_inside_and_are_undone(fake):
    before = pa.default_memory_pool().backend_name
    with _memory.bulk_allocation() as applied:
        assert applied
        assert fake.calls == SET
        assert pa.default_memory_pool().backend_name == "system"
        pa.array(range(1000))  # allocations work with the system pool
    assert fake.calls == SET + RESTORE
    assert pa.default_memory_pool().backend_name == before


def test_settings_are_undone_after_an_error(fake):
    before = pa.default_memory_pool().backend_name
    with pytest.raises(RuntimeError, match="boom"):
        with _memory.bulk_allocation():
            raise RuntimeError("boom")
    assert fake.calls == SET + RESTORE
    assert pa.default_memory_pool().backend_name == before


@pytest.mark.parametrize("var", ["GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_"])
def test_user_tuning_is_left_alone(fake, monkeypatch, var):
    monkeypatch.setenv(var, "glibc.malloc.trim_threshold=1" if var == "GLIBC_TUNABLES" else "1")
    before = pa.default_memory_pool().backend_name
    with _memory.bulk_allocation() as applied:
        assert not applied
        assert pa.default_memory_pool().backend_name == before
    assert fake.calls == []


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(_memory, "_glibc", lambda: None)
    before = pa.default_memory_pool().backend_name
    with _memory.bulk_allocation() as applied:
        assert not applied
        assert pa.default_memory_pool().backend_name == before


def test_real_glibc_calls_succeed():
    """On glibc the real calls are accepted (mallopt returns 1 for every value used)."""
    libc = _memory._glibc()
    if libc is None:
        pytest.skip("not glibc: the settings are not applied here")
    assert libc.mallopt(_memory.M_MMAP_THRESHOLD, _memory.MMAP_THRESHOLD) == 1
    assert libc.mallopt(_memory.M_TRIM_THRESHOLD, _memory.TRIM_THRESHOLD) == 1
    assert libc.mallopt(_memory.M_MMAP_THRESHOLD, _memory.GLIBC_DEFAULT_THRESHOLD) == 1
    assert libc.mallopt(_memory.M_TRIM_THRESHOLD, _memory.GLIBC_DEFAULT_THRESHOLD) == 1
