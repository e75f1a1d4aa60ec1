"""The real app, as a person starts it: `python -m ui` on a real X screen (Xvfb) with a tray
host, a screenshot of its window kept under test-artifacts/, a second launch that brings the
first forward instead of starting, and a clean exit on SIGTERM."""

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


def test_real_app_window_screenshot_and_single_instance(engram_home: Path):
    if shutil.which("Xvfb") is None or shutil.which("trayer") is None:
        pytest.fail("Xvfb and trayer are needed: run `make setup` (scripts/setup.sh)")
    ARTIFACTS.mkdir(exist_ok=True)
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
        try:
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

            second = subprocess.run(
                [sys.executable, "-m", "ui"], env=env, capture_output=True, text=True, timeout=60
            )
            assert second.returncode == 0, second.stderr
            assert "already running" in second.stdout
            assert app.poll() is None
        finally:
            if app.poll() is None:
                app.send_signal(signal.SIGTERM)
            try:
                code = app.wait(60)
            except subprocess.TimeoutExpired:
                app.kill()
                code = app.wait()
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


def _until(what: str, predicate: Callable[[], Any], app: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 180  # 2 loaded cores: OCR of a screen can take seconds
    while not (found := predicate()):
        assert app.poll() is None, (ARTIFACTS / "self-capture.log").read_text()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return found


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
