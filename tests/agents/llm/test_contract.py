"""The ChatModel contract, run against the scripted fake, the embedded SmolLM2 through
llama.cpp, and the same model behind a real llama_cpp.server (the OpenAI-compatible backend)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from agents.llm.port import (
    Cancelled,
    ChatModel,
    Message,
    ModelInfo,
    Request,
    complete,
    complete_json,
    messages,
)

BACKENDS = [
    "scripted",
    pytest.param("llamacpp", marks=pytest.mark.real),
    pytest.param("http", marks=pytest.mark.real),
]


class Pet(BaseModel):
    name: str = Field(max_length=20)
    kind: Literal["cat", "dog", "fish"]


PET_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "kind": {"type": "string", "enum": ["cat", "dog", "fish"]},
    },
    "required": ["name", "kind"],
    "additionalProperties": False,
}


@pytest.fixture(params=BACKENDS)
def model(request: pytest.FixtureRequest) -> Iterator[ChatModel]:
    if request.param == "scripted":
        from agents.llm.fakes import ScriptedChatModel

        yield ScriptedChatModel()  # unscripted: its default replies must honour the contract
    elif request.param == "llamacpp":
        yield request.getfixturevalue("llama_model")
    else:
        from agents.llm.openai_compat import OpenAICompatibleModel

        url = request.getfixturevalue("llama_server")
        yield OpenAICompatibleModel(url, n_ctx=2048, timeout_s=60)


def test_streams_text_in_chunks(model: ChatModel) -> None:
    question = "What is the capital of France?"
    request = Request(messages("You answer briefly.", question), max_tokens=24)
    chunks = list(model.stream(request))
    assert chunks and all(isinstance(c, str) for c in chunks)
    assert "".join(chunks).strip()


def test_max_tokens_bounds_the_reply(model: ChatModel) -> None:
    request = Request(messages("You count.", "Count from one to fifty in words."), max_tokens=5)
    assert 1 <= len(list(model.stream(request))) <= 5


def test_schema_output_parses_and_validates(model: ChatModel) -> None:
    request = Request(
        messages("You reply in JSON.", "Invent a pet: give its name and kind."),
        schema=PET_SCHEMA,
        max_tokens=64,
    )
    pet = Pet.model_validate(complete_json(model, request, timeout_s=60))
    assert pet.kind in ("cat", "dog", "fish")


def test_cancel_stops_between_tokens(model: ChatModel) -> None:
    cancel = threading.Event()
    request = Request(messages("You count.", "Count from one to fifty in words."), max_tokens=64)
    received = []
    with pytest.raises(Cancelled):
        for chunk in model.stream(request, cancel):
            received.append(chunk)
            cancel.set()
    assert 1 <= len(received) <= 3


def test_cancelled_before_start_raises(model: ChatModel) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        complete(model, Request(messages("s", "hello"), max_tokens=4), cancel)


def test_abandoned_stream_leaves_the_model_usable(model: ChatModel) -> None:
    stream = model.stream(Request(messages("You count.", "Count to twenty."), max_tokens=32))
    next(iter(stream))
    close = getattr(stream, "close", None)
    if close:
        close()
    assert complete(model, Request(messages("Be brief.", "Say hi."), max_tokens=8)).strip()


@pytest.fixture(params=BACKENDS)
def small_context_model(request: pytest.FixtureRequest) -> Iterator[ChatModel]:
    """Each backend with a 512-token window, so overflowing it is cheap to test."""
    if request.param == "scripted":
        from agents.llm.fakes import ScriptedChatModel

        yield ScriptedChatModel(n_ctx=512)
    elif request.param == "llamacpp":
        from agents.llm.llamacpp import LlamaCppModel

        model = LlamaCppModel(n_ctx=512, threads=2)
        yield model
        model.close()
    else:
        from agents.llm.openai_compat import OpenAICompatibleModel

        url = request.getfixturevalue("llama_server")
        yield OpenAICompatibleModel(url, n_ctx=512, timeout_s=60)


def test_prompt_longer_than_the_context_is_trimmed_not_fatal(
    small_context_model: ChatModel,
) -> None:
    filler = "The quick brown fox jumps over the lazy dog. " * 1500  # ~15k tokens
    request = Request(
        (Message("system", "Answer briefly."), Message("user", filler + "\nWhat animal jumps?")),
        max_tokens=8,
    )
    assert isinstance(complete(small_context_model, request, timeout_s=120), str)


def test_info_describes_the_model(model: ChatModel) -> None:
    info = model.info
    assert isinstance(info, ModelInfo)
    assert info.name and info.backend and info.n_ctx > 0
    json.dumps(info.details)  # serialisable for `engram doctor --json`
