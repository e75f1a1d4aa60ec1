"""The runtime builds each part on first need and once, and takes them down in order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agents.llm.fakes import ScriptedChatModel
from agents.worker import MemoryWorker
from app.runtime import Runtime
from app.settings import Settings
from capture.config import CaptureSettings
from capture.fakes import FakeOcr, FakeScreen, FakeWindows
from capture.service import CaptureService, build_service
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import Event, SemanticMemory
from storage.store import MemoryStore


class Recorder:
    """Factories whose products note when they are built and closed."""

    def __init__(self, home: Path, model: ScriptedChatModel | None = None) -> None:
        self.home = home
        self.order: list[str] = []
        self.stores = 0
        self.models = 0
        self.fail_models = 0
        self.model = model or ScriptedChatModel()
        self.worker_running_at_model_close: bool | None = None

    def open_store(self, _settings: Settings) -> MemoryStore:
        time.sleep(0.05)  # long enough for concurrent callers to pile up
        self.stores += 1
        store = MemoryStore.open(self.home, HashEmbedder(), lambda _p: MemoryVectorIndex())
        close = store.close

        def recorded() -> None:
            self.order.append("store")
            close()

        store.close = recorded  # type: ignore[method-assign]
        return store

    def make_model(self, _settings: Settings) -> ScriptedChatModel:
        time.sleep(0.05)
        self.models += 1
        if self.fail_models:
            self.fail_models -= 1
            raise RuntimeError("model file is unreadable")
        close = self.model.close

        def recorded() -> None:
            self.order.append("model")
            close()

        self.model.close = recorded  # type: ignore[method-assign]
        return self.model

    def capture(self, store: MemoryStore, settings: CaptureSettings) -> CaptureService:
        service = build_service(
            store, settings, screen=FakeScreen(), windows=FakeWindows(), ocr=FakeOcr("notes")
        )
        close = service.close

        def recorded() -> None:
            self.order.append("capture")
            close()

        service.close = recorded  # type: ignore[method-assign]
        return service

    def runtime(self) -> Runtime:
        return Runtime(
            Settings(),
            store_opener=self.open_store,
            model_factory=self.make_model,
            capture_factory=self.capture,
        )


@pytest.fixture
def recorder(engram_home: Path) -> Recorder:
    return Recorder(engram_home)


def test_parts_are_built_lazily_and_once(recorder: Recorder) -> None:
    with recorder.runtime() as runtime:
        assert not runtime.store_is_open and runtime.model_state == "not loaded"
        store = runtime.store()
        store.add(SemanticMemory(name="Miso", summary="the cat"))
        assert store.search("cat")  # searching needs no chat model
        assert runtime.store() is store and recorder.stores == 1
        assert recorder.models == 0 and runtime.model_state == "not loaded"
        assert runtime.model_info is None
        agent = runtime.chat_agent()
        assert runtime.chat_agent() is agent and recorder.models == 1
        assert runtime.model_state == "ready" and runtime.model_info is not None
        assert runtime.worker() is runtime.worker()
        assert runtime.capture() is runtime.capture()
        assert runtime.capture_log() is runtime.capture().log
        assert recorder.stores == 1 and recorder.models == 1


def test_concurrent_callers_get_one_store_and_one_model(recorder: Recorder) -> None:
    runtime = recorder.runtime()
    results: list[object] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        results.append((runtime.store(), runtime.model(), runtime.chat_agent()))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    try:
        assert len(results) == 8 and len(set(map(id, results))) == 8
        assert len({tuple(map(id, r)) for r in results}) == 1  # type: ignore[arg-type]
        assert recorder.stores == 1 and recorder.models == 1
    finally:
        runtime.close()


def test_close_stops_worker_and_capture_then_model_then_store(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stop = MemoryWorker.stop

    def recorded_stop(worker: MemoryWorker, timeout_s: float = 30.0) -> bool:
        recorder.order.append("worker")
        return real_stop(worker, timeout_s)

    monkeypatch.setattr(MemoryWorker, "stop", recorded_stop)
    runtime = recorder.runtime()
    worker = runtime.start_worker()
    runtime.capture()
    assert worker.running
    runtime.close()
    assert recorder.order == ["worker", "capture", "model", "store"]
    assert not worker.running and not runtime.store_is_open
    assert runtime.model_state == "not loaded"
    runtime.close()  # a second close closes nothing twice
    assert recorder.order == ["worker", "capture", "model", "store"]


def test_a_failing_model_factory_is_reported_and_retried(recorder: Recorder) -> None:
    recorder.fail_models = 1
    with recorder.runtime() as runtime:
        with pytest.raises(RuntimeError, match="unreadable"):
            runtime.chat_agent()
        assert runtime.model_state == "error" and runtime.model_error == "model file is unreadable"
        assert runtime.store_is_open  # the store is unaffected
        assert runtime.chat_agent() is not None  # tried again
        assert recorder.models == 2 and runtime.model_state == "ready"
        assert runtime.model_error is None


def test_a_lent_model_is_used_but_not_closed(recorder: Recorder) -> None:
    lent = ScriptedChatModel()
    lent.close = lambda: recorder.order.append("lent model")  # type: ignore[method-assign]
    with Runtime(Settings(), store_opener=recorder.open_store, model=lent) as runtime:
        assert runtime.model() is lent and runtime.model_state == "ready"
        assert runtime.chat_agent().model is lent
    assert recorder.order == ["store"]  # its owner closes it


def test_a_lent_agents_model_runs_the_worker_but_is_not_closed(recorder: Recorder) -> None:
    """A benchmark lends one agents' model to many stores, as it lends the chat model."""
    chat, agents = ScriptedChatModel(), ScriptedChatModel()
    chat.close = lambda: recorder.order.append("chat model")  # type: ignore[method-assign]
    agents.close = lambda: recorder.order.append("agent model")  # type: ignore[method-assign]
    with Runtime(
        Settings(), store_opener=recorder.open_store, model=chat, agent_model=agents
    ) as runtime:
        assert runtime.agent_model() is agents and runtime.worker().loop.model is agents
        assert runtime.chat_agent().model is chat
    assert recorder.order == ["store"]  # their owner closes them


def test_the_default_store_opens_in_data_dir_with_the_given_parts(
    tmp_path: Path, engram_home: Path
) -> None:
    embedder, index = HashEmbedder(), MemoryVectorIndex()
    folder = tmp_path / "bench-store"
    with Runtime(Settings(), data_dir=folder, embedder=embedder, index_factory=lambda _p: index):
        pass  # nothing built, nothing opened
    assert not folder.exists()
    runtime = Runtime(
        Settings(), data_dir=folder, embedder=embedder, index_factory=lambda _p: index
    )
    with runtime:
        assert runtime.embedder() is embedder
        memory = runtime.store().add(SemanticMemory(name="Miso", summary="the cat"))
        assert index.ids(f"{runtime.store().namespace}semantic") == {memory.id}
    assert (folder / "engram.sqlite3").exists() and not (engram_home / "engram.sqlite3").exists()


def _events(n: int) -> list[Event]:
    return [Event(text=f"note number {i} about the garden", source="screen") for i in range(n)]


def test_drain_runs_the_agents_until_the_queue_is_empty(recorder: Recorder) -> None:
    model = ScriptedChatModel()
    recorder.model = model
    with recorder.runtime() as runtime:
        store = runtime.store()
        store.events.put_many(_events(2))
        model.queue({"types": ["episodic"]}, {"operations": []})  # one batch, nothing kept
        heard: list[object] = []
        drained = runtime.drain(on_batch=lambda report, error: heard.append(report or error))
        assert len(drained.reports) == 1 and drained.events == 2 and drained.failures == 0
        assert heard == drained.reports and not drained.cancelled and drained.seconds > 0
        assert store.events.counts()["done"] == 2


def test_drain_counts_failures_then_lets_one_through(recorder: Recorder) -> None:
    from agents.loop import BatchFailed

    model = ScriptedChatModel(default=lambda _request: "not json")
    recorder.model = model
    with recorder.runtime() as runtime:
        store = runtime.store()
        store.events.put_many(_events(1))
        heard: list[object] = []
        with pytest.raises(BatchFailed):
            runtime.drain(max_failures=1, on_batch=lambda report, error: heard.append(error))
        assert len(heard) == 2 and all(isinstance(e, BatchFailed) for e in heard)
        assert store.events.counts()["pending"] == 1  # back in the queue, not lost


def test_drain_stops_when_cancelled_and_leaves_the_events_queued(recorder: Recorder) -> None:
    with recorder.runtime() as runtime:
        store = runtime.store()
        store.events.put_many(_events(3))
        cancel = threading.Event()
        cancel.set()
        drained = runtime.drain(cancel=cancel)
        assert drained.cancelled and drained.reports == []
        assert store.events.counts()["pending"] == 3


def test_capture_never_reads_this_process_or_the_app_that_holds_a_data_folder(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess
    import sys

    from app import paths
    from storage.sqlite_db import lock_holder

    app_home = tmp_path / "app-home"  # where "the desktop app" runs: another process's lock
    app_home.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(app_home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(paths, "default_data_dir", lambda: app_home)
        with recorder.runtime() as runtime:
            pids = runtime.capture().pipeline.own.pids
            assert {os.getpid(), holder.pid} <= pids
            assert lock_holder(recorder.home) == os.getpid()  # the store this runtime opened
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    assert lock_holder(app_home) is None  # its pid is still in the file, but nobody holds it
    assert (app_home / "engram.lock").read_text() == str(holder.pid)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from storage.sqlite_db import DataDirLock
DataDirLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_the_agents_get_a_model_of_their_own_closed_before_the_chat_one(
    recorder: Recorder,
) -> None:
    """The agents' model comes from its own factory, given the chat model (to yield to); the
    worker runs on it, not on the chat model, and closing takes it down first."""
    agents_model = ScriptedChatModel()
    given: list[object] = []

    def make_agents(_settings: Settings, chat: object) -> ScriptedChatModel:
        given.append(chat)
        close = agents_model.close

        def recorded() -> None:
            recorder.order.append("agent model")
            close()

        agents_model.close = recorded  # type: ignore[method-assign]
        return agents_model

    runtime = Runtime(
        Settings(),
        store_opener=recorder.open_store,
        model_factory=recorder.make_model,
        agent_model_factory=make_agents,
    )
    with runtime:
        assert runtime.agent_model() is agents_model and runtime.agent_model() is agents_model
        assert given == [recorder.model]
        assert runtime.worker().loop.model is agents_model
        assert runtime.chat_agent().model is recorder.model
    assert recorder.order == ["agent model", "model", "store"]


def test_an_injected_model_serves_the_agents_too(recorder: Recorder) -> None:
    with recorder.runtime() as runtime:
        assert runtime.agent_model() is runtime.model() is recorder.model
    assert recorder.order.count("model") == 1


def test_a_failing_agents_model_is_reported_and_retried(recorder: Recorder) -> None:
    attempts: list[int] = []

    def make_agents(_settings: Settings, chat: object) -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("qwen file is missing")
        return chat

    runtime = Runtime(
        Settings(),
        store_opener=recorder.open_store,
        model_factory=recorder.make_model,
        agent_model_factory=make_agents,  # type: ignore[arg-type]
    )
    with runtime:
        with pytest.raises(RuntimeError, match="qwen file is missing"):
            runtime.agent_model()
        assert runtime.model_state == "error"
        assert runtime.model_error == "memory agents: qwen file is missing"
        assert runtime.agent_model() is recorder.model and len(attempts) == 2
        assert runtime.model_state == "ready" and runtime.model_error is None


def test_warm_chat_evaluates_the_chat_prefix_only_once_store_and_model_are_open(
    recorder: Recorder,
) -> None:
    chat = ScriptedChatModel(caches_prefix=True)
    with Runtime(
        Settings(), store_opener=recorder.open_store, model=chat, agent_model=ScriptedChatModel()
    ) as runtime:
        runtime.warm_chat()  # no store yet: a warm-up opens nothing
        assert recorder.stores == 0 and chat.calls == []
        runtime.store().set_core("human", "Name is Sam")
        runtime.warm_chat()
        [warm] = chat.calls
        assert warm.background and warm.max_tokens == 1
        assert "Name is Sam" in warm.messages[0].content
    runtime.warm_chat()  # after close(): nothing is opened again
    assert recorder.stores == 1 and len(chat.calls) == 1
