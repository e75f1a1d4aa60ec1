"""The ChatModel contract, run against the scripted fake, the embedded SmolLM2 through
llama.cpp, and the same model behind a real llama_cpp.server (the OpenAI-compatible backend),
each behind the scheduler as the app wires it: the port's promises, chat before memory work
included, hold whichever backend runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from agents.llm.port import (
    Cancelled,
    Message,
    ModelInfo,
    Preempted,
    Request,
    complete,
    complete_json,
    messages,
)
from agents.llm.scheduler import ScheduledChatModel

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
def model(request: pytest.FixtureRequest) -> Iterator[ScheduledChatModel]:
    if request.param == "scripted":
        from agents.llm.fakes import ScriptedChatModel

        # unscripted: its default replies must honour the contract
        yield ScheduledChatModel(ScriptedChatModel())
    elif request.param == "llamacpp":
        yield request.getfixturevalue("llama_model")  # already scheduled, shared by the session
    else:
        from agents.llm.openai_compat import OpenAICompatibleModel

        url = request.getfixturevalue("llama_server")
        yield ScheduledChatModel(OpenAICompatibleModel(url, n_ctx=2048, timeout_s=60))


def test_streams_text_in_chunks(model: ScheduledChatModel) -> None:
    question = "What is the capital of France?"
    request = Request(messages("You answer briefly.", question), max_tokens=24)
    chunks = list(model.stream(request))
    assert chunks and all(isinstance(c, str) for c in chunks)
    assert "".join(chunks).strip()


def test_max_tokens_bounds_the_reply(model: ScheduledChatModel) -> None:
    request = Request(messages("You count.", "Count from one to fifty in words."), max_tokens=5)
    assert 1 <= len(list(model.stream(request))) <= 5


def test_schema_output_parses_and_validates(model: ScheduledChatModel) -> None:
    request = Request(
        messages("You reply in JSON.", "Invent a pet: give its name and kind."),
        schema=PET_SCHEMA,
        max_tokens=64,
    )
    pet = Pet.model_validate(complete_json(model, request, timeout_s=60))
    assert pet.kind in ("cat", "dog", "fish")


def test_cancel_stops_between_tokens(model: ScheduledChatModel) -> None:
    cancel = threading.Event()
    request = Request(messages("You count.", "Count from one to fifty in words."), max_tokens=64)
    received = []
    with pytest.raises(Cancelled):
        for chunk in model.stream(request, cancel):
            received.append(chunk)
            cancel.set()
    assert 1 <= len(received) <= 3


def test_cancelled_before_start_raises(model: ScheduledChatModel) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        complete(model, Request(messages("s", "hello"), max_tokens=4), cancel)


def test_abandoned_stream_leaves_the_model_usable(model: ScheduledChatModel) -> None:
    stream = model.stream(Request(messages("You count.", "Count to twenty."), max_tokens=32))
    next(iter(stream))
    close = getattr(stream, "close", None)
    if close:
        close()
    assert complete(model, Request(messages("Be brief.", "Say hi."), max_tokens=8)).strip()


@pytest.fixture(params=BACKENDS)
def small_context_model(request: pytest.FixtureRequest) -> Iterator[ScheduledChatModel]:
    """Each backend with a 512-token window, so overflowing it is cheap to test."""
    if request.param == "scripted":
        from agents.llm.fakes import ScriptedChatModel

        yield ScheduledChatModel(ScriptedChatModel(n_ctx=512))
    elif request.param == "llamacpp":
        from agents.llm.llamacpp import LlamaCppModel

        model = ScheduledChatModel(LlamaCppModel(n_ctx=512, threads=2))
        yield model
        model.close()
    else:
        from agents.llm.openai_compat import OpenAICompatibleModel

        url = request.getfixturevalue("llama_server")
        yield ScheduledChatModel(OpenAICompatibleModel(url, n_ctx=512, timeout_s=60))


def test_prompt_longer_than_the_context_is_trimmed_not_fatal(
    small_context_model: ScheduledChatModel,
) -> None:
    filler = "The quick brown fox jumps over the lazy dog. " * 1500  # ~15k tokens
    request = Request(
        (Message("system", "Answer briefly."), Message("user", filler + "\nWhat animal jumps?")),
        max_tokens=8,
    )
    assert isinstance(complete(small_context_model, request, timeout_s=120), str)


def test_info_describes_the_model(model: ScheduledChatModel) -> None:
    info = model.info
    assert isinstance(info, ModelInfo)
    assert info.name and info.backend and info.n_ctx > 0
    json.dumps(info.details)  # serialisable for `engram doctor --json`
    flags = info.capabilities()
    assert set(flags) == {"supports_schema", "preemptible", "gpu_offload", "caches_prefix"}
    assert all(isinstance(v, bool) for v in flags.values())
    # every backend here constrains JSON by schema, and the scheduler makes each preemptible
    assert info.supports_schema and info.preemptible
    assert model.inner.info.supports_schema and not model.inner.info.preemptible


# ----- chat before memory work ---------------------------------------------------------------

COUNTING = messages("You count.", "Count from one to fifty in words.")
HELLO = Request(messages("Be brief.", "Say hello."), max_tokens=8)
PET_REQUEST = Request(
    messages("You reply in JSON.", "Invent a pet: give its name and kind."),
    schema=PET_SCHEMA,
    max_tokens=64,
)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="caller") as executor:
        yield executor


def eventually(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def test_chat_preempts_background_work_in_progress(
    model: ScheduledChatModel, pool: ThreadPoolExecutor
) -> None:
    background = Request(PET_REQUEST.messages, PET_REQUEST.schema, max_tokens=64, background=True)
    memory_work = model.stream(background)
    assert next(memory_work)  # the memory work holds the model
    chat = pool.submit(complete, model, HELLO, None, 120)
    eventually(lambda: model.queued() == (1, 0))
    with pytest.raises(Preempted):
        for _ in memory_work:
            pass
    assert chat.result(timeout=120).strip()
    # asked again (as the memory agents do), the memory work gets a whole answer
    pet = Pet.model_validate(complete_json(model, background, timeout_s=120))
    assert pet.kind in ("cat", "dog", "fish")


def test_queued_chat_goes_before_queued_background(
    model: ScheduledChatModel, pool: ThreadPoolExecutor
) -> None:
    order: list[str] = []

    def run(name: str, request: Request) -> str:
        parts: list[str] = []
        for chunk in model.stream(request):
            if not parts:
                order.append(name)  # one generation at a time: first chunks show the order
            parts.append(chunk)
        return "".join(parts)

    holder = model.stream(Request(COUNTING, max_tokens=16))  # a chat in progress
    assert next(holder)
    background = pool.submit(run, "background", Request(COUNTING, max_tokens=8, background=True))
    eventually(lambda: model.queued() == (0, 1))
    chat = pool.submit(run, "chat", HELLO)
    eventually(lambda: model.queued() == (1, 1))
    list(holder)  # a chat in progress is not preempted by another chat
    assert chat.result(timeout=120).strip()
    assert background.result(timeout=120).strip()  # it ran afterwards, to the end
    assert order == ["chat", "background"]
    assert model.queued() == (0, 0)


def test_cancel_while_queued(model: ScheduledChatModel, pool: ThreadPoolExecutor) -> None:
    holder = model.stream(Request(COUNTING, max_tokens=16))
    assert next(holder)
    cancels = {"chat": threading.Event(), "background": threading.Event()}
    waiting = {
        kind: pool.submit(
            complete, model, Request(COUNTING, max_tokens=8, background=kind == "background"),
            cancel,
        )
        for kind, cancel in cancels.items()
    }  # fmt: skip
    eventually(lambda: model.queued() == (1, 1))
    for cancel in cancels.values():
        cancel.set()
    for future in waiting.values():
        with pytest.raises(Cancelled):
            future.result(timeout=10)  # promptly: the generation in progress goes on
    assert model.queued() == (0, 0)
    holder.close()  # closing early frees the model for the next request
    assert complete(model, HELLO, timeout_s=120).strip()
