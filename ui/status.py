"""Status that explains itself: the details of the problems in force (what happened, what to
do, "Copy details"), and the activity panel (agent backlog, events per minute, memories made
today, the last batch's rejected operations with their reasons)."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QGuiApplication, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.status import Activity, BatchSummary, Problem, backlog_text, measure, rejection_text
from ui.controller import Controller


class ProblemDialog(QDialog):
    """Each problem in force: its line, what happened, what to do, and "Copy details"."""

    #: The person dismissed these problems (one-off failures they have now read).
    dismissed = Signal(list)

    def __init__(self, problems: list[Problem], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Engram — what went wrong")
        self.problems = problems
        self.copy_buttons: list[QPushButton] = []
        layout = QVBoxLayout(self)
        for problem in problems:
            box = QGroupBox(problem.title)
            form = QFormLayout(box)
            what = QLabel(problem.message)
            what.setWordWrap(True)
            todo = QLabel(problem.advice)
            todo.setWordWrap(True)
            form.addRow("What happened", what)
            form.addRow("What to do", todo)
            if problem.times > 1:
                form.addRow("", QLabel(f"Happened {problem.times} times"))
            copy = QPushButton("Copy details")
            copy.clicked.connect(lambda _c=False, p=problem: self.copy(p))
            self.copy_buttons.append(copy)
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(copy)
            form.addRow(row)
            layout.addWidget(box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.dismiss_button = buttons.addButton("Dismiss", QDialogButtonBox.ButtonRole.ResetRole)
        self.dismiss_button.setToolTip("Hide these until they happen again")
        self.dismiss_button.clicked.connect(self._dismiss)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, self.sizeHint().height())

    def copy(self, problem: Problem) -> None:
        QGuiApplication.clipboard().setText(problem.details())

    def _dismiss(self) -> None:
        self.dismissed.emit([p.key for p in self.problems])
        self.accept()


class ActivityPanel(QWidget):
    """What the memory agents and capture are doing, refreshed while it is shown."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.labels: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, title in [
            ("waiting", "Agent backlog"),
            ("rate", "Events per minute"),
            ("today", "Memories made today"),
            ("batch", "Last batch"),
        ]:
            label = QLabel("…")
            label.setWordWrap(True)
            self.labels[key] = label
            form.addRow(title, label)
        self.rejected = QListWidget()
        self.rejected.setWordWrap(True)
        self.rejected_label = QLabel("Rejected operations of the last batch")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.rejected_label)
        layout.addWidget(self.rejected, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(5000)
        self._timer.timeout.connect(self.refresh)
        self._busy = False
        controller.backlog_changed.connect(self.show_backlog)
        controller.batch_reported.connect(self.show_batch)
        self.show_backlog(controller.backlog)
        self.show_batch(controller.last_batch)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._timer.start()
        self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    def refresh(self) -> None:
        services = self.controller.services
        if self._busy or not services.store_is_open:
            return
        self._busy = True
        tz = datetime.now().astimezone().tzinfo
        assert tz is not None
        self.controller.run(
            "activity",
            lambda: measure(services.store(), tz),
            on_done=self.show_activity,
            on_error=lambda _e: setattr(self, "_busy", False),
            quiet=True,
        )

    def show_activity(self, activity: Activity) -> None:
        self._busy = False
        self.labels["rate"].setText(f"{activity.events_per_minute:.1f} (last 10 minutes)")
        self.labels["today"].setText(str(activity.memories_today))

    def show_backlog(self, counts: dict[str, int]) -> None:
        self.labels["waiting"].setText(backlog_text(counts) if counts else "…")

    def show_batch(self, summary: BatchSummary | None) -> None:
        self.rejected.clear()
        if summary is None:
            self.labels["batch"].setText("none yet")
            self.rejected_label.setText("Rejected operations of the last batch")
            return
        self.labels["batch"].setText(summary.line())
        self.rejected_label.setText(
            f"Rejected operations of the last batch ({len(summary.rejected)})"
            if summary.rejected
            else "Rejected operations of the last batch: none"
        )
        for rejection in summary.rejected:
            self.rejected.addItem(rejection_text(rejection))
