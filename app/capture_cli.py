"""`engram capture`: headless screen capture (`--once` for one event, `--status` for health),
and the `capture` check of `engram doctor`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.doctor import CheckResult, check
from capture.ports import CaptureError, OcrUnavailable

if TYPE_CHECKING:  # pydantic models: loaded by the command, not by `engram`'s parser
    from capture.config import CaptureSettings
    from storage.records import Event


def _settings(args: argparse.Namespace) -> CaptureSettings:
    from app.settings import load_settings
    from capture.config import CaptureSettings

    base = load_settings().capture
    changes: dict[str, Any] = {}
    if args.interval is not None:
        changes["interval_s"] = args.interval
        changes["force_reread_s"] = max(base.force_reread_s, args.interval)
    if args.monitor:
        changes["monitors"] = tuple(args.monitor)
    return CaptureSettings.model_validate({**base.model_dump(), **changes}) if changes else base


def _print_event(event: Event, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event.model_dump(mode="json"), ensure_ascii=False), flush=True)
        return
    when = event.occurred_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    redacted = event.metadata.get("redacted", 0)
    print(f"── {when}  monitor {event.monitor}  {event.app or '?'} — {event.window_title}")
    if redacted:
        print(f"   ({redacted} secret(s) redacted)")
    print(event.text, flush=True)


def cmd_capture(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.settings import load_settings

    settings = load_settings()
    serve = not (args.status or args.once)  # headless capture runs for long: it serves the CLI
    with Runtime(settings.model_copy(update={"capture": _settings(args)}), serve=serve) as runtime:
        service = runtime.capture()
        if args.status:
            return _show_status(service, args.json)
        if args.once:
            return _once(service, args.json)
        return _run(service, args.json)


def _once(service: Any, as_json: bool) -> int:
    if not service.check_ocr():
        raise OcrUnavailable(service.status().ocr_message)
    started = datetime.now(UTC)
    events = service.pipeline.run_once()
    for event in events:
        _print_event(event, as_json)
    if events:
        return 0
    reasons = [
        f"{g.reason.value} ({g.detail})" if g.detail else g.reason.value
        for g in service.log.gaps(since=started - timedelta(seconds=1))
    ]
    print(f"engram: no event captured: {', '.join(reasons) or 'nothing readable'}", file=sys.stderr)
    return 1


def _run(service: Any, as_json: bool) -> int:
    done = threading.Event()
    service.add_event_listener(lambda e: _print_event(e, as_json))
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    service.start()
    status = service.status()
    if not status.ocr_ok:
        print(f"engram: warning: {status.ocr_message}", file=sys.stderr)
    print(f"capturing every {service.settings.interval_s:g} s; Ctrl-C stops", file=sys.stderr)
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        signal.signal(signal.SIGTERM, previous)
    status = service.status()
    print(
        f"stopped: {status.events} event(s) from {status.frames} frame(s), "
        f"{status.unchanged} unchanged",
        file=sys.stderr,
    )
    return 0


def _show_status(service: Any, as_json: bool) -> int:
    service.check_ocr()
    status = service.status()
    screen = _screen_summary()
    day = datetime.now(UTC) - timedelta(days=1)
    paused = service.pipeline.pause.is_paused()
    out = {
        "ocr_ok": status.ocr_ok,
        "ocr": status.ocr_message,
        "screen": screen,
        "paused_until": (
            status.paused_until.isoformat()
            if status.paused_until
            else ("indefinitely" if paused else None)
        ),
        "pending_events": status.pending_events,
        "gaps_last_24h": service.log.totals(since=day),
        "recent_gaps": [g.model_dump(mode="json") for g in service.gaps(limit=10)],
    }
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        print(f"OCR:     {'ok, ' if status.ocr_ok else 'NOT AVAILABLE: '}{status.ocr_message}")
        print(f"screen:  {screen}")
        print(f"pending: {status.pending_events} event(s) waiting for the agents")
        for reason, n in sorted(out["gaps_last_24h"].items()):
            print(f"skipped in the last 24 h: {n} × {reason}")
    return 0 if status.ocr_ok else 1


def _screen_summary() -> str:
    from capture.screen_mss import MssScreen

    screen = MssScreen()
    try:
        monitors = screen.monitors()
    except CaptureError as exc:
        return f"not available: {exc}"
    finally:
        screen.close()
    sizes = ", ".join(f"{m.index}: {m.rect.width}x{m.rect.height}" for m in monitors)
    return f"{len(monitors)} monitor(s) on {os.environ.get('DISPLAY', 'the desktop')} ({sizes})"


@check
def check_capture() -> CheckResult:
    """Screen capture needs tesseract; a missing screen is reported but is no install fault."""
    from capture.ocr_tesseract import TesseractOcr

    try:
        version = TesseractOcr().check()
    except OcrUnavailable as exc:
        return CheckResult("capture", False, str(exc))
    screen = _screen_summary()
    return CheckResult("capture", True, f"tesseract {version}; screen {screen}", {"screen": screen})


def register(sub: Any) -> None:
    p = sub.add_parser("capture", help="capture the screen into the event queue (Ctrl-C stops)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="capture, OCR and print one event")
    mode.add_argument("--status", action="store_true", help="OCR, screen and gap health")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--interval", type=float, help="seconds between looks (default: settings)")
    p.add_argument("--monitor", type=int, nargs="+", help="monitors to capture (from 1)")
    p.set_defaults(func=cmd_capture)
