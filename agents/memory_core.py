"""The core memory agent: the `human` and `persona` blocks always shown to the chat agent.

Blocks are edited a line (a fact) at a time: an insert appends a line, an update rewrites one
of the lines shown, a delete drops one. Several lines for one block in one batch all land, each
on the block as the batch has planned it so far. A block that would pass 90 % of its limit is
rewritten to about half of it, so it never reaches the limit.

Core memory is about the person, from the person: each line an agent writes is grounded in what
the user said or typed (never in screen text alone), is not a question and not a copy of a line
either block has, and a batch writes at most `MAX_CORE_LINES`. The user's lines are never
changed: an edit or a delete of one becomes a suggestion, and the rewrite condenses only the
agents' lines, keeping every user line word for word.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents import prompts
from agents.grounding import Observations
from agents.llm.port import ChatModel, Message, ModelError, Request
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, ask_json, union
from agents.operations import (
    Delete,
    FieldSpec,
    Insert,
    Operation,
    OperationRejected,
    Update,
    alias,
)
from storage.origin import agent_owned, dropped_protected, normalised
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
#: Most core lines one batch may write (appends and edits together).
MAX_CORE_LINES = 3
#: A line that starts with one of these asks something; with an auxiliary, only when a
#: subject follows ("Do you …?", not "Does not eat meat").
QUESTION_WORDS = frozenset("who whom whose what when where why which how".split())
AUXILIARIES = frozenset("is are was were do does did can could would should will shall may".split())
SUBJECTS = frozenset(
    "i you we he she they it the my your our his her their there this that".split()
)


def is_question(line: str) -> bool:
    """Whether a line asks rather than tells (a core line must state a fact)."""
    text = line.strip()
    if text.endswith("?"):
        return True
    words = [w.strip(",.:;!\"'").lower() for w in text.split()[:2]]
    if not words:
        return False
    if words[0] in QUESTION_WORDS:
        return True
    return words[0] in AUXILIARIES and len(words) > 1 and words[1] in SUBJECTS


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
                    out.append(Candidate(alias(len(out) + 1), block, n))
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
            said = self._from_user(plan)
            self._check_line(str(op.fields["value"]), plan)
            said.check_written(op.fields, self.insert_fields())
            block = self.new_record(op.fields, plan.sources(op.fields), plan.events)
            assert isinstance(block, CoreBlock)
            return self._counted(plan, plan.revised(self._append(block, plan)))
        if isinstance(op, Update | Delete) and "#" in op.id:
            return self._counted(plan, self._edit_line(op, plan))
        return super().plan(op, plan)

    @staticmethod
    def _from_user(plan: BatchPlan) -> Observations:
        said = plan.seen.from_user()
        if not said.events:
            raise OperationRejected(
                "not-from-user",
                "a core line must come from something the user said or typed, not screen text",
            )
        return said

    @staticmethod
    def _check_line(value: str, plan: BatchPlan) -> None:
        """A line an agent writes: a statement, new to both blocks, within the batch's cap."""
        if is_question(value):
            raise OperationRejected("question", "a core line states a fact; this one asks")
        for label in LABELS:
            block, _ = plan.planned_block(label)
            if block and normalised(value) in {normalised(x) for x in block.value.splitlines()}:
                raise OperationRejected("duplicate-line", f"the {label} block already says that")
        if plan.core_lines >= MAX_CORE_LINES:
            raise OperationRejected("over-budget", f"over {MAX_CORE_LINES} core lines in one batch")

    @staticmethod
    def _counted(plan: BatchPlan, writes: list[Write] | Write | None) -> list[Write]:
        """One more core line for this batch (a suggestion, None, is not one)."""
        if writes is None:
            return []
        plan.core_lines += 1
        if isinstance(writes, Write):
            return plan.revised(writes)
        return writes

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

    def _edit_line(self, op: Update | Delete, plan: BatchPlan) -> Write | None:
        """Rewrite or drop the line of a core block that the model was shown, found by its
        text (earlier operations of the batch may have moved it). A user's line is not
        touched: the edit becomes a suggestion (None)."""
        candidate = next((c for c in plan.shown if c.target == op.id), None)
        if candidate is None:
            raise OperationRejected("unknown-id", f"{op.id} was not shown")
        said = self._from_user(plan)
        if isinstance(op, Delete):
            said.check_mentioned(candidate.line_text)
            if plan.core_lines >= MAX_CORE_LINES:
                raise OperationRejected("over-budget", f"over {MAX_CORE_LINES} core lines")
        else:
            said.check_written(op.fields, self.fields, also=[candidate.line_text])
            self._check_line(str(op.fields["value"]), plan)
        block, action = self._planned(candidate.record.id, plan)
        lines = block.value.splitlines()
        old = candidate.line_text
        if old not in lines:
            raise OperationRejected(
                "stale-line", f"the line {old!r} is no longer in the {block.label} block"
            )
        at = lines.index(old)
        if not agent_owned(block.line_origins[at]):
            value = None if isinstance(op, Delete) else str(op.fields["value"])
            plan.suggest([plan.line_suggestion(self, block, old, value)])
            return None
        if isinstance(op, Update):
            lines[at] = str(op.fields["value"])
        else:
            del lines[at]
        provenance = union(
            block.provenance, plan.sources(lines[at] if isinstance(op, Update) else old)
        )
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
        draft = block.updated(value=value, provenance=provenance)
        if len(value) > REWRITE_AT * block.limit:
            value = self.rewrite(plan.model, draft, value, plan.cancel, plan.options)
            plan.report.llm_calls += 1
            op = "rewrite"
        return Write("replace", draft.updated(value=value), op)

    def rewrite(
        self,
        model: ChatModel,
        block: CoreBlock,
        value: str,
        cancel: threading.Event | None = None,
        options: CallOptions | None = None,
    ) -> str:
        """`value` shortened to about half the block's limit: by the model when it manages,
        else by keeping the newest lines, so a block never passes its limit. Only the agents'
        lines are condensed: the user's lines of `block` (whose origins `value` has where its
        lines are the block's) are kept word for word, first, and a rewrite that lost one is
        repaired. The model answers with lines, not one long string: a grammar for a string
        thousands of characters long is too deep for llama.cpp."""
        draft = block.updated(value=value)
        kept = [line for line, origin in draft.lines() if not agent_owned(origin)]
        theirs = "\n".join(line for line, origin in draft.lines() if agent_owned(origin))
        room = int(block.limit * REWRITE_TARGET) - sum(len(x) + 1 for x in kept)
        if not theirs.strip() or room <= 0:
            return "\n".join(kept)
        text = self._condensed(model, block, theirs, room, cancel, options)
        mine = {normalised(x) for x in kept}
        lines = kept + [
            x for x in text.splitlines() if normalised(x) not in mine and not is_question(x)
        ]
        result = "\n".join(lines)
        if dropped_protected(draft.value, draft.line_origins, result):  # cannot happen; guard
            result = "\n".join(kept + compact_lines(theirs, room).splitlines())
        return result

    def _condensed(
        self,
        model: ChatModel,
        block: CoreBlock,
        value: str,
        target: int,
        cancel: threading.Event | None,
        options: CallOptions | None,
    ) -> str:
        """The agents' lines `value` condensed to `target` characters (model, else newest)."""
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
                        "maxItems": max(target // (MAX_LINE + 1), 1),
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
