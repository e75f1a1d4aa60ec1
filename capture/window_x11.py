"""The X11 adapter for window information: the only module that imports python-xlib.

The active window comes from EWMH (`_NET_ACTIVE_WINDOW` on the root window, which every modern
window manager keeps); without a window manager it falls back to the input focus, then to the
top-most mapped window. Names come from `_NET_WM_NAME` (UTF-8) or `WM_NAME`, the application from
`WM_CLASS`, the owning process from `_NET_WM_PID`, a dialog's parent from `WM_TRANSIENT_FOR`.
Override-redirect windows (menus, popups, tooltips) are children of the root like any other and
are listed too, so capture can paint over Engram's own menus. The screen counts as locked when
the MIT screen saver is on or a known screen locker owns the active window.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from capture.ports import Rect, ScreenUnavailable, WindowInfo

#: WM_CLASS names of screen lockers: while one is active nothing on screen is the user's.
LOCKER_CLASSES = frozenset(
    {
        "i3lock",
        "xsecurelock",
        "xscreensaver",
        "light-locker",
        "slock",
        "swaylock",
        "gnome-screensaver",
        "kscreenlocker_greet",
        "xlock",
        "betterlockscreen",
    }
)


class X11Windows:
    """Thread-safe: one connection, used under a lock; re-opened after the server goes away."""

    def __init__(self, display: str | None = None) -> None:
        self._display_name = display
        self._lock = threading.Lock()
        self._d: Any = None
        self._atoms: dict[str, int] = {}

    def _conn(self) -> Any:
        if self._d is None:
            name = self._display_name or os.environ.get("DISPLAY")
            if not name:
                raise ScreenUnavailable("no X display: DISPLAY is not set")
            from Xlib import display, error

            try:
                self._d = display.Display(name)
            except (error.DisplayError, error.ConnectionClosedError, OSError) as exc:
                raise ScreenUnavailable(f"cannot open the X display {name}: {exc}") from exc
            self._atoms = {}
        return self._d

    def _call(self, func: Any) -> Any:
        from Xlib import error

        with self._lock:
            try:
                return func(self._conn())
            except (error.ConnectionClosedError, error.DisplayError, OSError) as exc:
                self._drop()
                raise ScreenUnavailable(f"the X display went away: {exc}") from exc

    def _drop(self) -> None:
        if self._d is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail too
                self._d.close()
            with contextlib.suppress(Exception):  # ... and leave its socket open
                self._d.display.socket.close()
            self._d = None

    def _atom(self, d: Any, name: str) -> int:
        if name not in self._atoms:
            self._atoms[name] = int(d.intern_atom(name))
        return self._atoms[name]

    # ----- the WindowSource port -------------------------------------------------------------

    def active_window(self) -> WindowInfo | None:
        return self._call(self._active)  # type: ignore[no-any-return]

    def visible_windows(self) -> list[WindowInfo]:
        return self._call(self._visible)  # type: ignore[no-any-return]

    def screen_locked(self) -> bool:
        return bool(self._call(self._locked))

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ----- helpers (run under the lock) ------------------------------------------------------

    def _active(self, d: Any) -> WindowInfo | None:
        from Xlib import X, error

        root = d.screen().root
        try:
            prop = root.get_full_property(self._atom(d, "_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
            if prop is not None and len(prop.value) and int(prop.value[0]):
                window = d.create_resource_object("window", int(prop.value[0]))
                top = self._toplevel(d, window)
                info = self._info(d, top) if top is not None else None
                if info is not None:
                    return info
            focus = d.get_input_focus().focus
            if not isinstance(focus, int) and focus.id != root.id:
                top = self._toplevel(d, focus)
                info = self._info(d, top) if top is not None else None
                if info is not None:
                    return info
        except error.BadWindow:  # the window closed between two requests
            return None
        windows = self._visible(d)
        return windows[-1] if windows else None

    def _visible(self, d: Any) -> list[WindowInfo]:
        from Xlib import X, error

        out = []
        for child in d.screen().root.query_tree().children:
            try:
                if child.get_attributes().map_state != X.IsViewable:
                    continue
                client = self._client(d, child)
                if client is None:
                    continue
                info = self._info(d, client, frame=child)
            except error.BadWindow:
                continue
            if info is not None:
                out.append(info)
        return out

    def _locked(self, d: Any) -> bool:
        root = d.screen().root
        if d.has_extension("MIT-SCREEN-SAVER"):
            from Xlib.ext import screensaver

            if root.screensaver_query_info().state in (screensaver.StateOn, screensaver.StateCycle):
                return True
        active = self._active(d)
        return active is not None and (
            active.app.lower() in LOCKER_CLASSES or active.instance.lower() in LOCKER_CLASSES
        )

    def _client(self, d: Any, frame: Any, depth: int = 2) -> Any:
        """The window with WM_CLASS inside a window manager's frame (or the frame itself)."""
        if frame.get_wm_class() is not None:
            return frame
        if depth == 0:
            return None
        for child in frame.query_tree().children:
            found = self._client(d, child, depth - 1)
            if found is not None:
                return found
        return None

    def _toplevel(self, d: Any, window: Any) -> Any:
        root_id = d.screen().root.id
        current = window
        for _ in range(16):
            if current.get_wm_class() is not None:
                return current
            parent = current.query_tree().parent
            if parent is None or isinstance(parent, int) or parent.id == root_id:
                return None
            current = parent
        return None

    def _info(self, d: Any, window: Any, frame: Any = None) -> WindowInfo | None:
        from Xlib import X

        wm_class = window.get_wm_class()
        if wm_class is None:
            return None
        prop = window.get_full_property(self._atom(d, "_NET_WM_NAME"), X.AnyPropertyType)
        if prop is not None and prop.value:
            raw = prop.value
            title = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        else:
            name = window.get_wm_name()
            title = name.decode("latin-1") if isinstance(name, bytes) else str(name or "")
        outer = frame if frame is not None else window
        geo = outer.get_geometry()
        pos = outer.translate_coords(d.screen().root, 0, 0)
        rect = Rect(-int(pos.x), -int(pos.y), int(geo.width), int(geo.height))
        pid_prop = window.get_full_property(self._atom(d, "_NET_WM_PID"), X.AnyPropertyType)
        pid = int(pid_prop.value[0]) if pid_prop is not None and len(pid_prop.value) else None
        parent = window.get_wm_transient_for()
        return WindowInfo(
            id=int(window.id),
            app=str(wm_class[1]),
            instance=str(wm_class[0]),
            title=title,
            rect=rect,
            pid=pid,
            transient_for=int(parent.id) if parent is not None and int(parent.id) else None,
        )
