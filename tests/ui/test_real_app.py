"""The real app, as a person starts it: `python -m ui` on a real X screen (Xvfb) with a tray
host, a screenshot of its window kept under test-artifacts/, a second launch that brings the
first forward instead of starting, and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mss
import pytest
from PIL import Image, ImageStat

from tests.helpers.xscreen import Xvfb

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
    """llama.cpp maps the GGUF file once the model has loaded (in the background)."""
    try:
        return ".gguf" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


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
