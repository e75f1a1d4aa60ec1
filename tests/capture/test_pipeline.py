"""The pipeline and the service on fakes: what becomes an event, and the gap (with its reason)
left by everything that does not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from capture.config import CaptureSettings
from capture.fakes import FakeOcr, FakeScreen, FakeWindows
from capture.pipeline import CapturePipeline, RecentText, clean_text
from capture.ports import Rect, ScreenUnavailable
from capture.privacy import Exclusions, PauseControl
from capture.service import CaptureService
from storage.capture_log import CaptureLog, GapReason
from storage.events import EventQueue

Fakes = tuple[FakeScreen, FakeWindows, FakeOcr]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def reasons(log: CaptureLog) -> dict[str, int]:
    return log.totals()


def test_a_screen_becomes_one_event_with_window_and_monitor(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, queue: EventQueue
) -> None:
    _, windows, _ = fakes
    windows.show("Firefox", "Capture design — Mozilla Firefox")
    events = fake_pipeline().run_once(T0)
    assert len(events) == 1
    event = events[0]
    assert (event.source, event.app, event.monitor) == ("screen", "Firefox", 1)
    assert event.window_title == "Capture design — Mozilla Firefox"
    assert event.text == "Meeting notes: ship the capture pipeline"
    assert event.occurred_at == T0
    assert queue.claim(10) == [event]


def test_unchanged_screen_is_not_read_until_the_forced_reread(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    screen, windows, ocr = fakes
    windows.show("Editor", "a.txt")
    pipeline = fake_pipeline(CaptureSettings(interval_s=3, force_reread_s=60))
    pipeline.run_once(T0)
    for n in range(1, 20):  # 57 s of an unchanged screen
        pipeline.run_once(T0 + timedelta(seconds=3 * n))
    assert ocr.calls == 1
    assert reasons(capture_log) == {"unchanged": 19}
    pipeline.run_once(T0 + timedelta(seconds=60))  # forced re-read, same text: no new event
    assert ocr.calls == 2
    assert capture_log.totals()["duplicate"] == 1
    screen.show(1, 90)  # the screen changes: read again at once
    ocr.text = "Meeting notes: ship the capture pipeline\nand a brand new paragraph of text"
    assert len(pipeline.run_once(T0 + timedelta(seconds=63))) == 1
    assert ocr.calls == 3


def test_one_unchanged_stretch_is_one_row_in_the_health_log(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    fakes[1].show("Editor", "a.txt")
    pipeline = fake_pipeline(CaptureSettings(interval_s=3))
    for n in range(100):
        pipeline.run_once(T0 + timedelta(seconds=3 * n))
    (gap,) = capture_log.gaps()
    assert (gap.reason, gap.count, gap.monitor) == (GapReason.UNCHANGED, 99, 1)
    assert gap.started_at == T0 + timedelta(seconds=3)
    assert gap.seconds == 3 * 98


def test_text_repeating_the_previous_event_of_the_same_window_is_dropped() -> None:
    recent = RecentText()
    key = ("Editor", "a.txt")
    page = "\n".join(f"line {n} of a page of text that a person reads" for n in range(30))
    text = page + "\n12:01"
    recent.remember(key, text)
    assert recent.repeats(key, text)
    assert recent.repeats(key, text.replace("12:01", "12:02"))  # a clock ticking
    assert not recent.repeats(key, text + "\na whole new line was written here")
    assert not recent.repeats(("Editor", "b.txt"), text)  # another window


def test_secrets_in_text_and_title_are_redacted_before_queueing(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, queue: EventQueue
) -> None:
    _, windows, ocr = fakes
    windows.show("Terminal", "export TOKEN=ghp_" + "x" * 36)
    ocr.text = "card 4111 1111 1111 1111\npassword: hunter2\nAKIAIOSFODNN7EXAMPLE"
    (event,) = fake_pipeline().run_once(T0)
    stored = queue.get(event.id)
    for secret in ("4111", "hunter2", "AKIAIOSFODNN7EXAMPLE", "ghp_"):
        assert secret not in stored.model_dump_json()
    assert stored.metadata["redacted"] == 4
    assert stored.metadata["redacted_card"] == 1
    assert stored.metadata["redacted_github_token"] == 1


def test_a_secret_across_the_length_cut_is_redacted_whole(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, queue: EventQueue
) -> None:
    token = "ghp_" + "Ab3dE6gH9j" * 4
    fakes[2].text = "word " * 19_995 + token + " and more after it"  # the token spans 100,000
    (event,) = fake_pipeline().run_once(T0)
    stored = queue.get(event.id)
    assert len(stored.text) <= 100_000
    assert "Ab3dE6" not in stored.text and "ghp_" not in stored.text
    assert stored.metadata["redacted_github_token"] == 1


def test_a_redaction_past_its_budget_drops_the_read_with_a_gap(
    fake_pipeline: Callable[..., CapturePipeline],
    fakes: Fakes,
    queue: EventQueue,
    capture_log: CaptureLog,
) -> None:
    fakes[2].text = "password: hunter2\nmore text"
    pipeline = fake_pipeline()
    pipeline.redactor.budget_s = 0.0
    assert pipeline.run_once(T0) == []
    assert [g.detail for g in capture_log.gaps(reasons=[GapReason.OCR_ERROR])] == ["redaction"]
    assert queue.counts().get("pending", 0) == 0


def test_excluded_active_window_gives_no_event_and_a_gap(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    _, windows, ocr = fakes
    windows.show("KeePassXC", "Passwords.kdbx - KeePassXC")
    assert fake_pipeline().run_once(T0) == []
    assert ocr.calls == 0
    (gap,) = capture_log.gaps()
    assert gap.reason is GapReason.EXCLUDED
    assert gap.detail == "app keepassxc"  # the rule, never the title


@pytest.mark.parametrize(
    "title",
    [
        "New Tab - Google Chrome (Incognito)",
        "Example Domain — Mozilla Firefox Private Browsing",
        "InPrivate - Microsoft Edge",
        "Vault | Bitwarden",
    ],
)
def test_private_browsing_windows_are_excluded_by_default(title: str) -> None:
    from capture.ports import WindowInfo

    window = WindowInfo(1, "browser", "browser", title, Rect(0, 0, 10, 10))
    assert Exclusions().match(window) is not None
    ordinary = WindowInfo(2, "browser", "browser", "Private equity - Wikipedia", Rect(0, 0, 1, 1))
    assert Exclusions().match(ordinary) is None


def test_editing_exclusions_takes_effect_on_the_next_look(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    _, windows, _ = fakes
    windows.show("Slack", "general - Slack")
    pipeline = fake_pipeline()
    service = CaptureService(pipeline)
    service.set_exclusions(["slack"], [])
    assert pipeline.run_once(T0) == []
    with pytest.raises(ValueError, match="not valid"):
        service.set_exclusions([], ["(unclosed"])
    assert service.exclusions.apps == ("slack",)  # a bad edit changes nothing
    service.set_exclusions([], [])
    assert len(pipeline.run_once(T0 + timedelta(seconds=3))) == 1


def test_multi_monitor_events_name_the_window_on_each_monitor(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    screen = FakeScreen([(320, 200), (320, 200)])
    windows = FakeWindows()
    windows.show("Mail", "Inbox", Rect(0, 0, 320, 200), active=False)
    windows.show("Editor", "main.py", Rect(320, 0, 320, 200))
    ocr = FakeOcr(text_for=lambda image: f"screen of {image.size[0]} px")
    pipeline = CapturePipeline(screen, windows, ocr, queue, capture_log)
    events = pipeline.run_once(T0)
    assert {(e.monitor, e.app) for e in events} == {(1, "Mail"), (2, "Editor")}


def test_a_monitor_that_disappears_is_a_gap_and_the_others_go_on(
    queue: EventQueue, capture_log: CaptureLog
) -> None:
    screen = FakeScreen([(320, 200), (320, 200)])
    windows = FakeWindows()
    windows.show("Editor", "main.py", Rect(0, 0, 320, 200))
    pipeline = CapturePipeline(
        screen, windows, FakeOcr("hello"), queue, capture_log, CaptureSettings(monitors=(1, 2))
    )
    assert len(pipeline.run_once(T0)) == 2
    screen.set_monitors([(320, 200)])  # monitor 2 unplugged
    screen.show(1, 80)
    events = pipeline.run_once(T0 + timedelta(seconds=3))
    assert [e.monitor for e in events] == []  # same text as before on monitor 1: a duplicate
    gap = capture_log.gaps(reasons=[GapReason.SCREEN_UNAVAILABLE])[0]
    assert gap.monitor == 2 and "not attached" in gap.detail


def test_no_screen_at_all_is_logged_and_raised(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    fakes[1].available = False
    with pytest.raises(ScreenUnavailable):
        fake_pipeline().run_once(T0)
    assert capture_log.totals() == {"screen_unavailable": 1}


def test_a_display_that_dies_mid_grab_is_logged_as_a_gap(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The X server can go between listing the monitors and grabbing one (CI saw it): that is
    the same gap as no screen at all, not a silent error."""
    fakes[1].show("Editor", "a")

    def dead(monitor: int) -> None:
        raise ScreenUnavailable("the X display went away mid-grab")

    monkeypatch.setattr(fakes[0], "grab", dead)
    with pytest.raises(ScreenUnavailable):
        fake_pipeline().run_once(T0)
    (gap,) = capture_log.gaps(reasons=[GapReason.SCREEN_UNAVAILABLE])
    assert "mid-grab" in gap.detail


def test_locked_screen_is_a_gap(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    fakes[1].show("Editor", "a")
    fakes[1].locked = True
    assert fake_pipeline().run_once(T0) == []
    assert fakes[2].calls == 0 and fakes[0].grabs == 0
    assert capture_log.totals() == {"screen_locked": 1}


def test_ocr_errors_are_gaps_not_crashes(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    screen, windows, ocr = fakes
    windows.show("Editor", "a")
    ocr.installed = False
    pipeline = fake_pipeline()
    assert pipeline.run_once(T0) == []
    assert pipeline.ocr_error is not None and "not found" in pipeline.ocr_error
    ocr.installed, ocr.cost_s = True, 1.0
    screen.show(1, 40)
    pipeline = fake_pipeline(CaptureSettings(ocr_timeout_s=0.1))
    assert pipeline.run_once(T0 + timedelta(seconds=3)) == []
    details = sorted(g.detail for g in capture_log.gaps(reasons=[GapReason.OCR_ERROR]))
    assert details == ["timeout", "unavailable"]


def test_a_blank_screen_is_a_no_text_gap(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    fakes[0].show(1, 255)
    assert fake_pipeline().run_once(T0) == []
    assert capture_log.totals() == {"no_text": 1}


def test_a_full_event_queue_skips_with_a_backlog_gap(
    fake_pipeline: Callable[..., CapturePipeline],
    fakes: Fakes,
    queue: EventQueue,
    capture_log: CaptureLog,
) -> None:
    screen, windows, ocr = fakes
    windows.show("Editor", "a")
    pipeline = fake_pipeline(CaptureSettings(max_pending_events=10))
    for n in range(12):
        screen.show(1, n * 20)
        ocr.text = f"page {n} chapter{n} " + "word " * n  # no read repeats the last
        pipeline.run_once(T0 + timedelta(seconds=3 * n))
    assert queue.counts()["pending"] == 10
    assert capture_log.totals()["backlog"] == 2


def test_timed_pause_ends_by_itself() -> None:
    pause = PauseControl()
    pause.pause(minutes=5, now=T0)
    assert pause.is_paused(T0 + timedelta(minutes=4))
    assert pause.until == T0 + timedelta(minutes=5)
    assert not pause.is_paused(T0 + timedelta(minutes=5))
    with pytest.raises(ValueError, match="positive"):
        pause.pause(minutes=0)


def test_clean_text_squeezes_spaces_and_blank_lines() -> None:
    assert clean_text("  a   b \n\n\n c\t\td \n") == "a b\nc d"


# ----- the service (threads) on fakes -------------------------------------------------------


def _wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_service_pause_for_minutes_leaves_a_paused_gap_and_survives_a_restart(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    fakes[1].show("Editor", "a")
    settings = CaptureSettings(interval_s=0.1, force_reread_s=1)
    service = CaptureService(fake_pipeline(settings))
    with service:
        _wait(lambda: service.status().events == 1)
        service.pause(minutes=30)
        _wait(lambda: service.status().state == "paused")
        time.sleep(0.3)
        status = service.status()
        assert status.paused_until is not None
    # A new service on the same database (Engram restarted) is still paused.
    again = CaptureService(fake_pipeline(settings))
    assert again.pipeline.pause.is_paused()
    assert again.status().paused_until == status.paused_until
    again.resume()
    (gap,) = capture_log.gaps(reasons=[GapReason.PAUSED])
    assert gap.count >= 3 and gap.seconds > 0.2
    assert not CaptureService(fake_pipeline(settings)).pipeline.pause.is_paused()


def test_service_skips_with_a_backlog_gap_when_ocr_falls_behind(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, capture_log: CaptureLog
) -> None:
    screen, windows, ocr = fakes
    windows.show("Video", "a film")
    ocr.cost_s = 0.5  # much slower than the 0.05 s interval
    service = CaptureService(fake_pipeline(CaptureSettings(interval_s=0.1, backlog_frames=1)))
    stop = threading.Event()

    def change_screen() -> None:  # a screen that changes on every look
        shade = 0
        while not stop.is_set():
            shade = (shade + 37) % 250
            screen.show(1, shade)
            time.sleep(0.02)

    painter = threading.Thread(target=change_screen)
    painter.start()
    try:
        with service:
            _wait(lambda: capture_log.totals().get("backlog", 0) >= 3)
            assert service.status().ocr_backlog <= 1
    finally:
        stop.set()
        painter.join()
    gap = capture_log.gaps(reasons=[GapReason.BACKLOG])[0]
    assert gap.detail in ("OCR is behind", "capture stopped")


def test_service_reports_missing_ocr_in_status_and_keeps_running(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes
) -> None:
    fakes[1].show("Editor", "a")
    fakes[2].installed = False
    service = CaptureService(fake_pipeline(CaptureSettings(interval_s=0.1)))
    with service:
        _wait(lambda: service.status().frames >= 2)
        status = service.status()
        assert service.running and status.state == "running"
        assert status.ocr_ok is False and "not found" in status.ocr_message
    assert service.status().state == "stopped"


def test_service_threads_run_at_lower_priority(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes
) -> None:
    import os

    if not os.path.exists("/proc/self/task"):
        pytest.skip("per-thread nice values are read from Linux /proc")
    fakes[1].show("Editor", "a")
    service = CaptureService(fake_pipeline(CaptureSettings(interval_s=0.1, nice=7)))
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with service:
        _wait(lambda: service.status().frames >= 1)
        for tid in service.thread_ids():
            assert os.getpriority(os.PRIO_PROCESS, tid) == min(19, base + 7)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the caller's thread is untouched


def test_service_status_and_event_listeners(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes
) -> None:
    fakes[1].show("Editor", "notes.md")
    service = CaptureService(fake_pipeline(CaptureSettings(interval_s=0.1)))
    seen_events: list[str] = []
    seen_states: list[str] = []
    service.add_event_listener(lambda e: seen_events.append(e.window_title))
    service.add_status_listener(lambda s: seen_states.append(s.state))
    with service:
        _wait(lambda: bool(seen_events) and len(seen_states) >= 2)
        status = service.status()
    assert seen_events == ["notes.md"]
    assert status.last_event_title == "notes.md" and status.last_event_app == "Editor"
    assert status.pending_events == 1 and "running" in seen_states


def test_a_read_repeating_most_of_the_windows_last_event_is_merged_into_it(
    fake_pipeline: Callable[..., CapturePipeline], fakes: Fakes, queue: EventQueue
) -> None:
    screen, windows, ocr = fakes
    windows.show("xterm", "notes")
    page = "\n".join(f"line {n}: the budget review item{n}" for n in range(20))
    ocr.text = page
    pipeline = fake_pipeline()
    (first,) = pipeline.run_once(T0)
    screen.show(1, 90)
    ocr.text = page + "\nMeeting with Dana, Room: Aurora"  # 23 of 27 content words known
    (merged,) = pipeline.run_once(T0 + timedelta(seconds=3))
    assert merged.id == first.id and merged.seen_at == (T0 + timedelta(seconds=3),)
    assert merged.text == ocr.text
    assert queue.counts()["pending"] == 1  # stored once
    assert queue.get(first.id) == merged
    screen.show(1, 40)
    ocr.text = "an unrelated page about sourdough starters and ovens"
    (other,) = pipeline.run_once(T0 + timedelta(seconds=6))
    assert other.id != first.id and queue.counts()["pending"] == 2
