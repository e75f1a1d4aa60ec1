"""Active retrieval for the chat agent: a search topic from the conversation, hybrid search
across the memory types and the raw events with per-kind caps, and tagged prompt sections inside
a token budget. Events (what was read on screen, said, imported) share the memories' numbering,
so a citation of either resolves the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agents.grounding import shown
from agents.llm.port import Message, approx_tokens
from storage.kinds import kind_spec
from storage.records import CoreBlock, Event, MemoryType, Record
from storage.search import SearchOptions
from storage.secrets import SecretSet
from storage.store import EventHit, MemoryStore
from storage.text import clip, is_content, words

DEFAULT_CAPS: Mapping[MemoryType, int] = {
    MemoryType.EPISODIC: 4,
    MemoryType.SEMANTIC: 4,
    MemoryType.PROCEDURAL: 2,
    MemoryType.RESOURCE: 2,
    MemoryType.KNOWLEDGE_VAULT: 2,
}
SECTION_ORDER = [t for t in MemoryType if t is not MemoryType.CORE]
CORE_LABELS = ("human", "persona")
#: Share of the memory budget the always-shown core blocks may take.
CORE_SHARE = 0.4
#: Raw events in the prompt at most, and the share of the budget they may take: memories are
#: the distilled form, events the evidence they may have missed.
EVENT_CAP = 3
EVENT_SHARE = 0.4
#: Characters of an event's text the prompt shows.
EVENT_CHARS = 240
EVENT_SECTION = "seen_events"
#: The chat agent's deeper search: the plain one plus a second keyword round on the words its
#: best hits share (storage.search.SearchOptions.expand_weight), for questions whose evidence
#: shares words with other evidence rather than with the question.
#: The chat agent's deeper search: query expansion, and the wide pool its answer figures
#: were measured with (three candidates per result it reads).
DEEP_SEARCH = SearchOptions(expand_weight=0.3, candidates=120)

Item = Record | Event


@dataclass(frozen=True)
class Retrieved:
    tag: str  # "M1": how the prompt and the answer name it
    record: Item  # a memory, or a raw event
    score: float
    text: str = ""  # the line the prompt shows for it


@dataclass(frozen=True)
class Context:
    """What retrieval found and the prompt text built from it."""

    topic: str
    core: tuple[CoreBlock, ...]
    items: tuple[Retrieved, ...]
    text: str  # the retrieved sections: new in every prompt
    retrieval_ms: float
    dropped: int  # found but left out to stay within the budget
    #: The <core_memory> section: the same from question to question (until a core block
    #: changes), so the chat prompt keeps it in the prefix llama.cpp has cached.
    core_text: str = ""


def derive_topic(question: str, history: Sequence[Message], words_from_history: int = 8) -> str:
    """The question plus the content words of the user's previous turn, so a follow-up such as
    "and when was that?" still searches for what "that" was."""
    previous = [m.content for m in history if m.role == "user"][-1:]
    extra: list[str] = []
    asked = set(words(question))
    for text in previous:
        for word in words(text, keep_case=True):  # the user's spelling goes into the topic
            if is_content(word) and word.lower() not in asked:
                extra.append(word)
                asked.add(word.lower())
    return " ".join([question.strip(), *extra[:words_from_history]]).strip()


def render(record: Item) -> str:
    """One compact line for the chat prompt (the type's context line, storage/kinds.py; for an
    event, where it came from and its text, clipped); a high-sensitivity vault value never
    appears."""
    if isinstance(record, Event):
        return f"({record.origin()}) {shown(record, clip(record.index_text(), EVENT_CHARS))}"
    return kind_spec(record.kind).context_line(record)


def retrieve(
    store: MemoryStore,
    topic: str,
    caps: Mapping[MemoryType, int] = DEFAULT_CAPS,
    pool: int = 40,
    event_cap: int = EVENT_CAP,
) -> tuple[list[tuple[Item, float]], list[CoreBlock]]:
    """One hybrid search across the non-core types and the raw events (one query embedding),
    capped per kind; the core blocks are always part of the context, not searched."""
    types = [t for t in SECTION_ORDER if caps.get(t, 0) > 0]
    k = max(pool, sum(caps.values()) + event_cap)
    hits = (
        store.search(topic, types=types, k=k, options=DEEP_SEARCH, events=event_cap > 0)
        if types
        else []
    )
    taken: dict[str, int] = {}
    found: list[tuple[Item, float]] = []
    for hit in hits:
        item = hit.item
        kind, cap = (
            (Event.kind, event_cap) if isinstance(hit, EventHit) else (hit.record.kind, None)
        )
        limit = cap if cap is not None else caps.get(MemoryType(kind), 0)
        if taken.get(kind, 0) < limit:
            taken[kind] = taken.get(kind, 0) + 1
            found.append((item, hit.score))
    return found, core_blocks(store)


def core_blocks(store: MemoryStore) -> list[CoreBlock]:
    """The core blocks every chat prompt shows (those with a value)."""
    return [b for b in (store.core_block(label) for label in CORE_LABELS) if b and b.value]


def build_context(
    topic: str,
    found: Sequence[tuple[Item, float]],
    core: Sequence[CoreBlock],
    budget_tokens: int,
    retrieval_ms: float = 0.0,
    scrub: Callable[[str], str] | None = None,
) -> Context:
    """Tagged sections (<core_memory> as `core_text`; <episodic_memory>, …, <seen_events> as
    `text`) within `budget_tokens`: core blocks first (up to CORE_SHARE of the budget), then
    memories and events in rank order until the budget is spent, events within EVENT_SHARE of
    it. Tags are numbered in the order the sections show them. A memory section runs to the
    next one (a closing tag per section cost 7 tokens of prompt evaluation on every question);
    only <seen_events>, text quoted from the screen, is closed. Every line is passed through
    `scrub` (the store's secrets: `MemoryStore.secrets().scrub`); without one, through the
    high-sensitivity values of the vault entries found."""
    core_budget = int(budget_tokens * CORE_SHARE)
    event_budget = int(budget_tokens * EVENT_SHARE)
    events_used = 0
    records = [r for r, _ in found if isinstance(r, Record)]
    scrub_secrets = scrub or SecretSet().plus(records).scrub
    core_lines = []
    for block in core:
        line = scrub_secrets(f"[{block.label}] {' / '.join(block.value.splitlines())}")
        core_lines.append(clip(line, max(core_budget * 3 // max(len(core), 1), 40)))
    used = approx_tokens("\n".join(core_lines)) + 8 if core_lines else 0
    chosen: list[tuple[Item, float, str]] = []
    dropped = 0
    for record, score in found:
        line = scrub_secrets(render(record))
        cost = approx_tokens(line) + 4
        is_event = isinstance(record, Event)
        if used + cost > budget_tokens or (is_event and events_used + cost > event_budget):
            dropped += 1
            continue
        used += cost
        events_used += cost if is_event else 0
        chosen.append((record, score, line))
    items: list[Retrieved] = []
    sections: list[str] = []
    core_text = "<core_memory>\n" + "\n".join(core_lines) + "\n</core_memory>" if core_lines else ""
    for kind in (*SECTION_ORDER, Event.kind):
        lines = []
        for record, score, line in chosen:
            if record.kind == kind:
                tag = f"M{len(items) + 1}"
                items.append(Retrieved(tag, record, score, line))
                lines.append(f"[{tag}] {line}")
        if lines:
            if kind == Event.kind:
                sections.append(f"<{EVENT_SECTION}>\n" + "\n".join(lines) + f"\n</{EVENT_SECTION}>")
            else:
                sections.append(f"<{kind}_memory>\n" + "\n".join(lines))
    if not items:
        sections.append("<memories>\n(no stored memory matches this question)")
    text = "\n".join(sections)
    return Context(topic, tuple(core), tuple(items), text, retrieval_ms, dropped, core_text)


def timed_retrieve(
    store: MemoryStore,
    topic: str,
    caps: Mapping[MemoryType, int],
    budget_tokens: int,
) -> Context:
    started = time.perf_counter()
    found, core = retrieve(store, topic, caps)
    ms = (time.perf_counter() - started) * 1000
    # Every secret in the store, not only the vault entries found: another memory may quote one.
    scrub = store.secrets().plus(r for r, _ in found).scrub
    return build_context(topic, found, core, budget_tokens, ms, scrub)
