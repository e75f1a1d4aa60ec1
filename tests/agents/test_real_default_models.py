"""The default pairing (app/llm_config.py: Qwen 1.5B answers, Qwen 0.5B runs the memory
agents), wired as the app wires it: the agent loop, every agent's schema and a chat answer
with a citation. Structure only, never wording; one small batch each, so the file stays short.
Skipped, saying so, where set-up has not assembled the Qwen files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.chat import ChatAgent, ChatConfig
from agents.llm.port import ChatModel
from agents.loop import MemoryLoop, default_agents
from agents.memory_agent import CallOptions, MemoryAgent
from agents.operations import REASONS, Insert, Merge, Update
from app.bootstrap import make_agent_model, make_chat_model
from app.llm_config import LLMSettings
from app.model_files import ModelFileError
from app.settings import Settings
from storage.records import EpisodicMemory, SemanticMemory
from storage.store import MemoryStore
from tests.agents.conftest import make_events

pytestmark = pytest.mark.real
#: Generous: on a shared 2-core machine a call can be ten times slower than alone.
SLOW = CallOptions(timeout_s=900, bound_strings=False)


@pytest.fixture(scope="module")
def default_models() -> Iterator[tuple[ChatModel, ChatModel]]:
    settings = Settings(llm=LLMSettings(n_ctx=2048, unload_after_min=0))
    try:
        chat = make_chat_model(settings)
    except ModelFileError as exc:
        pytest.skip(f"the default chat model is not assembled: {exc}")
    try:
        agents = make_agent_model(settings, chat)
    except ModelFileError as exc:
        chat.close()
        pytest.skip(f"the default agents' model is not assembled: {exc}")
    assert "1.5B" in chat.info.name and "0.5B" in agents.info.name
    yield chat, agents
    agents.close()
    chat.close()


def test_the_default_agents_model_runs_the_loop(
    fake_store: MemoryStore, default_models: tuple[ChatModel, ChatModel]
) -> None:
    _, model = default_models
    loop = MemoryLoop(fake_store, model, options=SLOW)
    events = make_events(
        "Chat with Dana: I moved to Porto in May. My brother Ben works at Acme in Lyon.",
        "Calendar: 10:00 meeting with Dana about the hospital rota for December.",
    )
    report = loop.process(events)
    assert report.types and report.llm_calls == 1 + len(report.types)
    for op, type_name, memory_id in report.writes:
        record = fake_store.get(memory_id)
        assert record.kind.value == type_name and record.index_text().strip()
        assert record.provenance and set(record.provenance) <= {e.id for e in events}
        assert fake_store.history(memory_id)[0].actor == f"agents:{report.batch_id}", op
    assert all(why.reason in REASONS for why in report.rejected)


@pytest.mark.parametrize("agent", list(default_agents().values()), ids=lambda a: a.name)
def test_the_default_agents_model_fills_each_agent_schema(
    fake_store: MemoryStore, default_models: tuple[ChatModel, ChatModel], agent: MemoryAgent
) -> None:
    _, model = default_models
    fake_store.add(SemanticMemory(name="VPN", summary="The office VPN is run by IT"))
    events = make_events(
        "Saved the office VPN password 'Blue-42-Kite' and the IT desk phone 555-0199.",
        "To connect: 1. open the VPN app 2. pick Lyon 3. paste the password.",
    )
    candidates = agent.candidates(fake_store, events)
    proposal = agent.propose(model, events, candidates, options=SLOW)  # parses, first time
    shown = {c.target for c in candidates}
    for op in proposal.operations:
        assert op.op in agent.kinds and op.memory_type is agent.memory_type
        if isinstance(op, Insert | Update | Merge):
            specs = agent.insert_fields() if isinstance(op, Insert) else agent.fields
            assert set(op.fields) == {s.name for s in specs}
        if isinstance(op, Update):
            assert op.id in shown
        if isinstance(op, Merge):
            assert set(op.ids) <= shown


def test_the_default_chat_model_answers_with_a_citation(
    fake_store: MemoryStore, default_models: tuple[ChatModel, ChatModel]
) -> None:
    chat, _ = default_models
    fake_store.add_many(
        [
            EpisodicMemory(summary="Booked a dentist appointment for Friday at 3pm"),
            SemanticMemory(name="Cabin", summary="The family cabin is at Lake Annecy"),
        ]
    )
    agent = ChatAgent(fake_store, chat, ChatConfig(answer_tokens=48))
    reply = agent.ask("Where is the family cabin?")
    chunks = list(reply)
    result = reply.result
    assert chunks and result.answer and result.ttft_ms is not None
    shown = {i.record.id for i in result.context.items}
    assert result.citations and {c.memory_id for c in result.citations} <= shown
