"""Start and stop a real `python -m llama_cpp.server` on 127.0.0.1 for the HTTP backend tests."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import IO

from agents.llm.llamacpp import embedded_model_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(n_ctx: int = 2048, timeout_s: float = 120.0) -> Iterator[str]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(embedded_model_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", "2", "--verbose", "False",
    ]  # fmt: skip
    # A file, not a pipe: a pipe could fill up with access-log lines and stall the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield _wait_ready(proc, log, f"http://127.0.0.1:{port}", timeout_s)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {err[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as resp:
                json.loads(resp.read())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start in time") from None
            time.sleep(0.3)
    return url
