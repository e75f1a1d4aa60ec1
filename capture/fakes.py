"""Stand-ins for the screen, the window system and OCR, for unit tests and quick benchmarks.

They pass the same contract tests as the real adapters (tests/capture/test_contracts.py), so a
pipeline test on fakes means something.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from PIL import Image

from capture.ports import (
    Frame,
    Monitor,
    MonitorGone,
    OcrTimeout,
    OcrUnavailable,
    Rect,
    ScreenUnavailable,
    WindowInfo,
)


class FakeScreen:
    """Monitors side by side, each a white page with a band of grey "ink" a test can change."""

    def __init__(self, sizes: list[tuple[int, int]] | None = None) -> None:
        self.available = True
        self._monitors: list[Monitor] = []
        self._shade: dict[int, int] = {}
        self.grabs = 0
        self.set_monitors(sizes or [(320, 200)])

    def set_monitors(self, sizes: list[tuple[int, int]]) -> None:
        left = 0
        self._monitors = []
        for index, (w, h) in enumerate(sizes, start=1):
            self._monitors.append(Monitor(index, Rect(left, 0, w, h)))
            self._shade.setdefault(index, 0)
            left += w

    def show(self, monitor: int, shade: int) -> None:
        """Paint monitor `monitor`'s band with grey level `shade` (255: a blank screen)."""
        self._shade[monitor] = shade

    def monitors(self) -> list[Monitor]:
        if not self.available:
            raise ScreenUnavailable("the fake screen is switched off")
        return list(self._monitors)

    def grab(self, monitor: int) -> Frame:
        found = next((m for m in self.monitors() if m.index == monitor), None)
        if found is None:
            raise MonitorGone(f"monitor {monitor} is not attached")
        self.grabs += 1
        shade = self._shade.get(monitor, 0)
        w, h = found.rect.width, found.rect.height
        band = h // 4  # a band of "ink" in the shade on a white page; 255 is a blank screen
        ink = bytes((shade, shade, shade, 255)) * (w * band)
        return Frame(monitor, found.rect, ink + b"\xff" * (4 * w * (h - band)))

    def close(self) -> None:
        pass


class FakeWindows:
    """A window list a test arranges: `show()` adds a window on top, `activate()` focuses one."""

    def __init__(self) -> None:
        self._windows: list[WindowInfo] = []
        self._active: int | None = None
        self.locked = False
        self.available = True
        self._ids = itertools.count(1)

    def show(
        self,
        app: str,
        title: str,
        rect: Rect | None = None,
        *,
        active: bool = True,
        pid: int | None = None,
        transient_for: int | None = None,
    ) -> int:
        """Add a window on top; `pid` is its `_NET_WM_PID`, `transient_for` its dialog parent."""
        wid = next(self._ids)
        info = WindowInfo(
            wid, app, app.lower(), title, rect or Rect(0, 0, 320, 200), pid, transient_for
        )
        self._windows.append(info)
        if active:
            self._active = wid
        return wid

    def activate(self, window_id: int | None) -> None:
        self._active = window_id

    def close_window(self, window_id: int) -> None:
        self._windows = [w for w in self._windows if w.id != window_id]
        if self._active == window_id:
            self._active = None

    def _check(self) -> None:
        if not self.available:
            raise ScreenUnavailable("the fake window system is gone")

    def active_window(self) -> WindowInfo | None:
        self._check()
        return next((w for w in self._windows if w.id == self._active), None)

    def visible_windows(self) -> list[WindowInfo]:
        self._check()
        return list(self._windows)

    def screen_locked(self) -> bool:
        self._check()
        return self.locked

    def close(self) -> None:
        pass


class FakeOcr:
    """Returns `text` (or `text_for(image)`) for any image that is not blank; counts its calls.

    `cost_s` makes each read take that long (and time out like tesseract when it exceeds the
    limit); `installed=False` behaves like a machine without tesseract.
    """

    def __init__(
        self,
        text: str = "",
        *,
        text_for: Callable[[Image.Image], str] | None = None,
        cost_s: float = 0.0,
        installed: bool = True,
    ) -> None:
        self.text = text
        self.text_for = text_for
        self.cost_s = cost_s
        self.installed = installed
        self.calls = 0
        self._lock = threading.Lock()

    def check(self) -> str:
        if not self.installed:
            raise OcrUnavailable("tesseract (the OCR engine) was not found (fake)")
        return "fake-1.0"

    def read(self, image: Image.Image, timeout_s: float) -> str:
        with self._lock:
            self.calls += 1
        self.check()
        if self.cost_s:
            time.sleep(min(self.cost_s, timeout_s))
            if self.cost_s > timeout_s:
                raise OcrTimeout(f"OCR took over {timeout_s:g} s and was stopped (fake)")
        low, high = image.convert("L").getextrema()
        if low == high:
            return ""
        return self.text_for(image) if self.text_for is not None else self.text
