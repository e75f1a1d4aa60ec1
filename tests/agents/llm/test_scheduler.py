"""The scheduler's finer promises, on the scripted model where timing is in the test's hands:
one generation at a time, arrival order within a priority, preempting a generation that is
blocked inside its backend, closing, and the memory agents asking again after preemption.
(The promises every backend keeps behind it are in test_contract.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents.llm.fakes import ScriptedChatModel, Stall
from agents.llm.port import (
    ModelError,
    ModelInfo,
    Preempted,
    Request,
    complete,
    messages,
)
from agents.llm.scheduler import ScheduledChatModel
from agents.memory_agent import CallOptions, ask_json

SAY = messages("You say things.", "Say something.")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="caller") as executor:
        yield executor


def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.002)


class Gauge:
    """A backend that counts how many generations run inside it at once."""

    def __init__(self) -> None:
        self.inner = ScriptedChatModel(delay_s=0.001)
        self.active = self.most = 0
        self.closed = False
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            yield from self.inner.stream(request, cancel)
        finally:
            with self._lock:
                self.active -= 1

    def close(self) -> None:
        self.closed = True


def test_one_generation_at_a_time_reaches_the_backend(pool: ThreadPoolExecutor) -> None:
    gauge = Gauge()
    model = ScheduledChatModel(gauge)

    def call(n: int) -> str:
        request = Request(SAY, max_tokens=16, background=n % 2 == 0)
        while True:
            try:
                return complete(model, request, timeout_s=30)
            except Preempted:
                continue  # as the memory agents do

    answers = list(pool.map(call, range(16)))
    assert all(a.strip() for a in answers)
    assert gauge.most == 1 and gauge.active == 0
    model.close()
    assert gauge.closed


def test_requests_of_one_priority_run_in_arrival_order(pool: ThreadPoolExecutor) -> None:
    model = ScheduledChatModel(ScriptedChatModel())
    order: list[int] = []

    def run(n: int) -> None:
        for i, _ in enumerate(model.stream(Request(SAY, background=True))):
            if i == 0:
                order.append(n)

    holder = model.stream(Request(SAY))
    next(holder)
    futures = []
    for n in range(3):
        futures.append(pool.submit(run, n))
        eventually(lambda n=n: model.queued() == (0, n + 1))
    holder.close()
    for future in futures:
        future.result(timeout=10)
    assert order == [0, 1, 2]


def test_chat_preempts_a_generation_blocked_inside_its_backend(pool: ThreadPoolExecutor) -> None:
    scripted = ScriptedChatModel(Stall(30), "Hello there.")
    model = ScheduledChatModel(scripted)
    memory_work = pool.submit(complete, model, Request(SAY, background=True))
    eventually(lambda: len(scripted.calls) == 1)  # stalled inside the backend
    started = time.monotonic()
    assert complete(model, Request(SAY)) == "Hello there."
    with pytest.raises(Preempted):
        memory_work.result(timeout=10)
    assert time.monotonic() - started < 10  # not the 30 s stall


def test_close_stops_the_generation_in_progress_and_wakes_the_queue(
    pool: ThreadPoolExecutor,
) -> None:
    gauge = Gauge()
    model = ScheduledChatModel(gauge)
    holder = model.stream(Request(SAY))
    next(holder)
    queued = pool.submit(complete, model, Request(SAY, background=True))
    eventually(lambda: model.queued() == (0, 1))
    model.close()
    with pytest.raises(ModelError, match="closed"):
        queued.result(timeout=10)
    with pytest.raises(ModelError, match="closed"):
        list(holder)
    assert gauge.closed and gauge.active == 0
    with pytest.raises(ModelError, match="closed"):
        model.stream(Request(SAY))


def test_memory_work_preempted_by_chat_is_asked_again_and_finishes(
    pool: ThreadPoolExecutor,
) -> None:
    model: ScheduledChatModel

    def first_answer(_request: Request) -> str:
        eventually(lambda: model.queued() == (1, 0))  # chat arrives while this one runs
        return '{"types": ["semantic", "episodic"]}'

    scripted = ScriptedChatModel(first_answer, "Hello there.", {"types": ["semantic"]})
    model = ScheduledChatModel(scripted)
    schema = {"type": "object"}
    memory_work = pool.submit(
        ask_json, model, Request(SAY, schema=schema, background=True), None, CallOptions()
    )
    eventually(lambda: len(scripted.calls) == 1)
    assert complete(model, Request(SAY)) == "Hello there."
    assert memory_work.result(timeout=10) == {"types": ["semantic"]}
    assert [r.background for r in scripted.calls] == [True, False, True]


def test_agents_on_their_own_instance_wait_out_chat_at_the_next_call(
    pool: ThreadPoolExecutor,
) -> None:
    """Two instances (chat and agents, each with its own threads): a background call already
    running when chat arrives finishes (its work is not thrown away); the next one waits until
    chat is done."""
    chat = ScheduledChatModel(ScriptedChatModel(Stall(30)))
    agents_backend = ScriptedChatModel("one two three four five six", "second", delay_s=0.05)
    agents = ScheduledChatModel(agents_backend, yield_to=chat)
    background = Request(SAY, max_tokens=16, background=True)
    stop_chat = threading.Event()

    first = pool.submit(complete, agents, background, None, 10)
    eventually(lambda: len(agents_backend.calls) == 1)
    chatting = pool.submit(complete, chat, Request(SAY, max_tokens=16), stop_chat)
    eventually(chat.chat_active)
    assert first.result(timeout=10) == "one two three four five six"  # not preempted
    second = pool.submit(complete, agents, background, None, 10)
    time.sleep(0.3)
    assert not second.done() and len(agents_backend.calls) == 1  # waiting out the chat
    stop_chat.set()
    with pytest.raises(ModelError):
        chatting.result(timeout=10)
    assert not chat.chat_active()
    assert second.result(timeout=10) == "second"
