"""The origin rule through the real loop: agents never change what the user wrote; what they
would change becomes a suggestion; core lines come from the user's own words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from agents import prompts
from agents.grounding import Observations, user_text
from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import Request
from agents.loop import BatchPlan, BatchReport, MemoryLoop
from agents.memory_agent import CallOptions
from agents.memory_core import MAX_CORE_LINES, CoreAgent, is_question
from agents.operations import Insert, OperationRejected
from storage.records import CoreBlock, Event, MemoryType, SemanticMemory
from storage.store import MemoryStore

QUESTION = "Who owns the Q3 budget review?"
SCREEN = (
    "Engram - Chat | Memories | Timeline | Settings. Priya leads the data platform team; "
    "Sam owns the Q3 budget review and the data platform roadmap."
)
USER_LINES = "Name: Sam\nPrefers tea\nWorks as a backend engineer\nLives in Lisbon"


def batch(n: int = 0) -> list[Event]:
    at = datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(hours=n)
    return [
        Event(source="screen", app="engram", text=SCREEN, occurred_at=at),
        Event(
            source="chat",
            app="engram",
            text=f"User asked: {QUESTION}\nEngram answered: Sam owns the Q3 budget review.",
            occurred_at=at + timedelta(minutes=1),
        ),
    ]


def hostile(request: Request) -> str:
    """For every memory shown: an update, a merge into it and a delete; a core rewrite that
    keeps only the user's question."""
    system, user = request.messages[0].content, request.messages[-1].content
    aliases = [line.split(":")[0] for line in user.splitlines() if line[:1] == "m" and ": " in line]
    if system == prompts.load("meta"):
        return json.dumps({"types": ["core", "semantic"]})
    if system == prompts.load("core_rewrite"):
        return json.dumps({"lines": [QUESTION]})
    if system == prompts.load("core"):
        ops: list[dict[str, object]] = [
            {"op": "update", "id": a, "value": "Owns the Q3 budget review"} for a in aliases[:1]
        ]
        ops += [{"op": "delete", "id": a} for a in aliases[1:2]]
        ops.append({"op": "insert", "label": "persona", "value": QUESTION})
        return json.dumps({"operations": ops})
    fields = {"name": "Priya", "summary": SCREEN[:200]}
    ops = [{"op": "update", "id": aliases[0], **fields}] if aliases else []
    if len(aliases) >= 2:
        ops += [{"op": "merge", "ids": aliases[:2], **fields}, {"op": "delete", "id": aliases[1]}]
    return json.dumps({"operations": ops})


def seed_user_memories(store: MemoryStore) -> list[SemanticMemory]:
    store.set_core("human", USER_LINES)
    records = [
        SemanticMemory(name="Priya", summary="Priya leads the data platform team"),
        SemanticMemory(name="Q3 budget", summary="Sam owns the Q3 budget review"),
    ]
    return [r for r in store.add_many(records) if isinstance(r, SemanticMemory)]


def rows(store: MemoryStore, ids: list[str]) -> list[str]:
    return [r.model_dump_json() for r in store.get_many(ids)]


def user_lines(store: MemoryStore) -> list[str]:
    block = store.core_block("human")
    assert block is not None
    return [line for line, origin in block.lines() if origin == "user"]


def test_a_hostile_model_changes_nothing_the_user_wrote(fake_store: MemoryStore) -> None:
    seeded = seed_user_memories(fake_store)
    ids = [r.id for r in seeded]
    before = rows(fake_store, ids)
    loop = MemoryLoop(fake_store, ScriptedChatModel(default=hostile), options=CallOptions(2.0))
    report = loop.process(batch())
    assert rows(fake_store, ids) == before  # byte-identical
    assert user_lines(fake_store) == USER_LINES.splitlines()
    assert all(not c.actor.startswith("agents:") for i in ids for c in fake_store.history(i))
    pending = fake_store.suggestions.pending()
    assert {s.memory_id for s in pending} >= {*ids}
    assert {s.op for s in pending} == {"update", "delete"}
    line = [s for s in pending if s.line is not None]
    assert [(s.line, s.fields) for s in line] == [
        ("Name: Sam", {"value": "Owns the Q3 budget review"})
    ]
    assert all(s.batch_id == report.batch_id and s.agent for s in pending)
    reasons = {r.reason for r in report.rejected}
    assert "question" in reasons  # the persona line that asks
    persona = fake_store.core_block("persona")
    assert persona is None or not any(is_question(x) for x in persona.value.splitlines())

    # accept applies with history, and the memory stays the user's
    update = next(s for s in pending if s.memory_id in ids and s.op == "update")
    accepted = fake_store.accept(update.id)
    assert isinstance(accepted, SemanticMemory) and accepted.summary == SCREEN[:200]
    assert accepted.origin == "user" and set(update.events) <= set(accepted.provenance)
    assert fake_store.history(update.memory_id)[0].actor == "user"
    assert update.id not in {s.id for s in fake_store.suggestions.pending()}

    # dismissed, the same suggestion is not made in the next batch
    gone = next(s for s in pending if s.memory_id in ids and s.op == "delete")
    fake_store.dismiss(gone.id)
    again = loop.process(batch(1))
    assert gone.fingerprint not in {s.fingerprint for s in again.suggestions}
    assert not any(
        s.fingerprint == gone.fingerprint for s in fake_store.suggestions.pending(gone.memory_id)
    )
    assert fake_store.get(gone.memory_id).model_dump_json() == before[ids.index(gone.memory_id)]
    assert "already-suggested" in {r.reason for r in again.rejected}


def test_the_rewrite_keeps_every_user_line_verbatim(fake_store: MemoryStore) -> None:
    user = "Name: Sam, a backend engineer in Lisbon\nPrefers tea over coffee in the morning"
    fake_store.add(CoreBlock(label="human", value=user, limit=300))
    fake_store.append_core("human", "Owns the budget " + "and more " * 20, "agents:b_seed")
    grow = {"op": "insert", "label": "human", "value": "Owns the quarterly budget review"}
    model = ScriptedChatModel({"types": ["core"]}, {"operations": [grow]}, default=hostile)
    report = MemoryLoop(fake_store, model, options=CallOptions(2.0)).process(
        [
            Event(
                source="manual",
                text="I own the quarterly budget review for the data platform team",
            )
        ]
    )
    block = fake_store.core_block("human")
    assert block is not None and "rewrite" in {w[0] for w in report.writes}
    assert user_lines(fake_store) == user.splitlines()
    assert not any(is_question(x) for x in block.value.splitlines())


def plan_for(store: MemoryStore, *events: Event) -> BatchPlan:
    report = BatchReport("b_test", tuple(e.id for e in events))
    return BatchPlan(store, ScriptedChatModel(), CallOptions(), Observations(events), report)


def said(text: str) -> Event:
    return Event(source="chat", text=f"User asked: {text}\nEngram answered: noted.")


def insert(value: str, label: str = "human") -> Insert:
    return Insert(memory_type=MemoryType.CORE, fields={"label": label, "value": value})


@pytest.mark.parametrize(
    "line", ["Who owns the Q3 budget review?", "Does he like tea", "How to deploy", "Is it?"]
)
def test_a_question_is_never_a_core_line(fake_store: MemoryStore, line: str) -> None:
    assert is_question(line)
    with pytest.raises(OperationRejected) as why:
        CoreAgent().plan(insert(line), plan_for(fake_store, said(line)))
    assert why.value.reason == "question"


def test_statements_are_not_questions() -> None:
    assert not any(map(is_question, ["Does not eat meat", "Is vegetarian", "Name: Sam"]))


def test_screen_text_alone_grounds_no_core_line(fake_store: MemoryStore) -> None:
    screen = Event(source="screen", text="My name is Priya and I like green tea")
    for label in ("human", "persona"):
        with pytest.raises(OperationRejected) as why:
            CoreAgent().plan(insert("Likes green tea", label), plan_for(fake_store, screen))
        assert why.value.reason == "not-from-user"
    other = Event(source="import", text="I like green tea", metadata={"speaker": "Dana"})
    assert user_text(other) == "" and user_text(said("I like tea")) == "I like tea"
    mine = Event(source="import", text="I like green tea", metadata={"speaker": "user"})
    [write] = CoreAgent().plan(insert("Likes green tea"), plan_for(fake_store, mine, screen))
    assert isinstance(write.record, CoreBlock) and write.record.value == "Likes green tea"


def test_the_user_words_only_ground_a_line(fake_store: MemoryStore) -> None:
    events = (said("I like tea"), Event(source="screen", text="Priya leads the platform team"))
    with pytest.raises(OperationRejected) as why:
        CoreAgent().plan(insert("Priya leads the platform team"), plan_for(fake_store, *events))
    assert why.value.reason == "ungrounded"


def test_a_copy_of_a_line_of_either_block_is_rejected(fake_store: MemoryStore) -> None:
    fake_store.set_core("human", "Prefers tea")
    with pytest.raises(OperationRejected) as why:
        CoreAgent().plan(insert("prefers  tea.", "persona"), plan_for(fake_store, said("tea")))
    assert why.value.reason == "duplicate-line"


def test_at_most_three_core_lines_a_batch(fake_store: MemoryStore) -> None:
    facts = ["Likes tea", "Lives in Lisbon", "Works on Engram", "Plays chess"]
    plan = plan_for(fake_store, said(", ".join(facts)))
    agent = CoreAgent()
    for fact in facts[:MAX_CORE_LINES]:
        plan.writes.extend(agent.plan(insert(fact), plan))
    with pytest.raises(OperationRejected) as why:
        agent.plan(insert(facts[-1]), plan)
    assert why.value.reason == "over-budget"
    [write] = plan.writes
    assert isinstance(write.record, CoreBlock)
    assert write.record.value.splitlines() == facts[:MAX_CORE_LINES]


def test_a_user_edit_makes_an_agent_memory_the_users(fake_store: MemoryStore) -> None:
    made = fake_store.add(SemanticMemory(name="Kyoto", summary="Trip in May"), "agents:b_1")
    assert made.origin == "agent"
    edited = fake_store.update(made.id, summary="Trip to Kyoto in June")
    assert edited.origin == "user"
    block = fake_store.append_core("human", "Likes tea", "agents:b_1")
    assert block.line_origins == ("agent",)
    block = fake_store.set_core("human", "Likes green tea\nLives in Lisbon")
    assert block.line_origins == ("user", "user")
    block = fake_store.append_core("human", "Plays chess", "agents:b_2")
    assert block.lines()[-1] == ("Plays chess", "agent") and block.origin == "user"
