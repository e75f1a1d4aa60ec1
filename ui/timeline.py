"""The timeline: one local day to scrub through. A strip of the day (apps as coloured bands, the
time capture did not record with its reason), the list of app-and-window sessions with their
reads, and a detail pane with the captured text (redactions shown as such), the memories made
from it and "search from here". ←/→ move to the previous/next session, Home to now.

The grouping is app.timeline's (Qt-free, tested); this module only draws it. The day is loaded
on a worker thread, when the store opens, when the tab is shown, and again as capture writes
(at most one load in flight; a change meanwhile loads once more after it).
"""

from __future__ import annotations

import html
from datetime import date, datetime, tzinfo

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QIcon,
    QKeySequence,
    QPixmap,
    QResizeEvent,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services import CaptureSnapshot
from app.timeline import (
    DayView,
    Session,
    clock,
    gap_text,
    load_day,
    plain_text,
    search_text,
    text_segments,
)
from storage.capture_log import CaptureGap
from storage.records import Record
from storage.text import clip
from ui.controller import Controller
from ui.memory_model import ID_ROLE
from ui.time_strip import TimeStrip, app_colour

ROW_ROLE = Qt.ItemDataRole.UserRole + 10
GAP_COLOUR = QColor("#fde2c8")
MEMORY_COLOUR = QColor("#dcebff")
#: The "What" column never takes more than this, so the captured text stays in sight.
WHAT_MAX_PX = 280
#: Narrower than this, the detail pane goes below the list instead of beside it.
SIDE_BY_SIDE_PX = 980
ALL_APPS = "All apps"
COLUMNS = ["Time", "What", "Reads", "Text"]


def _local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


def _swatch(colour: QColor) -> QIcon:
    pixmap = QPixmap(10, 10)
    pixmap.fill(colour)
    return QIcon(pixmap)


def text_html(text: str) -> str:
    """Captured text as HTML, each redaction a dark label that says what was redacted."""
    out = []
    for piece, redacted in text_segments(text):
        if redacted:
            kind = piece.removeprefix("[REDACTED:").removesuffix("]") or "text"
            out.append(
                '<span style="background-color:#343a40; color:#ffffff">'
                f"&nbsp;{html.escape(kind)} redacted&nbsp;</span>"
            )
        else:
            out.append(html.escape(piece).replace("\n", "<br>"))
    return "".join(out)


class SessionDetail(QWidget):
    """What one session (or one read of it) was: text, memories, search from here."""

    open_memory = Signal(str)
    search_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Session | None = None
        self.heading = QLabel("Choose a session to see what was captured.")
        self.heading.setWordWrap(True)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.memories = QListWidget()
        self.memories.setMaximumHeight(120)
        self.memories.itemActivated.connect(self._open)
        self.memories.itemDoubleClicked.connect(self._open)
        self.memories_label = QLabel("Memories made from it")
        self.search_button = QPushButton("Search from here")
        self.search_button.setToolTip("Search memories and events for what this session shows")
        self.search_button.clicked.connect(self._search)
        self.search_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heading)
        layout.addWidget(self.text, 3)
        layout.addWidget(self.memories_label)
        layout.addWidget(self.memories, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.search_button)
        layout.addLayout(buttons)

    def show_session(self, session: Session | None, read: int | None = None) -> None:
        self.session = session
        self.memories.clear()
        self.search_button.setEnabled(session is not None)
        if session is None:
            self.heading.setText("Choose a session to see what was captured.")
            self.text.clear()
            self.memories_label.setText("Memories made from it")
            return
        self.heading.setText(session.heading())
        events = session.events if read is None else (session.events[read],)
        parts = []
        for event in events:
            stamp = clock(event.occurred_at)
            if event.seen_at:
                stamp += f" (seen again {len(event.seen_at)}×)"
            parts.append(f"<p><b>{stamp}</b><br>{text_html(event.text)}</p>")
        self.text.setHtml("".join(parts))
        self.memories_label.setText(
            f"Memories made from it ({len(session.memories)})"
            if session.memories
            else "Memories made from it: none yet (the agents may not have read it)"
        )
        for memory in session.memories:
            item = QListWidgetItem(f"{memory.kind.value}: {memory.headline()}")
            item.setData(ID_ROLE, memory.id)
            self.memories.addItem(item)

    def show_gap(self, gap: CaptureGap) -> None:
        self.session = None
        self.memories.clear()
        self.search_button.setEnabled(False)
        self.heading.setText(f"Not recorded, {clock(gap.started_at)}–{clock(gap.ended_at)}")
        self.text.setPlainText(gap_text(gap).capitalize())
        self.memories_label.setText("Memories made from it")

    def _open(self, item: QListWidgetItem) -> None:
        memory_id = item.data(ID_ROLE)
        if memory_id:
            self.open_memory.emit(memory_id)

    def _search(self) -> None:
        if self.session is not None:
            self.search_requested.emit(search_text(self.session))


class TimelineView(QWidget):
    open_memory = Signal(str)
    #: "Search from here": the text to search memories and events for.
    search_requested = Signal(str)

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.day: date = date.today()
        self.full: DayView | None = None  # the day as loaded, every app
        self.view: DayView | None = None  # as shown (the app filter applied)
        self.current: int | None = None  # index of the selected session in `view`
        self._seq = 0
        self._loading = False
        self._again = False
        self._events_seen: tuple[int, datetime | None] | None = None
        self._picked_for: date | None = None
        self._sized = False

        self.date = QDateEdit(QDate.currentDate())
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("dddd d MMMM yyyy")
        self.date.dateChanged.connect(lambda d: self.show_day(d.toPython()))
        previous, following, today = QPushButton("◀"), QPushButton("▶"), QPushButton("Today")
        for button in (previous, following):
            button.setFixedWidth(36)
        previous.setToolTip("The day before")
        following.setToolTip("The day after")
        previous.clicked.connect(lambda: self.date.setDate(self.date.date().addDays(-1)))
        following.clicked.connect(lambda: self.date.setDate(self.date.date().addDays(1)))
        today.clicked.connect(lambda: self.date.setDate(QDate.currentDate()))
        self.apps = QComboBox()
        self.apps.addItem(ALL_APPS)
        self.apps.setToolTip("Show one application's sessions")
        self.apps.currentIndexChanged.connect(lambda _i: self._render())
        self.summary = QLabel("Loading…")
        self.summary.setWordWrap(True)  # a narrow window wraps it rather than growing

        self.strip = TimeStrip()
        self.strip.moved.connect(self.move_to)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        self.tree.currentItemChanged.connect(self._selected)
        self.tree.itemDoubleClicked.connect(self._activated)
        self.detail = SessionDetail()
        self.detail.open_memory.connect(self.open_memory)
        self.detail.search_requested.connect(self.search_requested)

        row = QHBoxLayout()
        for widget in (previous, self.date, following, today, self.apps):
            row.addWidget(widget)
        row.addWidget(self.summary, 1)
        split = self.split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        split.addWidget(self.detail)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.strip)
        layout.addWidget(split, 1)

        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for key, slot in (
            (Qt.Key.Key_Left, lambda: self.step(-1)),
            (Qt.Key.Key_Right, lambda: self.step(1)),
            (Qt.Key.Key_Home, self.go_now),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(context)
            shortcut.activated.connect(slot)

        # Live: capture's ticks (a new event) and the agents' batches (new memories) reload
        # today's page, at most once a second; a minute's timer moves "now" on.
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(1000)
        self._soon.timeout.connect(self._tick)
        self._minute = QTimer(self)
        self._minute.setInterval(60_000)
        self._minute.timeout.connect(self._tick)
        self._minute.start()
        controller.store_ready.connect(self.reload)
        controller.memories_changed.connect(self._soon.start)
        controller.capture_changed.connect(self._capture_ticked)

    # ----- loading ---------------------------------------------------------------------------

    def show_day(self, day: date) -> None:
        self.day = day
        self.reload()

    def go_to(self, day: date) -> None:
        self.date.setDate(QDate(day.year, day.month, day.day))

    def reload(self) -> None:
        if not self.controller.services.store_is_open:
            return
        if self._loading:
            self._again = True
            return
        self._loading, self._again = True, False
        self._seq += 1
        seq, day = self._seq, self.day
        self.controller.run(
            "Loading the timeline",
            load_day,
            self.controller.services,
            day,
            _local_tz(),
            on_done=lambda v: self._loaded(seq, v),
            on_error=lambda _e: self._settled(),
            quiet=True,
        )

    def _settled(self) -> None:
        self._loading = False
        if self._again:
            self.reload()

    def _loaded(self, seq: int, view: DayView) -> None:
        # Shown even when another load is queued (capture writing all the time must not keep
        # the page from ever drawing); only another day's page is dropped.
        if seq == self._seq and view.day == self.day:
            self.full = view
            self._fill_apps(view.apps)
            self._render()
        self._settled()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.reload()  # what capture wrote while the tab was hidden

    def _tick(self) -> None:
        if self.isVisible() and self.day == date.today():
            self.reload()

    def _capture_ticked(self, snapshot: CaptureSnapshot) -> None:
        seen = (snapshot.status.events, snapshot.status.last_event_at)  # new, or read again
        if seen != self._events_seen:
            self._events_seen = seen
            self._soon.start()

    # ----- drawing ---------------------------------------------------------------------------

    def _fill_apps(self, apps: tuple[str, ...]) -> None:
        wanted = self.apps.currentText()
        self.apps.blockSignals(True)
        self.apps.clear()
        self.apps.addItem(ALL_APPS)
        for app in apps:
            self.apps.addItem(_swatch(app_colour(app)), app)
        index = self.apps.findText(wanted)
        self.apps.setCurrentIndex(max(index, 0))
        self.apps.blockSignals(False)

    def app_filter(self) -> str | None:
        text = self.apps.currentText()
        return None if text in ("", ALL_APPS) else text

    def _render(self) -> None:
        if self.full is None:
            return
        keep = (
            self.view.sessions[self.current].key if self.view and self.current is not None else None
        )
        view = self.view = self.full.only(self.app_filter())
        self.tree.blockSignals(True)
        self.tree.clear()
        session_index = 0
        for row in view.rows():
            if isinstance(row, Session):
                item = self._session_item(row, session_index)
                session_index += 1
            elif isinstance(row, CaptureGap):
                item = QTreeWidgetItem([clock(row.started_at), "Not recorded", "", gap_text(row)])
                item.setData(0, ROW_ROLE, ("gap", row))
                for col in range(len(COLUMNS)):
                    item.setBackground(col, QBrush(GAP_COLOUR))
            else:
                item = self._memory_item(row)
            item.setToolTip(3, item.text(3))
            item.setToolTip(1, item.text(1))
            self.tree.addTopLevelItem(item)
        for col in (0, 2):
            self.tree.resizeColumnToContents(col)
        self._fit_columns()
        self.tree.blockSignals(False)
        self.summary.setText(view.summary())
        start, end = view.extent(_local_tz(), datetime.now().astimezone())
        self.strip.set_view(view, start, end)

        index = view.index_of(keep)
        if index is None and self._picked_for != view.day:
            index = view.now_index(datetime.now().astimezone())  # a new page opens at now
            if index is not None:
                self._picked_for = view.day
        self.select(index)

    def _fit_columns(self) -> None:
        """The "What" column gets what its titles need, but never so much that the text
        column leaves the view: long titles are elided instead."""
        room = int(self.tree.viewport().width() * 0.4)
        self.tree.setColumnWidth(1, min(self.tree.sizeHintForColumn(1) + 24, WHAT_MAX_PX, room))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        wide = event.size().width() >= SIDE_BY_SIDE_PX
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.split.orientation() or not self._sized:
            self.split.setOrientation(orientation)
            whole = event.size().width() if wide else self.split.height()
            self.split.setSizes([int(whole * 0.6), int(whole * 0.4)])
            self._sized = True
        self._fit_columns()

    def _session_item(self, session: Session, index: int) -> QTreeWidgetItem:
        latest = session.events[-1]
        memories = f", {len(session.memories)} mem." if session.memories else ""
        item = QTreeWidgetItem(
            [
                session.times(),
                session.label(),
                f"{session.reads}{memories}",
                clip(plain_text(latest.text), 300),
            ]
        )
        item.setIcon(1, _swatch(app_colour(session.app)))
        item.setData(0, ROW_ROLE, ("session", index))
        for n, event in enumerate(session.events):
            child = QTreeWidgetItem([clock(event.occurred_at), "read", "", clip(event.text, 300)])
            child.setData(0, ROW_ROLE, ("read", index, n))
            child.setToolTip(3, clip(plain_text(event.text), 1000))
            item.addChild(child)
        return item

    def _memory_item(self, memory: Record) -> QTreeWidgetItem:
        item = QTreeWidgetItem([clock(memory.timestamp), "Memory", "", memory.headline()])
        item.setData(0, ROW_ROLE, ("memory", memory.id))
        item.setData(0, ID_ROLE, memory.id)
        for col in range(len(COLUMNS)):
            item.setBackground(col, QBrush(MEMORY_COLOUR))
        return item

    # ----- selecting and moving --------------------------------------------------------------

    def session_item(self, index: int) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None and item.data(0, ROW_ROLE) == ("session", index):
                return item
        return None

    def select(self, index: int | None) -> None:
        """Select session `index` of the view (None: nothing) in the list, strip and detail."""
        item = self.session_item(index) if index is not None else None
        if item is None:
            self.current = None
            self.detail.show_session(None)
            self.strip.set_cursor(None)
            return
        self.tree.setCurrentItem(item)  # -> _selected
        self.tree.scrollToItem(item)

    def _selected(self, item: QTreeWidgetItem | None, _old: object = None) -> None:
        data = item.data(0, ROW_ROLE) if item is not None else None
        if not data or self.view is None:
            return
        kind = data[0]
        if kind in ("session", "read"):
            self.current = data[1]
            session = self.view.sessions[data[1]]
            self.detail.show_session(session, data[2] if kind == "read" else None)
            at = session.events[data[2]].occurred_at if kind == "read" else session.started_at
            self.strip.set_cursor(at, session)
        elif kind == "gap":
            self.detail.show_gap(data[1])
            self.strip.set_cursor(data[1].started_at)

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        memory_id = item.data(0, ID_ROLE)
        if memory_id:
            self.open_memory.emit(memory_id)

    def step(self, by: int) -> None:
        if self.view is not None:
            self.select(self.view.step(self.current, by))

    def go_now(self) -> None:
        if self.day != date.today():
            self._picked_for = None  # the new page opens at now
            self.go_to(date.today())
            return
        if self.view is not None:
            self.select(self.view.now_index(datetime.now().astimezone()))

    def move_to(self, at: datetime) -> None:
        """The strip was clicked or dragged: the session under (or nearest to) `at`."""
        if self.view is not None:
            index = self.view.index_at(at)
            if index is not None and index != self.current:
                self.select(index)
            self.strip.set_cursor(at, self.strip.selected)
