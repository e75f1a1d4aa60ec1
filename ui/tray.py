"""The tray icon: open the window, search everything, pause or resume capture (its state in the
menu, tooltip and icon), quit. It is what keeps Engram running when the window is closed."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.services import CaptureSnapshot
from ui.capture_panel import state_text
from ui.controller import Controller

COLOURS = {"recording": "#2e7d32", "paused": "#ef6c00", "off": "#607d8b"}


def engram_icon(state: str = "off", size: int = 64) -> QIcon:
    """Drawn, not shipped: a rounded square with an "E" and a dot for the capture state."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor("#3949ab"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(QRectF(2, 2, size - 4, size - 4), size / 5, size / 5)
    painter.setPen(QColor("white"))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.6))
    painter.setFont(font)
    painter.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "E")
    painter.setPen(QColor("white"))
    painter.setBrush(QColor(COLOURS.get(state, COLOURS["off"])))
    radius = size / 6
    painter.drawEllipse(QPointF(size - radius - 2, size - radius - 2), radius, radius)
    painter.end()
    return QIcon(pixmap)


def capture_state(snapshot: CaptureSnapshot | None) -> str:
    if snapshot is None:
        return "off"
    if snapshot.paused:
        return "paused"
    return "recording" if snapshot.status.state == "running" else "off"


class Tray(QObject):
    show_window = Signal()
    search_requested = Signal()
    quit_requested = Signal()

    def __init__(self, controller: Controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.icon = QSystemTrayIcon(engram_icon(), self)
        self.menu = QMenu()
        self.open_action = QAction("Open Engram", self.menu)
        self.open_action.triggered.connect(self.show_window)
        self.search_action = QAction("Search everything…", self.menu)
        self.search_action.triggered.connect(self.search_requested)
        self.state_action = QAction("Capture: starting…", self.menu)
        self.state_action.setEnabled(False)
        self.pause_action = QAction("Pause capture", self.menu)
        self.pause_action.triggered.connect(self.controller.toggle_pause)
        self.pause_hour_action = QAction("Pause for 1 hour", self.menu)
        self.pause_hour_action.triggered.connect(lambda: self.controller.pause_capture(60.0))
        self.quit_action = QAction("Quit Engram", self.menu)
        self.quit_action.triggered.connect(self.quit_requested)
        for action in (
            self.open_action,
            self.search_action,
            None,
            self.state_action,
            self.pause_action,
            self.pause_hour_action,
            None,
            self.quit_action,
        ):
            if action is None:
                self.menu.addSeparator()
            else:
                self.menu.addAction(action)
        self.icon.setContextMenu(self.menu)
        self.icon.setToolTip("Engram")
        self.icon.activated.connect(self._activated)
        controller.capture_changed.connect(self.update_state)
        controller.capture_failed.connect(self._unavailable)

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> bool:
        """Show the icon where there is a tray; False when there is none."""
        if not self.available():
            return False
        self.icon.show()
        return True

    def hide(self) -> None:
        self.icon.hide()

    def update_state(self, snapshot: CaptureSnapshot) -> None:
        text = state_text(snapshot)
        self.state_action.setText(f"Capture: {text}")
        self.pause_action.setText("Resume capture" if snapshot.paused else "Pause capture")
        self.pause_action.setEnabled(True)  # again, after capture was unavailable
        self.pause_hour_action.setEnabled(not snapshot.paused)
        self.icon.setIcon(engram_icon(capture_state(snapshot)))
        self.icon.setToolTip(f"Engram — capture: {text}")

    def _unavailable(self, message: str) -> None:
        self.state_action.setText("Capture: unavailable")
        self.icon.setToolTip(f"Engram — capture unavailable: {message}")
        for action in (self.pause_action, self.pause_hour_action):
            action.setEnabled(False)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.show_window.emit()
