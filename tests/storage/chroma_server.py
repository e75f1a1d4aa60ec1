"""Start a real `chroma run` server on 127.0.0.1 for the client/server tests."""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path

from tests.helpers.servers import local_server


def chroma_server(path: Path, timeout_s: float = 60.0) -> AbstractContextManager[str]:
    chroma = Path(sys.executable).with_name("chroma")
    return local_server(
        "chroma server",
        lambda port: [
            str(chroma),
            "run",
            "--path",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        "/api/v2/heartbeat",
        timeout_s,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
