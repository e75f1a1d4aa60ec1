"""The timeline as a day to scrub through: the strip, sessions, the detail pane, search from
here, the app filter, the keys, first open, elided titles and live refresh — on real widgets
over a real store."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.timeline import search_text
from storage.capture_log import GapReason
from storage.records import Event, SemanticMemory
from ui.timeline import WHAT_MAX_PX


def _base() -> datetime:
    """Forty minutes ago, or just after midnight when that would be yesterday."""
    now = datetime.now().astimezone()
    base = now - timedelta(minutes=40)
    if base.date() != now.date():
        base = datetime.combine(now.date(), time(0, 1), tzinfo=now.tzinfo)
    return base


def _read(base: datetime, minute: float, app: str, title: str, text: str) -> Event:
    return Event(
        source="screen",
        app=app,
        window_title=title,
        text=text,
        occurred_at=base + timedelta(minutes=minute),
    )


@pytest.fixture
def day(services):
    """Today: three reads of Firefox — Q3 budget (one with a redaction), a paused stretch, two
    reads of xterm — notes, and a memory the agents made from the first read."""
    base = _base()
    store = services.store()
    firefox = [
        _read(base, 0, "Firefox", "Q3 budget", "Q3 budget forecast for marketing"),
        _read(base, 5, "Firefox", "Q3 budget", "mail [REDACTED:email] about the forecast"),
        _read(base, 10, "Firefox", "Q3 budget", "forecast approved by Dana"),
    ]
    xterm = [
        _read(base, 30, "xterm", "notes", "make test passes"),
        _read(base, 32, "xterm", "notes", "git push origin main"),
    ]
    for event in firefox + xterm:
        store.events.put(event)
    made = services.add(
        SemanticMemory(
            name="Q3 budget", summary="the marketing forecast", provenance=(firefox[0].id,)
        )
    ).record
    log = services.capture().log
    for seconds in range(0, 61, 10):  # one paused minute between the two windows
        log.note(GapReason.PAUSED, base + timedelta(minutes=20, seconds=seconds))
    log.flush()
    return {"firefox": firefox, "xterm": xterm, "memory": made, "base": base}


def _open(qtbot, engram):
    timeline = engram.window.timeline
    engram.window.tabs.setCurrentWidget(timeline)
    qtbot.waitUntil(lambda: timeline.view is not None and len(timeline.view.sessions) == 2)
    return timeline


def _top(timeline):
    return [timeline.tree.topLevelItem(i) for i in range(timeline.tree.topLevelItemCount())]


def test_first_open_shows_todays_reads_without_pressing_today(qtbot, services, day):
    from ui.app import EngramApp

    app = EngramApp(services, autostart_capture=False, load_model=False)
    qtbot.addWidget(app.window)
    try:
        app.start()
        timeline = app.window.timeline
        app.window.tabs.setCurrentWidget(timeline)  # no reload, no "Today"
        qtbot.waitUntil(lambda: timeline.summary.text().startswith("5 reads in 2 sessions"))
        assert (
            timeline.summary.text()
            == "5 reads in 2 sessions · 1 gap (60 s not recorded) · 1 memory"
        )
    finally:
        app.quit()


def test_sessions_are_grouped_by_app_and_window_and_the_header_agrees(qtbot, engram, day):
    timeline = _open(qtbot, engram)
    rows = _top(timeline)
    assert [r.text(1) for r in rows] == ["Firefox — Q3 budget", "Not recorded", "xterm — notes"]
    firefox = rows[0]
    assert firefox.childCount() == 3 and firefox.text(2).startswith("3")
    assert "capture paused for 60 s (7 skipped looks)" in rows[1].text(3)
    sessions = sum(1 for r in rows if r.data(0, Qt.ItemDataRole.UserRole + 10)[0] == "session")
    gaps = sum(1 for r in rows if r.text(1) == "Not recorded")
    reads = sum(r.childCount() for r in rows)
    assert timeline.summary.text().startswith(
        f"{reads} reads in {sessions} sessions · {gaps} gap ("
    )


def test_the_strip_shows_each_app_and_the_gap_and_moves_on_click_and_drag(qtbot, engram, day):
    timeline = _open(qtbot, engram)
    strip = timeline.strip
    assert strip.lanes() == ["Firefox", "xterm"]
    xterm_at = day["xterm"][0].occurred_at + timedelta(seconds=30)
    gap_at = day["base"] + timedelta(minutes=20, seconds=30)
    assert strip.describe(strip.x_of(gap_at), 16 + 2 * 17 + 5).startswith(
        "Not recorded: capture paused"
    )
    qtbot.mouseClick(
        strip, Qt.MouseButton.LeftButton, pos=QPointF(strip.x_of(xterm_at), 20).toPoint()
    )
    assert timeline.view.sessions[timeline.current].app == "xterm"
    assert timeline.detail.heading.text().startswith("xterm — notes")

    start = day["firefox"][1].occurred_at
    qtbot.mousePress(
        strip, Qt.MouseButton.LeftButton, pos=QPointF(strip.x_of(xterm_at), 20).toPoint()
    )
    drag = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(strip.x_of(start), 20),
        strip.mapToGlobal(QPointF(strip.x_of(start), 20)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(strip, drag)
    qtbot.mouseRelease(
        strip, Qt.MouseButton.LeftButton, pos=QPointF(strip.x_of(start), 20).toPoint()
    )
    assert timeline.view.sessions[timeline.current].app == "Firefox"
    assert abs((strip.at - start).total_seconds()) < 120


def test_the_detail_shows_text_redactions_and_the_memories_made_from_it(qtbot, engram, day):
    timeline = _open(qtbot, engram)
    timeline.select(0)
    detail = timeline.detail
    assert detail.heading.text().endswith("3 reads")
    shown = detail.text.toPlainText()
    assert "forecast approved by Dana" in shown and "Q3 budget forecast" in shown
    assert "email redacted" in shown and "[REDACTED:" not in shown
    assert "background-color:#343a40" in detail.text.toHtml()  # a redaction looks like one
    assert detail.memories.count() == 1
    item = detail.memories.item(0)
    assert "Q3 budget" in item.text()
    detail.memories.itemDoubleClicked.emit(item)
    browser = engram.window.memories
    qtbot.waitUntil(lambda: browser.current() is not None)
    assert browser.current().id == day["memory"].id


def test_search_from_here_searches_for_the_sessions_text(qtbot, engram, day):
    timeline = _open(qtbot, engram)
    timeline.select(0)
    expected = search_text(timeline.view.sessions[0])
    timeline.detail.search_button.click()
    browser = engram.window.memories
    assert engram.window.tabs.currentWidget() is browser
    assert browser.search.text() == expected
    assert browser.all_tab  # memories and captured events both
    qtbot.waitUntil(lambda: "result(s) for" in browser.status.text())


def test_the_app_filter_shows_one_apps_sessions(qtbot, engram, day):
    timeline = _open(qtbot, engram)
    assert [timeline.apps.itemText(i) for i in range(timeline.apps.count())] == [
        "All apps",
        "Firefox",
        "xterm",
    ]
    timeline.apps.setCurrentText("xterm")
    assert [r.text(1) for r in _top(timeline)] == ["Not recorded", "xterm — notes"]
    assert timeline.summary.text().startswith("2 reads in 1 session · 1 gap")
    assert timeline.strip.lanes() == ["xterm"]
    timeline.apps.setCurrentText("All apps")
    assert len(_top(timeline)) == 3


def test_arrow_keys_move_between_sessions_and_home_goes_to_now(qtbot, engram, day):
    timeline = _open(qtbot, engram)
    timeline.select(0)
    timeline.tree.setFocus()
    qtbot.keyClick(timeline.tree, Qt.Key.Key_Right)
    assert timeline.current == 1
    qtbot.keyClick(timeline.tree, Qt.Key.Key_Right)
    assert timeline.current == 1  # stays at the last
    qtbot.keyClick(timeline.tree, Qt.Key.Key_Left)
    assert timeline.current == 0
    qtbot.keyClick(timeline.tree, Qt.Key.Key_Home)
    assert timeline.current == 1  # xterm was the last thing before now

    timeline.go_to(datetime.now().date() - timedelta(days=1))
    qtbot.waitUntil(lambda: timeline.view is not None and timeline.view.sessions == ())
    qtbot.keyClick(timeline.tree, Qt.Key.Key_Home)  # back to today, at now
    qtbot.waitUntil(lambda: timeline.current == 1)


def test_a_long_title_is_elided_and_the_text_stays_in_sight(qtbot, engram, services):
    long_title = "A very long window title " * 12
    services.store().events.put(
        _read(_base(), 1, "Firefox", long_title, "the captured words stay visible")
    )
    timeline = engram.window.timeline
    engram.window.tabs.setCurrentWidget(timeline)
    qtbot.waitUntil(lambda: timeline.tree.topLevelItemCount() == 1)
    assert timeline.tree.columnWidth(1) <= WHAT_MAX_PX
    text_x = timeline.tree.header().sectionViewportPosition(3)
    assert 0 < text_x < timeline.tree.viewport().width() - 100
    assert timeline.tree.topLevelItem(0).toolTip(1).startswith("Firefox — A very long")
    engram.window.resize(720, 700)  # a narrow window: the detail pane goes below the list
    qtbot.waitUntil(lambda: timeline.split.orientation() == Qt.Orientation.Vertical)
    assert timeline.tree.columnWidth(1) <= timeline.tree.viewport().width() * 0.4 + 1
    text_x = timeline.tree.header().sectionViewportPosition(3)
    assert 0 < text_x < timeline.tree.viewport().width() - 100


def test_the_timeline_follows_capture_live(qtbot, engram, screen):
    timeline = engram.window.timeline
    engram.window.tabs.setCurrentWidget(timeline)
    qtbot.waitUntil(lambda: timeline.view is not None)
    assert timeline.view.sessions == ()
    engram.controller.start_capture()
    screen.show(1, 40)  # something new on the screen: an event
    qtbot.waitUntil(lambda: timeline.view is not None and timeline.view.reads >= 1, timeout=15_000)
    assert timeline.tree.topLevelItem(0).text(1) == "editor — notes.txt"
    qtbot.waitUntil(lambda: timeline.current == 0)  # the page opens at now, once there is one
    assert timeline.detail.heading.text().startswith("editor — notes.txt")
    assert timeline.summary.text().startswith("1 read in 1 session")
    stop = engram.controller.stop_capture()
    qtbot.waitUntil(lambda: engram.controller.capture.status.state == "stopped", timeout=10_000)
    del stop
