"""Typed memory operations and the bounded JSON schemas a model fills to produce them.

Agents return these; only the loop (agents/loop.py) writes them to storage. Every string in a
schema has a `maxLength` and every list a `maxItems`: unbounded, a small model can loop inside
a string until its token limit. Ids are an enum of the short aliases shown to the model
("m1", "m2", …), so it cannot name a memory it was not shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from agents.llm.port import JsonSchema
from storage.errors import EngramError
from storage.records import MemoryType

#: Most operations one agent may return for one batch (also the schema's maxItems).
MAX_OPS_PER_AGENT = 3
#: A candidate's short alias as the model sees it ("m1"); it names a memory in an operation and
#: must never be stored as a memory's content (agents/grounding.py checks).
ALIAS = re.compile(r"\bm\d{1,3}\b")


def alias(n: int) -> str:
    """The alias of the `n`th candidate shown to the model."""
    return f"m{n}"


class _Op(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_type: MemoryType


class Insert(_Op):
    op: Literal["insert"] = "insert"
    fields: dict[str, Any]


class Update(_Op):
    op: Literal["update"] = "update"
    id: str
    fields: dict[str, Any]


class Merge(_Op):
    """Fold several memories into the first one (updated with `fields`); the rest are deleted."""

    op: Literal["merge"] = "merge"
    ids: tuple[str, ...] = Field(min_length=2)
    fields: dict[str, Any]


class Delete(_Op):
    op: Literal["delete"] = "delete"
    id: str


class Noop(_Op):
    op: Literal["noop"] = "noop"


Operation = Annotated[Insert | Update | Merge | Delete | Noop, Field(discriminator="op")]

#: Why an operation was turned down, as code can group and count it: what the model's JSON got
#: wrong, what grounding found, what the plan of the batch found.
Reason = Literal[
    # the answer (agents/memory_agent.py)
    "malformed", "not-allowed", "too-few-ids", "unknown-id", "not-in-enum", "empty", "runaway",
    # grounding (agents/grounding.py)
    "ungrounded", "not-verbatim", "no-words", "unknown-name", "unrelated-merge", "unmentioned",
    # what screen text may not do (agents/grounding.py): it is data, never an instruction
    "instruction", "alias", "screen-asks",
    # the plan of the batch (the agents' `plan` hooks and the loop)
    "near-duplicate", "duplicate-line", "wrong-type", "not-found", "stale-line",
    "different-time", "store-check", "invalid-record", "over-budget", "clash",
    # the origin rule: what the user wrote is never changed by an agent
    "user-owned", "unchanged", "already-suggested", "not-from-user", "question",
]  # fmt: skip
REASONS: tuple[Reason, ...] = get_args(Reason)


@dataclass(frozen=True)
class Rejection:
    """One operation turned down while the rest of its batch still applies: which agent,
    which operation, a `reason` code to group by and a `detail` for a person."""

    agent: str
    operation: str
    reason: Reason
    detail: str

    def __str__(self) -> str:
        return f"{self.agent}: {self.operation} rejected: {self.detail}"


class OperationRejected(EngramError):
    """One operation a model proposed that cannot be applied (the others still can)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason: Reason = reason
        self.detail = detail

    def rejection(self, agent: str, operation: str) -> Rejection:
        return Rejection(agent, operation, self.reason, self.detail)


@dataclass(frozen=True)
class FieldSpec:
    """One field the model writes: its JSON schema and whether it must hold text."""

    name: str
    max_length: int = 300
    enum: tuple[str, ...] = ()
    required_text: bool = True
    multiline: bool = False
    #: Checked against the batch (see agents/grounding.py); off for labels like a type name.
    grounded: bool = True
    #: Must appear in the batch word for word (a secret is copied, never composed).
    verbatim: bool = False

    def schema(self) -> JsonSchema:
        if self.enum:
            return {"type": "string", "enum": list(self.enum)}
        out: JsonSchema = {"type": "string", "maxLength": self.max_length}
        if self.required_text:
            out["minLength"] = 1
        return out


def _variant(op: str, props: dict[str, JsonSchema]) -> JsonSchema:
    properties: dict[str, JsonSchema] = {"op": {"const": op}, **props}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def operations_schema(
    fields: tuple[FieldSpec, ...],
    aliases: list[str],
    kinds: tuple[str, ...] = ("insert", "update", "merge", "delete", "noop"),
    max_ops: int = MAX_OPS_PER_AGENT,
    insert_fields: tuple[FieldSpec, ...] | None = None,
) -> JsonSchema:
    """`{"operations": [...]}` where each item is one operation kind; kinds that need an id are
    offered only when there are candidates to name (an enum cannot be empty)."""
    field_props = {f.name: f.schema() for f in fields}
    insert_props = {f.name: f.schema() for f in (insert_fields or fields)}
    variants: list[JsonSchema] = []
    if "insert" in kinds:
        variants.append(_variant("insert", insert_props))
    if aliases:
        id_schema: JsonSchema = {"type": "string", "enum": aliases}
        if "update" in kinds:
            variants.append(_variant("update", {"id": id_schema, **field_props}))
        if "merge" in kinds and len(aliases) >= 2:
            ids: JsonSchema = {
                "type": "array",
                "items": id_schema,
                "minItems": 2,
                "maxItems": min(3, len(aliases)),
            }
            variants.append(_variant("merge", {"ids": ids, **field_props}))
        if "delete" in kinds:
            variants.append(_variant("delete", {"id": id_schema}))
    if "noop" in kinds or not variants:
        variants.append(_variant("noop", {}))
    return {
        "type": "object",
        "properties": {
            "operations": {"type": "array", "items": {"anyOf": variants}, "maxItems": max_ops}
        },
        "required": ["operations"],
        "additionalProperties": False,
    }
