"""The real app, as a person starts it: `python -m ui` on a real X screen (Xvfb) with a tray
host: the first-run page before anything is captured, screenshots of it, of the window and of
the All search (Ctrl+K) kept under test-artifacts/, a second launch that brings the first
forward instead of starting, and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mss
import pytest
from PIL import Image, ImageStat

from capture.ocr_tesseract import TesseractOcr
from capture.ports import Rect, WindowInfo
from capture.window_x11 import X11Windows
from tests.helpers.xscreen import TkWindow, Xvfb

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [pytest.mark.real, pytest.mark.slow]


def _grab(display: str) -> Image.Image:
    with mss.MSS(display=display) as grabber:
        shot = grabber.grab(grabber.monitors[1])
        return Image.frombytes("RGB", shot.size, shot.rgb)


def _painted(image: Image.Image) -> float:
    """Share of the screen that is not the empty (black) X root."""
    gray = image.convert("L")
    return sum(gray.histogram()[8:]) / (gray.width * gray.height)


def _model_mapped(pid: int) -> bool:
    """The default chat model's weights are resident once it has loaded (in the background):
    on a CPU llama.cpp reads them into memory (agents/llm/llamacpp.py), on a GPU it maps the
    GGUF file."""
    from app.llm_config import LLMSettings
    from app.model_files import CATALOGUE

    weights_kib = CATALOGUE[LLMSettings().model].size // 1024
    try:
        if ".gguf" in Path(f"/proc/{pid}/maps").read_text():
            return True
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    rss = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
    )
    return rss > weights_kib * 0.8


def _seed(home: Path) -> None:
    """A few memories and one captured event for the All search to find (keyword-indexed;
    the app's own embedder indexes the event's vector in the background)."""
    from storage.fakes import HashEmbedder, MemoryVectorIndex
    from storage.records import EpisodicMemory, Event, SemanticMemory
    from storage.store import MemoryStore

    store = MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:
        store.add(SemanticMemory(name="Aurora", summary="Aurora is the big meeting room"))
        store.add(EpisodicMemory(summary="Booked Aurora for the Q3 budget review with Dana"))
        store.events.put(
            Event(source="screen", app="xterm", window_title="notes — xterm", text=MEETING)
        )
    finally:
        store.close()


def _settled(display: str, app: subprocess.Popen[bytes], log: Path) -> Image.Image:
    """The screen once two grabs 1.5 s apart are the same (at most 60 s)."""
    deadline, last = time.monotonic() + 60, b""
    while True:
        assert app.poll() is None, log.read_text()
        image = _grab(display)
        if image.tobytes() == last or time.monotonic() > deadline:
            return image
        last = image.tobytes()
        time.sleep(1.5)


def test_real_app_window_screenshot_and_single_instance(engram_home: Path):
    if shutil.which("Xvfb") is None or shutil.which("trayer") is None:
        pytest.fail("Xvfb and trayer are needed: run `make setup` (scripts/setup.sh)")
    ARTIFACTS.mkdir(exist_ok=True)
    _seed(engram_home)
    # A settings file of this version, never answered: a new user (without it, the seeded
    # screen event would make the app take this for a version 1 user who had capture on).
    (engram_home / "config").mkdir(parents=True)
    (engram_home / "config" / "settings.json").write_text('{"version": 2}')
    with Xvfb(1280, 800) as screen:
        env = {
            **os.environ,
            "DISPLAY": screen.display,
            "QT_QPA_PLATFORM": "xcb",
            "ENGRAM_HOME": str(engram_home),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("WAYLAND_DISPLAY", None)
        tray = subprocess.Popen(
            [
                "trayer",
                "--edge",
                "bottom",
                "--align",
                "right",
                "--widthtype",
                "request",
                "--height",
                "24",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        log = (ARTIFACTS / "real-app.log").open("w")
        app = subprocess.Popen(
            [sys.executable, "-m", "ui"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=Path(__file__).resolve().parents[2],
        )
        windows = X11Windows(screen.display)
        log_path = ARTIFACTS / "real-app.log"
        try:

            def own() -> list[WindowInfo]:
                return [w for w in windows.visible_windows() if w.pid == app.pid]

            def first_run() -> list[WindowInfo]:
                mains = [w for w in own() if w.transient_for is None]
                return [w for w in own() if mains and w.transient_for == mains[0].id]

            # A new user: the first-run page comes up over the window, and nothing is captured
            # before it is answered.
            (page,) = _until("the first-run page", first_run, app, log_path)
            shot = _settled(screen.display, app, log_path)
            shot.save(ARTIFACTS / "first-run.png")
            print(f"\nscreenshot of the first-run page: {ARTIFACTS / 'first-run.png'}")
            assert len(_screen_events(engram_home)) == 1  # the seeded one: no capture yet
            screen.type_keys("Return", focus=page.id)  # "Start Engram", capture left unticked
            _until("the page to close", lambda: not first_run(), app, log_path)
            settings = json.loads((engram_home / "config" / "settings.json").read_text())
            assert settings["first_run_done"] and not settings["capture_consent"]

            deadline, image, last = time.monotonic() + 90, None, None
            while time.monotonic() < deadline:  # wait for the window, then for it to settle
                assert app.poll() is None, (ARTIFACTS / "real-app.log").read_text()
                image = _grab(screen.display)
                settled = last is not None and image.tobytes() == last
                if settled and _model_mapped(app.pid):
                    break
                last = image.tobytes() if _painted(image) > 0.5 else None
                time.sleep(1.5)
            assert image is not None
            path = ARTIFACTS / "main-window.png"
            image.save(path)
            print(f"\nscreenshot of the main window: {path}")
            assert _painted(image) > 0.5, "the window never appeared"
            assert _model_mapped(app.pid), "the model did not load in the background"
            stat = ImageStat.Stat(image.convert("L"))
            assert stat.stddev[0] > 10, "the window is one flat colour: nothing was drawn"
            assert len(image.getcolors(1 << 20) or []) > 50  # text, icons, widgets

            # Ctrl+K: the All search, typed into at once, memories and the event with kinds.
            (main,) = [w for w in own() if w.transient_for is None]
            screen.type_keys("Control_L+k", focus=main.id)
            screen.type_keys("a", "u", "r", "o", "r", "a", "Return")
            search = _settled(screen.display, app, log_path)
            search.save(ARTIFACTS / "all-search.png")
            print(f"screenshot of the All search: {ARTIFACTS / 'all-search.png'}")
            assert search.tobytes() != image.tobytes(), "Ctrl+K changed nothing on screen"
            assert len(_screen_events(engram_home)) == 1  # still no capture: the user said no

            second = subprocess.run(
                [sys.executable, "-m", "ui"], env=env, capture_output=True, text=True, timeout=60
            )
            assert second.returncode == 0, second.stderr
            assert "already running" in second.stdout
            assert app.poll() is None

            # The CLI while the app holds the store: run by the app, not refused by the lock (the
            # first waits for the app's embedding model to load: 30 s on 2 busy cores).
            started = time.monotonic()
            cli = [sys.executable, "-m", "app"]
            added = subprocess.run(
                [*cli, "add", "--type", "semantic", "Ravi owns the billing service"],
                env=env, capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
            print(f"engram add through the running app: {time.monotonic() - started:.2f} s")
            started = time.monotonic()
            found = subprocess.run(
                [*cli, "search", "billing", "--json"], env=env, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            assert found.returncode == 0, found.stderr
            print(f"engram search through the running app: {time.monotonic() - started:.2f} s")
            assert json.loads(found.stdout)[0]["id"] == json.loads(added.stdout)["id"]
            started = time.monotonic()
            stats = subprocess.run([*cli, "stats"], env=env, capture_output=True, timeout=60)
            assert stats.returncode == 0, stats.stderr
            print(f"engram stats through the running app: {time.monotonic() - started:.2f} s")
        finally:
            if app.poll() is None:
                app.send_signal(signal.SIGTERM)
            try:
                code = app.wait(60)
            except subprocess.TimeoutExpired:
                app.kill()
                code = app.wait()
            windows.close()
            tray.terminate()
            tray.wait(10)
            log.close()
        assert code == 0, (ARTIFACTS / "real-app.log").read_text()


MEETING = "Meeting with Dana about the Q3 budget\non Friday at 3pm, Room: Aurora"


def _screen_events(home: Path) -> list[dict[str, Any]]:
    """Screen events in the running app's database (read-only: the app holds the folder)."""
    path = home / "engram.sqlite3"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT data FROM events").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        conn.close()
    return [e for e in (json.loads(r[0]) for r in rows) if e["source"] == "screen"]


def _until(
    what: str, predicate: Callable[[], Any], app: subprocess.Popen[bytes], log: Path | None = None
) -> Any:
    deadline = time.monotonic() + 180  # 2 loaded cores: OCR of a screen can take seconds
    while not (found := predicate()):
        assert app.poll() is None, (log or ARTIFACTS / "self-capture.log").read_text()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return found


def _timeline_read(display: str, rect: Rect) -> str:
    """The main window read by tesseract once it shows the timeline with both sessions (saved
    as test-artifacts/timeline.png), else ""."""
    image = _grab(display).crop(
        (rect.left, rect.top, rect.left + rect.width, rect.top + rect.height)
    )
    text = TesseractOcr().read(image.convert("L"), timeout_s=120)
    if "sessions" in text and "budget" in text and "notes" in text:
        image.save(ARTIFACTS / "timeline.png")
        return text
    time.sleep(1)
    return ""


def test_real_app_never_captures_its_own_windows(engram_home: Path) -> None:
    """The real app captures a real screen (tesseract) showing its main window, its File menu
    and then its Settings dialog beside another app's window: every event is the other app's,
    and no word Engram shows (read off the same screen by tesseract) is in any event."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed: run `make setup` (scripts/setup.sh)")
    ARTIFACTS.mkdir(exist_ok=True)
    config = engram_home / "config"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(
        json.dumps(
            {  # a model server that is not there: no agent runs, the events stay as read
                "llm": {"openai_base_url": "http://127.0.0.1:9"},
                "capture": {"interval_s": 0.5, "force_reread_s": 2},
                # Consent given (the first-run page was answered): capture starts at once.
                "version": 2,
                "first_run_done": True,
                "capture_consent": True,
            }
        )
    )
    with Xvfb(1280, 800) as screen:
        env = {**os.environ, "DISPLAY": screen.display, "QT_QPA_PLATFORM": "xcb"}
        env.pop("WAYLAND_DISPLAY", None)
        windows = X11Windows(screen.display)
        log = (ARTIFACTS / "self-capture.log").open("w")
        app = subprocess.Popen(
            [sys.executable, "-m", "ui"], env=env, stdout=log, stderr=log,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        other = None
        try:

            def own() -> list[WindowInfo]:
                return [w for w in windows.visible_windows() if w.pid == app.pid]

            (main,) = _until("the main window", own, app)
            assert (main.app, main.instance) == ("Engram", "engram")  # WM_CLASS, set by the app
            screen.place(main.id, 0, 0, 720, 780)
            other = TkWindow(
                screen.display, MEETING, app="Terminal", title="notes — xterm",
                x=760, y=40, width=500, height=300, font_size=14,
            )  # fmt: skip
            _until(
                "the meeting",
                lambda: any("Aurora" in e["text"] for e in _screen_events(engram_home)),
                app,
            )

            screen.type_keys("Alt_L+f", focus=main.id)  # the File menu: an override-redirect popup
            _until("the File menu", lambda: len(own()) >= 2, app)
            other.set_text(MEETING + "\nBring the printed slides")
            _until(
                "a read with the menu open",
                lambda: any("slides" in e["text"] for e in _screen_events(engram_home)),
                app,
            )

            screen.type_keys("s")  # File → Settings…: a dialog
            dialog = _until(
                "the Settings dialog",
                lambda: [w for w in own() if w.id != main.id and w.transient_for == main.id],
                app,
            )[0]
            assert not dialog.rect.intersects(Rect(760, 40, 500, 300)), dialog.rect
            other.set_text(MEETING + "\nBring the printed slides\nInvite Priya from finance")
            _until(
                "a read with the dialog open",
                lambda: any("Priya" in e["text"] for e in _screen_events(engram_home)),
                app,
            )

            # What Engram shows, read off this same screen: the words no event may contain.
            with mss.MSS(display=screen.display) as grabber:
                shot = grabber.grab(grabber.monitors[1])
                image = Image.frombytes("RGB", shot.size, shot.rgb).convert("L")
            shown = ""
            for w in own():
                box = (
                    w.rect.left,
                    w.rect.top,
                    w.rect.left + w.rect.width,
                    w.rect.top + w.rect.height,
                )
                shown += TesseractOcr().read(image.crop(box), timeout_s=120) + "\n"
            image.save(ARTIFACTS / "self-capture.png")

            # The day so far on the timeline: a second window session, then the tab (Alt+I).
            screen.type_keys("Escape", focus=dialog.id)
            _until("the Settings dialog to close", lambda: [w.id for w in own()] == [main.id], app)
            other.set_title("budget — xterm")
            other.set_text("Q3 budget review\nforecast for marketing approved")
            _until(
                "a read of the renamed window",
                lambda: any(
                    e["window_title"] == "budget — xterm" for e in _screen_events(engram_home)
                ),
                app,
            )
            screen.type_keys("Alt_L+i", focus=main.id)
            timeline_text = _until(
                "the timeline with both sessions",
                lambda: _timeline_read(
                    screen.display, next(w.rect for w in own() if w.id == main.id)
                ),
                app,
            )
        finally:
            if other is not None:
                other.close()
            windows.close()
            if app.poll() is None:
                app.send_signal(signal.SIGTERM)
            try:
                app.wait(60)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
            log.close()
    meeting = set(re.findall(r"[a-z]{4,}", f"{MEETING} slides printed priya finance".lower()))
    engram_words = set(re.findall(r"[a-z]{5,}", shown.lower())) - meeting
    assert len(engram_words) >= 5, f"Engram's windows showed no text to guard against: {shown!r}"
    assert re.search(r"in 2 sessions", timeline_text), timeline_text  # the header, read by OCR
    events = _screen_events(engram_home)
    assert events and {e["app"] for e in events} == {"Terminal"}
    for event in events:
        leaked = engram_words & set(re.findall(r"[a-z]{5,}", event["text"].lower()))
        assert not leaked, f"Engram's own text was captured: {sorted(leaked)} in {event['text']!r}"
    # No agent ran (the model server is not there), yet the captured text is found by search.
    from storage.fakes import HashEmbedder, MemoryVectorIndex
    from storage.store import EventHit, MemoryStore

    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:
        hits = store.search("meeting Dana Aurora budget", k=5)
    finally:
        store.close()
    assert any(isinstance(h, EventHit) and "Aurora" in h.item.text for h in hits), hits
