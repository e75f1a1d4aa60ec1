"""The memory browser: one view per memory type, hybrid search, time filter, table or tree,
add / edit / delete with history and undo, vault values masked until revealed, and
"why do I know this?". Every store call goes through the controller's task manager.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabBar,
    QTableView,
    QTextBrowser,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.services import Saved
from storage.history import Change
from storage.kinds import kind_spec
from storage.records import MemoryType, Record, VaultEntry
from storage.store import SearchHit
from storage.suggestions import Suggestion
from ui.controller import Controller
from ui.dialogs import HistoryDialog, MemoryEditor, ProvenanceDialog
from ui.memory_model import (
    ID_ROLE,
    SORT_ROLE,
    MemoryTableModel,
    record_details,
    tree_model,
)

TIME_FILTERS: list[tuple[str, timedelta | None]] = [
    ("Any time", None),
    ("Today", timedelta(days=1)),
    ("Past 7 days", timedelta(days=7)),
    ("Past 30 days", timedelta(days=30)),
    ("Past year", timedelta(days=365)),
]
REVEAL_FOR_MS = 30_000


class MemoryBrowser(QWidget):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.types = list(MemoryType)
        self.dialog: QWidget | None = None  # the dialog open now (tests drive it)
        self._load_seq = 0
        self._select_after_load: Record | None = None
        self._message = ""
        #: Pending suggestions on the selected memory (accept/dismiss act on the first).
        self.pending: list[Suggestion] = []
        self._suggestions: dict[str, list[Suggestion]] = {}

        self.tabs = QTabBar()
        for memory_type in self.types:
            self.tabs.addTab(kind_spec(memory_type).title)
        self.tabs.setCurrentIndex(self.types.index(MemoryType.EPISODIC))
        self.tabs.currentChanged.connect(lambda _i: self.reload())
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by words or meaning…")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.reload)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(350)
        self._debounce.timeout.connect(self.reload)
        self.search.textEdited.connect(lambda _t: self._debounce.start())
        self.when = QComboBox()
        self.when.addItems([name for name, _ in TIME_FILTERS])
        self.when.currentIndexChanged.connect(lambda _i: self.reload())
        self.view_mode = QComboBox()
        self.view_mode.addItems(["Table", "Tree"])
        self.view_mode.currentIndexChanged.connect(self._switch_view)

        self.model = MemoryTableModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        # Store order (newest first, or by relevance) until the user clicks a column.
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selected())
        self.table.doubleClicked.connect(lambda _i: self.edit())
        self.tree = QTreeView()
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.doubleClicked.connect(self._tree_open)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.tree)
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)

        self.buttons: dict[str, QPushButton] = {}
        bar = QHBoxLayout()
        for key, text, slot in [
            ("add", "Add…", self.add),
            ("edit", "Edit…", self.edit),
            ("delete", "Delete", self.delete),
            ("undo", "Undo last change", self.undo),
            ("history", "History…", self.show_history),
            ("why", "Why do I know this?", self.why),
            ("reveal", "Reveal secret", self.toggle_reveal),
            ("accept", "Accept suggestion", self.accept_suggestion),
            ("dismiss", "Dismiss suggestion", self.dismiss_suggestion),
        ]:
            button = QPushButton(text)
            button.clicked.connect(slot)
            self.buttons[key] = button
            bar.addWidget(button)
        bar.addStretch(1)
        self.status = QLabel()

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.when)
        top.addWidget(self.view_mode)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.stack)
        split.addWidget(self.details)
        split.setSizes([400, 160])
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self._hide_secrets)
        controller.store_ready.connect(self.reload)
        controller.memories_changed.connect(self._changed_elsewhere)
        self._selected()

    # ----- what is shown ---------------------------------------------------------------------

    @property
    def memory_type(self) -> MemoryType:
        return self.types[self.tabs.currentIndex()]

    def _since(self) -> datetime | None:
        span = TIME_FILTERS[self.when.currentIndex()][1]
        return datetime.now().astimezone() - span if span else None

    def reload(self) -> None:
        """Load the current type: search hits when there is a query, else newest first."""
        if not self.controller.services.store_is_open:
            return
        self._debounce.stop()
        self._load_seq += 1
        seq, memory_type, query, since = (
            self._load_seq,
            self.memory_type,
            self.search.text().strip(),
            self._since(),
        )
        services = self.controller.services

        def with_pending(load: Callable[..., Sequence[Any]]) -> Callable[..., Any]:
            return lambda *args: (load(*args), services.suggestions())  # one task, one answer

        if query:
            self.controller.run(
                "Searching",
                with_pending(services.search),
                query,
                [memory_type],
                50,
                since,
                on_done=lambda got: self._loaded(seq, memory_type, got[0], True, got[1]),
            )
        else:
            self.controller.run(
                "Loading memories",
                with_pending(services.browse),
                memory_type,
                since,
                on_done=lambda got: self._loaded(seq, memory_type, got[0], False, got[1]),
            )

    def _loaded(
        self,
        seq: int,
        memory_type: MemoryType,
        rows: list[Any],
        searched: bool,
        pending: list[Suggestion],
    ) -> None:
        if seq != self._load_seq:
            return  # a newer load is on its way
        self._suggestions = {}
        for suggestion in pending:
            self._suggestions.setdefault(suggestion.memory_id, []).append(suggestion)
        self.model.set_suggested({k: len(v) for k, v in self._suggestions.items()})
        if searched:
            hits: list[SearchHit] = rows
            self.model.set_records(memory_type, [h.record for h in hits], [h.score for h in hits])
            self.status.setText(f"{len(hits)} result(s) for “{self.search.text().strip()}”")
        else:
            self.model.set_records(memory_type, rows)
            self.status.setText(f"{len(rows)} {kind_spec(memory_type).title.lower()} memories")
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(
            min(1, self.model.columnCount() - 1), QHeaderView.ResizeMode.Stretch
        )
        self.tree.setModel(tree_model(self.model.records()))
        self.tree.expandAll()

        if self._message:
            self.status.setText(self._message)
            self._message = ""
        wanted, self._select_after_load = self._select_after_load, None
        if wanted is not None:
            if self.model.row_of(wanted.id) is None:
                self.model.prepend(wanted)
            self.select(wanted.id)
        self._selected()

    def _hide_secrets(self) -> None:
        self.model.hide()
        self._selected()

    def _changed_elsewhere(self) -> None:
        self.reload()

    def _switch_view(self, index: int) -> None:
        self.stack.setCurrentIndex(index)

    def _tree_open(self, index: QModelIndex) -> None:
        memory_id = index.siblingAtColumn(0).data(ID_ROLE)
        if memory_id:
            self.view_mode.setCurrentIndex(0)
            self.select(memory_id)

    # ----- selection -------------------------------------------------------------------------

    def select(self, memory_id: str) -> bool:
        row = self.model.row_of(memory_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)
        return True

    def current(self) -> Record | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.record(self.proxy.mapToSource(index).row())

    def _selected(self) -> None:
        record = self.current()
        for key in ("edit", "delete", "history", "why"):
            self.buttons[key].setEnabled(record is not None)
        is_vault = isinstance(record, VaultEntry)
        self.buttons["reveal"].setVisible(self.memory_type is MemoryType.KNOWLEDGE_VAULT)
        self.buttons["reveal"].setEnabled(is_vault)
        revealed = record is not None and self.model.is_revealed(record.id)
        self.buttons["reveal"].setText("Hide secret" if revealed else "Reveal secret")
        self.pending = self._suggestions.get(record.id, []) if record is not None else []
        for key in ("accept", "dismiss"):
            self.buttons[key].setVisible(bool(self.pending))
        if record is None:
            self.details.setMarkdown("")
            return
        secret = self.model.data(self._secret_index(record.id)) if revealed else None
        details = record_details(record, secret)
        if self.pending:
            lines = [f"- the {s.agent} agent suggests: {s.describe()}" for s in self.pending]
            details += "\n\n**Suggested by the memory agents** (accept or dismiss the first)\n\n"
            details += "\n".join(lines)
        self.details.setMarkdown(details)

    def _secret_index(self, memory_id: str) -> QModelIndex:
        row = self.model.row_of(memory_id)
        return self.model.index(row if row is not None else 0, 1)

    def show_memory(self, memory_id: str) -> None:
        """Open one memory (from a chat citation or the timeline): its type, selected."""
        self.controller.run(
            "Opening a memory", self.controller.services.get, memory_id, on_done=self._show_record
        )

    def _show_record(self, record: Record) -> None:
        self._select_after_load = record
        self.search.clear()
        index = self.types.index(record.kind)
        if index != self.tabs.currentIndex():
            self.tabs.setCurrentIndex(index)  # reloads
        else:
            self.reload()

    # ----- changing --------------------------------------------------------------------------

    def add(self) -> None:
        self._edit_dialog(MemoryEditor(self.memory_type, None, self), is_new=True)

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
                    f"Deleted “{s.record.headline()}”. Press “Undo last change” to bring it back.",
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
        self._after_change(f"Undid change #{change.reverts} ({change.memory_type.value}).", None)

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
        record = self.current()
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
