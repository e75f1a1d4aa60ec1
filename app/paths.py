"""Where Engram keeps things: the platform folders (XDG on Linux), or ENGRAM_HOME for both."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    home = os.environ.get("ENGRAM_HOME")
    if home:
        return Path(home).expanduser()
    return default_data_dir()


def default_data_dir() -> Path:
    """The platform data folder, whatever ENGRAM_HOME says (where the desktop app usually runs)."""
    return Path(platformdirs.user_data_dir("engram", appauthor=False))


def config_dir() -> Path:
    home = os.environ.get("ENGRAM_HOME")
    if home:
        return Path(home).expanduser() / "config"
    return Path(platformdirs.user_config_dir("engram", appauthor=False))


def resolved_data_dir(configured: Path | None) -> Path:
    """The data folder: ENGRAM_HOME, else the one the settings name (`configured`), else the
    platform's."""
    if os.environ.get("ENGRAM_HOME") or configured is None:
        return data_dir()
    return configured


def settings_file() -> Path:
    return config_dir() / "settings.json"


def bundled_models_dir() -> Path | None:
    """The models a self-contained bundle (`make bundle`) carries beside its program, or None
    when Engram runs from a checkout or a wheel."""
    if not getattr(sys, "frozen", False):
        return None
    folder = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models"
    return folder if folder.is_dir() else None


def models_dir() -> Path:
    """The built-in models assembled by set-up: one copy per user, in the platform data folder
    even under ENGRAM_HOME (a second profile, or a test, should not need 1.6 GB of its own);
    ENGRAM_MODELS_DIR puts them elsewhere."""
    override = os.environ.get("ENGRAM_MODELS_DIR")
    if override:
        return Path(override).expanduser()
    bundled = bundled_models_dir()
    if bundled is not None:
        return bundled
    return Path(platformdirs.user_data_dir("engram", appauthor=False)) / "models"
