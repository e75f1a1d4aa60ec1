"""Reading `MemoryStore`: records by id, by type and time, by provenance, the hybrid search
over memories and raw events, the history of changes, and the counts `engram status` shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, overload

from storage.errors import DamagedRecord, InvalidText, NotFound
from storage.fusion import EVENT
from storage.history import Change, change_from_row, latest_undoable
from storage.records import CoreBlock, Event, MemoryType, Record
from storage.search import HybridSearcher, SearchOptions
from storage.store_index import StoreIndex


@dataclass(frozen=True)
class SearchHit:
    record: Record
    score: float
    ranks: dict[str, int]

    @property
    def item(self) -> Record:
        return self.record


@dataclass(frozen=True)
class EventHit:
    """A raw event search found: what was read on screen, said or imported, agents or not."""

    event: Event
    score: float
    ranks: dict[str, int]

    @property
    def item(self) -> Event:
        return self.event


#: What `MemoryStore.search` returns: memories and raw events in one ranked list.
Hit = SearchHit | EventHit


class StoreReads(StoreIndex):
    """What `MemoryStore` answers without writing (storage/store.py builds it)."""

    searcher: HybridSearcher

    # ----- reading ---------------------------------------------------------------------------

    def get(self, memory_id: str) -> Record:
        found = self.get_many([memory_id])
        if not found:
            raise NotFound(f"no memory with id {memory_id!r}")
        return found[0]

    def get_many(self, ids: Sequence[str]) -> list[Record]:
        """Records for the ids that exist, in the order given."""
        if not ids:
            return []
        found: dict[str, Record] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._db.query(
                f"SELECT id, type, data FROM memories WHERE id IN ({marks})", chunk
            ):
                found[row["id"]] = self.codec.decode_row(row["type"], row["data"], row["id"])
        return [found[i] for i in ids if i in found]

    def browse(
        self,
        memory_type: MemoryType | None = None,
        limit: int = 100,
        offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        newest_first: bool = True,
    ) -> list[Record]:
        sql: list[str] = ["SELECT id, type, data FROM memories WHERE 1=1"]
        params: list[object] = []
        if memory_type is not None:
            sql.append("AND type = ?")
            params.append(memory_type.value)
        if since is not None:
            sql.append("AND ts >= ?")
            params.append(since.timestamp())
        if until is not None:
            sql.append("AND ts < ?")
            params.append(until.timestamp())
        sql.append(f"ORDER BY ts {'DESC' if newest_first else 'ASC'}, rowid LIMIT ? OFFSET ?")
        params += [limit, offset]
        rows = self._db.query(" ".join(sql), params)
        return self._readable(rows)

    def count(self, memory_type: MemoryType | None = None) -> int:
        if memory_type is None:
            return int(self._db.query("SELECT COUNT(*) AS n FROM memories")[0]["n"])
        rows = self._db.query(
            "SELECT COUNT(*) AS n FROM memories WHERE type = ?", (memory_type.value,)
        )
        return int(rows[0]["n"])

    def made_from(self, event_ids: Sequence[str], limit: int = 500) -> list[Record]:
        """The memories whose provenance names any of `event_ids` (what the agents made of
        those reads), oldest first: the timeline shows them beside the captured text."""
        ids = list(dict.fromkeys(event_ids))
        found: dict[str, tuple[float, Record]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.query(
                "SELECT id, type, data, created_at FROM memories WHERE id IN (SELECT m.id FROM "
                f"memories m, json_each(m.data, '$.provenance') p WHERE p.value IN ({marks}))",
                chunk,
            )
            created = {r["id"]: float(r["created_at"]) for r in rows}
            for record in self._readable(rows):  # a damaged row is skipped, as elsewhere
                found[record.id] = (created[record.id], record)
        return [rec for _ts, rec in sorted(found.values(), key=lambda p: p[0])][:limit]

    def count_created(self, since: datetime, until: datetime | None = None) -> int:
        """How many memories were made in [since, until) (the activity panel's "today")."""
        rows = self._db.query(
            "SELECT COUNT(*) AS n FROM memories WHERE created_at >= ? AND created_at < ?",
            (since.timestamp(), until.timestamp() if until is not None else float("inf")),
        )
        return int(rows[0]["n"])

    def core_block(self, label: str) -> CoreBlock | None:
        rows = self._db.query("SELECT id, data FROM memories WHERE label = ?", (label,))
        if not rows:
            return None
        block = self.codec.decode_row(MemoryType.CORE, rows[0]["data"], rows[0]["id"])
        assert isinstance(block, CoreBlock)
        return block

    def damaged(self) -> list[str]:
        """Ids of the memories whose stored row cannot be read back (`engram doctor`): each is
        decoded, so what SQLite's own integrity check cannot see (a valid page holding broken
        JSON) is found too."""
        bad: list[str] = []
        after = 0
        while rows := self._db.query(
            "SELECT rowid, id, type, data FROM memories WHERE rowid > ? ORDER BY rowid LIMIT 500",
            (after,),
        ):
            after = int(rows[-1]["rowid"])
            for row in rows:
                try:
                    self.codec.decode_row(row["type"], row["data"], row["id"])
                except DamagedRecord:
                    bad.append(row["id"])
        return bad

    @overload
    def search(
        self,
        query: str,
        types: Iterable[MemoryType],
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        options: SearchOptions | None = None,
        *,
        events: Literal[False] = False,
    ) -> list[SearchHit]: ...

    @overload
    def search(
        self,
        query: str,
        types: Iterable[MemoryType] | None = None,
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        options: SearchOptions | None = None,
        *,
        events: bool | None = None,
    ) -> Sequence[Hit]: ...

    def search(
        self,
        query: str,
        types: Iterable[MemoryType] | None = None,
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        options: SearchOptions | None = None,
        *,
        events: bool | None = None,
    ) -> Sequence[Hit]:
        """Hybrid search across `types` (default all six), optionally within [since, until),
        and across the raw events when `events` (by default: when no types are named); `types=[]`
        with `events=True` ranks the events alone."""
        if not query.strip():
            raise InvalidText("the search query is empty")
        if k <= 0:
            raise InvalidText("k must be at least 1")
        chosen = list(MemoryType) if types is None else list(types)
        chosen = chosen if chosen or events else list(MemoryType)
        with_events = types is None if events is None else events
        candidates = self.searcher.search(
            query, chosen, k, since, until, options or SearchOptions(), with_events
        )
        lo = since.timestamp() if since else float("-inf")
        hi = until.timestamp() if until else float("inf")
        hits: list[Hit] = []
        for start in range(0, len(candidates), k * 4):
            chunk = candidates[start : start + k * 4]
            ids = [c.id for c in chunk if c.kind != EVENT]
            marks = ",".join("?" * len(ids))
            rows = {
                r["id"]: r
                for r in self._db.query(
                    f"SELECT id, type, data, ts FROM memories WHERE id IN ({marks})", ids
                )
            }
            event_ids = [c.id for c in chunk if c.kind == EVENT]
            found = {e.id: e for e in self.events.get_many(event_ids)}
            for cand in chunk:
                if cand.kind == EVENT:
                    event = found.get(cand.id)  # None: expired since its vector was found
                    if event is None or not lo <= event.occurred_at.timestamp() < hi:
                        continue
                    hits.append(EventHit(event, cand.score, cand.ranks))
                else:
                    row = rows.get(cand.id)  # None: a vector left by a crash; repair drops it
                    if row is None or not lo <= row["ts"] < hi:
                        continue
                    readable = self._readable([row])
                    if not readable:
                        continue
                    hits.append(SearchHit(readable[0], cand.score, cand.ranks))
                if len(hits) == k:
                    return hits
        return hits

    def history(self, memory_id: str | None = None, limit: int = 50) -> list[Change]:
        if memory_id is None:
            rows = self._db.query("SELECT * FROM history ORDER BY seq DESC LIMIT ?", (limit,))
        else:
            rows = self._db.query(
                "SELECT * FROM history WHERE memory_id = ? ORDER BY seq DESC LIMIT ?",
                (memory_id, limit),
            )
        return [change_from_row(r) for r in rows]

    def last_undoable(self) -> Change | None:
        """What `undo()` with no entry would revert now (so the app can say it first)."""
        with self._db.transaction() as conn:
            row = latest_undoable(conn)
        return change_from_row(row) if row is not None else None

    def history_entry(self, seq: int) -> Change:
        rows = self._db.query("SELECT * FROM history WHERE seq = ?", (seq,))
        if not rows:
            raise NotFound(f"no history entry {seq}")
        return change_from_row(rows[0])

    def stats(self) -> dict[str, Any]:
        counts = {t.value: 0 for t in MemoryType}
        for row in self._db.query("SELECT type, COUNT(*) AS n FROM memories GROUP BY type"):
            counts[row["type"]] = int(row["n"])
        unindexed = self._db.query("SELECT COUNT(*) AS n FROM memories WHERE indexed = 0")
        # Rows whose JSON no longer parses (bit rot): cheap in SQL; `damaged()` decodes each.
        broken = self._db.query("SELECT COUNT(*) AS n FROM memories WHERE NOT json_valid(data)")
        return {
            "data_dir": str(self._db.path.parent),
            "memories": counts,
            "total": sum(counts.values()),
            "unindexed": int(unindexed[0]["n"]),
            "damaged": int(broken[0]["n"]),
            "events": self.events.counts(),
            "events_unindexed": self.events.count_unindexed(),
            "history_entries": int(self._db.query("SELECT COUNT(*) AS n FROM history")[0]["n"]),
            "embedder": self._embedder.name,
            "database_bytes": self._db.path.stat().st_size,
        }
