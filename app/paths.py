"""Where Engram keeps things: the platform folders (XDG on Linux), or ENGRAM_HOME for both."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    home = os.environ.get("ENGRAM_HOME")
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_data_dir("engram", appauthor=False))


def config_dir() -> Path:
    home = os.environ.get("ENGRAM_HOME")
    if home:
        return Path(home).expanduser() / "config"
    return Path(platformdirs.user_config_dir("engram", appauthor=False))
