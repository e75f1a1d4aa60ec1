"""Fixtures for the desktop app: offscreen Qt, Qt warnings that fail the test, and a running
EngramApp over a real store (SQLite, hashed embeddings) with the scripted chat model and the
fake screen, so every test drives real widgets without a display or a model download."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QtMsgType, qInstallMessageHandler

from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import Request
from app.services import Services
from app.settings import Settings
from capture.config import CaptureSettings
from capture.fakes import FakeOcr, FakeScreen, FakeWindows
from capture.service import CaptureService, build_service
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.store import MemoryStore

FAILING = {QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg}
#: What the offscreen platform says about window-manager calls it cannot do (qutebrowser ignores
#: the same): noise about the test platform, not about our code.
PLATFORM_NOISE = ("This plugin does not support",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Our handler below is the one that judges Qt messages in these tests, not pytest-qt's."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.no_qt_log)


@pytest.fixture(autouse=True)
def qt_warnings_fail() -> Iterator[list[str]]:
    """Any Qt warning or critical message during the test fails it."""
    seen: list[str] = []

    def handler(kind: QtMsgType, context: object, message: str) -> None:
        if kind in FAILING and not message.startswith(PLATFORM_NOISE):
            seen.append(f"{kind.name}: {message}")

    previous = qInstallMessageHandler(handler)
    yield seen
    qInstallMessageHandler(previous)
    if seen:
        pytest.fail("Qt warnings:\n" + "\n".join(seen), pytrace=False)


def chat_responder(answer: str) -> Callable[[Request], str]:
    """A scripted model that gives `answer` to chat and the smallest valid JSON to the agents."""
    from agents.llm.fakes import minimal_instance

    def respond(request: Request) -> str:
        if request.schema is not None:
            import json

            return json.dumps(minimal_instance(request.schema))
        return answer

    return respond


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel(
        default=chat_responder("Your cat is called Miso [M1]. She likes naps."), delay_s=0.01
    )


@pytest.fixture
def screen() -> FakeScreen:
    return FakeScreen()


@pytest.fixture
def services(engram_home: Path, model: ScriptedChatModel, screen: FakeScreen) -> Services:
    return make_services(engram_home, model, screen)


def make_services(engram_home: Path, model: ScriptedChatModel, screen: FakeScreen) -> Services:
    """The app's services on `engram_home` with the scripted model and a fake screen (a test
    that restarts the app makes a second one on the same folder)."""

    def open_store(_settings: Settings) -> MemoryStore:
        return MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())

    def capture(store: MemoryStore, settings: CaptureSettings) -> CaptureService:
        windows = FakeWindows()
        windows.show("editor", "notes.txt")
        fast = settings.model_copy(update={"interval_s": 0.1})
        return build_service(
            store,
            fast,
            screen=screen,
            windows=windows,
            ocr=FakeOcr("meeting notes about the garden"),
        )

    # Consent given, as a person who answered the first-run page (tests of it make their own).
    consented = Settings(first_run_done=True, capture_consent=True)
    return Services(
        consented, store_opener=open_store, model_factory=lambda _s: model, capture_factory=capture
    )


@pytest.fixture
def engram(qtbot, services: Services):
    """The whole app (window, tray, controller) started, its store open."""
    from ui.app import EngramApp

    app = EngramApp(services, autostart_capture=False, load_model=False)
    qtbot.addWidget(app.window)
    with qtbot.waitSignal(app.controller.store_ready, timeout=10_000):
        app.start()
    qtbot.waitUntil(lambda: app.controller.capture is not None, timeout=10_000)
    yield app
    app.quit()
