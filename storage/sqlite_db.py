"""The SQLite side of the store: one WAL database for memories, the keyword index, history and
the event queue, plus an exclusive lock on the data folder.

SQLite is the source of truth; the vector index is derived from it and can be rebuilt. Every
write that changes a memory happens in one transaction with its history row, so a crash leaves
either the old state or the new one, never half.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from storage.errors import StoreCorrupt, StoreLocked, from_os_error, from_sqlite_error
from storage.origin import carry_line_origins, origin_of

SCHEMA_VERSION = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    label TEXT,
    indexed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS memories_type_ts ON memories(type, ts);
CREATE UNIQUE INDEX IF NOT EXISTS memories_core_label ON memories(label) WHERE label IS NOT NULL;
CREATE INDEX IF NOT EXISTS memories_unindexed ON memories(indexed) WHERE indexed = 0;
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(text, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS vector_deletes (id TEXT PRIMARY KEY, type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    op TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    type TEXT NOT NULL,
    before TEXT,
    after TEXT,
    actor TEXT NOT NULL,
    reverts INTEGER
);
CREATE INDEX IF NOT EXISTS history_memory ON history(memory_id, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    occurred_at REAL NOT NULL,
    source TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_at REAL,
    done_at REAL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS events_status ON events(status, seq);
CREATE INDEX IF NOT EXISTS events_time ON events(occurred_at);
CREATE TABLE IF NOT EXISTS suggestions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    memory_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    resolved_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS suggestions_memory ON suggestions(memory_id, status);
CREATE INDEX IF NOT EXISTS suggestions_fingerprint ON suggestions(fingerprint);
"""


def _migrate_origins(conn: sqlite3.Connection) -> None:
    """Schema 2 (issue 10): every memory and core line records who wrote it. A stored memory's
    origin is the writer of its first history entry ("user", "agents:b_…", "import"); one with
    no history is taken as the user's (it cannot be told apart, and the user's is the safe
    side). A core block's lines are replayed through its history, so each line keeps the
    origin of the change that wrote it."""
    for row in conn.execute("SELECT id, type, data FROM memories").fetchall():
        data = json.loads(row["data"])
        changes = conn.execute(
            "SELECT after, actor FROM history WHERE memory_id = ? ORDER BY seq", (row["id"],)
        ).fetchall()
        data["origin"] = origin_of(changes[0]["actor"]) if changes else "user"
        if row["type"] == "core":
            value, origins = "", tuple[str, ...]()
            for change in changes:
                after = json.loads(change["after"]) if change["after"] else {"value": ""}
                new = str(after.get("value", ""))
                origins = carry_line_origins(value, origins, new, origin_of(change["actor"]))
                value = new
            current = str(data.get("value", ""))
            data["line_origins"] = list(carry_line_origins(value, origins, current, "user"))
        conn.execute(
            "UPDATE memories SET data = ? WHERE id = ?",
            (json.dumps(data, ensure_ascii=False), row["id"]),
        )


def _migrate_events_searchable(conn: sqlite3.Connection) -> None:
    """Schema step 3: events become searchable. Each gets a keyword row in `event_fts` (rowid =
    its seq, the same tokenizer as `memory_fts`), an `indexed` flag for its vector (as memories
    have), and `last_seen` (a repeated read moves it on, retention goes by it); `expired_events`
    remembers the ids retention removed, so a memory's provenance can say its source expired.
    Idempotent: a fresh database runs it too."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "indexed" not in columns:
        conn.execute("ALTER TABLE events ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0")
    if "last_seen" not in columns:
        conn.execute("ALTER TABLE events ADD COLUMN last_seen REAL")
        conn.execute("UPDATE events SET last_seen = occurred_at")
    conn.execute("CREATE INDEX IF NOT EXISTS events_unindexed ON events(indexed) WHERE indexed = 0")
    conn.execute("CREATE INDEX IF NOT EXISTS events_last_seen ON events(last_seen)")
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS event_fts USING fts5(text, tokenize='porter unicode61')"
    )
    conn.execute(
        "INSERT INTO event_fts(rowid, text) SELECT seq, "
        "trim(json_extract(data, '$.window_title') || char(10) || json_extract(data, '$.text')) "
        "FROM events WHERE seq NOT IN (SELECT rowid FROM event_fts)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS expired_events "
        "(id TEXT PRIMARY KEY, occurred_at REAL NOT NULL, expired_at REAL NOT NULL)"
    )


def _migrate_conversations(conn: sqlite3.Connection) -> None:
    """Schema step 4 (issue 14): chat conversations outlive a restart. A row names each one;
    its turns are the chat events already stored, found by the conversation id in their
    metadata (an index on it). Chat events from before this step belong to no conversation.
    Idempotent."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
        "created_at REAL NOT NULL, updated_at REAL NOT NULL)"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS events_conversation ON events"
        "(json_extract(data, '$.metadata.conversation_id')) WHERE source = 'chat'"
    )


def _migrate_event_context(conn: sqlite3.Connection) -> None:
    """Schema step 5 (issue 12): a chat turn or imported message is indexed with the turns
    before it in its conversation (`Event.context`, keyword index only); the turns stored
    before this step get theirs. Idempotent."""
    from storage.events import refresh_context  # events.py builds on this module

    refresh_context(conn)


#: Schema steps by the version they bring the database to; each is idempotent.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _migrate_origins,
    3: _migrate_events_searchable,
    4: _migrate_conversations,
    5: _migrate_event_context,
}


#: Top-level entries of the data folder that are not the store's: the built-in models are
#: shared with other readers on purpose (app/model_files.py writes them 0644).
NOT_PRIVATE = frozenset({"models"})


def keep_private(data_dir: Path) -> None:
    """Only the owner may read what Engram keeps: from now on every file this process creates
    is 0600 and every folder 0700 (the umask gains 077: SQLite's WAL and SHM, Chroma's files
    and exports are created later, by other code, some on other threads), and what is already
    in `data_dir` loses any group and other bits (a store from before this, or a copy)."""
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    for root, dirs, files in os.walk(data_dir):
        if Path(root) == data_dir:
            dirs[:] = [d for d in dirs if d not in NOT_PRIVATE]
            files = [f for f in files if f not in NOT_PRIVATE]
        for name in [*dirs, *files]:
            _narrow(Path(root) / name)
    _narrow(data_dir)


def _narrow(path: Path) -> None:
    with contextlib.suppress(OSError):
        mode = path.lstat().st_mode
        if mode & 0o077 and not stat.S_ISLNK(mode):
            path.chmod(stat.S_IMODE(mode) & 0o700)


class DataDirLock:
    """An exclusive flock on `<data>/engram.lock`, so two processes never write one store."""

    def __init__(self, data_dir: Path, timeout_s: float = 3.0) -> None:
        self._path = data_dir / "engram.lock"
        self._timeout = timeout_s
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise StoreLocked(
                        f"the Engram data folder {self._path.parent} is in use by another "
                        f"process (pid {holder}); close it first or use another ENGRAM_HOME"
                    ) from exc
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_holder(data_dir: Path) -> int | None:
    """The pid of the process that holds `data_dir`'s lock now (this one included), or None
    when nobody does: a pid left in the file by a process that has gone is not reported."""
    try:
        fd = os.open(data_dir / "engram.lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class Database:
    """One SQLite connection shared under a lock (calls are short; WAL lets readers in)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        existed = path.exists() and path.stat().st_size > 0
        conn: sqlite3.Connection | None = None
        try:
            self._conn = conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # Deleted and overwritten content is zeroed, so a scrubbed secret is not left in
            # free pages or free space inside a page (storage/secrets.py).
            self._conn.execute("PRAGMA secure_delete=ON")
            if existed:
                ok = self._conn.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise sqlite3.DatabaseError(ok)
            self._conn.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            placed = from_sqlite_error(exc, path)
            if placed is not None:  # the folder or the disk is at fault, not the data
                raise placed from exc
            raise StoreCorrupt(
                f"{path} is not a readable Engram database ({exc}). It was left untouched: "
                "move it aside to start afresh, or restore it from an export (engram import)"
            ) from exc
        except OSError as exc:
            raise from_os_error(exc, path) from exc
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)

    def _migrate(self) -> None:
        version = self.get_meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this Engram ({SCHEMA_VERSION})"
            )
        for step in range(int(version or 1) + 1, SCHEMA_VERSION + 1):
            with self.transaction() as conn:
                MIGRATIONS[step](conn)
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(step),),
                )
        if version is None:
            import uuid  # here: `lock_holder` is on every routed command's path (app/routing.py)

            self.set_meta("store_id", uuid.uuid4().hex)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        with self._lock, self._placed():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # a full disk may have rolled back
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock, self._placed():
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Any = ()) -> None:
        with self._lock, self._placed():
            self._conn.execute(sql, params)

    @contextlib.contextmanager
    def _placed(self) -> Iterator[None]:
        """SQLite's "database or disk is full" and "readonly database" as the named errors a
        person can act on (storage/errors.py); anything else as it came."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            placed = from_sqlite_error(exc, self.path)
            if placed is None or isinstance(placed, StoreLocked):
                raise
            raise placed from exc

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
