"""The memory worker: drains the durable queue, marks events done only after their memories are
written, survives a restart, and never holds up a chat."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agents.chat import ChatAgent
from agents.grounding import SCREEN_LABEL
from agents.llm.fakes import ScriptedChatModel, Stall
from agents.llm.port import Request
from agents.loop import BatchReport, MemoryLoop
from agents.memory_agent import CallOptions
from agents.worker import MemoryWorker
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import MemoryType
from storage.store import MemoryStore
from tests.agents.conftest import make_events
from tests.storage.failing_index import open_failing

EPISODE = {"op": "insert", "actor": "user", "event_type": "note", "summary": "S"}


def episodic_only(request: Request) -> str:
    """A model that routes everything to episodic and writes one memory per batch."""
    import json

    if "meta memory manager" in request.messages[0].content:
        return json.dumps({"types": ["episodic"]})
    first = request.messages[1].content.split("New observations:\n- [", 1)[1]
    summary = first.split("] ", 1)[1].splitlines()[0]
    if summary.startswith(SCREEN_LABEL):  # screen text is shown quoted: copy what it says
        summary = summary.split(': "', 1)[1].rstrip('"')
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


@pytest.mark.real
def test_a_batch_the_vector_index_refuses_is_applied_once_then_indexed_in_the_background(
    engram_home: Path,
) -> None:
    """Chroma fails after the commit: the batch is done (not retried, so a model that words
    its answer differently each time cannot make copies), and the worker indexes its rows once
    Chroma works again, without a restart."""
    store, index = open_failing(engram_home)
    wordings = iter(["Dana leads the marketing team", "Marketing is headed by Dana now"] * 5)

    def reworded(request: Request) -> str:
        if "meta memory manager" in request.messages[0].content:
            return json.dumps({"types": ["semantic"]})
        summary = next(wordings)
        return json.dumps({"operations": [{"op": "insert", "name": "Dana", "summary": summary}]})

    model = ScriptedChatModel(default=reworded)
    batches: list[tuple[BatchReport | None, BaseException | None]] = []
    events = make_events(
        "Dana leads the marketing team", "Marketing is headed by Dana now", "Dana said hello"
    )
    store.events.put_many(events)
    worker = MemoryWorker(
        store,
        MemoryLoop(store, model),
        batch_size=3,
        idle_s=0.02,
        max_backoff_s=0.1,
        on_batch=lambda r, e: batches.append((r, e)),
    )
    worker.start()
    try:
        assert wait_for(lambda: worker.backlog()["done"] == 3)
        assert wait_for(lambda: index.failed >= 4)  # the batch's upsert, then repairs tried
        [(report, error)] = batches
        assert error is None and report is not None and len(report.warnings) == 1
        assert "No space left on device" in report.warnings[0]
        assert len(model.calls) == 2  # the meta manager and one agent, once
        assert store.count() == 1 and store.stats()["unindexed"] == 1
        assert worker.backlog() == {"pending": 0, "claimed": 0, "done": 3, "failed": 0}

        index.failing = False
        assert wait_for(lambda: store.stats()["unindexed"] == 0)
        assert worker.stop(5)
        [memory] = store.browse(MemoryType.SEMANTIC)
        assert index.inner.ids(f"{store.namespace}semantic") == {memory.id}
        [hit] = store.search("who heads marketing", types=[MemoryType.SEMANTIC])
        assert hit.record.id == memory.id and hit.ranks.get("vector") == 1
        assert len(model.calls) == 2 and len(batches) == 1 and store.count() == 1
    finally:
        worker.stop(5)
        store.close()
