"""Start at login: the XDG autostart entry is written, removed, rewritten idempotently, put
where XDG_CONFIG_HOME says, and follows the `start_at_login` setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import autostart
from app.services import Services
from app.settings import Settings, load_settings

COMMAND = ["/opt/engram/bin/engram"]


def test_enable_writes_an_entry_that_starts_engram_in_the_tray(tmp_path: Path) -> None:
    path = autostart.enable(COMMAND)
    assert path == tmp_path / "xdg-config" / "autostart" / "engram.desktop"
    text = path.read_text()
    assert text.startswith("[Desktop Entry]\n")
    assert "Type=Application\n" in text and "Name=Engram\n" in text
    assert "Exec=/opt/engram/bin/engram --tray\n" in text
    assert autostart.is_enabled()


def test_disable_removes_the_entry_and_says_when_there_was_none() -> None:
    autostart.enable(COMMAND)
    assert autostart.disable() is True
    assert not autostart.entry_path().exists() and not autostart.is_enabled()
    assert autostart.disable() is False


def test_enable_and_apply_are_idempotent() -> None:
    first = autostart.enable(COMMAND)
    before = (first.read_text(), first.stat().st_mtime_ns)
    autostart.apply(True, COMMAND)
    autostart.apply(True, COMMAND)
    assert (first.read_text(), first.stat().st_mtime_ns) == before  # not rewritten
    assert [p.name for p in first.parent.iterdir()] == ["engram.desktop"]  # no temp file left
    autostart.apply(False)
    autostart.apply(False)
    assert list(first.parent.iterdir()) == []


def test_a_moved_launcher_is_written_again() -> None:
    autostart.enable(COMMAND)
    path = autostart.enable(["/home/sam/.local/bin/engram"])
    assert "Exec=/home/sam/.local/bin/engram --tray\n" in path.read_text()


def test_xdg_config_home_is_honoured_and_defaults_to_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    assert autostart.enable(COMMAND) == tmp_path / "elsewhere" / "autostart" / "engram.desktop"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert autostart.entry_path() == tmp_path / "home" / ".config" / "autostart" / "engram.desktop"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/path")  # the spec: ignore a relative one
    assert autostart.entry_path() == tmp_path / "home" / ".config" / "autostart" / "engram.desktop"


def test_an_exec_argument_with_spaces_is_quoted_as_the_spec_asks() -> None:
    text = autostart.desktop_entry(["/usr/bin/python3", "/home/sam/My Apps/engram", "50%"])
    assert 'Exec=/usr/bin/python3 "/home/sam/My Apps/engram" 50%% --tray\n' in text


def test_the_launch_command_is_a_real_program() -> None:
    command = autostart.launch_command()
    assert Path(command[0]).is_file()
    assert command[1:] in ([], ["-m", "ui"])


def test_the_start_at_login_setting_writes_and_removes_the_entry() -> None:
    services = Services(Settings())
    services.save_settings(services.settings.model_copy(update={"start_at_login": True}))
    assert autostart.is_enabled() and load_settings().start_at_login
    assert "--tray" in autostart.entry_path().read_text()
    services.save_settings(services.settings.model_copy(update={"start_at_login": False}))
    assert not autostart.is_enabled() and not load_settings().start_at_login
