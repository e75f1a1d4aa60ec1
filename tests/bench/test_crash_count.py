"""What bench.crash counts, on stores written by hand: a batch applied in two transactions is
applied twice, a later batch updating an earlier one's memory is not, identical memories are
duplicates, and an event not done (or gone) is lost. No model, no Chroma."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.loop import batch_id
from bench.crash_count import agreement, count, tracking
from storage.errors import NotFound
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import Event, SemanticMemory
from storage.store import MemoryStore, Write


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore.open(tmp_path, HashEmbedder(), lambda _p: MemoryVectorIndex()) as opened:
        yield opened


def queue(store: MemoryStore, *texts: str) -> list[Event]:
    events = [Event(source="screen", app="xterm", text=t) for t in texts]
    store.events.put_many(events)
    return events


def apply(store: MemoryStore, events: list[Event], *writes: Write) -> None:
    """What the memory loop does with a batch: its writes and its done marks, one transaction."""
    ids = [e.id for e in events]
    store.apply(list(writes), f"agents:{batch_id(events)}", events_done=ids)


def fact(name: str, summary: str, events: list[Event]) -> SemanticMemory:
    return SemanticMemory(name=name, summary=summary, provenance=tuple(e.id for e in events))


def test_one_batch_in_one_transaction_counts_nothing(store: MemoryStore) -> None:
    batch = queue(store, "canary0x0: Dana budget", "canary0x1: Priya plan")
    with tracking():
        apply(
            store,
            batch,
            Write("add", fact("canary0x0", "canary0x0 Dana reviewed the budget", batch[:1])),
            Write("add", fact("canary0x1", "canary0x1 Priya made the plan", batch[1:])),
        )
    store.index_events()
    for scripted in (False, True):
        counted = count(store, 2, scripted)
        assert counted["applied_twice"] == 0
        assert counted["events_lost"] == counted["duplicate_memories"] == 0
        assert counted["untracked_history_rows"] == 0
        assert counted["memories"] == 2 and counted["events_without_memory"] == 0
    assert count(store, 2, scripted=True)["memories_written_twice"] == 0
    assert agreement(store) == {"integrity_ok": True, "chroma_agrees": True, "unindexed": 0}


def test_a_batch_applied_in_two_transactions_is_applied_twice(store: MemoryStore) -> None:
    batch = queue(store, "Dana reviewed the budget with Priya", "Lunch at Aurora on Friday")
    with tracking():
        apply(store, batch, Write("add", fact("Dana", "Dana reviews budgets", batch)))
        # The same batch again (a crash between its commit and its done mark would do this),
        # worded differently: a second memory, or an update of the first.
        first = store.browse(SemanticMemory.memory_type)[0]
        apply(
            store,
            batch,
            Write("add", fact("Aurora", "Lunch is at Aurora on Fridays", batch)),
            Write("replace", first.updated(summary="Dana reviews the budgets with Priya")),
        )
    counted = count(store, 2, scripted=False)
    assert counted["applied_twice"] == 1
    assert counted["events_lost"] == 0 and counted["untracked_history_rows"] == 0


def test_a_later_batch_updating_a_memory_is_not_applied_twice(store: MemoryStore) -> None:
    one = queue(store, "Dana reviewed the budget", "Dana likes tea")
    two = queue(store, "Dana now leads the budget review")
    with tracking():
        apply(store, one, Write("add", fact("Dana", "Dana reviews the budget", one)))
        made = store.browse(SemanticMemory.memory_type)[0]
        apply(store, two, Write("replace", made.updated(summary="Dana leads the budget review")))
    counted = count(store, 3, scripted=False)
    assert counted["applied_twice"] == 0
    assert counted["later_updates"] == 1
    assert counted["events_lost"] == counted["duplicate_memories"] == 0
    # The scripted model never updates: there the same store is a memory written twice.
    assert count(store, 3, scripted=True)["memories_written_twice"] == 1


def test_identical_memories_are_duplicates(store: MemoryStore) -> None:
    one = queue(store, "Dana reviewed the budget")
    two = queue(store, "Dana reviewed the budget again")
    with tracking():
        apply(store, one, Write("add", fact("Dana", "Dana reviews the budget", one)))
        apply(store, two, Write("add", fact("Dana", "Dana reviews the budget", two)))
    counted = count(store, 2, scripted=False)
    assert counted["duplicate_memories"] == 1 and counted["applied_twice"] == 0


def test_an_event_not_done_or_gone_is_lost(store: MemoryStore) -> None:
    done = queue(store, "Dana reviewed the budget")
    queue(store, "Priya booked room Aurora")  # never applied: still pending
    with tracking():
        apply(store, done)  # a batch the model made nothing of: done, no memory
    counted = count(store, 3, scripted=False)  # a third event was queued and has vanished
    assert counted["events_lost"] == 2
    assert counted["not_done"] == {"pending: ": 1}
    assert counted["events_without_memory"] == 2
    # The scripted model makes one memory per event, named after its canary: there a done
    # event without its memory is lost too (the first one here, and this canary).
    canary = queue(store, "canary1x0: Dana budget")
    with tracking():
        apply(store, canary)
    assert count(store, 4, scripted=False)["events_lost"] == 2
    assert count(store, 4, scripted=True)["events_lost"] == 4


def test_history_written_without_tracking_counts_as_transactions_of_its_own(
    store: MemoryStore,
) -> None:
    batch = queue(store, "Dana reviewed the budget", "Priya booked room Aurora")
    apply(
        store,
        batch,
        Write("add", fact("Dana", "Dana reviews the budget", batch[:1])),
        Write("add", fact("Aurora", "Priya books room Aurora", batch[1:])),
    )
    counted = count(store, 2, scripted=False)
    assert counted["untracked_history_rows"] == 2
    assert counted["applied_twice"] == 1  # a gap in the record shows, it never hides


def test_a_rolled_back_transaction_leaves_no_record(store: MemoryStore) -> None:
    batch = queue(store, "Dana reviewed the budget")
    missing = fact("Priya", "Priya books rooms", batch)  # never stored: replacing it fails
    with tracking(), pytest.raises(NotFound):  # after the first write's history row
        apply(
            store,
            batch,
            Write("add", fact("Dana", "Dana reviews the budget", batch)),
            Write("replace", missing),
        )
    with tracking():
        apply(store, batch, Write("add", fact("Dana", "Dana reviews the budget", batch)))
    counted = count(store, 1, scripted=False)
    assert counted["applied_twice"] == 0 and counted["memories"] == 1
