"""The memory loop: one batch of events → meta manager → memory agents → validated writes.

All model calls happen before the first write. The writes and the "done" mark of the batch's
events go to storage in one transaction, so a batch is applied whole or not at all, and a
crash can neither lose it nor apply it twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.grounding import Observations
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, Proposal
from agents.memory_core import REWRITE_AT, CoreAgent
from agents.memory_episodic import EpisodicAgent
from agents.memory_procedural import ProceduralAgent
from agents.memory_resource import ResourceAgent
from agents.memory_semantic import SemanticAgent
from agents.memory_vault import VaultAgent
from agents.meta import MetaMemoryManager
from agents.model import Cancelled, ChatModel, ModelError
from agents.operations import Delete, Insert, Merge, Update
from storage.errors import EngramError, NotFound
from storage.records import CoreBlock, EpisodicMemory, Event, MemoryType, Record, VaultEntry
from storage.search import STOPWORDS
from storage.store import Action, MemoryStore
from storage.store import Write as StoreWrite

log = logging.getLogger(__name__)

#: Most writes one batch may make, whatever the agents propose.
MAX_WRITES_PER_BATCH = 12
#: Two memories whose content words overlap this much are one memory.
NEAR_DUPLICATE = 0.8
#: Episodic memories are the same event only when this close in time.
SAME_EVENT_S = 2 * 3600
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)


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


@dataclass(frozen=True)
class Write:
    """One planned storage call: add, replace or delete."""

    action: Action
    record: Record
    op: str


@dataclass
class BatchReport:
    batch_id: str
    event_ids: tuple[str, ...]
    types: tuple[MemoryType, ...] = ()
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # (op, type, memory id)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # committed, but e.g. not yet indexed
    llm_calls: int = 0
    seconds: float = 0.0


def batch_id(events: Sequence[Event]) -> str:
    digest = hashlib.sha1(",".join(sorted(e.id for e in events)).encode()).hexdigest()
    return f"b_{digest[:16]}"


def content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOPWORDS}


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


def same_event_time(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) <= SAME_EVENT_S


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

    def process(
        self, events: Sequence[Event], cancel: threading.Event | None = None
    ) -> BatchReport:
        """Turn `events` into memories and mark the events done. Raises `BatchFailed` (nothing
        applied, events untouched) on failure; once committed, a batch is reported done, with
        `warnings` if the vector index could not take its writes."""
        started = time.perf_counter()
        report = BatchReport(batch_id(events), tuple(e.id for e in events))
        actor = f"agents:{report.batch_id}"
        try:
            chosen = self.meta.choose(self.model, events, cancel, self.options)
            report.llm_calls += 1
            # Types without an agent here (a user may turn one off) are skipped.
            fallback = [MemoryType.EPISODIC] if MemoryType.EPISODIC in self.agents else []
            report.types = tuple([t for t in chosen if t in self.agents] or fallback)
            proposals: list[Proposal] = []
            for memory_type in report.types:
                agent = self.agents[memory_type]
                candidates = agent.candidates(self.store, events)
                proposals.append(
                    agent.propose(self.model, events, candidates, cancel, self.options)
                )
                report.llm_calls += 1
            writes = self._plan(proposals, events, report, cancel)
        except Cancelled:
            raise
        except ModelError as exc:
            raise BatchFailed(f"the memory agents could not read this batch: {exc}") from exc
        self._apply(writes, actor, report)
        report.seconds = time.perf_counter() - started
        for why in report.rejected:
            log.info("%s: rejected %s", report.batch_id, why)
        return report

    # ----- planning: validation without writes ---------------------------------------------

    def _plan(
        self,
        proposals: Sequence[Proposal],
        events: Sequence[Event],
        report: BatchReport,
        cancel: threading.Event | None,
    ) -> list[Write]:
        writes: list[Write] = []
        touched: set[str] = set()
        seen = Observations(events)
        for proposal in proposals:
            agent = self.agents[proposal.memory_type]
            report.rejected.extend(proposal.rejected)
            shown = list(proposal.candidates)
            for op in proposal.operations:
                if len(writes) >= self.max_writes:
                    report.rejected.append(f"{agent.name}: over {self.max_writes} writes")
                    break
                try:
                    planned = self._plan_one(agent, op, shown, writes, seen, report, cancel)
                    for write in planned:
                        if write.action != "delete":
                            self.store.check(write.record)
                except (ValueError, NotFound) as exc:  # pydantic and storage errors alike
                    report.rejected.append(f"{agent.name}: {op.op} rejected: {_short(exc)}")
                    continue
                if len(planned) == 1 and isinstance(planned[0].record, CoreBlock):
                    same = [i for i, w in enumerate(writes) if w.record.id == planned[0].record.id]
                    if same:  # a second line for a block this batch already changes
                        writes[same[0]] = planned[0]
                        continue
                clash = touched & {w.record.id for w in planned}
                if clash:
                    report.rejected.append(f"{agent.name}: {op.op} touches {clash} twice")
                    continue
                touched |= {w.record.id for w in planned}
                writes.extend(planned)
        return writes

    def _plan_one(
        self,
        agent: MemoryAgent,
        op: Any,
        shown: list[Candidate],
        planned: list[Write],
        seen: Observations,
        report: BatchReport,
        cancel: threading.Event | None,
    ) -> list[Write]:
        """The writes one operation makes, once it is checked against the batch (`seen`):
        raises ValueError (`Ungrounded` among them) to reject it."""
        events = seen.events
        event_ids = tuple(e.id for e in events)
        if isinstance(op, Insert):
            seen.check_written(op.fields, agent.insert_fields())
            record = agent.new_record(op.fields, event_ids, events)
            if isinstance(record, CoreBlock):
                return [self._core_append(agent, record, planned, report, cancel)]
            if not record.index_text().strip():
                raise ValueError("the memory has no content")
            for write in planned:
                if write.action == "add" and same_memory(write.record, record):
                    raise ValueError("a near-duplicate of another insert in this batch")
            existing = self._near_duplicate(record, [c.record for c in shown])
            if existing is None:
                return [Write("add", record, "insert")]
            merged = self._merged(agent, existing, op.fields, event_ids, events)
            return [Write("replace", merged, "merge-duplicate")]
        if isinstance(op, Update | Delete) and "#" in op.id:
            return [self._core_line(agent, op, shown, planned, seen, report, cancel)]
        if isinstance(op, Update):
            current = self._get(op.id, agent)
            if isinstance(current, EpisodicMemory) and not any(
                same_event_time(current.occurred_at, e.occurred_at) for e in events
            ):
                # An episode is one event: news from another time is a new episode, not a
                # rewrite of an old one (the timeline would collapse into a single memory).
                insert = Insert(memory_type=op.memory_type, fields=op.fields)
                return self._plan_one(agent, insert, shown, planned, seen, report, cancel)
            seen.check_written(op.fields, agent.fields, also=[current.index_text()])
            provenance = _union(current.provenance, event_ids)
            changed = agent.changed_record(current, op.fields, provenance, events)
            return [Write("replace", changed, "update")]
        if isinstance(op, Merge):
            records = [self._get(i, agent) for i in op.ids]
            seen.check_merged(op.fields, agent.fields, [r.index_text() for r in records])
            times = [r.occurred_at for r in records if isinstance(r, EpisodicMemory)]
            if any(not same_event_time(a, b) for a in times for b in times):
                raise ValueError("it merges episodes of different times")
            provenance = _union(*(r.provenance for r in records), event_ids)
            keep = agent.changed_record(records[0], op.fields, provenance, events)
            return [Write("replace", keep, "merge")] + [
                Write("delete", r, "merge") for r in records[1:]
            ]
        if isinstance(op, Delete):
            record = self._get(op.id, agent)
            seen.check_mentioned(record.index_text())
            return [Write("delete", record, "delete")]
        return []

    def _get(self, memory_id: str, agent: MemoryAgent) -> Record:
        record = self.store.get(memory_id)
        if record.kind is not agent.memory_type:
            raise ValueError(f"{memory_id} is a {record.kind.value} memory")
        return record

    def _near_duplicate(self, record: Record, shown: list[Record]) -> Record | None:
        pool = list(shown)
        hits = self.store.search(record.index_text()[:1000], types=[record.kind], k=3)
        pool += [h.record for h in hits]
        return next((r for r in pool if same_memory(r, record)), None)

    @staticmethod
    def _merged(
        agent: MemoryAgent,
        existing: Record,
        fields: dict[str, Any],
        event_ids: tuple[str, ...],
        events: Sequence[Event],
    ) -> Record:
        """An existing memory that a new insert duplicates, with both provenances: each text
        field keeps the longer value (a vault entry takes the new one: it is the current)."""
        if not isinstance(existing, VaultEntry):
            old = {k: _as_text(getattr(existing, k, "")) for k in fields}
            fields = {k: v if len(str(v)) >= len(old[k]) else old[k] for k, v in fields.items()}
        provenance = _union(existing.provenance, event_ids)
        return agent.changed_record(existing, fields, provenance, events)

    def _core_append(
        self,
        agent: MemoryAgent,
        block: CoreBlock,
        planned: list[Write],
        report: BatchReport,
        cancel: threading.Event | None,
    ) -> Write:
        """Append a line to a block (to its planned new value if this batch already changes
        it: several facts for one block in one batch all land)."""
        action: Action = "replace"
        existing: Record | None = self.store.core_block(block.label)
        for write in planned:
            if isinstance(write.record, CoreBlock) and write.record.label == block.label:
                existing, action = write.record, write.action
        if existing is None:
            return Write("add", block, "insert")
        assert isinstance(existing, CoreBlock)
        lines = {line.strip().lower() for line in existing.value.splitlines()}
        if block.value.strip().lower() in lines:
            raise ValueError(f"the {block.label} block already says that")
        value = f"{existing.value}\n{block.value}" if existing.value else block.value
        provenance = _union(existing.provenance, block.provenance)
        write = self._core_write(agent, existing, value, provenance, report, cancel)
        return Write(action, write.record, write.op)

    def _core_base(self, block_id: str, planned: list[Write]) -> tuple[CoreBlock, Action]:
        """A core block as this batch has planned it so far, and the write action it needs."""
        for write in planned:
            if write.record.id == block_id and isinstance(write.record, CoreBlock):
                return write.record, write.action
        block = self.store.get(block_id)
        if not isinstance(block, CoreBlock):
            raise ValueError(f"{block_id} is not a core block")
        return block, "replace"

    def _core_line(
        self,
        agent: MemoryAgent,
        op: Update | Delete,
        shown: Sequence[Candidate],
        planned: list[Write],
        seen: Observations,
        report: BatchReport,
        cancel: threading.Event | None,
    ) -> Write:
        """Rewrite or drop the line of a core block that the model was shown, found by its
        text (earlier operations of the batch may have moved it)."""
        candidate = next((c for c in shown if c.target == op.id), None)
        if candidate is None:
            raise ValueError(f"{op.id} was not shown")
        if isinstance(op, Delete):
            seen.check_mentioned(candidate.line_text)
        else:
            seen.check_written(op.fields, agent.fields, also=[candidate.line_text])
        block, action = self._core_base(candidate.record.id, planned)
        lines = block.value.splitlines()
        old = candidate.line_text
        if old not in lines:
            raise ValueError(f"the line {old!r} is no longer in the {block.label} block")
        at = lines.index(old)
        if isinstance(op, Update):
            lines[at] = str(op.fields["value"])
        else:
            del lines[at]
        provenance = _union(block.provenance, tuple(e.id for e in seen.events))
        write = self._core_write(agent, block, "\n".join(lines), provenance, report, cancel)
        return Write(action, write.record, "delete-line" if isinstance(op, Delete) else write.op)

    def _core_write(
        self,
        agent: MemoryAgent,
        block: CoreBlock,
        value: str,
        provenance: tuple[str, ...],
        report: BatchReport,
        cancel: threading.Event | None,
    ) -> Write:
        """A new value for a core block, rewritten to about half its limit once it passes 90 %
        of it (so the block never reaches its limit)."""
        op = "update"
        if len(value) > REWRITE_AT * block.limit:
            assert isinstance(agent, CoreAgent)
            value = agent.rewrite(self.model, block, value, cancel, self.options)
            report.llm_calls += 1
            op = "rewrite"
        return Write("replace", block.updated(value=value, provenance=provenance), op)

    # ----- applying --------------------------------------------------------------------------

    def _apply(self, writes: Sequence[Write], actor: str, report: BatchReport) -> None:
        try:
            self.store.apply(
                [StoreWrite(w.action, w.record) for w in writes],
                actor,
                events_done=report.event_ids,
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


def _union(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for g in groups for i in g))


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _as_text(value: Any) -> str:
    return "\n".join(value) if isinstance(value, tuple) else str(value)
