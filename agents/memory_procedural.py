"""The procedural memory agent: how to do things (workflows, guides, scripts)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agents.memory_agent import MemoryAgent
from agents.operations import FieldSpec
from storage.kinds import kind_spec
from storage.records import Event, MemoryType, ProceduralMemory, Record

_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")
MAX_STEPS = 12


def split_steps(text: str) -> tuple[str, ...]:
    """Steps from the model's text: one a line, list markers removed, at most MAX_STEPS."""
    steps = [_NUMBERING.sub("", line).strip() for line in text.splitlines()]
    return tuple(s for s in steps if s)[:MAX_STEPS]


class ProceduralAgent(MemoryAgent):
    memory_type = MemoryType.PROCEDURAL
    fields = (
        FieldSpec("entry_type", enum=kind_spec(MemoryType.PROCEDURAL).choices("entry_type")),
        FieldSpec("summary", 160),
        FieldSpec("steps", 400, multiline=True),
    )

    def derived(self, fields: dict[str, Any], events: Sequence[Event]) -> dict[str, Any]:
        return {**fields, "steps": split_steps(fields["steps"])}

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        return ProceduralMemory(
            **self.derived(fields, events),
            tree_path=(fields["entry_type"],),
            provenance=provenance,
        )
