"""MemoryStore: the one place memories are written, read and searched.

SQLite holds every record (vault secrets encrypted) with its history in the same transaction; the
vector index is updated after the commit and rows are flagged `indexed` only once it is, so a
crash between the two is repaired at the next open by re-embedding what is flagged. A vector
index that fails after the commit (a Chroma server down, a full disk) fails nothing: the write
stands, `index_warning` says so, and `repair_index` (at open, and from the memory worker) catches
the index up. The class is built in layers: storage/store_rows.py (rows), store_index.py (the
vector index) and store_read.py (reading, search); `SearchHit`, `EventHit`, `Hit` and `Progress`
are still imported from here.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from storage.capture_log import CaptureLog
from storage.codec import RecordCodec
from storage.conversations import ConversationLog
from storage.crypto import VaultCipher, load_or_create_key
from storage.errors import InvalidText, NotFound, StoreCorrupt, from_os_error
from storage.events import EventQueue, mark_done
from storage.history import Change, change_from_row, latest_undoable, log_change
from storage.ownership import accepted, guard, restored, stamped
from storage.protocols import Embedder, VectorIndex
from storage.records import CoreBlock, MemoryType, Record, VaultEntry, utcnow
from storage.search import HybridSearcher
from storage.secrets import SCRUB_ACTOR, ScrubReport, SecretSet, load_secrets, scrub_store
from storage.sqlite_db import Database, DataDirLock, keep_private
from storage.store_index import Progress, mark_all_unindexed, open_index
from storage.store_read import EventHit, Hit, SearchHit, StoreReads
from storage.suggestions import Suggestion, SuggestionBook, record_suggestions, resolve

__all__ = ["Action", "EventHit", "Hit", "MemoryStore", "Progress", "SearchHit", "Write"]

log = logging.getLogger(__name__)

Action = Literal["add", "replace", "delete"]


@dataclass(frozen=True)
class Write:
    """One change for `MemoryStore.apply`: add or replace `record`, or delete the memory with
    its id (what is deleted, and kept in history, is the stored row, not this copy). `op` says
    what made it, for reports ("insert", "merge-duplicate", "rewrite", …); storage ignores it."""

    action: Action
    record: Record
    op: str = ""


class MemoryStore(StoreReads):
    """The facade every caller uses. Writing, undo, suggestions, secrets and retention live
    here; reading and search (storage/store_read.py), the vector index (store_index.py) and
    the rows themselves (store_rows.py) are the layers it is built on."""

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
            mark_all_unindexed(db)
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
            index = open_index(data_dir / "chroma", db, index_factory)
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

    def capture_log(self, merge_within_s: float = 15.0) -> CaptureLog:
        """The capture-gap log on this store's database, so capture never reaches for it."""
        return CaptureLog(
            self._db, merge_within_s=merge_within_s, redact=lambda t: self.secrets().scrub(t)
        )

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
