"""Hybrid retrieval: dense vectors (Chroma) and BM25 keywords (SQLite FTS5), fused by their
normalised scores (or by weighted reciprocal rank), plus a boost for memories from around a date
the query names ("what did I buy on 3 June, 2023?"). Time ranges are applied in SQL and to the
fused list, never as Chroma `where` filters, which cost 50-130 ms at 100k vectors.

Raw events (screen reads, chat turns, imports) are ranked beside the memories in the same
rankings: their keyword rows (`event_fts`, the same tokenizer) and their vectors (the `event`
collection) are one more kind of candidate, so one fused list holds both."""

from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from storage.fusion import EVENT, Candidate, Kind, Ranking, fuse, fuse_scores, named_actor_boost
from storage.protocols import Embedder, VectorIndex, embed_query
from storage.records import MemoryType
from storage.rerank import expansion_words, indexed_texts
from storage.sqlite_db import Database
from storage.text import query_words


@dataclass(frozen=True)
class SearchOptions:
    """Fusion knobs. Defaults chosen on LoCoMo (bench/locomo.py; tuned on half the conversations,
    checked on the other half): score fusion beats RRF there because the keyword ranking is much
    stronger than MiniLM's, and RRF gives both the same say at every rank."""

    vector_weight: float = 0.5
    keyword_weight: float = 1.0
    #: Weight of closeness to a date named in the query; 0 turns the boost off.
    time_weight: float = 1.0
    #: How fast the date boost fades outside the named day or month (e-folding, in days).
    time_scale_days: float = 7.0
    fusion: Literal["scores", "rrf"] = "scores"
    rrf_k: int = 60
    #: How deep each ranking is read (at least k): the first results are the same whatever
    #: k up to it. 30 / 50 / 90 scored LoCoMo frac@10 78.35 / 78.13 / 78.26 on conversations
    #: 0-4, so it stays 50 (5-9: 74.74 / 75.85 / 76.48).
    candidates: int = 50
    #: Added to the fused score of a memory whose actor the query names ("what does Melanie
    #: like" favours Melanie's own turns over others' that mention her); 0 turns it off. 0.6
    #: chosen on LoCoMo conversations 0-4 (frac@10 +3.3) and held on 5-9 (+3.3).
    actor_weight: float = 0.6
    #: Weight of a second keyword round whose query adds the words the first round's best hits
    #: share (multi-hop questions: the second hop shares words with the first hop's evidence,
    #: not with the question); 0 turns it off. Off in the plain search; the chat agent's
    #: deeper search uses 0.3 (LoCoMo frac@10 +0.5 on conversations 0-4, +0.6 on 5-9).
    expand_weight: float = 0.0
    #: How many of the first round's best hits lend words, and how many words they lend.
    expand_from: int = 3
    expand_words: int = 6


def fts_match_expression(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression OR-ing `words`, each quoted (so user text can never be read as
    FTS syntax)."""
    return " OR ".join(f'"{w}"' for w in words)


# ----- dates named in a query -----------------------------------------------------------------

_MONTH_NUMBER = {m.lower()[:3]: i for i, m in enumerate(calendar.month_name) if m}
_MON = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
_DATE_PATTERNS = (
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MON}\.?,?\s+{_YEAR}\b", re.I), "dmy"),
    (re.compile(rf"\b{_MON}\.?\s+{_DAY},?\s+{_YEAR}\b", re.I), "mdy"),
    (re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b"), "ymd"),
    (re.compile(rf"\b{_MON}\.?,?\s+(?:of\s+)?{_YEAR}\b", re.I), "my"),
)


def query_dates(text: str) -> list[tuple[datetime, datetime]]:
    """The days ('3 June, 2023', 'June 3rd 2023', '2023-06-03') and months ('June 2023') a query
    names, as [start, end) in UTC. A month without a year or a bare year is too vague to help."""
    found: list[tuple[datetime, datetime]] = []
    taken: list[tuple[int, int]] = []
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue  # '3 June 2023' must not also count as 'June 2023'
            taken.append((m.start(), m.end()))
            interval = _interval(order, m.groups())
            if interval is not None:
                found.append(interval)
    return found


def _interval(order: str, g: Sequence[str]) -> tuple[datetime, datetime] | None:
    try:
        if order == "my":
            year, month = int(g[1]), _MONTH_NUMBER[g[0].lower()[:3]]
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if order == "dmy":
            y, mo, d = int(g[2]), _MONTH_NUMBER[g[1].lower()[:3]], int(g[0])
        elif order == "mdy":
            y, mo, d = int(g[2]), _MONTH_NUMBER[g[0].lower()[:3]], int(g[1])
        else:
            y, mo, d = int(g[0]), int(g[1]), int(g[2])
        start = datetime(y, mo, d, tzinfo=UTC)
    except ValueError:  # 31 February: neither a day nor, by accident, its month
        return None
    return start, start + timedelta(days=1)


def time_closeness(
    ts: float, dates: Sequence[tuple[datetime, datetime]], scale_days: float
) -> float:
    """1 inside a named day or month, fading exponentially with the distance outside it."""
    best = 0.0
    for start, end in dates:
        gap = max(start.timestamp() - ts, ts - end.timestamp(), 0.0) / 86400.0
        best = max(best, math.exp(-gap / scale_days))
    return best


# ----- the rankings ---------------------------------------------------------------------------


def _where(
    sql: list[str],
    params: list[object],
    types: Sequence[MemoryType],
    since: datetime | None,
    until: datetime | None,
) -> None:
    if len(types) < len(MemoryType):
        sql.append(f"AND m.type IN ({','.join('?' * len(types))})")
        params.extend(t.value for t in types)
    _time_where(sql, params, "m.ts", since, until)


def _time_where(
    sql: list[str], params: list[object], column: str, since: datetime | None,
    until: datetime | None,
) -> None:  # fmt: skip
    """A [since, until) window on `column` (a memory's or an event's time)."""
    if since is not None:
        sql.append(f"AND {column} >= ?")
        params.append(since.timestamp())
    if until is not None:
        sql.append(f"AND {column} < ?")
        params.append(until.timestamp())


#: On a store this big, query words found in more than COMMON_FRACTION of memories are left out
#: of the keyword match: BM25 gives them little weight, yet scoring every memory that holds
#: them is what made keyword search cost ~50 ms at 100k memories.
LARGE_STORE = 20_000
COMMON_FRACTION = 0.04
#: The rarest words are always kept, however common, so a query never loses all its words.
KEEP_RAREST = 2


def selective_words(db: Database, words: Sequence[str], total: int) -> list[str]:
    """`words` less those too common to be worth scoring on a large store (see LARGE_STORE)."""
    if total < LARGE_STORE or len(words) <= KEEP_RAREST:
        return list(words)
    df = {
        w: int(
            db.query(
                "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?",
                (fts_match_expression([w]),),
            )[0][0]
        )
        for w in words
    }
    rarest = set(sorted(words, key=lambda w: df[w])[:KEEP_RAREST])
    return [w for w in words if w in rarest or df[w] <= COMMON_FRACTION * total]


def keyword_ranking(
    db: Database,
    text: str,
    types: Sequence[MemoryType],
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    total: int = 0,
    events: bool = False,
) -> Ranking:
    """BM25 over the FTS5 index; the score is -bm25() so that higher is better. With `events`
    the events' index is ranked too and merged by score (one tokenizer, one BM25 scale).

    FTS5 ranks first and only the best rows are joined to `memories`: joining every match
    before sorting cost twice as much. With a type or time filter the inner ranking is cut
    wider, and the exact (slower) query runs only if that leaves too few."""
    words = query_words(text)
    if not words:
        return []
    expr = fts_match_expression(selective_words(db, words, total))
    ranking = _memory_keywords(db, expr, types, limit, since, until) if types else []
    if events:
        ranking += event_keyword_ranking(db, expr, limit, since, until)
        ranking.sort(key=lambda r: r[2], reverse=True)
    return ranking[:limit]


def _memory_keywords(
    db: Database,
    expr: str,
    types: Sequence[MemoryType],
    limit: int,
    since: datetime | None,
    until: datetime | None,
) -> Ranking:
    filtered = len(types) < len(MemoryType) or since is not None or until is not None
    inner = limit * 8 if filtered else limit
    sql = [
        "SELECT m.id, m.type, f.s FROM (SELECT rowid, bm25(memory_fts) AS s FROM memory_fts "
        "WHERE memory_fts MATCH ? ORDER BY s LIMIT ?) f JOIN memories m ON m.rowid = f.rowid "
        "WHERE 1 = 1"
    ]
    params: list[object] = [expr, inner]
    _where(sql, params, types, since, until)
    sql.append("ORDER BY f.s LIMIT ?")
    params.append(limit)
    rows = db.query(" ".join(sql), params)
    if filtered and len(rows) < limit and _more_matches_than(db, expr, inner):
        # the filter left too few of the `inner` best: rank every match under the filter
        sql = [
            "SELECT m.id, m.type, bm25(memory_fts) AS s FROM memory_fts f "
            "JOIN memories m ON m.rowid = f.rowid WHERE memory_fts MATCH ?",
        ]
        params = [expr]
        _where(sql, params, types, since, until)
        sql.append("ORDER BY s LIMIT ?")
        params.append(limit)
        rows = db.query(" ".join(sql), params)
    return [(str(r["id"]), MemoryType(r["type"]), -float(r["s"])) for r in rows]


def _event_where(
    sql: list[str], params: list[object], since: datetime | None, until: datetime | None
) -> None:
    _time_where(sql, params, "e.occurred_at", since, until)


def event_keyword_ranking(
    db: Database,
    expr: str,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Ranking:
    """BM25 over the events' keyword index for the MATCH expression `expr` (see
    `keyword_ranking`); with a time range every match under it is ranked."""
    params: list[object] = [expr]
    if since is None and until is None:
        sql = [
            "SELECT e.id, f.s FROM (SELECT rowid, bm25(event_fts) AS s FROM event_fts "
            "WHERE event_fts MATCH ? ORDER BY s LIMIT ?) f JOIN events e ON e.seq = f.rowid",
        ]
        params.append(limit)
    else:
        sql = [
            "SELECT e.id, bm25(event_fts) AS s FROM event_fts f "
            "JOIN events e ON e.seq = f.rowid WHERE event_fts MATCH ?",
        ]
        _event_where(sql, params, since, until)
    sql.append("ORDER BY s LIMIT ?")
    params.append(limit)
    return [(str(r["id"]), EVENT, -float(r["s"])) for r in db.query(" ".join(sql), params)]


def _more_matches_than(db: Database, expr: str, n: int) -> bool:
    """Whether the cut inner ranking left matches out (cheap: no scoring, stops at n + 1)."""
    rows = db.query(
        "SELECT count(*) FROM (SELECT rowid FROM memory_fts WHERE memory_fts MATCH ? LIMIT ?)",
        (expr, n + 1),
    )
    return int(rows[0][0]) > n


def vector_ranking(
    index: VectorIndex,
    vector: list[float],
    types: Sequence[MemoryType],
    limit: int,
    namespace: str,
    events: bool = False,
) -> Ranking:
    """Nearest neighbours of every type (and of the events), merged by distance (one embedder,
    one scale); the score is the cosine similarity."""
    hits: list[tuple[float, str, Kind]] = []
    kinds: list[Kind] = [*types, EVENT] if events else list(types)
    for kind in kinds:
        collection = kind.value if isinstance(kind, MemoryType) else kind
        for id_, dist in index.query(namespace + collection, vector, limit):
            hits.append((dist, id_, kind))
    hits.sort(key=lambda h: h[0])
    return [(i, t, 1.0 - d) for d, i, t in hits[:limit]]


def time_ranking(
    db: Database,
    dates: Sequence[tuple[datetime, datetime]],
    types: Sequence[MemoryType],
    limit: int,
    scale_days: float,
    extra_ids: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    events: bool = False,
) -> Ranking:
    """Memories (and with `events`, events) near the named dates, closest first, scored by
    `time_closeness`: those within three scales of a date (closeness above 0.05), plus
    `extra_ids` (the text rankings' candidates) wherever they lie, so every candidate is scored
    on the same footing."""
    margin = 3 * scale_days * 86400.0
    scores: dict[str, tuple[Kind, float]] = {}

    def score(rows: Sequence[Any]) -> None:
        for r in rows:
            kind: Kind = EVENT if r["type"] == EVENT else MemoryType(r["type"])
            scores[str(r["id"])] = (kind, time_closeness(float(r["ts"]), dates, scale_days))

    for start, end in dates:
        lo, hi = start.timestamp(), end.timestamp()
        sql = ["SELECT m.id, m.type, m.ts FROM memories m WHERE m.ts >= ? AND m.ts < ?"]
        params: list[object] = [lo - margin, hi + margin]
        _where(sql, params, types, since, until)
        sql.append("ORDER BY MAX(? - m.ts, m.ts - ?, 0) LIMIT ?")
        params += [lo, hi, limit]
        score(db.query(" ".join(sql), params))
        if events:
            sql = [
                "SELECT e.id, 'event' AS type, e.occurred_at AS ts FROM events e "
                "WHERE e.occurred_at >= ? AND e.occurred_at < ?"
            ]
            params = [lo - margin, hi + margin]
            _event_where(sql, params, since, until)
            sql.append("ORDER BY MAX(? - e.occurred_at, e.occurred_at - ?, 0) LIMIT ?")
            params += [lo, hi, limit]
            score(db.query(" ".join(sql), params))
    missing = [i for i in dict.fromkeys(extra_ids) if i not in scores]
    for chunk in range(0, len(missing), 500):
        part = missing[chunk : chunk + 500]
        marks = ",".join("?" * len(part))
        score(db.query(f"SELECT id, type, ts FROM memories WHERE id IN ({marks})", part))
        if events:
            score(
                db.query(
                    "SELECT id, 'event' AS type, occurred_at AS ts FROM events "
                    f"WHERE id IN ({marks})",
                    part,
                )
            )
    ranked = sorted(scores.items(), key=lambda kv: kv[1][1], reverse=True)
    return [(id_, kind, s) for id_, (kind, s) in ranked if s > 0.0]


# ----- fusion ---------------------------------------------------------------------------------


class HybridSearcher:
    def __init__(
        self, db: Database, index: VectorIndex, embedder: Embedder, namespace: str
    ) -> None:
        self._db = db
        self._index = index
        self._embedder = embedder
        self._namespace = namespace
        # The keyword leg (SQLite) runs beside the vector leg (torch, Chroma): each releases
        # the GIL, so on two cores a search costs the slower leg rather than the sum.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engram-fts")
        self._total = (0, -math.inf)  # (memory count, monotonic time it was read)

    def _memory_count(self) -> int:
        """The store's size, re-read at most every 30 s (it only steers keyword pruning)."""
        count, read_at = self._total
        if time.monotonic() - read_at > 30.0:
            count = int(self._db.query("SELECT count(*) FROM memories")[0][0])
            self._total = (count, time.monotonic())
        return count

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def search(
        self,
        query: str,
        types: Sequence[MemoryType],
        k: int,
        since: datetime | None,
        until: datetime | None,
        options: SearchOptions,
        events: bool = False,
    ) -> list[Candidate]:
        """Fused candidates of `types`, and of the raw events when `events`."""
        # The pool does not grow with k below `candidates`: asking for more results must not
        # reorder the first ones (min-max fusion scales over the pool).
        pool = max(options.candidates, k)
        if since is not None or until is not None:
            pool *= 4  # vector hits outside the range are dropped after the fact
        rankings: dict[str, Ranking] = {}
        keyword: Future[Ranking] | None = None
        if options.keyword_weight > 0:
            keyword = self._pool.submit(
                keyword_ranking,
                self._db,
                query,
                types,
                pool,
                since,
                until,
                self._memory_count(),
                events,
            )
        if options.vector_weight > 0:
            vector = embed_query(self._embedder, query)
            rankings["vector"] = vector_ranking(
                self._index, vector, types, pool, self._namespace, events
            )
        if keyword is not None:
            rankings = {"keyword": keyword.result(), **rankings}
        dates = query_dates(query) if options.time_weight > 0 else []
        if dates:
            seen = [i for ranking in rankings.values() for i, _, _ in ranking]
            rankings["time"] = time_ranking(
                self._db, dates, types, pool, options.time_scale_days, seen, since, until, events
            )
        weights = {
            "keyword": options.keyword_weight,
            "vector": options.vector_weight,
            "time": options.time_weight,
        }
        fused = self._fuse(query, rankings, weights, pool, options)
        if options.expand_weight > 0 and options.keyword_weight > 0 and fused:
            best = fused[: options.expand_from]
            texts = indexed_texts(
                self._db,
                [c.id for c in best if c.kind != EVENT],
                [c.id for c in best if c.kind == EVENT],
            )
            top = [texts[c.id] for c in best if c.id in texts]
            extra = expansion_words(query, top, options.expand_words)
            if extra:
                rankings["expanded"] = keyword_ranking(
                    self._db,
                    " ".join([query, *extra]),
                    types,
                    pool,
                    since,
                    until,
                    self._memory_count(),
                    events,
                )
                weights["expanded"] = options.expand_weight
                fused = self._fuse(query, rankings, weights, pool, options)
        return fused

    def _fuse(
        self,
        query: str,
        rankings: dict[str, Ranking],
        weights: dict[str, float],
        pool: int,
        options: SearchOptions,
    ) -> list[Candidate]:
        if options.fusion == "rrf":
            fused = fuse(rankings, weights, options.rrf_k)
        else:
            fused = fuse_scores(rankings, weights, pool, unit_scaled=("time",))
        if options.actor_weight > 0:
            fused = named_actor_boost(self._db, query, fused, options.actor_weight)
        return fused
