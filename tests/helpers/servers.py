"""A real server process on a free 127.0.0.1 port for a test: started, waited for until it
answers, stopped after; if it dies or never answers, the error carries the tail of its log."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_server(
    name: str,
    command: Callable[[int], Sequence[str]],
    probe: str,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run `command(port)`; yield its base URL once GET `probe` answers with JSON."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A file, not a pipe: a pipe could fill up with access-log lines and stall the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(list(command(port)), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {_tail(log)}")
                try:
                    with urllib.request.urlopen(url + probe, timeout=2) as resp:
                        json.loads(resp.read())
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{name} did not answer within {timeout_s:.0f} s: {_tail(log)}"
                        ) from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]
