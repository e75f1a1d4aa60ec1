"""The ports' contracts, run against the real adapters (mss, python-xlib, tesseract on a real
Xvfb screen) and against the fakes, so tests on the fakes mean something."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from PIL import Image, ImageDraw, ImageFont

from capture.fakes import FakeOcr, FakeScreen, FakeWindows
from capture.ocr_tesseract import TesseractOcr
from capture.ports import (
    MonitorGone,
    OcrEngine,
    OcrTimeout,
    Rect,
    ScreenSource,
    WindowSource,
)
from capture.screen_mss import MssScreen
from capture.window_x11 import X11Windows
from tests.helpers.xscreen import TkWindow, Xvfb

# ----- screen -------------------------------------------------------------------------------


@pytest.fixture(params=["mss", "fake"])
def screen(request: pytest.FixtureRequest) -> Iterator[ScreenSource]:
    if request.param == "fake":
        yield FakeScreen([(640, 480)])
        return
    with Xvfb(640, 480) as x:
        real = MssScreen(x.display)
        yield real
        real.close()


def test_screen_lists_monitors_counted_from_one(screen: ScreenSource) -> None:
    monitors = screen.monitors()
    assert [m.index for m in monitors] == [1]
    assert (monitors[0].rect.width, monitors[0].rect.height) == (640, 480)


def test_screen_grabs_bgra_pixels_of_the_monitor(screen: ScreenSource) -> None:
    frame = screen.grab(1)
    assert frame.monitor == 1
    assert frame.rect == screen.monitors()[0].rect
    assert len(frame.bgra) == 640 * 480 * 4


def test_screen_names_a_missing_monitor(screen: ScreenSource) -> None:
    with pytest.raises(MonitorGone, match="monitor 7"):
        screen.grab(7)


def test_screen_works_again_after_close(screen: ScreenSource) -> None:
    screen.close()
    screen.close()
    assert len(screen.grab(1).bgra) == 640 * 480 * 4


# ----- windows ------------------------------------------------------------------------------


class Desk(Protocol):
    source: WindowSource

    def show(self, app: str, title: str, rect: Rect, **owner: int) -> int: ...
    def lock(self, on: bool) -> None: ...


class FakeDesk:
    def __init__(self) -> None:
        self.source = FakeWindows()

    def show(self, app: str, title: str, rect: Rect, **owner: int) -> int:
        return self.source.show(app, title, rect, **owner)

    def lock(self, on: bool) -> None:
        self.source.locked = on


class RealDesk:
    def __init__(self, x: Xvfb) -> None:
        self.x = x
        self.source = X11Windows(x.display)
        self.windows: list[TkWindow] = []

    def show(self, app: str, title: str, rect: Rect, **owner: int) -> int:
        window = TkWindow(
            self.x.display, "text", app=app, title=title, x=rect.left, y=rect.top,
            width=rect.width, height=rect.height,
        )  # fmt: skip
        self.windows.append(window)
        if owner:
            self.x.set_owner(window.id, **owner)
        self.x.set_active(window.id)
        return window.id

    def lock(self, on: bool) -> None:
        self.x.screensaver(on)


@pytest.fixture(params=["x11", "fake"])
def desk(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeDesk()
        return
    with Xvfb(800, 600) as x:
        real = RealDesk(x)
        yield real
        for window in real.windows:
            window.close()
        real.source.close()  # type: ignore[attr-defined]


def test_windows_report_the_active_window(desk: Any) -> None:
    desk.show("Notes", "notes.txt - Notes", Rect(10, 20, 300, 200))
    second = desk.show("Terminal", "bash — ~/src", Rect(350, 40, 300, 200))
    active = desk.source.active_window()
    assert active is not None
    assert (active.id, active.app, active.title) == (second, "Terminal", "bash — ~/src")
    assert active.rect == Rect(350, 40, 300, 200)


def test_windows_list_the_visible_ones_bottom_first(desk: Any) -> None:
    desk.show("Notes", "one", Rect(10, 20, 300, 200))
    desk.show("Editor", "two", Rect(100, 120, 300, 200))
    titles = [w.title for w in desk.source.visible_windows()]
    assert titles == ["one", "two"]


def test_windows_report_their_process_and_dialog_parent(desk: Any) -> None:
    main = desk.show("Editor", "main", Rect(10, 20, 300, 200), pid=4242)
    desk.show("Editor", "dialog", Rect(100, 120, 200, 100), pid=4242, transient_for=main)
    desk.show("Notes", "unowned", Rect(400, 20, 300, 200))
    found = {w.title: (w.pid, w.transient_for) for w in desk.source.visible_windows()}
    assert found == {"main": (4242, None), "dialog": (4242, main), "unowned": (None, None)}
    active = desk.source.active_window()
    assert active is not None and (active.title, active.pid) == ("unowned", None)


def test_windows_report_a_locked_screen(desk: Any) -> None:
    assert desk.source.screen_locked() is False
    desk.lock(True)
    assert desk.source.screen_locked() is True
    desk.lock(False)
    assert desk.source.screen_locked() is False


# ----- OCR ----------------------------------------------------------------------------------


def _text_image(text: str) -> Image.Image:
    image = Image.new("L", (520, 90), 255)
    font = ImageFont.truetype("DejaVuSansMono.ttf", 28)
    ImageDraw.Draw(image).text((12, 24), text, fill=0, font=font)
    return image


@pytest.fixture(params=["tesseract", "fake"])
def ocr(request: pytest.FixtureRequest) -> OcrEngine:
    if request.param == "fake":
        return FakeOcr("Engram remembers 2024", cost_s=0.05)
    return TesseractOcr()


def test_ocr_reports_its_version(ocr: OcrEngine) -> None:
    assert ocr.check()


def test_ocr_reads_text(ocr: OcrEngine) -> None:
    image = _text_image("Engram remembers 2024")
    before = image.tobytes()
    assert "Engram remembers 2024" in ocr.read(image, timeout_s=30)
    assert image.tobytes() == before  # the frame is not modified


def test_ocr_reads_nothing_from_a_blank_frame(ocr: OcrEngine) -> None:
    assert ocr.read(Image.new("L", (400, 300), 255), timeout_s=30).strip() == ""


def test_ocr_stops_at_its_time_limit(ocr: OcrEngine) -> None:
    with pytest.raises(OcrTimeout, match="was stopped"):
        ocr.read(_text_image("slow"), timeout_s=0.001)
