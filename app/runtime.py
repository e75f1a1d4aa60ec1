"""The runtime: the one place the house is wired, for every entry point.

The desktop app (through `app.services`), the CLI commands and the benchmarks get their store,
embedder, chat model, memory loop and worker, chat agent and capture service from a `Runtime`,
so a benchmark measures the product's own wiring, not a copy of it. Each part is built from
`Settings` on first need and once, under a lock: the UI asks from worker threads, and the window
appears before the model has loaded. `close` takes the parts down in order: the worker and
capture first (they use the others), then the model, then the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from agents.chat import ChatAgent, ChatConfig
from agents.llm.port import ChatModel, ModelInfo
from agents.llm.scheduler import ScheduledChatModel
from agents.loop import MemoryLoop
from agents.memory_agent import CallOptions
from agents.worker import Drained, Listener, MemoryWorker
from app import bootstrap, paths
from app.instance import InstanceServer
from app.settings import Settings
from capture.config import CaptureSettings
from capture.service import CaptureService, build_service, capture_log_for
from storage.capture_log import CaptureLog
from storage.errors import StoreLocked
from storage.protocols import Embedder, VectorIndex
from storage.sqlite_db import lock_holder
from storage.store import MemoryStore

log = logging.getLogger(__name__)

ModelState = Literal["not loaded", "loading", "ready", "error"]
StoreOpener = Callable[[Settings], MemoryStore]
ModelFactory = Callable[[Settings], ChatModel]
#: Builds the memory agents' model given the chat model (which it may share, or yield to).
AgentModelFactory = Callable[[Settings, ChatModel], ChatModel]
CaptureFactory = Callable[[MemoryStore, CaptureSettings], CaptureService]


def engram_pids(settings: Settings) -> set[int]:
    """Engram processes whose windows capture must never read, beside this one: the holders of
    the data folders' locks (this settings' folder and the platform one, where the desktop app
    runs while `engram capture` runs on another ENGRAM_HOME). Other Engram windows are known by
    their WM_CLASS anyway; the pid also covers a window whose class is not Engram's."""
    folders = {settings.resolved_data_dir(), paths.default_data_dir()}
    return {pid for pid in map(lock_holder, folders) if pid is not None}


def ask_to_yield(data_dir: Path) -> bool:
    """Ask the process holding `data_dir` to let its store go; True when it agreed."""
    from app import instance

    try:
        return bool(instance.call(data_dir, {"op": "yield"}, timeout_s=30.0))
    except (instance.NotServed, instance.RemoteError, OSError, ValueError):
        return False


class Runtime:
    """Builds and owns the parts of Engram for one set of settings.

    Tests and benchmarks inject what they need instead of wiring by hand: `store_opener`,
    `model_factory`, `agent_model_factory` and `capture_factory` replace whole parts (an
    injected `model_factory` or `model` without an agent factory serves the agents too);
    `data_dir` (a benchmark's fresh folder), `embedder` and `index_factory` change how the
    default store opens; `model` lends a model that someone else owns and closes (one model
    across many stores), and `agent_model` lends the memory agents' model the same way.

    `serve`: once the store is open, answer for its folder on the local socket, so the CLI
    and MCP servers run their commands here (app/instance.py): the desktop app and `engram
    mcp` do. `claim` (the desktop app): a folder held by a process that may give it up (an
    `engram mcp` started first) is asked to, then opened. `on_yield` is that question asked of
    this process: True promises it lets the store go.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: Path | None = None,
        embedder: Embedder | None = None,
        index_factory: Callable[[Path], VectorIndex] | None = None,
        model: ChatModel | None = None,
        store_opener: StoreOpener | None = None,
        model_factory: ModelFactory | None = None,
        agent_model_factory: AgentModelFactory | None = None,
        agent_model: ChatModel | None = None,
        capture_factory: CaptureFactory | None = None,
        record_turns: bool = True,
        serve: bool = False,
        claim: bool = False,
        on_yield: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self._serve, self._claim, self._on_yield = serve, claim, on_yield
        self._data_dir = data_dir
        self._index_factory = index_factory
        self._store_opener = store_opener or self._open_store
        self._model_factory = model_factory or (lambda s: bootstrap.make_chat_model(s))
        if agent_model is not None:  # lent, like `model`: its owner closes it
            lent = agent_model
            agent_model_factory = lambda _settings, _chat: lent  # noqa: E731
        elif agent_model_factory is None and (model_factory is not None or model is not None):
            agent_model_factory = _shared
        self._owns_agent_model = agent_model is None
        self._agent_model_factory: AgentModelFactory = agent_model_factory or _own_agent_model
        self._capture_factory: CaptureFactory = capture_factory or build_service
        self._record_turns = record_turns
        self._lock = threading.RLock()
        self._embedder_lock = threading.Lock()
        self._model_lock = threading.Lock()  # loading takes seconds: the store must not wait
        self._embedder = embedder
        self._store: MemoryStore | None = None
        self._model = model
        self._agent_model: ChatModel | None = None
        self._owns_model = model is None
        self._agent: ChatAgent | None = None
        self._worker: MemoryWorker | None = None
        self._capture: CaptureService | None = None
        self._log: CaptureLog | None = None
        self.model_state: ModelState = "not loaded" if model is None else "ready"
        self.model_error: str | None = None
        self._server: InstanceServer | None = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- the parts, built on first need ----------------------------------------------------

    def embedder(self) -> Embedder:
        # Its own lock: a load takes seconds (the serving warm-up runs one in the background),
        # and the store, the worker and close() must not wait for it.
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = bootstrap.make_embedder(self.settings)
            return self._embedder

    def store(self) -> MemoryStore:
        with self._lock:
            if self._store is None:
                self._store = self._open_claiming()
                if self._serve and self._server is None:
                    from app.routing import serve

                    self._server = serve(self, self.data_dir, self._on_yield)
                    # The embedding model loads on its first use (30 s on a loaded laptop): a
                    # long-running process takes that now, not the first command it runs.
                    threading.Thread(target=self._warm_embedder, daemon=True).start()
            return self._store

    def _warm_embedder(self) -> None:
        try:
            self.embedder().embed(["warm-up"])
        except Exception as exc:  # the first real use reports it
            log.warning("warming the embedding model failed: %s", exc)

    @property
    def data_dir(self) -> Path:
        return self._data_dir or self.settings.resolved_data_dir()

    def _open_claiming(self) -> MemoryStore:
        try:
            return self._store_opener(self.settings)
        except StoreLocked:
            if not self._claim or not ask_to_yield(self.data_dir):
                raise
            return self._store_opener(self.settings)  # its lock goes within the lock timeout

    @property
    def store_is_open(self) -> bool:
        return self._store is not None

    def _open_store(self, settings: Settings) -> MemoryStore:
        return bootstrap.open_store(
            settings, self.embedder(), data_dir=self._data_dir, index_factory=self._index_factory
        )

    def model(self) -> ChatModel:
        """The chat model, loaded by the first caller (seconds); later callers wait for it.
        A failed load is reported in `model_state` / `model_error` and tried again next time."""
        with self._model_lock:
            if self._model is None:
                self.model_state, self.model_error = "loading", None
                try:
                    self._model = self._model_factory(self.settings)
                except Exception as exc:
                    self.model_state, self.model_error = "error", str(exc)
                    raise
                self.model_state = "ready"
            return self._model

    def agent_model(self) -> ChatModel:
        """The memory agents' model (loaded after the chat model, which it may share)."""
        chat = self.model()
        with self._model_lock:
            if self._agent_model is None:
                try:
                    self._agent_model = self._agent_model_factory(self.settings, chat)
                except Exception as exc:  # reported as the chat model's are; tried again
                    self.model_state, self.model_error = "error", f"memory agents: {exc}"
                    raise
                self.model_state, self.model_error = "ready", None
            return self._agent_model

    @property
    def model_info(self) -> ModelInfo | None:
        model = self._model
        return model.info if model is not None else None

    def chat_agent(self) -> ChatAgent:
        store, model = self.store(), self.model()  # not under the lock: loading takes seconds
        with self._lock:
            if self._agent is None:
                llm = self.settings.llm
                config = ChatConfig(
                    context_tokens=llm.chat_context_tokens,
                    answer_tokens=llm.answer_tokens,
                    record_turns=self._record_turns,
                )
                self._agent = ChatAgent(store, model, config)
            return self._agent

    def warm_chat(self) -> None:
        """Evaluate the chat prompt's fixed prefix now (`ChatAgent.warm`: the system prompt and
        core memory), so the first question after a load waits only for its own part. Only
        while the model and the store are open: a late call after close() opens nothing."""
        model = self._model
        if model is None or self._store is None or not model.info.caches_prefix:
            return
        try:
            self.chat_agent().warm()
        except Exception as exc:  # the first question reports a real failure
            log.warning("warming the chat prompt failed: %s", exc)

    def worker(self, on_batch: Listener | None = None) -> MemoryWorker:
        """The memory worker over the memory loop (not started); `on_batch` hears each batch."""
        store, model = self.store(), self.agent_model()
        with self._lock:
            if self._worker is None:
                llm = self.settings.llm
                options = CallOptions(
                    timeout_s=llm.call_timeout_s, bound_strings=llm.agents_bound_strings()
                )
                loop = MemoryLoop(store, model, options=options)
                self._worker = MemoryWorker(
                    store,
                    loop,
                    batch_size=llm.memory_batch_size,
                    keep_events_days=self.settings.keep_events_days,
                )
            if on_batch is not None:
                self._worker.on_batch = on_batch
            return self._worker

    def start_worker(self, on_batch: Listener | None = None) -> MemoryWorker:
        worker = self.worker(on_batch)
        worker.start()
        return worker

    def wake_worker(self) -> None:
        """New events are waiting (a chat turn): a running worker looks at once."""
        worker = self._worker
        if worker is not None:
            worker.wake()

    def drain(
        self,
        max_batches: int | None = None,
        cancel: threading.Event | None = None,
        *,
        max_failures: int = 0,
        on_batch: Listener | None = None,
    ) -> Drained:
        """Run the memory agents over the queued events on this thread (`engram digest`, the
        benchmarks); see `MemoryWorker.drain`. Not while the background worker runs."""
        return self.worker().drain(
            max_batches, cancel, max_failures=max_failures, on_batch=on_batch
        )

    def capture(self) -> CaptureService:
        with self._lock:
            if self._capture is None:
                self._capture = self._capture_factory(self.store(), self.settings.capture)
                own = self._capture.pipeline.own
                self._capture.pipeline.own = own.with_pids(engram_pids(self.settings))
                self._log = self._capture.log
            return self._capture

    @property
    def capture_is_open(self) -> bool:
        return self._capture is not None

    def capture_log(self) -> CaptureLog:
        """The capture health log, also when capture never started (the timeline's gaps)."""
        with self._lock:
            if self._log is None:
                self._log = capture_log_for(self.store(), self.settings.capture)
            return self._log

    # ----- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker and capture, release the model, then the store. Each part is
        closed once; a later call builds it again."""
        with self._lock:
            worker, capture = self._worker, self._capture
            self._worker, self._capture, self._agent = None, None, None
            server, self._server = self._server, None
        if server is not None:
            server.close()
        if worker is not None and not worker.stop():
            log.warning("the memory worker did not stop in time")
        if capture is not None:
            try:
                capture.close()
            except Exception:
                log.exception("closing capture failed")
        with self._model_lock:
            model, self._model = self._model, None
            agents, self._agent_model = self._agent_model, None
            if self.model_state == "ready":
                self.model_state = "not loaded"
        if agents is not None and agents is not model and self._owns_agent_model:
            agents.close()
        if model is not None and self._owns_model:
            model.close()
        self._owns_model = True
        with self._lock:
            store, self._store, self._log = self._store, None, None
        if store is not None:
            store.close()


def _shared(_settings: Settings, chat: ChatModel) -> ChatModel:
    """The agents use the chat model itself (an injected model: a fake, a lent one)."""
    return chat


def _own_agent_model(settings: Settings, chat: ChatModel) -> ChatModel:
    if isinstance(chat, ScheduledChatModel):
        return bootstrap.make_agent_model(settings, chat)
    return chat
