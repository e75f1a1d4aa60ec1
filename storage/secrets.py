"""A secret stays secret everywhere: high-sensitivity vault values kept out of every other text.

Once a high-sensitivity vault entry holds a value, that value is a secret. `SecretSet` holds the
secrets of a store, decrypted in memory only (the store caches one and drops it on every vault
write), and withholds them from any text: a prompt, a memory, an event, a history row. The
scrub pass (`scrub_store`) rewrites what is already stored (memories with history, events,
the undo history itself), then leaves no plaintext in SQLite's free pages, the FTS5 index or
the WAL. How one value is matched and what replaces it is the vault record's own
(`VaultEntry.scrub_pattern`, `VaultEntry.WITHHELD`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.codec import RecordCodec
from storage.errors import DamagedRecord
from storage.events import EventQueue
from storage.records import MemoryType, Record, VaultEntry
from storage.sqlite_db import Database

log = logging.getLogger(__name__)

#: The history actor of a memory rewritten because it quoted a secret.
SCRUB_ACTOR = "vault-scrub"  # one of storage.origin.KEEPS_OWNER: a scrub changes no owner
#: Fields never scrubbed: the vault value itself (encrypted at rest) and identity.
_KEEP = frozenset({"secret_value", "id"})

Scrub = Callable[[str], str]


class SecretSet:
    """The high-sensitivity values of some vault entries, ready to withhold from text."""

    def __init__(self, entries: Iterable[VaultEntry] = ()) -> None:
        withheld = [e for e in entries if e.withheld and e.secret_value.strip()]
        # Longest first: a secret that contains another is withheld whole.
        withheld.sort(key=lambda e: len("".join(e.secret_value.split())), reverse=True)
        self._patterns = [p for e in withheld if (p := e.scrub_pattern()) is not None]
        self._short = {
            e.secret_value.strip().casefold() for e in withheld if e.scrub_pattern() is None
        }
        self._entries = tuple(withheld)

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def plus(self, entries: Iterable[object]) -> SecretSet:
        """These secrets and those of `entries` (vault entries about to be written)."""
        return SecretSet([*self._entries, *(e for e in entries if isinstance(e, VaultEntry))])

    def scrub(self, text: str) -> str:
        """`text` with every secret withheld. A value too short to find inside other text is
        withheld only where it is the whole text (a field that holds just "4921")."""
        if not self._entries or not text:
            return text
        if self._short and text.strip().casefold() in self._short:
            return VaultEntry.WITHHELD
        for pattern in self._patterns:
            text = pattern.sub(VaultEntry.WITHHELD, text)
        return text

    def scrub_data(self, data: Any) -> Any:
        """A JSON-like value (a record as stored, an event) with every string scrubbed, except
        a vault entry's own value and ids."""
        if isinstance(data, str):
            return self.scrub(data)
        if isinstance(data, dict):
            return {k: v if k in _KEEP else self.scrub_data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(self.scrub_data(v) for v in data)
        return data

    def scrub_record(self, record: Record) -> Record:
        """`record` with secrets withheld from its text (the same object when none was found)."""
        if not self._entries:
            return record
        data = record.model_dump(mode="json")
        clean = self.scrub_data(data)
        if clean == data:
            return record
        return record.updated(**{k: v for k, v in clean.items() if clean[k] != data[k]})


def load_secrets(db: Database, codec: RecordCodec) -> SecretSet:
    """The store's secrets, decrypted from its vault rows."""
    rows = db.query(
        "SELECT id, data FROM memories WHERE type = ?", (MemoryType.KNOWLEDGE_VAULT.value,)
    )
    entries = []
    for row in rows:
        try:
            record = codec.decode_row(MemoryType.KNOWLEDGE_VAULT, row["data"], row["id"])
        except DamagedRecord as exc:  # doctor reports it; the other secrets still hold
            log.warning("%s", exc)
            continue
        if isinstance(record, VaultEntry) and record.withheld:
            entries.append(record)
    return SecretSet(entries)


@dataclass(frozen=True)
class ScrubReport:
    """What a scrub pass rewrote."""

    memories: int = 0
    events: int = 0
    history_rows: int = 0
    #: Rows of every other table with text (capture gaps' details, suggestions, and any table
    #: a later feature adds), scrubbed in place.
    other_rows: int = 0


def scrub_store(
    db: Database,
    codec: RecordCodec,
    events: EventQueue,
    secrets: SecretSet,
    rewrite: Callable[[Sequence[Record]], object],
    vacuum: bool = False,
    batch: int = 200,
) -> ScrubReport:
    """Withhold `secrets` from everything stored: each memory that quotes one is rewritten
    through `rewrite` (the store's own write: history, keyword index, vectors); each event's
    text, window title, metadata and last error through `EventQueue.scrub`; history rows (the
    undo history) and every text column of every other table (capture gaps' details,
    suggestions, ...) in place. Then SQLite is made to forget the old bytes: the FTS5 index is
    merged ('optimize'), `vacuum` rewrites the file (for a store from before secure_delete),
    and the WAL is checkpointed and truncated."""
    if not secrets:
        return ScrubReport()
    memories = 0
    pending: list[Record] = []
    for row in db.query("SELECT id, type, data FROM memories"):
        try:
            record = codec.decode_row(row["type"], row["data"], row["id"])
        except DamagedRecord:  # unreadable: nothing to scrub in it that could be read back
            continue
        clean = secrets.scrub_record(record)
        if clean is not record:
            pending.append(clean)
        if len(pending) >= batch:
            rewrite(pending)
            memories, pending = memories + len(pending), []
    if pending:
        rewrite(pending)
        memories += len(pending)
    n_events = events.scrub(secrets.scrub)  # text, window title, metadata, last error
    history_rows = _scrub_history(db, secrets)
    other_rows = _scrub_other_tables(db, secrets)
    db.execute("INSERT INTO memory_fts(memory_fts) VALUES('optimize')")
    db.execute("INSERT INTO event_fts(event_fts) VALUES('optimize')")
    if vacuum:
        db.execute("VACUUM")
    db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    report = ScrubReport(memories, n_events, history_rows, other_rows)
    if memories or n_events or history_rows or other_rows:
        log.info("withheld vault secrets from stored text: %s", report)
    return report


def _scrub_history(db: Database, secrets: SecretSet) -> int:
    """Scrub history's before/after JSON in place; the rest of each row is kept, so the
    history still says what changed and undo restores the scrubbed text."""
    changed: list[tuple[str | None, str | None, int]] = []
    for row in db.query("SELECT seq, type, before, after FROM history"):
        before, after = _scrub_json(row["before"], secrets), _scrub_json(row["after"], secrets)
        if before != row["before"] or after != row["after"]:
            changed.append((before, after, int(row["seq"])))
    if changed:
        with db.transaction() as conn:
            conn.executemany("UPDATE history SET before = ?, after = ? WHERE seq = ?", changed)
    return len(changed)


def _scrub_json(text: str | None, secrets: SecretSet) -> str | None:
    if not text:
        return text
    data = json.loads(text)
    clean = secrets.scrub_data(data)
    return text if clean == data else json.dumps(clean, ensure_ascii=False)


#: Tables with their own scrub above (memories through the store's write, with history),
#: or that hold no text a person wrote or saw (ids, settings of the store itself).
_OWN_SCRUB = frozenset(
    {"memories", "events", "history", "memory_fts", "event_fts", "meta", "vector_deletes"}
)


def _scrub_other_tables(db: Database, secrets: SecretSet) -> int:
    """Every text column of every other table, found from the schema, so a table a later
    feature adds is covered without anyone remembering to: JSON values are scrubbed as JSON
    (`scrub_data`, so they stay valid), other text as text. FTS5 shadow tables are left to
    their own table (an UPDATE through an FTS5 table keeps its index in step)."""
    tables = db.query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    virtual = [t["name"] for t in tables if (t["sql"] or "").upper().startswith("CREATE VIRTUAL")]
    changed = 0
    for table in tables:
        name = str(table["name"])
        shadow = any(name.startswith(f"{v}_") for v in virtual)
        if name in _OWN_SCRUB or name.startswith("sqlite_") or shadow:
            continue
        columns = [
            c["name"]
            for c in db.query(f'PRAGMA table_info("{name}")')
            if name in virtual or "TEXT" in str(c["type"]).upper() or not c["type"]
        ]
        if not columns:
            continue
        cols = ", ".join(f'"{c}"' for c in columns)
        updates: list[tuple[Any, ...]] = []
        for row in db.query(f'SELECT rowid AS _rowid, {cols} FROM "{name}"'):
            values = [row[c] for c in columns]
            clean = [_scrub_value(v, secrets) for v in values]
            if clean != values:
                updates.append((*clean, row["_rowid"]))
        if updates:
            sets = ", ".join(f'"{c}" = ?' for c in columns)
            try:
                with db.transaction() as conn:
                    conn.executemany(f'UPDATE "{name}" SET {sets} WHERE rowid = ?', updates)
            except Exception:  # e.g. a contentless FTS table: logged, the rest still scrubbed
                log.exception("could not withhold vault secrets from table %s", name)
                continue
            changed += len(updates)
    return changed


def _scrub_value(value: Any, secrets: SecretSet) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "[{":
        try:
            data = json.loads(value)
        except ValueError:
            pass
        else:
            clean = secrets.scrub_data(data)
            return value if clean == data else json.dumps(clean, ensure_ascii=False)
    return secrets.scrub(value)
