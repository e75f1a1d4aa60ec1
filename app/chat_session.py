"""The conversation the chat pane shows, kept in the store so it outlives a restart.

A conversation starts with its first question (storage/conversations.py names it after that
question); every turn the chat agent records goes to it, and the last turns are the history
the model sees. "New conversation" starts afresh; any past one can be reopened (its turns and
their sources come back from the store, and the model's history is rebuilt from them) or
deleted with its turns. Qt-free and safe from any thread: the UI calls it from its workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agents.chat import ChatAgent, ChatReply, ChatResult, Citation
from agents.llm.port import Message
from storage.conversations import ChatTurn, Conversation
from storage.errors import NotFound
from storage.store import MemoryStore

#: Messages of history kept for the model (it sees ChatConfig.history_turns of them).
HISTORY_MESSAGES = 16


class ChatSession:
    def __init__(self, store: Callable[[], MemoryStore], agent: Callable[[], ChatAgent]) -> None:
        self._store = store
        self._agent = agent
        self._lock = threading.Lock()
        self._current: str | None = None
        self._history: list[Message] = []

    @property
    def current(self) -> str | None:
        """The open conversation's id; None before its first question."""
        return self._current

    def history(self) -> tuple[Message, ...]:
        with self._lock:
            return tuple(self._history)

    def new(self) -> None:
        """Start afresh: the next question opens a new conversation."""
        with self._lock:
            self._current, self._history = None, []

    def conversations(self) -> list[Conversation]:
        """Past conversations that still hold turns, most recently used first."""
        return [c for c in self._store().conversations.recent() if c.turns]

    def open(self, conversation_id: str) -> list[tuple[ChatTurn, tuple[Citation, ...]]]:
        """Make `conversation_id` the current conversation; its turns (oldest first) with the
        sources each cited that still exist. Raises NotFound for a deleted one."""
        store = self._store()
        store.conversations.get(conversation_id)
        turns = store.conversations.turns(conversation_id)
        history: list[Message] = []
        for turn in turns:
            if turn.answer:
                history += [Message("user", turn.question), Message("assistant", turn.answer)]
        with self._lock:
            self._current, self._history = conversation_id, history[-HISTORY_MESSAGES:]
        return [(turn, citations_of(store, turn)) for turn in turns]

    def delete(self, conversation_id: str) -> int:
        """Forget a conversation and its turns; how many turns went. Deleting the open one
        starts afresh."""
        removed = self._store().delete_conversation(conversation_id)
        with self._lock:
            if self._current == conversation_id:
                self._current, self._history = None, []
        return removed

    def ask(
        self,
        question: str,
        on_token: Callable[[str], None],
        on_reply: Callable[[ChatReply], None] | None = None,
    ) -> ChatResult:
        """Answer `question` in the current conversation (opening one for a first question),
        calling `on_token` with each chunk. `on_reply` receives the reply first, so the caller
        can hook its `cancel()` to a button."""
        store, agent = self._store(), self._agent()
        with self._lock:
            if self._current is None:
                self._current = store.conversations.start(question).id
            conversation_id, history = self._current, tuple(self._history)
        reply = agent.ask(question, history, conversation_id)
        if on_reply is not None:
            on_reply(reply)
        for chunk in reply:
            on_token(chunk)
        result = reply.result
        store.conversations.touch(conversation_id)
        if result.answer:
            with self._lock:
                if self._current == conversation_id:  # not switched away meanwhile
                    self._history += [
                        Message("user", result.question),
                        Message("assistant", result.answer),
                    ]
                    del self._history[:-HISTORY_MESSAGES]
        return result


def citations_of(store: MemoryStore, turn: ChatTurn) -> tuple[Citation, ...]:
    """The sources a recorded turn cited, as citations, skipping any deleted or expired since."""
    out = []
    tags = turn.tags or tuple(f"M{n}" for n in range(1, len(turn.cited) + 1))
    for tag, item_id in zip(tags, turn.cited, strict=True):
        named = f"[{tag}]" in turn.answer  # the answer cites it by tag (else it was inferred)
        try:
            if item_id.startswith("evt_"):
                event = store.events.get(item_id)
                out.append(Citation(tag, event.id, "event", event.headline(), named))
            else:
                record = store.get(item_id)
                out.append(Citation(tag, record.id, record.kind, record.headline(), named))
        except NotFound:
            continue
    return tuple(out)
