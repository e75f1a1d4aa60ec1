"""Hybrid retrieval: dense vectors (Chroma) and BM25 keywords (SQLite FTS5), fused by weighted
reciprocal rank. Time ranges are applied in SQL and to the fused list, never as Chroma `where`
filters, which cost 50-130 ms at 100k vectors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from storage.protocols import Embedder, VectorIndex
from storage.records import MemoryType
from storage.sqlite_db import Database

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words that carry no topic; keeping them makes BM25 match half the corpus for nothing.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    hers him his how i if in into is it its me my of on or our she so than that the their them
    then there these they this to was we were what when where which who whom why will with
    would you your yours""".split()
)


@dataclass(frozen=True)
class SearchOptions:
    """Fusion knobs; defaults tuned on LoCoMo (bench/locomo.py)."""

    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    rrf_k: int = 60
    candidates: int = 50


@dataclass(frozen=True)
class Candidate:
    id: str
    memory_type: MemoryType
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def fts_match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the query's content words, each quoted (so user text
    can never be read as FTS syntax). None when nothing searchable is left."""
    words = [w.lower() for w in _WORD.findall(text)]
    content = [w for w in words if w not in STOPWORDS] or words
    unique = list(dict.fromkeys(content))[:32]
    if not unique:
        return None
    return " OR ".join(f'"{w}"' for w in unique)


def keyword_ranking(
    db: Database,
    text: str,
    types: Sequence[MemoryType],
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[str, MemoryType]]:
    expr = fts_match_expression(text)
    if expr is None:
        return []
    sql = [
        "SELECT m.id, m.type FROM memory_fts f JOIN memories m ON m.rowid = f.rowid",
        "WHERE memory_fts MATCH ?",
    ]
    params: list[object] = [expr]
    if len(types) < len(MemoryType):
        sql.append(f"AND m.type IN ({','.join('?' * len(types))})")
        params.extend(t.value for t in types)
    if since is not None:
        sql.append("AND m.ts >= ?")
        params.append(since.timestamp())
    if until is not None:
        sql.append("AND m.ts < ?")
        params.append(until.timestamp())
    sql.append("ORDER BY bm25(memory_fts) LIMIT ?")
    params.append(limit)
    rows = db.query(" ".join(sql), params)
    return [(str(r["id"]), MemoryType(r["type"])) for r in rows]


def vector_ranking(
    index: VectorIndex,
    vector: list[float],
    types: Sequence[MemoryType],
    limit: int,
    namespace: str,
) -> list[tuple[str, MemoryType]]:
    """Nearest neighbours of every type, merged by distance (one embedder, one scale)."""
    hits: list[tuple[float, str, MemoryType]] = []
    for memory_type in types:
        for id_, dist in index.query(namespace + memory_type.value, vector, limit):
            hits.append((dist, id_, memory_type))
    hits.sort(key=lambda h: h[0])
    return [(i, t) for _, i, t in hits[:limit]]


def fuse(
    rankings: dict[str, list[tuple[str, MemoryType]]],
    weights: dict[str, float],
    rrf_k: int,
) -> list[Candidate]:
    """Weighted reciprocal rank fusion: score = sum of weight / (rrf_k + rank)."""
    scores: dict[str, float] = {}
    kinds: dict[str, MemoryType] = {}
    ranks: dict[str, dict[str, int]] = {}
    for source, ranking in rankings.items():
        weight = weights.get(source, 1.0)
        for rank, (id_, memory_type) in enumerate(ranking, start=1):
            scores[id_] = scores.get(id_, 0.0) + weight / (rrf_k + rank)
            kinds[id_] = memory_type
            ranks.setdefault(id_, {})[source] = rank
    ordered = sorted(scores, key=lambda i: scores[i], reverse=True)
    return [Candidate(i, kinds[i], scores[i], ranks[i]) for i in ordered]


class HybridSearcher:
    def __init__(
        self, db: Database, index: VectorIndex, embedder: Embedder, namespace: str
    ) -> None:
        self._db = db
        self._index = index
        self._embedder = embedder
        self._namespace = namespace

    def search(
        self,
        query: str,
        types: Sequence[MemoryType],
        k: int,
        since: datetime | None,
        until: datetime | None,
        options: SearchOptions,
    ) -> list[Candidate]:
        pool = max(options.candidates, k * 3)
        if since is not None or until is not None:
            pool *= 4  # vector hits outside the range are dropped after the fact
        rankings: dict[str, list[tuple[str, MemoryType]]] = {}
        if options.keyword_weight > 0:
            rankings["keyword"] = keyword_ranking(self._db, query, types, pool, since, until)
        if options.vector_weight > 0:
            vector = self._embedder.embed([query])[0]
            rankings["vector"] = vector_ranking(self._index, vector, types, pool, self._namespace)
        weights = {"keyword": options.keyword_weight, "vector": options.vector_weight}
        return fuse(rankings, weights, options.rrf_k)
