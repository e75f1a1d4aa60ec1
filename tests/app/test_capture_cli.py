"""Capture settings in the app's settings file, and the headless `engram capture` loop."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings, save_settings
from capture.config import CaptureSettings
from tests.helpers.xscreen import TkWindow, Xvfb


def test_defaults_are_sensible() -> None:
    capture = Settings().capture
    assert capture.interval_s == 3.0 and capture.monitors == ()
    assert "keepassxc" in capture.excluded_apps and "bitwarden" in capture.excluded_apps
    assert any("incognito" in p for p in capture.excluded_title_patterns)


def test_capture_settings_round_trip_through_the_settings_file() -> None:
    saved = Settings(capture=CaptureSettings(interval_s=5, monitors=(2,), excluded_apps=("x",)))
    path = save_settings(saved)
    assert load_settings().capture == saved.capture
    raw = json.loads(path.read_text())
    raw["capture"]["excluded_title_patterns"] = ["[bad"]
    path.write_text(json.dumps(raw))
    with pytest.raises(SettingsError, match="not valid"):
        load_settings()


def test_headless_capture_runs_until_interrupted(
    tmp_path: Path, show: Callable[..., TkWindow], xvfb: Xvfb, engram_home: Path
) -> None:
    show("Headless capture writes this down", app="Gedit", title="todo.txt - Gedit")
    env = {**os.environ, "DISPLAY": xvfb.display, "ENGRAM_HOME": str(engram_home)}
    env["PYTHONFAULTHANDLER"] = "1"  # a hang below is shown with every thread's stack
    # A test run started in the background by a shell inherits Ctrl-C ignored, and so would the
    # child, which then never sees the SIGINT below: it starts with Ctrl-C's default action.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "capture", "--interval", "0.5", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no event printed within 60 s"
        event = json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints where each thread is
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"headless capture did not stop within 60 s of Ctrl-C:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # closes its pipes: a failure must not leak into the next test
    assert event["app"] == "Gedit" and "Headless capture" in event["text"]
    assert proc.returncode == 0
    assert "stopped: 1 event(s)" in err
