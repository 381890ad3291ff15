"""The ingest's allocator settings (raidstudy._memory): applied inside the block only, set to
glibc's adapted values afterwards (after an error too), applied once when nested, and left
alone when the user tunes malloc."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pyarrow as pa
import pytest

from raidstudy import _memory


class FakeLibc:
    """Records the mallopt / malloc_trim calls instead of making them."""

    def __init__(self, result=1):
        self.calls = []
        self.result = result

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return self.result

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def fake(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(_memory, "_glibc", lambda: libc)
    for k in (*_memory._USER_TUNING, "GLIBC_TUNABLES"):
        monkeypatch.delenv(k, raising=False)
    return libc


SET = [("mallopt", _memory.M_MMAP_THRESHOLD, _memory.MMAP_THRESHOLD),
       ("mallopt", _memory.M_TRIM_THRESHOLD, _memory.TRIM_THRESHOLD)]
RESTORE = [("mallopt", _memory.M_MMAP_THRESHOLD, _memory.AFTER_MMAP_THRESHOLD),
           ("mallopt", _memory.M_TRIM_THRESHOLD, _memory.AFTER_TRIM_THRESHOLD),
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
    # glibc's own adjustment ends at these values; its initial 128 KiB would map every
    # later buffer above 128 KiB afresh
    assert _memory.AFTER_MMAP_THRESHOLD == 32 << 20 and _memory.AFTER_TRIM_THRESHOLD == 64 << 20


def test_settings_are_undone_after_an_error(fake):
    before = pa.default_memory_pool().backend_name
    with pytest.raises(RuntimeError, match="boom"):
        with _memory.bulk_allocation():
            raise RuntimeError("boom")
    assert fake.calls == SET + RESTORE
    assert pa.default_memory_pool().backend_name == before


def test_nested_and_concurrent_blocks_apply_once_and_restore_at_the_end(fake):
    before = pa.default_memory_pool().backend_name
    with _memory.bulk_allocation():
        with _memory.bulk_allocation() as inner:
            assert inner
        assert fake.calls == SET  # the inner block's end restores nothing
        assert pa.default_memory_pool().backend_name == "system"
        done = threading.Event()

        def other():
            with _memory.bulk_allocation():
                pass
            done.set()

        threading.Thread(target=other).start()
        assert done.wait(10)
        assert fake.calls == SET
    assert fake.calls == SET + RESTORE
    assert pa.default_memory_pool().backend_name == before


def test_refused_settings_are_reported(fake):
    fake.result = 0
    with _memory.bulk_allocation() as applied:
        assert not applied
    assert fake.calls == SET + RESTORE


@pytest.mark.parametrize("var, value, left_alone", [
    ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1", True),
    ("GLIBC_TUNABLES", "glibc.pthread.rseq=0", False),  # not a malloc setting
    ("MALLOC_TRIM_THRESHOLD_", "1", True),
    ("MALLOC_ARENA_MAX", "2", True),
])
def test_user_tuning_is_left_alone(fake, monkeypatch, var, value, left_alone):
    monkeypatch.setenv(var, value)
    with _memory.bulk_allocation() as applied:
        assert applied is not left_alone
    assert (fake.calls == []) is left_alone


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(_memory, "_glibc", lambda: None)
    before = pa.default_memory_pool().backend_name
    with _memory.bulk_allocation() as applied:
        assert not applied
        assert pa.default_memory_pool().backend_name == before


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


@pytest.mark.skipif(not _is_glibc(), reason="not glibc: the settings are not applied here")
def test_real_glibc_accepts_every_setting():
    """On glibc the handle is found and every mallopt call succeeds (in a child process, so
    that the test run's own allocator is left as it was)."""
    code = (
        "from raidstudy import _memory as m\n"
        "libc = m._glibc()\n"
        "assert libc is not None\n"
        "with m.bulk_allocation() as applied:\n"
        "    assert applied\n"
        "for p, v in [(m.M_MMAP_THRESHOLD, m.AFTER_MMAP_THRESHOLD), (m.M_TRIM_THRESHOLD, m.AFTER_TRIM_THRESHOLD)]:\n"
        "    assert libc.mallopt(p, v) == 1\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*_memory._USER_TUNING, "GLIBC_TUNABLES")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_ingest_runs_inside_the_block(monkeypatch, tmp_path):
    import contextlib

    from raidstudy.data import ingest

    from _datafixtures import line, write_dump

    seen = []

    @contextlib.contextmanager
    def recording():
        seen.append("enter")
        yield True
        seen.append("exit")

    monkeypatch.setattr(ingest, "bulk_allocation", recording)
    write_dump(tmp_path / "raw", 1583056800, [line("A.Title-GRP")])
    ingest.ingest(tmp_path / "raw", tmp_path / "out", quiet=True)
    assert seen == ["enter", "exit"]
