"""Capture on a real screen: Xvfb started by the test, real Tk windows with known text (and fake
secrets), real mss, python-xlib and tesseract. OCR output is checked for words, never verbatim."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from capture.config import CaptureSettings
from capture.ocr_tesseract import TesseractOcr
from capture.pipeline import CapturePipeline
from capture.service import CaptureService, build_service
from storage.capture_log import CaptureLog, GapReason
from storage.events import EventQueue
from storage.store import MemoryStore
from tests.capture.conftest import CountingOcr
from tests.helpers.xscreen import TkWindow, Xvfb

NOTE = "Meeting with Alice at 3pm\nBudget review moved to Friday"
SECRETS = "card 4111 1111 1111 1111\npassword: hunter2\nkey AKIAIOSFODNN7EXAMPLE"


def _wait(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_text_on_screen_becomes_an_event_with_secrets_redacted(
    show: Callable[..., TkWindow],
    real_pipeline: Callable[..., CapturePipeline],
    queue: EventQueue,
    tmp_path: Path,
) -> None:
    show(f"{NOTE}\n{SECRETS}", app="Gedit", title="notes.txt - Gedit")
    (event,) = real_pipeline().run_once()
    assert (event.app, event.window_title, event.monitor) == ("Gedit", "notes.txt - Gedit", 1)
    assert "Meeting with Alice" in event.text and "Budget review" in event.text
    assert event.metadata["redacted_card"] == 1
    assert event.metadata["redacted_password"] == 1
    assert event.metadata["redacted_aws_key"] == 1
    assert queue.get(event.id) == event
    # Nothing secret anywhere in the stored data, down to the database's bytes.
    for path in tmp_path.glob("capture.sqlite3*"):
        data = path.read_bytes()
        for secret in (b"4111 1111", b"hunter2", b"AKIAIOSFODNN7"):
            assert secret not in data, f"{secret!r} leaked into {path.name}"


def test_unchanged_screen_does_not_call_ocr(
    show: Callable[..., TkWindow], real_pipeline: Callable[..., CapturePipeline]
) -> None:
    window = show(NOTE)
    ocr = CountingOcr(TesseractOcr())
    pipeline = real_pipeline(ocr=ocr)
    assert len(pipeline.run_once()) == 1
    for _ in range(3):
        assert pipeline.run_once() == []
    assert ocr.calls == 1
    window.set_text(NOTE + "\nNew line: call the plumber")
    (event,) = pipeline.run_once()
    assert ocr.calls == 2 and "plumber" in event.text


def test_excluded_windows_produce_no_event_and_no_text(
    show: Callable[..., TkWindow],
    real_pipeline: Callable[..., CapturePipeline],
    capture_log: CaptureLog,
) -> None:
    show(NOTE, app="Gedit", title="notes.txt - Gedit", width=760, height=200)
    show(
        "Entry: bank login\nUsername: alice\nNotes: mothers maiden name Smithers",
        app="KeePassXC",
        title="Passwords.kdbx - KeePassXC",
        y=320,
        width=760,
        height=200,
        active=False,
    )
    ocr = CountingOcr(TesseractOcr())
    pipeline = real_pipeline(ocr=ocr)
    (event,) = pipeline.run_once()  # the editor is active; the vault is visible beside it
    assert "Meeting with Alice" in event.text
    assert "Smithers" not in event.text and "bank login" not in event.text
    show("Private notes here", app="Firefox", title="Bank — Mozilla Firefox Private Browsing")
    assert pipeline.run_once() == []  # a private browsing window is active now
    assert ocr.calls == 1
    gap = capture_log.gaps(reasons=[GapReason.EXCLUDED])[0]
    assert "private browsing" in gap.detail and "Bank" not in gap.detail


def test_locked_screen_is_a_gap(
    xvfb: Xvfb,
    show: Callable[..., TkWindow],
    real_pipeline: Callable[..., CapturePipeline],
    capture_log: CaptureLog,
) -> None:
    show(NOTE)
    xvfb.screensaver(True)
    assert real_pipeline().run_once() == []
    assert capture_log.totals() == {"screen_locked": 1}


def test_a_chosen_monitor_that_is_not_there_is_a_gap(
    show: Callable[..., TkWindow],
    real_pipeline: Callable[..., CapturePipeline],
    capture_log: CaptureLog,
) -> None:
    show(NOTE)
    (event,) = real_pipeline(CaptureSettings(monitors=(1, 2))).run_once()
    assert event.monitor == 1
    (gap,) = capture_log.gaps(reasons=[GapReason.SCREEN_UNAVAILABLE])
    assert gap.monitor == 2 and "monitor 2" in gap.detail


def test_ocr_timeout_is_a_gap_and_capture_goes_on(
    show: Callable[..., TkWindow],
    real_pipeline: Callable[..., CapturePipeline],
    capture_log: CaptureLog,
) -> None:
    window = show(NOTE)
    # 0.1 s is below what tesseract needs for an 800x600 screen of text: it always times out.
    pipeline = real_pipeline(CaptureSettings(ocr_timeout_s=0.1))
    assert pipeline.run_once() == []
    (gap,) = capture_log.gaps(reasons=[GapReason.OCR_ERROR])
    assert gap.detail == "timeout"
    assert pipeline.ocr_error is not None and "was stopped" in pipeline.ocr_error
    pipeline.settings = CaptureSettings()
    window.set_text(NOTE + "\nafter the timeout")
    (event,) = pipeline.run_once()
    assert "timeout" in event.text and pipeline.ocr_error is None


@pytest.fixture
def store_on_screen(
    xvfb: Xvfb, fake_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MemoryStore]:
    monkeypatch.setenv("DISPLAY", xvfb.display)
    yield fake_store


def test_service_pause_leaves_a_gap_and_resume_captures_again(
    show: Callable[..., TkWindow], store_on_screen: MemoryStore
) -> None:
    window = show(NOTE)
    service = build_service(store_on_screen, CaptureSettings(interval_s=0.2, force_reread_s=1))
    with service:
        _wait(lambda: service.status().events == 1)
        paused_at = datetime.now(UTC)
        service.pause()
        window.set_text("Written while paused: nobody may see this")
        time.sleep(0.8)
        assert service.status().state == "paused"
        resumed_at = datetime.now(UTC)
        service.resume()
        _wait(lambda: service.status().events == 2)
    events = store_on_screen.events.claim(10)
    assert not [e for e in events if paused_at <= e.occurred_at <= resumed_at]
    (gap,) = service.log.gaps(reasons=[GapReason.PAUSED])
    assert gap.count >= 2 and gap.seconds >= 0.5
    assert paused_at <= gap.started_at and gap.ended_at <= datetime.now(UTC)


def test_screen_that_goes_away_is_a_gap_and_capture_recovers(
    store_on_screen: MemoryStore, xvfb: Xvfb, show: Callable[..., TkWindow]
) -> None:
    show(NOTE)
    service = build_service(store_on_screen, CaptureSettings(interval_s=0.2))
    with service:
        _wait(lambda: service.status().events == 1)
        xvfb.stop()  # the display (and every monitor on it) disappears
        _wait(lambda: service.status().state == "error")
        assert service.running
        assert service.status().last_error
        with Xvfb(800, 600, display=xvfb.display) as again:
            window = TkWindow(again.display, "Back again after the restart", app="Gedit")
            try:
                again.set_active(window.id)
                _wait(lambda: service.status().events == 2)
            finally:
                window.close()
        assert service.status().last_event_app == "Gedit"
    totals = service.log.totals()
    assert totals["screen_unavailable"] >= 1


def test_tesseract_missing_is_reported_clearly_and_nothing_crashes(
    show: Callable[..., TkWindow], store_on_screen: MemoryStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from app.capture_cli import check_capture

    show(NOTE)
    missing = TesseractOcr(cmd=str(tmp_path / "no-tesseract"))
    service = build_service(store_on_screen, CaptureSettings(interval_s=0.2), ocr=missing)
    with service:
        _wait(lambda: service.status().frames >= 2)
        status = service.status()
    assert status.ocr_ok is False
    assert (
        "tesseract" in status.ocr_message and "apt-get install tesseract-ocr" in status.ocr_message
    )
    assert service.log.totals().get("ocr_error", 0) >= 1
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract anywhere on PATH
    result = check_capture()
    assert result.ok is False and "not found" in result.summary


def test_no_screenshot_is_ever_written(
    show: Callable[..., TkWindow],
    real_pipeline: Callable[..., CapturePipeline],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    window = show(NOTE)
    pipeline = real_pipeline()
    pipeline.run_once()
    window.set_text("second screen of text")
    pipeline.run_once()
    assert list(temp.iterdir()) == []
    magic = (b"\x89PNG", b"P5\n", b"P6\n", b"\xff\xd8\xff", b"BM", b"II*\x00")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(magic), f"{path} looks like an image"


def test_cli_once_prints_one_redacted_event(
    show: Callable[..., TkWindow],
    xvfb: Xvfb,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    engram_home: Path,
) -> None:
    from app.cli import main

    show(f"{NOTE}\n{SECRETS}", app="Gedit", title="notes.txt - Gedit")
    monkeypatch.setenv("DISPLAY", xvfb.display)
    _use_fake_embedder(monkeypatch)
    assert main(["capture", "--once", "--json"]) == 0
    event: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert event["app"] == "Gedit" and "Meeting with Alice" in event["text"]
    assert "hunter2" not in event["text"] and "[REDACTED:password]" in event["text"]
    assert main(["capture", "--status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["ocr_ok"] is True and status["pending_events"] == 1
    assert "1 monitor(s)" in status["screen"]


def test_cli_status_without_tesseract_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from app.cli import main

    _use_fake_embedder(monkeypatch)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["capture", "--status"]) == 1
    out = capsys.readouterr().out
    assert "NOT AVAILABLE" in out and "apt-get install tesseract-ocr" in out
    assert "DISPLAY is not set" in out
    assert main(["capture", "--once"]) == 2  # a named error, not a traceback
    assert "tesseract" in capsys.readouterr().err


def _use_fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI opens the real store; capture needs no embedding model, so keep tests quick."""
    import app.bootstrap
    from storage.fakes import HashEmbedder, MemoryVectorIndex

    def open_store(settings: Any, embedder: Any = None, **_where: Any) -> MemoryStore:
        return MemoryStore.open(
            settings.resolved_data_dir(), HashEmbedder(), lambda _p: MemoryVectorIndex()
        )

    monkeypatch.setattr(app.bootstrap, "open_store", open_store)


def test_service_on_real_screen_runs_at_lower_priority(
    show: Callable[..., TkWindow], store_on_screen: MemoryStore
) -> None:
    show(NOTE)
    service = build_service(store_on_screen, CaptureSettings(interval_s=0.2, nice=5))
    assert isinstance(service, CaptureService)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with service:
        _wait(lambda: service.status().events == 1)
        assert [os.getpriority(os.PRIO_PROCESS, t) for t in service.thread_ids()] == [
            min(19, base + 5)
        ] * 2
