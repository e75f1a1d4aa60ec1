"""Start and stop a real `python -m llama_cpp.server` on 127.0.0.1 for the HTTP backend tests."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager

from agents.llm.llamacpp import embedded_model_path
from tests.helpers.servers import local_server


def running_server(n_ctx: int = 2048, timeout_s: float = 120.0) -> AbstractContextManager[str]:
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(embedded_model_path()),
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", "2", "--verbose", "False",
        ]  # fmt: skip

    return local_server("llama_cpp.server", command, "/v1/models", timeout_s)
