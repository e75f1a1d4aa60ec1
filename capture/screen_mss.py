"""The mss adapter: the only module that imports mss.

mss handles are bound to the thread that made them, so the handle is opened lazily on first use
(inside the capture thread) and re-opened after any failure. The monitor list is cached and
re-read every `refresh_s` seconds or when a grab fails, which is how a monitor that was unplugged
turns into a `MonitorGone` instead of a stale rectangle.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from capture.ports import Frame, Monitor, MonitorGone, Rect, ScreenUnavailable


class MssScreen:
    def __init__(self, display: str | None = None, refresh_s: float = 10.0) -> None:
        self._display = display
        self._refresh_s = refresh_s
        self._sct: Any = None
        self._monitors: list[Monitor] = []
        self._read_at = 0.0

    def _handle(self) -> Any:
        if self._sct is None:
            display = self._display or os.environ.get("DISPLAY")
            if os.name == "posix" and not _is_macos() and not display:
                raise ScreenUnavailable(
                    "no screen to capture: DISPLAY is not set (Engram captures X11 screens; "
                    "on Wayland run it inside an X11/XWayland session)"
                )
            import mss

            try:
                self._sct = mss.MSS(display=display) if display else mss.MSS()
            except Exception as exc:  # ScreenShotError, or OSError from the X libraries
                raise ScreenUnavailable(f"cannot open the screen {display or ''}: {exc}") from exc
        return self._sct

    def monitors(self) -> list[Monitor]:
        if not self._monitors or time.monotonic() - self._read_at > self._refresh_s:
            self._reload()
        return list(self._monitors)

    def _reload(self) -> None:
        self.close()
        try:
            raw = self._handle().monitors
        except ScreenUnavailable:
            raise
        except Exception as exc:  # mss raises ScreenShotError, or asserts, on a dead display
            self.close()
            raise ScreenUnavailable(f"cannot list monitors: {exc or type(exc).__name__}") from exc
        self._monitors = [
            Monitor(i, Rect(int(m["left"]), int(m["top"]), int(m["width"]), int(m["height"])))
            for i, m in enumerate(raw)
            if i > 0
        ]
        self._read_at = time.monotonic()

    def grab(self, monitor: int) -> Frame:
        found = self._find(monitor)
        if found is None:
            self._reload()  # it may have been plugged in a moment ago
            found = self._find(monitor)
        if found is None:
            raise MonitorGone(
                f"monitor {monitor} is not attached ({len(self._monitors)} monitor(s) now)"
            )
        try:
            shot = self._handle().grab(_box(found))
        except ScreenUnavailable:
            raise
        except Exception as exc:
            # The layout changed or the display went away and maybe came back: look again, once.
            self._reload()
            found = self._find(monitor)
            if found is None:
                raise MonitorGone(f"monitor {monitor} went away while it was grabbed") from exc
            try:
                shot = self._handle().grab(_box(found))
            except Exception as again:
                self.close()
                raise ScreenUnavailable(
                    f"cannot grab monitor {monitor}: {again or type(again).__name__}"
                ) from again
        width, height = int(shot.size[0]), int(shot.size[1])
        return Frame(monitor, Rect(found.rect.left, found.rect.top, width, height), shot.raw)

    def _find(self, monitor: int) -> Monitor | None:
        if not self._monitors:
            self._reload()
        return next((m for m in self._monitors if m.index == monitor), None)

    def close(self) -> None:
        if self._sct is not None:
            with contextlib.suppress(Exception):  # closing a dead display's handle may fail
                self._sct.close()
            self._sct = None


def _box(monitor: Monitor) -> dict[str, int]:
    r = monitor.rect
    return {"left": r.left, "top": r.top, "width": r.width, "height": r.height}


def _is_macos() -> bool:
    import sys

    return sys.platform == "darwin"
