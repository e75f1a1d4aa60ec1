"""The durable event queue: capture and chat put events in, the agent loop claims batches and
marks them done only after their memory operations are applied. A restart returns claimed but
unfinished events to the queue, so nothing is lost to a crash."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from storage.errors import NotFound
from storage.records import Event
from storage.sqlite_db import Database

MAX_ATTEMPTS = 5


def _with_text(event: Event, text: str) -> Event:
    return (
        event if text == event.text else Event.model_validate({**event.model_dump(), "text": text})
    )


def mark_done(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Mark events done inside the caller's transaction (see `MemoryStore.apply`)."""
    conn.executemany(
        "UPDATE events SET status = 'done', done_at = ?, error = NULL WHERE id = ?",
        [(time.time(), i) for i in ids],
    )


class EventQueue:
    def __init__(self, db: Database, redact: Callable[[str], str] | None = None) -> None:
        self._db = db
        #: Applied to each event's text as it is stored (the store withholds vault secrets).
        self._redact = redact

    def put(self, event: Event) -> Event:
        self.put_many([event])
        return event

    def put_many(self, events: Sequence[Event]) -> None:
        if self._redact is not None:
            events = [_with_text(e, self._redact(e.text)) for e in events]
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO events(id, occurred_at, source, data) VALUES(?, ?, ?, ?)",
                [(e.id, e.occurred_at.timestamp(), e.source, e.model_dump_json()) for e in events],
            )

    def claim(self, limit: int) -> list[Event]:
        """Take up to `limit` pending events, oldest first, and mark them claimed."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT seq, data FROM events WHERE status = 'pending' ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            conn.executemany(
                "UPDATE events SET status = 'claimed', claimed_at = ? WHERE seq = ?",
                [(time.time(), r[0]) for r in rows],
            )
        return [Event.model_validate_json(r[1]) for r in rows]

    def done(self, ids: Sequence[str]) -> None:
        with self._db.transaction() as conn:
            mark_done(conn, ids)

    def release(
        self, ids: Sequence[str], error: str | None = None, count_attempt: bool = True
    ) -> None:
        """Give claimed events back after a failure; after MAX_ATTEMPTS they are parked as
        'failed' (kept, visible, retryable) rather than retried forever. A batch interrupted
        by shutdown is not the events' fault: `count_attempt=False` returns them as they were.
        Only events still claimed are touched: one marked done with its batch's writes stays
        done, whatever failed afterwards, so a batch is never applied twice."""
        with self._db.transaction() as conn:
            if not count_attempt:
                conn.executemany(
                    "UPDATE events SET status = 'pending', claimed_at = NULL, error = ? "
                    "WHERE id = ? AND status = 'claimed'",
                    [(error, i) for i in ids],
                )
                return
            conn.executemany(
                "UPDATE events SET attempts = attempts + 1, error = ?, claimed_at = NULL, "
                "status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'pending' END "
                "WHERE id = ? AND status = 'claimed'",
                [(error, MAX_ATTEMPTS, i) for i in ids],
            )

    def rewrite_text(self, event_id: str, text: str) -> None:
        """Store `text` as the event's text (a vault secret withheld from it); the rest of the
        event and its place in the queue are kept."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT data FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise NotFound(f"no event with id {event_id!r}")
            event = _with_text(Event.model_validate_json(row[0]), text)
            conn.execute(
                "UPDATE events SET data = ? WHERE id = ?", (event.model_dump_json(), event_id)
            )

    def recover(self) -> int:
        """Return events claimed by a process that died to the queue; call once at start-up."""
        with self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE events SET status = 'pending', claimed_at = NULL WHERE status = 'claimed'"
            )
            return cur.rowcount

    def retry_failed(self) -> int:
        with self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE events SET status = 'pending', attempts = 0 WHERE status = 'failed'"
            )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        rows = self._db.query("SELECT status, COUNT(*) AS n FROM events GROUP BY status")
        out = {"pending": 0, "claimed": 0, "done": 0, "failed": 0}
        out.update({str(r["status"]): int(r["n"]) for r in rows})
        return out

    def get(self, event_id: str) -> Event:
        found = self.get_many([event_id])
        if not found:
            raise NotFound(f"no event with id {event_id!r}")
        return found[0]

    def get_many(self, ids: Sequence[str]) -> list[Event]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.query(f"SELECT data FROM events WHERE id IN ({marks})", list(ids))
        by_id = {e.id: e for e in (Event.model_validate_json(r["data"]) for r in rows)}
        return [by_id[i] for i in ids if i in by_id]

    def between(self, since: datetime, until: datetime, limit: int = 1000) -> list[Event]:
        rows = self._db.query(
            "SELECT data FROM events WHERE occurred_at >= ? AND occurred_at < ? "
            "ORDER BY occurred_at LIMIT ?",
            (since.timestamp(), until.timestamp(), limit),
        )
        return [Event.model_validate_json(r["data"]) for r in rows]

    def status_of(self, event_id: str) -> str:
        rows = self._db.query("SELECT status FROM events WHERE id = ?", (event_id,))
        if not rows:
            raise NotFound(f"no event with id {event_id!r}")
        return str(rows[0]["status"])

    def export_rows(self) -> list[dict[str, object]]:
        rows = self._db.query("SELECT data, status FROM events ORDER BY seq")
        return [{"event": json.loads(r["data"]), "status": r["status"]} for r in rows]
