"""The three ports capture runs on: a screen to grab, the windows on it, and an OCR engine.

Each real engine (mss, python-xlib, tesseract) sits behind one adapter module that imports it
lazily; fakes in `capture.fakes` implement the same protocols and pass the same contract
tests, so the pipeline's unit tests mean something.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from storage.errors import EngramError

if TYPE_CHECKING:
    from PIL import Image


class CaptureError(EngramError):
    """Base of the errors screen capture can meet."""


class ScreenUnavailable(CaptureError):
    """There is no screen to grab (no X display, or it went away)."""


class MonitorGone(CaptureError):
    """A monitor that was chosen (or grabbed a moment ago) no longer exists."""


class OcrUnavailable(CaptureError):
    """The OCR engine is missing or cannot start (tesseract not installed, no language data)."""


class OcrTimeout(CaptureError):
    """OCR of one frame took longer than the configured limit and was stopped."""


class OcrFailed(CaptureError):
    """The OCR engine ran but reported an error for a frame."""


@dataclass(frozen=True)
class Rect:
    left: int
    top: int
    width: int
    height: int

    def intersects(self, other: Rect) -> bool:
        return (
            self.left < other.left + other.width
            and other.left < self.left + self.width
            and self.top < other.top + other.height
            and other.top < self.top + self.height
        )

    def contains_point(self, x: int, y: int) -> bool:
        return self.left <= x < self.left + self.width and self.top <= y < self.top + self.height

    @property
    def center(self) -> tuple[int, int]:
        return self.left + self.width // 2, self.top + self.height // 2


@dataclass(frozen=True)
class Monitor:
    """A monitor in desktop coordinates; `index` counts from 1 as mss does."""

    index: int
    rect: Rect


@dataclass(frozen=True)
class Frame:
    """One grabbed monitor: raw BGRA pixels, kept in memory only (never written to disk)."""

    monitor: int
    rect: Rect
    bgra: bytes

    @property
    def size(self) -> tuple[int, int]:
        return self.rect.width, self.rect.height


@dataclass(frozen=True)
class WindowInfo:
    """A top-level window: its application (WM_CLASS class and instance), title and place, and
    who owns it: the process (`_NET_WM_PID`, None when unknown) and the window it is a dialog of
    (`WM_TRANSIENT_FOR`), so Engram can recognise its own windows without trusting titles."""

    id: int
    app: str
    instance: str
    title: str
    rect: Rect
    pid: int | None = None
    transient_for: int | None = None


class ScreenSource(Protocol):
    """Grabs monitors. Used from one thread at a time (mss handles are thread-bound)."""

    def monitors(self) -> list[Monitor]:
        """The monitors now attached; raises ScreenUnavailable when there is no screen."""
        ...

    def grab(self, monitor: int) -> Frame:
        """Grab monitor `monitor` (1-based); raises MonitorGone or ScreenUnavailable."""
        ...

    def close(self) -> None: ...


class WindowSource(Protocol):
    """What is on the screen: the active window, every visible window, and the lock state."""

    def active_window(self) -> WindowInfo | None: ...

    def visible_windows(self) -> list[WindowInfo]:
        """Mapped top-level windows, bottom of the stack first."""
        ...

    def screen_locked(self) -> bool: ...

    def close(self) -> None: ...


class OcrEngine(Protocol):
    """Reads text from a grayscale image."""

    def read(self, image: Image.Image, timeout_s: float) -> str:
        """Text in `image`; raises OcrUnavailable, OcrTimeout or OcrFailed."""
        ...

    def check(self) -> str:
        """A version string when the engine can run; raises OcrUnavailable otherwise."""
        ...


class NoWindows:
    """Best effort where window information cannot be read: no app, no title, never locked."""

    def active_window(self) -> WindowInfo | None:
        return None

    def visible_windows(self) -> list[WindowInfo]:
        return []

    def screen_locked(self) -> bool:
        return False

    def close(self) -> None:
        pass
