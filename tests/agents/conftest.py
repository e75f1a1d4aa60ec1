"""Fixtures for the agents: the scripted model, events, and (session-wide, loaded once) the
embedded SmolLM2 through llama.cpp and a real `python -m llama_cpp.server` serving it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import ChatModel
from storage.records import Event


@pytest.fixture
def scripted() -> ScriptedChatModel:
    return ScriptedChatModel()


def make_events(
    *texts: str,
    source: Literal["screen", "chat", "import", "manual"] = "screen",
    app: str = "Firefox",
) -> list[Event]:
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    return [
        Event(
            text=t,
            source=source,
            app=app,
            occurred_at=start + timedelta(minutes=n),
        )
        for n, t in enumerate(texts)
    ]


@pytest.fixture(scope="session")
def llama_model() -> Iterator[ChatModel]:
    """The embedded SmolLM2-135M on 2 threads, shared by every real-model test, behind the
    scheduler as the app wires it."""
    from agents.llm.llamacpp import LlamaCppModel
    from agents.llm.scheduler import ScheduledChatModel

    model = ScheduledChatModel(LlamaCppModel(n_ctx=2048, threads=2))
    yield model
    model.close()


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """A real llama_cpp.server on 127.0.0.1 serving the embedded model; yields its base URL."""
    from tests.agents.llama_server import running_server

    with running_server() as url:
        yield url


def aliases_in(prompt: str) -> dict[str, str]:
    """The alias a memory agent's prompt shows for each memory ("m2"), by the memory's name:
    a scripted model answers with these, as a real one reading the prompt would."""
    alias = {}
    for line in prompt.splitlines():
        if line.startswith("m") and ": " in line:
            key, text = line.split(": ", 1)
            alias[text.split(":")[0]] = key
    return alias
