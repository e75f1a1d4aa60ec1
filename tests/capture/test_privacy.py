"""Engram never reads itself: its windows (by process id, WM_CLASS or as a dialog of one) are
painted over before OCR, whatever they are titled, by a rule the exclusion list cannot remove.
On fakes; the same on the real app under Xvfb is tests/ui/test_real_app.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from PIL import Image

from capture.config import CaptureSettings
from capture.fakes import FakeOcr, FakeScreen, FakeWindows
from capture.pipeline import CapturePipeline
from capture.ports import Rect, WindowInfo
from capture.privacy import OwnWindows
from capture.service import CaptureService
from storage.capture_log import CaptureLog, GapReason
from storage.events import EventQueue

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEFT, RIGHT = Rect(0, 0, 160, 200), Rect(160, 0, 160, 200)


def ink(image: Image.Image) -> str:
    """What the fake OCR "reads": which halves of the 320 px screen still show ink."""
    gray = image.convert("L")
    halves = {"left": (0, 0, 160, 200), "right": (160, 0, 320, 200)}
    return " ".join(
        f"{name} ink" for name, box in halves.items() if gray.crop(box).getextrema()[0] < 255
    )


def pipeline(
    queue: EventQueue,
    log: CaptureLog,
    windows: FakeWindows,
    settings: CaptureSettings | None = None,
) -> tuple[CapturePipeline, FakeOcr]:
    ocr = FakeOcr(text_for=ink)
    return CapturePipeline(FakeScreen(), windows, ocr, queue, log, settings), ocr


def test_an_engram_window_known_by_its_pid_is_painted_over_whatever_its_title(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    windows = FakeWindows()
    windows.show("XTerm", "bash", RIGHT, active=False)
    windows.show("python3", "notes.txt - Editor", LEFT, pid=os.getpid())  # Engram, active
    (event,) = pipeline(queue, capture_log, windows)[0].run_once(T0)
    assert event.text == "right ink"  # Engram's half was blanked out, the xterm's was read
    assert (event.app, event.window_title) == ("XTerm", "bash")


def test_an_engram_window_known_by_its_class_is_painted_over(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    windows = FakeWindows()
    windows.show("Engram", "Totally not Engram", LEFT, pid=os.getpid() + 1)  # another Engram
    windows.show("XTerm", "bash", RIGHT, active=False)
    (event,) = pipeline(queue, capture_log, windows)[0].run_once(T0)
    assert (event.app, event.text) == ("XTerm", "right ink")


def test_dialogs_of_an_engram_window_are_painted_over(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    windows = FakeWindows()
    windows.show("XTerm", "bash", RIGHT, active=False)
    main = windows.show("Engram", "Engram", Rect(0, 0, 100, 50), active=False)
    # A dialog with a generic class and no pid, known only as the main window's dialog.
    windows.show("dialog", "Settings", LEFT, transient_for=main)
    (event,) = pipeline(queue, capture_log, windows)[0].run_once(T0)
    assert (event.app, event.text) == ("XTerm", "right ink")


def test_a_screen_of_nothing_but_engram_is_skipped_with_a_gap(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    windows = FakeWindows()
    windows.show("Engram", "Engram — Chat", Rect(0, 0, 320, 200))
    pipe, ocr = pipeline(queue, capture_log, windows)
    assert pipe.run_once(T0) == []
    assert ocr.calls == 0
    (gap,) = capture_log.gaps()
    assert (gap.reason, gap.detail) == (GapReason.EXCLUDED, "engram's own window")


def test_an_active_engram_window_the_window_list_misses_is_still_painted_over(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    class Unlisted(FakeWindows):
        def visible_windows(self) -> list[WindowInfo]:
            return [w for w in super().visible_windows() if w.app != "Engram"]

    windows = Unlisted()
    windows.show("XTerm", "bash", RIGHT, active=False)
    windows.show("Engram", "Engram", LEFT)
    (event,) = pipeline(queue, capture_log, windows)[0].run_once(T0)
    assert (event.app, event.text) == ("XTerm", "right ink")


def test_another_app_whose_title_says_engram_is_read_as_usual(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    windows = FakeWindows()
    windows.show("Firefox", "Engram - a private memory app — Mozilla Firefox", LEFT)
    windows.show("gedit", "engram.txt — notes about Engram", RIGHT, active=False)
    (event,) = pipeline(queue, capture_log, windows)[0].run_once(T0)
    assert (event.app, event.text) == ("Firefox", "left ink right ink")


def test_user_exclusions_apply_beside_the_built_in_rule(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    windows = FakeWindows()
    windows.show("KeePassXC", "Passwords.kdbx", Rect(0, 100, 160, 100), active=False)
    xterm = windows.show("XTerm", "bash", Rect(0, 0, 160, 100), active=False)
    windows.show("Engram", "Engram", RIGHT)
    pipe, ocr = pipeline(queue, capture_log, windows)
    (event,) = pipe.run_once(T0)
    assert (event.app, event.text) == ("XTerm", "left ink")  # the top-most one not Engram's...
    windows.close_window(xterm)  # ... and without it, the password manager is what is left
    assert pipe.run_once(T0 + timedelta(seconds=3)) == []
    assert capture_log.gaps(reasons=[GapReason.EXCLUDED])[0].detail == "app keepassxc"
    assert ocr.calls == 1


def test_the_built_in_rule_is_not_in_the_list_and_cannot_be_removed(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    settings = CaptureSettings(excluded_apps=(), excluded_title_patterns=())
    defaults = CaptureSettings()
    listed = [*defaults.excluded_apps, *defaults.excluded_title_patterns]
    assert not [rule for rule in listed if "engram" in rule.lower()]
    windows = FakeWindows()
    windows.show("XTerm", "bash", RIGHT, active=False)
    windows.show("Engram", "Engram", LEFT)
    pipe, _ = pipeline(queue, capture_log, windows, settings)
    service = CaptureService(pipe)
    service.set_exclusions([], [])
    assert service.exclusions.apps == () and service.exclusions.title_patterns == ()
    (event,) = pipe.run_once(T0)
    assert event.text == "right ink"


def test_the_rule_knows_this_process_and_the_processes_it_is_told_of() -> None:
    def window(pid: int | None, app: str = "python3") -> WindowInfo:
        return WindowInfo(1, app, app.lower(), "Engram", Rect(0, 0, 10, 10), pid=pid)

    rule = OwnWindows()
    assert rule.match(window(os.getpid()))
    assert not rule.match(window(4242)) and not rule.match(window(None))
    assert rule.with_pids([4242]).match(window(4242))
    assert rule.match(window(None, app="ENGRAM"))
    assert not rule.match(None)


def test_a_dialog_cycle_does_not_hang_the_rule() -> None:
    a = WindowInfo(1, "x", "x", "a", Rect(0, 0, 1, 1), transient_for=2)
    b = WindowInfo(2, "x", "x", "b", Rect(0, 0, 1, 1), transient_for=1)
    assert not OwnWindows().match(a, lambda: [a, b])
