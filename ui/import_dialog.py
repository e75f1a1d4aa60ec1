"""File → Import from other apps…: a chat export, documents, a calendar or the browser history,
imported on a worker thread (app/importers/jobs.py) with a progress bar, a count and an ETA,
Cancel (what was stored stays; importing again finishes it) and the summary at the end."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.importers.base import ImportCancelled, Summary
from app.importers.jobs import Kind, run_import
from ui.controller import Controller
from ui.tasks import Task, TaskContext

KINDS: list[tuple[Kind, str]] = [
    ("chat", "A chat export (ChatGPT, WhatsApp, JSON Lines, LoCoMo)"),
    ("files", "Documents in a folder (Markdown, text, PDF)"),
    ("browser", "Browser history (Firefox, Chromium)"),
    ("calendar", "A calendar (.ics)"),
]


def summary_text(summaries: list[Summary]) -> str:
    lines = []
    for s in summaries:
        line = f"{Path(s.file).name}: {s.new:,} new, {s.duplicates:,} already there"
        if s.redacted:
            line += f", {s.redacted:,} secrets redacted"
        if s.rejected:
            why = "; ".join(f"{n} {reason}" for reason, n in s.rejected.most_common(3))
            line += f", {sum(s.rejected.values()):,} left out ({why})"
        lines.append(line)
    return "\n".join(lines)


class ImportDialog(QDialog):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import from other apps")
        self.controller = controller
        self.task: Task | None = None
        self._started = 0.0
        self.kind = QComboBox()
        for kind, label in KINDS:
            self.kind.addItem(label, kind)
        self.path = QLineEdit()
        self.path.setPlaceholderText("a file or folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("What", self.kind)
        form.addRow("From", row)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self._kind_changed()

    def _selected(self) -> Kind:
        kind: Kind = self.kind.currentData()
        return kind

    def _kind_changed(self) -> None:
        if self._selected() == "browser":
            self.path.setPlaceholderText("empty: every Firefox and Chromium profile found")
        else:
            self.path.setPlaceholderText("a file or folder")

    def _browse(self) -> None:
        if self._selected() == "files":
            chosen = QFileDialog.getExistingDirectory(self, "Documents to import")
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, "File to import")
        if chosen:
            self.path.setText(chosen)

    def start(self) -> None:
        kind, text = self._selected(), self.path.text().strip()
        if not text and kind != "browser":
            self.status.setText("Choose a file or folder first.")
            return
        path = Path(text).expanduser() if text else None
        services = self.controller.services

        def work(ctx: TaskContext) -> list[Summary] | str:
            try:
                return run_import(
                    services.store(), kind, path, on_progress=ctx.progress, cancel=ctx.cancelled
                )
            except ImportCancelled as stopped:  # the user's choice, not an error
                return f"Stopped: {stopped}"

        self._started = time.monotonic()
        self.start_button.setEnabled(False)
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        self.status.setText("Reading…")
        task = self.controller.tasks.stream("Importing", work)
        task.progressed.connect(self._progress)
        task.done.connect(self._done)
        task.failed.connect(self._failed)
        self.task = task

    def _progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        rate = done / max(time.monotonic() - self._started, 1e-6)
        left = (total - done) / rate if rate > 0 else 0.0
        self.status.setText(f"{done:,} of {total:,} · about {int(left) + 1} s left")

    def _done(self, outcome: list[Summary] | str) -> None:
        self.task = None
        self.start_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.controller.memories_changed.emit()
        if isinstance(outcome, str):
            self.bar.setVisible(False)
            self.status.setText(outcome)
            return
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.status.setText(summary_text(outcome))

    def _failed(self, error: BaseException) -> None:
        self.task = None
        self.bar.setVisible(False)
        self.start_button.setEnabled(True)
        self.status.setText(str(error))

    def cancel(self) -> None:
        if self.task is not None:
            self.status.setText("Stopping after this batch…")
            self.task.cancel()
            return
        self.reject()
