"""The history table: every create, update, delete and undo with the record before and after
(encrypted as stored), which is what makes any change undoable and auditable."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.codec import RecordCodec
from storage.records import MemoryType, Record


@dataclass(frozen=True)
class Change:
    """One row of history: what a memory was before and after an operation."""

    seq: int
    at: datetime
    op: str
    memory_id: str
    memory_type: MemoryType
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor: str
    reverts: int | None


def change_from_row(row: sqlite3.Row) -> Change:
    return Change(
        seq=int(row["seq"]),
        at=datetime.fromtimestamp(row["at"], UTC),
        op=str(row["op"]),
        memory_id=str(row["memory_id"]),
        memory_type=MemoryType(row["type"]),
        before=json.loads(row["before"]) if row["before"] else None,
        after=json.loads(row["after"]) if row["after"] else None,
        actor=str(row["actor"]),
        reverts=row["reverts"],
    )


def log_change(
    conn: sqlite3.Connection,
    codec: RecordCodec,
    op: str,
    record: Record,
    before: Record | None,
    after: Record | None,
    actor: str,
    reverts: int | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO history(at, op, memory_id, type, before, after, actor, reverts) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
        (
            time.time(),
            op,
            record.id,
            record.kind.value,
            codec.encode(before) if before else None,
            codec.encode(after) if after else None,
            actor,
            reverts,
        ),
    )
    return int(cur.lastrowid or 0)


def latest_undoable(conn: sqlite3.Connection) -> sqlite3.Row | None:
    """The newest change that is not itself an undo and has not been undone."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM history h WHERE reverts IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM history r WHERE r.reverts = h.seq) ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return row
