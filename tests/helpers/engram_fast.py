"""`engram ARGS` as a person runs it, with the hashed embedder instead of the 90 MB model, so a
test that starts it as a subprocess (the MCP server, a second process holding the store) does not
wait seconds for a model it does not test. Everything else is the real code path.

    python -m tests.helpers.engram_fast mcp
"""

from __future__ import annotations

import sys

from app import bootstrap
from storage.fakes import HashEmbedder


def main() -> int:
    bootstrap.make_embedder = lambda settings: HashEmbedder()
    if sys.argv[1:2] == ["hold"]:  # hold the store and serve it, as the desktop app does
        return _hold()
    from ui.launcher import main as engram

    return engram(sys.argv[1:])


def _hold() -> int:
    import signal
    import threading

    from app.runtime import Runtime
    from app.settings import load_settings

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(load_settings(), serve=True) as runtime:
        runtime.store()
        print("serving", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
