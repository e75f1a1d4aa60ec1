"""The chat agent on the scripted model: retrieval across types, the prompt it builds,
citations, cancellation, the chat turn recorded as an event, the "nothing found" decision made
from retrieval, and answers freed of "The answer is:"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.chat import (
    NOTHING_FOUND,
    ChatAgent,
    ChatConfig,
    drop_opener,
    find_citations,
    support,
)
from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import Message, approx_tokens
from agents.retrieval import derive_topic
from storage.errors import InvalidText
from storage.records import (
    EpisodicMemory,
    MemoryType,
    ProceduralMemory,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)
from storage.store import MemoryStore


@pytest.fixture
def seeded(fake_store: MemoryStore) -> MemoryStore:
    fake_store.set_core("human", "Name is Sam\nWorks on the Engram project")
    fake_store.add_many(
        [
            EpisodicMemory(
                summary="Sam booked a train to Lyon for the conference",
                occurred_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            ),
            SemanticMemory(name="Lyon conference", summary="The conference in Lyon is in May"),
            ProceduralMemory(summary="Book a train", steps=("open the site", "pick Lyon")),
            ResourceMemory(title="Lyon itinerary", content="Train to Lyon at 8:05, platform 4"),
            VaultEntry(caption="Train booking password", secret_value="tr41n-S3cret",
                       sensitivity="high"),
            VaultEntry(caption="Train booking reference", secret_value="REF-99812",
                       sensitivity="low"),
        ]
    )  # fmt: skip
    for n in range(12):
        fake_store.add(SemanticMemory(name=f"Lyon fact {n}", summary=f"Lyon detail number {n}"))
    return fake_store


def test_retrieval_spans_types_with_caps_and_tagged_sections(seeded: MemoryStore) -> None:
    model = ScriptedChatModel("You take the train to Lyon [M1].")
    agent = ChatAgent(seeded, model, ChatConfig(context_tokens=2000))
    result = agent.ask("When is my train to Lyon?").result
    kinds = [item.record.kind for item in result.context.items]
    assert kinds.count(MemoryType.SEMANTIC) <= 4
    assert {MemoryType.EPISODIC, MemoryType.RESOURCE, MemoryType.KNOWLEDGE_VAULT} <= set(kinds)
    [system, user] = model.calls[0].messages
    # core memory is part of the fixed prefix (system prompt), the retrieved sections are not
    assert system.role == "system" and "<core_memory>" in system.content
    assert "Name is Sam" in system.content and "Name is Sam" not in user.content
    for tag in ("<episodic_memory>", "<semantic_memory>", "<knowledge_vault_memory>", "[M1]"):
        assert tag in user.content
    assert "</" not in user.content  # a memory section runs to the next: no closing tags
    assert user.content.endswith("Question: When is my train to Lyon?")
    assert [item.tag for item in result.context.items] == [
        f"M{n}" for n in range(1, len(kinds) + 1)
    ]


def test_high_sensitivity_vault_values_never_reach_the_prompt(seeded: MemoryStore) -> None:
    seeded.add(EpisodicMemory(summary="Typed tr41n-S3cret into the booking site"))
    seeded.append_core("human", "Train site login: tr41n-S3cret")  # a core block too
    model = ScriptedChatModel()
    agent = ChatAgent(seeded, model, ChatConfig(context_tokens=2000))
    history = [Message("user", "my password is tr41n-S3cret right?"), Message("assistant", "ok")]
    result = agent.ask("What is my train booking password and reference?", history).result
    assert {i.record.kind for i in result.context.items} >= {MemoryType.KNOWLEDGE_VAULT}
    prompt = "\n".join(m.content for m in model.calls[0].messages)
    assert "Train booking password" in prompt and "REF-99812" in prompt
    assert "tr41n-S3cret" not in prompt


def test_the_prompt_prefix_is_the_same_for_every_question_with_or_without_history(
    seeded: MemoryStore,
) -> None:
    # llama.cpp reuses the evaluation of the longest prefix a prompt shares with the previous
    # one: system prompt and core memory must come first and not change between questions.
    model = ScriptedChatModel()
    agent = ChatAgent(seeded, model, ChatConfig(context_tokens=500, record_turns=False))
    assert agent.ask("When is my train to Lyon?").result.answer
    history = [Message("user", "When is my train?"), Message("assistant", "Friday.")]
    assert agent.ask("What is the itinerary?", history).result.answer
    first, second = (call.messages for call in model.calls)
    assert first[0] == second[0] and "Name is Sam" in first[0].content
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert first[1].content != second[-1].content  # the retrieved part is new each time


def test_warm_evaluates_the_fixed_prefix_ahead_of_the_first_question(
    seeded: MemoryStore,
) -> None:
    model = ScriptedChatModel(caches_prefix=True)
    agent = ChatAgent(seeded, model, ChatConfig(record_turns=False))
    assert agent.warm()
    [warm] = model.calls
    assert warm.background and warm.max_tokens == 1  # a question asked meanwhile goes first
    assert agent.ask("When is my train to Lyon?").result.answer
    assert model.calls[1].messages[0] == warm.messages[0]  # the very prefix the question uses
    # a model that keeps no prefix gets no call for it
    plain = ScriptedChatModel()
    assert not ChatAgent(seeded, plain).warm() and plain.calls == []


def test_prompt_stays_within_the_budget(seeded: MemoryStore) -> None:
    model = ScriptedChatModel()
    agent = ChatAgent(seeded, model, ChatConfig(context_tokens=60))
    result = agent.ask("Lyon").result
    assert approx_tokens(result.context.text) <= 60 + 20  # + section tags
    assert result.context.dropped > 0


def test_explicit_citations_resolve_to_memory_ids(seeded: MemoryStore) -> None:
    model = ScriptedChatModel("The train leaves at 8:05 [M2], booked earlier [M1]. And [M99].")
    reply = ChatAgent(seeded, model).ask("When does my train leave?")
    streamed = "".join(reply)
    result = reply.result
    assert result.answer == streamed.strip() and result.tokens > 1
    by_tag = {i.tag: i.record.id for i in result.context.items}
    assert [c.memory_id for c in result.citations] == [by_tag["M2"], by_tag["M1"]]
    assert all(c.explicit for c in result.citations)
    assert result.ttft_ms is not None and result.ttft_ms >= result.context.retrieval_ms


def test_citations_are_inferred_from_shared_words_when_no_tag_is_given(
    seeded: MemoryStore,
) -> None:
    items = ChatAgent(seeded, ScriptedChatModel()).ask("train Lyon").result.context.items
    answer = "You booked a train to Lyon for the conference."
    cited = find_citations(answer, items, "train Lyon")
    assert cited and not any(c.explicit for c in cited)
    assert any(c.memory_type is MemoryType.EPISODIC for c in cited)
    # Words the question already had are no evidence; a time is.
    assert not find_citations("The train to Lyon.", items, "train Lyon")
    resource = [i for i in items if i.record.kind is MemoryType.RESOURCE]
    assert find_citations("At 8:05.", resource, "When does the train leave?")


def test_each_turn_becomes_an_event(seeded: MemoryStore) -> None:
    model = ScriptedChatModel("Lyon, in May [M1].")
    result = ChatAgent(seeded, model).ask("Where is the conference?").result
    assert result.event_id is not None
    event = seeded.events.get(result.event_id)
    assert event.source == "chat"
    assert "Where is the conference?" in event.text and "Lyon, in May" in event.text
    assert event.metadata["cited"] == ",".join(c.memory_id for c in result.citations)
    assert seeded.events.counts()["pending"] == 1


def test_cancel_stops_the_stream_and_keeps_the_partial_turn(seeded: MemoryStore) -> None:
    model = ScriptedChatModel("one two three four five six seven eight nine ten")
    reply = ChatAgent(seeded, model).ask("Count the Lyon facts for me")
    received = []
    for chunk in reply:
        received.append(chunk)
        if len(received) == 3:
            reply.cancel()
    result = reply.result
    assert result.cancelled and len(received) <= 4
    assert result.answer.startswith("one two three")
    assert result.event_id and seeded.events.get(result.event_id).metadata["cancelled"] is True


def test_topic_uses_the_previous_user_turn() -> None:
    history = [Message("user", "Tell me about the Lyon conference"), Message("assistant", "…")]
    topic = derive_topic("when is it?", history)
    assert topic.startswith("when is it?") and "Lyon" in topic and "conference" in topic


def test_topic_can_come_from_the_model(seeded: MemoryStore) -> None:
    model = ScriptedChatModel({"topic": "Lyon conference date"}, "In May [M1].")
    agent = ChatAgent(seeded, model, ChatConfig(topic_from_model=True))
    result = agent.ask("when is it?", [Message("user", "the conference?")]).result
    assert result.context.topic == "Lyon conference date"
    assert model.calls[0].schema is not None and not model.calls[0].background


def test_empty_question_is_refused(seeded: MemoryStore) -> None:
    with pytest.raises(InvalidText):
        ChatAgent(seeded, ScriptedChatModel()).ask("   ")


def test_small_context_window_shrinks_the_memory_budget(seeded: MemoryStore) -> None:
    agent = ChatAgent(seeded, ScriptedChatModel(n_ctx=600), ChatConfig(context_tokens=4000))
    assert agent.budget("question") <= 600 - agent.config.answer_tokens


def test_events_are_retrieved_beside_memories_and_their_citations_resolve(
    seeded: MemoryStore,
) -> None:
    from storage.records import Event

    event = seeded.events.put(
        Event(source="screen", app="xterm", text="Meeting with Dana, Room: Aurora, Friday 3pm")
    )
    model = ScriptedChatModel("You meet Dana in Aurora [M1].")
    config = ChatConfig(record_turns=False)  # the same retrieval for both questions
    result = ChatAgent(seeded, model, config).ask("Where do I meet Dana?").result
    prompt = model.calls[0].messages[-1].content
    assert "<seen_events>" in prompt and "seen on screen in xterm" in prompt
    assert "</seen_events>" in prompt  # screen text stays quoted: its section is closed
    [item] = [i for i in result.context.items if i.record.id == event.id]
    assert f"[{item.tag}] (seen on screen in xterm" in prompt
    cited = (
        ChatAgent(seeded, ScriptedChatModel(f"Aurora [{item.tag}]."), config)
        .ask("Where do I meet Dana?")
        .result.citations
    )
    assert [(c.memory_id, c.memory_type) for c in cited] == [(event.id, "event")]


def test_the_answer_is_opener_is_dropped_from_the_stream(seeded: MemoryStore) -> None:
    model = ScriptedChatModel(
        "The answer is: in May [M2].",
        "Answer: 8:05 [M1]",
        "The answer to this question is: Lyon [M1]",
        "The train leaves at 8:05 [M1]",
    )
    agent = ChatAgent(seeded, model, ChatConfig(record_turns=False))
    reply = agent.ask("When is the Lyon conference?")
    streamed = "".join(reply)
    assert streamed == reply.result.answer == "In May [M2]."
    assert reply.result.citations and reply.result.tokens > 1
    assert agent.ask("When does the Lyon train leave?").result.answer == "8:05 [M1]"
    assert agent.ask("Where is the conference?").result.answer == "Lyon [M1]"
    # an answer that only starts like an opener streams unchanged
    assert "".join(agent.ask("When does the Lyon train leave?")) == "The train leaves at 8:05 [M1]"


def test_drop_opener_leaves_other_answers_alone() -> None:
    assert drop_opener("The answer is 7 May 2023.") == "7 May 2023."
    assert drop_opener("the short answer is: no") == "No"
    assert drop_opener("The answer to this question is: 8 May 2023.") == "8 May 2023."
    for text in ("The answers vary by day.", "Answered on Monday.", "The train at 8:05", ""):
        assert drop_opener(text) == text


def test_nothing_relevant_is_said_without_asking_the_model(seeded: MemoryStore) -> None:
    model = ScriptedChatModel(default=lambda _r: "Guessing from Lyon [M1].")
    agent = ChatAgent(seeded, model)
    result = agent.ask("Who is my dentist?").result
    assert result.answer == NOTHING_FOUND and not result.citations
    assert model.calls == [] and result.ttft_ms is not None
    assert result.event_id and NOTHING_FOUND in seeded.events.get(result.event_id).text
    # a question the memories speak to is answered by the model
    assert agent.ask("When is the Lyon conference?").result.answer == "Guessing from Lyon [M1]."
    assert len(model.calls) == 1


def test_support_is_the_best_shown_memory_share_of_the_question(seeded: MemoryStore) -> None:
    agent = ChatAgent(seeded, ScriptedChatModel(), ChatConfig(context_tokens=2000))
    context = agent.context_for("Lyon train platform", ())
    assert support("Lyon train platform", context) == 1.0  # the itinerary has all three
    assert support("Lyon dentist appointment", context) == pytest.approx(1 / 3)
    assert support("dentist appointment", context) == 0.0
    assert support("hi there", context) == 1.0  # nothing to look up: the model answers
    # core memory counts: "what is my name" is answered from the human block
    name = agent.context_for("Sam's name", ())
    assert support("Sam's name", name) == 1.0
