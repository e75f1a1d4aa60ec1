"""The meta memory manager: reads a batch of events and picks which memory agents see it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from agents import prompts
from agents.llm.port import ChatModel, InvalidOutput, Message, Request, scrubbed
from agents.memory_agent import CallOptions, ask_json, render_events
from storage.records import Event, MemoryType

TYPE_NAMES = [t.value for t in MemoryType]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "types": {
            "type": "array",
            "items": {"type": "string", "enum": TYPE_NAMES},
            "maxItems": len(TYPE_NAMES),
        }
    },
    "required": ["types"],
    "additionalProperties": False,
}


class MetaMemoryManager:
    event_chars = 1600
    max_tokens = 64

    def request(self, events: Sequence[Event]) -> Request:
        user = f"New observations:\n{render_events(events, self.event_chars)}"
        return Request(
            messages=(Message("system", prompts.load("meta")), Message("user", user)),
            schema=SCHEMA,
            max_tokens=self.max_tokens,
            background=True,
        )

    def choose(
        self,
        model: ChatModel,
        events: Sequence[Event],
        cancel: threading.Event | None = None,
        options: CallOptions | None = None,
        scrub: Callable[[str], str] | None = None,
    ) -> list[MemoryType]:
        """The memory types to update, in the model's order, without repeats. A non-empty
        batch always reaches at least the episodic agent. `scrub` (the store's vault secrets)
        is applied to the prompt."""
        if not events:
            return []
        request = self.request(events) if scrub is None else scrubbed(self.request(events), scrub)
        data = ask_json(model, request, cancel, options or CallOptions())
        if not isinstance(data, dict) or not isinstance(data.get("types"), list):
            raise InvalidOutput('expected {"types": [...]} from the meta memory manager')
        chosen = [MemoryType(t) for t in dict.fromkeys(data["types"]) if t in TYPE_NAMES]
        return chosen or [MemoryType.EPISODIC]
