"""The desktop app's composition: controller, main window and tray, and `run_gui` for `engram`.

The window is shown before anything slow starts: the store opens, capture starts and the model
loads in the background (see Controller.start), so the first paint never waits for them.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.services import Services
from app.settings import Settings, SettingsError, load_settings
from capture.privacy import ENGRAM_WM_CLASS
from ui.controller import Controller
from ui.first_run import FirstRunDialog
from ui.main_window import MainWindow
from ui.single_instance import SingleInstance, server_name
from ui.tray import Tray, engram_icon

log = logging.getLogger(__name__)


class EngramApp(QObject):
    def __init__(
        self,
        services: Services,
        *,
        autostart_capture: bool = True,
        load_model: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = Controller(
            services, autostart_capture=autostart_capture, load_model=load_model, parent=self
        )
        self.window = MainWindow(self.controller)
        self.tray = Tray(self.controller, self)
        self.tray.show_window.connect(self.window.bring_forward)
        self.tray.search_requested.connect(self.window.open_search)
        self.tray.quit_requested.connect(self.quit)
        self.window.quit_requested.connect(self.quit)
        self.closed = False
        self.first_run: FirstRunDialog | None = None  # open now (tests answer it)

    def start(self, *, in_tray: bool = False) -> None:
        """Show the window (and the tray icon where there is a tray), then start the work.
        `in_tray` (login autostart) keeps the window hidden, unless there is no tray to live
        in or the first-run page still needs an answer."""
        first_run = not self.controller.services.settings.first_run_done
        if not in_tray or first_run:
            self.window.show()
        # Without a tray, closing the window must quit, or Engram would run on unseen.
        self.window.keep_running_in_tray = self.tray.show()
        if not self.window.isVisible() and not self.window.keep_running_in_tray:
            self.window.show()
        self.controller.start()
        if first_run:
            self.show_first_run()

    def show_first_run(self) -> FirstRunDialog:
        """The consent page over the window; capture stays off until it gets a yes."""
        dialog = FirstRunDialog(self.controller.services.settings, self.window)
        dialog.answered.connect(self._first_run_answered)
        dialog.finished.connect(lambda _r: setattr(self, "first_run", None))
        self.first_run = dialog
        dialog.open()
        return dialog

    def _first_run_answered(self, capture: bool, start_at_login: bool) -> None:
        def saved(_settings: object) -> None:
            if capture:
                self.controller.start_capture()

        self.controller.run(
            "Saving your choices",
            self.controller.services.finish_first_run,
            capture,
            start_at_login,
            on_done=saved,
        )

    def quit(self) -> None:
        """Stop everything (tasks, agents, capture, model, store) and leave the event loop."""
        if self.closed:
            return
        self.closed = True
        self.tray.hide()
        self.window.keep_running_in_tray = False
        self.window.hide()
        self.controller.shutdown()
        app = QApplication.instance()
        if app is not None:
            app.quit()


def run_gui(argv: Sequence[str] | None = None, *, tray: bool = False) -> int:
    """The desktop app; `tray` starts it hidden in the tray (the login autostart entry)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Qt's xcb writes WM_CLASS ("engram": argv[0]'s name, "Engram": the application name) on
    # every window, menus and dialogs included: how capture knows Engram never to read itself.
    qt_app = QApplication(list(argv) if argv is not None else [ENGRAM_WM_CLASS])
    qt_app.setApplicationName("Engram")
    qt_app.setDesktopFileName(ENGRAM_WM_CLASS)
    qt_app.setQuitOnLastWindowClosed(False)  # the tray keeps Engram running
    qt_app.setWindowIcon(engram_icon())
    problem = None
    try:
        settings = load_settings()
    except SettingsError as exc:
        # Defaults, without the first-run page: answering it would overwrite the file.
        settings, problem = Settings(first_run_done=True), str(exc)

    instance = SingleInstance(server_name(settings.resolved_data_dir()))
    if instance.notify_running():
        print("Engram is already running; its window was brought forward.")
        return 0
    if not instance.listen():
        log.warning("could not listen on %s: a second launch will not find this one", instance.name)

    engram = EngramApp(Services(settings, serve=True))
    instance.activated.connect(engram.window.bring_forward)
    # Ctrl+C and SIGTERM quit cleanly, from the moment a window can show: a timer lets Python
    # run its signal handlers.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: QTimer.singleShot(0, engram.quit))
    engram.start(in_tray=tray)
    if problem:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Engram",
            f"Your settings could not be used, so Engram started on its defaults "
            f"(the file was left as it is).\n\n{problem}",
            QMessageBox.StandardButton.Ok,
            engram.window,
        )
        box.open()

    pulse = QTimer()
    pulse.start(250)
    pulse.timeout.connect(lambda: None)
    code = qt_app.exec()
    engram.quit()
    instance.close()
    return code
