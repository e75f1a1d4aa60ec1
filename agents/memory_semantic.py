"""The semantic memory agent: facts and concepts that hold regardless of when they were learnt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.memory_agent import MemoryAgent
from agents.operations import FieldSpec
from storage.records import Event, MemoryType, Record, SemanticMemory


class SemanticAgent(MemoryAgent):
    memory_type = MemoryType.SEMANTIC
    fields = (
        FieldSpec("name", 60),
        FieldSpec("summary", 200),
    )

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        source = ", ".join(dict.fromkeys(e.app or e.source for e in events))
        return SemanticMemory(
            source=source[:200], tree_path=(fields["name"][:40],), provenance=provenance, **fields
        )
