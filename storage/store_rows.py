"""The memories table's rows under `MemoryStore`: the checks a write must pass, the row and
its keyword (FTS5) entry written or deleted together, and rows decoded back into records (a
damaged one skipped, not raised). The writers take the caller's connection, inside its
transaction: the row, its history and its events' marks commit together."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from storage.codec import RecordCodec
from storage.errors import CoreLimitExceeded, DamagedRecord, InvalidText, NotFound
from storage.records import CoreBlock, Record
from storage.sqlite_db import Database

log = logging.getLogger(__name__)


class StoreRows:
    """The lowest layer of `MemoryStore` (storage/store.py builds it and sets these)."""

    _db: Database
    codec: RecordCodec
    skipped_damaged: set[str]

    # ----- rows ------------------------------------------------------------------------------

    def check(self, record: Record) -> None:
        """Raise what `apply` would for `record` (over a core limit, no text), writing nothing:
        a planner can turn one bad write down instead of failing a whole batch."""
        if isinstance(record, CoreBlock) and len(record.value) > record.limit:
            raise CoreLimitExceeded(
                f"core block {record.label!r} would be {len(record.value):,} characters; its "
                f"limit is {record.limit:,}. Shorten it (nothing was changed)"
            )
        content = record.value if isinstance(record, CoreBlock) else record.index_text()
        if not content.strip():
            raise InvalidText(f"a {record.kind.value} memory needs some text")

    def _write_row(self, conn: Any, record: Record) -> None:
        label = record.label if isinstance(record, CoreBlock) else None
        old = conn.execute("SELECT rowid FROM memories WHERE id = ?", (record.id,)).fetchone()
        if old:
            conn.execute("DELETE FROM memory_fts WHERE rowid = ?", (old[0],))
        conn.execute(
            "INSERT INTO memories(id, type, data, ts, created_at, updated_at, label, indexed) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(id) DO UPDATE SET data = excluded.data, "
            "ts = excluded.ts, updated_at = excluded.updated_at, label = excluded.label, "
            "indexed = 0",
            (
                record.id,
                record.kind.value,
                self.codec.encode(record),
                record.timestamp.timestamp(),
                record.created_at.timestamp(),
                record.updated_at.timestamp(),
                label,
            ),
        )
        rowid = conn.execute("SELECT rowid FROM memories WHERE id = ?", (record.id,)).fetchone()
        conn.execute(
            "INSERT INTO memory_fts(rowid, text) VALUES(?, ?)", (rowid[0], record.index_text())
        )
        conn.execute("DELETE FROM vector_deletes WHERE id = ?", (record.id,))

    def _delete_row(self, conn: Any, record: Record) -> None:
        row = conn.execute("SELECT rowid FROM memories WHERE id = ?", (record.id,)).fetchone()
        if row:
            conn.execute("DELETE FROM memory_fts WHERE rowid = ?", (row[0],))
            conn.execute("DELETE FROM memories WHERE rowid = ?", (row[0],))
            conn.execute(
                "INSERT OR REPLACE INTO vector_deletes(id, type) VALUES(?, ?)",
                (record.id, record.kind.value),
            )

    def _maybe_get_in(self, conn: Any, memory_id: str) -> Record | None:
        row = conn.execute("SELECT type, data FROM memories WHERE id = ?", (memory_id,)).fetchone()
        return self.codec.decode_row(row[0], row[1], memory_id) if row else None

    def _get_in(self, conn: Any, memory_id: str) -> Record:
        record = self._maybe_get_in(conn, memory_id)
        if record is None:
            raise NotFound(f"no memory with id {memory_id!r}")
        return record

    def _readable(self, rows: Iterable[Any]) -> list[Record]:
        """The records of `rows` (id, type, data), skipping any that is damaged: one bit-rotted
        row must not take a list, a search or an export down with it. What was skipped is
        logged and kept in `skipped_damaged` for the caller to report."""
        out: list[Record] = []
        for row in rows:
            try:
                out.append(self.codec.decode_row(row["type"], row["data"], row["id"]))
            except DamagedRecord as exc:
                if row["id"] not in self.skipped_damaged:
                    log.warning("%s", exc)
                self.skipped_damaged.add(row["id"])
        return out
