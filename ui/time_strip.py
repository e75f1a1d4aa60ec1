"""The horizontal strip of one day: a lane per app with its sessions as coloured bands, a lane of
the stretches capture did not record (each with its reason), and a cursor a person clicks or
drags to move through the day."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from app.timeline import DayView, Session, gap_text

LANE_H = 14
LANE_GAP = 3
TOP = 16  # hour labels
LEFT = 90  # app names
GAP_COLOUR = QColor("#e8590c")
#: Shortest band drawn: a single read still shows.
MIN_BAND_PX = 3


def app_colour(app: str) -> QColor:
    """The same colour for an app on every page and every run."""
    hue = zlib.crc32(app.encode()) % 360
    return QColor.fromHsv(hue, 150, 200)


class TimeStrip(QWidget):
    #: The person clicked or dragged to this time.
    moved = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view: DayView | None = None
        self.start = datetime.now().astimezone()
        self.end = self.start + timedelta(hours=1)
        self.at: datetime | None = None  # the cursor
        self.selected: Session | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setToolTip("Click or drag to move through the day")

    # ----- data ------------------------------------------------------------------------------

    def set_view(self, view: DayView, start: datetime, end: datetime) -> None:
        self.view, self.start, self.end = view, start, end
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def set_cursor(self, at: datetime | None, selected: Session | None = None) -> None:
        self.at, self.selected = at, selected
        self.update()

    def lanes(self) -> list[str]:
        if self.view is None:
            return []
        shown = {s.app for s in self.view.sessions}
        return [a for a in self.view.apps if a in shown] + (
            [""] if any(not s.app for s in self.view.sessions) else []
        )

    def sizeHint(self) -> QSize:
        rows = len(self.lanes()) + 1  # + the gaps lane
        return QSize(600, TOP + rows * (LANE_H + LANE_GAP) + 4)

    # ----- geometry --------------------------------------------------------------------------

    def _width(self) -> float:
        return max(self.width() - LEFT - 8, 1)

    def x_of(self, at: datetime) -> float:
        total = (self.end - self.start).total_seconds() or 1.0
        return LEFT + (at - self.start).total_seconds() / total * self._width()

    def time_at(self, x: float) -> datetime:
        share = min(max((x - LEFT) / self._width(), 0.0), 1.0)
        return self.start + (self.end - self.start) * share

    def _lane_y(self, lane: int) -> float:
        return TOP + lane * (LANE_H + LANE_GAP)

    def _band(self, start: datetime, end: datetime, lane: int) -> QRectF:
        x0, x1 = self.x_of(start), self.x_of(end)
        return QRectF(x0, self._lane_y(lane), max(x1 - x0, MIN_BAND_PX), LANE_H)

    # ----- painting --------------------------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        palette = self.palette()
        text = palette.color(palette.ColorRole.WindowText)
        faint = QColor(text)
        faint.setAlpha(60)
        hour = self.start
        label_w = p.fontMetrics().horizontalAdvance("00:00") + 4
        while hour <= self.end:  # hour ticks, and their labels where they fit
            x = self.x_of(hour)
            p.setPen(QPen(faint))
            p.drawLine(QPointF(x, TOP - 2), QPointF(x, self.height()))
            if x + label_w <= self.width():
                p.setPen(QPen(text))
                p.drawText(QPointF(x + 2, TOP - 4), hour.astimezone().strftime("%H:%M"))
            hour += timedelta(hours=1)
        now = datetime.now().astimezone()
        if self.start <= now <= self.end:  # where "now" is, faintly
            p.setPen(QPen(faint, 1, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(self.x_of(now), TOP - 2), QPointF(self.x_of(now), self.height()))
        lanes = self.lanes()
        for i, app in enumerate([*lanes, "not recorded"]):
            p.setPen(QPen(text))
            p.drawText(
                QRectF(2, self._lane_y(i), LEFT - 6, LANE_H),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                p.fontMetrics().elidedText(app or "other", Qt.TextElideMode.ElideRight, LEFT - 8),
            )
        if self.view is not None:
            for s in self.view.sessions:
                rect = self._band(s.started_at, s.ended_at, lanes.index(s.app))
                colour = app_colour(s.app)
                if self.selected is not None and s.key == self.selected.key:
                    colour = colour.darker(150)
                p.fillRect(rect, colour)
            gap_lane = len(lanes)
            for g in self.view.gaps:
                rect = self._band(g.started_at, g.ended_at, gap_lane)
                p.fillRect(rect, QColor(GAP_COLOUR))
                p.fillRect(rect, Qt.BrushStyle.BDiagPattern)
        if self.at is not None:
            x = self.x_of(self.at)
            p.setPen(QPen(QColor("#c92a2a"), 2))
            p.drawLine(QPointF(x, TOP - 2), QPointF(x, self.height()))
        p.end()

    # ----- moving ----------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.moved.emit(self.time_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.moved.emit(self.time_at(event.position().x()))

    def describe(self, x: float, y: float) -> str:
        """What is under a point: a session's heading, a gap's reason, or the time."""
        at = self.time_at(x)
        lanes = self.lanes()
        lane = int((y - TOP) // (LANE_H + LANE_GAP))
        if self.view is not None and 0 <= lane < len(lanes):
            for s in self.view.sessions:
                if s.app == lanes[lane] and self._band(s.started_at, s.ended_at, lane).contains(
                    QPointF(x, y)
                ):
                    return s.heading()
        if self.view is not None and lane == len(lanes):
            for g in self.view.gaps:
                if self._band(g.started_at, g.ended_at, lane).contains(QPointF(x, y)):
                    return "Not recorded: " + gap_text(g)
        return f"{at.astimezone():%H:%M} — click or drag to move"

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            QToolTip.showText(event.globalPos(), self.describe(event.pos().x(), event.pos().y()))
            return True
        return super().event(event)
