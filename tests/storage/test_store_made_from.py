"""What the timeline and the activity panel ask of the store: the memories made from given
events, and how many memories were made since a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.records import Event, SemanticMemory
from storage.store import MemoryStore


def read(text: str) -> Event:
    return Event(source="screen", app="Firefox", window_title="Q3 budget", text=text)


def test_the_store_finds_the_memories_made_from_events(fake_store: MemoryStore) -> None:
    a, b = read("budget"), read("forecast")
    fake_store.events.put(a)
    fake_store.events.put(b)
    made = fake_store.add(SemanticMemory(name="Q3", summary="budget 5k", provenance=(a.id,)))
    fake_store.add(SemanticMemory(name="other", summary="unrelated", provenance=("evt_x",)))
    assert [m.id for m in fake_store.made_from([a.id, b.id])] == [made.id]
    assert fake_store.made_from([]) == []
    today = datetime.now(UTC) - timedelta(minutes=1)
    assert fake_store.count_created(today) == 2
    assert fake_store.count_created(today, today + timedelta(seconds=1)) == 0
