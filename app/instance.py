"""The running instance answers for its data folder: a per-user local socket, so the CLI and
the MCP server work while the desktop app holds the store.

Why route, not open read-only: the store is one writer by design (the folder lock, the event
queue's claims, the vector index a second process must not write), `engram add` and an MCP
write need that writer anyway, and the running app already has the embedding model loaded, so
a routed `engram search` answers in milliseconds instead of loading it for 10 s. A read-only
second opener would still load the model, could not write, and would read a Chroma folder
another process is writing. So whoever holds the folder lock and runs for long (the desktop
app, `engram mcp`) serves this socket; a short command that finds the folder held asks the
holder to run it and prints what comes back.

The socket is a Unix socket named after the user and the data folder (as the app's
single-instance socket is, ui/single_instance.py), in $XDG_RUNTIME_DIR (or the temp folder),
mode 0600, and each connection's peer must be this user (SO_PEERCRED): never a network
listener. One JSON object a line each way:

- `{"op": "api", "name", "arguments", "client"}` → `{"ok": result}` or `{"error": message}`
- `{"op": "cli", "argv", "cwd", "stdin"}` → `{"out": text}`/`{"err": text}` lines as the
  command writes, then `{"exit": code}`
- `{"op": "yield"}` → `{"ok": bool}`: a holder that may give the store up (an `engram mcp`
  started before the app) closes it, so the app can open it
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import hashlib
import io
import json
import os
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    """The server side's logger; `logging` (and `tempfile`, below) load only where they are
    used, so a routed command's side of this module costs no more than its socket."""
    import logging

    return logging.getLogger(__name__)


Handler = Callable[[dict[str, Any], Callable[[dict[str, Any]], None]], None]


def socket_path(data_dir: Path) -> Path:
    key = f"{getpass.getuser()}:{data_dir.expanduser().resolve()}"
    base = os.environ.get("XDG_RUNTIME_DIR") or ""
    name = f"engram-{hashlib.sha1(key.encode()).hexdigest()[:16]}.sock"
    if base and Path(base).is_dir():
        return Path(base) / name
    import tempfile

    return Path(tempfile.gettempdir()) / name


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message, ensure_ascii=False).encode() + b"\n")


class InstanceServer:
    """Serves requests for one data folder on a background thread; `handle` answers each."""

    def __init__(self, data_dir: Path, handle: Handler) -> None:
        self.path = socket_path(data_dir)
        self._handle = handle
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listen (the caller holds the folder lock, so a socket file left there is stale)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            _log().warning("cannot serve %s (%s): other commands will not reach it", self.path, exc)
            sock.close()
            return False
        finally:
            os.umask(old)
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="engram-instance", daemon=True)
        self._thread.start()
        return True

    def _accept(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if _peer_uid(conn) not in (None, os.getuid()):
                return
            try:
                line = conn.makefile("rb").readline()
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("expected a JSON object")
            except (OSError, ValueError):
                return
            try:
                self._handle(request, lambda m: _send(conn, m))
            except OSError:  # the caller went away
                pass
            except Exception as exc:
                _log().exception("serving %s failed", request.get("op"))
                with contextlib.suppress(OSError):
                    _send(conn, {"error": f"{type(exc).__name__}: {exc}"})

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class NotServed(Exception):
    """Nobody answers for the data folder (or it stopped answering mid-request)."""


def request(
    data_dir: Path, message: dict[str, Any], timeout_s: float | None = 60.0
) -> Iterator[dict[str, Any]]:
    """Send `message` to the instance serving `data_dir`; yields its replies. Raises NotServed
    when nobody listens (before anything was sent) or the connection drops before the end."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(str(socket_path(data_dir)))
    except OSError as exc:
        sock.close()
        raise NotServed(str(exc)) from None
    with sock:
        sock.settimeout(timeout_s)
        _send(sock, message)
        reader = sock.makefile("rb")
        for line in reader:
            reply = json.loads(line)
            yield reply
            if "exit" in reply or "ok" in reply or "error" in reply:
                return
        raise NotServed("the running Engram closed the connection before it answered")


def call(data_dir: Path, message: dict[str, Any], timeout_s: float | None = 60.0) -> Any:
    """One request with one answer: its `ok` value; `{"error"}` raises RemoteError."""
    for reply in request(data_dir, message, timeout_s):
        if "error" in reply:
            raise RemoteError(str(reply["error"]))
        if "ok" in reply:
            return reply["ok"]
    raise NotServed("no answer")


class RemoteError(Exception):
    """The running instance answered with an error (its message is for the user)."""


# ----- a routed command's standard streams ---------------------------------------------------

_Stream = TextIO | io.TextIOBase
_OUT: contextvars.ContextVar[_Stream | None] = contextvars.ContextVar("engram_out", default=None)
_ERR: contextvars.ContextVar[_Stream | None] = contextvars.ContextVar("engram_err", default=None)
_IN: contextvars.ContextVar[_Stream | None] = contextvars.ContextVar("engram_in", default=None)
_install_lock = threading.Lock()


class _Routed(io.TextIOBase):
    """sys.stdout (or stderr, stdin) that writes to the stream of the routed command running
    on this thread, and to the real one everywhere else: commands for other processes run on
    the server's threads while the app's own threads keep their output."""

    def __init__(self, var: contextvars.ContextVar[_Stream | None], real: _Stream) -> None:
        self._var = var
        self._real = real

    def _target(self) -> _Stream:
        return self._var.get() or self._real

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def read(self, size: int | None = -1) -> str:
        return self._target().read(-1 if size is None else size)

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        return self._target().readline(size)

    def isatty(self) -> bool:
        return self._target().isatty()

    def __getattr__(self, name: str) -> Any:  # buffer, fileno, encoding: the real stream's
        return getattr(self._real, name)


class _Sender(io.TextIOBase):
    """A stream whose writes go to the caller; `tty`: the caller's own stream is a terminal."""

    def __init__(self, key: str, send: Callable[[dict[str, Any]], None], tty: bool) -> None:
        self._key, self._send, self._tty = key, send, tty

    def write(self, text: str) -> int:
        if text:
            self._send({self._key: text})
        return len(text)

    def isatty(self) -> bool:
        return self._tty


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Routed):
            sys.stdout = _Routed(_OUT, sys.stdout)
        if not isinstance(sys.stderr, _Routed):
            sys.stderr = _Routed(_ERR, sys.stderr)
        if not isinstance(sys.stdin, _Routed):
            sys.stdin = _Routed(_IN, sys.stdin)


@contextlib.contextmanager
def routed_streams(
    send: Callable[[dict[str, Any]], None], stdin: str | None, tty: bool = False
) -> Iterator[None]:
    """Inside: print() and sys.stdin on this thread are the caller's, over the socket."""
    _install()
    tokens = (
        _OUT.set(_Sender("out", send, False)),
        _ERR.set(_Sender("err", send, tty)),
        _IN.set(io.StringIO(stdin or "")),
    )
    try:
        yield
    finally:
        _IN.reset(tokens[2])
        _ERR.reset(tokens[1])
        _OUT.reset(tokens[0])
