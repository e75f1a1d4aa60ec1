"""Start at login: the XDG autostart entry (`$XDG_CONFIG_HOME/autostart/engram.desktop`).

Desktops that follow the XDG autostart spec (GNOME, KDE, Xfce, …) launch every `.desktop`
file in that folder at login. The entry starts Engram in the tray (`--tray`), so logging in
does not throw a window at the user. The setting `start_at_login` drives it: `apply` writes or
removes the entry, and both are idempotent. Qt-free, so it is tested without a display.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

ENTRY_NAME = "engram.desktop"
#: The launcher's flag: start hidden in the tray (ui.launcher honours it).
TRAY_FLAG = "--tray"


def autostart_dir() -> Path:
    """`$XDG_CONFIG_HOME/autostart`, or ~/.config/autostart when it is unset or relative
    (the spec says a relative value is to be ignored)."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and Path(config).is_absolute() else Path.home() / ".config"
    return base / "autostart"


def entry_path() -> Path:
    return autostart_dir() / ENTRY_NAME


def launch_command() -> list[str]:
    """How to start this Engram: the `engram` script beside this Python (a venv or a bundle),
    else the one on PATH, else this Python running the `ui` package."""
    beside = Path(sys.executable).with_name("engram")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("engram")
    if found:
        return [found]
    return [sys.executable, "-m", "ui"]


def _exec_arg(arg: str) -> str:
    """One argument of an Exec line: quoted as the desktop entry spec asks, "%" doubled."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'


def desktop_entry(command: Sequence[str]) -> str:
    exec_line = " ".join(_exec_arg(a) for a in [*command, TRAY_FLAG])
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=Engram",
            "Comment=Start Engram in the tray at login",
            f"Exec={exec_line}",
            "Icon=engram",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
    )


def is_enabled() -> bool:
    return entry_path().is_file()


def enable(command: Sequence[str] | None = None) -> Path:
    """Write the entry (again: the command may have moved); returns its path."""
    path = entry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = desktop_entry(list(command) if command is not None else launch_command())
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".desktop.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def disable() -> bool:
    """Remove the entry; False when there was none."""
    try:
        entry_path().unlink()
    except FileNotFoundError:
        return False
    return True


def apply(start_at_login: bool, command: Sequence[str] | None = None) -> None:
    """Make the autostart entry match the setting."""
    if start_at_login:
        enable(command)
    else:
        disable()
