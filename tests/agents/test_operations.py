"""The JSON schemas a model fills are bounded (every string, every list) and name only the ids
shown; what the agents accept from a model is validated field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import InvalidOutput, Request, messages
from agents.loop import default_agents
from agents.memory_agent import CallOptions, Candidate, MemoryAgent, ask_json
from agents.memory_core import CoreAgent
from agents.meta import SCHEMA as META_SCHEMA
from agents.operations import Delete, FieldSpec, Insert, Merge, Update, operations_schema
from storage.records import (
    CoreBlock,
    EpisodicMemory,
    MemoryType,
    ProceduralMemory,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)
from tests.agents.conftest import make_events

AGENTS = list(default_agents().values())


def unbounded(schema: Any, path: str = "$") -> list[str]:
    """Paths of strings without maxLength/enum/const and arrays without maxItems."""
    out: list[str] = []
    if isinstance(schema, dict):
        kind = schema.get("type")
        fixed = "enum" in schema or "const" in schema
        if kind == "string" and not fixed and "maxLength" not in schema:
            out.append(path)
        if kind == "array" and "maxItems" not in schema:
            out.append(path)
        for key, value in schema.items():
            out += unbounded(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            out += unbounded(value, f"{path}[{n}]")
    return out


def ids_in(schema: Any) -> set[str]:
    """Every value an `id` or `ids` property of any operation may take."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.get("properties", {}).items():
            if key in ("id", "ids"):
                found |= set(value.get("enum", ())) | set(value.get("items", {}).get("enum", ()))
        for value in schema.values():
            found |= ids_in(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= ids_in(value)
    return found


SAMPLES: dict[MemoryType, Any] = {
    MemoryType.CORE: lambda i: CoreBlock(label=("human", "persona", "notes")[i], value="v"),
    MemoryType.EPISODIC: lambda i: EpisodicMemory(summary=f"episode {i}"),
    MemoryType.SEMANTIC: lambda i: SemanticMemory(name=f"thing {i}", summary="s"),
    MemoryType.PROCEDURAL: lambda i: ProceduralMemory(summary=f"how {i}", steps=("a", "b")),
    MemoryType.RESOURCE: lambda i: ResourceMemory(title=f"doc {i}", content="c"),
    MemoryType.KNOWLEDGE_VAULT: lambda i: VaultEntry(caption=f"pin {i}", secret_value="1"),
}


def candidates_for(agent: MemoryAgent, n: int) -> list[Candidate]:
    make = SAMPLES[agent.memory_type]
    line = 0 if agent.memory_type is MemoryType.CORE else None
    return [Candidate(f"m{i + 1}", make(i), line) for i in range(n)]


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
@pytest.mark.parametrize("shown", [0, 3])
def test_every_agent_schema_is_bounded_and_names_only_shown_ids(
    agent: MemoryAgent, shown: int
) -> None:
    candidates = candidates_for(agent, shown)
    request = agent.request(make_events("something happened"), candidates)
    assert request.schema is not None and request.background
    assert unbounded(request.schema) == []
    assert ids_in(request.schema) == {c.alias for c in candidates}


def test_the_meta_schema_is_an_enum_of_the_six_types() -> None:
    assert unbounded(META_SCHEMA) == []
    assert set(META_SCHEMA["properties"]["types"]["items"]["enum"]) == {t.value for t in MemoryType}


def test_parse_builds_typed_operations_with_real_ids() -> None:
    agent = default_agents()[MemoryType.SEMANTIC]
    shown = candidates_for(agent, 3)
    ops, rejected = agent.parse(
        {"operations": [
            {"op": "insert", "name": " Rust ", "summary": "A   language"},
            {"op": "update", "id": "m1", "name": "x", "summary": "y"},
            {"op": "merge", "ids": ["m2", "m3"], "name": "x", "summary": "y"},
            {"op": "delete", "id": "m3"},
            {"op": "noop"},
        ]},
        shown,
    )  # fmt: skip
    assert rejected == []
    assert [type(o) for o in ops] == [Insert, Update, Merge]  # bounded to three operations
    assert ops[0].fields == {"name": "Rust", "summary": "A language"}  # type: ignore[union-attr]
    assert ops[1].id == shown[0].record.id  # type: ignore[union-attr]
    assert ops[2].ids == (shown[1].record.id, shown[2].record.id)  # type: ignore[union-attr]
    delete_only, _ = agent.parse({"operations": [{"op": "delete", "id": "m3"}]}, shown)
    assert delete_only == [Delete(memory_type=MemoryType.SEMANTIC, id=shown[2].record.id)]


@pytest.mark.parametrize(
    ("raw", "operation", "reason", "detail"),
    [
        ({"op": "insert", "name": "x"}, "insert", "empty", "summary is empty"),
        ({"op": "update", "id": "m7", "name": "x", "summary": "y"}, "update", "unknown-id",
         "not among"),
        ({"op": "merge", "ids": ["m1", "m1"], "name": "x", "summary": "y"}, "merge",
         "too-few-ids", "two or more"),
        ({"op": "explode"}, "explode", "not-allowed", "not allowed"),
        ("insert", "?", "malformed", "not an object"),
    ],
)  # fmt: skip
def test_bad_operations_are_rejected_with_a_reason(
    raw: Any, operation: str, reason: str, detail: str
) -> None:
    agent = default_agents()[MemoryType.SEMANTIC]
    ops, rejected = agent.parse({"operations": [raw]}, candidates_for(agent, 2))
    assert ops == [] and len(rejected) == 1
    [why] = rejected
    assert (why.agent, why.operation, why.reason) == ("semantic", operation, reason)
    assert detail in why.detail
    assert str(why) == f"semantic: {operation} rejected: {why.detail}"


def test_enum_fields_are_enforced() -> None:
    agent = default_agents()[MemoryType.KNOWLEDGE_VAULT]
    raw = {"op": "insert", "entry_type": "pin", "caption": "PIN", "secret_value": "1234",
           "sensitivity": "extreme"}  # fmt: skip
    _, rejected = agent.parse({"operations": [raw]}, [])
    assert [r.reason for r in rejected] == ["not-in-enum"]
    assert "sensitivity must be one of" in rejected[0].detail


def test_a_wrong_shape_is_invalid_output() -> None:
    agent = default_agents()[MemoryType.EPISODIC]
    with pytest.raises(InvalidOutput):
        agent.parse({"ops": []}, [])


def test_core_rewrite_schema_is_bounded_by_half_the_limit() -> None:
    model = ScriptedChatModel({"lines": ["short"]})
    block = CoreBlock(label="human", value="x")
    CoreAgent().rewrite(model, block, "line\n" * 1000)
    schema = model.calls[0].schema
    assert schema is not None and unbounded(schema) == []
    lines = schema["properties"]["lines"]
    assert lines["maxItems"] * (lines["items"]["maxLength"] + 1) <= block.limit // 2


@pytest.mark.parametrize(
    "value", ["0" * 160, "ab" * 40, "the the the the the the the the the the the the"]
)
def test_runaway_repetitions_are_rejected(value: str) -> None:
    agent = default_agents()[MemoryType.SEMANTIC]
    _, rejected = agent.parse({"operations": [{"op": "insert", "name": "x", "summary": value}]}, [])
    assert [r.reason for r in rejected] == ["runaway"] and "runaway" in rejected[0].detail


def test_string_bounds_leave_the_grammar_when_the_model_needs_none() -> None:
    """Qwen writes no runaway strings: its grammar goes without maxLength (cheaper), the lists
    keep maxItems, and the code still clips each field to its length."""
    schema = operations_schema((FieldSpec("summary", 20),), [])
    request = Request(messages("s", "u"), schema=schema, background=True)
    for bound in (True, False):
        model = ScriptedChatModel({"operations": []})
        ask_json(model, request, None, CallOptions(bound_strings=bound))
        sent = json.dumps(model.calls[0].schema)
        assert ('"maxLength"' in sent) is bound
        assert '"maxItems"' in sent
