"""The first-run page: what Engram captures, what it never keeps, where the data lives, how to
pause and exclude, and the user's yes or no to capture (and to starting at login).

Capture never starts before this page (or the Capture tab's Start) got a yes. Closing it
without an answer leaves capture off, and the page comes back at the next launch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings


def first_run_text(data_dir: Path) -> str:
    """The page's explanation as rich text (also what the tests read)."""
    folder = str(data_dir).replace("&", "&amp;").replace("<", "&lt;")
    return (
        "<h2>Welcome to Engram</h2>"
        "<p>Engram remembers what you see and say on this computer, so you can search it and "
        "ask about it later.</p>"
        "<h3>What is captured</h3>"
        "<p>Every few seconds, when the screen changed, Engram reads the <b>text</b> of your "
        "screen (OCR), with the application, the window title and the time. Your chats with "
        "Engram are kept too. Memory agents then turn this into memories you can browse, edit "
        "and delete.</p>"
        "<h3>What is never stored</h3>"
        "<p><b>Screenshots</b>: each image is read and thrown away. <b>Secrets</b> that look "
        "like passwords, keys, tokens or card numbers are blanked out before anything is saved. "
        "Password managers, private browsing windows and Engram's own windows are never read.</p>"
        "<h3>Where your data lives</h3>"
        f"<p>Only on this computer, in <code>{folder}</code>. Nothing is sent anywhere unless "
        "you choose a model server in Settings.</p>"
        "<h3>Pausing and excluding</h3>"
        "<p>Pause capture at any time from the tray icon (<i>Pause capture</i>, <i>Pause for "
        "1 hour</i>) or the <i>Capture</i> tab, where you also list the applications Engram "
        "must never read.</p>"
    )


class FirstRunDialog(QDialog):
    #: The answer: capture on, start at login.
    answered = Signal(bool, bool)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Engram")
        self.text = QLabel(first_run_text(settings.resolved_data_dir()))
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.capture = QCheckBox("Read my screen and remember what I see (change it any time)")
        self.capture.setChecked(settings.capture_consent)
        self.login = QCheckBox("Start Engram in the tray when I log in")
        self.login.setChecked(settings.start_at_login)
        buttons = QDialogButtonBox()
        self.start_button = buttons.addButton(
            "Start Engram", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.start_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.capture)
        layout.addWidget(self.login)
        layout.addWidget(buttons)
        self.setMinimumWidth(620)

    def accept(self) -> None:
        self.answered.emit(self.capture.isChecked(), self.login.isChecked())
        super().accept()
