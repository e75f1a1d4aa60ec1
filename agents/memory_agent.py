"""What the six memory agents share: showing a model a batch of events with the most similar
existing memories of one type, and turning its bounded JSON answer into typed operations.

An agent never writes to storage; it proposes operations and the loop applies them. Each
concrete agent (one per file, agents/memory_*.py) says which fields its memories have, how a
candidate is shown, and how fields become a record; its `plan` hook owns its rules for what an
operation may write (the loop keeps the batch-wide checks: budget, duplicates, clashes).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from agents import prompts
from agents.grounding import shown
from agents.llm.port import (
    Cancelled,
    ChatModel,
    InvalidOutput,
    Message,
    Preempted,
    Request,
    complete_json,
    salvage_json,
    scrubbed,
)
from agents.operations import (
    MAX_OPS_PER_AGENT,
    Delete,
    FieldSpec,
    Insert,
    Merge,
    Noop,
    Operation,
    OperationRejected,
    Rejection,
    Update,
    alias,
    operations_schema,
)
from storage.kinds import kind_spec
from storage.origin import agent_owned
from storage.records import CoreBlock, Event, MemoryType, Record, VaultEntry
from storage.store import MemoryStore, Write
from storage.text import clip

if TYPE_CHECKING:  # the loop builds the plan and imports the agents
    from agents.loop import BatchPlan

log = logging.getLogger(__name__)

ALL_KINDS = ("insert", "update", "merge", "delete", "noop")


@dataclass(frozen=True)
class Candidate:
    """An existing memory shown to the model under a short alias ("m1"); for a core block,
    one of its lines (`line` is its index), so the model edits a fact, not the whole block."""

    alias: str
    record: Record
    line: int | None = None

    @property
    def target(self) -> str:
        """The id an operation on this candidate names: the memory's, or "block_id#line"."""
        return self.record.id if self.line is None else f"{self.record.id}#{self.line}"

    @property
    def line_text(self) -> str:
        assert self.line is not None and isinstance(self.record, CoreBlock)
        return self.record.value.splitlines()[self.line]


@dataclass(frozen=True)
class Proposal:
    """An agent's answer: the operations it proposed and what was rejected on validation."""

    memory_type: MemoryType
    operations: tuple[Operation, ...]
    rejected: tuple[Rejection, ...]
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class CallOptions:
    """How agents call the model: a timeout per call and one retry on unusable output.

    `bound_strings`: keep the schemas' `maxLength` bounds in the grammar. A tiny model
    (SmolLM2) loops inside a string without them; on Qwen they cost 20-45 % more CPU and never
    changed its output, so for it they are left out and the code clips each field instead."""

    timeout_s: float = 120.0
    bound_strings: bool = True
    retries: int = 1
    retry_temperature: float = 0.6
    max_preemptions: int = 1000


def without_string_bounds(schema: Any) -> Any:
    """`schema` without `maxLength` (lists keep `maxItems`: an unbounded list is the loop
    every model falls into)."""
    if isinstance(schema, list):
        return [without_string_bounds(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: without_string_bounds(v) for k, v in schema.items() if k != "maxLength"}


def ask_json(
    model: ChatModel,
    request: Request,
    cancel: threading.Event | None,
    options: CallOptions,
) -> Any:
    """`complete_json` for background work: waits out preemption by chat (the request is sent
    again and queues behind it). Output that is not JSON is salvaged when it was only cut off
    after some complete elements, else asked for once more, warmer."""
    attempt = 0
    preempted = 0
    if not options.bound_strings and request.schema is not None:
        request = replace(request, schema=without_string_bounds(request.schema))
    current = request
    while True:
        try:
            return complete_json(model, current, cancel, options.timeout_s)
        except Preempted:
            preempted += 1
            if preempted > options.max_preemptions:
                raise
            if cancel is not None and cancel.is_set():
                raise Cancelled("memory work was stopped") from None
        except InvalidOutput as exc:
            salvaged = salvage_json(exc.text)
            if salvaged is not None:  # cheaper than asking again, and the lost part was junk
                log.info("kept the complete part of a cut-off answer: %s", exc)
                return salvaged
            attempt += 1
            if attempt > options.retries:
                raise
            log.info("retrying after unusable output: %s", exc)
            note = Message("user", "Your previous answer was not valid JSON. Answer again.")
            current = Request(
                messages=(*request.messages, note),
                schema=request.schema,
                max_tokens=request.max_tokens,
                temperature=options.retry_temperature,
                background=request.background,
            )


def render_events(events: Sequence[Event], max_chars: int) -> str:
    """The batch as dated lines, each event cut to its share of `max_chars`."""
    share = max(max_chars // max(len(events), 1), 80)
    lines = []
    for event in events:
        where = " · ".join(p for p in (event.source, event.app, event.window_title) if p)
        text = clip(event.text, share)
        lines.append(
            f"- [{event.occurred_at.astimezone():%Y-%m-%d %H:%M} {where}] {shown(event, text)}"
        )
    return "\n".join(lines)


def degenerate(text: str) -> bool:
    """Text a small model produced by looping ("0000…", "the the the …"), not content."""
    if len(text) < 24:
        return False
    if len(set(text)) <= 4:
        return True
    words = text.split()
    return len(words) >= 8 and len(set(words)) * 4 <= len(words)


class MemoryAgent(ABC):
    memory_type: ClassVar[MemoryType]
    fields: ClassVar[tuple[FieldSpec, ...]]
    kinds: ClassVar[tuple[str, ...]] = ALL_KINDS
    candidate_k: ClassVar[int] = 5
    max_tokens: ClassVar[int] = 320
    #: Characters of event text shown to the model (about a quarter of that in tokens).
    event_chars: ClassVar[int] = 1600

    @property
    def name(self) -> str:
        return self.memory_type.value

    # ----- what each agent defines ---------------------------------------------------------

    def render(self, record: Record) -> str:
        """One line showing an existing memory to the model (never a high-sensitivity secret):
        the type's candidate line (storage/kinds.py)."""
        return kind_spec(self.memory_type).candidate_line(record)

    @abstractmethod
    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        """The record an insert creates."""

    def changed_record(
        self,
        record: Record,
        fields: dict[str, Any],
        provenance: tuple[str, ...],
        events: Sequence[Event],
    ) -> Record:
        """`record` with the fields of an update or merge applied."""
        return record.updated(**self.derived(fields, events), provenance=provenance)

    def derived(self, fields: dict[str, Any], events: Sequence[Event]) -> dict[str, Any]:
        """The model's fields as the record stores them, plus any the code fills in from the
        batch (what a small model should not have to copy)."""
        return fields

    def insert_fields(self) -> tuple[FieldSpec, ...]:
        return self.fields

    def render_candidate(self, candidate: Candidate) -> str:
        return self.render(candidate.record)

    # ----- shared behaviour ----------------------------------------------------------------

    def candidates(self, store: MemoryStore, events: Sequence[Event]) -> list[Candidate]:
        """The existing memories of this type most similar to the batch (hybrid search)."""
        query = clip(" ".join(e.text for e in events), 1000)
        if not query.strip():
            return []
        hits = store.search(query, types=[self.memory_type], k=self.candidate_k)
        return [Candidate(alias(n), h.record) for n, h in enumerate(hits, start=1)]

    def request(self, events: Sequence[Event], candidates: Sequence[Candidate]) -> Request:
        shown = "\n".join(f"{c.alias}: {self.render_candidate(c)}" for c in candidates)
        kind = self.memory_type.value.replace("_", " ")
        user = (
            f"Existing {kind} memories (ids you may use):\n{shown or '(none yet)'}\n\n"
            f"New observations:\n{render_events(events, self.event_chars)}\n\n"
            'Reply with JSON: {"operations": [...]}.'
        )
        schema = operations_schema(
            self.fields,
            [c.alias for c in candidates],
            self.kinds,
            insert_fields=self.insert_fields(),
        )
        system = prompts.load(self.memory_type.value)
        return Request(
            messages=(Message("system", system), Message("user", user)),
            schema=schema,
            max_tokens=self.max_tokens,
            background=True,
        )

    def propose(
        self,
        model: ChatModel,
        events: Sequence[Event],
        candidates: Sequence[Candidate],
        cancel: threading.Event | None = None,
        options: CallOptions | None = None,
        scrub: Callable[[str], str] | None = None,
    ) -> Proposal:
        """Ask the model for operations; `scrub` (the store's vault secrets) is applied to the
        whole prompt, candidates and event text alike."""
        request = self.request(events, candidates)
        if scrub is not None:
            request = scrubbed(request, scrub)
        data = ask_json(model, request, cancel, options or CallOptions())
        ops, rejected = self.parse(data, candidates)
        return Proposal(self.memory_type, tuple(ops), tuple(rejected), tuple(candidates))

    def parse(
        self, data: Any, candidates: Sequence[Candidate]
    ) -> tuple[list[Operation], list[Rejection]]:
        """Validate the model's JSON into operations. A malformed answer as a whole raises
        `InvalidOutput`; a single bad operation (unknown id, empty text, wrong kind) is
        rejected with a reason and the rest are kept."""
        if not isinstance(data, dict) or not isinstance(data.get("operations"), list):
            raise InvalidOutput(f'expected {{"operations": [...]}} from the {self.name} agent')
        ids = {c.alias: c.target for c in candidates}
        ops: list[Operation] = []
        rejected: list[Rejection] = []
        for raw in data["operations"][: MAX_OPS_PER_AGENT * 2]:
            try:
                op = self._one(raw, ids)
            except OperationRejected as exc:
                kind = raw.get("op") if isinstance(raw, dict) else None
                rejected.append(exc.rejection(self.name, kind if isinstance(kind, str) else "?"))
                continue
            if not isinstance(op, Noop) and len(ops) < MAX_OPS_PER_AGENT:
                ops.append(op)
        return ops, rejected

    def _one(self, raw: Any, ids: dict[str, str]) -> Operation:
        if not isinstance(raw, dict):
            raise OperationRejected("malformed", f"an operation is not an object: {raw!r}")
        kind = raw.get("op")
        if kind not in self.kinds:
            raise OperationRejected("not-allowed", f"operation {kind!r} is not allowed here")
        t = self.memory_type
        if kind == "noop":
            return Noop(memory_type=t)
        if kind == "insert":
            return Insert(memory_type=t, fields=self._fields(raw, self.insert_fields()))
        if kind == "merge":
            aliases = raw.get("ids")
            if not isinstance(aliases, list) or len(set(map(str, aliases))) < 2:
                raise OperationRejected("too-few-ids", "merge needs two or more ids")
            real = tuple(dict.fromkeys(self._id(a, ids) for a in aliases))
            return Merge(memory_type=t, ids=real, fields=self._fields(raw, self.fields))
        target = self._id(raw.get("id"), ids)
        if kind == "delete":
            return Delete(memory_type=t, id=target)
        return Update(memory_type=t, id=target, fields=self._fields(raw, self.fields))

    def _id(self, alias: Any, ids: dict[str, str]) -> str:
        if not isinstance(alias, str) or alias not in ids:
            raise OperationRejected(
                "unknown-id",
                f"id {alias!r} was not among the memories shown ({', '.join(ids) or 'none'})",
            )
        return ids[alias]

    def _fields(self, raw: dict[str, Any], specs: tuple[FieldSpec, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in specs:
            given = raw.get(spec.name)
            value = "" if given is None else str(given)
            # Multi-line fields (steps) keep their lines; the rest are folded to one line.
            value = value.strip() if spec.multiline else " ".join(value.split())
            if spec.enum and value not in spec.enum:
                raise OperationRejected(
                    "not-in-enum", f"{spec.name} must be one of {', '.join(spec.enum)}"
                )
            if spec.required_text and not value:
                raise OperationRejected("empty", f"{spec.name} is empty")
            if degenerate(value):
                raise OperationRejected("runaway", f"{spec.name} is a runaway repetition")
            out[spec.name] = value[: spec.max_length]
        return out

    # ----- planning: what an operation writes (each agent's rules) -------------------------

    def plan(self, op: Operation, plan: BatchPlan) -> list[Write]:
        """The writes `op` makes, once it is checked against the batch (`plan.seen`) and what
        the batch has planned so far; raises `OperationRejected` (`Ungrounded` among them) to
        turn it down. An agent with rules of its own overrides this or one of the steps."""
        if isinstance(op, Insert):
            return self.plan_insert(op, plan)
        if isinstance(op, Update):
            return self.plan_update(op, plan)
        if isinstance(op, Merge):
            return self.plan_merge(op, plan)
        if isinstance(op, Delete):
            return self.plan_delete(op, plan)
        return []

    def plan_insert(self, op: Insert, plan: BatchPlan) -> list[Write]:
        """A new memory, or, when it says what one already does, that one with both sources."""
        plan.seen.check_written(op.fields, self.insert_fields())
        sources = plan.sources(op.fields)
        record = self.new_record(op.fields, sources, plan.events_of(sources))
        if not record.index_text().strip():
            raise OperationRejected("empty", "the memory has no content")
        existing = plan.near_duplicate(record)
        if existing is None:
            return [Write("add", record, "insert")]
        merged = self.merged_duplicate(existing, op.fields, plan)
        if not agent_owned(existing.origin):  # the user already says it: at most a suggestion
            found = plan.change_suggestion(self, existing, merged, quiet=True)
            if found is None:
                raise OperationRejected("near-duplicate", "the user's own memory already says it")
            plan.suggest([found])
            return []
        return [Write("replace", merged, "merge-duplicate")]

    def plan_update(self, op: Update, plan: BatchPlan) -> list[Write]:
        current = plan.get(op.id, self)
        plan.seen.check_written(op.fields, self.fields, also=[current.index_text()])
        plan.seen.check_change(current.index_text(), delete=False)
        provenance = union(current.provenance, plan.sources(op.fields))
        changed = self.changed_record(current, op.fields, provenance, plan.events)
        if not agent_owned(current.origin):  # the user's words: a suggestion, never a write
            wanted = plan.change_suggestion(self, current, changed)
            assert wanted is not None  # not quiet: nothing to change raises
            plan.suggest([wanted])
            return []
        return [Write("replace", changed, "update")]

    def plan_merge(self, op: Merge, plan: BatchPlan) -> list[Write]:
        """The first memory, changed, keeps all their sources; the others are deleted."""
        records = [plan.get(i, self) for i in op.ids]
        plan.seen.check_merged(op.fields, self.fields, [r.index_text() for r in records])
        plan.seen.check_change(" ".join(r.index_text() for r in records), delete=False)
        provenance = union(*(r.provenance for r in records), plan.sources(op.fields))
        keep = self.changed_record(records[0], op.fields, provenance, plan.events)
        if any(not agent_owned(r.origin) for r in records):
            # Nothing of a merge that reaches the user's memories is written: the user's one it
            # keeps gets the merged text as a suggestion, each user's one it drops a delete.
            wanted = []
            if not agent_owned(records[0].origin):
                wanted.append(plan.change_suggestion(self, records[0], keep, quiet=True))
            wanted += [
                plan.delete_suggestion(self, r) for r in records[1:] if not agent_owned(r.origin)
            ]
            plan.suggest([w for w in wanted if w is not None])
            return []
        return [Write("replace", keep, "merge")] + [
            Write("delete", r, "merge") for r in records[1:]
        ]

    def plan_delete(self, op: Delete, plan: BatchPlan) -> list[Write]:
        record = plan.get(op.id, self)
        vault = isinstance(record, VaultEntry)
        plan.seen.check_change(record.index_text(), delete=True, vault=vault)
        if not agent_owned(record.origin):
            plan.suggest([plan.delete_suggestion(self, record)])
            return []
        return [Write("delete", record, "delete")]

    def merged_duplicate(self, existing: Record, fields: dict[str, Any], plan: BatchPlan) -> Record:
        """An existing memory that a new insert duplicates, with both provenances: each text
        field keeps the longer value."""
        old = {k: _as_text(getattr(existing, k, "")) for k in fields}
        fields = {k: v if len(str(v)) >= len(old[k]) else old[k] for k, v in fields.items()}
        provenance = union(existing.provenance, plan.sources(fields))
        return self.changed_record(existing, fields, provenance, plan.events)


def union(*groups: Sequence[str]) -> tuple[str, ...]:
    """Ids of several provenances, each once, in order."""
    return tuple(dict.fromkeys(i for g in groups for i in g))


def _as_text(value: Any) -> str:
    return "\n".join(value) if isinstance(value, tuple) else str(value)
