"""Engram's version and the versions of the engines it runs on, for `engram --version`, the About
dialog and bug reports. Read from package metadata, so nothing here imports an engine (asking for
the version must not load torch or Qt)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata

#: The engines a bug report needs, by distribution name, as the user would say them.
ENGINES = {
    "llama-cpp-python": "llama.cpp (llama-cpp-python)",
    "chromadb": "Chroma",
    "torch": "PyTorch",
    "sentence-transformers": "sentence-transformers",
    "PySide6-Essentials": "Qt (PySide6)",
    "mss": "mss",
    "pytesseract": "pytesseract",
    "mcp": "MCP SDK",
}


def engram_version() -> str:
    try:
        return metadata.version("engram")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def tesseract_version() -> str | None:
    """The OCR binary's version: it is a system package, not a Python one."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = (out.stdout or out.stderr).splitlines()
    return first[0].removeprefix("tesseract ").strip() if first else None


def engine_versions() -> dict[str, str | None]:
    """Each engine's version, None where it is not installed."""
    found: dict[str, str | None] = {"Python": platform.python_version()}
    for dist, label in ENGINES.items():
        try:
            found[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[label] = None
    found["tesseract"] = tesseract_version()
    return found


def version_text() -> str:
    """What `engram --version` prints: Engram first, then one engine a line."""
    bundled = " (bundle)" if getattr(sys, "frozen", False) else ""
    lines = [f"engram {engram_version()}{bundled}"]
    for label, version in engine_versions().items():
        lines.append(f"  {label}: {version or 'not installed'}")
    return "\n".join(lines)
