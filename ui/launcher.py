"""The `engram` command: no arguments starts the desktop app (`--tray` or `--minimized`: in
the tray, as the login autostart entry does); any other arguments go to the headless CLI.
Nothing here imports Qt, so `engram search …` in a script never pays for it."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    tray = args in (["--tray"], ["--minimized"])
    if args and not tray:
        from app.cli import main as cli_main

        return cli_main(args)
    from ui.app import run_gui

    return run_gui(tray=tray)


if __name__ == "__main__":
    sys.exit(main())
