"""The resource memory agent: documents, files and pages the user worked with.

The model writes only the title, type and summary; the content is the observations' own text,
so a small model never has to copy a document token by token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.grounding import without_instructions
from agents.memory_agent import MemoryAgent
from agents.operations import FieldSpec
from storage.records import Event, MemoryType, Record, ResourceMemory

MAX_CONTENT_CHARS = 20_000


def content_of(events: Sequence[Event]) -> str:
    return "\n\n".join(without_instructions(e.text).strip() for e in events)[:MAX_CONTENT_CHARS]


class ResourceAgent(MemoryAgent):
    memory_type = MemoryType.RESOURCE
    fields = (
        FieldSpec("title", 80),
        FieldSpec("resource_type", 30, grounded=False),
        FieldSpec("summary", 200),
    )

    def derived(self, fields: dict[str, Any], events: Sequence[Event]) -> dict[str, Any]:
        return {**fields, "content": content_of(events)}

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        return ResourceMemory(
            **self.derived(fields, events),
            tree_path=(fields["resource_type"],),
            provenance=provenance,
        )
