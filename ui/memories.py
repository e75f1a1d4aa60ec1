"""The memory browser: "All" (one search over every memory type and the captured events) and
one view per memory type, hybrid search, time filter, table or tree, add / edit / delete with
history and undo, vault values masked until revealed, the agents' suggestions, and "why do I
know this?". Every store call goes through the controller's task manager.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
)
from PySide6.QtGui import QPalette, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
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
from storage.records import Event, MemoryType, Record, VaultEntry
from storage.store import Hit, SearchHit
from storage.suggestions import Suggestion
from ui.controller import Controller
from ui.dialogs import HistoryDialog, MemoryEditor, ProvenanceDialog, describe_change
from ui.memory_model import (
    ID_ROLE,
    SORT_ROLE,
    MemoryTableModel,
    SearchResultsModel,
    diff_html,
    event_details,
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
#: The first tab: one search over every memory type and the captured events.
ALL_TAB = 0
ALL_EMPTY = (
    "Search every memory and everything Engram captured (screen, chats, imports) from here. "
    "Type a few words or a question; Ctrl+K brings you back from anywhere."
)


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
        self.tabs.addTab("All")
        for memory_type in self.types:
            self.tabs.addTab(kind_spec(memory_type).title)
        self.tabs.setCurrentIndex(self.tab_index(MemoryType.EPISODIC))
        #: Each tab keeps its own search text: a query typed in one never leaks into another.
        self._queries: dict[int, str] = {}
        self._shown_tab = self.tabs.currentIndex()
        self.tabs.currentChanged.connect(self._tab_changed)
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
        self.hide_events = QCheckBox("Hide captured events")
        self.hide_events.setToolTip("Show memories only, not the raw screen reads and chats")
        self.hide_events.toggled.connect(lambda _on: self.reload())

        self.model = MemoryTableModel()
        self.results = SearchResultsModel(self)
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
        self.table.doubleClicked.connect(lambda _i: self._open_current())
        self.tree = QTreeView()
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.doubleClicked.connect(self._tree_open)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.tree)
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(self._link)
        #: Shown instead of an empty table: what this type of memory is, or how to search.
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        muted = self.empty.palette()  # the theme's placeholder colour: a hint, not content
        muted.setColor(
            QPalette.ColorRole.WindowText, muted.color(QPalette.ColorRole.PlaceholderText)
        )
        self.empty.setPalette(muted)
        self.empty.setContentsMargins(24, 24, 24, 24)
        self.empty.setVisible(False)

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
        top.addWidget(self.hide_events)
        top.addWidget(self.when)
        top.addWidget(self.view_mode)
        listing = QWidget()
        listing_layout = QVBoxLayout(listing)
        listing_layout.setContentsMargins(0, 0, 0, 0)
        listing_layout.addWidget(self.empty)
        listing_layout.addWidget(self.stack, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(listing)
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
        self._last_change: Change | None = None
        self._show_mode()
        self._selected()

    # ----- what is shown ---------------------------------------------------------------------

    def tab_index(self, memory_type: MemoryType) -> int:
        return self.types.index(memory_type) + 1

    @property
    def all_tab(self) -> bool:
        """Whether "All" is showing (every type and the captured events)."""
        return self.tabs.currentIndex() == ALL_TAB

    @property
    def memory_type(self) -> MemoryType | None:
        """The type of the tab showing; None on "All"."""
        return None if self.all_tab else self.types[self.tabs.currentIndex() - 1]

    def search_everything(self, text: str | None = None) -> None:
        """The "All" tab with its search box focused (Ctrl+K, the tray): `text` searched."""
        if not self.all_tab:
            self.tabs.setCurrentIndex(ALL_TAB)
        if text is not None:
            self.search.setText(text)
            self.reload()
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _tab_changed(self, index: int) -> None:
        self._queries[self._shown_tab] = self.search.text()
        self._shown_tab = index
        self.search.setText(self._queries.get(index, ""))
        self._show_mode()
        self.reload()

    def _show_mode(self) -> None:
        """The widgets "All" has and the type tabs do not, and back."""
        everything = self.all_tab
        self.hide_events.setVisible(everything)
        self.view_mode.setVisible(not everything)
        self.buttons["add"].setEnabled(not everything)
        if everything:
            self.view_mode.setCurrentIndex(0)
        source = self.results if everything else self.model
        if self.proxy.sourceModel() is not source:
            self.proxy.setSourceModel(source)
            self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)

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
            # One task, one answer: the rows, the pending suggestions and what Undo would undo.
            return lambda *args: (load(*args), services.suggestions(), services.last_undoable())

        if memory_type is None:
            events = not self.hide_events.isChecked()

            def everything() -> Sequence[Hit]:
                return services.search(query, None, 50, since, events=events) if query else []

            self.controller.run(
                "Searching everything",
                with_pending(everything),
                on_done=lambda got: self._loaded_all(seq, got[0], got[1], got[2]),
            )
        elif query:
            self.controller.run(
                "Searching",
                with_pending(services.search),
                query,
                [memory_type],
                50,
                since,
                on_done=lambda got: self._loaded(seq, memory_type, got[0], True, got[1], got[2]),
            )
        else:
            self.controller.run(
                "Loading memories",
                with_pending(services.browse),
                memory_type,
                since,
                on_done=lambda got: self._loaded(seq, memory_type, got[0], False, got[1], got[2]),
            )

    def _loaded(
        self,
        seq: int,
        memory_type: MemoryType,
        rows: list[Any],
        searched: bool,
        pending: list[Suggestion],
        last_change: Change | None = None,
    ) -> None:
        if seq != self._load_seq:
            return  # a newer load is on its way
        self._set_pending(pending, last_change)
        spec = kind_spec(memory_type)
        if searched:
            hits: list[SearchHit] = rows
            self.model.set_records(memory_type, [h.record for h in hits], [h.score for h in hits])
            query = self.search.text().strip()
            self.status.setText(f"{len(hits)} result(s) for “{query}”")
            empty = f"No {spec.noun} memory matches “{query}”."
        else:
            self.model.set_records(memory_type, rows)
            self.status.setText(f"{len(rows)} {spec.title.lower()} memories")
            empty = f"No {spec.title.lower()} memories yet. {spec.title}: {spec.description}"
        self._show_empty(empty if not rows else "")
        self._after_load()

    def _loaded_all(
        self,
        seq: int,
        hits: Sequence[Hit],
        pending: list[Suggestion],
        last_change: Change | None,
    ) -> None:
        if seq != self._load_seq or not self.all_tab:
            return
        self._set_pending(pending, last_change)
        self.results.set_hits(hits)
        self.results.set_suggested({k: len(v) for k, v in self._suggestions.items()})
        query = self.search.text().strip()
        if not query:
            self.status.setText("Search everything")
            self._show_empty(ALL_EMPTY)
        else:
            events = sum(1 for h in hits if isinstance(h.item, Event))
            memories = len(hits) - events
            self.status.setText(
                f"{len(hits)} result(s) for “{query}”: {memories} "
                f"{'memory' if memories == 1 else 'memories'}, "
                f"{events} captured event{'' if events == 1 else 's'}"
            )
            self._show_empty("" if hits else f"Nothing found for “{query}”.")
        self._after_load()

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

    def _show_empty(self, text: str) -> None:
        self.empty.setText(text)
        self.empty.setVisible(bool(text))

    def _after_load(self) -> None:
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(
            min(1, self.model.columnCount() - 1), QHeaderView.ResizeMode.Stretch
        )
        if not self.all_tab:
            self.tree.setModel(tree_model(self.model.records()))
            self.tree.expandAll()

        if self._message:
            self.status.setText(self._message)
            self._message = ""
        wanted, self._select_after_load = self._select_after_load, None
        if wanted is not None and not self.all_tab:
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
        """Select a memory (or, on "All", an event) by id; False when it is not listed."""
        source = self.results if self.all_tab else self.model
        row = source.row_of(memory_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(source.index(row, 0))
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)
        return True

    def current_item(self) -> Record | Event | None:
        """The selected row: a memory, or on "All" possibly a captured event."""
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        row = self.proxy.mapToSource(index).row()
        return self.results.item(row) if self.all_tab else self.model.record(row)

    def current(self) -> Record | None:
        """The selected memory (None for none, or for a captured event on "All")."""
        item = self.current_item()
        return item if isinstance(item, Record) else None

    def _selected(self) -> None:
        item = self.current_item()
        record = self.current()
        for key in ("edit", "delete", "history"):
            self.buttons[key].setEnabled(record is not None)
        self.buttons["why"].setEnabled(item is not None)
        is_vault = isinstance(record, VaultEntry)
        self.buttons["reveal"].setVisible(
            self.memory_type is MemoryType.KNOWLEDGE_VAULT or (self.all_tab and is_vault)
        )
        self.buttons["reveal"].setEnabled(is_vault and not self.all_tab)
        revealed = record is not None and self.model.is_revealed(record.id)
        self.buttons["reveal"].setText("Hide secret" if revealed else "Reveal secret")
        self.pending = self._suggestions.get(record.id, []) if record is not None else []
        for key in ("accept", "dismiss"):
            self.buttons[key].setVisible(bool(self.pending))
        if isinstance(item, Event):
            self.details.setMarkdown(event_details(item))
            return
        if record is None:
            self.details.setMarkdown("")
            return
        secret = self.model.data(self._secret_index(record.id)) if revealed else None
        self.details.setMarkdown(record_details(record, secret))
        if self.pending:
            cursor = self.details.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertHtml(_suggestions_html(record, self.pending))

    def _link(self, url: QUrl) -> None:
        """A link in the details: accept or dismiss one suggestion (accept:ID, dismiss:ID)."""
        action, _, suggestion_id = url.toString().partition(":")
        chosen = [s for s in self.pending if s.id == suggestion_id]
        if chosen and action in ("accept", "dismiss"):
            rest = [s for s in self.pending if s.id != suggestion_id]
            self.pending = chosen + rest  # the buttons act on the first
            (self.accept_suggestion if action == "accept" else self.dismiss_suggestion)()

    def _open_current(self) -> None:
        """Double-click: edit a memory; on "All", open it in its own tab, or show an event's
        source."""
        item = self.current_item()
        if not self.all_tab:
            self.edit()
        elif isinstance(item, Record):
            self.show_memory(item.id)
        elif item is not None:
            self.why()

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
        index = self.tab_index(record.kind)
        self._queries[index] = ""  # the memory shows among its type's newest, not a search
        if index != self.tabs.currentIndex():
            self.tabs.setCurrentIndex(index)  # reloads
        else:
            self.search.clear()
            self.reload()

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


def _suggestions_html(record: Record, pending: Sequence[Suggestion]) -> str:
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
