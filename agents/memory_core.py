"""The core memory agent: the `human` and `persona` blocks always shown to the chat agent.

Blocks are edited a line (a fact) at a time: an insert appends a line, an update rewrites one
of the lines shown, a delete drops one. Several lines for one block in one batch all land, each
on the block as the batch has planned it so far. A block that would pass 90 % of its limit is
rewritten to about half of it, so it never reaches the limit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents import prompts
from agents.llm.port import ChatModel, Message, ModelError, Request
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, ask_json, union
from agents.operations import Delete, FieldSpec, Insert, Operation, OperationRejected, Update
from storage.records import CoreBlock, Event, MemoryType, Record
from storage.store import Action, MemoryStore, Write
from storage.text import clip

if TYPE_CHECKING:
    from agents.loop import BatchPlan

LABELS = ("human", "persona")
#: Longest line (one fact) the model writes into a block.
MAX_LINE = 160
#: Past this share of its limit a block is rewritten to about REWRITE_TARGET of it.
REWRITE_AT = 0.9
REWRITE_TARGET = 0.5


def compact_lines(value: str, max_chars: int) -> str:
    """Fallback compaction: unique lines, newest kept first, within `max_chars`."""
    lines = list(dict.fromkeys(line.strip() for line in value.splitlines() if line.strip()))
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > max_chars:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))


class CoreAgent(MemoryAgent):
    memory_type = MemoryType.CORE
    kinds = ("insert", "update", "delete", "noop")
    fields = (FieldSpec("value", MAX_LINE),)
    #: Newest lines of each block shown as candidates (a full block is ~100 lines).
    lines_shown = 12

    def insert_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("label", enum=LABELS), FieldSpec("value", MAX_LINE))

    def candidates(self, store: MemoryStore, events: Sequence[Event]) -> list[Candidate]:
        """The newest lines of each block: an update rewrites one line, a delete drops one."""
        out: list[Candidate] = []
        for label in LABELS:
            block = store.core_block(label)
            if block is None:
                continue
            lines = block.value.splitlines()
            for n in range(max(len(lines) - self.lines_shown, 0), len(lines)):
                if lines[n].strip():
                    out.append(Candidate(f"m{len(out) + 1}", block, n))
        return out

    def render_candidate(self, candidate: Candidate) -> str:
        assert isinstance(candidate.record, CoreBlock)
        return f"[{candidate.record.label}] {clip(candidate.line_text, MAX_LINE)}"

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        return CoreBlock(label=fields["label"], value=fields["value"], provenance=provenance)

    # ----- planning: line edits ------------------------------------------------------------

    def plan(self, op: Operation, plan: BatchPlan) -> list[Write]:
        """An insert appends a line; an update or delete names one of the lines shown
        ("block_id#n"). Each builds on the block as this batch has planned it."""
        if isinstance(op, Insert):
            plan.seen.check_written(op.fields, self.insert_fields())
            block = self.new_record(op.fields, plan.event_ids, plan.events)
            assert isinstance(block, CoreBlock)
            return plan.revised(self._append(block, plan))
        if isinstance(op, Update | Delete) and "#" in op.id:
            return plan.revised(self._edit_line(op, plan))
        return super().plan(op, plan)

    def _append(self, block: CoreBlock, plan: BatchPlan) -> Write:
        """Append a line to a block (to its planned new value if this batch already changes
        it: several facts for one block in one batch all land)."""
        existing, action = plan.planned_block(block.label)
        if existing is None:
            return Write("add", block, "insert")
        lines = {line.strip().lower() for line in existing.value.splitlines()}
        if block.value.strip().lower() in lines:
            raise OperationRejected("duplicate-line", f"the {block.label} block already says that")
        value = f"{existing.value}\n{block.value}" if existing.value else block.value
        provenance = union(existing.provenance, block.provenance)
        write = self._write(existing, value, provenance, plan)
        return Write(action, write.record, write.op)

    def _edit_line(self, op: Update | Delete, plan: BatchPlan) -> Write:
        """Rewrite or drop the line of a core block that the model was shown, found by its
        text (earlier operations of the batch may have moved it)."""
        candidate = next((c for c in plan.shown if c.target == op.id), None)
        if candidate is None:
            raise OperationRejected("unknown-id", f"{op.id} was not shown")
        if isinstance(op, Delete):
            plan.seen.check_mentioned(candidate.line_text)
        else:
            plan.seen.check_written(op.fields, self.fields, also=[candidate.line_text])
        block, action = self._planned(candidate.record.id, plan)
        lines = block.value.splitlines()
        old = candidate.line_text
        if old not in lines:
            raise OperationRejected(
                "stale-line", f"the line {old!r} is no longer in the {block.label} block"
            )
        at = lines.index(old)
        if isinstance(op, Update):
            lines[at] = str(op.fields["value"])
        else:
            del lines[at]
        provenance = union(block.provenance, plan.event_ids)
        write = self._write(block, "\n".join(lines), provenance, plan)
        return Write(action, write.record, "delete-line" if isinstance(op, Delete) else write.op)

    @staticmethod
    def _planned(block_id: str, plan: BatchPlan) -> tuple[CoreBlock, Action]:
        record, action = plan.current(block_id)
        if not isinstance(record, CoreBlock):
            raise OperationRejected("wrong-type", f"{block_id} is not a core block")
        return record, action

    def _write(
        self, block: CoreBlock, value: str, provenance: tuple[str, ...], plan: BatchPlan
    ) -> Write:
        """A new value for a core block, rewritten to about half its limit once it passes 90 %
        of it (so the block never reaches its limit)."""
        op = "update"
        if len(value) > REWRITE_AT * block.limit:
            value = self.rewrite(plan.model, block, value, plan.cancel, plan.options)
            plan.report.llm_calls += 1
            op = "rewrite"
        return Write("replace", block.updated(value=value, provenance=provenance), op)

    def rewrite(
        self,
        model: ChatModel,
        block: CoreBlock,
        value: str,
        cancel: threading.Event | None = None,
        options: CallOptions | None = None,
    ) -> str:
        """`value` shortened to about half the block's limit: by the model when it manages,
        else by keeping the newest lines, so a block never passes its limit. The model answers
        with lines, not one long string: a grammar for a string thousands of characters long
        is too deep for llama.cpp."""
        target = int(block.limit * REWRITE_TARGET)
        request = Request(
            messages=(
                Message("system", prompts.load("core_rewrite")),
                Message("user", f"Block [{block.label}] ({len(value)} characters):\n{value}"),
            ),
            schema={
                "type": "object",
                "properties": {
                    "lines": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": MAX_LINE},
                        "minItems": 1,
                        "maxItems": target // (MAX_LINE + 1),
                    }
                },
                "required": ["lines"],
                "additionalProperties": False,
            },
            max_tokens=min(target // 3, 1024),
            background=True,
        )
        try:
            data = ask_json(model, request, cancel, options or CallOptions())
            lines = data.get("lines", []) if isinstance(data, dict) else []
            text = "\n".join(" ".join(str(x).split()) for x in lines if str(x).strip())
        except ModelError:
            if cancel is not None and cancel.is_set():
                raise
            text = ""
        if not text or len(text) > target or len(text) < target // 10:
            text = compact_lines(value, target)
        return text
