"""One capture step, in two halves: `sample` (grab, skip, mask) and `process` (OCR, redact, dedupe,
queue). The service runs the halves on two threads with a bounded hand-off between them; `--once`
and the tests run them back to back. Every frame that does not become an event leaves a gap with
its reason in the capture log, so nothing is skipped silently.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from PIL import Image

from capture.change import ChangeDetector, mask, to_gray
from capture.config import CaptureSettings
from capture.ports import (
    MonitorGone,
    OcrEngine,
    OcrFailed,
    OcrTimeout,
    OcrUnavailable,
    Rect,
    ScreenSource,
    ScreenUnavailable,
    WindowInfo,
    WindowSource,
)
from capture.privacy import Exclusions, OwnWindows, PauseControl
from capture.redact import RedactionTooSlow, Redactor, redact_then_cut
from storage.capture_log import CaptureLog, GapReason
from storage.events import EventQueue, repeats
from storage.records import MAX_FIELD_CHARS, Event

#: Longest the capture thread spends redacting one read (linear rules take milliseconds; this
#: bounds a hostile screen).
REDACTION_BUDGET_S = 2.0


@dataclass(frozen=True)
class PendingFrame:
    """A frame that changed, with excluded windows painted over, waiting for OCR (in memory)."""

    monitor: int
    image: Image.Image
    window: WindowInfo | None
    at: datetime
    forced: bool


@dataclass
class Counters:
    """Totals since the pipeline was made; read by status and the benchmark."""

    ticks: int = 0
    frames: int = 0
    unchanged: int = 0
    ocr_runs: int = 0
    events: int = 0
    ocr_ms: list[float] = field(default_factory=list)


_SPACES = re.compile(r"[ \t]+")


def clean_text(text: str) -> str:
    """OCR output with runs of spaces and blank lines squeezed."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class RecentText:
    """The lines of the last event of each window (the most recent `size` windows), and the
    event's id and text, so a read repeating most of it is merged into it (`seen_again`)."""

    def __init__(self, size: int = 64, tolerance: float = 0.02) -> None:
        self._size = size
        self._tolerance = tolerance
        self._lines: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()
        self._events: dict[tuple[str, str], tuple[str, str]] = {}

    def repeats(self, key: tuple[str, str], text: str) -> bool:
        """True when `text` adds (almost) nothing to the previous event of the same window."""
        previous = self._lines.get(key)
        if previous is None:
            return False
        lines = text.lower().splitlines()
        total = sum(len(line) for line in lines)
        novel = sum(len(line) for line in lines if line not in previous)
        return novel <= max(2, int(self._tolerance * total))

    def remember(self, key: tuple[str, str], text: str, event_id: str = "") -> None:
        self._lines[key] = frozenset(text.lower().splitlines())
        self._lines.move_to_end(key)
        if event_id:
            self._events[key] = (event_id, text)
        while len(self._lines) > self._size:
            gone, _ = self._lines.popitem(last=False)
            self._events.pop(gone, None)

    def last_event(self, key: tuple[str, str]) -> tuple[str, str] | None:
        """(id, text) of the window's last event, if this pipeline stored one."""
        return self._events.get(key)


class CapturePipeline:
    def __init__(
        self,
        screen: ScreenSource,
        windows: WindowSource,
        ocr: OcrEngine,
        queue: EventQueue,
        log: CaptureLog,
        settings: CaptureSettings | None = None,
        *,
        redactor: Redactor | None = None,
        pause: PauseControl | None = None,
        own: OwnWindows | None = None,
    ) -> None:
        self.settings = settings or CaptureSettings()
        self.screen = screen
        self.windows = windows
        self.ocr = ocr
        self.queue = queue
        self.log = log
        self.redactor = redactor or Redactor(budget_s=REDACTION_BUDGET_S)
        self.pause = pause or PauseControl()
        #: The built-in rule that Engram never reads itself (not the user's exclusion list).
        self.own = own or OwnWindows()
        self.detector = ChangeDetector(
            min_changed_fraction=self.settings.min_changed_fraction,
            force_after_s=self.settings.force_reread_s,
        )
        self.counters = Counters()
        self.recent = RecentText()
        self.last_event: Event | None = None
        self.ocr_error: str | None = None
        self._exclusions = self.settings.exclusions()
        self._lock = threading.Lock()

    @property
    def exclusions(self) -> Exclusions:
        with self._lock:
            return self._exclusions

    @exclusions.setter
    def exclusions(self, value: Exclusions) -> None:
        with self._lock:
            self._exclusions = value

    # ----- the first half: grab, skip, mask --------------------------------------------------

    def sample(self, now: datetime | None = None) -> list[PendingFrame]:
        """Look at every chosen monitor once. Raises ScreenUnavailable (after logging the gap)
        when there is no screen at all; a single missing monitor is a gap, not an error."""
        now = now or datetime.now(UTC)
        self.counters.ticks += 1
        if self.pause.is_paused(now):
            self.log.note(GapReason.PAUSED, now)
            self.detector.forget()
            return []
        try:
            return self._look(now)
        except ScreenUnavailable as exc:
            # Wherever the display died (listing windows, grabbing, or mid-frame), it is a gap.
            self.log.note(GapReason.SCREEN_UNAVAILABLE, now, detail=str(exc)[:120])
            self.detector.forget()
            raise

    def _look(self, now: datetime) -> list[PendingFrame]:
        if self.windows.screen_locked():
            self.log.note(GapReason.SCREEN_LOCKED, now)
            self.detector.forget()
            return []
        active = self.windows.active_window()
        wanted = list(self.settings.monitors) or [m.index for m in self.screen.monitors()]
        exclusions = self.exclusions
        visible: list[WindowInfo] | None = None

        def windows() -> list[WindowInfo]:
            nonlocal visible
            if visible is None:
                visible = self.windows.visible_windows()
            return visible

        out = []
        for index in wanted:
            try:
                frame = self.screen.grab(index)
            except MonitorGone as exc:
                self.log.note(GapReason.SCREEN_UNAVAILABLE, now, monitor=index, detail=str(exc))
                self.detector.forget(index)
                continue
            self.counters.frames += 1
            own = self._own_on(frame.rect, active, windows)
            owner = self._owner(frame.rect, active, windows, single=len(wanted) == 1)
            if owner is None and own:
                # Nothing but Engram on this monitor: there is nothing of the user's to read.
                self.log.note(GapReason.EXCLUDED, now, monitor=index, detail=OwnWindows.REASON)
                self.detector.forget(index)
                continue
            why = exclusions.match(owner)
            if why is not None:
                self.log.note(GapReason.EXCLUDED, now, monitor=index, detail=why)
                self.detector.forget(index)
                continue
            hide = [w.rect for w in own] + [
                w.rect
                for w in windows()
                if w.rect.intersects(frame.rect) and exclusions.match(w) is not None
            ]
            # Painted over before change detection: Engram's own chat streaming beside an
            # unchanged editor is not a change worth an OCR run.
            gray = mask(to_gray(frame), frame.rect, hide)
            change = self.detector.observe(index, gray, now.timestamp())
            if not change.keep:
                self.counters.unchanged += 1
                self.log.note(GapReason.UNCHANGED, now, monitor=index)
                continue
            out.append(PendingFrame(index, gray, owner, now, change.forced))
        return out

    def _is_own(self, window: WindowInfo, windows: Callable[[], list[WindowInfo]]) -> bool:
        return self.own.match(window, windows)

    def _own_on(
        self, rect: Rect, active: WindowInfo | None, windows: Callable[[], list[WindowInfo]]
    ) -> list[WindowInfo]:
        """Engram's windows on this monitor (the active one too, should it not be listed)."""
        listed = windows()
        extra = [active] if active is not None and active.id not in {w.id for w in listed} else []
        return [
            w for w in (*listed, *extra) if w.rect.intersects(rect) and self._is_own(w, windows)
        ]

    def _owner(
        self,
        rect: Rect,
        active: WindowInfo | None,
        windows: Callable[[], list[WindowInfo]],
        single: bool,
    ) -> WindowInfo | None:
        """The window an event on this monitor is about: the active one if it is there, else
        the top-most window on the monitor; never one of Engram's own (when Engram is active,
        the event is about the user's window beside it)."""
        if active is not None and self._is_own(active, windows):
            active = None
        if active is not None and (single or rect.contains_point(*active.rect.center)):
            return active
        on_monitor = [
            w for w in windows() if w.rect.intersects(rect) and not self._is_own(w, windows)
        ]
        return on_monitor[-1] if on_monitor else None

    # ----- the second half: OCR, redact, dedupe, queue ---------------------------------------

    def process(self, frame: PendingFrame) -> Event | None:
        """Read one frame and queue its event; None (with a logged gap) when there is none."""
        started = time.perf_counter()
        try:
            raw = self.ocr.read(frame.image, self.settings.ocr_timeout_s)
        except (OcrUnavailable, OcrTimeout, OcrFailed) as exc:
            kind = {OcrUnavailable: "unavailable", OcrTimeout: "timeout"}.get(type(exc), "failed")
            self.ocr_error = str(exc)
            self.log.note(GapReason.OCR_ERROR, frame.at, monitor=frame.monitor, detail=kind)
            return None
        finally:
            self.counters.ocr_runs += 1
        ocr_ms = (time.perf_counter() - started) * 1000
        self.counters.ocr_ms.append(ocr_ms)
        del self.counters.ocr_ms[:-1000]
        self.ocr_error = None
        text = clean_text(raw)
        if not text:
            self.log.note(GapReason.NO_TEXT, frame.at, monitor=frame.monitor)
            return None
        try:  # the whole read, then the cut: a secret across the cut goes whole
            body = redact_then_cut(self.redactor, text, MAX_FIELD_CHARS)
            title = self.redactor.redact(frame.window.title if frame.window else "")
        except RedactionTooSlow:  # dropped, never kept unredacted; capture goes on
            self.log.note(GapReason.OCR_ERROR, frame.at, monitor=frame.monitor, detail="redaction")
            return None
        app = frame.window.app if frame.window else ""
        key = (app, title.text)
        last = self.recent.last_event(key)
        if self.recent.repeats(key, body.text):  # nothing new: only the time it was seen
            if last is not None:
                self.queue.seen_again(last[0], body.text, frame.at)
            self.log.note(GapReason.DUPLICATE, frame.at, monitor=frame.monitor)
            return None
        if last is not None and repeats(body.text, last[1]):
            merged = self.queue.seen_again(last[0], body.text, frame.at)
            if merged is not None:  # stored once: its new lines and the time joined the event
                self.recent.remember(key, merged.text, merged.id)
                self.last_event = merged
                return merged
        if self.log.pending_events() >= self.settings.max_pending_events:
            self.log.note(GapReason.BACKLOG, frame.at, detail="event queue full")
            return None
        counts: dict[str, int] = {}
        for kind, n in (*body.counts.items(), *title.counts.items()):
            counts[kind] = counts.get(kind, 0) + n
        metadata: dict[str, str | int | float | bool] = {
            f"redacted_{kind}": n for kind, n in sorted(counts.items())
        }
        metadata.update(
            redacted=sum(counts.values()),
            forced=frame.forced,
            ocr_ms=round(ocr_ms),
            instance=frame.window.instance if frame.window else "",
        )
        event = Event(
            occurred_at=frame.at,
            source="screen",
            app=app,
            window_title=title.text,
            monitor=frame.monitor,
            text=body.text,
            metadata=metadata,
        )
        self.queue.put(event)
        self.recent.remember(key, body.text, event.id)
        self.counters.events += 1
        self.last_event = event
        return event

    def run_once(self, now: datetime | None = None) -> list[Event]:
        """Both halves back to back, on the calling thread (for `--once` and tests)."""
        events = []
        for frame in self.sample(now):
            event = self.process(frame)
            if event is not None:
                events.append(event)
        return events
