"""The memory loop on the scripted model: routing, every operation kind, and failures that must
leave nothing lost or half-applied."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from agents.llm.fakes import Scripted, ScriptedChatModel, Stall
from agents.llm.port import ModelError
from agents.loop import BatchFailed, MemoryLoop
from agents.memory_agent import CallOptions, Candidate
from agents.memory_core import CoreAgent
from agents.memory_episodic import EpisodicAgent
from agents.operations import MAX_OPS_PER_AGENT
from storage.records import (
    CoreBlock,
    EpisodicMemory,
    Event,
    MemoryType,
    ProceduralMemory,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)
from storage.store import MemoryStore
from tests.agents.conftest import aliases_in, make_events
from tests.storage.failing_index import open_failing


def loop_for(store: MemoryStore, model: ScriptedChatModel, **kw: object) -> MemoryLoop:
    return MemoryLoop(store, model, options=CallOptions(timeout_s=2.0), **kw)  # type: ignore[arg-type]


def system_prompts(model: ScriptedChatModel) -> list[str]:
    return [r.messages[0].content.split(":")[0][:40] for r in model.calls]


def snapshot(store: MemoryStore) -> list[tuple[str, str]]:
    return sorted((r.id, r.model_dump_json()) for r in store.browse(limit=1000))


EPISODE = {
    "op": "insert",
    "actor": "user",
    "event_type": "meeting",
    "summary": "Met Dana to plan the Q3 launch",
}


def test_meta_routes_the_batch_to_the_chosen_agents(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel(
        {"types": ["semantic", "procedural"]},
        {"operations": [{"op": "noop"}]},
        {"operations": [{"op": "noop"}]},
    )
    report = loop_for(fake_store, model).process(make_events("Read about the Rust borrow checker"))
    assert report.types == (MemoryType.SEMANTIC, MemoryType.PROCEDURAL)
    assert report.llm_calls == 3
    assert len(model.calls) == 3 and model.pending == 0
    assert "semantic memory" in model.calls[1].messages[0].content
    assert "procedural memory" in model.calls[2].messages[0].content
    assert all(c.background and c.schema is not None for c in model.calls)


def test_empty_choice_still_reaches_the_episodic_agent(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel({"types": []}, {"operations": [EPISODE]})
    events = make_events("Meeting with Dana about the Q3 launch")
    report = loop_for(fake_store, model).process(events)
    assert report.types == (MemoryType.EPISODIC,)
    [memory] = fake_store.browse(MemoryType.EPISODIC)
    assert isinstance(memory, EpisodicMemory)
    assert memory.provenance == (events[0].id,)
    assert memory.occurred_at == events[0].occurred_at


def test_a_memory_cites_the_turns_that_say_it_not_every_event_of_its_batch(
    fake_store: MemoryStore,
) -> None:
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        {"operations": [{"op": "insert", "name": "Caroline",
                         "summary": "Caroline went to an LGBTQ support group"}]},
    )  # fmt: skip
    events = make_events(
        "Melanie: How was your week, Caroline?",
        "Caroline: I went to an LGBTQ support group yesterday, it was powerful.",
        "Melanie: Painting with the kids this weekend.",
        "Caroline: The support group people were so kind.",
        source="import",
        app="chat",
    )
    report = loop_for(fake_store, model).process(events)
    assert len(report.writes) == 1, report.rejected
    [memory] = fake_store.browse(MemoryType.SEMANTIC)
    # Best supported first; the turns that only name Caroline (or nothing of it) are left out.
    assert memory.provenance == (events[1].id, events[3].id)


def test_an_episode_keeps_the_time_and_details_of_its_own_turns(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel(
        {"types": ["episodic"]},
        {"operations": [{"op": "insert", "actor": "Caroline", "event_type": "meeting",
                         "summary": "Caroline went to an LGBTQ support group"}]},
    )  # fmt: skip
    events = make_events(
        "Melanie: Painting with the kids this weekend.",
        "Caroline: I went to an LGBTQ support group yesterday.",
        source="import",
        app="chat",
    )
    loop_for(fake_store, model).process(events)
    [episode] = fake_store.browse(MemoryType.EPISODIC)
    assert isinstance(episode, EpisodicMemory)
    assert episode.provenance == (events[1].id,)
    assert episode.occurred_at == events[1].occurred_at
    assert "support group" in episode.details and "Painting" not in episode.details


def test_insert_of_every_type_with_provenance_and_history(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel(
        {"types": ["core", "episodic", "semantic", "procedural", "resource", "knowledge_vault"]},
        {"operations": [{"op": "insert", "label": "human", "value": "Name is Sam"}]},
        {"operations": [EPISODE]},
        {"operations": [{"op": "insert", "name": "Dana", "summary": "Dana leads marketing"}]},
        {"operations": [{"op": "insert", "entry_type": "workflow", "summary": "Release steps",
                         "steps": "1. tag\n2. build\n3. upload"}]},
        {"operations": [{"op": "insert", "title": "Q3 plan", "resource_type": "document",
                         "summary": "The launch plan"}]},
        {"operations": [{"op": "insert", "entry_type": "credential", "caption": "VPN password",
                         "secret_value": "hunter2!", "sensitivity": "high"}]},
    )  # fmt: skip
    events = make_events(
        "I am Sam. Met Dana (marketing lead) on the Q3 plan; VPN pw hunter2!",
        "Release steps: tag, build, upload.",
        source="manual",  # typed by the user: a core line may come from it
    )
    report = loop_for(fake_store, model).process(events)
    assert len(report.writes) == 6 and not report.rejected
    # Each memory cites the event that says it ("why do I know this?"), not the whole batch.
    said_in = {t: (events[0].id,) for t in MemoryType} | {MemoryType.PROCEDURAL: (events[1].id,)}
    for memory_type in MemoryType:
        [record] = fake_store.browse(memory_type)
        assert record.provenance == said_in[memory_type], memory_type
        [change] = fake_store.history(record.id)
        assert change.op == "create" and change.actor == f"agents:{report.batch_id}"
    procedure = fake_store.browse(MemoryType.PROCEDURAL)[0]
    assert isinstance(procedure, ProceduralMemory) and procedure.steps == ("tag", "build", "upload")
    resource = fake_store.browse(MemoryType.RESOURCE)[0]
    # The batch made "hunter2!" a high-sensitivity secret: the resource quoting it withholds it.
    assert isinstance(resource, ResourceMemory) and "hunter2!" not in resource.content
    assert f"VPN pw {VaultEntry.WITHHELD}" in resource.content
    vault = fake_store.browse(MemoryType.KNOWLEDGE_VAULT)[0]
    assert isinstance(vault, VaultEntry) and vault.sensitivity == "high"


def _seed_semantic(store: MemoryStore) -> list[SemanticMemory]:
    records = [
        SemanticMemory(name="Dana", summary="Dana works in sales", provenance=("old1",)),
        SemanticMemory(name="Dana Smith", summary="Dana Smith is in sales", provenance=("old2",)),
        SemanticMemory(name="Kyoto", summary="Kyoto trip planned for May", provenance=("old3",)),
    ]
    stored = store.add_many(records, actor="agents:seed")  # the agents' own: they may change
    return [r for r in stored if isinstance(r, SemanticMemory)]


def test_update_merge_and_delete_by_the_ids_shown(fake_store: MemoryStore) -> None:
    _seed_semantic(fake_store)
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        lambda req: _ops_usingaliases_in(req.messages[1].content),
    )
    # A delete needs more than two of the memory's words in the batch (kyoto, trip, may).
    events = make_events("Dana moved from sales to marketing. The Kyoto trip in May is off.")
    report = loop_for(fake_store, model).process(events)
    assert sorted(op for op, _, _ in report.writes) == ["delete", "merge", "merge"]
    remaining = fake_store.browse(MemoryType.SEMANTIC)
    assert len(remaining) == 1
    [dana] = remaining
    assert isinstance(dana, SemanticMemory) and "marketing" in dana.summary
    assert {"old1", "old2", events[0].id} <= set(dana.provenance)


def _update_dana_delete_kyoto(prompt: str) -> str:
    alias = aliases_in(prompt)
    return json.dumps({"operations": [
        {"op": "update", "id": alias["Dana"], "name": "Dana", "summary": "In marketing"},
        {"op": "delete", "id": alias["Kyoto"]},
    ]})  # fmt: skip


def _ops_usingaliases_in(prompt: str) -> str:
    """Answer like a model reading the prompt: find the aliases shown for each memory."""
    alias = aliases_in(prompt)
    ops = [
        {"op": "merge", "ids": [alias["Dana"], alias["Dana Smith"]], "name": "Dana",
         "summary": "Dana works in marketing"},
        {"op": "delete", "id": alias["Kyoto"]},
    ]  # fmt: skip
    return json.dumps({"operations": ops})


def test_update_keeps_old_provenance_and_adds_the_batch(fake_store: MemoryStore) -> None:
    _seed_semantic(fake_store)
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        {"operations": [{"op": "update", "id": "m1", "name": "Dana",
                         "summary": "Dana now works in marketing"}]},
    )  # fmt: skip
    events = make_events("Dana works in marketing now")
    report = loop_for(fake_store, model).process(events)
    [(_, _, memory_id)] = report.writes
    updated = fake_store.get(memory_id)
    assert isinstance(updated, SemanticMemory) and "marketing" in updated.summary
    assert events[0].id in updated.provenance and len(updated.provenance) == 2
    assert fake_store.history(memory_id)[0].op == "update"


def test_unknown_id_is_rejected_and_the_rest_applied(fake_store: MemoryStore) -> None:
    _seed_semantic(fake_store)
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        {"operations": [{"op": "delete", "id": "m99"},
                        {"op": "update", "id": "sem_invented", "name": "x", "summary": "y"},
                        {"op": "insert", "name": "Rust", "summary": "Rust is a language"}]},
    )  # fmt: skip
    report = loop_for(fake_store, model).process(make_events("Learning Rust"))
    assert [(r.operation, r.reason) for r in report.rejected] == [
        ("delete", "unknown-id"),
        ("update", "unknown-id"),
    ]
    assert all("not among" in r.detail for r in report.rejected)
    assert [op for op, _, _ in report.writes] == ["insert"]
    assert fake_store.count(MemoryType.SEMANTIC) == 4


def test_empty_content_is_rejected(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        {"operations": [{"op": "insert", "name": "  ", "summary": "   "}]},
    )
    report = loop_for(fake_store, model).process(make_events("nothing much"))
    assert report.writes == [] and report.rejected
    assert all(r.reason == "empty" and "is empty" in r.detail for r in report.rejected)
    assert fake_store.count() == 0


def test_operation_count_is_bounded(fake_store: MemoryStore) -> None:
    inserts = [
        {"op": "insert", "name": f"Topic {n}", "summary": f"Distinct fact number {n} about "
         f"{w}"}
        for n, w in enumerate(["apples", "boats", "clouds", "drums", "eagles", "forks", "gems"])
    ]  # fmt: skip
    model = ScriptedChatModel({"types": ["semantic"]}, {"operations": inserts})
    facts = "Topics: a distinct fact number each about apples, boats, clouds, drums, eagles, forks"
    report = loop_for(fake_store, model).process(make_events(facts))
    assert len(report.writes) == MAX_OPS_PER_AGENT
    assert fake_store.count(MemoryType.SEMANTIC) == MAX_OPS_PER_AGENT


def test_near_duplicate_insert_is_merged(fake_store: MemoryStore) -> None:
    existing = SemanticMemory(
        name="Dana", summary="Dana leads the marketing team", provenance=("old",)
    )
    fake_store.add(existing, "agents:seed")
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        {"operations": [{"op": "insert", "name": "Dana",
                         "summary": "Dana leads the marketing team at Acme"}]},
    )  # fmt: skip
    events = make_events("Dana leads marketing at Acme")
    report = loop_for(fake_store, model).process(events)
    assert [op for op, _, _ in report.writes] == ["merge-duplicate"]
    [dana] = fake_store.browse(MemoryType.SEMANTIC)
    assert dana.id == existing.id and set(dana.provenance) == {"old", events[0].id}
    assert isinstance(dana, SemanticMemory) and dana.summary.endswith("at Acme")


def test_duplicate_inserts_within_one_batch_collapse(fake_store: MemoryStore) -> None:
    same = {"op": "insert", "name": "Kyoto", "summary": "Trip to Kyoto in May"}
    model = ScriptedChatModel({"types": ["semantic"]}, {"operations": [same, same]})
    report = loop_for(fake_store, model).process(make_events("Kyoto trip in May"))
    assert len(report.writes) == 1 and fake_store.count(MemoryType.SEMANTIC) == 1


def test_invalid_json_is_retried_once_warmer(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel('{"types": [epis', {"types": ["episodic"]}, {"operations": []})
    report = loop_for(fake_store, model).process(make_events("x happened"))
    assert report.types == (MemoryType.EPISODIC,)
    retry = model.calls[1]
    assert retry.temperature > 0 and "not valid JSON" in retry.messages[-1].content


def test_a_cut_off_answer_keeps_its_complete_operations(fake_store: MemoryStore) -> None:
    whole = json.dumps(EPISODE)
    runaway = '{"op": "insert", "actor": "user", "event_type": "chat", "summary": "' + "👌" * 300
    model = ScriptedChatModel({"types": ["episodic"]}, '{"operations": [' + whole + ", " + runaway)
    report = loop_for(fake_store, model).process(make_events("Met Dana to plan the Q3 launch"))
    assert len(model.calls) == 2  # salvaged, not asked again
    [(op, kind, memory_id)] = report.writes
    assert (op, kind) == ("insert", "episodic")
    assert fake_store.get(memory_id).summary == EPISODE["summary"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(["not json", "still not json"], id="invalid-json"),
        pytest.param([ModelError("the model crashed")], id="model-raises"),
        pytest.param([Stall(seconds=10)], id="model-times-out"),
        pytest.param([{"wrong": "shape"}, {"wrong": "shape"}], id="wrong-shape"),
    ],
)
def test_a_failing_agent_applies_nothing(fake_store: MemoryStore, failure: list[Scripted]) -> None:
    _seed_semantic(fake_store)
    before = snapshot(fake_store)
    model = ScriptedChatModel(
        {"types": ["episodic", "semantic"]},
        {"operations": [EPISODE]},  # the episodic agent succeeds…
        *failure,  # …then the semantic agent fails
    )
    with pytest.raises(BatchFailed):
        loop_for(fake_store, model).process(make_events("Met Dana"))
    assert snapshot(fake_store) == before


def test_a_failing_write_applies_nothing_and_keeps_the_events(
    fake_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _seed_semantic(fake_store)
    before = snapshot(fake_store)
    events = make_events(
        "Met Dana to plan the Q3 launch. Dana moved to marketing; no Kyoto trip in May"
    )
    fake_store.events.put_many(events)
    fake_store.events.claim(10)
    model = ScriptedChatModel(
        {"types": ["episodic", "semantic"]},
        {"operations": [EPISODE]},
        lambda req: _update_dana_delete_kyoto(req.messages[1].content),
    )
    real_delete_row = fake_store._delete_row

    def broken_delete_row(conn: object, record: object) -> None:
        real_delete_row(conn, record)  # type: ignore[arg-type]
        raise OSError("disk full")  # after the insert and the update were written

    monkeypatch.setattr(fake_store, "_delete_row", broken_delete_row)
    with pytest.raises(BatchFailed, match=r"disk full.*nothing was written"):
        loop_for(fake_store, model).process(events)
    assert snapshot(fake_store) == before
    assert fake_store.get(records[0].id) == records[0]
    assert fake_store.events.status_of(events[0].id) == "claimed"
    assert not any(c.actor.startswith("agents:b_") for c in fake_store.history(limit=100))


REWRITTEN = "\n".join(f"Likes colours {n} to {n + 9}." for n in range(0, 120, 10)) + "\nName: Sam"


def test_core_append_and_rewrite_past_ninety_percent(fake_store: MemoryStore) -> None:
    filler = "\n".join(f"Fact {n}: the user likes colour number {n}" for n in range(120))
    block = fake_store.set_core("human", filler[:4600], actor="agents:seed")
    model = ScriptedChatModel(
        {"types": ["core"]},
        {"operations": [{"op": "insert", "label": "human", "value": "Name is Sam"}]},
        {"lines": REWRITTEN.splitlines()},
    )
    report = loop_for(fake_store, model).process(make_events("I'm Sam", source="manual"))
    assert report.llm_calls == 3 and [w[0] for w in report.writes] == ["rewrite"]
    human = fake_store.core_block("human")
    assert human is not None and human.id == block.id
    assert human.value == REWRITTEN
    rewrite_request = model.calls[-1]
    assert rewrite_request.schema is not None
    lines = rewrite_request.schema["properties"]["lines"]
    assert lines["maxItems"] * (lines["items"]["maxLength"] + 1) <= block.limit // 2


def test_core_rewrite_falls_back_to_the_newest_lines(fake_store: MemoryStore) -> None:
    filler = "\n".join(f"Fact {n}: the user likes colour number {n}" for n in range(120))
    fake_store.set_core("human", filler[:4600], actor="agents:seed")
    model = ScriptedChatModel(
        {"types": ["core"]},
        {"operations": [{"op": "insert", "label": "human", "value": "Name is Sam"}]},
        ModelError("rewrite failed"),
    )
    loop_for(fake_store, model).process(make_events("I'm Sam", source="manual"))
    human = fake_store.core_block("human")
    assert human is not None and len(human.value) <= human.limit // 2
    assert human.value.endswith("Name is Sam")


def test_two_lines_for_one_core_block_both_land(fake_store: MemoryStore) -> None:
    model = ScriptedChatModel(
        {"types": ["core"]},
        {"operations": [{"op": "insert", "label": "human", "value": "Name is Sam"},
                        {"op": "insert", "label": "human", "value": "Lives in Lyon"}]},
    )  # fmt: skip
    loop_for(fake_store, model).process(make_events("I'm Sam from Lyon", source="manual"))
    human = fake_store.core_block("human")
    assert isinstance(human, CoreBlock) and human.value == "Name is Sam\nLives in Lyon"


def test_core_lines_are_updated_and_deleted_one_fact_at_a_time(fake_store: MemoryStore) -> None:
    fake_store.set_core("human", "Name is Sam\nLives in Lyon\nLikes tea", actor="agents:seed")
    model = ScriptedChatModel({"types": ["core"]}, lambda req: _core_ops(req.messages[1].content))
    report = loop_for(fake_store, model).process(
        make_events("Sam moved to Paris; no longer likes tea, now drinks coffee", source="manual")
    )
    assert not report.rejected
    human = fake_store.core_block("human")
    assert human is not None and human.value == "Name is Sam\nLives in Paris\nLikes coffee"
    assert len(report.writes) == 1  # three line operations, one write of the block


def test_emptying_a_core_block_is_one_rejected_operation(fake_store: MemoryStore) -> None:
    fake_store.set_core("human", "Likes tea", actor="agents:seed")
    model = ScriptedChatModel(
        {"types": ["core", "episodic"]},
        lambda req: json.dumps({"operations": [{"op": "delete", "id": "m1"}]}),
        {"operations": [EPISODE]},
    )
    events = make_events("Sam no longer likes tea. Met Dana to plan the Q3 launch", source="manual")
    report = loop_for(fake_store, model).process(events)
    assert [w[:2] for w in report.writes] == [("insert", "episodic")]
    [why] = report.rejected
    assert (why.agent, why.operation, why.reason) == ("core", "delete", "store-check")
    assert "needs some text" in why.detail
    human = fake_store.core_block("human")
    assert human is not None and human.value == "Likes tea"


def _core_ops(prompt: str) -> str:
    import json

    alias = {line.split(": [human] ")[1]: line.split(":")[0] for line in prompt.splitlines()
             if ": [human] " in line}  # fmt: skip
    return json.dumps({"operations": [
        {"op": "update", "id": alias["Lives in Lyon"], "value": "Lives in Paris"},
        {"op": "delete", "id": alias["Likes tea"]},
        {"op": "insert", "label": "human", "value": "Likes coffee"},
    ]})  # fmt: skip


def test_a_core_line_changed_meanwhile_is_rejected(fake_store: MemoryStore) -> None:
    fake_store.set_core("human", "Name is Sam\nLives in Lyon", actor="agents:seed")
    agent = CoreAgent()
    shown = agent.candidates(fake_store, [])
    fake_store.set_core("human", "Name is Sam\nLives in Nice")  # the user edited it
    model = ScriptedChatModel(
        {"types": ["core"]},
        {"operations": [{"op": "delete", "id": shown[1].alias}]},
    )
    loop = loop_for(fake_store, model)
    loop.agents[MemoryType.CORE] = _Frozen(shown)
    report = loop.process(make_events("Sam no longer lives in Lyon", source="manual"))
    assert report.writes == [] and [r.reason for r in report.rejected] == ["stale-line"]
    assert "no longer in the human block" in report.rejected[0].detail


class _Frozen(CoreAgent):
    """A core agent whose candidates were taken before the user's edit."""

    def __init__(self, shown: list[Candidate]) -> None:
        self._shown = shown

    def candidates(self, store: MemoryStore, events: Sequence[Event]) -> list[Candidate]:
        return self._shown


def test_high_sensitivity_values_are_never_shown_to_agents(fake_store: MemoryStore) -> None:
    fake_store.add(
        VaultEntry(caption="VPN password", secret_value="s3cr3t-Value", sensitivity="high")
    )
    fake_store.add(VaultEntry(caption="VPN phone", secret_value="555-0100", sensitivity="low"))
    model = ScriptedChatModel({"types": ["knowledge_vault"]}, {"operations": []})
    loop_for(fake_store, model).process(make_events("VPN password and phone updated"))
    prompt = "\n".join(m.content for m in model.calls[1].messages)
    assert "VPN password" in prompt and "555-0100" in prompt
    assert "s3cr3t-Value" not in prompt


def test_writes_and_the_done_mark_land_in_one_transaction(
    fake_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the writes but before the events are marked done would apply the batch
    twice on restart; here the done mark fails instead, and the writes go with it."""
    events = make_events("Met Dana to plan the Q3 launch")
    fake_store.events.put_many(events)
    fake_store.events.claim(10)
    script = ({"types": ["episodic"]}, {"operations": [EPISODE]})

    def crash(conn: object, ids: Sequence[str]) -> None:
        raise OSError("power cut")

    monkeypatch.setattr("storage.store.mark_done", crash)
    with pytest.raises(BatchFailed, match="power cut"):
        loop_for(fake_store, ScriptedChatModel(*script)).process(events)
    assert fake_store.count(MemoryType.EPISODIC) == 0
    assert fake_store.events.status_of(events[0].id) == "claimed"
    monkeypatch.undo()
    report = loop_for(fake_store, ScriptedChatModel(*script)).process(events)  # retried
    assert len(report.writes) == 1
    assert fake_store.count(MemoryType.EPISODIC) == 1
    assert fake_store.events.status_of(events[0].id) == "done"


def test_the_episodic_agent_cannot_delete_what_happened(fake_store: MemoryStore) -> None:
    fake_store.add(EpisodicMemory(actor="user", event_type="meeting", summary=EPISODE["summary"]))
    model = ScriptedChatModel(
        {"types": ["episodic"]}, {"operations": [{"op": "delete", "id": "m1"}]}
    )
    report = loop_for(fake_store, model).process(make_events("Met Dana to plan the Q3 launch"))
    assert report.writes == [] and [r.reason for r in report.rejected] == ["not-allowed"]
    assert report.rejected[0].operation == "delete"
    assert "'delete' is not allowed" in report.rejected[0].detail
    assert fake_store.count(MemoryType.EPISODIC) == 1
    schema = EpisodicAgent().request(make_events("x"), []).schema
    assert "delete" not in str(schema)


def test_news_from_another_time_is_a_new_episode_not_a_rewrite(fake_store: MemoryStore) -> None:
    from datetime import timedelta

    [event] = make_events("Met Dana again to plan the Q3 launch")
    old = fake_store.add(
        EpisodicMemory(actor="user", event_type="meeting", summary="Met Dana about the launch",
                       occurred_at=event.occurred_at - timedelta(days=3), provenance=("old",))
    )  # fmt: skip
    update = {"op": "update", "id": "m1", "actor": "user", "event_type": "meeting",
              "summary": "Met Dana again to plan the Q3 launch"}  # fmt: skip
    model = ScriptedChatModel({"types": ["episodic"]}, {"operations": [update]})
    report = loop_for(fake_store, model).process([event])
    assert [w[:2] for w in report.writes] == [("insert", "episodic")]
    assert fake_store.get(old.id) == old  # untouched, with its own provenance
    assert fake_store.count(MemoryType.EPISODIC) == 2
    merge = {"op": "merge", "ids": ["m1", "m2"], "actor": "user", "event_type": "meeting",
             "summary": "Met Dana again to plan the Q3 launch"}  # fmt: skip
    model = ScriptedChatModel({"types": ["episodic"]}, {"operations": [merge]})
    report = loop_for(fake_store, model).process(make_events("Dana: Q3 launch plan, again"))
    assert report.writes == [] and [r.reason for r in report.rejected] == ["different-time"]
    assert "episodes of different times" in report.rejected[0].detail


@pytest.mark.real
def test_a_batch_the_vector_index_refuses_is_committed_once_and_done(engram_home: Path) -> None:
    """The SQLite commit made, a failing Chroma is a warning: the batch is not failed (its
    events would be retried and its memories written again), and its rows wait for repair."""
    store, index = open_failing(engram_home)
    try:
        events = make_events("Dana leads the marketing team now")
        store.events.put_many(events)
        store.events.claim(10)
        model = ScriptedChatModel(
            {"types": ["semantic"]},
            {"operations": [{"op": "insert", "name": "Dana", "summary": "Dana leads marketing"}]},
        )
        report = loop_for(store, model).process(events)
        [(op, kind, memory_id)] = report.writes
        assert (op, kind) == ("insert", "semantic") and index.failed == 1
        [warning] = report.warnings
        assert "No space left on device" in warning
        assert store.events.status_of(events[0].id) == "done"
        assert [r.id for r in store.browse(MemoryType.SEMANTIC)] == [memory_id]
        assert store.stats()["unindexed"] == 1
        index.failing = False
        assert store.repair_index() == 1
        [hit] = store.search("who leads marketing", types=[MemoryType.SEMANTIC])
        assert hit.record.id == memory_id and hit.ranks.get("vector") == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("speakers", "actor"),
    [((None, None), "user"), (("Dana", "Dana"), "Dana"), (("Dana", "Sam"), "the model's")],
)
def test_the_code_says_who_acted_when_the_batch_knows(
    fake_store: MemoryStore, speakers: tuple[str | None, str | None], actor: str
) -> None:
    """Screen reads are the user's doing and one speaker's messages are theirs, whatever the
    model writes; only when several speak does its actor stand."""
    model = ScriptedChatModel(
        {"types": ["episodic"]},
        {"operations": [{**EPISODE, "actor": "the model's"}]},
    )
    events = [
        Event(text="Met Dana to plan the Q3 launch", source="screen", app="Zoom")
        if who is None
        else Event(
            text="Met Dana to plan the Q3 launch", source="import", metadata={"speaker": who}
        )
        for who in speakers
    ]
    loop_for(fake_store, model).process(events)
    [episode] = fake_store.browse(MemoryType.EPISODIC)
    assert isinstance(episode, EpisodicMemory) and episode.actor == actor
