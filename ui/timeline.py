"""The timeline: one local day of episodic memories, capture events and capture gaps, in time
order. Gaps are shown honestly, with their reason and length, so a person sees what was *not*
recorded as clearly as what was.
"""

from __future__ import annotations

from datetime import date, datetime

from PySide6.QtCore import QDate, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services import DayTimeline
from storage.capture_log import GapReason
from ui.controller import Controller
from ui.memory_model import ID_ROLE

#: Skips that are not lost time: the screen simply had nothing new.
QUIET_REASONS = {GapReason.UNCHANGED, GapReason.DUPLICATE, GapReason.NO_TEXT}
GAP_COLOUR = QColor("#fde2c8")
MEMORY_COLOUR = QColor("#dcebff")


def _clock(value: datetime) -> str:
    return value.astimezone().strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TimelineView(QWidget):
    open_memory = Signal(str)

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.day: date = date.today()
        self.last: DayTimeline | None = None
        self._seq = 0

        self.date = QDateEdit(QDate.currentDate())
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("dddd d MMMM yyyy")
        self.date.dateChanged.connect(lambda d: self.show_day(d.toPython()))
        previous, following, today = QPushButton("◀"), QPushButton("▶"), QPushButton("Today")
        previous.clicked.connect(lambda: self.date.setDate(self.date.date().addDays(-1)))
        following.clicked.connect(lambda: self.date.setDate(self.date.date().addDays(1)))
        today.clicked.connect(lambda: self.date.setDate(QDate.currentDate()))
        self.summary = QLabel()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Time", "What", "Where", "Text"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(False)
        self.tree.header().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.tree.itemDoubleClicked.connect(self._open)

        row = QHBoxLayout()
        for widget in (previous, self.date, following, today):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.summary)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        # Today's page follows capture: refresh every 30 s while visible.
        self._refresh = QTimer(self)
        self._refresh.setInterval(30_000)
        self._refresh.timeout.connect(self._tick)
        self._refresh.start()
        controller.store_ready.connect(self.reload)
        controller.memories_changed.connect(self._tick)

    def show_day(self, day: date) -> None:
        self.day = day
        self.reload()

    def reload(self) -> None:
        if not self.controller.services.store_is_open:
            return
        self._seq += 1
        seq = self._seq
        tz = datetime.now().astimezone().tzinfo
        assert tz is not None
        self.controller.run(
            "Loading the timeline",
            self.controller.services.timeline,
            self.day,
            tz,
            on_done=lambda t: self._show(seq, t),
            quiet=True,
        )

    def _tick(self) -> None:
        if self.isVisible() and self.day == date.today():
            self.reload()

    def _show(self, seq: int, timeline: DayTimeline) -> None:
        if seq != self._seq:
            return
        self.last = timeline
        rows: list[tuple[datetime, list[str], QColor | None, str | None, bool]] = []
        for memory in timeline.memories:
            rows.append(
                (
                    memory.occurred_at,
                    [
                        _clock(memory.occurred_at),
                        "Memory",
                        memory.actor,
                        memory.summary.replace("\n", " ")[:300],
                    ],
                    MEMORY_COLOUR,
                    memory.id,
                    False,
                )
            )
        for event in timeline.events:
            where = " — ".join(p for p in (event.app, event.window_title) if p) or event.source
            rows.append(
                (
                    event.occurred_at,
                    [
                        _clock(event.occurred_at),
                        f"{event.source} event",
                        where,
                        event.text.replace("\n", " ")[:300],
                    ],
                    None,
                    None,
                    False,
                )
            )
        lost = 0.0
        for gap in timeline.gaps:
            quiet = gap.reason in QUIET_REASONS
            if not quiet:
                lost += max(gap.seconds, 0.0)
            text = f"not recorded for {_span(gap.seconds)} ({gap.count} skipped look(s))" + (
                f": {gap.detail}" if gap.detail else ""
            )
            where = f"monitor {gap.monitor}" if gap.monitor else ""
            rows.append(
                (
                    gap.started_at,
                    [_clock(gap.started_at), f"Gap: {gap.reason.value}", where, text],
                    None if quiet else GAP_COLOUR,
                    None,
                    quiet,
                )
            )
        rows.sort(key=lambda r: r[0])
        self.tree.clear()
        for _at, cells, colour, memory_id, quiet in rows:
            item = QTreeWidgetItem(cells)
            item.setToolTip(3, cells[3])
            if colour is not None:
                for col in range(4):
                    item.setBackground(col, QBrush(colour))
            if quiet:
                item.setForeground(3, QBrush(QColor("#777777")))
            if memory_id:
                item.setData(0, ID_ROLE, memory_id)
            self.tree.addTopLevelItem(item)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        real_gaps = sum(1 for g in timeline.gaps if g.reason not in QUIET_REASONS)
        self.summary.setText(
            f"{len(timeline.memories)} memories · {len(timeline.events)} events · "
            f"{real_gaps} gaps ({_span(lost)} not recorded)"
        )

    def _open(self, item: QTreeWidgetItem, _column: int) -> None:
        memory_id = item.data(0, ID_ROLE)
        if memory_id:
            self.open_memory.emit(memory_id)

    def go_to(self, day: date) -> None:
        self.date.setDate(QDate(day.year, day.month, day.day))
