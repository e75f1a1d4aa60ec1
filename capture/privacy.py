"""Privacy controls: which windows are never read, and pausing (indefinitely or for N minutes).

Exclusions match the application (WM_CLASS class or instance, case-insensitive, exact) or the
window title (regular expressions, case-insensitive, searched anywhere). An excluded window that
is active produces no event for its monitor; an excluded window that is merely visible is painted
over before OCR, so its text cannot leak into another window's event.

Engram's own windows are a different, built-in rule (`OwnWindows`): known by process id and
WM_CLASS, never by title, applied before the user's list and not part of it, so no edit of the
settings can remove it. An own window is always painted over, and when it is the active one the
rest of the screen is still read, as if the window the user had open beside it were active.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from capture.ports import WindowInfo

#: Password managers and system credential prompts.
DEFAULT_EXCLUDED_APPS: tuple[str, ...] = (
    "keepassxc",
    "keepass",
    "keepass2",
    "1password",
    "bitwarden",
    "lastpass",
    "enpass",
    "dashlane",
    "proton pass",
    "nordpass",
    "seahorse",
    "kwalletmanager5",
    "kwalletmanager",
    "gcr-prompter",
    "pinentry",
    "pinentry-gtk-2",
    "pinentry-qt",
    "polkit-gnome-authentication-agent-1",
    "polkit-kde-authentication-agent-1",
)

#: Private browsing in Firefox, Chrome/Chromium, Edge, Brave, Safari, Tor Browser, and the
#: password managers' own windows when their WM_CLASS is generic (e.g. an Electron "app").
DEFAULT_EXCLUDED_TITLES: tuple[str, ...] = (
    r"private browsing",
    r"\(incognito\)|\bincognito\b",
    r"\binprivate\b",
    r"\(private\)|private window",
    r"tor browser",
    r"\bkeepassxc\b",
    r"\b1password\b",
    r"\bbitwarden\b",
)


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """Compile title patterns; raises ValueError naming the pattern that is not a valid regex."""
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"window-title pattern {pattern!r} is not valid: {exc}") from None
    return out


class Exclusions:
    """An immutable rule set; the service swaps in a new one when the user edits the list."""

    def __init__(
        self,
        apps: Iterable[str] = DEFAULT_EXCLUDED_APPS,
        title_patterns: Iterable[str] = DEFAULT_EXCLUDED_TITLES,
    ) -> None:
        self.apps = tuple(apps)
        self.title_patterns = tuple(title_patterns)
        self._apps = frozenset(a.strip().lower() for a in self.apps if a.strip())
        self._titles = compile_patterns(self.title_patterns)

    def match(self, window: WindowInfo | None) -> str | None:
        """Why `window` is excluded (safe to log: never the title itself), or None."""
        if window is None:
            return None
        for name in (window.app, window.instance):
            if name and name.lower() in self._apps:
                return f"app {name.lower()}"
        for pattern in self._titles:
            if pattern.search(window.title):
                return f"title matches {pattern.pattern!r}"
        return None


#: WM_CLASS (class and instance, compared case-insensitively) of every Engram window: the desktop
#: app names itself so, and Qt's xcb platform writes it on every window, menus and dialogs too.
ENGRAM_WM_CLASS = "engram"


class OwnWindows:
    """Engram never reads itself: its windows, by process id (`_NET_WM_PID`) or WM_CLASS, and
    any dialog transient for one of them. Titles are not trusted: another app's window titled
    "Engram notes" is the user's, and an Engram window is Engram's whatever it is titled."""

    REASON = "engram's own window"

    def __init__(
        self, pids: Iterable[int] = (), classes: Iterable[str] = (ENGRAM_WM_CLASS,)
    ) -> None:
        self.pids = frozenset({os.getpid(), *pids})
        self.classes = frozenset(c.lower() for c in classes)

    def with_pids(self, pids: Iterable[int]) -> OwnWindows:
        """The same rule, also owning the windows of the processes `pids` (a running app)."""
        return OwnWindows({*self.pids, *pids}, self.classes)

    def _direct(self, window: WindowInfo) -> bool:
        return (window.pid is not None and window.pid in self.pids) or bool(
            {window.app.lower(), window.instance.lower()} & self.classes
        )

    def match(
        self, window: WindowInfo | None, windows: Callable[[], list[WindowInfo]] = list
    ) -> bool:
        """True for an Engram window; `windows` (the visible ones) resolves dialog parents."""
        seen: set[int] = set()
        current = window
        by_id: dict[int, WindowInfo] | None = None
        while current is not None and current.id not in seen:
            if self._direct(current):
                return True
            seen.add(current.id)
            if current.transient_for is None:
                return False
            if by_id is None:
                by_id = {w.id: w for w in windows()}
            current = by_id.get(current.transient_for)
        return False


class PauseControl:
    """Pause, resume and pause-for-N-minutes, safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paused = False
        self._until: datetime | None = None

    def pause(self, minutes: float | None = None, now: datetime | None = None) -> None:
        if minutes is not None and minutes <= 0:
            raise ValueError("pause length must be a positive number of minutes")
        with self._lock:
            self._paused = True
            start = now or datetime.now(UTC)
            self._until = start + timedelta(minutes=minutes) if minutes is not None else None

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._until = None

    def restore(self, paused: bool, until: datetime | None) -> None:
        with self._lock:
            self._paused, self._until = paused, until

    def is_paused(self, now: datetime | None = None) -> bool:
        """True while paused; a timed pause ends by itself once its time is up."""
        with self._lock:
            at = now or datetime.now(UTC)
            if self._paused and self._until is not None and at >= self._until:
                self._paused = False
                self._until = None
            return self._paused

    @property
    def until(self) -> datetime | None:
        with self._lock:
            return self._until if self._paused else None
