"""`engram --version`: Engram's version and each engine's, without loading an engine or Qt."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from app.version import ENGINES, engine_versions, version_text


def test_version_names_engram_and_every_engine_with_its_installed_version() -> None:
    text = version_text()
    first, *rest = text.splitlines()
    assert first.startswith("engram ") and first.split()[1][0].isdigit()
    versions = engine_versions()
    assert set(ENGINES.values()) <= set(versions)
    assert versions["llama.cpp (llama-cpp-python)"] == metadata.version("llama-cpp-python")
    assert versions["Chroma"] == metadata.version("chromadb")
    assert len(rest) == len(versions)
    assert any(line.strip().startswith("tesseract: ") for line in rest)


def test_engram_version_prints_and_exits_0_without_importing_engines_or_qt() -> None:
    code = (
        "import sys\n"
        "from ui.launcher import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "heavy = [m for m in ('torch', 'chromadb', 'llama_cpp', 'PySide6') if m in sys.modules]\n"
        "print('RC', rc, 'LOADED', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("engram ")
    assert "Chroma: " in out.stdout
    assert lines[-1] == "RC 0 LOADED []"
