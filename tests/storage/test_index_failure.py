"""A vector index that fails after the SQLite commit (Chroma down, its disk full): the write
stands, the caller is warned instead of failed (so it is not written twice), and the repair path
catches the real Chroma index up once it works again."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import NotFound
from storage.records import MemoryType, SemanticMemory
from tests.storage.failing_index import open_failing


def test_an_add_the_index_refuses_is_saved_once_with_a_warning(engram_home: Path) -> None:
    store, index = open_failing(engram_home)
    try:
        mem = store.add(SemanticMemory(name="Dana", summary="Dana moved to the marketing team"))
        assert index.failed == 1
        assert store.get(mem.id) == mem
        assert store.count() == 1 and [c.op for c in store.history(mem.id)] == ["create"]
        assert store.stats()["unindexed"] == 1
        warning = store.index_warning([mem])
        assert warning is not None and "No space left on device" in warning
        assert "1 memory" in warning
        [hit] = store.search("marketing team")  # keyword search finds it meanwhile
        assert hit.record.id == mem.id and "vector" not in hit.ranks
        assert mem.id not in index.inner.ids(f"{store.namespace}semantic")

        with pytest.raises(OSError, match="No space left"):  # still failing: nothing changes
            store.repair_index()
        assert store.stats()["unindexed"] == 1

        index.failing = False
        assert store.repair_index() == 1
        assert store.stats()["unindexed"] == 0 and store.index_warning([mem]) is None
        assert index.inner.ids(f"{store.namespace}semantic") == {mem.id}
        [hit] = store.search("marketing team", types=[MemoryType.SEMANTIC])
        assert hit.ranks.get("vector") == 1
        assert store.count() == 1
    finally:
        store.close()


def test_a_delete_the_index_refuses_stays_queued_until_repair(engram_home: Path) -> None:
    store, index = open_failing(engram_home, failing=False)
    try:
        gone = store.add(SemanticMemory(name="Kyoto", summary="Kyoto trip planned for May"))
        collection = f"{store.namespace}semantic"
        assert index.inner.ids(collection) == {gone.id}
        index.failing = True
        assert store.delete(gone.id) == gone
        with pytest.raises(NotFound):
            store.get(gone.id)
        warning = store.index_warning([gone])
        assert warning is not None and "No space left" in warning
        assert index.inner.ids(collection) == {gone.id}  # the vector is still there
        assert store.search("Kyoto trip") == []  # and never surfaces a deleted memory

        back = store.undo()  # an undo the index refuses is kept as well, not raised
        assert back.op == "undo" and store.get(gone.id) == gone
        assert store.stats()["unindexed"] == 1
        store.delete(gone.id)
        assert store.stats()["unindexed"] == 0 and store.count() == 0

        index.failing = False
        assert store.repair_index() == 0
        assert index.inner.ids(collection) == set()
        assert store.index_warning([gone]) is None
    finally:
        store.close()


def test_rows_left_unindexed_are_repaired_at_the_next_open(engram_home: Path) -> None:
    store, index = open_failing(engram_home)
    mem = store.add(SemanticMemory(name="Priya", summary="Priya leads the data platform team"))
    store.close()
    store, index = open_failing(engram_home, failing=False)
    try:
        assert store.stats()["unindexed"] == 0
        assert index.inner.ids(f"{store.namespace}semantic") == {mem.id}
    finally:
        store.close()
