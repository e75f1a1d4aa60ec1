"""The memory worker: drains the durable queue, marks events done only after their memories are
written, survives a restart, and never holds up a chat."""

from __future__ import annotations

import time
from pathlib import Path

from agents.chat import ChatAgent
from agents.llm.fakes import ScriptedChatModel, Stall
from agents.llm.port import Request
from agents.loop import MemoryLoop
from agents.memory_agent import CallOptions
from agents.worker import MemoryWorker
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import MemoryType
from storage.store import MemoryStore
from tests.agents.conftest import make_events

EPISODE = {"op": "insert", "actor": "user", "event_type": "note", "summary": "S"}


def episodic_only(request: Request) -> str:
    """A model that routes everything to episodic and writes one memory per batch."""
    import json

    if "meta memory manager" in request.messages[0].content:
        return json.dumps({"types": ["episodic"]})
    first = request.messages[1].content.split("New observations:\n- [", 1)[1]
    summary = first.split("] ", 1)[1].splitlines()[0]
    return json.dumps({"operations": [{**EPISODE, "summary": summary}]})


def Routed() -> ScriptedChatModel:
    return ScriptedChatModel(default=episodic_only)


def wait_for(condition: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_worker_thread_drains_the_queue(fake_store: MemoryStore) -> None:
    for word in ("apples", "boats", "clouds", "drums", "eagles"):
        fake_store.events.put_many(make_events(f"Wrote a chapter about {word}"))
    worker = MemoryWorker(fake_store, MemoryLoop(fake_store, Routed()), batch_size=1, idle_s=0.05)
    worker.start()
    try:
        assert wait_for(lambda: worker.backlog()["done"] == 5)
    finally:
        assert worker.stop(5)
    assert fake_store.count(MemoryType.EPISODIC) == 5
    assert worker.backlog()["pending"] == 0 and not worker.running


def test_restart_resumes_what_was_pending_or_claimed(engram_home: Path) -> None:
    def open_store() -> MemoryStore:
        return MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())

    store = open_store()
    store.events.put_many(make_events("apples thing", "boats thing", "clouds thing"))
    store.events.claim(2)  # a worker took two, then the process died
    store.close()

    store = open_store()
    try:
        assert store.events.counts()["pending"] == 3
        drained = MemoryWorker(store, MemoryLoop(store, Routed()), batch_size=1).drain()
        assert len(drained.reports) == 3 and drained.events == 3 and not drained.cancelled
        assert store.events.counts() == {"pending": 0, "claimed": 0, "done": 3, "failed": 0}
        assert store.count(MemoryType.EPISODIC) == 3
    finally:
        store.close()


def test_failed_batch_goes_back_to_the_queue_with_its_error(fake_store: MemoryStore) -> None:
    [event] = make_events("something")
    fake_store.events.put(event)
    model = ScriptedChatModel("garbage", "more garbage")
    worker = MemoryWorker(fake_store, MemoryLoop(fake_store, model), idle_s=0.01)
    try:
        worker.run_once()
    except Exception as exc:
        assert "could not read this batch" in str(exc)
    else:
        raise AssertionError("the batch should have failed")
    assert fake_store.events.status_of(event.id) == "pending"
    assert fake_store.count() == 0
    worker.loop.model = Routed()
    worker.drain()
    assert fake_store.events.status_of(event.id) == "done"


def test_stop_cancels_the_batch_in_progress(fake_store: MemoryStore) -> None:
    [event] = make_events("something slow")
    fake_store.events.put(event)
    model = ScriptedChatModel(Stall(seconds=60))
    loop = MemoryLoop(fake_store, model, options=CallOptions(timeout_s=120))
    worker = MemoryWorker(fake_store, loop, idle_s=0.01)
    worker.start()
    assert wait_for(lambda: len(model.calls) == 1)
    started = time.monotonic()
    assert worker.stop(5)
    assert time.monotonic() - started < 2
    assert fake_store.events.status_of(event.id) == "pending"


def test_chat_answers_while_memory_work_is_stuck(fake_store: MemoryStore) -> None:
    fake_store.events.put_many(make_events("a batch the model will hang on"))
    memory_model = ScriptedChatModel(Stall(seconds=60))
    worker = MemoryWorker(fake_store, MemoryLoop(fake_store, memory_model), idle_s=0.01)
    worker.start()
    try:
        assert wait_for(lambda: len(memory_model.calls) == 1)
        started = time.monotonic()
        result = ChatAgent(fake_store, ScriptedChatModel("Nothing yet.")).ask("hi?").result
        assert result.answer == "Nothing yet." and time.monotonic() - started < 2
    finally:
        assert worker.stop(5)
