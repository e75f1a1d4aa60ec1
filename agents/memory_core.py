"""The core memory agent: the `human` and `persona` blocks always shown to the chat agent.

Blocks are edited a line (a fact) at a time: an insert appends a line, an update rewrites one
of the lines shown, a delete drops one. The loop keeps each block under its limit by having
`rewrite` shorten it to about half once it passes 90 %.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agents import prompts
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, ask_json
from agents.model import ChatModel, Message, ModelError, Request
from agents.operations import FieldSpec
from storage.records import CoreBlock, Event, MemoryType, Record
from storage.store import MemoryStore
from storage.text import clip

LABELS = ("human", "persona")
#: Longest line (one fact) the model writes into a block.
MAX_LINE = 160
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
    kinds = ("insert", "update", "delete", "noop")
    fields = (FieldSpec("value", MAX_LINE),)
    #: Newest lines of each block shown as candidates (a full block is ~100 lines).
    lines_shown = 12

    def insert_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("label", enum=LABELS), FieldSpec("value", MAX_LINE))

    def candidates(self, store: MemoryStore, events: Sequence[Event]) -> list[Candidate]:
        """The newest lines of each block: an update rewrites one line, a delete drops one."""
        out: list[Candidate] = []
        for label in LABELS:
            block = store.core_block(label)
            if block is None:
                continue
            lines = block.value.splitlines()
            for n in range(max(len(lines) - self.lines_shown, 0), len(lines)):
                if lines[n].strip():
                    out.append(Candidate(f"m{len(out) + 1}", block, n))
        return out

    def render_candidate(self, candidate: Candidate) -> str:
        assert isinstance(candidate.record, CoreBlock)
        return f"[{candidate.record.label}] {clip(candidate.line_text, MAX_LINE)}"

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
        else by keeping the newest lines, so a block never passes its limit. The model answers
        with lines, not one long string: a grammar for a string thousands of characters long
        is too deep for llama.cpp."""
        target = int(block.limit * REWRITE_TARGET)
        request = Request(
            messages=(
                Message("system", prompts.load("core_rewrite")),
                Message("user", f"Block [{block.label}] ({len(value)} characters):\n{value}"),
            ),
            schema={
                "type": "object",
                "properties": {
                    "lines": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": MAX_LINE},
                        "minItems": 1,
                        "maxItems": target // (MAX_LINE + 1),
                    }
                },
                "required": ["lines"],
                "additionalProperties": False,
            },
            max_tokens=min(target // 3, 1024),
            background=True,
        )
        try:
            data = ask_json(model, request, cancel, options or CallOptions())
            lines = data.get("lines", []) if isinstance(data, dict) else []
            text = "\n".join(" ".join(str(x).split()) for x in lines if str(x).strip())
        except ModelError:
            if cancel is not None and cancel.is_set():
                raise
            text = ""
        if not text or len(text) > target or len(text) < target // 10:
            text = compact_lines(value, target)
        return text
