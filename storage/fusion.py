"""Fusing rankings into one candidate list: weighted reciprocal rank or relative score fusion,
and the named-actor boost applied to the fused list. Pure functions over rankings (and one
lookup by id), so each is tested on its own; `storage.search` builds the rankings."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from storage.records import MemoryType
from storage.rerank import named_actors
from storage.sqlite_db import Database

#: The kind of a raw event among search candidates (beside the six memory types).
EVENT: Final = "event"
Kind = MemoryType | Literal["event"]


@dataclass(frozen=True)
class Candidate:
    id: str
    kind: Kind
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


#: (id, kind, score), best first; a higher score is better within one ranking.
Ranking = list[tuple[str, Kind, float]]


def fuse(
    rankings: dict[str, Ranking],
    weights: dict[str, float],
    rrf_k: int,
) -> list[Candidate]:
    """Weighted reciprocal rank fusion: score = sum of weight / (rrf_k + rank)."""
    return _combine(
        rankings, weights, lambda _source, ranking: [1.0 / (rrf_k + r) for r in _ranks(ranking)]
    )


def fuse_scores(
    rankings: dict[str, Ranking],
    weights: dict[str, float],
    pool: int,
    unit_scaled: Collection[str] = (),
) -> list[Candidate]:
    """Relative score fusion: each ranking's scores scaled to [0, 1] (min-max), then a weighted
    sum. Unlike RRF it keeps how far ahead a clear winner is, so a confident keyword match is not
    pulled level by a vaguely similar vector. A ranking cut at `pool` is scaled over its own
    range; one that ended sooner holds every match, so its floor is 0 (no match) and a weak
    last match is not scaled to nothing. Rankings named in `unit_scaled` are already in [0, 1]
    (the time ranking's closeness) and are taken as they are."""

    def normalised(source: str, ranking: Ranking) -> list[float]:
        values = [s for _, _, s in ranking]
        if source in unit_scaled or not values:
            return values
        hi, lo = max(values), min(values)
        if len(values) < pool:
            lo = min(lo, 0.0)
        return [(v - lo) / (hi - lo) if hi > lo else 1.0 for v in values]

    return _combine(rankings, weights, normalised)


def _ranks(ranking: Ranking) -> range:
    return range(1, len(ranking) + 1)


def _combine(
    rankings: dict[str, Ranking],
    weights: dict[str, float],
    contribution: Callable[[str, Ranking], list[float]],
) -> list[Candidate]:
    """Sum each source's weighted contribution per id; best first."""
    scores: dict[str, float] = {}
    kinds: dict[str, Kind] = {}
    ranks: dict[str, dict[str, int]] = {}
    for source, ranking in rankings.items():
        weight = weights.get(source, 1.0)
        values = contribution(source, ranking)
        for rank, ((id_, kind, _), value) in enumerate(zip(ranking, values, strict=True), start=1):
            scores[id_] = scores.get(id_, 0.0) + weight * value
            kinds[id_] = kind
            ranks.setdefault(id_, {})[source] = rank
    ordered = sorted(scores, key=lambda i: scores[i], reverse=True)
    return [Candidate(i, kinds[i], scores[i], ranks[i]) for i in ordered]


def named_actor_boost(
    db: Database, query: str, candidates: Sequence[Candidate], weight: float
) -> list[Candidate]:
    """`candidates` with `weight` added to each episodic memory whose actor, and each event
    whose speaker, the query names (see `storage.rerank.named_actors`), best first again."""
    ids = [c.id for c in candidates if c.kind == MemoryType.EPISODIC]
    events = [c.id for c in candidates if c.kind == EVENT]
    named = named_actors(db, query, ids, events) if weight > 0 else set()
    if not named:
        return list(candidates)
    boosted = [
        replace(c, score=c.score + weight, ranks={**c.ranks, "actor": 1}) if c.id in named else c
        for c in candidates
    ]
    return sorted(boosted, key=lambda c: c.score, reverse=True)
