"""The Linux bundle as a user installs it: the .deb unpacked into a scratch root, its `engram`
started under Xvfb on a fresh ENGRAM_HOME with no virtualenv on PATH, `--version` and `doctor`
from the bundle, and a clean quit.

Building the bundle takes longer than the normal test run can spend (PyInstaller over torch and
Qt, and 1.7 GB of models), so this runs where a .deb exists: `make bundle-test` builds one and
points ENGRAM_BUNDLE_DEB at it. Without one the test is skipped and says how to run it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from capture.window_x11 import X11Windows
from tests.helpers.xscreen import Xvfb

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.real, pytest.mark.slow]


def _deb() -> Path:
    named = os.environ.get("ENGRAM_BUNDLE_DEB")
    if named:
        return Path(named)
    built = sorted((ROOT / "dist").glob("engram_*_amd64.deb"), key=lambda p: p.stat().st_mtime)
    if not built:
        pytest.skip("no bundle built: `make bundle-test` builds the .deb and runs this test")
    return built[-1]


def _clean_env(home: Path) -> dict[str, str]:
    """What a user's desktop session has: no virtualenv, no checkout on the Python path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "ENGRAM_MODELS_DIR", "ENGRAM_HOME"}
    }
    env.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        ENGRAM_HOME=str(home),
        HF_HUB_OFFLINE="1",
        ENGRAM_KEYRING="0",
    )
    return env


def test_the_deb_installs_a_bundle_that_starts_reports_versions_and_quits(tmp_path: Path) -> None:
    deb = _deb()
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed: run `make setup` (scripts/setup.sh)")
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Package: engram" in fields and "tesseract-ocr" in fields and "libxcb-cursor0" in fields
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    program = root / "opt/engram/engram"
    assert program.is_file() and os.access(program, os.X_OK)
    assert os.readlink(root / "usr/bin/engram") == "/opt/engram/engram"
    for path in (
        "usr/share/applications/io.engram.Engram.desktop",
        "usr/share/metainfo/io.engram.Engram.metainfo.xml",
        "usr/share/icons/hicolor/scalable/apps/engram.svg",
    ):
        assert (root / path).is_file(), path
    assert list((root / "opt/engram/_internal/models").glob("*.gguf")), "the Qwen models"

    home = tmp_path / "home"
    env = _clean_env(home)
    version = subprocess.run(
        [str(program), "--version"], env=env, capture_output=True, text=True, timeout=120
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("engram ") and "(bundle)" in version.stdout.splitlines()[0]
    assert "not installed" not in version.stdout.split("MCP SDK")[0]  # every engine is inside
    doctor = subprocess.run(
        [str(program), "doctor"], env=env, capture_output=True, text=True, timeout=600
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[ok] chat model" in doctor.stdout and "[ok] model files" in doctor.stdout

    with Xvfb(1280, 800) as screen:
        env.update(DISPLAY=screen.display, QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        log = (tmp_path / "bundle-app.log").open("w")
        app = subprocess.Popen([str(program)], env=env, stdout=log, stderr=log, cwd=tmp_path)
        windows = X11Windows(screen.display)
        try:
            deadline = time.monotonic() + 180
            while not [w for w in windows.visible_windows() if w.pid == app.pid]:
                assert app.poll() is None, (tmp_path / "bundle-app.log").read_text()
                assert time.monotonic() < deadline, "the bundled app never showed a window"
                time.sleep(0.5)
        finally:
            windows.close()
            if app.poll() is None:
                app.send_signal(signal.SIGTERM)
            try:
                code = app.wait(60)
            except subprocess.TimeoutExpired:
                app.kill()
                code = app.wait()
            log.close()
    assert code == 0, (tmp_path / "bundle-app.log").read_text()
