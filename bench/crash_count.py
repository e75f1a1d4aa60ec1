"""What bench.crash counts after a trial, and the record of transactions it counts them by.

"Applied twice" means one batch applied in more than one transaction. The store's history
says which batch wrote a row (the actor `agents:<batch_id>`, the batch id a hash of its events'
ids, agents/loop.py) but not which transaction: each row has its own timestamp. So while
`tracking()` is on, every transaction that writes history rows notes their range of `seq` in a
table of the bench's own, inside that same transaction: it commits with them or not at all, and
a kill just before or after the COMMIT cannot make the record disagree with the rows. A
history row outside every noted range counts as a transaction of its own (so a gap in the
record shows up as applied twice, never hides it) and is reported as `untracked`.

A later batch updating a memory an earlier one made is not applied twice (a real model may
well do it); two memories of one type with the same index text are duplicates.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from storage.events import EVENT_COLLECTION
from storage.records import MemoryType, Record, SemanticMemory
from storage.store import MemoryStore

#: The bench's own table: one row per transaction that wrote history, its first and last seq.
TABLE = "crash_transactions"
#: The scripted model's one memory per event: `canary<trial>x<i>` in the event and the name.
MARKER = re.compile(r"\bcanary(\d+)x(\d+)\b")


@contextlib.contextmanager
def tracking() -> Iterator[None]:
    """Note, in each transaction that writes history, the seq range of the rows it wrote."""
    from storage.sqlite_db import Database

    original = Database.transaction

    @contextlib.contextmanager
    def transaction(self: Database) -> Iterator[sqlite3.Connection]:
        with original(self) as conn:
            first = _last_seq(conn)
            yield conn
            last = _last_seq(conn)
            if last > first:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} "
                    "(first INTEGER NOT NULL, last INTEGER NOT NULL)"
                )
                conn.execute(f"INSERT INTO {TABLE}(first, last) VALUES(?, ?)", (first + 1, last))

    Database.transaction = transaction  # type: ignore[method-assign]
    try:
        yield
    finally:
        Database.transaction = original  # type: ignore[method-assign]


def _last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()[0])


def batch_transactions(store: MemoryStore) -> tuple[dict[str, set[int]], int]:
    """The transactions each batch (`agents:<batch_id>` actor) wrote history in, and how many
    history rows no noted transaction covers (each counted as a transaction of its own)."""
    db = store._db
    ranges: list[tuple[int, int]] = []
    if db.query(f"SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{TABLE}'"):
        ranges = [(int(r[0]), int(r[1])) for r in db.query(f"SELECT first, last FROM {TABLE}")]
    by_batch: dict[str, set[int]] = defaultdict(set)
    untracked = 0
    for row in db.query("SELECT seq, actor FROM history WHERE actor LIKE 'agents:%'"):
        seq = int(row["seq"])
        tx = next((i for i, (lo, hi) in enumerate(ranges) if lo <= seq <= hi), None)
        if tx is None:
            untracked += 1
            tx = -seq  # a transaction of its own
        by_batch[str(row["actor"])].add(tx)
    return dict(by_batch), untracked


def memories(store: MemoryStore) -> list[Record]:
    return [r for t in MemoryType for r in store.browse(t, limit=100_000)]


def count(store: MemoryStore, n_events: int, scripted: bool) -> dict[str, Any]:
    """A trial's figures on a recovered store that was queued `n_events` events.

    Both models: an event is lost when it is not done or has vanished; a batch applied twice
    is one whose history rows lie in more than one transaction; duplicates are memories of one
    type with identical index text. `scripted` (the model that writes exactly one memory per
    event, named after its canary) is stricter: an event is also lost when its canary has no
    memory, duplicates are canaries with more than one memory, and `memories_written_twice`
    counts memories with more than one agents' write (that model never updates)."""
    db = store._db
    rows = db.query("SELECT id, status, error FROM events")
    status = {str(r["id"]): str(r["status"]) for r in rows}
    # Why an event is not done (a batch parked after five failed tries says so): a loss and a
    # model that timed out on a starved CPU read differently.
    not_done = Counter(
        f"{r['status']}: {r['error'] or ''}"[:160] for r in rows if r["status"] != "done"
    )
    stored = memories(store)
    transactions, untracked = batch_transactions(store)
    writers: dict[str, set[str]] = defaultdict(set)
    writes: Counter[str] = Counter()
    for change in store.history(limit=100_000):
        if change.actor.startswith("agents:"):
            writers[change.memory_id].add(change.actor)
            writes[change.memory_id] += 1
    texts = Counter((r.kind, r.index_text()) for r in stored)
    cited = {source for r in stored for source in r.provenance}
    lost = sum(s != "done" for s in status.values()) + max(0, n_events - len(status))
    out: dict[str, Any] = {
        "events_lost": lost,
        "applied_twice": sum(len(txs) > 1 for txs in transactions.values()),
        "duplicate_memories": sum(n - 1 for n in texts.values() if n > 1),
        "untracked_history_rows": untracked,
        "not_done": dict(not_done),
        "memories": len(stored),
        "events_without_memory": sum(e not in cited for e in status),
        "later_updates": sum(len(actors) > 1 for actors in writers.values()),
    }
    if scripted:
        names = Counter(r.name for r in stored if isinstance(r, SemanticMemory))
        for event_id, text in _event_texts(store):
            match = MARKER.search(text)
            name = f"canary{match.group(1)}x{match.group(2)}" if match else ""
            out["events_lost"] += status[event_id] == "done" and names[name] == 0
        out["duplicate_memories"] = sum(n - 1 for n in names.values() if n > 1)
        out["memories_written_twice"] = sum(n > 1 for n in writes.values())
    return out


def agreement(store: MemoryStore) -> dict[str, Any]:
    """SQLite's integrity check, and whether the vector ids are exactly the rows' ids (for
    every memory type and for the events)."""
    db = store._db
    agree = True
    for memory_type in MemoryType:
        rows = {
            str(r["id"])
            for r in db.query("SELECT id FROM memories WHERE type = ?", (memory_type.value,))
        }
        agree &= store._index.ids(store.namespace + memory_type.value) == rows
    events = {str(r["id"]) for r in db.query("SELECT id FROM events")}
    agree &= store._index.ids(store.namespace + EVENT_COLLECTION) == events
    stats = store.stats()
    return {
        "integrity_ok": db.query("PRAGMA integrity_check")[0][0] == "ok",
        "chroma_agrees": bool(agree),
        "unindexed": stats["unindexed"] + stats["events_unindexed"],
    }


def _event_texts(store: MemoryStore) -> Iterator[tuple[str, str]]:
    for row in store._db.query("SELECT id, data FROM events"):
        yield str(row["id"]), str(json.loads(row["data"])["text"])
