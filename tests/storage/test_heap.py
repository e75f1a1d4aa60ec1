"""The C heap's fill (glibc M_PERTURB), on for Chroma's buffers and paused for a model's."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

from storage import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="M_PERTURB is glibc's")

#: Past glibc's largest mmap threshold (32 MiB): always fresh zero pages, unless glibc fills them
SIZE = 64 << 20


def first_bytes_of_a_fresh_allocation() -> bytes:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    block = libc.malloc(SIZE)
    try:
        return ctypes.string_at(block + SIZE // 2, 16)
    finally:
        libc.free(block)


def test_allocations_are_filled_except_while_a_model_loads() -> None:
    heap.wipe_freed_memory()  # what opening a Chroma folder does
    filled = first_bytes_of_a_fresh_allocation()
    assert filled == bytes([0xA5 ^ 0xFF]) * 16  # nothing left over from before
    with heap.unwiped():
        assert first_bytes_of_a_fresh_allocation() == bytes(16)  # untouched, not resident
    assert first_bytes_of_a_fresh_allocation() == filled  # on again after the load
