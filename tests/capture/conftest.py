"""Fixtures for capture tests: pipelines built on the real adapters (on the shared Xvfb screen of
tests/conftest.py) or on fakes, writing to a real SQLite database in the test's folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from capture.config import CaptureSettings
from capture.fakes import FakeOcr, FakeScreen, FakeWindows
from capture.ocr_tesseract import TesseractOcr
from capture.pipeline import CapturePipeline
from capture.screen_mss import MssScreen
from capture.window_x11 import X11Windows
from storage.capture_log import CaptureLog
from storage.events import EventQueue
from storage.sqlite_db import Database
from tests.helpers.xscreen import Xvfb


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
