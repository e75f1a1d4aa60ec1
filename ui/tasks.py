"""The one task manager: every slow call runs on a worker thread; results come back as signals.

Work is a plain function run by a `concurrent.futures` executor: a small I/O pool for storage,
search and capture calls, and a single "llm" thread for model loading and chat (the model is not
thread-safe, and one answer at a time is what a person wants). A QObject bridge living on the GUI
thread receives a queued signal from the worker and re-emits it as the task's own signals, so a
widget is only ever touched on the GUI thread. `call_soon` is the same bridge for callbacks that
other threads make (capture status, memory batches).
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)


class TaskContext:
    """Handed to streaming work: `report()` sends a value to the GUI thread; `cancelled` is a
    `threading.Event` the work checks; `on_cancel(fn)` runs `fn` when the task is cancelled."""

    def __init__(self, task: Task, bridge: _Bridge) -> None:
        self._task = task
        self._bridge = bridge
        self.cancelled = threading.Event()
        self._hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def report(self, value: object) -> None:
        self._bridge.deliver.emit(self._task.id, "report", value)

    def progress(self, done: int, total: int) -> None:
        self._bridge.deliver.emit(self._task.id, "progress", (done, total))

    def on_cancel(self, hook: Callable[[], None]) -> None:
        with self._lock:
            self._hooks.append(hook)
            now = self.cancelled.is_set()
        if now:
            hook()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            hooks = list(self._hooks)
        for hook in hooks:
            hook()


class Task(QObject):
    """One piece of work. Signals arrive on the GUI thread: `reported` for each `report()`,
    `progressed(done, total)`, then exactly one of `done(result)` or `failed(exception)`."""

    reported = Signal(object)
    progressed = Signal(int, int)
    done = Signal(object)
    failed = Signal(object)

    def __init__(self, task_id: int, label: str, quiet: bool) -> None:
        super().__init__()
        self.id = task_id
        self.label = label
        self.quiet = quiet
        self.future: Future[Any] | None = None
        self.context: TaskContext | None = None
        self.error: BaseException | None = None

    def cancel(self) -> None:
        if self.context is not None:
            self.context.cancel()
        if self.future is not None:
            self.future.cancel()


class _Bridge(QObject):
    deliver = Signal(int, str, object)
    call = Signal(object)


class TaskManager(QObject):
    """`submit` plain work, `stream` work that reports; both return a `Task` to connect to.

    `activity` lists the labels of the visible tasks in flight (for the status bar); `error`
    carries the label and message of any task that failed, `failure` the label and the
    exception itself (what the status bar explains), `succeeded` the label of one that
    finished (a problem it had before has ended)."""

    activity = Signal(list)
    progress = Signal(str, int, int)
    error = Signal(str, str)
    failure = Signal(str, object)
    succeeded = Signal(str)

    def __init__(self, io_workers: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pools = {
            "io": ThreadPoolExecutor(io_workers, thread_name_prefix="engram-io"),
            "llm": ThreadPoolExecutor(1, thread_name_prefix="engram-llm-task"),
        }
        self._ids = itertools.count(1)
        self._tasks: dict[int, Task] = {}
        self._closed = False
        self._announced: list[str] = []
        self._bridge = _Bridge(self)
        self._bridge.deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)
        self._bridge.call.connect(self._on_call, Qt.ConnectionType.QueuedConnection)

    # ----- submitting ------------------------------------------------------------------------

    def submit(
        self, label: str, fn: Callable[..., Any], *args: Any, kind: str = "io", quiet: bool = False
    ) -> Task:
        """Run `fn(*args)` on the `kind` pool ("io" or "llm")."""
        return self._start(label, kind, quiet, lambda _ctx: fn(*args))

    def stream(
        self,
        label: str,
        fn: Callable[[TaskContext], Any],
        kind: str = "io",
        quiet: bool = False,
    ) -> Task:
        """Run `fn(context)`; it may `context.report(...)`, `context.progress(...)` and should
        stop early once `context.cancelled` is set."""
        return self._start(label, kind, quiet, fn)

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the GUI thread (safe to call from any thread)."""
        if not self._closed:
            self._bridge.call.emit(fn)

    def _start(self, label: str, kind: str, quiet: bool, fn: Callable[[TaskContext], Any]) -> Task:
        if self._closed:
            raise RuntimeError("the task manager is shut down")
        task = Task(next(self._ids), label, quiet)
        context = TaskContext(task, self._bridge)
        task.context = context
        self._tasks[task.id] = task
        future = self._pools[kind].submit(self._run, task.id, fn, context)
        task.future = future
        bridge = self._bridge

        def settled(f: Future[Any]) -> None:  # cancelled before it started: _run never ran
            if f.cancelled():
                bridge.deliver.emit(task.id, "failed", CancelledError(f"{label} was cancelled"))

        future.add_done_callback(settled)
        self._announce()
        return task

    def _run(self, task_id: int, fn: Callable[[TaskContext], Any], context: TaskContext) -> None:
        """On the worker thread: run, then hand the outcome to the GUI thread."""
        try:
            result = fn(context)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            log.debug("task %d failed:\n%s", task_id, traceback.format_exc())
            self._bridge.deliver.emit(task_id, "failed", exc)
        else:
            self._bridge.deliver.emit(task_id, "done", result)

    # ----- on the GUI thread -----------------------------------------------------------------

    @Slot(int, str, object)
    def _on_deliver(self, task_id: int, what: str, payload: object) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            return
        if what == "report":
            task.reported.emit(payload)
            return
        if what == "progress":
            assert isinstance(payload, tuple)
            done, total = int(payload[0]), int(payload[1])
            task.progressed.emit(done, total)
            self.progress.emit(task.label, done, total)
            return
        del self._tasks[task_id]
        self._announce()
        if what == "done":
            self.succeeded.emit(task.label)
            task.done.emit(payload)
        else:
            assert isinstance(payload, BaseException)
            task.error = payload
            if not isinstance(payload, CancelledError):
                self.error.emit(task.label, str(payload) or type(payload).__name__)
                self.failure.emit(task.label, payload)
            task.failed.emit(payload)
        task.deleteLater()

    @Slot(object)
    def _on_call(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            log.exception("GUI callback failed")
            self.error.emit("update", str(exc))
            self.failure.emit("update", exc)

    def _announce(self) -> None:
        """Says which visible tasks are in flight, only when that changes: quiet background
        polls (timeline, backlog) must not wipe a message such as "Settings saved."."""
        labels = [t.label for t in self._tasks.values() if not t.quiet]
        if labels != self._announced:
            self._announced = labels
            self.activity.emit(labels)

    # ----- inspection and shutdown -----------------------------------------------------------

    def running(self) -> list[Task]:
        return list(self._tasks.values())

    def shutdown(self, wait: bool = True) -> None:
        """Cancel what has not started, ask running work to stop, and (by default) wait for it."""
        self._closed = True
        for task in list(self._tasks.values()):
            task.cancel()
        for pool in self._pools.values():
            pool.shutdown(wait=wait, cancel_futures=True)
