"""Chat conversations that outlive a restart: a row per conversation (title, times), and its
turns, which are the chat events the chat agent already records (`source = 'chat'`, the
conversation's id in the event's metadata). A turn is stored once, as the event the memory
agents learn from; this table only names and groups them.

Deleting a conversation removes its events too (their keyword rows, and their vectors through
the store's vector-delete queue), as retention removes old events; memories the agents made from
them stay, their provenance then saying the source is gone. Retention ages chat events like any
other, so a conversation older than the retention period keeps its title and loses its turns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from storage.errors import NotFound
from storage.events import EventQueue
from storage.records import Event, new_id
from storage.sqlite_db import Database
from storage.text import clip

#: Characters of the first question a conversation is titled with.
TITLE_CHARS = 60
#: How the chat agent writes a turn's event text (agents/chat.py), read back here.
ASKED, ANSWERED = "User asked: ", "\nEngram answered: "
_IN_CONVERSATION = "json_extract(data, '$.metadata.conversation_id') = ?"


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turns: int


@dataclass(frozen=True)
class ChatTurn:
    """One question and its answer, as recorded."""

    event_id: str
    at: datetime
    question: str
    answer: str
    cited: tuple[str, ...]  # ids of the memories (or events) the answer cited
    tags: tuple[str, ...]  # the tags the answer named them by ("M2"), same order
    cancelled: bool


def turn_text(question: str, answer: str) -> str:
    """The event text of a chat turn (one format, written by the chat agent, read back here)."""
    return f"{ASKED}{question}{ANSWERED}{answer or '(no answer)'}"


def turn_of(event: Event) -> ChatTurn:
    question, _, answer = event.text.removeprefix(ASKED).partition(ANSWERED)
    meta = event.metadata
    cited = tuple(i for i in str(meta.get("cited", "")).split(",") if i)
    tags = tuple(t for t in str(meta.get("tags", "")).split(",") if t)
    return ChatTurn(
        event_id=event.id,
        at=event.occurred_at,
        question=question,
        answer="" if answer == "(no answer)" else answer,
        cited=cited,
        tags=tags if len(tags) == len(cited) else (),
        cancelled=bool(meta.get("cancelled", False)),
    )


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class ConversationLog:
    def __init__(self, db: Database, events: EventQueue) -> None:
        self._db = db
        self._events = events

    def start(self, first_question: str) -> Conversation:
        """A new conversation, titled by its first question."""
        now = time.time()
        title = clip(" ".join(first_question.split()), TITLE_CHARS) or "Conversation"
        conv = Conversation(new_id("conv"), title, _at(now), _at(now), 0)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO conversations(id, title, created_at, updated_at) VALUES(?, ?, ?, ?)",
                (conv.id, conv.title, now, now),
            )
        return conv

    def touch(self, conversation_id: str) -> None:
        """Mark the conversation as just used (the list shows the latest first)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?",
                (time.time(), conversation_id),
            )

    def recent(self, limit: int = 100) -> list[Conversation]:
        """The conversations, most recently used first, with how many turns each still has."""
        rows = self._db.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, "
            "(SELECT COUNT(*) FROM events e WHERE e.source = 'chat' AND "
            "json_extract(e.data, '$.metadata.conversation_id') = c.id) AS turns "
            "FROM conversations c ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
            (limit,),
        )
        return [self._row(r) for r in rows]

    def get(self, conversation_id: str) -> Conversation:
        rows = self._db.query(
            "SELECT id, title, created_at, updated_at, "
            f"(SELECT COUNT(*) FROM events WHERE source = 'chat' AND {_IN_CONVERSATION}) "
            "AS turns FROM conversations WHERE id = ?",
            (conversation_id, conversation_id),
        )
        if not rows:
            raise NotFound(f"no conversation {conversation_id} (it may have been deleted)")
        return self._row(rows[0])

    def turns(self, conversation_id: str) -> list[ChatTurn]:
        """The conversation's turns, oldest first."""
        rows = self._db.query(
            f"SELECT data FROM events WHERE source = 'chat' AND {_IN_CONVERSATION} ORDER BY seq",
            (conversation_id,),
        )
        return [turn_of(Event.model_validate(json.loads(r["data"]))) for r in rows]

    def delete(self, conversation_id: str) -> int:
        """Remove the conversation and its turns' events; how many turns went. The caller (the
        store) flushes the vector deletes this queues."""
        self.get(conversation_id)
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT seq, id, occurred_at FROM events "
                f"WHERE source = 'chat' AND {_IN_CONVERSATION}",
                (conversation_id,),
            ).fetchall()
            self._events.remove_rows(conn, [(r[0], r[1], r[2]) for r in rows])
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return len(rows)

    def _row(self, row: Sequence[object]) -> Conversation:
        id_, title, created, updated, turns = row
        assert isinstance(created, float) and isinstance(updated, float)
        return Conversation(str(id_), str(title), _at(created), _at(updated), int(str(turns)))
