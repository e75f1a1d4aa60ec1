"""One search box for everything: the "All" tab lists memories of every type and captured
events with their kind, can hide the events, is opened by Ctrl+K anywhere in the app and by the
tray, and each tab keeps its own search text."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from storage.records import EpisodicMemory, Event, MemoryType, ProceduralMemory, SemanticMemory


def _seed(services) -> None:
    services.add(SemanticMemory(name="Aurora", summary="Aurora is the big meeting room"))
    services.add(EpisodicMemory(summary="Booked Aurora for the Q3 budget review"))
    services.add(ProceduralMemory(summary="Book a room", steps=("Open the Aurora calendar",)))
    services.store().events.put(
        Event(source="screen", app="xterm", window_title="notes",
              text="Meeting with Dana about the Q3 budget, Room: Aurora")
    )  # fmt: skip


def _search_all(qtbot, browser, query: str) -> None:
    browser.search_everything(query)
    qtbot.waitUntil(
        lambda: browser.results.rowCount() > 0 and not browser.controller.tasks.running(),
        timeout=5_000,
    )


def test_all_lists_every_type_and_captured_events_with_their_kind(qtbot, engram):
    _seed(engram.controller.services)
    browser = engram.window.memories
    _search_all(qtbot, browser, "Aurora")
    assert browser.all_tab and browser.tabs.tabText(0) == "All"
    kinds = set(browser.results.kinds())
    assert {"semantic", "episodic", "procedural", "screen event"} <= kinds
    shown = {browser.proxy.index(r, 0).data() for r in range(browser.proxy.rowCount())}
    assert "screen event" in shown and "semantic" in shown  # the Kind column says it
    assert browser.status.text() == "4 result(s) for “Aurora”: 3 memories, 1 captured event"

    event_row = browser.results.kinds().index("screen event")
    browser.select(browser.results.item(event_row).id)
    assert browser.current() is None  # not a memory: no edit or delete
    assert not browser.buttons["edit"].isEnabled() and browser.buttons["why"].isEnabled()
    assert "seen on screen in xterm" in browser.details.toPlainText()
    assert "Room: Aurora" in browser.details.toPlainText()


def test_hide_captured_events_leaves_the_memories(qtbot, engram):
    _seed(engram.controller.services)
    browser = engram.window.memories
    _search_all(qtbot, browser, "Aurora")
    assert not browser.hide_events.isHidden()  # on "All" only
    browser.hide_events.setChecked(True)
    qtbot.waitUntil(lambda: "screen event" not in browser.results.kinds(), timeout=5_000)
    assert {"semantic", "episodic"} <= set(browser.results.kinds())


def test_double_clicking_a_memory_in_all_opens_it_in_its_own_tab(qtbot, engram):
    _seed(engram.controller.services)
    browser = engram.window.memories
    _search_all(qtbot, browser, "Aurora")
    row = browser.results.kinds().index("semantic")
    browser.select(browser.results.item(row).id)
    browser.table.doubleClicked.emit(browser.table.currentIndex())
    qtbot.waitUntil(lambda: browser.memory_type is MemoryType.SEMANTIC)
    qtbot.waitUntil(lambda: browser.current() is not None)
    assert browser.current().name == "Aurora"


def test_ctrl_k_opens_the_all_search_from_anywhere_in_the_app(qtbot, engram):
    window = engram.window
    assert window.search_action.shortcut() == QKeySequence("Ctrl+K")
    window.tabs.setCurrentWidget(window.chat)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow())
    qtbot.keyClick(window.chat, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    browser = window.memories
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is browser)
    assert browser.all_tab
    qtbot.waitUntil(lambda: browser.search.hasFocus())


def test_the_tray_action_opens_the_all_search(qtbot, engram):
    window, browser = engram.window, engram.window.memories
    window.hide()
    window.tabs.setCurrentWidget(window.timeline)
    assert engram.tray.search_action in engram.tray.menu.actions()
    engram.tray.search_action.trigger()
    assert window.isVisible() and window.tabs.currentWidget() is browser
    assert browser.all_tab


def test_search_text_does_not_leak_between_tabs(qtbot, engram):
    browser = engram.window.memories
    browser.tabs.setCurrentIndex(browser.tab_index(MemoryType.SEMANTIC))
    browser.search.setText("dentist")
    browser.tabs.setCurrentIndex(browser.tab_index(MemoryType.EPISODIC))
    assert browser.search.text() == ""
    browser.search_everything("budget")
    browser.tabs.setCurrentIndex(browser.tab_index(MemoryType.SEMANTIC))
    assert browser.hide_events.isHidden()
    assert browser.search.text() == "dentist"
    browser.tabs.setCurrentIndex(0)
    assert browser.search.text() == "budget"


def test_all_without_a_query_explains_itself(qtbot, engram):
    browser = engram.window.memories
    browser.search_everything("")
    qtbot.waitUntil(lambda: browser.status.text() == "Search everything", timeout=5_000)
    assert not browser.empty.isHidden()
    assert "Search every memory and everything Engram captured" in browser.empty.text()
    assert browser.results.rowCount() == 0
    assert not browser.buttons["add"].isEnabled()  # "All" has no one type to add to
