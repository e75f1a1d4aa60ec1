"""No prompt shows a high-sensitivity vault value, whichever memory, event, turn or question
carries it: the chat agent (context, history, topic), the meta manager and the memory agents."""

from __future__ import annotations

import re

from agents.chat import ChatAgent, ChatConfig
from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import Message
from agents.loop import MemoryLoop
from agents.memory_agent import CallOptions
from agents.retrieval import build_context
from storage.records import EpisodicMemory, Event, SemanticMemory, VaultEntry
from storage.store import MemoryStore

SECRET = "7391-4482-DOOR"
_ANY_PART = re.compile(r"7391|4482", re.IGNORECASE)


def _prompt_texts(model: ScriptedChatModel) -> list[str]:
    return [m.content for call in model.calls for m in call.messages]


def test_a_secret_quoted_in_a_memory_or_an_event_never_reaches_a_chat_prompt(
    fake_store: MemoryStore,
) -> None:
    fake_store.add(
        EpisodicMemory(summary="Opened the lab door", details=f"typed {SECRET} at the lab door")
    )
    fake_store.events.put(Event(source="screen", text=f"Lab door panel: code {SECRET}"))
    fake_store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))
    fake_store.add(
        VaultEntry(caption="Lab door room", secret_value="Room B-214", sensitivity="low")
    )
    model = ScriptedChatModel({"topic": "lab door code 7391 4482"}, "It is withheld [M1].")
    agent = ChatAgent(fake_store, model, ChatConfig(context_tokens=2000, topic_from_model=True))
    history = [Message("user", "the lab door code is 7391 4482 door"), Message("assistant", "ok")]
    result = agent.ask("What is the lab door code? Is it 7391-4482-door?", history).result
    texts = _prompt_texts(model)
    assert len(model.calls) == 2 and result.context.items  # the topic call and the answer
    assert [t for t in texts if _ANY_PART.search(t)] == []
    assert any(VaultEntry.WITHHELD in t for t in texts)
    assert any("Room B-214" in t for t in texts)  # a low-sensitivity value may be shown
    assert "7391" not in fake_store.events.get(result.event_id or "").text  # the turn is stored


def test_the_context_withholds_every_secret_of_the_store_not_only_those_retrieved(
    fake_store: MemoryStore,
) -> None:
    fake_store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))
    quoting = SemanticMemory(name="Lab", summary=f"The door code is {SECRET.lower()}")  # unstored
    context = build_context("lab door", [(quoting, 1.0)], [], 500, scrub=fake_store.secrets().scrub)
    assert "7391" not in context.text and VaultEntry.WITHHELD in context.text
    assert "7391" in build_context("lab door", [(quoting, 1.0)], [], 500).text  # none retrieved


def test_memory_agent_prompts_never_show_a_secret_learnt_while_the_batch_waited(
    fake_store: MemoryStore,
) -> None:
    fake_store.add(EpisodicMemory(summary="Lab door visit", details=f"typed {SECRET}"))
    fake_store.events.put(Event(source="screen", app="xterm", text=f"Lab door code: {SECRET}"))
    events = fake_store.events.claim(10)  # the batch holds the text as it was read
    assert SECRET in events[0].text
    fake_store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))
    model = ScriptedChatModel(
        {"types": ["episodic", "knowledge_vault"]},
        {"operations": [{"op": "noop"}]},
        {"operations": [{"op": "noop"}]},
    )
    MemoryLoop(fake_store, model, options=CallOptions(timeout_s=5)).process(events)
    texts = _prompt_texts(model)
    assert len(model.calls) == 3
    assert [t for t in texts if _ANY_PART.search(t)] == []
    assert all(VaultEntry.WITHHELD in t for t in texts if "Lab door code:" in t)
