"""No silent degradation: lost vectors are rebuilt, a damaged Chroma folder is rebuilt in the
same process, a full disk is called a full disk, an empty database beside an older store's
files is refused, and failed events can be put back in the queue from the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app import bootstrap
from app.cli import main
from storage.errors import DiskFull, StoreCorrupt
from storage.events import MAX_ATTEMPTS
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import Event, MemoryType, SemanticMemory
from storage.store import MemoryStore
from storage.vector_chroma import ChromaVectorIndex
from tests.helpers.engram_cli import engram


def chroma_store(home: Path) -> MemoryStore:
    return MemoryStore.open(home, HashEmbedder(), ChromaVectorIndex.persistent)


def fake_store(home: Path) -> MemoryStore:
    return MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex())


def assert_found_by_vector(store: MemoryStore, memory_id: str, query: str) -> None:
    assert memory_id in store._index.ids(store.namespace + "semantic")
    hits = store.search(query, types=[MemoryType.SEMANTIC], k=3)
    assert "vector" in next(h for h in hits if h.record.id == memory_id).ranks


@pytest.mark.real
def test_a_deleted_chroma_database_in_a_kept_folder_is_rebuilt(engram_home: Path) -> None:
    with chroma_store(engram_home) as store:
        mem = store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
    (engram_home / "chroma" / "chroma.sqlite3").unlink()
    assert (engram_home / "chroma").is_dir()
    with chroma_store(engram_home) as store:
        assert store.stats()["unindexed"] == 0  # true now: the open re-embedded it
        assert_found_by_vector(store, mem.id, "Priya leads the data team")


@pytest.mark.real
def test_a_damaged_chroma_folder_is_rebuilt_in_the_same_process(engram_home: Path) -> None:
    with chroma_store(engram_home) as store:
        mem = store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
    (engram_home / "chroma" / "chroma.sqlite3").write_bytes(b"not sqlite at all " * 500)
    with chroma_store(engram_home) as store:  # chromadb's per-path client cache was the trap
        assert any(p.name.startswith("chroma.damaged-") for p in engram_home.iterdir())
        assert_found_by_vector(store, mem.id, "Priya leads the data team")
    with chroma_store(engram_home) as store:  # and the rebuilt one opens as any other
        assert_found_by_vector(store, mem.id, "Priya leads the data team")


class FullDisk:
    """A real SQLite connection whose writes fail as they do on a full disk."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN", "PRAGMA JOURNAL_MODE", "CREATE")

    def __init__(self, conn: sqlite3.Connection) -> None:
        object.__setattr__(self, "_conn", conn)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith(self.WRITES):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def executescript(self, sql: str) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)


def test_a_full_disk_during_a_write_says_so(engram_home: Path) -> None:
    store = fake_store(engram_home)
    try:
        kept = store.add(SemanticMemory(name="kept", summary="written before the disk filled"))
        store._db._conn = FullDisk(store._db._conn)  # type: ignore[assignment]
        with pytest.raises(DiskFull, match="is full") as caught:
            store.add(SemanticMemory(name="lost", summary="the disk is full now"))
        assert "move it aside" not in str(caught.value)
    finally:
        store._db._conn = store._db._conn._conn  # type: ignore[attr-defined]
        store.close()
    with fake_store(engram_home) as store:
        assert [r.id for r in store.browse()] == [kept.id]


def test_a_full_disk_at_open_says_the_disk_is_full_not_move_it_aside(
    engram_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_store(engram_home).close()
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: FullDisk(connect(*a, **k)))
    monkeypatch.setattr(bootstrap, "make_embedder", lambda settings: HashEmbedder())
    monkeypatch.setattr(
        bootstrap, "make_index_factory", lambda settings: lambda _p: MemoryVectorIndex()
    )
    code = main(["add", "--type", "semantic", "a fact for a full disk"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("engram: error: the disk holding") and "is full" in err
    assert "free some space" in err
    assert "move it aside" not in err and "not a readable" not in err


def test_an_empty_database_beside_an_older_stores_files_is_refused(engram_home: Path) -> None:
    with fake_store(engram_home) as store:
        store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
    (engram_home / "chroma").mkdir()
    key = (engram_home / "vault.key").read_bytes()
    for extra in ("engram.sqlite3-wal", "engram.sqlite3-shm"):
        (engram_home / extra).unlink(missing_ok=True)
    (engram_home / "engram.sqlite3").write_bytes(b"")
    with pytest.raises(StoreCorrupt, match=r"empty \(0 bytes\).*vault.key and chroma"):
        fake_store(engram_home)
    ran = engram(engram_home, "stats")
    assert ran.code == 2 and "Traceback" not in ran.err
    assert ran.err.startswith("engram: error: ") and "restore engram.sqlite3" in ran.err
    assert (engram_home / "engram.sqlite3").stat().st_size == 0  # left as it was
    assert (engram_home / "vault.key").read_bytes() == key


def test_failed_events_are_listed_and_retried_from_the_cli(
    engram_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_store(engram_home) as store:
        event = store.events.put(Event(source="screen", text="Meeting with Dana on Friday"))
        for _ in range(MAX_ATTEMPTS):
            assert [e.id for e in store.events.claim(5)] == [event.id]
            store.events.release([event.id], error="the model timed out")
    monkeypatch.setattr(bootstrap, "make_embedder", lambda settings: HashEmbedder())
    monkeypatch.setattr(
        bootstrap, "make_index_factory", lambda settings: lambda _p: MemoryVectorIndex()
    )
    assert main(["events", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["events"]["failed"] == 1
    assert shown["failed"][0]["id"] == event.id
    assert shown["failed"][0]["error"] == "the model timed out"
    assert shown["failed"][0]["attempts"] == MAX_ATTEMPTS

    assert main(["events", "--retry-failed", "--json"]) == 0
    retried = json.loads(capsys.readouterr().out)
    assert retried["retried"] == 1 and retried["failed"] == []
    assert retried["events"]["pending"] == 1 and retried["events"]["failed"] == 0
    with fake_store(engram_home) as store:
        assert [e.id for e in store.events.claim(5)] == [event.id]
