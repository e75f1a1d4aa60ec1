"""Capture from the tray and the capture tab, exclusions, and the timeline with its gaps."""

from __future__ import annotations

from datetime import UTC, datetime

from app.settings import load_settings
from storage.capture_log import GapReason
from storage.records import EpisodicMemory, Event


def test_toggle_pause_from_the_tray_menu(qtbot, engram):
    tray, services = engram.tray, engram.controller.services
    actions = {a.text(): a for a in tray.menu.actions() if a.text()}
    assert {"Open Engram", "Pause capture", "Quit Engram"} <= set(actions)
    assert actions["Capture: Stopped"].isEnabled() is False  # the state, shown in the menu

    actions["Pause capture"].trigger()
    qtbot.waitUntil(lambda: tray.pause_action.text() == "Resume capture")
    assert services.capture().pipeline.pause.is_paused()
    assert tray.state_action.text().startswith("Capture: Paused")
    assert "Paused" in engram.window.capture_label.text()
    assert "Paused" in tray.icon.toolTip()

    tray.pause_action.trigger()
    qtbot.waitUntil(lambda: tray.pause_action.text() == "Pause capture")
    assert not services.capture().pipeline.pause.is_paused()


def test_tray_opens_the_window_and_closing_it_keeps_engram_running(qtbot, engram):
    window = engram.window
    window.keep_running_in_tray = True  # as when a tray icon is showing
    window.close()
    assert not window.isVisible() and not engram.closed
    engram.tray.open_action.trigger()
    assert window.isVisible()
    engram.tray.quit_action.trigger()
    assert engram.closed and not window.isVisible()


def test_capture_panel_runs_pauses_for_minutes_and_shows_events(qtbot, engram, screen):
    panel, controller = engram.window.capture, engram.controller
    panel.start_button.click()
    qtbot.waitUntil(lambda: controller.capture.status.state == "running", timeout=5_000)
    screen.show(1, 40)  # something new on the screen: an event
    qtbot.waitUntil(lambda: controller.capture.status.events >= 1, timeout=10_000)
    qtbot.waitUntil(lambda: "editor — notes.txt" in panel.labels["last"].text(), timeout=5_000)
    assert panel.start_button.text() == "Stop capture"

    panel.minutes.setValue(5)
    panel.pause_for_button.click()
    qtbot.waitUntil(lambda: controller.capture.paused)
    until = controller.capture.status.paused_until
    assert until is not None and 4.5 * 60 < (until - datetime.now(UTC)).total_seconds() <= 300
    assert panel.labels["state"].text().startswith("Paused until")
    assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
    panel.resume_button.click()
    qtbot.waitUntil(lambda: not controller.capture.paused)
    panel.start_button.click()
    qtbot.waitUntil(lambda: controller.capture.status.state == "stopped", timeout=10_000)


def test_exclusions_are_validated_applied_and_saved(qtbot, engram):
    panel, services = engram.window.capture, engram.controller.services
    qtbot.waitUntil(lambda: "keepassxc" in panel.apps.toPlainText())
    panel.titles.setPlainText("secret project\n([unclosed")
    panel.save_exclusions()
    qtbot.waitUntil(lambda: panel.rules_message.text().startswith("Not saved"))
    assert "([unclosed" in panel.rules_message.text()
    assert "secret project" not in services.capture().exclusions.title_patterns
    assert engram.window.error_button.isVisible()  # the status bar's error indicator
    assert "Saving exclusions" in engram.window.error_button.toolTip()

    panel.apps.setPlainText("keepassxc\nsignal")
    panel.titles.setPlainText("secret project")
    panel.save_exclusions()
    qtbot.waitUntil(lambda: panel.rules_message.text().startswith("Saved"))
    assert services.capture().exclusions.apps == ("keepassxc", "signal")
    saved = load_settings().capture
    assert saved.excluded_apps == ("keepassxc", "signal")
    assert saved.excluded_title_patterns == ("secret project",)


def test_timeline_shows_memories_events_and_gaps_of_the_day(qtbot, engram):
    services = engram.controller.services
    now = datetime.now(UTC)
    services.add(EpisodicMemory(summary="Planned the garden", occurred_at=now))
    services.store().events.put(
        Event(
            source="screen",
            app="editor",
            window_title="plan.txt",
            text="tomatoes, basil, beans",
            occurred_at=now,
        )
    )
    log = services.capture().log
    log.note(GapReason.PAUSED, now)
    log.note(GapReason.UNCHANGED, now)
    timeline = engram.window.timeline
    engram.window.tabs.setCurrentWidget(timeline)
    timeline.reload()
    qtbot.waitUntil(lambda: timeline.tree.topLevelItemCount() == 3, timeout=5_000)
    rows = [timeline.tree.topLevelItem(i) for i in range(3)]
    kinds = sorted(item.text(1) for item in rows)
    # "unchanged" is not lost time: neither a row nor a gap in the header
    assert kinds == ["Memory", "Not recorded", "editor — plan.txt"]
    texts = " ".join(item.text(3) for item in rows)
    assert "Planned the garden" in texts and "tomatoes, basil, beans" in texts
    assert "capture paused" in texts
    assert timeline.summary.text().startswith("1 read in 1 session · 1 gap (")
    assert timeline.summary.text().endswith("· 1 memory")
    memory_row = next(item for item in rows if item.text(1) == "Memory")
    timeline.tree.itemDoubleClicked.emit(memory_row, 0)
    browser = engram.window.memories
    qtbot.waitUntil(
        lambda: (
            browser.current() is not None and browser.current().headline() == "Planned the garden"
        )
    )


def test_capture_that_cannot_start_is_reported_not_fatal(qtbot, services, monkeypatch):
    from ui.app import EngramApp

    def no_screen(*_args):
        raise RuntimeError("no X display to capture")

    working = services.runtime._capture_factory
    monkeypatch.setattr(services.runtime, "_capture_factory", no_screen)
    app = EngramApp(services, autostart_capture=True, load_model=False)
    qtbot.addWidget(app.window)
    with qtbot.waitSignal(app.controller.capture_failed, timeout=10_000):
        app.start()
    try:
        assert app.window.capture_label.text() == "Capture: unavailable"
        assert "no X display" in app.window.capture_label.toolTip()
        assert app.tray.state_action.text() == "Capture: unavailable"
        assert not app.tray.pause_action.isEnabled()
        assert app.window.memories.model.rowCount() == 0  # the rest of the app works
        assert app.window.error_button.isVisible()
        monkeypatch.setattr(services.runtime, "_capture_factory", working)  # the screen came back
        with qtbot.waitSignal(app.controller.capture_changed, timeout=10_000):
            app.controller.start_capture()
        assert app.tray.pause_action.isEnabled() and app.tray.pause_hour_action.isEnabled()
        assert app.window.capture_label.toolTip() == ""
    finally:
        app.quit()


def test_the_exclusion_list_shows_app_names_and_keeps_title_patterns_under_advanced(qtbot, engram):
    panel = engram.window.capture
    qtbot.waitUntil(lambda: "keepassxc" in panel.apps.toPlainText())
    assert "\\b" not in panel.apps.toPlainText()  # names, not regular expressions
    assert panel.titles.isHidden() and not panel.advanced.isChecked()
    assert "incognito" in panel.titles.toPlainText()  # the patterns are kept, out of sight
    panel.advanced.click()
    assert not panel.titles.isHidden()
    panel.advanced.click()
    panel.titles.setPlainText("([unclosed")
    panel.save_exclusions()
    qtbot.waitUntil(lambda: panel.rules_message.text().startswith("Not saved"))
    assert not panel.titles.isHidden()  # the bad pattern is shown where it can be fixed
