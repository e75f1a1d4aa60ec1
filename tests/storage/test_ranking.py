"""Re-scoring the fused list (named actors, a second keyword round) end to end on a store
with the deterministic embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.fusion import EVENT, Candidate, named_actor_boost
from storage.records import EpisodicMemory, Event, MemoryType, SemanticMemory
from storage.rerank import expansion_words, indexed_texts
from storage.search import SearchOptions
from storage.sqlite_db import Database
from storage.store import EventHit, MemoryStore

E = MemoryType.EPISODIC


@pytest.fixture
def db(fake_store: MemoryStore, engram_home: Path) -> Iterator[Database]:
    database = Database(engram_home / "engram.sqlite3")
    yield database
    database.close()


def _turn(actor: str, summary: str) -> EpisodicMemory:
    return EpisodicMemory(actor=actor, summary=summary, event_type="conversation")


def test_a_named_actor_lifts_their_own_memories_over_mentions_of_them(
    fake_store: MemoryStore,
) -> None:
    hers = fake_store.add(_turn("Melanie", "Pottery class again, I love the wheel"))
    about = fake_store.add(_turn("Caroline", "Melanie loves pottery and pottery loves Melanie"))
    fake_store.add(_turn("Caroline", "I went to a support group"))
    query = "What does Melanie love about pottery?"
    unboosted = SearchOptions(actor_weight=0.0)
    plain = [h.record.id for h in fake_store.search(query, [E], k=2, options=unboosted)]
    assert plain[0] == about.id  # more shared words
    boosted = fake_store.search(query, [E], k=2)  # the default boost
    assert [h.record.id for h in boosted] == [hers.id, about.id]
    assert boosted[0].ranks.get("actor") == 1 and "actor" not in boosted[1].ranks


def test_a_named_speaker_lifts_their_own_imported_messages_over_mentions_of_them(
    fake_store: MemoryStore, db: Database
) -> None:
    def said(speaker: str, text: str) -> Event:
        return Event(source="import", app="chat", text=text, metadata={"speaker": speaker})

    hers = said("Melanie", "Pottery class again, I love the wheel")
    about = said("Caroline", "Melanie loves pottery and pottery loves Melanie")
    screen = Event(source="screen", app="Firefox", text="Melanie: pottery wheel for sale")
    fake_store.events.put_many([hers, about, screen])
    query = "What does Melanie love about pottery?"
    cands = [Candidate(e.id, EVENT, score) for e, score in ((about, 1.0), (screen, 0.8),
                                                            (hers, 0.5))]  # fmt: skip
    out = named_actor_boost(db, query, cands, 0.6)
    assert [c.id for c in out] == [hers.id, about.id, screen.id]  # a page has no speaker
    assert out[0].ranks == {"actor": 1} and out[0].score == pytest.approx(1.1)
    # end to end: the boost is on by default for events too
    found = fake_store.search(query, [], k=3, events=True)
    assert [h.ranks.get("actor") for h in found if isinstance(h, EventHit)
            and h.event.id == hers.id] == [1]  # fmt: skip


def test_the_actor_boost_ignores_unnamed_actors_other_types_and_stop_words(
    fake_store: MemoryStore, db: Database
) -> None:
    mine = fake_store.add(_turn("user", "booked the flight"))
    fact = fake_store.add(SemanticMemory(name="Melanie", summary="a friend who paints"))
    cands = [Candidate(fact.id, MemoryType.SEMANTIC, 0.9), Candidate(mine.id, E, 0.5)]
    # a semantic memory has no actor; the user's memories are not lifted by "Melanie"
    assert named_actor_boost(db, "what did Melanie book", cands, 1.0) == cands
    assert named_actor_boost(db, "the flight", cands, 0.0) == cands
    who = fake_store.add(_turn("Ann Lee", "ran the Lisbon marathon"))
    out = named_actor_boost(db, "when did Lee run?", [*cands, Candidate(who.id, E, 0.1)], 1.0)
    assert [c.id for c in out] == [who.id, fact.id, mine.id]
    assert out[0].score == pytest.approx(1.1)


def test_expansion_words_prefer_shared_words_then_names_and_skip_the_query() -> None:
    texts = [
        "Melanie: we went camping near Lake Tahoe with the kids",
        "Melanie: the kids loved camping, we roasted marshmallows",
        "Melanie: I signed up for a pottery class on 12 July",
    ]
    out = expansion_words("Where did Melanie go camping?", texts, limit=4)
    assert out == ["kids", "lake", "tahoe", "12"]  # shared first, then names and numbers
    assert "melanie" not in out and "camping" not in out and "the" not in out
    assert "roasted" not in expansion_words("camping", texts, limit=20)  # one text, no name
    assert expansion_words("anything", [], limit=5) == []


def test_indexed_texts_reads_memories_and_events_by_id(
    fake_store: MemoryStore, db: Database
) -> None:
    mem = fake_store.add(_turn("Ann", "ran the Lisbon marathon"))
    texts = indexed_texts(db, [mem.id, "ep_missing"])
    assert set(texts) == {mem.id}
    assert "Lisbon marathon" in texts[mem.id]


def test_a_second_round_finds_the_hop_the_question_does_not_name(fake_store: MemoryStore) -> None:
    first = fake_store.add(_turn("Ann", "My sister Zoe moved to Porto last spring"))
    second = fake_store.add(_turn("Cat", "Zoe sent photos of her new flat and the river"))
    for i in range(6):
        fake_store.add(_turn("Bob", f"Training plan week {i}: long runs on Sunday"))
    query = "Where did Ann's sister move?"
    opts = SearchOptions(vector_weight=0.0)
    plain = [h.record.id for h in fake_store.search(query, [E], k=2, options=opts)]
    assert plain[0] == first.id and second.id not in plain
    opts = SearchOptions(expand_weight=1.0, vector_weight=0.0, expand_from=1)
    hits = fake_store.search(query, [E], k=2, options=opts)
    assert [h.record.id for h in hits] == [first.id, second.id]
    assert "expanded" in hits[1].ranks and "keyword" not in hits[1].ranks


def test_expansion_words_skip_speaker_labels_and_sentence_starts() -> None:
    texts = [
        "Bob: Training starts at dawn. Then we met Zoe\nAnn: Lovely",
        "Bob: my printer jammed",
    ]
    out = expansion_words("what happened?", texts, limit=10)
    assert "bob" not in out and "ann" not in out  # who said it, in both texts
    assert out == ["zoe"]  # "Training", "Then", "Lovely" only start a sentence
