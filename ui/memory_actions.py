"""Changing memories from the memory browser: add / edit / delete, undo and history, the
agents' suggestions accepted or dismissed, vault values revealed for a while, and the dialogs
these open. `MemoryBrowser` (ui/memories.py) is built on this class and owns the widgets and
the selection it reads; every store call goes through the controller's task manager.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtWidgets import QDialog, QPushButton, QWidget

from app.services import Saved
from storage.history import Change
from storage.records import Event, MemoryType, Record, VaultEntry
from storage.suggestions import Suggestion
from ui.controller import Controller
from ui.dialogs import HistoryDialog, MemoryEditor, ProvenanceDialog, describe_change
from ui.memory_model import MemoryTableModel, diff_html

REVEAL_FOR_MS = 30_000


class MemoryActions(QWidget):
    """What the browser's buttons and suggestion links do (ui/memories.py sets these up)."""

    controller: Controller
    dialog: QWidget | None
    pending: list[Suggestion]
    _suggestions: dict[str, list[Suggestion]]
    model: MemoryTableModel
    buttons: dict[str, QPushButton]
    _hide_timer: QTimer
    _select_after_load: Record | None
    _message: str
    _last_change: Change | None

    if TYPE_CHECKING:  # the selection, defined by MemoryBrowser

        @property
        def memory_type(self) -> MemoryType | None: ...
        def current_item(self) -> Record | Event | None: ...
        def current(self) -> Record | None: ...
        def _selected(self) -> None: ...

    # ----- suggestions and what Undo would undo -----------------------------------------------

    def _set_pending(self, pending: list[Suggestion], last_change: Change | None) -> None:
        self._suggestions = {}
        for suggestion in pending:
            self._suggestions.setdefault(suggestion.memory_id, []).append(suggestion)
        self.model.set_suggested({k: len(v) for k, v in self._suggestions.items()})
        self._last_change = last_change
        undo = self.buttons["undo"]
        undo.setEnabled(last_change is not None)
        if last_change is None:
            undo.setText("Undo last change")
            undo.setToolTip("Nothing to undo")
        else:
            what = describe_change(last_change)
            undo.setText(f"Undo: {_short(what, 48)}")
            undo.setToolTip(f"Undo the last change: {what}")

    def _link(self, url: QUrl) -> None:
        """A link in the details: accept or dismiss one suggestion (accept:ID, dismiss:ID)."""
        action, _, suggestion_id = url.toString().partition(":")
        chosen = [s for s in self.pending if s.id == suggestion_id]
        if chosen and action in ("accept", "dismiss"):
            rest = [s for s in self.pending if s.id != suggestion_id]
            self.pending = chosen + rest  # the buttons act on the first
            (self.accept_suggestion if action == "accept" else self.dismiss_suggestion)()

    # ----- changing --------------------------------------------------------------------------

    def add(self) -> None:
        memory_type = self.memory_type
        if memory_type is not None:  # "All" has no one type to add to
            self._edit_dialog(MemoryEditor(memory_type, None, self), is_new=True)

    def edit(self) -> None:
        record = self.current()
        if record is None:
            return
        # Fetch afresh: the row may be stale, and a vault row holds only a masked secret.
        self.controller.run(
            "Opening a memory",
            self.controller.services.get,
            record.id,
            on_done=lambda fresh: self._edit_dialog(MemoryEditor(fresh.kind, fresh, self), False),
        )

    def _edit_dialog(self, dialog: MemoryEditor, is_new: bool) -> None:
        services = self.controller.services

        def saved() -> None:
            record = dialog.result_record
            assert record is not None
            save = services.add if is_new else services.replace
            self.controller.run(
                "Saving",
                save,
                record,
                on_done=lambda s: self._after_change(
                    _warned(f"Saved “{s.record.headline()}”.", s), s.record
                ),
            )

        self._show_dialog(dialog, saved)

    def delete(self) -> None:
        record = self.current()
        if record is None:
            return
        self.controller.run(
            "Deleting",
            self.controller.services.delete,
            record.id,
            on_done=lambda s: self._after_change(
                _warned(
                    f"Deleted “{s.record.headline()}”. “Undo” brings it back.",
                    s,
                ),
                None,
            ),
        )

    def accept_suggestion(self) -> None:
        """Apply the first suggestion on the selected memory (undoable; it stays the user's)."""
        if not self.pending:
            return
        record = self.current()
        self.controller.run(
            "Accepting the suggestion",
            self.controller.services.accept,
            self.pending[0].id,
            on_done=lambda saved: self._after_change(
                _warned("Accepted the suggestion.", saved), record
            ),
        )

    def dismiss_suggestion(self) -> None:
        """Turn the first suggestion down; the agents do not make it again."""
        if not self.pending:
            return
        record = self.current()
        self.controller.run(
            "Dismissing the suggestion",
            self.controller.services.dismiss,
            self.pending[0].id,
            on_done=lambda _s: self._after_change("Dismissed the suggestion.", record),
        )

    def undo(self) -> None:
        self._undo(None)

    def _undo(self, seq: int | None) -> None:
        self.controller.run("Undoing", self.controller.services.undo, seq, on_done=self._undone)

    def _undone(self, change: Change) -> None:
        undone = self._last_change
        what = describe_change(undone) if undone and undone.seq == change.reverts else None
        text = f"Undid {what}." if what else f"Undid change #{change.reverts}."
        self._after_change(text, None)

    def _after_change(self, message: str, select: Record | None) -> None:
        self._select_after_load = select
        self._message = message  # shown once the reload lands
        self.controller.memories_changed.emit()  # which reloads this view too

    def show_history(self) -> None:
        record = self.current()
        if record is None:
            return

        def opened(changes: list[Change]) -> None:
            dialog = HistoryDialog(record, changes, self)
            dialog.undo_requested.connect(self._undo)
            self._show_dialog(dialog, None)

        self.controller.run(
            "Loading history", self.controller.services.history_of, record.id, on_done=opened
        )

    def why(self) -> None:
        record = self.current_item()
        if record is None:
            return
        self.controller.run(
            "Finding sources",
            self.controller.services.provenance,
            record,
            on_done=lambda found: self._show_dialog(ProvenanceDialog(record, found, self), None),
        )

    def toggle_reveal(self) -> None:
        record = self.current()
        if not isinstance(record, VaultEntry):
            return
        if self.model.is_revealed(record.id):
            self.model.hide(record.id)
            self._selected()
            return

        def revealed(fresh: Record) -> None:
            assert isinstance(fresh, VaultEntry)
            self.model.reveal(fresh.id, fresh.secret_value)
            self._hide_timer.start(REVEAL_FOR_MS)
            self._selected()

        self.controller.run("Revealing", self.controller.services.get, record.id, on_done=revealed)

    def _show_dialog(self, dialog: QDialog, on_accept: Callable[[], None] | None) -> None:
        self.dialog = dialog
        if on_accept is not None:
            dialog.accepted.connect(on_accept)
        dialog.finished.connect(lambda _r: self._dialog_closed(dialog))
        dialog.open()

    def _dialog_closed(self, dialog: QDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()


def _warned(message: str, saved: Saved) -> str:
    """The status line after a change, with the warning when the change is saved but not yet
    in the vector index (it is, in SQLite: saving again would only make a copy)."""
    return f"{message} Warning: {saved.warning}." if saved.warning else message


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def suggestions_html(record: Record, pending: Sequence[Suggestion]) -> str:
    """The agents' suggestions on `record`, each with what it would change (words added and
    removed marked) and its own Accept / Dismiss links."""
    items = []
    for s in pending:
        if s.line is not None and s.op == "update":
            change = diff_html(s.line, str(s.fields.get("value", "")))
        elif s.op == "delete":
            change = "<i>" + s.describe() + "</i>"
        else:
            change = "<br>".join(
                f"<b>{name}:</b> <i>a new value (not shown)</i>"
                if name == "secret_value"
                else f"<b>{name}:</b> {diff_html(_text(getattr(record, name, '')), _text(value))}"
                for name, value in s.fields.items()
            )
        items.append(
            f"<li>the {s.agent} agent suggests: {change}<br>"
            f'<a href="accept:{s.id}">Accept</a> · <a href="dismiss:{s.id}">Dismiss</a></li>'
        )
    return (
        "<p><b>Suggested by the memory agents</b> (your words are never changed without "
        "you)</p><ul>" + "".join(items) + "</ul>"
    )


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return str(value)
