from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.errors import (
    CoreLimitExceeded,
    InvalidText,
    ModelUnavailable,
    NotFound,
    StoreCorrupt,
    StoreLocked,
)
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import (
    CORE_BLOCK_LIMIT,
    CoreBlock,
    EpisodicMemory,
    MemoryType,
    ProceduralMemory,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)
from storage.store import MemoryStore


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, 12, tzinfo=UTC)


def test_add_get_update_delete_with_history(fake_store: MemoryStore) -> None:
    mem = fake_store.add(
        SemanticMemory(name="Ana", summary="works on billing", provenance=("evt_1",))
    )
    assert fake_store.get(mem.id) == mem
    changed = fake_store.update(mem.id, summary="works on payments")
    assert fake_store.get(mem.id).summary == "works on payments"  # type: ignore[attr-defined]
    assert changed.updated_at > mem.updated_at
    fake_store.delete(mem.id)
    with pytest.raises(NotFound):
        fake_store.get(mem.id)
    ops = [c.op for c in fake_store.history(mem.id)]
    assert ops == ["delete", "update", "create"]
    assert fake_store.history(mem.id)[1].before["summary"] == "works on billing"  # type: ignore[index]


def test_undo_reverts_delete_update_and_create(fake_store: MemoryStore) -> None:
    mem = fake_store.add(SemanticMemory(name="Ana", summary="likes jazz"))
    fake_store.update(mem.id, summary="likes techno")
    fake_store.delete(mem.id)

    fake_store.undo()  # the delete
    assert fake_store.get(mem.id).summary == "likes techno"  # type: ignore[attr-defined]
    assert [h.record.id for h in fake_store.search("techno")] == [mem.id]
    fake_store.undo()  # the update
    assert fake_store.get(mem.id).summary == "likes jazz"  # type: ignore[attr-defined]
    assert fake_store.search("techno", k=5) == [] or all(
        "techno" not in h.record.index_text() for h in fake_store.search("techno", k=5)
    )
    fake_store.undo()  # the create
    with pytest.raises(NotFound):
        fake_store.get(mem.id)
    assert fake_store.search("jazz") == []


def test_undo_with_nothing_to_undo_is_clear(fake_store: MemoryStore) -> None:
    with pytest.raises(NotFound, match="nothing to undo"):
        fake_store.undo()
    with pytest.raises(NotFound, match="no history entry 99"):
        fake_store.undo(99)


def test_unknown_ids_get_clear_errors(fake_store: MemoryStore) -> None:
    for call in (fake_store.get, fake_store.delete):
        with pytest.raises(NotFound, match="no memory with id 'nope'"):
            call("nope")
    with pytest.raises(NotFound):
        fake_store.update("nope", summary="x")
    assert fake_store.get_many(["nope"]) == []


def test_replace_refuses_a_change_of_type(fake_store: MemoryStore) -> None:
    mem = fake_store.add(SemanticMemory(name="a", summary="b"))
    impostor = EpisodicMemory(id=mem.id, summary="c")
    with pytest.raises(InvalidText, match="is a semantic memory"):
        fake_store.replace(impostor)
    assert fake_store.get(mem.id) == mem


def test_core_block_limit_is_enforced_never_truncated(fake_store: MemoryStore) -> None:
    block = fake_store.set_core("human", "Name: Sam")
    fake_store.append_core("human", "Likes tea")
    assert fake_store.core_block("human").value == "Name: Sam\nLikes tea"  # type: ignore[union-attr]
    with pytest.raises(CoreLimitExceeded, match=f"limit is {CORE_BLOCK_LIMIT:,}"):
        fake_store.append_core("human", "x" * CORE_BLOCK_LIMIT)
    assert fake_store.core_block("human").value == "Name: Sam\nLikes tea"  # type: ignore[union-attr]
    with pytest.raises(InvalidText, match="exists"):
        fake_store.add(CoreBlock(label="human", value="dup"))
    assert fake_store.core_block("human").id == block.id  # type: ignore[union-attr]
    assert fake_store.core_block("persona") is None


def test_empty_memory_is_rejected_and_nothing_written(fake_store: MemoryStore) -> None:
    with pytest.raises(InvalidText):
        fake_store.add_many(
            [SemanticMemory(name="ok", summary="fine"), CoreBlock(label="persona", value="   ")]
        )
    assert fake_store.count() == 0


def test_search_across_types_and_per_type(fake_store: MemoryStore) -> None:
    fake_store.add_many(
        [
            EpisodicMemory(
                summary="booked flights to Lisbon for the conference", occurred_at=_at(1)
            ),
            SemanticMemory(name="Lisbon", summary="capital of Portugal"),
            ProceduralMemory(summary="how to file expenses", steps=("open the portal", "upload")),
            ResourceMemory(title="conference agenda.pdf", content="keynote at nine"),
            VaultEntry(caption="airline login", secret_value="pw-123", source="airline"),
        ]
    )
    hits = fake_store.search("Lisbon conference")
    kinds = {h.record.kind for h in hits}
    assert {MemoryType.EPISODIC, MemoryType.SEMANTIC} <= kinds
    assert hits[0].record.kind is MemoryType.EPISODIC  # matches both words
    assert set(hits[0].ranks) == {"keyword", "vector"}
    only = fake_store.search("Lisbon", types=[MemoryType.SEMANTIC])
    assert [h.record.kind for h in only] == [MemoryType.SEMANTIC]
    assert len(fake_store.search("conference", k=1)) == 1


def test_search_time_range(fake_store: MemoryStore) -> None:
    for day in range(1, 11):
        fake_store.add(EpisodicMemory(summary=f"standup meeting day {day}", occurred_at=_at(day)))
    hits = fake_store.search("standup meeting", k=20, since=_at(3), until=_at(6))
    assert sorted(h.record.occurred_at.day for h in hits) == [3, 4, 5]  # type: ignore[attr-defined]


def test_search_rejects_bad_queries(fake_store: MemoryStore) -> None:
    with pytest.raises(InvalidText, match="empty"):
        fake_store.search("  ")
    with pytest.raises(InvalidText, match="k must be"):
        fake_store.search("x", k=0)
    # FTS syntax in user text is quoted, never interpreted
    fake_store.add(SemanticMemory(name="AND", summary='"quoted" NEAR( OR *'))
    assert fake_store.search('NEAR( "quoted" OR * AND')[0].record.kind is MemoryType.SEMANTIC


def test_browse_and_stats(fake_store: MemoryStore) -> None:
    for day in (3, 1, 2):
        fake_store.add(EpisodicMemory(summary=f"day {day}", occurred_at=_at(day)))
    newest = fake_store.browse(MemoryType.EPISODIC)
    assert [r.occurred_at.day for r in newest] == [3, 2, 1]  # type: ignore[attr-defined]
    assert len(fake_store.browse(MemoryType.EPISODIC, limit=1, offset=1)) == 1
    stats = fake_store.stats()
    assert stats["memories"]["episodic"] == 3 and stats["total"] == 3
    assert stats["unindexed"] == 0


def _open(home: Path, index: MemoryVectorIndex) -> MemoryStore:
    return MemoryStore.open(home, HashEmbedder(), lambda _p: index)


def test_crash_between_sqlite_and_index_is_repaired_on_open(engram_home: Path) -> None:
    index = MemoryVectorIndex()
    store = _open(engram_home, index)
    kept = store.add(SemanticMemory(name="kept", summary="survives"))
    gone = store.add(SemanticMemory(name="gone", summary="deleted before the crash"))
    # Simulate dying after the SQLite commit but before the index was touched:
    store._index_records = lambda records, vectors=None: None  # type: ignore[method-assign]
    store._flush_vector_deletes = lambda: None  # type: ignore[method-assign]
    late = store.add(SemanticMemory(name="late", summary="written just before the crash"))
    store.delete(gone.id)
    store.close()
    reopened = _open(engram_home, index)
    assert reopened.stats()["unindexed"] == 0
    assert index.ids(f"{reopened.namespace}semantic") == {kept.id, late.id}
    assert reopened.search("written just before")[0].record.id == late.id
    reopened.close()


def test_a_lost_index_folder_is_rebuilt_from_the_database(engram_home: Path) -> None:
    from storage.vector_chroma import ChromaVectorIndex

    store = MemoryStore.open(engram_home, HashEmbedder(), ChromaVectorIndex.persistent)
    mem = store.add(SemanticMemory(name="kept", summary="only sqlite survives"))
    store.close()
    import shutil

    shutil.rmtree(engram_home / "chroma")
    store = MemoryStore.open(engram_home, HashEmbedder(), ChromaVectorIndex.persistent)
    assert isinstance(store._index, ChromaVectorIndex)
    assert store.search("sqlite survives", types=[MemoryType.SEMANTIC])[0].ranks.get("vector") == 1
    assert store.get(mem.id) == mem
    store.close()


def test_claimed_events_return_to_the_queue_after_a_crash(engram_home: Path) -> None:
    from storage.records import Event

    store = _open(engram_home, MemoryVectorIndex())
    store.events.put_many([Event(text=f"e{i}", source="screen") for i in range(3)])
    claimed = store.events.claim(2)
    store.events.done([claimed[0].id])
    store.close()  # dies with claimed[1] unfinished
    store = _open(engram_home, MemoryVectorIndex())
    assert store.events.counts() == {"pending": 2, "claimed": 0, "done": 1, "failed": 0}
    assert store.events.claim(5)[0].id == claimed[1].id
    store.close()


def test_event_release_parks_after_max_attempts(fake_store: MemoryStore) -> None:
    from storage.events import MAX_ATTEMPTS
    from storage.records import Event

    event = fake_store.events.put(Event(text="poison"))
    for _ in range(MAX_ATTEMPTS):
        (claimed,) = fake_store.events.claim(1)
        fake_store.events.release([claimed.id], error="model crashed")
    assert fake_store.events.status_of(event.id) == "failed"
    assert fake_store.events.claim(1) == []
    assert fake_store.events.retry_failed() == 1


def test_a_release_after_shutdown_is_not_counted_as_an_attempt(fake_store: MemoryStore) -> None:
    from storage.events import MAX_ATTEMPTS
    from storage.records import Event

    event = fake_store.events.put(Event(text="interrupted many times"))
    for _ in range(MAX_ATTEMPTS + 2):
        (claimed,) = fake_store.events.claim(1)
        fake_store.events.release([claimed.id], "interrupted", count_attempt=False)
    assert fake_store.events.status_of(event.id) == "pending"
    for _ in range(MAX_ATTEMPTS - 1):  # the real failures still park it, at the usual count
        fake_store.events.claim(1)
        fake_store.events.release([event.id], "model crashed")
    assert fake_store.events.status_of(event.id) == "pending"
    fake_store.events.claim(1)
    fake_store.events.release([event.id], "model crashed")
    assert fake_store.events.status_of(event.id) == "failed"


def test_release_only_touches_events_still_claimed(fake_store: MemoryStore) -> None:
    """A failure after a batch was committed must not put its done events back in the queue
    (they would be applied again)."""
    from storage.records import Event

    done, claimed, pending = (Event(text=t) for t in ("done", "claimed", "pending"))
    fake_store.events.put_many([done, claimed])
    fake_store.events.claim(2)
    fake_store.events.put(pending)
    fake_store.events.done([done.id])
    ids = [done.id, claimed.id, pending.id]
    fake_store.events.release(ids, "vector index down")
    fake_store.events.release(ids, "interrupted", count_attempt=False)
    assert fake_store.events.status_of(done.id) == "done"
    assert fake_store.events.status_of(claimed.id) == "pending"
    assert fake_store.events.status_of(pending.id) == "pending"
    rows = fake_store._db.query("SELECT id, attempts, error, done_at FROM events")
    by_id = {r["id"]: r for r in rows}
    assert by_id[done.id]["error"] is None and by_id[done.id]["done_at"] is not None
    assert by_id[done.id]["attempts"] == 0 and by_id[pending.id]["attempts"] == 0
    assert by_id[claimed.id]["attempts"] == 1 and by_id[claimed.id]["error"] == "vector index down"
    assert [e.id for e in fake_store.events.claim(5)] == [claimed.id, pending.id]


def test_apply_is_one_transaction_with_the_events_it_completes(fake_store: MemoryStore) -> None:
    from storage.records import Event
    from storage.store import Write

    keep = fake_store.add(SemanticMemory(name="Keep", summary="stays"), "agents:b0")
    gone = fake_store.add(SemanticMemory(name="Gone", summary="goes"), "agents:b0")
    event = fake_store.events.put(Event(text="batch source"))
    fake_store.events.claim(1)
    new = SemanticMemory(name="New", summary="a fresh fact")
    missing = SemanticMemory(name="Missing", summary="never stored")
    with pytest.raises(NotFound):  # the last write fails: none of the batch lands
        fake_store.apply(
            [Write("add", new), Write("delete", gone), Write("replace", keep.updated(
                summary="changed")), Write("delete", missing)],
            "agents:b1",
            events_done=[event.id],
        )  # fmt: skip
    assert {r.id for r in fake_store.browse(limit=10)} == {keep.id, gone.id}
    assert fake_store.get(keep.id) == keep
    assert fake_store.events.status_of(event.id) == "claimed"
    assert [h.actor for h in fake_store.history(limit=5)] == ["agents:b0", "agents:b0"]
    written = fake_store.apply(
        [Write("add", new), Write("delete", gone)], "agents:b1", events_done=[event.id]
    )
    assert [r.id for r in written] == [new.id, gone.id]
    assert new.id in {h.record.id for h in fake_store.search("fresh fact", k=3)}
    assert gone.id not in {h.record.id for h in fake_store.search("goes", k=3)}
    assert fake_store.events.status_of(event.id) == "done"


def test_second_opener_gets_a_clear_lock_error(fake_store: MemoryStore, engram_home: Path) -> None:
    with pytest.raises(StoreLocked, match="in use by another process"):
        MemoryStore.open(
            engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex(), lock_timeout_s=0.2
        )
    assert fake_store.count() == 0  # the first opener is unaffected


def test_corrupt_database_is_reported_and_left_untouched(engram_home: Path) -> None:
    engram_home.mkdir(parents=True)
    db = engram_home / "engram.sqlite3"
    junk = b"this is not a database, it is a shopping list\n" * 200
    db.write_bytes(junk)
    with pytest.raises(StoreCorrupt, match="left untouched"):
        _open(engram_home, MemoryVectorIndex())
    assert db.read_bytes() == junk
    # the lock was released: a repaired folder opens
    db.unlink()
    _open(engram_home, MemoryVectorIndex()).close()


def test_damaged_index_is_moved_aside_and_rebuilt(engram_home: Path) -> None:
    store = _open(engram_home, MemoryVectorIndex())
    mem = store.add(SemanticMemory(name="kept", summary="rebuilt from sqlite"))
    store.close()
    (engram_home / "chroma").mkdir()
    rebuilt = MemoryVectorIndex()
    calls = []

    def flaky(path: Path) -> MemoryVectorIndex:
        calls.append(path)
        if len(calls) == 1:
            raise StoreCorrupt("the vector index cannot be opened")
        return rebuilt

    store = MemoryStore.open(engram_home, HashEmbedder(), flaky)
    assert any(p.name.startswith("chroma.damaged-") for p in engram_home.iterdir())
    assert rebuilt.ids(f"{store.namespace}semantic") == {mem.id}
    store.close()


def test_newer_schema_is_refused(engram_home: Path) -> None:
    _open(engram_home, MemoryVectorIndex()).close()
    with sqlite3.connect(engram_home / "engram.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreCorrupt, match="newer than this Engram"):
        _open(engram_home, MemoryVectorIndex())


def test_changing_the_embedder_reindexes_into_new_collections(engram_home: Path) -> None:
    index = MemoryVectorIndex()
    store = MemoryStore.open(engram_home, HashEmbedder(32), lambda _p: index)
    mem = store.add(SemanticMemory(name="a", summary="b"))
    old_ns = store.namespace
    store.close()
    store = MemoryStore.open(engram_home, HashEmbedder(48), lambda _p: index)
    assert store.namespace != old_ns
    assert index.ids(f"{store.namespace}semantic") == {mem.id}
    assert store.search("a b")[0].record.id == mem.id
    store.close()


def test_time_range_excludes_out_of_range_vector_hits(fake_store: MemoryStore) -> None:
    old = fake_store.add(EpisodicMemory(summary="dentist", occurred_at=_at(1) - timedelta(days=30)))
    new = fake_store.add(EpisodicMemory(summary="dentist", occurred_at=_at(1)))
    hits = fake_store.search("dentist", since=_at(1) - timedelta(days=1))
    assert [h.record.id for h in hits] == [new.id]
    assert old.id in {h.record.id for h in fake_store.search("dentist")}


class BrokenEmbedder(HashEmbedder):
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ModelUnavailable("the embedding model folder is gone")


def test_a_broken_embedder_fails_the_write_before_anything_is_stored(engram_home: Path) -> None:
    index = MemoryVectorIndex()
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: index)
    mem = store.add(SemanticMemory(name="a", summary="kept as it was"))
    store._embedder = BrokenEmbedder()
    with pytest.raises(ModelUnavailable):
        store.add(SemanticMemory(name="b", summary="never half-written"))
    with pytest.raises(ModelUnavailable):
        store.update(mem.id, summary="changed")
    assert store.count() == 1 and store.get(mem.id) == mem
    assert [c.op for c in store.history()] == ["create"]
    store.close()
