"""The vector index under `MemoryStore`: rows are flagged `indexed` only once their vectors
are upserted, deletes are queued in `vector_deletes` until the index drops them, and
`repair_index` catches up whatever a crash or a failing index left behind."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from storage.errors import StoreCorrupt
from storage.events import EVENT_COLLECTION, EventQueue
from storage.protocols import Embedder, VectorIndex
from storage.records import MemoryType, Record
from storage.sqlite_db import Database
from storage.store_rows import StoreRows

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class StoreIndex(StoreRows):
    """Keeping the vector index in step with SQLite (storage/store.py builds it)."""

    _index: VectorIndex
    _embedder: Embedder
    namespace: str
    events: EventQueue
    _index_error: str | None

    # ----- the vector index ------------------------------------------------------------------

    def repair_index(self, progress: Progress | None = None, batch: int = 256) -> int:
        """Index rows flagged unindexed and drop vectors of deleted rows. Returns rows indexed;
        raises what the vector index raises (the rows stay flagged for the next try)."""
        self._flush_vector_deletes()
        total = int(self._db.query("SELECT COUNT(*) AS n FROM memories WHERE indexed = 0")[0]["n"])
        done, after = 0, 0
        while True:
            rows = self._db.query(
                "SELECT rowid, id, type, data FROM memories WHERE indexed = 0 AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (after, batch),
            )
            if not rows:
                self._index_error = None
                return done
            after = int(rows[-1]["rowid"])
            self._index_records(self._readable(rows))  # a damaged row stays for doctor
            done += len(rows)
            if progress:
                progress(done, total)

    def index_events(
        self, progress: Progress | None = None, batch: int = 64, limit: int | None = None
    ) -> int:
        """Embed the raw events whose vector is missing or stale (every event's vector comes
        this way, off the capture thread: the memory worker calls it between batches). Up to
        `limit` events; returns how many. Raises what the embedder or the index raises (the
        events stay flagged for the next try)."""
        total = self.events.count_unindexed()
        if limit is not None:
            total = min(total, limit)
        done = 0
        while done < total and (pending := self.events.unindexed(min(batch, total - done))):
            vectors = self._embedder.embed([e.index_text() for e, _ in pending])
            self._index.upsert(
                self.namespace + EVENT_COLLECTION, [e.id for e, _ in pending], vectors
            )
            self.events.mark_indexed([(e.id, data) for e, data in pending])
            done += len(pending)
            if progress:
                progress(done, total)
        return done

    def reindex(self, progress: Progress | None = None) -> int:
        """Re-embed every memory and event (after changing the embedding model, say)."""
        mark_all_unindexed(self._db)
        return self.repair_index(progress) + self.index_events()

    def index_warning(self, records: Sequence[Record]) -> str | None:
        """What to tell a person when `records` are saved but the vector index has not caught up
        with them (not indexed, or a deleted one's vector not yet dropped); None when it has."""
        ids = list(dict.fromkeys(r.id for r in records))
        behind = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            behind += int(
                self._db.query(
                    f"SELECT (SELECT COUNT(*) FROM memories WHERE indexed = 0 AND id IN ({marks}))"
                    f" + (SELECT COUNT(*) FROM vector_deletes WHERE id IN ({marks})) AS n",
                    chunk + chunk,
                )[0]["n"]
            )
        if not behind:
            return None
        why = f": {self._index_error}" if self._index_error else ""
        what = "1 memory" if behind == 1 else f"{behind} memories"
        return (
            f"saved, but the vector index is behind by {what} (it failed{why}); Engram catches "
            "it up once the index works again, and keyword search works meanwhile"
        )

    def _index_after_commit(
        self, records: Sequence[Record], vectors: Sequence[list[float]] | None, flush: bool
    ) -> None:
        """Index what a commit wrote; a failure is logged and left for `repair_index`, never
        raised: the commit stands, and raising would make the caller write it again."""
        try:
            self._index_records(records, vectors)
            if flush:
                self._flush_vector_deletes()
        except Exception as exc:
            self._index_error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            log.warning(
                "saved, but the vector index failed (%s); the rows stay unindexed for repair",
                self._index_error,
            )

    def _embed(self, records: Sequence[Record]) -> list[list[float]]:
        return self._embedder.embed([r.index_text() for r in records]) if records else []

    def _index_records(
        self, records: Sequence[Record], vectors: Sequence[list[float]] | None = None
    ) -> None:
        """Upsert vectors, then flag the rows indexed (only if unchanged since)."""
        if not records:
            return
        vectors = list(vectors) if vectors is not None else self._embed(records)
        by_type: dict[MemoryType, tuple[list[str], list[list[float]]]] = {}
        for record, vector in zip(records, vectors, strict=True):
            ids, vecs = by_type.setdefault(record.kind, ([], []))
            ids.append(record.id)
            vecs.append(vector)
        for memory_type, (ids, vecs) in by_type.items():
            self._index.upsert(self.namespace + memory_type.value, ids, vecs)
        with self._db.transaction() as conn:
            conn.executemany(
                "UPDATE memories SET indexed = 1 WHERE id = ? AND updated_at = ?",
                [(r.id, r.updated_at.timestamp()) for r in records],
            )

    def _flush_vector_deletes(self) -> None:
        rows = self._db.query("SELECT id, type FROM vector_deletes")
        by_type: dict[str, list[str]] = {}
        for row in rows:
            by_type.setdefault(row["type"], []).append(row["id"])
        for memory_type, ids in by_type.items():
            self._index.delete(self.namespace + memory_type, ids)
        if rows:
            with self._db.transaction() as conn:
                conn.executemany(
                    "DELETE FROM vector_deletes WHERE id = ?", [(r["id"],) for r in rows]
                )


def open_index(path: Path, db: Database, factory: Callable[[Path], VectorIndex]) -> VectorIndex:
    """Open the vector index. When the index keeps its files in `path` and that folder was
    missing, the vectors were lost (deleted, or only the database was restored): re-embed.
    An index elsewhere (a server, memory) leaves `path` alone and is trusted."""
    existed = path.exists()
    try:
        index = factory(path)
    except StoreCorrupt as exc:
        # SQLite is the source of truth: keep the damaged index for inspection, rebuild anew.
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        log.warning("%s; moving it to %s and rebuilding from the database", exc, aside)
        with contextlib.suppress(FileNotFoundError):
            shutil.move(str(path), str(aside))
        mark_all_unindexed(db)
        return factory(path)
    # An index that says it started empty (`fresh`: Chroma found no database in a folder that
    # is still there) lost its vectors as surely as a missing folder.
    if (not existed and path.exists()) or getattr(index, "fresh", False):
        mark_all_unindexed(db)
    return index


def mark_all_unindexed(db: Database) -> None:
    """Every memory and event needs its vector again (the index was lost, or the model changed)."""
    db.execute("UPDATE memories SET indexed = 0")
    db.execute("UPDATE events SET indexed = 0")
