"""The core memory agent: the `human` and `persona` blocks always shown to the chat agent.

An insert appends one line to a block; an update rewrites a block. The loop keeps each block
under its limit by having `rewrite` shorten it to about half once it passes 90 %.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agents import prompts
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, ask_json, clip
from agents.model import ChatModel, Message, ModelError, Request
from agents.operations import FieldSpec
from storage.records import CoreBlock, Event, MemoryType, Record
from storage.store import MemoryStore

LABELS = ("human", "persona")
#: Past this share of its limit a block is rewritten to about REWRITE_TARGET of it.
REWRITE_AT = 0.9
REWRITE_TARGET = 0.5


def compact_lines(value: str, max_chars: int) -> str:
    """Fallback compaction: unique lines, newest kept first, within `max_chars`."""
    lines = list(dict.fromkeys(line.strip() for line in value.splitlines() if line.strip()))
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > max_chars:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))


class CoreAgent(MemoryAgent):
    memory_type = MemoryType.CORE
    kinds = ("insert", "update", "noop")
    fields = (FieldSpec("value", 1200),)

    def insert_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("label", enum=LABELS), FieldSpec("value", 160))

    def candidates(self, store: MemoryStore, events: Sequence[Event]) -> list[Candidate]:
        blocks = [store.core_block(label) for label in LABELS]
        return [Candidate(f"m{n}", b) for n, b in enumerate(filter(None, blocks), start=1)]

    def render(self, record: Record) -> str:
        assert isinstance(record, CoreBlock)
        return f"[{record.label}] {clip(record.value, 600) or '(empty)'}"

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        return CoreBlock(label=fields["label"], value=fields["value"], provenance=provenance)

    def rewrite(
        self,
        model: ChatModel,
        block: CoreBlock,
        value: str,
        cancel: threading.Event | None = None,
        options: CallOptions | None = None,
    ) -> str:
        """`value` shortened to about half the block's limit: by the model when it manages,
        else by keeping the newest lines, so a block never passes its limit."""
        target = int(block.limit * REWRITE_TARGET)
        request = Request(
            messages=(
                Message("system", prompts.load("core_rewrite")),
                Message("user", f"Block [{block.label}] ({len(value)} characters):\n{value}"),
            ),
            schema={
                "type": "object",
                "properties": {"value": {"type": "string", "minLength": 1, "maxLength": target}},
                "required": ["value"],
                "additionalProperties": False,
            },
            max_tokens=min(target // 3, 1024),
            background=True,
        )
        try:
            data = ask_json(model, request, cancel, options or CallOptions())
            text = str(data.get("value", "")).strip() if isinstance(data, dict) else ""
        except ModelError:
            if cancel is not None and cancel.is_set():
                raise
            text = ""
        if not text or len(text) > target or len(text) < target // 10:
            text = compact_lines(value, target)
        return text
