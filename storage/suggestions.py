"""Suggestions: what an agent wanted to change in a memory (or core line) the user wrote.

Agents never change the user's words; the change they wanted is kept here for the user to
accept (applied with history, the memory stays theirs) or dismiss. A dismissal is remembered by
a fingerprint of the memory and the proposed content, normalised, so the same suggestion is not
made again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from storage.errors import NotFound
from storage.origin import normalised
from storage.records import AwareDatetime, MemoryType, new_id, utcnow
from storage.sqlite_db import Database

Status = Literal["pending", "accepted", "dismissed"]
#: A suggestion pending or dismissed is not made again.
_KNOWN = "SELECT 1 FROM suggestions WHERE fingerprint = ? AND status IN ('pending', 'dismissed')"


class Suggestion(BaseModel):
    """One change an agent proposed to a user's memory. `op` is "update" (`fields` are the
    new values) or "delete"; for a core line, `line` is the line it is about and `fields`
    holds the new line as "value" (no "value": drop the line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: new_id("sug"))
    memory_id: str
    memory_type: MemoryType
    op: Literal["update", "delete"]
    fields: dict[str, Any] = Field(default_factory=dict)
    line: str | None = None
    agent: str
    batch_id: str = ""
    events: tuple[str, ...] = ()
    created_at: AwareDatetime = Field(default_factory=utcnow)
    status: Status = "pending"

    @property
    def fingerprint(self) -> str:
        """Same memory, same change, whatever the case and spacing: the same suggestion."""
        content = {k: _norm(v) for k, v in sorted(self.fields.items())}
        key = [self.memory_id, self.op, normalised(self.line or ""), content]
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        """One line for a person: what the agent would change."""
        if self.line is not None:
            if self.op == "delete":
                return f"remove the line {self.line!r}"
            return f"change the line {self.line!r} to {self.fields.get('value', '')!r}"
        if self.op == "delete":
            return "delete this memory"
        return "; ".join(f"{k}: {v!r}" for k, v in self.fields.items())


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return normalised(value)
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    return value


class SuggestionBook:
    """The suggestions table (read here; written in the store's transactions)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def known(self, suggestion: Suggestion) -> bool:
        """Whether the same suggestion is pending or was dismissed (then it is not made again)."""
        rows = self._db.query(
            _KNOWN,
            (suggestion.fingerprint,),
        )
        return bool(rows)

    def pending(self, memory_id: str | None = None) -> list[Suggestion]:
        """Pending suggestions on memories that still exist, oldest first."""
        sql = (
            "SELECT s.data FROM suggestions s JOIN memories m ON m.id = s.memory_id "
            "WHERE s.status = 'pending'"
        )
        params: list[Any] = []
        if memory_id is not None:
            sql += " AND s.memory_id = ?"
            params.append(memory_id)
        rows = self._db.query(sql + " ORDER BY s.seq", params)
        return [Suggestion.model_validate_json(r["data"]) for r in rows]

    def get(self, suggestion_id: str) -> Suggestion:
        rows = self._db.query("SELECT data FROM suggestions WHERE id = ?", (suggestion_id,))
        if not rows:
            raise NotFound(f"no suggestion with id {suggestion_id!r}")
        return Suggestion.model_validate_json(rows[0]["data"])


def record_suggestions(conn: sqlite3.Connection, suggestions: Sequence[Suggestion]) -> None:
    """Store new suggestions (one already pending or dismissed is skipped)."""
    for s in suggestions:
        known = conn.execute(
            _KNOWN,
            (s.fingerprint,),
        ).fetchone()
        if known:
            continue
        conn.execute(
            "INSERT INTO suggestions(id, memory_id, fingerprint, status, created_at, data) "
            "VALUES(?, ?, ?, 'pending', ?, ?)",
            (s.id, s.memory_id, s.fingerprint, s.created_at.timestamp(), s.model_dump_json()),
        )


def resolve(
    conn: sqlite3.Connection, suggestion: Suggestion, status: Status, at: float | None = None
) -> Suggestion:
    """Mark `suggestion` accepted or dismissed; the row keeps the fingerprint."""
    done = suggestion.model_copy(update={"status": status})
    conn.execute(
        "UPDATE suggestions SET status = ?, resolved_at = ?, data = ? WHERE id = ?",
        (status, at or time.time(), done.model_dump_json(), suggestion.id),
    )
    return done
