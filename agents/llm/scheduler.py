"""Chat before memory work, for every backend.

`ScheduledChatModel` wraps any `ChatModel` and lets one generation at a time reach it. Chat
requests (`Request.background=False`) go before queued background ones, and a background
generation in progress is stopped between chunks when a chat request arrives: its caller gets
`Preempted` and may ask again later (the memory agents do), so the user never waits behind
memory upkeep, whichever backend runs the model. The composition root wraps every backend.

When the memory agents have a model instance of their own (llama.cpp: a second `Llama` with its
own threads and its own prompt cache), its scheduler is built with `yield_to=` the chat one:
background work then waits out chat at the next call boundary instead of being stopped mid-call,
since the two instances do not share threads and a call's work is not thrown away.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from agents.llm.port import Cancelled, ChatModel, ModelError, ModelInfo, Preempted, Request, either

#: How often a queued request looks at its caller's cancel event (a `threading.Event` cannot
#: wake a condition variable, so waiting for both is a short poll).
POLL_S = 0.02


@dataclass(eq=False)
class _Ticket:
    background: bool
    seq: int
    #: Set to stop the generation between chunks: chat arrived (background work) or closing.
    stop: threading.Event = field(default_factory=threading.Event)

    def order(self) -> tuple[bool, int]:
        return (self.background, self.seq)


class ScheduledChatModel:
    """A `ChatModel` in front of `inner` that serialises and orders its generations."""

    def __init__(self, inner: ChatModel, yield_to: ScheduledChatModel | None = None) -> None:
        self._inner = inner
        self._yield_to = yield_to
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._waiting: list[_Ticket] = []
        self._running: _Ticket | None = None
        self._closed = False

    @property
    def inner(self) -> ChatModel:
        """The wrapped backend (for diagnostics that need its own methods, such as
        `LlamaCppModel.call`); generating through it directly bypasses the scheduling."""
        return self._inner

    @property
    def info(self) -> ModelInfo:
        return replace(self._inner.info, preemptible=True)

    def queued(self) -> tuple[int, int]:
        """How many (chat, background) requests wait for the model now."""
        with self._cond:
            chat = sum(1 for t in self._waiting if not t.background)
            return chat, len(self._waiting) - chat

    def chat_active(self) -> bool:
        """A chat request runs or waits here now (what a `yield_to` follower waits out)."""
        with self._cond:
            running = self._running is not None and not self._running.background
            return running or any(not t.background for t in self._waiting)

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
        if self._closed:
            raise ModelError("the chat model was closed")
        return self._generate(request, cancel)

    def close(self) -> None:
        """Refuse new requests, wake queued ones (they raise `ModelError`), stop the one in
        progress between chunks, then close the backend."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._running is not None:
                self._running.stop.set()
            self._cond.notify_all()
        self._inner.close()

    # ----- internals -------------------------------------------------------------------------

    def _generate(self, request: Request, cancel: threading.Event | None) -> Iterator[str]:
        ticket = self._admit(request.background, cancel)
        chunks: Iterator[str] | None = None
        try:
            chunks = self._inner.stream(request, either(cancel, ticket.stop))
            for chunk in chunks:
                if ticket.stop.is_set() and not _is_set(cancel):
                    raise self._stopped()
                yield chunk
        except Cancelled:
            if ticket.stop.is_set() and not _is_set(cancel):
                raise self._stopped() from None
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
            self._release(ticket)

    def _admit(self, background: bool, cancel: threading.Event | None) -> _Ticket:
        """Queue a ticket and wait until it is first in line and the model is free."""
        with self._cond:
            if self._closed:
                raise ModelError("the chat model was closed")
            ticket = _Ticket(background, next(self._seq))
            self._waiting.append(ticket)
            running = self._running
            if not background and running is not None and running.background:
                running.stop.set()  # preempt the memory work in progress
            try:
                while not (self._running is None and self._first() is ticket) or (
                    background and self._yield_to is not None and self._yield_to.chat_active()
                ):
                    if self._closed:
                        raise ModelError("the chat model was closed")
                    if _is_set(cancel):
                        raise Cancelled("the request was cancelled while it waited for the model")
                    self._cond.wait(POLL_S)
                if _is_set(cancel):
                    raise Cancelled("the request was cancelled before it started")
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may go now
                raise
            self._waiting.remove(ticket)
            self._running = ticket
            return ticket

    def _first(self) -> _Ticket:
        return min(self._waiting, key=_Ticket.order)

    def _release(self, ticket: _Ticket) -> None:
        with self._cond:
            if self._running is ticket:
                self._running = None
            self._cond.notify_all()

    def _stopped(self) -> ModelError:
        if self._closed:
            return ModelError("the chat model was closed")
        return Preempted("memory work paused for a chat request")


def _is_set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()
