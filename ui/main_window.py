"""The main window: chat, memories, timeline and capture tabs, menus, and a status bar with the
model, the agents' backlog (a button that shows the activity panel), capture, work in progress
(with progress) and the problems in force (a line; the details and what to do on a click)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QWidget,
)

from app import paths
from app.services import CaptureSnapshot
from app.settings import Settings
from app.status import Problem, backlog_text
from ui.capture_panel import CapturePanel, state_text
from ui.chat import ChatView
from ui.controller import Controller
from ui.memories import MemoryBrowser
from ui.settings_dialog import SettingsDialog
from ui.status import ActivityPanel, ProblemDialog
from ui.tasks import TaskContext
from ui.timeline import TimelineView
from ui.tray import engram_icon


def window_state() -> QSettings:
    """Window geometry only (settings proper live in the one Settings model)."""
    return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    #: The window was closed for good (no tray to live in, or Quit): the app should exit.
    quit_requested = Signal()

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.keep_running_in_tray = False  # set by the app when a tray icon is showing
        self.dialog: QWidget | None = None
        self.setWindowTitle("Engram")
        self.setWindowIcon(engram_icon())
        self.chat = ChatView(controller)
        self.memories = MemoryBrowser(controller)
        self.timeline = TimelineView(controller)
        self.capture = CapturePanel(controller)
        self.tabs = QTabWidget()
        for widget, title in [
            (self.chat, "&Chat"),  # Alt+letter switches tabs (menus: F, E, T)
            (self.memories, "&Memories"),
            (self.timeline, "T&imeline"),
            (self.capture, "Ca&pture"),
        ]:
            self.tabs.addTab(widget, title)
        self.setCentralWidget(self.tabs)
        self.chat.open_memory.connect(self.open_memory)
        self.timeline.open_memory.connect(self.open_memory)
        self.timeline.search_requested.connect(self.search_from_here)
        self.activity = ActivityPanel(controller)
        self.activity_dock = QDockWidget("Activity", self)
        self.activity_dock.setObjectName("activity")
        self.activity_dock.setWidget(self.activity)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.activity_dock)
        self.activity_dock.hide()
        self._menus()
        self._status_bar()
        self.resize(1100, 720)
        geometry = window_state().value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)

    # ----- menus -----------------------------------------------------------------------------

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.settings_action = self._action(
            file_menu, "&Settings…", self.open_settings, QKeySequence.StandardKey.Preferences
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Import memories…", self.import_memories)
        self._action(file_menu, "&Export memories…", self.export_memories)
        self._action(file_menu, "Import from &other apps…", self.import_past)
        file_menu.addSeparator()
        self.quit_action = self._action(
            file_menu, "&Quit", self.request_quit, QKeySequence.StandardKey.Quit
        )
        edit = self.menuBar().addMenu("&Edit")
        self.search_action = self._action(edit, "&Search everything…", self.open_search)
        self.search_action.setShortcut(QKeySequence("Ctrl+K"))
        # Anywhere in the app, dialogs of this window included.
        self.search_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        tools = self.menuBar().addMenu("&Tools")
        self._action(tools, "&Re-index memories", self.reindex)
        self._action(tools, "&New conversation", self.chat.new_conversation)
        tools.addAction(self.activity_dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About Engram", self.show_about)

    def show_about(self) -> None:
        """The versions of Engram and its engines, as `engram --version` prints them."""
        from app.version import version_text

        box = QMessageBox(QMessageBox.Icon.Information, "About Engram", "", parent=self)
        box.setText("Engram: a private, local-first memory of what you do on your computer.")
        box.setInformativeText(version_text())
        box.setObjectName("about-box")
        box.open()

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot: Callable[[], object],
        shortcut: QKeySequence.StandardKey | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ----- status bar ------------------------------------------------------------------------

    def _status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel("Model: not loaded")
        self.backlog_button = QPushButton("Agents: –")
        self.backlog_button.setFlat(True)
        self.backlog_button.setToolTip("Show what the memory agents and capture are doing")
        self.backlog_button.clicked.connect(self.toggle_activity)
        self.capture_label = QLabel("Capture: starting…")
        self.activity_label = QLabel("Opening memories…")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.error_button = QPushButton("")
        self.error_button.setFlat(True)
        self.error_button.setStyleSheet("color: #b00020; text-align: left")
        self.error_button.setVisible(False)
        self.error_button.clicked.connect(self.show_last_error)
        bar.addWidget(self.activity_label, 1)
        bar.addWidget(self.error_button)
        bar.addPermanentWidget(self.progress)
        for label in (self.capture_label, self.backlog_button, self.model_label):
            bar.addPermanentWidget(label)
        c = self.controller
        c.tasks.activity.connect(self._activity)
        c.tasks.progress.connect(self._progress)
        c.problems_changed.connect(self._problems)
        c.model_changed.connect(self._model)
        c.backlog_changed.connect(self._backlog)
        c.capture_changed.connect(self._capture)
        c.capture_failed.connect(self._capture_failed)
        c.store_failed.connect(self._store_failed)

    def _activity(self, labels: list[str]) -> None:
        self.activity_label.setText(" · ".join(f"{label}…" for label in labels) or "Ready")
        if not labels:
            self.progress.setVisible(False)

    def _progress(self, _label: str, done: int, total: int) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _problems(self, problems: list[Problem]) -> None:
        """One short line for the newest problem (and how many more); cleared with the last."""
        if not problems:
            self.error_button.setVisible(False)
            self.error_button.setToolTip("")
            return
        newest = problems[-1]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        self.error_button.setText(f"⚠ {newest.line()}{more}")
        self.error_button.setToolTip(f"{newest.title}: {newest.message}\n\nClick for what to do.")
        self.error_button.setVisible(True)

    def show_last_error(self) -> None:
        dialog = ProblemDialog(self.controller.problems.active(), self)
        dialog.dismissed.connect(self._dismiss_problems)
        dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.open()

    def _dismiss_problems(self, keys: list[str]) -> None:
        for key in keys:
            self.controller.clear_problem(key)

    def toggle_activity(self) -> None:
        self.activity_dock.setVisible(not self.activity_dock.isVisible())

    def search_from_here(self, text: str) -> None:
        """The timeline's "search from here": everything (memories and captured events) is
        searched for `text`, on the memory browser's All tab."""
        self.tabs.setCurrentWidget(self.memories)
        self.memories.search_everything(text)

    def _model(self, state: str, detail: str) -> None:
        text = {
            "loading": "Model: loading…",
            "ready": f"Model: {detail}",
            "error": "Model: failed to load",
        }.get(state, f"Model: {state}")
        self.model_label.setText(text)  # the failure itself is a problem (status bar, details)
        self.model_label.setToolTip(self.controller.model_tooltip if state == "ready" else detail)

    def _backlog(self, counts: dict[str, int]) -> None:
        self.backlog_button.setText(f"Agents: {backlog_text(counts)}")
        self.backlog_button.setToolTip(
            f"{counts.get('done', 0)} events turned into memories. Click for the activity panel."
        )

    def _capture(self, snapshot: CaptureSnapshot) -> None:
        self.capture_label.setText(f"Capture: {state_text(snapshot)}")
        self.capture_label.setToolTip("")  # an earlier failure's message no longer applies

    def _capture_failed(self, message: str) -> None:
        self.capture_label.setText("Capture: unavailable")
        self.capture_label.setToolTip(message)

    def _store_failed(self, _message: str) -> None:
        self.activity_label.setText("Memories could not be opened")  # the problem says why

    # ----- actions ---------------------------------------------------------------------------

    def open_search(self) -> None:
        """Ctrl+K and the tray: the window forward, the search box of "All" focused."""
        self.bring_forward()
        self.tabs.setCurrentWidget(self.memories)
        self.memories.search_everything()

    def open_memory(self, memory_id: str) -> None:
        self.tabs.setCurrentWidget(self.memories)
        self.memories.show_memory(memory_id)

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.controller.services.settings, self)
        dialog.saved.connect(self._save_settings)
        dialog.retention_asked.connect(lambda days: self._count_retention(dialog, days))
        self._count_retention(dialog, dialog.keep_days.value())
        dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.open()

    def _count_retention(self, dialog: SettingsDialog, days: int) -> None:
        """Fill in the settings dialog's count of what retention will remove."""
        if self.controller.services.store_is_open:
            self.controller.run(
                "Counting old events",
                self.controller.services.retention_preview,
                days,
                on_done=lambda n: dialog.show_retention(days, n),
                quiet=True,
            )

    def _save_settings(self, new: Settings) -> None:
        def saved(pending: list[str]) -> None:
            note = "Settings saved."
            if pending:
                note += " Restart Engram to apply " + ", ".join(pending) + "."
            self.activity_label.setText(note)

        self.controller.run(
            "Saving settings", self.controller.services.save_settings, new, on_done=saved
        )

    def reindex(self) -> None:
        def work(ctx: TaskContext) -> int:
            return self.controller.services.reindex(ctx.progress)

        task = self.controller.tasks.stream("Re-indexing", work)
        task.done.connect(lambda n: self.activity_label.setText(f"Re-indexed {n} memories."))

    def import_memories(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import an Engram export folder")
        if folder:
            self.controller.run(
                "Importing",
                self.controller.services.import_folder,
                Path(folder),
                on_done=self._imported,
            )

    def _imported(self, counts: dict[str, int]) -> None:
        self.activity_label.setText(f"Imported {sum(counts.values())} records.")
        self.controller.memories_changed.emit()

    def import_past(self) -> None:
        """Chat exports, documents, browser history (ui/import_dialog.py)."""
        from ui.import_dialog import ImportDialog

        dialog = ImportDialog(self.controller, self)
        dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.open()

    def export_memories(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to a folder")
        if folder:

            def work(ctx: TaskContext) -> dict[str, int]:
                return self.controller.services.export_folder(Path(folder), ctx.progress)

            task = self.controller.tasks.stream("Exporting", work)
            task.done.connect(
                lambda counts: self.activity_label.setText(
                    f"Exported {sum(counts.values())} records to {folder}."
                )
            )

    # ----- window life -----------------------------------------------------------------------

    def bring_forward(self) -> None:
        self.show()
        self.setWindowState(
            (self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive
        )
        self.raise_()
        self.activateWindow()

    def request_quit(self) -> None:
        self.keep_running_in_tray = False
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        window_state().setValue("geometry", self.saveGeometry())
        if self.keep_running_in_tray:
            event.ignore()
            self.hide()  # the tray keeps Engram running
            return
        event.accept()
        self.quit_requested.emit()
