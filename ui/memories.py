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
)
from PySide6.QtGui import QPalette, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
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

from storage.history import Change
from storage.kinds import kind_spec
from storage.records import Event, MemoryType, Record, VaultEntry
from storage.store import Hit, SearchHit
from storage.suggestions import Suggestion
from ui.controller import Controller
from ui.memory_actions import MemoryActions, suggestions_html
from ui.memory_model import (
    ID_ROLE,
    SORT_ROLE,
    MemoryTableModel,
    SearchResultsModel,
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
#: The first tab: one search over every memory type and the captured events.
ALL_TAB = 0
ALL_EMPTY = (
    "Search every memory and everything Engram captured (screen, chats, imports) from here. "
    "Type a few words or a question; Ctrl+K brings you back from anywhere."
)


class MemoryBrowser(MemoryActions):
    """The browser's widgets, what they show and what is selected; what its buttons change is
    `MemoryActions` (ui/memory_actions.py)."""

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
            cursor.insertHtml(suggestions_html(record, self.pending))

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
