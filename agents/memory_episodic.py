"""The episodic memory agent: the user's timeline (what happened, when, who acted).

The model writes the actor, a type and a one-sentence summary; the details are the observations'
own text, so a small model spends no tokens copying them (and cannot garble them). An episode is
one event at one time: news from another time is a new episode, never a rewrite of an old one,
and episodes of different times are never merged (the timeline would collapse into one memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agents.grounding import without_instructions
from agents.memory_agent import MemoryAgent
from agents.operations import FieldSpec, Insert, Merge, OperationRejected, Update
from storage.records import EpisodicMemory, Event, MemoryType, Record
from storage.store import Write
from storage.text import clip

if TYPE_CHECKING:
    from agents.loop import BatchPlan

#: The observations' own words kept with an episode, so search finds what the summary left out.
MAX_DETAILS_CHARS = 1000
#: Episodic memories are the same event only when this close in time.
SAME_EVENT_S = 2 * 3600


def same_event_time(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) <= SAME_EVENT_S


def actor_of(events: Sequence[Event]) -> str | None:
    """Who acted, when the batch says so: the user for their screen, notes and chat turns, the
    one speaker of imported messages; None when several speak (the model names the actor).
    Neither Qwen model names the user as the subject of a screen event: the code does."""
    speakers = set()
    for event in events:
        speaker = str(event.metadata.get("speaker", "")).strip()
        if event.source == "import" and speaker:
            speakers.add(speaker)
        elif event.source != "import":
            speakers.add("user")
        else:
            return None
    return speakers.pop() if len(speakers) == 1 else None


def details_of(events: Sequence[Event]) -> str:
    return clip(" / ".join(without_instructions(e.text) for e in events), MAX_DETAILS_CHARS)


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
            **self.derived(fields, events),
        )

    def derived(self, fields: dict[str, Any], events: Sequence[Event]) -> dict[str, Any]:
        """The model says what happened; the code says who, when the batch knows."""
        actor = actor_of(events)
        return fields if actor is None or "actor" not in fields else {**fields, "actor": actor}

    def plan_update(self, op: Update, plan: BatchPlan) -> list[Write]:
        """An update whose news is from another time than the episode is a new episode."""
        current = plan.get(op.id, self)
        assert isinstance(current, EpisodicMemory)
        if not any(same_event_time(current.occurred_at, e.occurred_at) for e in plan.events):
            return self.plan_insert(Insert(memory_type=op.memory_type, fields=op.fields), plan)
        return super().plan_update(op, plan)

    def plan_merge(self, op: Merge, plan: BatchPlan) -> list[Write]:
        records = [plan.get(i, self) for i in op.ids]  # before a merge turns into suggestions
        times = [r.occurred_at for r in records if isinstance(r, EpisodicMemory)]
        if any(not same_event_time(a, b) for a in times for b in times):
            raise OperationRejected("different-time", "it merges episodes of different times")
        return super().plan_merge(op, plan)
