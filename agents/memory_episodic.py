"""The episodic memory agent: the user's timeline (what happened, when, who acted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.memory_agent import MemoryAgent, clip
from agents.operations import FieldSpec
from storage.records import EpisodicMemory, Event, MemoryType, Record


class EpisodicAgent(MemoryAgent):
    memory_type = MemoryType.EPISODIC
    fields = (
        FieldSpec("actor", 40),
        FieldSpec("event_type", 40),
        FieldSpec("summary", 240),
        FieldSpec("details", 400, required_text=False),
    )

    def render(self, record: Record) -> str:
        assert isinstance(record, EpisodicMemory)
        when = record.occurred_at.astimezone()
        return f"{when:%Y-%m-%d %H:%M} {record.actor}: {clip(record.summary, 200)}"

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        return EpisodicMemory(
            occurred_at=min(e.occurred_at for e in events),
            tree_path=(fields["event_type"],),
            provenance=provenance,
            **fields,
        )
