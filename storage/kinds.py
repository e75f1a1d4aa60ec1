"""Each memory type's vocabulary in one place: its title, the fields a person edits, and how a
record is shown to a model.

The memory browser's tabs and editor, the record details, the memory agents' candidate lines
and the chat agent's context lines all read a `KindSpec`, so adding a field to a type is a change
here plus the record class (and, if a model should write it, the agent's FieldSpec). What can be
read off the record class is: whether a field is required and the choices of a Literal field.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from storage.dates import spoken
from storage.records import (
    RECORD_CLASSES,
    CoreBlock,
    EpisodicMemory,
    MemoryType,
    ProceduralMemory,
    Record,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)
from storage.text import clip

#: line: one line of text; text: free text; lines: one item a line (a tuple field);
#: datetime: a time; secret: a vault value (hidden while typed); choice: one of a Literal's values.
Widget = Literal["line", "text", "lines", "datetime", "secret", "choice"]


@dataclass(frozen=True)
class EditField:
    """A field a person edits: the record attribute, its label and how it is entered."""

    name: str
    label: str
    widget: Widget = "line"
    #: Part of the memory's text: a memory with all of these empty says nothing. Off for
    #: names of things rather than content (a core block's label).
    content: bool = True
    #: A shorter title for a column or a details line, when the label explains how to type it.
    short: str = ""

    @property
    def heading(self) -> str:
        return self.short or self.label

    @property
    def multiline(self) -> bool:
        return self.widget in ("text", "lines")

    @property
    def says_something(self) -> bool:
        """Counts towards "a memory needs some text" (times and choices do not)."""
        return self.content and self.widget in ("line", "text", "secret")


@dataclass(frozen=True)
class KindSpec:
    memory_type: MemoryType
    #: The type as a person reads it (a tab, a dialog title).
    title: str
    fields: tuple[EditField, ...]
    #: One line showing an existing memory to a memory agent (fields clipped one by one).
    candidate_line: Callable[[Record], str]
    #: One line showing a memory to the chat agent (more of it, clipped as a whole).
    context_line: Callable[[Record], str]
    #: What this type of memory is, in one sentence for a person (an empty list shows it).
    description: str = ""
    #: One memory of this type, lower case ("semantic", "resource"): a search result's kind.
    noun: str = ""

    @property
    def record_class(self) -> type[Record]:
        return RECORD_CLASSES[self.memory_type]

    def field(self, name: str) -> EditField:
        return next(f for f in self.fields if f.name == name)

    def required(self, name: str) -> bool:
        """Whether the record cannot be made without this field (it has no default)."""
        return self.record_class.model_fields[name].is_required()

    def choices(self, name: str) -> tuple[str, ...]:
        """The values a choice field allows: those of its Literal type on the record class."""
        return tuple(typing.get_args(self.record_class.model_fields[name].annotation))


# ----- how each type is shown to a model (never a withheld vault value) -------------------------


def _core_candidate(r: Record) -> str:
    assert isinstance(r, CoreBlock)
    return f"[{r.label}] {clip(r.value, 600) or '(empty)'}"


def _core_context(r: Record) -> str:
    assert isinstance(r, CoreBlock)
    return clip(r.index_text(), 400)


def _episodic_candidate(r: Record) -> str:
    assert isinstance(r, EpisodicMemory)
    return f"{r.occurred_at.astimezone():%Y-%m-%d %H:%M} {r.actor}: {clip(r.summary, 200)}"


def _episodic_context(r: Record) -> str:
    assert isinstance(r, EpisodicMemory)
    body = f"{spoken(r.occurred_at)} {r.actor}: {r.summary}"
    return clip(f"{body}. {r.details}" if r.details else body, 400)


def _semantic_candidate(r: Record) -> str:
    assert isinstance(r, SemanticMemory)
    return f"{clip(r.name, 60)}: {clip(r.summary, 200)}"


def _semantic_context(r: Record) -> str:
    assert isinstance(r, SemanticMemory)
    return clip(f"{r.name}: {r.summary} {r.details}", 400)


def _procedural_candidate(r: Record) -> str:
    assert isinstance(r, ProceduralMemory)
    steps = "; ".join(r.steps)
    return f"{r.entry_type}: {clip(r.summary, 120)} (steps: {clip(steps, 160)})"


def _procedural_context(r: Record) -> str:
    assert isinstance(r, ProceduralMemory)
    steps = " ".join(f"{n}. {s}" for n, s in enumerate(r.steps, start=1))
    return clip(f"{r.summary} {steps}", 500)


def _resource_candidate(r: Record) -> str:
    assert isinstance(r, ResourceMemory)
    return f"{clip(r.title, 80)} ({r.resource_type}): {clip(r.summary, 160)}"


def _resource_context(r: Record) -> str:
    assert isinstance(r, ResourceMemory)
    return clip(f"{r.title} ({r.resource_type}): {r.summary or r.content}", 400)


def _vault_candidate(r: Record) -> str:
    assert isinstance(r, VaultEntry)
    return f"{clip(r.caption, 80)} ({r.entry_type}, {r.sensitivity}): {clip(r.prompt_value(), 80)}"


def _vault_context(r: Record) -> str:
    assert isinstance(r, VaultEntry)
    return clip(f"{r.caption} ({r.entry_type}): {r.prompt_value()}", 300)


_KINDS = (
    KindSpec(
        MemoryType.CORE,
        "Core",
        (EditField("label", "Label", content=False), EditField("value", "Value", "text")),
        _core_candidate,
        _core_context,
        description=(
            "The few lines about you, and about how Engram should help you, "
            "that every chat keeps in mind."
        ),
        noun="core",
    ),
    KindSpec(
        MemoryType.EPISODIC,
        "Episodic",
        (
            EditField("occurred_at", "When", "datetime"),
            EditField("actor", "Actor"),
            EditField("event_type", "Event type", short="Event"),
            EditField("summary", "Summary", "text"),
            EditField("details", "Details", "text"),
        ),
        _episodic_candidate,
        _episodic_context,
        description=(
            "Things that happened at a time: meetings, tasks and what you worked on, your timeline."
        ),
        noun="episodic",
    ),
    KindSpec(
        MemoryType.SEMANTIC,
        "Semantic",
        (
            EditField("name", "Name"),
            EditField("summary", "Summary", "text"),
            EditField("details", "Details", "text"),
            EditField("source", "Source"),
        ),
        _semantic_candidate,
        _semantic_context,
        description=(
            "Facts and concepts that stay true whenever you learnt them: people, projects, places."
        ),
        noun="semantic",
    ),
    KindSpec(
        MemoryType.PROCEDURAL,
        "Procedural",
        (
            EditField("entry_type", "Kind", "choice"),
            EditField("summary", "Summary", "text"),
            EditField("steps", "Steps (one a line)", "lines", short="Steps"),
        ),
        _procedural_candidate,
        _procedural_context,
        description="How to do something: workflows, guides and step-by-step scripts.",
        noun="procedural",
    ),
    KindSpec(
        MemoryType.RESOURCE,
        "Resources",
        (
            EditField("title", "Title"),
            EditField("resource_type", "Kind"),
            EditField("summary", "Summary", "text"),
            EditField("content", "Content", "text"),
        ),
        _resource_candidate,
        _resource_context,
        description="Documents, files and pages you worked with, each with a summary.",
        noun="resource",
    ),
    KindSpec(
        MemoryType.KNOWLEDGE_VAULT,
        "Vault",
        (
            EditField("caption", "Caption"),
            EditField("entry_type", "Kind"),
            EditField("source", "Source"),
            EditField("sensitivity", "Sensitivity", "choice"),
            EditField("secret_value", "Secret", "secret"),
        ),
        _vault_candidate,
        _vault_context,
        description=(
            "Sensitive facts (credentials, addresses, account numbers), encrypted and "
            "masked until you reveal them."
        ),
        noun="vault",
    ),
)

KINDS: dict[MemoryType, KindSpec] = {k.memory_type: k for k in _KINDS}


def kind_spec(memory_type: MemoryType) -> KindSpec:
    return KINDS[memory_type]
