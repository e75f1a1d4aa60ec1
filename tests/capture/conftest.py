"""Fixtures for capture tests: a real Xvfb screen, real Tk windows on it, and pipelines built on
the real adapters or on fakes, writing to a real SQLite database in the test's folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.capture.config import CaptureSettings
from app.capture.fakes import FakeOcr, FakeScreen, FakeWindows
from app.capture.ocr_tesseract import TesseractOcr
from app.capture.pipeline import CapturePipeline
from app.capture.screen_mss import MssScreen
from app.capture.window_x11 import X11Windows
from bench.xscreen import TkWindow, Xvfb
from storage.capture_log import CaptureLog
from storage.events import EventQueue
from storage.sqlite_db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "capture.sqlite3")
    yield database
    database.close()


@pytest.fixture
def queue(db: Database) -> EventQueue:
    return EventQueue(db)


@pytest.fixture
def capture_log(db: Database) -> CaptureLog:
    return CaptureLog(db)


@pytest.fixture
def xvfb() -> Iterator[Xvfb]:
    """A fresh 800x600 X screen on a free display number, stopped after the test."""
    with Xvfb(800, 600) as screen:
        yield screen


@pytest.fixture
def show(xvfb: Xvfb) -> Iterator[Callable[..., TkWindow]]:
    """show(text, app=..., title=..., active=True, x=, y=, width=, height=) -> a real window."""
    windows: list[TkWindow] = []

    def _show(text: str, *, active: bool = True, **kwargs: Any) -> TkWindow:
        window = TkWindow(xvfb.display, text, **kwargs)
        windows.append(window)
        if active:
            xvfb.set_active(window.id)
        return window

    yield _show
    for window in windows:
        window.close()


class CountingOcr:
    """The real tesseract adapter, counting how often it is called."""

    def __init__(self, inner: TesseractOcr) -> None:
        self.inner = inner
        self.calls = 0

    def check(self) -> str:
        return self.inner.check()

    def read(self, image: Any, timeout_s: float) -> str:
        self.calls += 1
        return self.inner.read(image, timeout_s)


@pytest.fixture
def real_pipeline(
    xvfb: Xvfb, queue: EventQueue, capture_log: CaptureLog
) -> Iterator[Callable[..., CapturePipeline]]:
    """A pipeline on the real screen, the real window system and real (counted) tesseract."""
    made: list[CapturePipeline] = []

    def make(settings: CaptureSettings | None = None, **parts: Any) -> CapturePipeline:
        pipeline = CapturePipeline(
            parts.get("screen") or MssScreen(xvfb.display),
            parts.get("windows") or X11Windows(xvfb.display),
            parts.get("ocr") or CountingOcr(TesseractOcr()),
            queue,
            capture_log,
            settings or CaptureSettings(),
        )
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.screen.close()
        pipeline.windows.close()


@pytest.fixture
def fakes() -> tuple[FakeScreen, FakeWindows, FakeOcr]:
    return FakeScreen(), FakeWindows(), FakeOcr("Meeting notes: ship the capture pipeline")


@pytest.fixture
def fake_pipeline(
    fakes: tuple[FakeScreen, FakeWindows, FakeOcr], queue: EventQueue, capture_log: CaptureLog
) -> Callable[..., CapturePipeline]:
    def make(settings: CaptureSettings | None = None) -> CapturePipeline:
        screen, windows, ocr = fakes
        return CapturePipeline(
            screen, windows, ocr, queue, capture_log, settings or CaptureSettings()
        )

    return make
