"""The capture service: the pipeline on two background threads, with start/stop/status.

The grab thread looks at the screen every `interval_s` and hands changed frames to the OCR thread
through a queue of at most `backlog_frames`; when OCR falls behind, a frame is skipped with a
`backlog` gap instead of piling up in memory. Both threads lower their own OS priority (Linux
nice values are per thread), and tesseract, started from the OCR thread, inherits it. Nothing here
touches a GUI: the desktop UI polls `status()` or registers a listener and marshals the call onto
its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from capture.config import CaptureSettings
from capture.pipeline import CapturePipeline, PendingFrame
from capture.ports import (
    NoWindows,
    OcrEngine,
    OcrUnavailable,
    ScreenSource,
    ScreenUnavailable,
    WindowSource,
)
from capture.privacy import Exclusions
from storage.capture_log import CaptureGap, CaptureLog, GapReason
from storage.records import Event

if TYPE_CHECKING:
    from storage.store import MemoryStore

log = logging.getLogger(__name__)

State = Literal["stopped", "running", "paused", "error"]
PAUSE_KEY = "paused_until"  # "forever" or an ISO time; absent when not paused


@dataclass(frozen=True)
class CaptureStatus:
    """What the UI shows: is capture running, what did it last see, what is it behind on."""

    state: State
    paused_until: datetime | None
    last_event_at: datetime | None
    last_event_app: str
    last_event_title: str
    events: int
    frames: int
    unchanged: int
    ocr_backlog: int
    pending_events: int
    ocr_ok: bool
    ocr_message: str
    last_error: str | None


def lower_priority(increment: int) -> None:
    """Lower the calling thread's priority (Linux: per thread; elsewhere the process, once)."""
    if increment <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            current = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
        else:
            os.nice(increment)
    except OSError as exc:  # not allowed here: run at normal priority rather than not at all
        log.warning("could not lower capture priority: %s", exc)


class CaptureService:
    def __init__(
        self, pipeline: CapturePipeline, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.log: CaptureLog = pipeline.log
        self._clock = clock or (lambda: datetime.now(UTC))
        self._frames: queue.Queue[PendingFrame] = queue.Queue(self.settings.backlog_frames)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._status_listeners: list[Callable[[CaptureStatus], None]] = []
        self._event_listeners: list[Callable[[Event], None]] = []
        self._last_error: str | None = None
        self._ocr_ok = True
        self._ocr_message = "not checked yet"
        self._restore_pause()

    # ----- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the two capture threads; a missing OCR engine is reported in status, not raised."""
        if self.running:
            return
        self.check_ocr()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._grab_loop, name="engram-capture-grab", daemon=True),
            threading.Thread(target=self._ocr_loop, name="engram-capture-ocr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop and wait for the threads (an OCR run in flight finishes or times out first)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []
        self._drain(GapReason.BACKLOG, "capture stopped")
        self.log.flush()

    def close(self) -> None:
        """Stop, and release the screen and window-system connections (also when never started)."""
        self.stop()
        self.pipeline.screen.close()
        self.pipeline.windows.close()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def thread_ids(self) -> list[int]:
        """Native ids of the capture threads (to check their priority)."""
        return [t.native_id for t in self._threads if t.native_id is not None]

    def __enter__(self) -> CaptureService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- privacy controls --------------------------------------------------------------------

    def pause(self, minutes: float | None = None) -> None:
        """Pause now, for `minutes` or until `resume()`; survives a restart of Engram."""
        now = self._clock()
        self.pipeline.pause.pause(minutes, now)
        until = self.pipeline.pause.until
        self.log.set_state(PAUSE_KEY, until.isoformat() if until else "forever")
        self.log.note(GapReason.PAUSED, now)
        # Frames grabbed before the pause are not read: they are part of the pause's gap.
        self._drain(GapReason.PAUSED, "", at=now)

    def resume(self) -> None:
        if self.pipeline.pause.is_paused(self._clock()):
            self.log.note(GapReason.PAUSED, self._clock())
        self.pipeline.pause.resume()
        self.log.set_state(PAUSE_KEY, None)
        self.log.close_open(GapReason.PAUSED)

    @property
    def exclusions(self) -> Exclusions:
        return self.pipeline.exclusions

    def set_exclusions(self, apps: Iterable[str], title_patterns: Iterable[str]) -> Exclusions:
        """Replace the exclusion list (validated: a bad pattern raises ValueError, nothing changes).
        Saving it to the settings file is the caller's choice."""
        rules = Exclusions(apps, title_patterns)
        self.pipeline.exclusions = rules
        return rules

    def _restore_pause(self) -> None:
        saved = self.log.get_state(PAUSE_KEY)
        if saved is None:
            return
        until = None if saved == "forever" else datetime.fromisoformat(saved)
        self.pipeline.pause.restore(True, until)
        if not self.pipeline.pause.is_paused(self._clock()):
            self.log.set_state(PAUSE_KEY, None)

    # ----- status ------------------------------------------------------------------------------

    def check_ocr(self) -> bool:
        try:
            self._ocr_message = f"tesseract {self.pipeline.ocr.check()}"
            self._ocr_ok = True
        except OcrUnavailable as exc:
            self._ocr_ok, self._ocr_message = False, str(exc)
        return self._ocr_ok

    def status(self) -> CaptureStatus:
        p = self.pipeline
        paused = p.pause.is_paused(self._clock())
        state: State = "stopped"
        if self.running:
            state = "paused" if paused else "error" if self._last_error else "running"
        last = p.last_event
        ocr_ok = self._ocr_ok and p.ocr_error is None
        return CaptureStatus(
            state=state,
            paused_until=p.pause.until,
            last_event_at=last.occurred_at if last else None,
            last_event_app=last.app if last else "",
            last_event_title=last.window_title if last else "",
            events=p.counters.events,
            frames=p.counters.frames,
            unchanged=p.counters.unchanged,
            ocr_backlog=self._frames.qsize(),
            pending_events=self.log.pending_events(),
            ocr_ok=ocr_ok,
            ocr_message=self._ocr_message if ocr_ok else (p.ocr_error or self._ocr_message),
            last_error=self._last_error,
        )

    def gaps(self, since: datetime | None = None, limit: int = 200) -> list[CaptureGap]:
        return self.log.gaps(since=since, limit=limit)

    def add_status_listener(self, callback: Callable[[CaptureStatus], None]) -> None:
        """Called from the capture thread after every look at the screen."""
        self._status_listeners.append(callback)

    def add_event_listener(self, callback: Callable[[Event], None]) -> None:
        """Called from the OCR thread with each event after it is queued."""
        self._event_listeners.append(callback)

    # ----- the threads -------------------------------------------------------------------------

    def _grab_loop(self) -> None:
        lower_priority(self.settings.nice)
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            elapsed = time.monotonic() - started
            self._stop.wait(max(0.0, self.settings.interval_s - elapsed))
        self.pipeline.screen.close()  # mss handles belong to the thread that made them
        self.pipeline.windows.close()

    def tick(self) -> None:
        """One look at the screen; frames that changed go to the OCR thread's queue."""
        now = self._clock()
        try:
            frames = self.pipeline.sample(now)
            self._last_error = None
        except ScreenUnavailable as exc:
            self._last_error = str(exc)
            frames = []
        except Exception as exc:  # a capture bug must not end capture: log it, keep going
            log.exception("capture tick failed")
            self._last_error = f"capture failed: {exc}"
            frames = []
        for frame in frames:
            try:
                self._frames.put_nowait(frame)
            except queue.Full:
                self.log.note(GapReason.BACKLOG, now, monitor=frame.monitor, detail="OCR is behind")
                self.pipeline.detector.forget(frame.monitor)  # read it again next time
        self._notify_status()

    def _ocr_loop(self) -> None:
        lower_priority(self.settings.nice)
        while not self._stop.is_set():
            try:
                frame = self._frames.get(timeout=0.2)
            except queue.Empty:
                continue
            if self.pipeline.pause.is_paused(self._clock()):
                # A frame grabbed before the pause and not yet read is not read: it is part of
                # the pause's gap (noted now, with it), not a gap of its own before the pause.
                self.log.note(GapReason.PAUSED, self._clock())
                continue
            try:
                event = self.pipeline.process(frame)
            except Exception:
                log.exception("OCR of a frame failed")
                self.log.note(GapReason.OCR_ERROR, frame.at, monitor=frame.monitor, detail="bug")
                continue
            if event is not None:
                for callback in self._event_listeners:
                    with contextlib.suppress(Exception):
                        callback(event)

    def _drain(self, reason: GapReason, detail: str, at: datetime | None = None) -> None:
        """Drop the frames waiting for OCR, each a skipped capture: of its own monitor and time,
        or, with `at`, of the gap open then (a pause's)."""
        while True:
            try:
                frame = self._frames.get_nowait()
            except queue.Empty:
                return
            if at is None:
                self.log.note(reason, frame.at, monitor=frame.monitor, detail=detail)
            else:
                self.log.note(reason, at, detail=detail)

    def _notify_status(self) -> None:
        if not self._status_listeners:
            return
        status = self.status()
        for callback in self._status_listeners:
            with contextlib.suppress(Exception):
                callback(status)


def capture_log_for(store: MemoryStore, settings: CaptureSettings) -> CaptureLog:
    """The capture log on the store's own database (gaps merge across a few missed ticks)."""
    return store.capture_log(merge_within_s=max(15.0, 2.5 * settings.interval_s))


def build_service(
    store: MemoryStore,
    settings: CaptureSettings | None = None,
    *,
    screen: ScreenSource | None = None,
    windows: WindowSource | None = None,
    ocr: OcrEngine | None = None,
) -> CaptureService:
    """The composition root for capture: the real adapters unless others are given."""
    settings = settings or CaptureSettings()
    if screen is None:
        from capture.screen_mss import MssScreen

        screen = MssScreen()
    if windows is None:
        windows = NoWindows()
        if sys.platform.startswith("linux") and os.environ.get("DISPLAY"):
            from capture.window_x11 import X11Windows

            windows = X11Windows()
    if ocr is None:
        from capture.ocr_tesseract import TesseractOcr

        ocr = TesseractOcr(lang=settings.ocr_language)
    pipeline = CapturePipeline(
        screen, windows, ocr, store.events, capture_log_for(store, settings), settings
    )
    return CaptureService(pipeline)
