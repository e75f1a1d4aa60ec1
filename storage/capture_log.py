"""The capture health log: every stretch of time the screen was *not* recorded, and why.

Users of screen recorders complain most about silent gaps, so capture writes down each one
(paused, excluded window, locked screen, unchanged frame, OCR error, backlog, ...). Consecutive
gaps with the same reason are merged into one row whose `count` grows, so a screen left unchanged
for an hour is one row, not 1,200. Extensions of an open gap are kept in memory and written at
most every `flush_every_s` seconds (and on `flush`/`close`), which keeps a tick of capture free of
fsyncs; a new gap is written at once, so a crash loses at most the tail of a gap, never its start.

The table lives in the store's SQLite database (its own CREATE TABLE IF NOT EXISTS), beside a
small key/value table for capture state that must survive a restart (a timed pause).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from storage.records import AwareDatetime
from storage.sqlite_db import Database

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS capture_gaps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        reason TEXT NOT NULL,
        monitor INTEGER,
        count INTEGER NOT NULL DEFAULT 1,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS capture_gaps_end ON capture_gaps(ended_at)",
    "CREATE TABLE IF NOT EXISTS capture_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class GapReason(StrEnum):
    """Why a moment of screen time produced no event."""

    PAUSED = "paused"
    EXCLUDED = "excluded"
    SCREEN_LOCKED = "screen_locked"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    NO_TEXT = "no_text"
    OCR_ERROR = "ocr_error"
    BACKLOG = "backlog"
    SCREEN_UNAVAILABLE = "screen_unavailable"


class CaptureGap(BaseModel):
    """One merged stretch of skipped captures: from the first skip to the last, `count` skips."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    started_at: AwareDatetime
    ended_at: AwareDatetime
    reason: GapReason
    monitor: int | None = None
    count: int = 1
    detail: str = ""

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


@dataclass
class _Open:
    row_id: int
    ended_at: float
    count: int
    dirty: bool = False


def _ts(at: datetime | None) -> float:
    return (at or datetime.now(UTC)).timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class CaptureLog:
    """Thread-safe writer and reader of capture gaps on the store's database."""

    def __init__(
        self,
        db: Database,
        *,
        merge_within_s: float = 15.0,
        flush_every_s: float = 30.0,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self._db = db
        #: Applied to each detail as it is noted (the store withholds vault secrets).
        self._redact = redact
        self._merge_within_s = merge_within_s
        self._flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._open: dict[tuple[str, int | None, str], _Open] = {}
        self._last_flush = time.monotonic()
        for statement in _SCHEMA:
            db.execute(statement)

    def note(
        self,
        reason: GapReason,
        at: datetime | None = None,
        *,
        monitor: int | None = None,
        detail: str = "",
    ) -> None:
        """Record one skipped capture; merged into the open gap of the same kind if recent."""
        ts = _ts(at)
        if detail and self._redact is not None:
            detail = self._redact(detail)
        key = (reason.value, monitor, detail[:200])
        with self._lock:
            gap = self._open.get(key)
            if gap is not None and ts - gap.ended_at <= self._merge_within_s:
                gap.ended_at = max(gap.ended_at, ts)
                gap.count += 1
                gap.dirty = True
            else:
                if gap is not None and gap.dirty:
                    self._write(gap)
                with self._db.transaction() as conn:
                    cur = conn.execute(
                        "INSERT INTO capture_gaps(started_at, ended_at, reason, monitor, detail) "
                        "VALUES(?, ?, ?, ?, ?)",
                        (ts, ts, key[0], monitor, key[2]),
                    )
                    row_id = int(cur.lastrowid or 0)
                self._open[key] = _Open(row_id, ts, 1)
            if time.monotonic() - self._last_flush >= self._flush_every_s:
                self._flush_locked()

    def close_open(self, reason: GapReason | None = None) -> None:
        """End the open gaps (of `reason`, or all), so the next skip starts a new row."""
        with self._lock:
            for key in [k for k in self._open if reason is None or k[0] == reason.value]:
                gap = self._open.pop(key)
                if gap.dirty:
                    self._write(gap)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        for gap in self._open.values():
            if gap.dirty:
                self._write(gap)
        self._last_flush = time.monotonic()

    def _write(self, gap: _Open) -> None:
        self._db.execute(
            "UPDATE capture_gaps SET ended_at = ?, count = ? WHERE id = ?",
            (gap.ended_at, gap.count, gap.row_id),
        )
        gap.dirty = False

    def gaps(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        reasons: Iterable[GapReason] | None = None,
        limit: int = 500,
    ) -> list[CaptureGap]:
        """Gaps overlapping [since, until), newest first."""
        self.flush()
        sql = "SELECT * FROM capture_gaps WHERE ended_at >= ? AND started_at < ?"
        params: list[object] = [_ts(since) if since else 0.0, _ts(until) if until else 1e18]
        wanted = [r.value for r in reasons] if reasons is not None else None
        if wanted is not None:
            sql += f" AND reason IN ({','.join('?' * len(wanted))})"
            params += wanted
        sql += " ORDER BY ended_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [
            CaptureGap(
                id=int(r["id"]),
                started_at=_dt(float(r["started_at"])),
                ended_at=_dt(float(r["ended_at"])),
                reason=GapReason(r["reason"]),
                monitor=r["monitor"],
                count=int(r["count"]),
                detail=str(r["detail"]),
            )
            for r in self._db.query(sql, params)
        ]

    def totals(self, since: datetime | None = None) -> dict[str, int]:
        """Skipped captures per reason since a time (all time by default)."""
        self.flush()
        rows = self._db.query(
            "SELECT reason, SUM(count) AS n FROM capture_gaps WHERE ended_at >= ? GROUP BY reason",
            (_ts(since) if since else 0.0,),
        )
        return {str(r["reason"]): int(r["n"]) for r in rows}

    def prune(self, before: datetime) -> int:
        """Forget gaps that ended before `before`; returns how many rows went."""
        self.flush()
        with self._db.transaction() as conn:
            cur = conn.execute("DELETE FROM capture_gaps WHERE ended_at < ?", (_ts(before),))
            return cur.rowcount

    def pending_events(self) -> int:
        """Events captured but not yet taken by the agents (the durable queue's backlog)."""
        rows = self._db.query("SELECT COUNT(*) AS n FROM events WHERE status = 'pending'")
        return int(rows[0]["n"])

    def get_state(self, key: str) -> str | None:
        rows = self._db.query("SELECT value FROM capture_state WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM capture_state WHERE key = ?", (key,))
            return
        self._db.execute(
            "INSERT INTO capture_state(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
