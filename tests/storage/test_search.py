"""Hybrid search internals: dates named in a query, score fusion, and the date boost end to end
on a store with the deterministic embedder."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.fusion import fuse, fuse_scores
from storage.records import EpisodicMemory, MemoryType, SemanticMemory
from storage.search import SearchOptions, query_dates, time_closeness
from storage.sqlite_db import Database
from storage.store import MemoryStore

E = MemoryType.EPISODIC


@pytest.fixture
def db(fake_store: MemoryStore, engram_home: Path) -> Iterator[Database]:
    """A second connection to the fake store's database, for the search functions that take one."""
    database = Database(engram_home / "engram.sqlite3")
    yield database
    database.close()


def _day(y: int, m: int, d: int) -> tuple[datetime, datetime]:
    start = datetime(y, m, d, tzinfo=UTC)
    return start, start + timedelta(days=1)


@pytest.mark.parametrize(
    "text",
    [
        "what did I buy on 3 June, 2023?",
        "what did I buy on June 3, 2023?",
        "what did I buy on June 3rd 2023?",
        "what did I buy on the 3rd of Jun 2023?",
        "what did I buy on 2023-06-03?",
    ],
)
def test_query_dates_finds_a_day_in_common_spellings(text: str) -> None:
    assert query_dates(text) == [_day(2023, 6, 3)]


def test_query_dates_finds_months_and_ignores_vague_or_impossible_dates() -> None:
    december = (datetime(2023, 12, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert query_dates("Which class did Maria start in December 2023?") == [december]
    assert query_dates("camping in June") == []
    assert query_dates("back in 2022") == []
    assert query_dates("on 31 February, 2023") == []
    assert query_dates("from 1 May, 2023 to May 9, 2023") == [_day(2023, 5, 1), _day(2023, 5, 9)]


def test_time_closeness_is_one_inside_and_fades_outside() -> None:
    day = [_day(2023, 6, 3)]
    noon = datetime(2023, 6, 3, 12, tzinfo=UTC).timestamp()
    week_later = datetime(2023, 6, 11, tzinfo=UTC).timestamp()
    assert time_closeness(noon, day, 7.0) == 1.0
    assert time_closeness(week_later, day, 7.0) == pytest.approx(0.368, abs=0.01)
    assert time_closeness(noon, [], 7.0) == 0.0


def test_score_fusion_keeps_a_clear_keyword_winner_ahead() -> None:
    rankings = {
        "keyword": [("a", E, 12.0), ("b", E, 2.0), ("c", E, 1.0)],
        "vector": [("b", E, 0.52), ("c", E, 0.51), ("a", E, 0.50)],
    }
    by_scores = fuse_scores(rankings, {"keyword": 1.0, "vector": 0.5}, pool=3)
    assert [c.id for c in by_scores] == ["a", "b", "c"]
    assert by_scores[0].score == pytest.approx(1.0)
    assert by_scores[1].ranks == {"keyword": 2, "vector": 1}
    # Reciprocal rank fusion sees only ranks: b's two good places beat a's one first place.
    assert fuse(rankings, {"keyword": 1.0, "vector": 1.0}, rrf_k=60)[0].id == "b"


def test_score_fusion_floors_a_ranking_that_holds_every_match_at_zero() -> None:
    rankings = {"keyword": [("a", E, 4.0), ("b", E, 2.0)]}
    cut = fuse_scores(rankings, {"keyword": 1.0}, pool=2)
    whole = fuse_scores(rankings, {"keyword": 1.0}, pool=50)
    assert [c.score for c in cut] == [1.0, 0.0]
    assert [c.score for c in whole] == [1.0, 0.5]


def test_score_fusion_uses_time_closeness_as_it_is_and_survives_ties() -> None:
    rankings = {
        "keyword": [("a", E, 3.0), ("b", E, 3.0)],
        "time": [("b", E, 0.5), ("z", E, 0.25)],
    }
    fused = fuse_scores(rankings, {"keyword": 1.0, "time": 1.0}, pool=2, unit_scaled=("time",))
    assert [(c.id, c.score) for c in fused] == [("b", 1.5), ("a", 1.0), ("z", 0.25)]
    assert fuse_scores({}, {}, pool=10) == []


def _gym(day: int, text: str = "Went to the gym and lifted weights") -> EpisodicMemory:
    at = datetime(2023, 6, day, 18, tzinfo=UTC)
    return EpisodicMemory(occurred_at=at, summary=text)


def test_a_date_in_the_query_ranks_memories_from_that_day_first(fake_store: MemoryStore) -> None:
    fake_store.add_many([_gym(1), _gym(3), _gym(20), _gym(3, "Bought a red umbrella")])
    fake_store.add(SemanticMemory(name="gym", summary="The gym opens at six"))
    hits = fake_store.search("gym on 3 June, 2023", k=5)
    assert hits[0].record.timestamp.day == 3 and "gym" in hits[0].record.index_text()
    assert hits[0].ranks.keys() >= {"keyword", "time"}
    # No keyword links the umbrella to the query; its day does.
    (umbrella,) = [h for h in hits if "umbrella" in h.record.index_text()]
    assert "time" in umbrella.ranks and "keyword" not in umbrella.ranks
    plain = fake_store.search("gym on 3 June, 2023", k=5, options=SearchOptions(time_weight=0))
    assert all("time" not in h.ranks for h in plain)


def test_time_range_still_filters_with_the_date_boost(fake_store: MemoryStore) -> None:
    fake_store.add_many([_gym(1), _gym(3), _gym(20)])
    since = datetime(2023, 6, 10, tzinfo=UTC)
    hits = fake_store.search("gym on 3 June, 2023", since=since)
    assert [h.record.timestamp.day for h in hits] == [20]


def test_rrf_fusion_remains_available(fake_store: MemoryStore) -> None:
    fake_store.add_many([_gym(1), _gym(3, "Bought a red umbrella")])
    options = SearchOptions(fusion="rrf", time_weight=0)
    hits = fake_store.search("umbrella", options=options)
    assert "umbrella" in hits[0].record.index_text()
    weights = {"keyword": options.keyword_weight, "vector": options.vector_weight}
    for hit in hits:  # every score is weight / (rrf_k + rank), summed: RRF's, not min-max
        rrf = sum(weights[src] / (options.rrf_k + rank) for src, rank in hit.ranks.items())
        assert hit.score == pytest.approx(rrf)


def test_common_words_are_left_out_of_the_match_on_large_stores(
    fake_store: MemoryStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import search, text

    fake_store.add_many(
        [SemanticMemory(name=f"note {i}", summary="weekly meeting notes") for i in range(30)]
        + [SemanticMemory(name="Zanzibar", summary="meeting about the Zanzibar trip")]
    )
    db = fake_store._db
    words = text.query_words("meeting notes Zanzibar trip")
    assert search.selective_words(db, words, total=31) == words  # small store: all kept
    monkeypatch.setattr(search, "LARGE_STORE", 10)
    monkeypatch.setattr(search, "KEEP_RAREST", 1)
    assert search.selective_words(db, words, total=31) == ["zanzibar", "trip"]
    ranking = search.keyword_ranking(
        db, "meeting notes Zanzibar trip", list(MemoryType), 5, total=31
    )
    assert len(ranking) == 1  # only memories holding a selective word are scored
    assert fake_store.get(ranking[0][0]).headline().startswith("Zanzibar")


def test_a_filtered_keyword_search_is_exact_when_other_types_crowd_the_top(
    fake_store: MemoryStore, db: Database
) -> None:
    from storage import search

    fake_store.add_many(
        [SemanticMemory(name=f"invoice {i}", summary="invoice invoice invoice") for i in range(60)]
    )
    episode = fake_store.add(EpisodicMemory(summary="paid one invoice late"))
    ranking = search.keyword_ranking(db, "invoice", [MemoryType.EPISODIC], 5)
    assert [r[0] for r in ranking] == [episode.id]


def test_an_uncut_filtered_ranking_is_not_scored_twice(
    fake_store: MemoryStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import search

    fake_store.add_many([SemanticMemory(name=f"invoice {i}", summary="invoice") for i in range(4)])
    episode = fake_store.add(EpisodicMemory(summary="paid one invoice late"))
    scored: list[str] = []
    real_query = db.query

    def counting(sql: str, params: object = ()) -> object:
        if "bm25" in sql:
            scored.append(sql)
        return real_query(sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(db, "query", counting)
    ranking = search.keyword_ranking(db, "invoice", [MemoryType.EPISODIC], 5)
    assert [r[0] for r in ranking] == [episode.id]
    assert len(scored) == 1  # all five matches fit the first ranking: no exact re-run


def test_asking_for_more_results_does_not_reorder_the_first_ones(fake_store: MemoryStore) -> None:
    # Min-max fusion scales each ranking over its pool: a pool that grew with k moved the floor
    # and so the order of the best hits (a bench reading 30 hits saw another top 10).
    rng = random.Random(7)
    words = "tea lisbon budget garden piano marathon umbrella river quartz lantern".split()
    words += [f"w{n}" for n in range(40)]
    fake_store.add_many(
        [
            SemanticMemory(
                name=f"note {i}", summary=" ".join(rng.choices(words, k=rng.randint(3, 12)))
            )
            for i in range(150)
        ]
    )
    for query in ("budget for the garden and piano lessons", "tea by the river", "quartz lantern"):
        first = [h.record.id for h in fake_store.search(query, k=10)]
        wider = [h.record.id for h in fake_store.search(query, k=30)]
        assert len(first) == 10 and len(wider) == 30
        assert wider[:10] == first, query
