"""The capture tab: live status, start/stop, pause (now, or for N minutes), resume, and the
exclusion list, edited and saved: application names in sight, window-title patterns (regular
expressions) under "Advanced" (a bad pattern is explained, nothing changes)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.services import CaptureSnapshot
from app.status import waiting
from storage.errors import EngramError
from ui.controller import Controller
from ui.memory_model import local_time

STATE_TEXT = {
    "running": "Recording",
    "paused": "Paused",
    "stopped": "Stopped",
    "error": "Not recording (error)",
}


def state_text(snapshot: CaptureSnapshot | None) -> str:
    if snapshot is None:
        return "Starting…"
    status = snapshot.status
    text = STATE_TEXT.get(status.state, status.state)
    if snapshot.paused:
        text = "Paused" + (
            f" until {status.paused_until.astimezone():%H:%M}" if status.paused_until else ""
        )
        if status.state == "stopped":
            text += " (capture stopped)"
    return text


class CapturePanel(QWidget):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.labels: dict[str, QLabel] = {}
        status_box = QGroupBox("Status")
        form = QFormLayout(status_box)
        for key, title in [
            ("state", "State"),
            ("last", "Last event"),
            ("counts", "Looks at the screen"),
            ("backlog", "Backlog"),
            ("ocr", "OCR"),
            ("error", "Last error"),
        ]:
            label = QLabel("…")
            label.setWordWrap(True)
            self.labels[key] = label
            form.addRow(title, label)

        self.start_button = QPushButton("Start capture")
        self.start_button.clicked.connect(self._start_stop)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(lambda: self.controller.pause_capture(None))
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 24 * 60)
        self.minutes.setValue(15)
        self.minutes.setSuffix(" min")
        self.pause_for_button = QPushButton("Pause for")
        self.pause_for_button.clicked.connect(
            lambda: self.controller.pause_capture(float(self.minutes.value()))
        )
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.controller.resume_capture)
        controls = QHBoxLayout()
        for widget in (
            self.start_button,
            self.pause_button,
            self.pause_for_button,
            self.minutes,
            self.resume_button,
        ):
            controls.addWidget(widget)
        controls.addStretch(1)

        rules = QGroupBox("Never capture these applications (one name per line)")
        rules_layout = QFormLayout(rules)
        self.apps = QPlainTextEdit()
        self.apps.setPlaceholderText("application names, e.g. keepassxc")
        # Title patterns are regular expressions: kept out of sight under "Advanced".
        self.advanced = QToolButton()
        self.advanced.setText("Advanced: window titles")
        self.advanced.setCheckable(True)
        self.advanced.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced.toggled.connect(self._show_advanced)
        self.titles = QPlainTextEdit()
        self.titles.setPlaceholderText(
            "window-title patterns (regular expressions, case-insensitive), e.g. private browsing"
        )
        self.titles.setVisible(False)
        rules_layout.addRow("Applications", self.apps)
        rules_layout.addRow(self.advanced)
        rules_layout.addRow(self.titles)
        self.save_rules = QPushButton("Save exclusions")
        self.save_rules.clicked.connect(self.save_exclusions)
        self.rules_message = QLabel()
        self.rules_message.setWordWrap(True)
        rules_layout.addRow(self.save_rules, self.rules_message)

        layout = QVBoxLayout(self)
        layout.addWidget(status_box)
        layout.addLayout(controls)
        layout.addWidget(rules, 1)
        self._rules_loaded = False
        self._ocr_backlog = 0
        controller.capture_changed.connect(self.show_snapshot)
        controller.backlog_changed.connect(lambda _counts: self._show_backlog())

    def _show_advanced(self, shown: bool) -> None:
        self.titles.setVisible(shown)
        self.advanced.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def show_snapshot(self, snapshot: CaptureSnapshot) -> None:
        status = snapshot.status
        self.labels["state"].setText(state_text(snapshot))
        if status.last_event_at is not None:
            where = " — ".join(p for p in (status.last_event_app, status.last_event_title) if p)
            self.labels["last"].setText(f"{local_time(status.last_event_at)}  {where}")
        else:
            self.labels["last"].setText("none yet")
        self.labels["counts"].setText(
            f"{status.frames} looks, {status.unchanged} unchanged, {status.events} events"
        )
        self._ocr_backlog = status.ocr_backlog
        self._show_backlog()
        self.labels["ocr"].setText(status.ocr_message)
        self.labels["error"].setText(status.last_error or "none")
        running = status.state != "stopped"
        self.start_button.setText("Stop capture" if running else "Start capture")
        self.pause_button.setEnabled(not snapshot.paused)
        self.pause_for_button.setEnabled(not snapshot.paused)
        self.resume_button.setEnabled(snapshot.paused)
        if not self._rules_loaded:
            apps, titles = snapshot.exclusions
            self.apps.setPlainText("\n".join(apps))
            self.titles.setPlainText("\n".join(titles))
            self._rules_loaded = True

    def _show_backlog(self) -> None:
        """The agents' count is the controller's (the status bar shows the same number)."""
        counts = self.controller.backlog
        agents = f"{waiting(counts)} event(s)" if counts else "…"
        self.labels["backlog"].setText(
            f"{self._ocr_backlog} frame(s) waiting for OCR, {agents} waiting for the memory agents"
        )

    def _start_stop(self) -> None:
        snapshot = self.controller.capture
        if snapshot is not None and snapshot.status.state != "stopped":
            self.controller.stop_capture()
        else:
            self.controller.start_capture()

    def save_exclusions(self) -> None:
        apps = self.apps.toPlainText().splitlines()
        titles = self.titles.toPlainText().splitlines()

        def failed(exc: BaseException) -> None:
            text = str(exc) if isinstance(exc, EngramError | ValueError) else repr(exc)
            self.rules_message.setStyleSheet("color: #b00020")
            self.rules_message.setText(f"Not saved: {text}")
            self.advanced.setChecked(True)  # a bad title pattern is in sight

        def saved(_settings: object) -> None:
            self.rules_message.setStyleSheet("")
            self.rules_message.setText("Saved; capture uses them now.")
            self.controller.refresh_capture()

        self.controller.run(
            "Saving exclusions",
            self.controller.services.set_exclusions,
            apps,
            titles,
            on_done=saved,
            on_error=failed,
        )
