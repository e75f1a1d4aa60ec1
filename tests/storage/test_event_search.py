"""Raw events are searchable the moment they are stored: keyword rows in the storing
transaction, vectors in the background, fused with the memories; repeated reads are merged;
retention removes old events with their vectors and keyword rows while their memories stay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.events import EVENT_COLLECTION, novel_lines, repeats
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import EpisodicMemory, Event, MemoryType
from storage.search import SearchOptions
from storage.sqlite_db import SCHEMA_VERSION
from storage.store import EventHit, MemoryStore, SearchHit
from storage.text import content_words

VECTORS_ONLY = SearchOptions(keyword_weight=0.0, time_weight=0.0)
KEYWORDS_ONLY = SearchOptions(vector_weight=0.0, time_weight=0.0)
XTERM = "Meeting with Dana about the Q3 budget on Friday at 3pm, Room: Aurora"


def screen_event(text: str = XTERM, at: datetime | None = None, app: str = "xterm") -> Event:
    return Event(
        source="screen",
        app=app,
        window_title="~/notes",
        text=text,
        occurred_at=at or datetime.now(UTC),
    )


def test_an_event_is_found_by_keyword_at_once_and_by_vector_after_indexing(
    fake_store: MemoryStore,
) -> None:
    event = fake_store.events.put(screen_event())
    hits = fake_store.search("Aurora budget meeting")  # no agent ran, no vector yet
    assert isinstance(hits[0], EventHit) and hits[0].event.id == event.id
    assert "keyword" in hits[0].ranks and "vector" not in hits[0].ranks
    assert fake_store.search("Aurora budget meeting", options=VECTORS_ONLY) == []
    assert fake_store.stats()["events_unindexed"] == 1
    assert fake_store.index_events() == 1
    (hit,) = fake_store.search("Aurora budget meeting", options=VECTORS_ONLY)
    assert isinstance(hit, EventHit) and hit.event.id == event.id and "vector" in hit.ranks
    assert fake_store.stats()["events_unindexed"] == 0
    assert fake_store.index_events() == 0  # nothing is embedded twice


def test_events_and_memories_are_fused_and_the_filter_hides_events(
    fake_store: MemoryStore,
) -> None:
    event = fake_store.events.put(screen_event())
    memory = fake_store.add(EpisodicMemory(summary="Budget meeting with Dana in room Aurora"))
    fake_store.index_events()
    found = {h.item.id for h in fake_store.search("Dana Aurora budget")}
    assert found == {event.id, memory.id}
    for hidden in (
        fake_store.search("Dana Aurora budget", events=False),
        fake_store.search("Dana Aurora budget", types=[MemoryType.EPISODIC]),
    ):
        assert [h.item.id for h in hidden] == [memory.id]
        assert all(isinstance(h, SearchHit) for h in hidden)
    only = fake_store.search("Dana Aurora", types=[MemoryType.SEMANTIC], events=True)
    assert [h.item.id for h in only] == [event.id]


def test_an_event_search_keeps_to_the_time_range(fake_store: MemoryStore) -> None:
    old = datetime(2026, 1, 5, 10, tzinfo=UTC)
    fake_store.events.put(screen_event(at=old))
    inside = fake_store.search("Aurora", since=old - timedelta(hours=1), until=old + timedelta(1))
    assert len(inside) == 1
    assert fake_store.search("Aurora", since=old + timedelta(hours=1)) == []
    dated = fake_store.search("what was on 5 January 2026", options=SearchOptions())
    assert [h.item.id for h in dated if isinstance(h, EventHit)]  # the date boost sees events


def test_rewrite_text_keeps_the_keyword_index_in_step(fake_store: MemoryStore) -> None:
    event = fake_store.events.put(screen_event("door code 4711 for the Aurora room"))
    fake_store.index_events()
    fake_store.events.rewrite_text(event.id, "door code [value withheld] for the Aurora room")
    assert fake_store.search("4711", options=KEYWORDS_ONLY) == []
    assert [h.item.id for h in fake_store.search("withheld Aurora")] == [event.id]
    assert fake_store.events.get(event.id).text.startswith("door code [value withheld]")
    assert fake_store.stats()["events_unindexed"] == 1  # its vector is redone


# ----- repeated reads ---------------------------------------------------------------------------


def test_a_read_repeats_an_event_when_most_of_its_content_words_are_in_it() -> None:
    page = " ".join(f"topic{n}" for n in range(10))
    assert repeats(page, page)
    assert repeats(page + " extra1 extra2", page)  # 10 of 12 words: 83 %
    assert not repeats(page + " extra1 extra2 extra3", page)  # 10 of 13: 77 %
    assert not repeats("the of and", page)  # no content words: repeats nothing
    assert content_words("Room: Aurora") == {"room", "aurora"}
    assert novel_lines("topic1 and topic2\nbrand new words\n", page) == ["brand new words"]


def test_a_repeated_read_is_stored_once_with_the_times_it_was_seen(
    fake_store: MemoryStore,
) -> None:
    t0 = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
    page = "\n".join(f"line {n}: the budget review item{n}" for n in range(10))
    event = fake_store.events.put(screen_event(page, at=t0))
    merged = fake_store.events.seen_again(
        event.id, page + "\nnewly typed Aurora", t0 + timedelta(1)
    )
    assert merged is not None and merged.id == event.id
    assert merged.text.endswith("\nnewly typed Aurora")
    assert merged.seen_at == (t0 + timedelta(1),)
    again = fake_store.events.seen_again(event.id, page, t0 + timedelta(2))
    assert again is not None and again.text == merged.text and len(again.seen_at) == 2
    assert again.last_seen == t0 + timedelta(2)
    assert fake_store.events.counts()["pending"] == 1  # one row, not three
    assert [h.item.id for h in fake_store.search("Aurora")] == [event.id]  # the new words too
    assert fake_store.events.get(event.id) == again


def test_a_read_adding_words_to_an_event_the_agents_took_is_its_own_event(
    fake_store: MemoryStore,
) -> None:
    event = fake_store.events.put(screen_event("alpha beta gamma delta epsilon zeta"))
    fake_store.events.claim(10)
    fake_store.events.done([event.id])
    assert fake_store.events.seen_again(event.id, "alpha beta gamma delta epsilon eta") is None
    seen = fake_store.events.seen_again(event.id, "alpha beta gamma delta epsilon zeta")
    assert seen is not None and len(seen.seen_at) == 1  # nothing new: only the time
    assert fake_store.events.seen_again("evt_gone", "alpha") is None


# ----- retention --------------------------------------------------------------------------------


def test_retention_removes_old_done_events_with_vectors_while_memories_stay(
    engram_home: Path,
) -> None:
    index = MemoryVectorIndex()
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: index)
    try:
        now = datetime.now(UTC)
        old = store.events.put(screen_event(at=now - timedelta(days=120)))
        pending_old = store.events.put(screen_event("Aurora pending read", now - timedelta(200)))
        recent = store.events.put(screen_event("Aurora recent read", now - timedelta(days=3)))
        store.events.claim(1)  # the oldest by seq: `old`
        memory = store.add(
            EpisodicMemory(summary="Budget meeting in Aurora", provenance=(old.id,)), "agent"
        )
        store.events.done([old.id, recent.id])
        store.index_events()
        collection = store.namespace + EVENT_COLLECTION
        assert old.id in index.ids(collection)
        assert store.expire_events(90, dry_run=True) == 1  # the count shown before it runs
        assert store.events.counts()["done"] == 2  # a dry run removes nothing
        assert store.expire_events(0) == 0  # 0 keeps every event
        assert store.expire_events(90) == 1
        assert old.id not in index.ids(collection) and recent.id in index.ids(collection)
        assert store.events.get_many([old.id, pending_old.id]) == [pending_old]  # never pending
        assert old.id not in {h.item.id for h in store.search("Dana Aurora budget Friday")}
        assert store.get(memory.id).provenance == (old.id,)
        assert store.events.expired([old.id, recent.id, "D1:1"]) == [old.id]
    finally:
        store.close()


def test_a_version_1_database_gets_its_events_indexed(engram_home: Path) -> None:
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    event = store.events.put(screen_event())
    store.close()
    conn = sqlite3.connect(engram_home / "engram.sqlite3")  # back to what version 1 had
    conn.executescript(
        "DROP TABLE event_fts; DROP TABLE expired_events; DROP INDEX events_unindexed;"
        "DROP INDEX events_last_seen; ALTER TABLE events DROP COLUMN indexed;"
        "ALTER TABLE events DROP COLUMN last_seen;"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
    )
    conn.close()
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:
        assert [h.item.id for h in store.search("Aurora")] == [event.id]
        assert store.events.count_unindexed() == 1 and store.index_events() == 1
        assert store._db.get_meta("schema_version") == str(SCHEMA_VERSION)
    finally:
        store.close()


@pytest.mark.real
def test_real_chroma_and_minilm_find_an_event_by_meaning_after_background_indexing(
    real_store: MemoryStore,
) -> None:
    event = real_store.events.put(screen_event())
    real_store.events.put(screen_event("Compiling the kernel module, 3 warnings", app="make"))
    (first, *_) = real_store.search("Aurora")  # keyword, at once
    assert isinstance(first, EventHit) and first.event.id == event.id
    assert real_store.index_events() == 2
    hits = real_store.search("when do I see Dana to talk about money?", options=VECTORS_ONLY)
    assert isinstance(hits[0], EventHit) and hits[0].event.id == event.id


def _chroma(path: Path) -> Any:
    from storage.vector_chroma import ChromaVectorIndex

    return ChromaVectorIndex.persistent(path)


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(lambda _path: MemoryVectorIndex(), id="memory-index"),
        pytest.param(_chroma, id="chroma", marks=pytest.mark.real),
    ],
)
def test_an_events_only_search_fills_its_limit_past_memories_that_rank_higher(
    engram_home: Path, index: Any
) -> None:
    """No memory types and `events=True`: only events are ranked, so memories that match the
    query better (here 150 of them, more than any candidate pool) cannot crowd them out."""
    with MemoryStore.open(engram_home, HashEmbedder(), index) as store:
        for n in range(150):
            store.add(EpisodicMemory(summary=f"kayak kayak {n}"))
        events = {
            store.events.put(screen_event(f"Read {n}: the kayak club meets by the old harbour")).id
            for n in range(25)
        }
        store.index_events()
        mixed = store.search("kayak", k=20)
        assert not any(isinstance(h, EventHit) for h in mixed)  # they do crowd the events out
        only = store.search("kayak", types=[], k=20, events=True)
        assert len(only) == 20 and all(isinstance(h, EventHit) for h in only)
        assert {h.item.id for h in only} <= events
        assert {h.item.id for h in store.search("kayak", [], k=40, events=True)} == events
        today = datetime.now(UTC).strftime("%d %B %Y")  # the date ranking keeps to events too
        dated = store.search(f"kayak club on {today}", types=[], k=20, events=True)
        assert len(dated) == 20 and all(isinstance(h, EventHit) for h in dated)
        assert len(store.search("kayak", types=[], k=5)) == 5  # no types, no events: all six


def _turn(speaker: str, text: str, session: str = "session 1") -> Event:
    return Event(
        source="import", app="whatsapp", window_title=session, text=f"{speaker}: {text}",
        metadata={"speaker": speaker},
    )  # fmt: skip


def test_a_reply_is_found_by_the_turns_it_answers(engram_home: Path) -> None:
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:
        asked = _turn("Ann", "Did you go to the Lyon marathon?")
        reply = _turn("Bob", "Yes, last Sunday! It was hard.")
        other = _turn("Cid", "Nice.", session="another chat")
        store.events.put_many([asked, reply, other])
        later = _turn("Ann", "Well done.")
        store.events.put(later)  # one at a time, as a chat turn comes: stored turns count
        stored = {e.id: e for e in store.events.get_many([asked.id, reply.id, other.id, later.id])}
        assert stored[asked.id].context == "" and stored[other.id].context == ""
        assert stored[reply.id].context == asked.text  # only its own conversation
        assert stored[later.id].context == f"{asked.text}\n{reply.text}"
        assert stored[reply.id].text == reply.text  # the text itself is not changed
        found = [h.item.id for h in store.search("Lyon marathon", k=5)]
        assert found[:2] == [asked.id, reply.id]
    finally:
        store.close()


def test_schema_step_5_gives_stored_turns_their_context(engram_home: Path) -> None:
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    turns = [_turn("Ann", "Did you go to the Lyon marathon?"), _turn("Bob", "Yes, last Sunday!")]
    screen = screen_event()
    store.events.put_many([*turns, screen])
    assert store.index_events() == 3
    with store._db.transaction() as conn:  # back to what version 4 stored: no contexts
        for e in turns:
            bare = e.model_copy(update={"context": ""})
            conn.execute("UPDATE events SET data = ? WHERE id = ?", (bare.model_dump_json(), e.id))
            conn.execute(
                "UPDATE event_fts SET text = ? WHERE rowid = "
                "(SELECT seq FROM events WHERE id = ?)", (bare.keyword_text(), e.id),
            )  # fmt: skip
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    assert store.search("marathon", k=5)[0].item.id == turns[0].id
    store.close()
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:
        reply = store.events.get(turns[1].id)
        assert reply.context == turns[0].text and store.events.get(turns[0].id).context == ""
        assert store.events.count_unindexed() == 0  # a vector is of the turn's own text
        assert {h.item.id for h in store.search("marathon", k=5)} == {e.id for e in turns}
        assert store._db.get_meta("schema_version") == str(SCHEMA_VERSION)
    finally:
        store.close()
