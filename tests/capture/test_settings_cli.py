"""Capture settings validation, the headless `engram capture` loop, and the benchmark's shape."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.capture.config import CaptureSettings
from app.settings import Settings, SettingsError, load_settings, save_settings
from bench.xscreen import TkWindow, Xvfb


def test_defaults_are_sensible() -> None:
    capture = Settings().capture
    assert capture.interval_s == 3.0 and capture.monitors == ()
    assert "keepassxc" in capture.excluded_apps and "bitwarden" in capture.excluded_apps
    assert any("incognito" in p for p in capture.excluded_title_patterns)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interval_s": 0}, "greater than or equal to 0.1"),
        ({"monitors": [0]}, "counted from 1"),
        ({"excluded_title_patterns": ["(unclosed"]}, "not valid"),
        ({"interval_s": 60, "force_reread_s": 30}, "must not be shorter"),
        ({"backlog_frames": 0}, "greater than or equal to 1"),
        ({"ocr_language": "eng; rm -rf /"}, "should match pattern"),
    ],
)
def test_bad_capture_settings_are_refused_with_a_reason(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        CaptureSettings.model_validate(changes)


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
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "capture", "--interval", "0.5", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no event printed within 60 s"
        event = json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert event["app"] == "Gedit" and "Headless capture" in event["text"]
    assert proc.returncode == 0
    assert "stopped: 1 event(s)" in err


def test_benchmark_prints_the_promised_fields() -> None:
    from bench.capture import run

    started = time.monotonic()
    result = run(minutes=1, width=640, height=400)
    for key in ("unchanged_frame_ms", "changed_frame_ms", "ocr_ms_p50", "skip_ratio"):
        assert result[key] > 0, key
    assert 0 <= result["bytes_per_hour"] < 5_000_000  # page-granular: a minute may fit in 0 pages
    assert result["frames"] == 20 and result["events"] >= 1
    assert time.monotonic() - started < 60
