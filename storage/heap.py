"""The C heap wiped for Chroma, and the one pause from it: loading a model.

Chroma's HNSW files (`data_level0.bin`) are written from buffers that are allocated but not all
filled: the unused room is whatever the heap held before, and in a store that heap held
memories' JSON on its way through SQLite, and decrypted vault values. A grep of the data folder
found a secret there, in plain text, after it had been scrubbed everywhere else. With glibc's
M_PERTURB set, memory is overwritten as it is freed and filled as it is handed out again, so
nothing of that is left to copy.

Filling on hand-out makes every allocation resident at once, though: llama.cpp's KV caches and
compute buffers and llama-cpp-python's logits array, which otherwise stay untouched address
space, cost 1.3 GB of resident memory with both models loaded (3,218 MB against 1,886 MB). A
model is therefore loaded with the fill paused (`unwiped`), while no Chroma write runs (they
hold `writing`): what a model allocates is its own weights and scratch, never a secret, and a
buffer Chroma allocates later is filled again.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator

_M_PERTURB = -6  # glibc's mallopt parameter (malloc.h)
_BYTE = 0xA5
_lock = threading.RLock()
_libc: ctypes.CDLL | None = None


def wipe_freed_memory() -> None:
    """Have glibc overwrite memory as it is freed and fill it as it is handed out again.
    Process-wide and once; a no-op where the C library is not glibc."""
    global _libc
    with _lock:
        if _libc is not None:
            return
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt(_M_PERTURB, _BYTE)
        except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to set
            return
        _libc = libc


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Held by each Chroma call that may allocate its buffers: never while the fill is off."""
    with _lock:
        yield


@contextlib.contextmanager
def unwiped() -> Iterator[None]:
    """Allocations made inside are not filled (a model's buffers); Chroma writes wait."""
    with _lock:
        if _libc is None:
            yield
            return
        _libc.mallopt(_M_PERTURB, 0)
        try:
            yield
        finally:
            _libc.mallopt(_M_PERTURB, _BYTE)
