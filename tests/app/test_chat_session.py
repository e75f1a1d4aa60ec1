"""The chat session over a real store (SQLite, the in-memory vector index) and the scripted
model: conversations start with their first question, are kept across a reopened store, can be
reopened with their sources and deleted with their turns; schema step 4 on an older database."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chat import ChatAgent, ChatConfig
from agents.llm.fakes import ScriptedChatModel
from app.chat_session import ChatSession
from storage.conversations import turn_of
from storage.errors import NotFound
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import Event, SemanticMemory
from storage.sqlite_db import SCHEMA_VERSION
from storage.store import MemoryStore


def _open(home: Path) -> MemoryStore:
    return MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex())


def _session(store: MemoryStore, model: ScriptedChatModel) -> ChatSession:
    agent = ChatAgent(store, model, ChatConfig())
    return ChatSession(lambda: store, lambda: agent)


def _ask(session: ChatSession, question: str) -> str:
    chunks: list[str] = []
    return session.ask(question, chunks.append).answer


def test_turns_go_to_the_conversation_and_survive_reopening_the_store(tmp_path: Path) -> None:
    store = _open(tmp_path)
    miso = store.add(SemanticMemory(name="Miso", summary="Miso is the user's grey cat"))
    model = ScriptedChatModel(default=lambda _r: "Miso [M1].")
    session = _session(store, model)
    assert session.current is None and session.conversations() == []
    _ask(session, "What is my cat called?")
    first = session.current
    assert first is not None
    _ask(session, "What colour is my cat?")
    assert session.current == first  # the same conversation
    assert [m.content for m in model.calls[-1].messages[1:3]] == [
        "What is my cat called?",
        "Miso [M1].",
    ]
    session.new()
    assert session.current is None and session.history() == ()
    _ask(session, "Is Miso grey?")
    second = session.current
    store.close()

    store = _open(tmp_path)  # a restart
    session = _session(store, ScriptedChatModel(default=lambda _r: "Yes [M1]."))
    listed = session.conversations()
    assert [(c.id, c.title, c.turns) for c in listed] == [
        (second, "Is Miso grey?", 1),
        (first, "What is my cat called?", 2),
    ]
    turns = session.open(first)
    assert [(t.question, t.answer) for t, _ in turns] == [
        ("What is my cat called?", "Miso [M1]."),
        ("What colour is my cat?", "Miso [M1]."),
    ]
    [citation] = turns[0][1]
    assert (citation.tag, citation.memory_id, citation.explicit) == ("M1", miso.id, True)
    assert session.current == first and len(session.history()) == 4
    _ask(session, "Are you sure about my cat?")
    assert len(store.conversations.turns(first)) == 3
    assert session.conversations()[0].id == first  # used last, listed first
    store.close()


def test_deleting_a_conversation_removes_its_turns_everywhere(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.add(SemanticMemory(name="Miso", summary="Miso is the user's grey cat"))
    session = _session(store, ScriptedChatModel(default=lambda _r: "Miso [M1]."))
    _ask(session, "What is my cat called?")
    doomed = session.current
    assert doomed is not None
    [turn] = store.conversations.turns(doomed)
    store.index_events()
    session.new()
    _ask(session, "Is my cat grey?")
    kept = session.current
    assert kept is not None
    assert store.search("cat called", events=True)  # the turn's event is searchable

    session.open(doomed)
    assert session.delete(doomed) == 1
    assert session.current is None and session.history() == ()
    assert [c.id for c in session.conversations()] == [kept]
    with pytest.raises(NotFound):
        store.events.get(turn.event_id)
    assert store.events.expired([turn.event_id]) == [turn.event_id]  # provenance says gone
    hits = store.search("What is my cat called", events=True)
    assert turn.event_id not in [h.item.id for h in hits]
    with pytest.raises(NotFound):
        session.open(doomed)
    with pytest.raises(NotFound):
        session.delete(doomed)
    assert len(store.conversations.turns(kept)) == 1
    store.close()


def test_turn_text_round_trips_and_cancelled_turns_are_kept() -> None:
    event = Event(
        source="chat",
        text="User asked: When?\nEngram answered: (no answer)",
        metadata={"cited": "", "tags": "", "cancelled": True, "conversation_id": "conv_x"},
    )
    turn = turn_of(event)
    assert (turn.question, turn.answer, turn.cited, turn.cancelled) == ("When?", "", (), True)


def test_schema_step_4_adds_conversations_to_an_older_database(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.events.put(Event(source="chat", text="User asked: hi\nEngram answered: hello"))
    with store._db.transaction() as conn:
        conn.execute("DROP TABLE conversations")
        conn.execute("DROP INDEX events_conversation")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    store.close()
    store = _open(tmp_path)
    assert store._db.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert store.conversations.recent() == []  # an old chat turn belongs to none
    assert store.events.counts()["pending"] == 1
    store.close()
