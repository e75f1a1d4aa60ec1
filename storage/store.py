"""MemoryStore: the one place memories are written, read and searched.

SQLite holds every record (vault secrets encrypted) with its history in the same transaction; the
vector index is updated after the commit and rows are flagged `indexed` only once it is, so a
crash between the two is repaired at the next open by re-embedding what is flagged. A vector
index that fails after the commit (a Chroma server down, a full disk) fails nothing: the write
stands, `index_warning` says so, and `repair_index` (at open, and from the memory worker) catches
the index up.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, overload

from storage.capture_log import CaptureLog
from storage.codec import RecordCodec
from storage.conversations import ConversationLog
from storage.crypto import VaultCipher, load_or_create_key
from storage.errors import (
    CoreLimitExceeded,
    DamagedRecord,
    InvalidText,
    NotFound,
    StoreCorrupt,
    from_os_error,
)
from storage.events import EVENT_COLLECTION, EventQueue, mark_done
from storage.history import Change, change_from_row, latest_undoable, log_change
from storage.ownership import accepted, guard, restored, stamped
from storage.protocols import Embedder, VectorIndex
from storage.records import (
    CoreBlock,
    Event,
    MemoryType,
    Record,
    VaultEntry,
    utcnow,
)
from storage.search import EVENT, HybridSearcher, SearchOptions
from storage.secrets import SCRUB_ACTOR, ScrubReport, SecretSet, load_secrets, scrub_store
from storage.sqlite_db import Database, DataDirLock, keep_private
from storage.suggestions import Suggestion, SuggestionBook, record_suggestions, resolve

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


Action = Literal["add", "replace", "delete"]


@dataclass(frozen=True)
class Write:
    """One change for `MemoryStore.apply`: add or replace `record`, or delete the memory with
    its id (what is deleted, and kept in history, is the stored row, not this copy). `op` says
    what made it, for reports ("insert", "merge-duplicate", "rewrite", …); storage ignores it."""

    action: Action
    record: Record
    op: str = ""


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


class MemoryStore:
    def __init__(
        self,
        db: Database,
        index: VectorIndex,
        embedder: Embedder,
        cipher: VaultCipher,
        lock: DataDirLock | None = None,
    ) -> None:
        self._db = db
        self._index = index
        self._embedder = embedder
        self.codec = RecordCodec(cipher)
        self._lock = lock
        self._index_error: str | None = None  # the last vector failure, until a repair succeeds
        store_id = db.get_meta("store_id") or "x"
        model = hashlib.sha1(embedder.name.encode()).hexdigest()[:8]
        # Collections are namespaced by embedding model: switching models never mixes spaces.
        self.namespace = f"{store_id[:8]}_{model}_"
        self._secrets: SecretSet | None = None  # decrypted in memory only; None: reload
        self._secrets_lock = threading.Lock()
        self._scrubbing = False
        #: Ids of damaged rows that reads skipped (`_readable`), for a caller to report.
        self.skipped_damaged: set[str] = set()
        self.events = EventQueue(db, redact=lambda text: self.secrets().scrub(text))
        self.suggestions = SuggestionBook(db)
        self.conversations = ConversationLog(db, self.events)
        self.searcher = HybridSearcher(db, index, embedder, self.namespace)
        if db.get_meta("embedder") != embedder.name:
            _mark_all_unindexed(db)
            db.set_meta("embedder", embedder.name)

    # ----- opening and closing -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path,
        embedder: Embedder,
        index_factory: Callable[[Path], VectorIndex],
        lock_timeout_s: float = 3.0,
    ) -> MemoryStore:
        """Open (or create) the store in `data_dir`. `index_factory` builds the vector index,
        given the folder where a local index keeps its files (the composition root picks the
        adapter: the store knows no vector engine)."""
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not data_dir.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "it is a file", str(data_dir))
            keep_private(data_dir)  # nobody else may look in; the owner's bits stay theirs
            lock = DataDirLock(data_dir, lock_timeout_s)
            lock.acquire()
        except OSError as exc:
            raise from_os_error(exc, data_dir) from exc
        try:
            _refuse_lost_database(data_dir)
            db = Database(data_dir / "engram.sqlite3")
            key, where = load_or_create_key(
                data_dir, db.get_meta("store_id") or "", db.get_meta("vault_key")
            )
            db.set_meta("vault_key", where)
            index = _open_index(data_dir / "chroma", db, index_factory)
            store = cls(db, index, embedder, VaultCipher(key), lock)
        except OSError as exc:
            lock.release()
            raise from_os_error(exc, data_dir) from exc
        except BaseException:
            lock.release()
            raise
        store.events.recover()
        store.repair_index()  # events' vectors follow in the background (`index_events`)
        if db.get_meta("secret_scrub") != "done":  # a store from before secrets were scrubbed
            store.scrub_secrets(vacuum=True)
        return store

    def close(self) -> None:
        self.searcher.close()
        self._index.close()
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- writing ---------------------------------------------------------------------------

    def add(self, record: Record, actor: str = "user") -> Record:
        return self.add_many([record], actor)[0]

    def add_many(self, records: Sequence[Record], actor: str = "user") -> list[Record]:
        """Insert records in one transaction (with history), then index them."""
        return self.apply([Write("add", r) for r in records], actor)

    def update(self, memory_id: str, actor: str = "user", **changes: Any) -> Record:
        before = self.get(memory_id)
        return self.replace(before.updated(**changes), actor)

    def replace(self, record: Record, actor: str = "user") -> Record:
        """Store `record` over the memory with the same id."""
        return self.apply([Write("replace", record)], actor)[0]

    def delete(self, memory_id: str, actor: str = "user") -> Record:
        return self.apply([Write("delete", self.get(memory_id))], actor)[0]

    def apply(
        self,
        writes: Sequence[Write],
        actor: str = "user",
        events_done: Sequence[str] = (),
        suggest: Sequence[Suggestion] = (),
        resolved: Sequence[Suggestion] = (),
    ) -> list[Record]:
        """Make `writes` in one transaction, with their history, and mark `events_done` done in
        that same transaction: a batch of memories and the events it came from land together
        or not at all, so a crash can neither lose the batch nor apply it twice. Embedding
        comes first, so a broken model fails the call before anything is written. Once the
        commit is made nothing raises: a failing vector index leaves the rows unindexed (and
        vector deletes queued) for `repair_index`, and `index_warning` tells the caller. Returns
        the records written (for a delete, the record as it was). `suggest` records what the
        agents would change in the user's memories, `resolved` marks suggestions accepted, in
        the same transaction. Each record is stamped with its origin (storage/ownership.py),
        and an agent's write that would touch what the user wrote raises `ProtectedMemory`."""
        writes = self._without_secrets(writes)
        stored = [w.record for w in writes if w.action != "delete"]
        for record in stored:
            self.check(record)
        vectors = self._embed(stored)
        out: list[Record] = []
        with self._db.transaction() as conn:
            for write in writes:
                out.append(self._apply_in(conn, write, actor))
            mark_done(conn, events_done)
            record_suggestions(conn, suggest)
            for suggestion in resolved:
                resolve(conn, suggestion, "accepted")
        self._index_after_commit(stored, vectors, flush=len(stored) < len(writes))
        self._after_vault_writes([w.record for w in writes])
        return out

    def _apply_in(self, conn: Any, write: Write, actor: str) -> Record:
        target = write.record
        if write.action == "delete":
            before = self._get_in(conn, target.id)
            guard(before, None, actor)
            self._delete_row(conn, before)
            log_change(conn, self.codec, "delete", before, before, None, actor)
            return before
        if write.action == "add":
            if isinstance(target, CoreBlock):
                clash = conn.execute(
                    "SELECT id FROM memories WHERE label = ?", (target.label,)
                ).fetchone()
                if clash:
                    raise InvalidText(
                        f"a core block labelled {target.label!r} exists ({clash[0]}); "
                        "update it instead"
                    )
            target = stamped(target, None, actor)
            self._write_row(conn, target)
            log_change(conn, self.codec, "create", target, None, target, actor)
            return target
        before = self._get_in(conn, target.id)
        if type(before) is not type(target):
            raise InvalidText(
                f"{target.id} is a {before.kind.value} memory, not {target.kind.value}"
            )
        guard(before, target, actor)
        target = stamped(target, before, actor)
        self._write_row(conn, target)
        log_change(conn, self.codec, "update", target, before, target, actor)
        return target

    def set_core(self, label: str, value: str, actor: str = "user") -> CoreBlock:
        """Create or overwrite the core block `label`; over its limit is an error."""
        existing = self.core_block(label)
        if existing is None:
            block = CoreBlock(label=label, value=value)
            self.check(block)
            added = self.add(block, actor)
            assert isinstance(added, CoreBlock)
            return added
        updated = self.replace(existing.updated(value=value), actor)
        assert isinstance(updated, CoreBlock)
        return updated

    def append_core(self, label: str, text: str, actor: str = "user") -> CoreBlock:
        existing = self.core_block(label)
        value = f"{existing.value}\n{text}" if existing and existing.value else text
        return self.set_core(label, value, actor)

    def undo(self, seq: int | None = None, actor: str = "user") -> Change:
        """Revert history entry `seq` (default: the latest not already reverted)."""
        with self._db.transaction() as conn:
            if seq is None:
                row = latest_undoable(conn)
            else:
                row = conn.execute("SELECT * FROM history WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                raise NotFound("nothing to undo" if seq is None else f"no history entry {seq}")
            change = change_from_row(row)
            current = self._maybe_get_in(conn, change.memory_id)
            if change.before is None:  # undo a create
                if current is not None:
                    self._delete_row(conn, current)
                new = None
            else:
                new = self.codec.decode(change.memory_type, change.before)
                new = restored(new, current)
                self._write_row(conn, new)
            log_new = new or current
            if log_new is None:
                raise NotFound(f"memory {change.memory_id} no longer exists")
            undo_seq = log_change(
                conn, self.codec, "undo", log_new, current, new, actor, reverts=change.seq
            )
        self._index_after_commit([new] if new is not None else [], None, flush=True)
        if change.memory_type is MemoryType.KNOWLEDGE_VAULT:
            self._after_vault_writes([new] if new is not None else [], changed=True)
        return self.history_entry(undo_seq)

    def accept(self, suggestion_id: str, actor: str = "user") -> Record:
        """Apply a pending suggestion, with history; the memory stays the user's. Returns the
        memory as it is now (for a delete, as it was)."""
        suggestion = self.suggestions.get(suggestion_id)
        if suggestion.status != "pending":
            raise NotFound(f"suggestion {suggestion_id} was already {suggestion.status}")
        record = self.get(suggestion.memory_id)
        changed = accepted(record, suggestion)
        write = Write("delete", record) if changed is None else Write("replace", changed)
        return self.apply([write], actor, resolved=[suggestion])[0]

    def dismiss(self, suggestion_id: str) -> Suggestion:
        """Turn a suggestion down; the same one (same memory, same change) is not made again."""
        suggestion = self.suggestions.get(suggestion_id)
        with self._db.transaction() as conn:
            return resolve(conn, suggestion, "dismissed")

    # ----- secrets (storage/secrets.py) ------------------------------------------------------

    def secrets(self) -> SecretSet:
        """The high-sensitivity vault values, cached until the next vault write: what every
        prompt and every stored text is scrubbed of."""
        with self._secrets_lock:
            if self._secrets is None:
                self._secrets = load_secrets(self._db, self.codec)
            return self._secrets

    def scrub_secrets(self, vacuum: bool = False) -> ScrubReport:
        """Withhold every secret from the stored text of memories, events and history, and
        from SQLite's free pages and WAL (`engram` runs it once on open, and after each write
        of a high-sensitivity vault entry). Until it has finished it runs again at next open."""
        self._db.set_meta("secret_scrub", "pending")
        self._scrubbing = True
        try:
            report = scrub_store(
                self._db,
                self.codec,
                self.events,
                self.secrets(),
                lambda records: self.apply(
                    [Write("replace", r, "vault-scrub") for r in records], SCRUB_ACTOR
                ),
                vacuum=vacuum,
            )
        finally:
            self._scrubbing = False
        self._db.set_meta("secret_scrub", "done")
        return report

    def _without_secrets(self, writes: Sequence[Write]) -> list[Write]:
        """`writes` with every secret (those already stored and those these writes add)
        withheld from the text of what they store."""
        secrets = self.secrets().plus(w.record for w in writes if w.action != "delete")
        if not secrets:
            return list(writes)
        return [
            w if w.action == "delete" else Write(w.action, secrets.scrub_record(w.record), w.op)
            for w in writes
        ]

    def _after_vault_writes(self, records: Sequence[Record], changed: bool = False) -> None:
        """After a vault write: forget the cached secrets and, when a high-sensitivity value
        was written, scrub it from everything stored. Never raises (the write is committed):
        a failed scrub is logged and runs again at next open."""
        vault = [r for r in records if isinstance(r, VaultEntry)]
        if not (vault or changed):
            return
        with self._secrets_lock:
            self._secrets = None
        if self._scrubbing or not any(r.withheld for r in vault):
            return
        try:
            self.scrub_secrets()
        except Exception:
            log.exception("withholding a vault secret from stored text failed; retried at open")

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

    def capture_log(self, merge_within_s: float = 15.0) -> CaptureLog:
        """The capture-gap log on this store's database, so capture never reaches for it."""
        return CaptureLog(
            self._db, merge_within_s=merge_within_s, redact=lambda t: self.secrets().scrub(t)
        )

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

    def expire_events(
        self, keep_days: int, *, dry_run: bool = False, now: datetime | None = None
    ) -> int:
        """Retention: remove the done events last seen more than `keep_days` days ago (0 keeps
        them all) with their keyword rows and vectors. Memories made from them stay; their
        provenance then names the source as expired. `dry_run` only counts them."""
        if keep_days <= 0:
            return 0
        before = (now or utcnow()) - timedelta(days=keep_days)
        if dry_run:
            return self.events.expirable(before)
        removed = self.events.expire(before)
        if removed:
            self._index_after_commit([], None, flush=True)
        return len(removed)

    def delete_conversation(self, conversation_id: str) -> int:
        """Forget a chat conversation and its turns' events (keyword rows and vectors too);
        how many turns went. Raises NotFound for an unknown id."""
        removed = self.conversations.delete(conversation_id)
        self._index_after_commit([], None, flush=True)
        return removed

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
        _mark_all_unindexed(self._db)
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


def _refuse_lost_database(data_dir: Path) -> None:
    """An empty `engram.sqlite3` beside the vault key or the vector folder of a store that had
    data is a lost database (a truncated copy, a failed restore), not a new store: opening it
    would start an empty store over the remains of the old one without a word."""
    db = data_dir / "engram.sqlite3"
    wal = data_dir / "engram.sqlite3-wal"
    if not db.is_file() or db.stat().st_size > 0 or (wal.exists() and wal.stat().st_size > 0):
        return
    remains = [n for n in ("vault.key", "chroma") if (data_dir / n).exists()]
    if remains:
        raise StoreCorrupt(
            f"{db} is empty (0 bytes), but this folder holds an older store's "
            f"{' and '.join(remains)}: the database was lost or truncated. Nothing was changed: "
            "restore engram.sqlite3 from a backup (or `engram import` an export into a new "
            "ENGRAM_HOME); to start afresh here, move the whole folder aside first"
        )


def _open_index(path: Path, db: Database, factory: Callable[[Path], VectorIndex]) -> VectorIndex:
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
        _mark_all_unindexed(db)
        return factory(path)
    # An index that says it started empty (`fresh`: Chroma found no database in a folder that
    # is still there) lost its vectors as surely as a missing folder.
    if (not existed and path.exists()) or getattr(index, "fresh", False):
        _mark_all_unindexed(db)
    return index


def _mark_all_unindexed(db: Database) -> None:
    """Every memory and event needs its vector again (the index was lost, or the model changed)."""
    db.execute("UPDATE memories SET indexed = 0")
    db.execute("UPDATE events SET indexed = 0")
