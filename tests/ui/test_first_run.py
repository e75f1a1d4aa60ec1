"""Consent on first run: capture never starts before the user says yes once; the first-run page
says what is captured, what is never kept, where the data lives and how to pause and exclude;
its answers (capture, start at login) are saved and acted on; the launcher's --tray flag."""

from __future__ import annotations

import pytest

from app import autostart
from app.services import Services
from app.settings import Settings, load_settings


@pytest.fixture
def new_user(services: Services) -> Services:
    services.settings = Settings()  # nobody has answered the first-run page
    return services


def _app(qtbot, services: Services, **kwargs):
    from ui.app import EngramApp

    app = EngramApp(services, load_model=False, **kwargs)
    qtbot.addWidget(app.window)
    with qtbot.waitSignal(app.controller.store_ready, timeout=10_000):
        app.start()
    qtbot.waitUntil(lambda: app.controller.capture is not None, timeout=10_000)
    return app


def test_capture_does_not_start_before_the_user_says_yes(qtbot, new_user):
    app = _app(qtbot, new_user, autostart_capture=True)
    try:
        assert app.first_run is not None and app.first_run.isVisible()
        assert app.controller.capture.status.state == "stopped"
        qtbot.wait(300)  # capture's interval is 0.1 s here: nothing may have been read
        assert new_user.store().events.counts().get("pending", 0) == 0
        assert not new_user.capture().running
    finally:
        app.quit()


def test_the_first_run_page_says_what_is_kept_where_and_how_to_stop_it(qtbot, new_user):
    app = _app(qtbot, new_user, autostart_capture=True)
    try:
        text = app.first_run.text.text()
        assert str(new_user.settings.resolved_data_dir()) in text  # the real data folder
        for said in ("Screenshots", "Secrets", "passwords", "Pause capture", "Capture"):
            assert said in text
        assert not app.first_run.capture.isChecked()  # a yes is given, never assumed
        assert not app.first_run.login.isChecked()
    finally:
        app.quit()


def test_saying_yes_starts_capture_and_start_at_login_writes_the_entry(qtbot, new_user):
    app = _app(qtbot, new_user, autostart_capture=True)
    try:
        page = app.first_run
        page.capture.setChecked(True)
        page.login.setChecked(True)
        page.start_button.click()
        qtbot.waitUntil(lambda: app.controller.capture.status.state == "running", timeout=10_000)
        saved = load_settings()
        assert saved.first_run_done and saved.capture_consent and saved.start_at_login
        assert autostart.is_enabled() and "--tray" in autostart.entry_path().read_text()
        assert app.first_run is None
    finally:
        app.quit()


def test_saying_no_keeps_capture_off_and_the_page_is_not_shown_again(qtbot, new_user):
    app = _app(qtbot, new_user, autostart_capture=True)
    app.first_run.start_button.click()  # capture left unticked
    qtbot.waitUntil(lambda: load_settings().first_run_done, timeout=10_000)
    assert not load_settings().capture_consent and not autostart.is_enabled()
    assert app.controller.capture.status.state == "stopped"
    app.quit()
    again = _app(qtbot, Services(load_settings(), **_parts(new_user)), autostart_capture=True)
    try:
        assert again.first_run is None
        assert again.controller.capture.status.state == "stopped"
    finally:
        again.quit()


def test_a_user_who_said_yes_before_gets_capture_at_once(qtbot, services):
    app = _app(qtbot, services, autostart_capture=True)
    try:
        assert app.first_run is None
        qtbot.waitUntil(lambda: app.controller.capture.status.state == "running", timeout=10_000)
    finally:
        app.quit()


def test_starting_capture_by_hand_is_a_yes_kept_for_the_next_launch(qtbot, new_user):
    app = _app(qtbot, new_user, autostart_capture=True)
    try:
        app.first_run.reject()  # closed without an answer: shown again next time
        app.window.capture.start_button.click()
        qtbot.waitUntil(lambda: app.controller.capture.status.state == "running", timeout=10_000)
        saved = load_settings()
        assert saved.capture_consent and not saved.first_run_done
    finally:
        app.quit()


def test_the_settings_dialog_turns_start_at_login_on_and_off(qtbot, engram):
    window = engram.window
    for wanted in (True, False):
        window.open_settings()
        dialog = window.dialog
        assert dialog.start_at_login.isChecked() is not wanted
        dialog.start_at_login.setChecked(wanted)
        dialog.accept()
        qtbot.waitUntil(lambda w=wanted: autostart.is_enabled() is w, timeout=10_000)
        assert engram.controller.services.settings.start_at_login is wanted


def test_in_the_tray_at_login_the_window_stays_hidden_unless_there_is_no_tray(
    qtbot, services, monkeypatch
):
    from ui.app import EngramApp
    from ui.tray import Tray

    app = EngramApp(services, autostart_capture=False, load_model=False)
    qtbot.addWidget(app.window)
    monkeypatch.setattr(Tray, "show", lambda self: True)  # a tray to live in
    app.start(in_tray=True)
    try:
        assert not app.window.isVisible() and app.window.keep_running_in_tray
    finally:
        app.quit()
    again = Services(services.settings, **_parts(services))
    lonely = EngramApp(again, autostart_capture=False, load_model=False)
    qtbot.addWidget(lonely.window)
    monkeypatch.setattr(Tray, "show", lambda self: False)
    lonely.start(in_tray=True)
    try:
        assert lonely.window.isVisible()  # else Engram would run on unseen
    finally:
        lonely.quit()


@pytest.mark.parametrize("flag", ["--tray", "--minimized"])
def test_the_launcher_starts_the_app_in_the_tray_for_its_flag(monkeypatch, flag: str):
    import ui.app
    from ui.launcher import main

    calls: list[bool] = []
    monkeypatch.setattr(ui.app, "run_gui", lambda tray=False: calls.append(tray) or 0)
    assert main([flag]) == 0 and main([]) == 0
    assert calls == [True, False]


def _parts(services: Services) -> dict:
    runtime = services.runtime
    return {
        "store_opener": runtime._store_opener,
        "model_factory": runtime._model_factory,
        "capture_factory": runtime._capture_factory,
    }
