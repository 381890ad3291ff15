"""Allocator settings for a burst of short-lived multi-megabyte buffers (the ingest).

The ingest allocates and frees several gigabytes in buffers of 1-60 MB: decompressed text,
parsed columns, filtered and taken copies. With glibc's default settings every buffer above
the (dynamic) mmap threshold is a fresh mapping whose pages are faulted in and zeroed again,
and freed heap tops are given back at once; page faults then cost up to 2.5 s of system time
per full ingest on the 2-core development VM. :func:`bulk_allocation` routes Arrow's buffers
through glibc as well and lets glibc keep and reuse that memory while the ingest runs.

Measured on the full nZEDb dumps (12 interleaved full ingests each, ``/usr/bin/time``):
6.15 s on average, 1.2 s of system time and about 380,000 page faults, against 6.49 s,
1.9 s and 600,000 with Arrow's jemalloc pool, whose decay setting does not reach the arenas
the reader threads use (Arrow's jemalloc purges freed large extents at once), and 2.9
million faults with the system pool and glibc's default mmap threshold.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator

import pyarrow as pa

__all__ = ["bulk_allocation"]

# mallopt(3) parameters (glibc <malloc.h>)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit systems (``HEAP_MAX_SIZE / 2``): only
#: buffers above it (a whole row group's titles, say) are still mapped afresh.
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of a heap is kept up to this size while the ingest runs.
TRIM_THRESHOLD = 1 << 30
#: The thresholds left in place afterwards: where glibc's own adjustment ends once buffers
#: of 32 MB or more have been freed (mmap threshold raised to the largest freed buffer, up to
#: :data:`MMAP_THRESHOLD`, and the trim threshold to twice that). Any ``mallopt`` call turns
#: that adjustment off for good, and glibc's initial 128 KiB would make every later buffer
#: above 128 KiB a fresh mapping (about twice the page faults in ``build_processed`` after
#: an ingest in the same process).
AFTER_MMAP_THRESHOLD = MMAP_THRESHOLD
AFTER_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
#: Environment variables through which a user tunes glibc's malloc; when one is set (for
#: ``GLIBC_TUNABLES``: with a ``glibc.malloc.`` tunable), the user's settings are left alone.
_USER_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")

_lock = threading.Lock()
_state: dict = {"depth": 0, "pool": None, "applied": False}


def _glibc():
    """The running C library's handle when it is glibc with ``mallopt`` and ``malloc_trim``,
    else None (``os.confstr`` asks the C library itself)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (AttributeError, ValueError, OSError):  # not glibc (musl, macOS, Windows)
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):  # pragma: no cover - a glibc without them
        return None
    return libc


def _user_tuned() -> bool:
    return any(k in os.environ for k in _USER_TUNING) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


@contextlib.contextmanager
def bulk_allocation() -> Iterator[bool]:
    """Let glibc keep and reuse freed memory while the block runs; give it back afterwards.

    Inside the block Arrow allocates from its system pool (glibc), with glibc's mmap
    threshold raised to :data:`MMAP_THRESHOLD` and its trim threshold to
    :data:`TRIM_THRESHOLD`, so that freed buffers are reused rather than unmapped and
    faulted in again. On exit, even after an error, Arrow's previous default pool comes
    back, the thresholds are set to :data:`AFTER_MMAP_THRESHOLD` and
    :data:`AFTER_TRIM_THRESHOLD` (where glibc's own adjustment would have taken them; the
    adjustment itself stays off, as after any ``mallopt`` call) and ``malloc_trim(0)``
    returns the free memory to the system. Nested blocks (or blocks in several threads)
    apply the settings once, and the last one to end restores them.

    Nothing is changed on other C libraries or when the user tunes glibc's malloc through
    the environment (a ``glibc.malloc.`` tunable in ``GLIBC_TUNABLES``, or ``MALLOC_*_``).

    Yields
    ------
    bool
        Whether the settings are in effect.

    Examples
    --------
    >>> from raidstudy._memory import bulk_allocation
    >>> with bulk_allocation():
    ...     pass
    """
    libc = _glibc()
    if libc is None or _user_tuned():
        yield False
        return
    with _lock:
        if _state["depth"] == 0:
            _state["pool"] = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
            done = [libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
            _state["applied"] = done == [1, 1]  # mallopt returns 1 on success
        _state["depth"] += 1
        applied = _state["applied"]
    try:
        yield applied
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                pa.set_memory_pool(_state["pool"])
                _state["pool"] = None
                libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_THRESHOLD)
                libc.malloc_trim(0)
