"""A real X screen for capture tests and the capture benchmark: Xvfb on a free display number
(chosen by Xvfb itself through -displayfd, so parallel runs never collide), Tk windows showing
known text that can be changed on command, and the bits of window-manager behaviour capture reads
(the EWMH active window, the screen saver).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

_TK_WINDOW = r"""
import json, queue, sys, threading, tkinter as tk
cls, title, text, x, y, w, h, size = sys.argv[1:9]
root = tk.Tk(className=cls)
root.title(title)
root.geometry(f"{w}x{h}+{x}+{y}")
root.configure(bg="white")
label = tk.Label(root, text=text, font=("DejaVu Sans Mono", int(size)), bg="white", fg="black",
                 justify="left", anchor="nw")
label.pack(fill="both", expand=True, padx=12, pady=12)
commands = queue.Queue()

def read():
    for line in sys.stdin:
        commands.put(json.loads(line))
    commands.put({"op": "quit"})

def reply(**data):
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()

def poll():
    while not commands.empty():
        c = commands.get()
        if c["op"] == "quit":
            root.destroy()
            return
        if c["op"] == "text":
            label.configure(text=c["text"])
        elif c["op"] == "title":
            root.title(c["title"])
        root.update_idletasks()
        root.update()
        reply(ok=True)
    root.after(5, poll)

def ready():
    root.wait_visibility()
    root.update()
    reply(ready=True, id=int(root.wm_frame(), 16))

threading.Thread(target=read, daemon=True).start()
root.after(0, ready)
root.after(5, poll)
root.mainloop()
"""


class XvfbError(RuntimeError):
    """Xvfb is missing or did not start."""


class Xvfb:
    """`with Xvfb(1280, 720) as x:` -> x.display == ":N"; stopped and cleaned up on exit."""

    def __init__(self, width: int = 1024, height: int = 768, display: str = "") -> None:
        self.width, self.height = width, height
        self.display = display  # empty: Xvfb picks a free one
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Xvfb:
        exe = shutil.which("Xvfb")
        if exe is None:
            raise XvfbError("Xvfb is not installed (Debian package xvfb; `make setup` installs it)")
        read_fd, write_fd = os.pipe()
        self._proc = subprocess.Popen(
            [
                exe,
                *([self.display] if self.display else []),
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{self.width}x{self.height}x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        # Xvfb writes the number and the newline in two writes, and dies if the pipe is closed
        # in between: read up to the newline.
        got = b""
        deadline = time.monotonic() + 15
        try:
            while not got.endswith(b"\n") and time.monotonic() < deadline:
                ready, _, _ = select.select(
                    [read_fd], [], [], max(0.0, deadline - time.monotonic())
                )
                chunk = os.read(read_fd, 64) if ready else b""
                if not chunk:
                    break
                got += chunk
        finally:
            os.close(read_fd)
        number = got.decode().strip() if got.endswith(b"\n") else ""
        if not number:
            self.stop()
            raise XvfbError("Xvfb did not report a display within 15 s")
        self.display = f":{number}"
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Xvfb:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----- what a window manager would do ------------------------------------------------------

    def _x(self) -> Any:
        from Xlib import display

        return display.Display(self.display)

    def set_active(self, window_id: int) -> None:
        """Set `_NET_ACTIVE_WINDOW` on the root window, as an EWMH window manager does."""
        from Xlib import Xatom

        d = self._x()
        try:
            root = d.screen().root
            root.change_property(d.intern_atom("_NET_ACTIVE_WINDOW"), Xatom.WINDOW, 32, [window_id])
            d.sync()
        finally:
            d.close()

    def set_owner(
        self, window_id: int, pid: int | None = None, transient_for: int | None = None
    ) -> None:
        """Write `_NET_WM_PID` and `WM_TRANSIENT_FOR` on a window, as Qt and GTK do on their own
        (Tk does not)."""
        from Xlib import Xatom

        d = self._x()
        try:
            window = d.create_resource_object("window", window_id)
            if pid is not None:
                window.change_property(d.intern_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [pid])
            if transient_for is not None:
                window.change_property(Xatom.WM_TRANSIENT_FOR, Xatom.WINDOW, 32, [transient_for])
            d.sync()
        finally:
            d.close()

    def place(self, window_id: int, x: int, y: int, width: int, height: int) -> None:
        """Move and resize a top-level window (what a window manager does; there is none)."""
        d = self._x()
        try:
            window = d.create_resource_object("window", window_id)
            window.configure(x=x, y=y, width=width, height=height)
            d.sync()
        finally:
            d.close()

    def type_keys(self, *chords: str, focus: int | None = None) -> None:
        """Type key chords through XTEST, e.g. `"Alt_L+f"`, `"s"` (keysym names joined by +),
        after giving `focus` the keyboard focus."""
        from Xlib import XK, X
        from Xlib.ext import xtest

        d = self._x()
        try:
            if focus is not None:
                window = d.create_resource_object("window", focus)
                window.set_input_focus(X.RevertToParent, X.CurrentTime)
                d.sync()
            for chord in chords:
                codes = [d.keysym_to_keycode(XK.string_to_keysym(k)) for k in chord.split("+")]
                for code in codes:
                    xtest.fake_input(d, X.KeyPress, code)
                for code in reversed(codes):
                    xtest.fake_input(d, X.KeyRelease, code)
                d.sync()
                time.sleep(0.2)
        finally:
            d.close()

    def screensaver(self, on: bool) -> None:
        """Turn the screen saver on (what a locked screen looks like to capture) or off."""
        from Xlib import X

        d = self._x()
        try:
            d.force_screen_saver(X.ScreenSaverActive if on else X.ScreenSaverReset)
            d.sync()
        finally:
            d.close()


def _toplevel_of(display_name: str, window_id: int) -> int:
    """The child of the root window that holds `window_id` (Tk's wrapper, which has WM_CLASS)."""
    from Xlib import display

    d = display.Display(display_name)
    try:
        root_id = d.screen().root.id
        current = d.create_resource_object("window", window_id)
        while True:
            parent = current.query_tree().parent
            if parent is None or parent.id == root_id:
                return int(current.id)
            current = parent
    finally:
        d.close()


class TkWindow:
    """A real window on `display` showing `text`; `set_text()` changes it and waits for it."""

    def __init__(
        self,
        display: str,
        text: str,
        *,
        app: str = "Notes",
        title: str = "Notes",
        x: int = 20,
        y: int = 20,
        width: int = 700,
        height: int = 400,
        font_size: int = 16,
    ) -> None:
        env = {**os.environ, "DISPLAY": display}
        args = [app, title, text, x, y, width, height, font_size]
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _TK_WINDOW, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.id = _toplevel_of(display, int(self._read()["id"]))
        self.pid = self._proc.pid

    def _read(self, timeout_s: float = 15.0) -> dict[str, Any]:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        line = self._proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError("the Tk test window did not answer (is tkinter installed?)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _send(self, **command: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        self._read()
        time.sleep(0.03)  # the X server draws asynchronously to other clients

    def set_text(self, text: str) -> None:
        self._send(op="text", text=text)

    def set_title(self, title: str) -> None:
        self._send(op="title", title=title)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._proc.stdin.close()
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> TkWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
