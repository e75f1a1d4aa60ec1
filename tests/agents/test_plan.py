"""The agents' `plan` hook over one `BatchPlan`, and rejections as structured values: every way
the loop turns an operation down has its own reason code, and an agent's own rule (the kind a
per-agent origin rule will be) is one override."""

from __future__ import annotations

import json

import pytest

from agents.grounding import Observations
from agents.llm.fakes import ScriptedChatModel
from agents.loop import BatchPlan, BatchReport, MemoryLoop
from agents.memory_agent import CallOptions
from agents.memory_core import CoreAgent
from agents.memory_semantic import SemanticAgent
from agents.operations import (
    REASONS,
    Delete,
    Insert,
    OperationRejected,
    Rejection,
    Update,
)
from bench._setup import reasons
from storage.records import CoreBlock, MemoryType, SemanticMemory
from storage.store import MemoryStore, Write
from tests.agents.conftest import aliases_in, make_events


def loop_for(store: MemoryStore, model: ScriptedChatModel, **kw: object) -> MemoryLoop:
    return MemoryLoop(store, model, options=CallOptions(timeout_s=2.0), **kw)  # type: ignore[arg-type]


def plan_for(store: MemoryStore, *texts: str) -> BatchPlan:
    events = make_events(*texts, source="manual")  # typed by the user
    report = BatchReport("b_test", tuple(e.id for e in events))
    return BatchPlan(store, ScriptedChatModel(), CallOptions(), Observations(events), report)


def test_a_rejection_reads_as_the_log_line_and_its_codes_are_distinct() -> None:
    why = Rejection("semantic", "update", "ungrounded", "summary: most of it is not there")
    assert str(why) == "semantic: update rejected: summary: most of it is not there"
    assert OperationRejected("stale-line", "gone").rejection("core", "delete") == Rejection(
        "core", "delete", "stale-line", "gone"
    )
    assert len(set(REASONS)) == len(REASONS) and all(r == r.lower() for r in REASONS)


def test_over_the_write_budget_is_rejected_as_over_budget(fake_store: MemoryStore) -> None:
    inserts = [{"op": "insert", "name": n, "summary": f"{n} is a language"}
               for n in ("Rust", "Python")]  # fmt: skip
    model = ScriptedChatModel({"types": ["semantic"]}, {"operations": inserts})
    report = loop_for(fake_store, model, max_writes=1).process(
        make_events("Rust is a language; Python is a language")
    )
    assert [w[0] for w in report.writes] == ["insert"]
    [why] = report.rejected
    assert (why.agent, why.operation, why.reason) == ("semantic", "insert", "over-budget")
    assert "over 1 writes" in why.detail


def test_touching_one_memory_twice_is_a_clash(fake_store: MemoryStore) -> None:
    dana = fake_store.add(SemanticMemory(name="Dana", summary="Dana works in sales"), "agents:s")

    def answer(prompt: str) -> str:
        alias = aliases_in(prompt)["Dana"]
        return json.dumps({"operations": [
            {"op": "update", "id": alias, "name": "Dana", "summary": "Dana works in marketing"},
            {"op": "delete", "id": alias},
        ]})  # fmt: skip

    model = ScriptedChatModel({"types": ["semantic"]}, lambda req: answer(req.messages[1].content))
    report = loop_for(fake_store, model).process(make_events("Dana works in marketing, not sales"))
    assert [w[0] for w in report.writes] == ["update"]
    [why] = report.rejected
    assert (why.operation, why.reason) == ("delete", "clash") and dana.id in why.detail


def test_a_second_identical_insert_is_a_near_duplicate(fake_store: MemoryStore) -> None:
    same = {"op": "insert", "name": "Kyoto", "summary": "Trip to Kyoto in May"}
    model = ScriptedChatModel({"types": ["semantic"]}, {"operations": [same, same]})
    report = loop_for(fake_store, model).process(make_events("Kyoto trip in May"))
    assert [(r.operation, r.reason) for r in report.rejected] == [("insert", "near-duplicate")]


def test_a_line_the_block_already_has_is_a_duplicate_line(fake_store: MemoryStore) -> None:
    fake_store.set_core("human", "Name is Sam")
    model = ScriptedChatModel(
        {"types": ["core"]},
        {"operations": [{"op": "insert", "label": "human", "value": "name is Sam"}]},
    )
    report = loop_for(fake_store, model).process(make_events("Name is Sam", source="manual"))
    assert report.writes == []
    assert [(r.agent, r.reason) for r in report.rejected] == [("core", "duplicate-line")]


def test_the_plan_names_what_it_cannot_find_or_that_is_of_another_type(
    fake_store: MemoryStore,
) -> None:
    block = fake_store.set_core("human", "Name is Sam")
    plan = plan_for(fake_store, "Sam")
    with pytest.raises(OperationRejected) as missing:
        plan.get("sem_gone", SemanticAgent())
    assert missing.value.reason == "not-found"
    with pytest.raises(OperationRejected) as other:
        plan.get(block.id, SemanticAgent())
    assert other.value.reason == "wrong-type" and "core memory" in other.value.detail
    with pytest.raises(OperationRejected) as unshown:
        CoreAgent().plan(Delete(memory_type=MemoryType.CORE, id=f"{block.id}#0"), plan)
    assert unshown.value.reason == "unknown-id"


def test_the_plan_shows_a_block_as_planned_and_revises_its_write(fake_store: MemoryStore) -> None:
    stored = fake_store.set_core("human", "Name is Sam")
    plan = plan_for(fake_store, "Sam lives in Lyon and likes tea")
    agent = CoreAgent()
    lyon = {"label": "human", "value": "Lives in Lyon"}
    [first] = agent.plan(Insert(memory_type=MemoryType.CORE, fields=lyon), plan)
    assert (first.action, first.op) == ("replace", "update")
    plan.writes.append(first)
    assert plan.planned_block("human") == (first.record, "replace")
    assert plan.planned_block("persona") == (None, "replace")
    again = Insert(memory_type=MemoryType.CORE, fields={"label": "human", "value": "Likes tea"})
    assert agent.plan(again, plan) == []  # built on the planned block: it replaces that write
    [write] = plan.writes
    assert isinstance(write.record, CoreBlock) and write.record.id == stored.id
    assert write.record.value == "Name is Sam\nLives in Lyon\nLikes tea"


def test_the_plan_check_is_storage_s_refusal_as_a_rejection(fake_store: MemoryStore) -> None:
    plan = plan_for(fake_store, "x")
    empty = fake_store.set_core("human", "Likes tea").updated(value="")
    with pytest.raises(OperationRejected) as caught:
        plan.check(Write("replace", empty, "update"))
    assert caught.value.reason == "store-check" and "needs some text" in caught.value.detail
    plan.check(Write("delete", empty, "delete"))  # a delete stores no text


class _KeepsWhatItKnows(SemanticAgent):
    """An agent with a rule of its own, as a per-agent origin rule would be: it never changes
    a memory that has no source in an event (one a person typed)."""

    def plan_update(self, op: Update, plan: BatchPlan) -> list[Write]:
        if not plan.get(op.id, self).provenance:
            raise OperationRejected("not-allowed", "that memory was typed by the user")
        return super().plan_update(op, plan)


def test_an_agent_s_own_rule_is_one_override_of_its_plan_hook(fake_store: MemoryStore) -> None:
    typed = fake_store.add(SemanticMemory(name="Dana", summary="Dana works in sales"))
    update = {"op": "update", "id": "m1", "name": "Dana", "summary": "Dana works in marketing"}
    insert = {"op": "insert", "name": "Kyoto", "summary": "Trip to Kyoto in May"}
    model = ScriptedChatModel({"types": ["semantic"]}, {"operations": [update, insert]})
    loop = loop_for(fake_store, model)
    loop.agents[MemoryType.SEMANTIC] = _KeepsWhatItKnows()
    report = loop.process(make_events("Dana works in marketing now; Kyoto trip in May"))
    assert fake_store.get(typed.id) == typed
    assert [w[0] for w in report.writes] == ["insert"]
    assert report.rejected == [
        Rejection("semantic", "update", "not-allowed", "that memory was typed by the user")
    ]


def test_benchmarks_group_rejections_by_their_fields_not_their_wording() -> None:
    rejected = [
        Rejection("semantic", "update", "ungrounded", "summary: most of it is not there (kyoto)"),
        Rejection("semantic", "update", "ungrounded", "name: most of it is not there (dana)"),
        Rejection("core", "delete", "stale-line", "the line 'x' is no longer in the block"),
    ]
    assert reasons(rejected) == {"semantic update: ungrounded": 2, "core delete: stale-line": 1}
