"""One Engram per data folder: a second launch asks the running one to show its window.

A QLocalServer (a Unix socket, or a named pipe on Windows; never a network listener) named after
the user and the data folder. The store's folder lock would stop a second process anyway; this
turns that into the behaviour a person expects.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket


def server_name(data_dir: Path) -> str:
    key = f"{getpass.getuser()}:{data_dir.expanduser().resolve()}"
    return f"engram-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


class SingleInstance(QObject):
    #: Another launch asked this one to come forward.
    activated = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server: QLocalServer | None = None

    def notify_running(self, timeout_ms: int = 1000) -> bool:
        """True when another instance answered (and was asked to show itself)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(b"show\n")
        socket.flush()
        socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return True

    def listen(self) -> bool:
        """Become the instance others find. A socket left by a crash is removed first (only
        after `notify_running` found nobody behind it)."""
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        server.newConnection.connect(self._connection)
        if not server.listen(self.name):
            return False
        self.server = server
        return True

    def _connection(self) -> None:
        assert self.server is not None
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.disconnected.connect(socket.deleteLater)
            self.activated.emit()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
