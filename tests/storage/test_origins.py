"""Origins in storage: the migration that gives stored memories one, and the last guard."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage.errors import ProtectedMemory
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import SemanticMemory
from storage.store import MemoryStore, Write


def _open(home: Path) -> MemoryStore:
    return MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex())


def test_stored_memories_get_their_origin_from_history(engram_home: Path) -> None:
    with _open(engram_home) as store:
        mine = store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
        theirs = store.add(SemanticMemory(name="Kyoto", summary="Trip in May"), "agents:b_1")
        store.set_core("human", "Name: Sam")
        store.append_core("human", "Likes tea", "agents:b_2")
        store.append_core("human", "Lives in Lisbon")
    db = sqlite3.connect(engram_home / "engram.sqlite3")
    for row_id, data in db.execute("SELECT id, data FROM memories").fetchall():
        old = {k: v for k, v in json.loads(data).items() if k not in ("origin", "line_origins")}
        db.execute("UPDATE memories SET data = ? WHERE id = ?", (json.dumps(old), row_id))
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with _open(engram_home) as store:
        assert store.get(mine.id).origin == "user"
        assert store.get(theirs.id).origin == "agent"
        block = store.core_block("human")
        assert block is not None and block.lines() == [
            ("Name: Sam", "user"), ("Likes tea", "agent"), ("Lives in Lisbon", "user")
        ]  # fmt: skip


def test_the_store_refuses_an_agent_write_to_the_users_words(fake_store: MemoryStore) -> None:
    mine = fake_store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
    block = fake_store.set_core("human", "Name: Sam")
    for write in (
        Write("replace", mine.updated(summary="Engram - Chat | Memories")),
        Write("delete", mine),
        Write("replace", block.updated(value="Who owns the Q3 budget review?")),
        Write("delete", block),
    ):
        with pytest.raises(ProtectedMemory):
            fake_store.apply([write], "agents:b_x")
    assert fake_store.get(mine.id) == mine and fake_store.get(block.id) == block
    grown = fake_store.apply([Write("replace", block.updated(value="Name: Sam\nLikes tea"))],
                             "agents:b_x")[0]  # fmt: skip
    assert grown.origin == "user" and grown.line_origins == ("user", "agent")  # type: ignore[attr-defined]
    forged = SemanticMemory(name="Kyoto", summary="Trip", origin="user")
    assert fake_store.add(forged, "agents:b_x").origin == "agent"
    with pytest.raises(ValueError, match="unknown origin"):
        SemanticMemory(name="x", summary="y", origin="robot")


def test_origins_and_history_actors_read_as_who_wrote_them() -> None:
    from storage.origin import actor_label, origin_label

    assert origin_label("user") == "you"
    assert origin_label("agent") == "the memory agents"
    assert origin_label("import:locomo") == "an import (locomo)"
    assert origin_label("mcp:claude") == "MCP client claude"
    assert actor_label("agents:b_12") == "the memory agents"
    assert actor_label("user") == "you"
    assert actor_label("vault-scrub").startswith("Engram")


def test_last_undoable_is_what_undo_reverts(engram_home: Path) -> None:
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:
        assert store.last_undoable() is None
        fact = store.add(SemanticMemory(name="Desk", summary="floor 2"))
        store.add(SemanticMemory(name="Lamp", summary="by the window"), actor="agents:b_1")
        last = store.last_undoable()
        assert last is not None and (last.op, last.actor) == ("create", "agents:b_1")
        assert store.undo().reverts == last.seq
        after = store.last_undoable()
        assert after is not None and (after.memory_id, after.actor) == (fact.id, "user")
    finally:
        store.close()
