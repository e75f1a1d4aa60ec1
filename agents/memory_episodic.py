"""The episodic memory agent: the user's timeline (what happened, when, who acted).

The model writes the actor, a type and a one-sentence summary; the details are the observations'
own text, so a small model spends no tokens copying them (and cannot garble them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.memory_agent import MemoryAgent
from agents.operations import FieldSpec
from storage.records import EpisodicMemory, Event, MemoryType, Record
from storage.text import clip

#: The observations' own words kept with an episode, so search finds what the summary left out.
MAX_DETAILS_CHARS = 1000


def details_of(events: Sequence[Event]) -> str:
    return clip(" / ".join(e.text for e in events), MAX_DETAILS_CHARS)


class EpisodicAgent(MemoryAgent):
    memory_type = MemoryType.EPISODIC
    # What happened stays on the timeline: deleting an event is the user's call, not a model's
    # (a small one deleted the previous batch's episode as often as not).
    kinds = ("insert", "update", "merge", "noop")
    fields = (
        FieldSpec("actor", 40, grounded=False),
        FieldSpec("event_type", 30, grounded=False),
        FieldSpec("summary", 200),
    )

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        return EpisodicMemory(
            occurred_at=min(e.occurred_at for e in events),
            details=details_of(events),
            tree_path=(fields["event_type"],),
            provenance=provenance,
            **fields,
        )
