"""The app's state on the GUI thread: services + task manager, and signals the views follow.

The controller starts things in the background in a fixed order (open the store, start capture,
load the model, start the memory agents), polls what has no signal of its own (agent backlog,
capture status) with quiet tasks, and turns failures into problems for the status bar: one per
condition (a task's label, "Memory agents"), kept once however often it recurs, and cleared when
the condition ends (that task succeeds, a batch goes through).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from agents.loop import BatchReport
from app.services import CaptureSnapshot, Services
from app.status import BatchSummary, Problem, Problems, model_details, model_name, problem_from
from ui.tasks import Task, TaskManager

log = logging.getLogger(__name__)


class Controller(QObject):
    store_ready = Signal()
    store_failed = Signal(str)
    model_changed = Signal(str, str)  # state, detail (model name or error)
    capture_changed = Signal(object)  # CaptureSnapshot
    capture_failed = Signal(str)  # capture could not be set up (no screen, no OCR engine)
    backlog_changed = Signal(dict)
    memories_changed = Signal()
    error = Signal(str)  # a new problem's "label: message"
    problems_changed = Signal(list)  # the Problems in force, newest last
    batch_reported = Signal(object)  # BatchSummary of the agents' last batch

    def __init__(
        self,
        services: Services,
        tasks: TaskManager | None = None,
        *,
        autostart_capture: bool = True,
        load_model: bool = True,
        poll_ms: int = 2000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.tasks = tasks or TaskManager(parent=self)
        self.autostart_capture = autostart_capture
        self.load_model = load_model
        self.capture: CaptureSnapshot | None = None
        self.last_error = ""
        self.problems = Problems()
        self.backlog: dict[str, int] = {}  # the one source of the agents' backlog counts
        self.last_batch: BatchSummary | None = None
        self.model_tooltip = ""
        self._capture_refresh_queued = False
        self._poll = QTimer(self)
        self._poll.setInterval(poll_ms)
        self._poll.timeout.connect(self.poll)
        self.tasks.failure.connect(self._task_error)
        self.tasks.succeeded.connect(self.clear_problem)
        self.backlog_changed.connect(lambda counts: setattr(self, "backlog", counts))

    # ----- running work ----------------------------------------------------------------------

    def run(
        self,
        label: str,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        kind: str = "io",
        quiet: bool = False,
    ) -> Task:
        """Submit `fn(*args)`; `on_done`/`on_error` run on the GUI thread."""
        task = self.tasks.submit(label, fn, *args, kind=kind, quiet=quiet)
        if on_done is not None:
            task.done.connect(on_done)
        if on_error is not None:
            task.failed.connect(on_error)
        return task

    def _task_error(self, label: str, error: BaseException | str) -> None:
        self.raise_problem(problem_from(label, error))

    def raise_problem(self, problem: Problem) -> None:
        """Show `problem` (once: the same condition again only updates it)."""
        self.last_error = f"{problem.key}: {problem.message}"
        if self.problems.raise_(problem):
            self.error.emit(self.last_error)
        self.problems_changed.emit(self.problems.active())

    def clear_problem(self, key: str) -> None:
        """The condition `key` has ended (its task succeeded, a batch went through)."""
        if self.problems.clear(key):
            self.problems_changed.emit(self.problems.active())

    # ----- start-up, in the background -------------------------------------------------------

    def start(self) -> None:
        self.run(
            "Opening memories",
            self.services.store,
            on_done=self._store_opened,
            on_error=lambda exc: self.store_failed.emit(str(exc)),
        )

    def _store_opened(self, _store: object) -> None:
        self.store_ready.emit()
        self._poll.start()
        self.poll()
        self.run(
            "Starting capture",
            self._open_capture,
            # Never before the user said yes once (the first-run page, or Start capture).
            self.autostart_capture and self.services.capture_allowed,
            on_done=self._set_capture,
            on_error=lambda exc: self.capture_failed.emit(str(exc)),
            quiet=True,
        )
        if self.load_model:
            self.start_model()

    def start_model(self) -> None:
        """Load the chat model on the llm thread, then start the memory agents."""
        if self.services.model_state in ("loading", "ready"):
            return
        self.model_changed.emit("loading", "")

        def load() -> str:
            self.services.start_memory_worker(self._on_batch)
            llm, info = self.services.settings.llm, self.services.model_info
            self.model_tooltip = model_details(llm, info)
            return model_name(llm, info)

        self.run(
            "Loading the model",
            load,
            kind="llm",
            on_done=self._model_loaded,
            on_error=lambda exc: self.model_changed.emit("error", str(exc)),
        )

    def _model_loaded(self, name: str) -> None:
        self.model_changed.emit("ready", name)

    def _on_batch(self, report: object, error: BaseException | None) -> None:
        """From the memory worker's thread: hand over to the GUI thread."""

        def on_gui() -> None:
            if error is not None:
                self._task_error("Memory agents", error)
            else:
                self.clear_problem("Memory agents")
                if isinstance(report, BatchReport):
                    self.last_batch = BatchSummary.of(report)
                    self.batch_reported.emit(self.last_batch)
                self.memories_changed.emit()
            self.refresh_backlog()

        self.tasks.call_soon(on_gui)

    # ----- polling ---------------------------------------------------------------------------

    def poll(self) -> None:
        self.refresh_backlog()
        self.refresh_capture()

    def refresh_backlog(self) -> None:
        if self.services.store_is_open:
            self.run(
                "backlog", self.services.backlog, on_done=self.backlog_changed.emit, quiet=True
            )

    def refresh_capture(self) -> None:
        if self.capture is not None:  # capture was built (a failure to build is reported once)
            self.run(
                "capture status",
                self.services.capture_snapshot,
                on_done=self._set_capture,
                quiet=True,
            )

    def capture_ticked(self, _status: object) -> None:
        """Capture's status listener (capture thread): refresh once on the GUI thread."""
        if not self._capture_refresh_queued:
            self._capture_refresh_queued = True

            def on_gui() -> None:
                self._capture_refresh_queued = False
                self.refresh_capture()

            self.tasks.call_soon(on_gui)

    def _open_capture(self, start: bool) -> CaptureSnapshot:
        """Worker thread: build capture, follow its ticks, start it if asked."""
        self.services.capture().add_status_listener(self.capture_ticked)
        return self.services.start_capture() if start else self.services.capture_snapshot()

    def _set_capture(self, snapshot: CaptureSnapshot) -> None:
        self.capture = snapshot
        self.capture_changed.emit(snapshot)

    # ----- capture controls ------------------------------------------------------------------

    def pause_capture(self, minutes: float | None = None) -> Task:
        return self.run(
            "Pausing capture", self.services.pause_capture, minutes, on_done=self._set_capture
        )

    def resume_capture(self) -> Task:
        return self.run("Resuming capture", self.services.resume_capture, on_done=self._set_capture)

    def toggle_pause(self) -> Task:
        paused = self.capture is not None and self.capture.paused
        return self.resume_capture() if paused else self.pause_capture()

    def start_capture(self) -> Task:
        return self.run("Starting capture", self.services.start_capture, on_done=self._set_capture)

    def stop_capture(self) -> Task:
        return self.run("Stopping capture", self.services.stop_capture, on_done=self._set_capture)

    # ----- shutting down ---------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop polling, cancel and wait for tasks, then close the services."""
        self._poll.stop()
        self.tasks.shutdown(wait=True)
        self.services.close()
