"""Commands and MCP calls through the running instance (see app/instance.py for why).

`serve` answers, on the process that holds the store: API calls (the MCP tools), CLI commands
(run here, on this runtime's store, with their output sent back as they print) and a request to
give the store up. `forward_cli` is the other side: a short `engram` command that finds the
data folder held by another process sends itself there instead of failing on the lock.

This module is the routed command's whole path on the caller's side (`route`, run by app/cli.py
before it builds its parser), so it imports nothing heavy: no pydantic, no store, no engine.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import instance, paths
from storage.errors import EngramError
from storage.sqlite_db import lock_holder

if TYPE_CHECKING:
    from app.runtime import Runtime

#: Commands that only need the store: run by the instance that holds it, when one does.
ROUTABLE = frozenset(
    {
        "add",
        "search",
        "get",
        "delete",
        "history",
        "undo",
        "export",
        "import",
        "stats",
        "reindex",
        "retention",
        "events",
        "import-chat",
        "import-files",
        "import-browser",
        "import-calendar",
        None,  # `engram` with arguments that name no command: the stats
    }
)

#: The runtime a routed command runs on (set on the serving thread); None: open one's own.
SERVING: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "engram_serving", default=None
)
#: The folder relative paths of a routed command are relative to (the caller's).
CWD: contextvars.ContextVar[Path | None] = contextvars.ContextVar("engram_cwd", default=None)


def user_path(value: str) -> Path:
    """An argparse type for paths: relative to the caller's folder, also when the command runs
    in the app for a caller elsewhere."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (CWD.get() or Path.cwd()) / path


def serve(
    runtime: Runtime, data_dir: Path, on_yield: Callable[[], bool] | None = None
) -> instance.InstanceServer:
    """Answer for `data_dir`, `runtime`'s folder (once its store is open: the lock is held)."""
    from app.api import Api, ApiError

    api = Api(runtime.store, lambda: runtime.settings.mcp)

    def handle(request: dict[str, Any], send: Callable[[dict[str, Any]], None]) -> None:
        op = request.get("op")
        if op == "api":
            try:
                result = api.call(
                    str(request.get("name")),
                    dict(request.get("arguments") or {}),
                    str(request.get("client") or "client"),
                )
            except ApiError as exc:
                send({"error": str(exc)})
                return
            send({"ok": result})
        elif op == "cli":
            send({"exit": _run_cli(runtime, request, send)})
        elif op == "yield":
            send({"ok": bool(on_yield and on_yield())})
        elif op == "ping":
            send({"ok": {"pid": os.getpid()}})
        else:
            send({"error": f"unknown request {op!r}"})

    server = instance.InstanceServer(data_dir, handle)
    server.start()
    return server


def _run_cli(
    runtime: Runtime, request: dict[str, Any], send: Callable[[dict[str, Any]], None]
) -> int:
    from app import cli

    argv = [str(a) for a in request.get("argv") or []]
    cwd = Path(str(request.get("cwd") or "/"))
    stdin = request.get("stdin")
    serving, here = SERVING.set(runtime), CWD.set(cwd)
    try:
        stdin = stdin if isinstance(stdin, str) else None
        with instance.routed_streams(send, stdin, tty=bool(request.get("tty"))):
            try:
                return cli.main(argv)
            except SystemExit as exc:  # argparse: usage errors, --help
                return exc.code if isinstance(exc.code, int) else 2
    finally:
        CWD.reset(here)
        SERVING.reset(serving)


def held_elsewhere(data_dir: Path) -> bool:
    holder = lock_holder(data_dir)
    return holder is not None and holder != os.getpid()


def route(argv: Sequence[str]) -> int | None:
    """`engram ARGV` run by the instance that holds the data folder, decided from the command's
    name alone, before the parser and what it imports exist: the exit code, or None to run it
    here (nobody holds the folder, a command that is not routed, or help, printed here). The
    holder parses `argv` with the same parser, so a usage error still reads as one."""
    if SERVING.get() is not None:  # this is the holder, running a routed command
        return None
    if (argv[0] if argv else None) not in ROUTABLE or "-h" in argv or "--help" in argv:
        return None
    data_dir = configured_data_dir()
    return None if data_dir is None else forward_cli(argv, data_dir)


def configured_data_dir() -> Path | None:
    """`Settings.resolved_data_dir()` from the settings file as it is, unvalidated (pydantic is
    what a routed command must not wait for); None when the file cannot be read that way: then
    the command runs the long way, where `load_settings` says what is wrong with it."""
    if os.environ.get("ENGRAM_HOME"):
        return paths.data_dir()
    try:
        raw = json.loads(paths.settings_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return paths.data_dir()
    except (OSError, ValueError):
        return None
    configured = raw.get("data_dir") if isinstance(raw, dict) else None
    if configured is not None and not isinstance(configured, str):
        return None
    return paths.resolved_data_dir(None if configured is None else Path(configured))


def forward_cli(argv: Sequence[str], data_dir: Path) -> int | None:
    """Run `argv` in the instance that holds `data_dir`, printing its output here; its exit
    code, or None when nobody holds the folder or answers (then run it here)."""
    if SERVING.get() is not None or not held_elsewhere(data_dir):
        return None
    stdin = sys.stdin.read() if "-" in argv else None
    message = {
        "op": "cli",
        "argv": list(argv),
        "cwd": os.getcwd(),
        "stdin": stdin,
        "tty": sys.stderr.isatty(),
    }
    started = False
    try:
        for reply in instance.request(data_dir, message, timeout_s=None):
            started = True
            if "out" in reply:
                sys.stdout.write(str(reply["out"]))
                sys.stdout.flush()
            elif "err" in reply:
                sys.stderr.write(str(reply["err"]))
                sys.stderr.flush()
            elif "exit" in reply:
                return int(reply["exit"])
            elif "error" in reply:
                raise EngramError(f"the running Engram failed: {reply['error']}")
    except instance.NotServed as exc:
        if started:
            raise EngramError(f"the running Engram stopped answering ({exc})") from None
        return None
    return None
