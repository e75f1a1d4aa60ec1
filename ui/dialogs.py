"""Dialogs of the memory browser: edit or add a memory, its change history, its sources.

Each is opened with `open()` (window-modal, not blocking) and reports through signals, so the
event loop keeps running and tests can drive them like a person would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.services import Provenance
from storage.errors import EngramError
from storage.history import Change
from storage.kinds import EditField, kind_spec
from storage.origin import actor_label
from storage.records import Event, MemoryType, Record
from storage.text import clip
from ui.memory_model import diff_html, local_time


def error_text(exc: BaseException) -> str:
    """A validation error as lines a person reads: 'Summary: text is empty'."""
    if isinstance(exc, ValidationError):
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).replace("_", " ") or "memory"
            lines.append(f"{field.capitalize()}: {err['msg'].removeprefix('Value error, ')}")
        return "\n".join(lines)
    return str(exc)


class MemoryEditor(QDialog):
    """Add (record=None) or edit a memory. `result_record` holds the validated record."""

    def __init__(
        self, memory_type: MemoryType, record: Record | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.memory_type = memory_type
        self.original = record
        self.result_record: Record | None = None
        verb = "Edit" if record else "Add"
        self.spec = kind_spec(memory_type)
        self.setWindowTitle(f"{verb} {self.spec.title.lower()} memory")
        self.widgets: dict[str, QWidget] = {}
        form = QFormLayout()
        for field in self.spec.fields:
            widget = self._widget(field, getattr(record, field.name) if record else None)
            self.widgets[field.name] = widget
            form.addRow(field.label, widget)
        self.tree = QLineEdit("/".join(record.tree_path) if record else "")
        self.tree.setPlaceholderText("e.g. work/projects/engram")
        form.addRow("Folder", self.tree)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(560, 420)

    def _widget(self, field: EditField, value: Any) -> QWidget:
        kind = field.widget
        if kind == "choice":
            combo = QComboBox()
            combo.addItems(list(self.spec.choices(field.name)))
            if value:
                combo.setCurrentText(str(value))
            return combo
        if kind == "datetime":
            edit = QDateTimeEdit()
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            when = value or datetime.now().astimezone()
            edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(when.timestamp())))
            return edit
        if field.multiline:
            text = QPlainTextEdit()
            if value:
                text.setPlainText("\n".join(value) if kind == "lines" else str(value))
            text.setTabChangesFocus(True)
            return text
        line = QLineEdit(str(value) if value else "")
        if kind == "secret":
            line.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)
        return line

    def set_value(self, name: str, value: str) -> None:
        widget = self.widgets[name]
        if isinstance(widget, QPlainTextEdit):
            widget.setPlainText(value)
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(value)
        elif isinstance(widget, QLineEdit):
            widget.setText(value)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in self.spec.fields:
            name, kind = field.name, field.widget
            widget = self.widgets[name]
            if isinstance(widget, QComboBox):
                out[name] = widget.currentText()
            elif isinstance(widget, QDateTimeEdit):
                secs = widget.dateTime().toSecsSinceEpoch()
                out[name] = datetime.fromtimestamp(secs).astimezone()
            elif isinstance(widget, QPlainTextEdit):
                text = widget.toPlainText()
                out[name] = (
                    tuple(s.strip() for s in text.splitlines() if s.strip())
                    if kind == "lines"
                    else text
                )
            elif isinstance(widget, QLineEdit):
                out[name] = widget.text().strip()
        out["tree_path"] = tuple(p.strip() for p in self.tree.text().split("/") if p.strip())
        return out

    def accept(self) -> None:
        """Validate first: a bad value is explained here and the dialog stays open."""
        try:
            values = self.values()
            if self.original is not None:
                record = self.original.updated(**values)
            else:
                record = self.spec.record_class.model_validate(values)
        except (ValidationError, EngramError, ValueError) as exc:
            self.message.setText(error_text(exc))
            return
        texts = [values[f.name] for f in self.spec.fields if f.says_something]
        if not any(t.strip() for t in texts):
            self.message.setText("A memory needs some text: fill in at least the main field.")
            return
        self.result_record = record
        super().accept()


#: Headline fields of a history entry's record, in the order they are tried.
_HEADLINE_FIELDS = ("summary", "name", "title", "caption", "value")


def change_headline(change: Change) -> str:
    """The memory a history entry is about, in a few words (its headline after, or before)."""
    state = change.after or change.before or {}
    try:
        return kind_spec(change.memory_type).record_class.model_validate(state).headline()
    except (ValidationError, ValueError):  # an entry older than a field's rule
        return next((str(state[k]) for k in _HEADLINE_FIELDS if state.get(k)), change.memory_id)


def change_verb(change: Change) -> str:
    if change.reverts is not None:
        return f"undo of #{change.reverts}"
    return {"create": "added", "update": "edited", "delete": "deleted", "merge": "merged"}.get(
        change.op, change.op
    )


def describe_change(change: Change) -> str:
    """One line for a person: 'edited semantic “Desk is on floor 2” (by you)'."""
    noun = kind_spec(change.memory_type).noun
    return (
        f"{change_verb(change)} {noun} “{clip(change_headline(change), 60)}” "
        f"(by {actor_label(change.actor)})"
    )


def change_diff_html(change: Change) -> str:
    """Before → after of each field a history entry changed, words added and removed marked."""
    before, after = change.before or {}, change.after or {}
    parts = []
    for spec in kind_spec(change.memory_type).fields:
        old, new = before.get(spec.name), after.get(spec.name)
        if old == new:
            continue
        if spec.widget == "secret":
            parts.append(f"<p><b>{spec.heading}:</b> <i>changed (not shown)</i></p>")
            continue
        parts.append(f"<p><b>{spec.heading}:</b><br>{diff_html(_shown(old), _shown(new))}</p>")
    old_path, new_path = before.get("tree_path") or [], after.get("tree_path") or []
    if old_path != new_path:
        folder = diff_html("/".join(old_path), "/".join(new_path))
        parts.append(f"<p><b>Folder:</b> {folder}</p>")
    who = f"<p><i>By {actor_label(change.actor)}, {local_time(change.at)}.</i></p>"
    return who + ("".join(parts) or "<p>No text changed.</p>")


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return str(value)


class HistoryDialog(QDialog):
    """Every change to one memory, newest first, who made it and, for the selected one, its
    before → after with the words added and removed marked; any change can be undone."""

    undo_requested = Signal(int)

    def __init__(self, record: Record, changes: list[Change], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"History of “{record.headline()}”")
        self.changes = changes
        self.table = QTableWidget(len(changes), 4)
        self.table.setHorizontalHeaderLabels(["When", "Change", "By", "Now"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, change in enumerate(changes):
            headline = "(deleted)" if change.after is None else change_headline(change)
            for col, text in enumerate(
                [
                    local_time(change.at),
                    f"#{change.seq} {change_verb(change)}",
                    actor_label(change.actor),
                    headline[:120],
                ]
            ):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.diff = QTextBrowser()
        self.table.currentCellChanged.connect(lambda row, *_: self._show(row))
        if changes:
            self.table.selectRow(0)
        self.undo_button = QPushButton("Undo the selected change")
        self.undo_button.setEnabled(bool(changes))
        self.undo_button.clicked.connect(self._undo)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.diff, 1)
        layout.addWidget(self.undo_button)
        layout.addWidget(close)
        self.resize(720, 520)

    def _show(self, row: int) -> None:
        if 0 <= row < len(self.changes):
            self.diff.setHtml(change_diff_html(self.changes[row]))

    def _undo(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.changes):
            self.undo_requested.emit(self.changes[row].seq)
            self.accept()


class ProvenanceDialog(QDialog):
    """ "Why do I know this?": the source events a memory was made from."""

    def __init__(
        self, record: Record | Event, found: Provenance, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Why do I know this?")
        if isinstance(record, Event):
            intro = QLabel(f"This was {record.origin()}: Engram keeps what it read as it was.")
        else:
            intro = QLabel(
                f"“{record.headline()}” was made from {len(record.provenance)} source(s)."
                if record.provenance
                else f"“{record.headline()}” has no recorded sources: it was added by hand or "
                "before sources were kept."
            )
        intro.setWordWrap(True)
        self.table = QTableWidget(len(found.events), 4)
        self.table.setHorizontalHeaderLabels(["Time", "App", "Window", "Text"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, event in enumerate(found.events):
            cells = [
                local_time(event.occurred_at),
                event.app or event.source,
                event.window_title,
                event.text.replace("\n", " ")[:200],
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(event.text[:2000] if col == 3 else text)
                self.table.setItem(row, col, item)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.table.currentCellChanged.connect(lambda row, *_: self._show(found, row))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.text, 1)
        if found.external:
            other = QLabel(
                "Other sources (not screen or chat events): " + ", ".join(found.external[:20])
            )
            other.setWordWrap(True)
            other.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(other)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        if found.events:
            self.table.selectRow(0)
        self.resize(760, 460)

    def _show(self, found: Provenance, row: int) -> None:
        if 0 <= row < len(found.events):
            self.text.setPlainText(found.events[row].text)
