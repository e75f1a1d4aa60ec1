"""The durable event queue: capture and chat put events in, the agent loop claims batches and
marks them done only after their memory operations are applied. A restart returns claimed but
unfinished events to the queue, so nothing is lost to a crash.

Every event is keyword-indexed (`event_fts`) in the transaction that stores it, so it is
searchable the moment it is read; its vector follows in the background (`indexed` flag, see
`MemoryStore.repair_index`). A read that repeats most of the window's previous event is merged
into it (`seen_again`) instead of stored twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from storage.errors import NotFound
from storage.records import MAX_FIELD_CHARS, Event, utcnow
from storage.sqlite_db import Database
from storage.text import clip, content_words

#: A read repeats an event when at least this share of its content words are in the event.
REPEAT_SHARE = 0.8
#: Vectors of events live in this collection of the store's namespace, beside the memory types.
EVENT_COLLECTION = "event"

MAX_ATTEMPTS = 5

#: Sources whose events are turns of a conversation (a chat, an imported export).
CONVERSATIONAL = frozenset({"chat", "import"})
#: Turns before a conversation turn indexed with it, and characters kept of each.
CONTEXT_TURNS = 2
CONTEXT_CHARS = 300
#: How far back (in stored events) the turns before a thread's first new event are looked for.
CONTEXT_LOOKBACK = 2000


def scrubbed(event: Event, scrub: Callable[[str], str]) -> Event:
    """`event` with `scrub` applied to every text it carries (its text, window title, app and
    the string values of its metadata); the same object when nothing changed."""
    update: dict[str, object] = {}
    for name in ("text", "window_title", "app", "context"):
        value = getattr(event, name)
        if (clean := scrub(value)) != value:
            update[name] = clean
    metadata = {k: scrub(v) if isinstance(v, str) else v for k, v in event.metadata.items()}
    if metadata != event.metadata:
        update["metadata"] = metadata
    return Event.model_validate({**event.model_dump(), **update}) if update else event


def mark_done(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Mark events done inside the caller's transaction (see `MemoryStore.apply`)."""
    conn.executemany(
        "UPDATE events SET status = 'done', done_at = ?, error = NULL WHERE id = ?",
        [(time.time(), i) for i in ids],
    )


def repeats(new_text: str, old_text: str, share: float = REPEAT_SHARE) -> bool:
    """Whether `new_text` repeats most of `old_text`: at least `share` of its content words
    (storage/text.py) are in the old one. A read with no content words repeats nothing."""
    new = content_words(new_text)
    if not new:
        return False
    return len(new & content_words(old_text)) >= share * len(new)


def novel_lines(new_text: str, old_text: str) -> list[str]:
    """The lines of `new_text` holding a content word `old_text` lacks: what a repeated read
    adds, and all a merge keeps of it."""
    known = content_words(old_text)
    return [line for line in new_text.splitlines() if content_words(line) - known]


Thread = tuple[str, str, str, str]


def thread_of(event: Event) -> Thread | None:
    """The conversation an event is a turn of (source, app, title, conversation id); None
    for a screen read or a note, which have no turns before them."""
    if event.source not in CONVERSATIONAL:
        return None
    conversation = str(event.metadata.get("conversation_id", ""))
    return (event.source, event.app, event.window_title, conversation)


def with_context(conn: sqlite3.Connection, events: Sequence[Event]) -> list[Event]:
    """`events` with each conversation turn's `context`: the CONTEXT_TURNS turns before it in
    its thread, from this list or, for a thread's first turn here, from the events stored
    last. An event that has a context keeps it."""
    before: dict[Thread, list[str]] = {}
    out = []
    for event in events:
        thread = thread_of(event)
        if thread is None:
            out.append(event)
            continue
        if thread not in before:
            before[thread] = _stored_turns(conn, thread)
        turns = before[thread]
        if turns and not event.context:
            event = event.model_copy(update={"context": "\n".join(turns)})
        turns.append(clip(event.text, CONTEXT_CHARS))
        del turns[:-CONTEXT_TURNS]
        out.append(event)
    return out


def _stored_turns(conn: sqlite3.Connection, thread: Thread) -> list[str]:
    """The last CONTEXT_TURNS stored turns of `thread`, oldest first, among the events stored
    last (a bounded look back, so storing a turn never scans the whole queue)."""
    rows = conn.execute(
        "SELECT data FROM events WHERE seq > (SELECT coalesce(max(seq), 0) FROM events) - ? "
        "AND source = ? AND json_extract(data, '$.app') = ? "
        "AND json_extract(data, '$.window_title') = ? ORDER BY seq DESC",
        (CONTEXT_LOOKBACK, *thread[:3]),
    )  # only this thread's rows are parsed; the conversation id is checked on them
    turns: list[str] = []
    for (data,) in rows:
        event = Event.model_validate_json(data)
        if thread_of(event) == thread:
            turns.append(clip(event.text, CONTEXT_CHARS))
            if len(turns) == CONTEXT_TURNS:
                break
    return turns[::-1]


def refresh_context(conn: sqlite3.Connection, batch: int = 500) -> int:
    """Give each stored conversation turn stored before turns had contexts its context, in the
    caller's transaction (schema step 5): its data and keyword row are rewritten (its vector,
    of its own text, stays). A row that does not parse is left to `doctor`. Returns how
    many."""
    before: dict[Thread, list[str]] = {}
    changed, last = 0, 0
    while rows := conn.execute(
        "SELECT seq, data FROM events WHERE seq > ? AND source IN ('chat', 'import') "
        "ORDER BY seq LIMIT ?",
        (last, batch),
    ).fetchall():
        for seq, data in rows:
            last = seq
            try:
                event = Event.model_validate_json(data)
            except ValueError:
                continue
            turns = before.setdefault(thread_of(event) or ("", "", "", ""), [])
            if turns and not event.context:
                event = event.model_copy(update={"context": "\n".join(turns)})
                conn.execute(
                    "UPDATE events SET data = ? WHERE seq = ?", (event.model_dump_json(), seq)
                )
                _fts_replace(conn, seq, event)
                changed += 1
            turns.append(clip(event.text, CONTEXT_CHARS))
            del turns[:-CONTEXT_TURNS]
    return changed


def _fts_insert(conn: sqlite3.Connection, seq: int, event: Event) -> None:
    conn.execute("INSERT INTO event_fts(rowid, text) VALUES(?, ?)", (seq, event.keyword_text()))


def _fts_replace(conn: sqlite3.Connection, seq: int, event: Event) -> None:
    conn.execute("DELETE FROM event_fts WHERE rowid = ?", (seq,))
    _fts_insert(conn, seq, event)


class EventQueue:
    def __init__(self, db: Database, redact: Callable[[str], str] | None = None) -> None:
        self._db = db
        #: Applied to each event's text as it is stored (the store withholds vault secrets).
        self._redact = redact

    def put(self, event: Event) -> Event:
        self.put_many([event])
        return event

    def put_many(self, events: Sequence[Event]) -> None:
        """Store `events` (an id already stored is left as it is) with their keyword rows, in
        one transaction: searchable by keyword from the commit on."""
        if self._redact is not None:
            events = [scrubbed(e, self._redact) for e in events]
        with self._db.transaction() as conn:
            for e in with_context(conn, events):
                cur = conn.execute(
                    "INSERT OR IGNORE INTO events(id, occurred_at, last_seen, source, data) "
                    "VALUES(?, ?, ?, ?, ?)",
                    (
                        e.id,
                        e.occurred_at.timestamp(),
                        e.last_seen.timestamp(),
                        e.source,
                        e.model_dump_json(),
                    ),
                )
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    _fts_insert(conn, cur.lastrowid, e)

    def seen_again(self, event_id: str, text: str, at: datetime | None = None) -> Event | None:
        """Merge a read that repeats event `event_id` (see `repeats`) into it: `at` joins its
        `seen_at` times and the lines with new words are appended, with its keyword row in the
        same transaction (its vector is redone in the background). Returns the merged event, or
        None when the read must be stored as its own event: the event is gone (retention), or
        the read adds words to one the agents already took (they would never see them), or the
        merged text would be too long."""
        at = at or utcnow()
        if self._redact is not None:  # the new lines are stored text too
            text = self._redact(text)
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT seq, data, status FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                return None
            old = Event.model_validate_json(row["data"])
            extra = novel_lines(text, old.text)
            if extra and row["status"] != "pending":
                return None
            merged_text = "\n".join([old.text, *extra])
            if len(merged_text) > MAX_FIELD_CHARS:
                return None
            event = old.model_copy(update={"text": merged_text, "seen_at": (*old.seen_at, at)})
            conn.execute(
                "UPDATE events SET data = ?, last_seen = ?, indexed = CASE WHEN ? THEN 0 "
                "ELSE indexed END WHERE seq = ?",
                (event.model_dump_json(), event.last_seen.timestamp(), bool(extra), row["seq"]),
            )
            if extra:
                _fts_replace(conn, row["seq"], event)
        return event

    def rewrite_text(self, event_id: str, text: str) -> Event:
        """Replace the stored text of an event (a secret scrubbed from it, say), keeping its
        keyword row in step and its vector due again. Raises NotFound."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT seq, data FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise NotFound(f"no event with id {event_id!r}")
            event = Event.model_validate_json(row["data"]).model_copy(update={"text": text})
            Event.model_validate(event.model_dump())  # the new text obeys the field's rules
            conn.execute(
                "UPDATE events SET data = ?, indexed = 0 WHERE seq = ?",
                (event.model_dump_json(), row["seq"]),
            )
            _fts_replace(conn, row["seq"], event)
        return event

    def scrub(self, scrub: Callable[[str], str], batch: int = 500) -> int:
        """Apply `scrub` to every stored event's texts (`scrubbed`) and its last error, keeping
        the keyword rows in step and the vectors due again; returns the events changed."""
        changed, after = 0, 0
        while rows := self._db.query(
            "SELECT seq, data, error FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, batch),
        ):
            after = int(rows[-1]["seq"])
            dirty = []
            for row in rows:
                event = Event.model_validate_json(row["data"])
                clean, error = scrubbed(event, scrub), row["error"]
                clean_error = scrub(error) if error else error
                if clean is not event or clean_error != error:
                    dirty.append((row["seq"], clean, clean_error))
            if dirty:
                with self._db.transaction() as conn:
                    for seq, event, error in dirty:
                        conn.execute(
                            "UPDATE events SET data = ?, error = ?, indexed = 0 WHERE seq = ?",
                            (event.model_dump_json(), error, seq),
                        )
                        _fts_replace(conn, seq, event)
                changed += len(dirty)
        return changed

    def unindexed(self, limit: int) -> list[tuple[Event, str]]:
        """Up to `limit` events whose vector is missing or stale, each with its stored data
        (`mark_indexed` only flags a row whose data is still that)."""
        rows = self._db.query(
            "SELECT data FROM events WHERE indexed = 0 ORDER BY seq LIMIT ?", (limit,)
        )
        return [(Event.model_validate_json(r["data"]), str(r["data"])) for r in rows]

    def count_unindexed(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM events WHERE indexed = 0")[0][0])

    def mark_indexed(self, done: Sequence[tuple[str, str]]) -> None:
        """Flag events indexed, each only if its data is unchanged since it was embedded."""
        with self._db.transaction() as conn:
            conn.executemany("UPDATE events SET indexed = 1 WHERE id = ? AND data = ?", list(done))

    def expirable(self, before: datetime) -> int:
        """How many events `expire(before)` would remove: done, and last seen before `before`."""
        rows = self._db.query(
            "SELECT COUNT(*) FROM events WHERE status = 'done' AND last_seen < ?",
            (before.timestamp(),),
        )
        return int(rows[0][0])

    def expire(self, before: datetime) -> list[str]:
        """Remove done events last seen before `before` with their keyword rows, queue their
        vectors for deletion, and remember their ids as expired. Pending, claimed and failed
        events are never touched. Returns the ids removed."""
        now = time.time()
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT seq, id, occurred_at FROM events WHERE status = 'done' AND last_seen < ?",
                (before.timestamp(),),
            ).fetchall()
            self.remove_rows(conn, [(r[0], r[1], r[2]) for r in rows], now)
        return [str(r[1]) for r in rows]

    def remove_rows(
        self,
        conn: sqlite3.Connection,
        rows: Sequence[tuple[int, str, float]],
        now: float | None = None,
    ) -> None:
        """Inside the caller's transaction, remove the events given as (seq, id, occurred_at)
        with their keyword rows, queue their vectors for deletion and remember their ids as
        expired, so a memory's provenance says its source is gone (retention, or a deleted
        conversation)."""
        now = time.time() if now is None else now
        conn.executemany("DELETE FROM event_fts WHERE rowid = ?", [(r[0],) for r in rows])
        conn.executemany("DELETE FROM events WHERE seq = ?", [(r[0],) for r in rows])
        conn.executemany(
            "INSERT OR REPLACE INTO vector_deletes(id, type) VALUES(?, ?)",
            [(r[1], EVENT_COLLECTION) for r in rows],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO expired_events(id, occurred_at, expired_at) VALUES(?, ?, ?)",
            [(r[1], r[2], now) for r in rows],
        )

    def expired(self, ids: Sequence[str]) -> list[str]:
        """Those of `ids` that name an event retention removed, in the order given."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.query(f"SELECT id FROM expired_events WHERE id IN ({marks})", list(ids))
        found = {str(r[0]) for r in rows}
        return [i for i in ids if i in found]

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
        if error and self._redact is not None:  # an error may quote what the model was shown
            error = self._redact(error)
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

    def failed(self, limit: int = 100) -> list[tuple[Event, int, str]]:
        """The events parked as failed, oldest first, each with its attempts and last error
        (what `engram events` shows before `--retry-failed` puts them back in the queue)."""
        rows = self._db.query(
            "SELECT data, attempts, error FROM events WHERE status = 'failed' ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            (Event.model_validate_json(r["data"]), int(r["attempts"]), str(r["error"] or ""))
            for r in rows
        ]

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

    def between(
        self, since: datetime, until: datetime, limit: int = 1000, *, newest_first: bool = False
    ) -> list[Event]:
        """Events that occurred in [since, until), oldest first (or the newest `limit` first)."""
        order = "DESC" if newest_first else "ASC"
        rows = self._db.query(
            "SELECT data FROM events WHERE occurred_at >= ? AND occurred_at < ? "
            f"ORDER BY occurred_at {order} LIMIT ?",
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
