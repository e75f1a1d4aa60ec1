"""The memory loop: one batch of events → meta manager → memory agents → validated writes.

The loop orchestrates; each agent owns its rules. It asks the meta manager which agents a batch
concerns, has each propose operations on its candidates, and plans them through the agent's
`plan` hook (what an operation may write: a core line, a new episode) over one `BatchPlan`,
keeping the batch-wide checks itself: the write budget, duplicates, clashes, what storage would
refuse. All model calls happen before the first write. The writes and the "done" mark of the
batch's events go to storage in one transaction, so a batch is applied whole or not at all, and
a crash can neither lose it nor apply it twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.batching import KnownText, coalesce
from agents.grounding import Observations
from agents.llm.port import Cancelled, ChatModel, ModelError
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, Proposal
from agents.memory_core import CoreAgent
from agents.memory_episodic import EpisodicAgent, same_event_time
from agents.memory_procedural import ProceduralAgent
from agents.memory_resource import ResourceAgent
from agents.memory_semantic import SemanticAgent
from agents.memory_vault import VaultAgent
from agents.meta import MetaMemoryManager
from agents.operations import OperationRejected, Rejection
from storage.errors import CoreLimitExceeded, EngramError, InvalidText, NotFound
from storage.records import CoreBlock, EpisodicMemory, Event, MemoryType, Record, VaultEntry
from storage.store import Action, MemoryStore, Write
from storage.suggestions import Suggestion
from storage.text import content_words, stems

log = logging.getLogger(__name__)

#: Most writes one batch may make, whatever the agents propose.
MAX_WRITES_PER_BATCH = 12
#: Two memories whose content words overlap this much are one memory.
NEAR_DUPLICATE = 0.8


class BatchFailed(EngramError):
    """A batch could not be turned into memories and nothing of it was committed; its events go
    back to the queue. (A vector index failing after the commit is a warning, not this.)"""


def default_agents() -> dict[MemoryType, MemoryAgent]:
    agents: list[MemoryAgent] = [
        CoreAgent(),
        EpisodicAgent(),
        SemanticAgent(),
        ProceduralAgent(),
        ResourceAgent(),
        VaultAgent(),
    ]
    return {a.memory_type: a for a in agents}


@dataclass
class BatchReport:
    batch_id: str
    event_ids: tuple[str, ...]
    types: tuple[MemoryType, ...] = ()
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # (op, type, memory id)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # committed, but e.g. not yet indexed
    #: Changes the agents wanted in the user's memories, stored for the user to accept.
    suggestions: list[Suggestion] = field(default_factory=list)
    llm_calls: int = 0
    seconds: float = 0.0
    #: Events the agents were shown after coalescing (0: nothing new, no model was asked).
    shown: int = 0


@dataclass
class BatchPlan:
    """One batch being planned: what an agent's `plan` hook reads (the batch, the store, the
    candidates it showed, the writes planned so far) and where the planned writes gather."""

    store: MemoryStore
    model: ChatModel
    options: CallOptions
    seen: Observations
    report: BatchReport
    cancel: threading.Event | None = None
    #: The candidates of the proposal being planned (what its ids may name).
    shown: tuple[Candidate, ...] = ()
    writes: list[Write] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    #: Core lines this batch writes (appends and edits), against `MAX_CORE_LINES`.
    core_lines: int = 0
    #: Every event of the batch as stored, before coalescing: what a memory may cite.
    batch: tuple[Event, ...] = ()

    @property
    def events(self) -> tuple[Event, ...]:
        return self.seen.events

    @property
    def event_ids(self) -> tuple[str, ...]:
        """Every event of the batch, coalesced or not."""
        return self.report.event_ids

    def sources(self, written: Mapping[str, Any] | str) -> tuple[str, ...]:
        """The events of the batch that `written` (a text, or an operation's fields) came
        from, best supported first: "why do I know this?" points at the turn that says it,
        not at every event read beside it. An event counts when it shares at least half as
        many content words as the best one; when none shares a word (a summary of the
        whole batch), every event of the batch."""
        text = written if isinstance(written, str) else " ".join(map(str, written.values()))
        words = stems(text)
        batch = self.batch or self.events
        scored = [
            (len(words & stems(f"{e.app or ''} {e.window_title or ''} {e.text}")), i, e.id)
            for i, e in enumerate(batch)
        ]
        best = max((s for s, _, _ in scored), default=0)
        if best == 0:
            return self.event_ids
        floor = max(1, -(-best // 2))
        return tuple(eid for s, _, eid in sorted(scored, key=lambda t: (-t[0], t[1])) if s >= floor)

    def events_of(self, ids: Sequence[str]) -> tuple[Event, ...]:
        """The events shown to the model among `ids` (a memory's sources), for what the code
        copies from them (an episode's time and details); all of them when none is."""
        wanted = set(ids)
        return tuple(e for e in self.events if e.id in wanted) or self.events

    def get(self, memory_id: str, agent: MemoryAgent) -> Record:
        """A stored memory of `agent`'s type."""
        try:
            record = self.store.get(memory_id)
        except NotFound as exc:
            raise OperationRejected("not-found", _short(exc)) from exc
        if record.kind is not agent.memory_type:
            raise OperationRejected("wrong-type", f"{memory_id} is a {record.kind.value} memory")
        return record

    def current(self, memory_id: str) -> tuple[Record, Action]:
        """A memory as this batch has planned it so far, and the action its next write needs."""
        for write in self.writes:
            if write.record.id == memory_id and write.action != "delete":
                return write.record, write.action
        try:
            return self.store.get(memory_id), "replace"
        except NotFound as exc:
            raise OperationRejected("not-found", _short(exc)) from exc

    def planned_block(self, label: str) -> tuple[CoreBlock | None, Action]:
        """The core block `label` as this batch has planned it so far (None: there is none)."""
        block = self.store.core_block(label)
        action: Action = "replace"
        for write in self.writes:
            if isinstance(write.record, CoreBlock) and write.record.label == label:
                block, action = write.record, write.action
        return block, action

    def near_duplicate(self, record: Record) -> Record | None:
        """The shown or stored memory that `record` repeats, if any; one that another insert
        of this batch already makes is rejected."""
        for write in self.writes:
            if write.action == "add" and same_memory(write.record, record):
                raise OperationRejected(
                    "near-duplicate", "a near-duplicate of another insert in this batch"
                )
        pool = [c.record for c in self.shown]
        hits = self.store.search(record.index_text()[:1000], types=[record.kind], k=3)
        pool += [h.record for h in hits]
        return next((r for r in pool if same_memory(r, record)), None)

    def revised(self, write: Write) -> list[Write]:
        """`write` in place of the write this batch already plans for its memory, when there
        is one and `write` was built on it (a core block gaining a second line): [] then, else
        [write]."""
        at = next((i for i, w in enumerate(self.writes) if w.record.id == write.record.id), None)
        if at is None:
            return [write]
        self.check(write)
        self.writes[at] = write
        return []

    def change_suggestion(
        self, agent: MemoryAgent, current: Record, changed: Record, quiet: bool = False
    ) -> Suggestion | None:
        """The suggestion to make `current` (the user's) into `changed`: the fields that differ.
        Nothing new: rejected ("unchanged"), or None when `quiet`. A vault entry's value is
        never copied into a suggestion: a change to the user's entry is only rejected."""
        if isinstance(current, VaultEntry):
            raise OperationRejected("user-owned", f"{current.id} is the user's vault entry")
        before = current.model_dump(mode="json")
        after = changed.model_dump(mode="json")
        fields = {k: v for k, v in after.items() if k not in _NOT_SUGGESTED and before.get(k) != v}
        if not fields:
            if quiet:
                return None
            raise OperationRejected("unchanged", "it would change nothing the user wrote")
        return self._suggestion(agent, current, "update", fields)

    def delete_suggestion(self, agent: MemoryAgent, record: Record) -> Suggestion:
        if isinstance(record, VaultEntry):
            raise OperationRejected("user-owned", f"{record.id} is the user's vault entry")
        return self._suggestion(agent, record, "delete", {})

    def line_suggestion(
        self, agent: MemoryAgent, block: CoreBlock, line: str, value: str | None
    ) -> Suggestion:
        fields = {} if value is None else {"value": value}
        op = "delete" if value is None else "update"
        return self._suggestion(agent, block, op, fields, line)

    def suggest(self, suggestions: Sequence[Suggestion]) -> None:
        """Keep the suggestions not already pending or dismissed; when none is new, the
        operation is rejected (a dismissed suggestion is not made again)."""
        fresh = [
            s
            for s in suggestions
            if not self.store.suggestions.known(s)
            and all(s.fingerprint != t.fingerprint for t in self.report.suggestions)
        ]
        if not fresh:
            raise OperationRejected(
                "already-suggested", "the user has this suggestion already, or dismissed it"
            )
        self.report.suggestions.extend(fresh)

    def _suggestion(
        self,
        agent: MemoryAgent,
        record: Record,
        op: str,
        fields: Mapping[str, object],
        line: str | None = None,
    ) -> Suggestion:
        return Suggestion.model_validate(
            {
                "memory_id": record.id,
                "memory_type": record.kind,
                "op": op,
                "fields": dict(fields),
                "line": line,
                "agent": agent.name,
                "batch_id": self.report.batch_id,
                "events": self.event_ids,
            }
        )

    def check(self, write: Write) -> None:
        """What storage would refuse (over a core limit, no text), as a rejection."""
        if write.action == "delete":
            return
        try:
            self.store.check(write.record)
        except (InvalidText, CoreLimitExceeded) as exc:
            raise OperationRejected("store-check", _short(exc)) from exc


#: What a suggestion never carries: bookkeeping, not what the user wrote.
_NOT_SUGGESTED = frozenset(
    {"id", "created_at", "updated_at", "provenance", "origin", "line_origins", "tree_path"}
)


def batch_id(events: Sequence[Event]) -> str:
    digest = hashlib.sha1(",".join(sorted(e.id for e in events)).encode()).hexdigest()
    return f"b_{digest[:16]}"


def similarity(a: str, b: str) -> float:
    """Overlap of content words: Jaccard, or containment when the smaller has 3+ words."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 0.0
    shared = len(wa & wb)
    jaccard = shared / len(wa | wb)
    small = min(len(wa), len(wb))
    containment = shared / small if small >= 3 else 0.0
    return max(jaccard, containment * 0.9)


def same_memory(a: Record, b: Record) -> bool:
    if type(a) is not type(b):
        return False
    if (
        isinstance(a, EpisodicMemory)
        and isinstance(b, EpisodicMemory)
        and not same_event_time(a.occurred_at, b.occurred_at)
    ):
        return False
    if isinstance(a, VaultEntry) and isinstance(b, VaultEntry):
        return a.caption.strip().lower() == b.caption.strip().lower()
    return similarity(a.index_text(), b.index_text()) >= NEAR_DUPLICATE


class MemoryLoop:
    def __init__(
        self,
        store: MemoryStore,
        model: ChatModel,
        agents: Mapping[MemoryType, MemoryAgent] | None = None,
        meta: MetaMemoryManager | None = None,
        options: CallOptions | None = None,
        max_writes: int = MAX_WRITES_PER_BATCH,
    ) -> None:
        self.store = store
        self.model = model
        self.agents = dict(agents or default_agents())
        self.meta = meta or MetaMemoryManager()
        self.options = options or CallOptions()
        self.max_writes = max_writes
        self.known = KnownText()

    def process(
        self, events: Sequence[Event], cancel: threading.Event | None = None
    ) -> BatchReport:
        """Turn `events` into memories and mark the events done. Raises `BatchFailed` (nothing
        applied, events untouched) on failure; once committed, a batch is reported done, with
        `warnings` if the vector index could not take its writes."""
        started = time.perf_counter()
        report = BatchReport(batch_id(events), tuple(e.id for e in events))
        actor = f"agents:{report.batch_id}"
        shown = self.known.fresh(coalesce(events))
        report.shown = len(shown)
        if not shown:  # nothing new: the events are searchable already, no model is asked
            self._apply([], actor, report)
            report.seconds = time.perf_counter() - started
            return report
        writes = self._read(shown, report, cancel, events)
        self._apply(writes, actor, report)
        self.known.remember(shown)
        report.seconds = time.perf_counter() - started
        for why in report.rejected:
            log.info("%s: rejected (%s) %s", report.batch_id, why.reason, why)
        return report

    def _read(
        self,
        events: Sequence[Event],
        report: BatchReport,
        cancel: threading.Event | None,
        batch: Sequence[Event] = (),
    ) -> list[Write]:
        """The model calls of a batch: the meta manager, then each chosen agent; the writes
        they plan."""
        try:
            scrub = self.store.secrets().scrub  # no prompt shows a vault secret
            chosen = self.meta.choose(self.model, events, cancel, self.options, scrub)
            report.llm_calls += 1
            # Types without an agent here (a user may turn one off) are skipped.
            fallback = [MemoryType.EPISODIC] if MemoryType.EPISODIC in self.agents else []
            report.types = tuple([t for t in chosen if t in self.agents] or fallback)
            proposals: list[Proposal] = []
            for memory_type in report.types:
                agent = self.agents[memory_type]
                candidates = agent.candidates(self.store, events)
                proposals.append(
                    agent.propose(self.model, events, candidates, cancel, self.options, scrub)
                )
                report.llm_calls += 1
            return self._plan(proposals, events, report, cancel, batch)
        except Cancelled:
            raise
        except ModelError as exc:
            raise BatchFailed(f"the memory agents could not read this batch: {exc}") from exc

    # ----- planning: validation without writes ---------------------------------------------

    def _plan(
        self,
        proposals: Sequence[Proposal],
        events: Sequence[Event],
        report: BatchReport,
        cancel: threading.Event | None,
        batch: Sequence[Event] = (),
    ) -> list[Write]:
        plan = BatchPlan(self.store, self.model, self.options, Observations(events), report, cancel)
        plan.batch = tuple(batch) or tuple(events)
        for proposal in proposals:
            agent = self.agents[proposal.memory_type]
            report.rejected.extend(proposal.rejected)
            plan.shown = proposal.candidates
            for op in proposal.operations:
                if len(plan.writes) >= self.max_writes:
                    why = f"over {self.max_writes} writes in one batch"
                    report.rejected.append(Rejection(agent.name, op.op, "over-budget", why))
                    break
                try:
                    planned = agent.plan(op, plan)
                    for write in planned:
                        plan.check(write)
                except OperationRejected as exc:  # the agents', grounding's and the plan's
                    report.rejected.append(exc.rejection(agent.name, op.op))
                    continue
                except ValueError as exc:  # a record the agent built that pydantic refuses
                    why = _short(exc)
                    report.rejected.append(Rejection(agent.name, op.op, "invalid-record", why))
                    continue
                clash = plan.touched & {w.record.id for w in planned}
                if clash:
                    why = f"it touches {clash} twice"
                    report.rejected.append(Rejection(agent.name, op.op, "clash", why))
                    continue
                plan.touched |= {w.record.id for w in planned}
                plan.writes.extend(planned)
        return plan.writes

    # ----- applying --------------------------------------------------------------------------

    def _apply(self, writes: Sequence[Write], actor: str, report: BatchReport) -> None:
        try:
            self.store.apply(
                writes, actor, events_done=report.event_ids, suggest=report.suggestions
            )
        except Exception as exc:
            raise BatchFailed(
                f"writing the batch's memories failed ({_short(exc)}); nothing was written"
            ) from exc
        report.writes.extend((w.op, w.record.kind.value, w.record.id) for w in writes)
        warning = self.store.index_warning([w.record for w in writes])
        if warning:  # the batch is done all the same: the worker repairs the index later
            report.warnings.append(warning)
            log.warning("%s: %s", report.batch_id, warning)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
