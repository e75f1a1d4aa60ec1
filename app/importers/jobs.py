"""An import as the desktop app runs it (File → Import…): one call for each kind, with
progress and cancel, on a store the app already holds."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

from app.importers.base import OnProgress, Summary, import_items
from storage.store import MemoryStore

Kind = Literal["chat", "files", "browser", "calendar"]


def run_import(
    store: MemoryStore,
    kind: Kind,
    path: Path | None,
    *,
    on_progress: OnProgress | None = None,
    cancel: threading.Event | None = None,
) -> list[Summary]:
    """Import `path` (a chat export, a documents folder, an .ics calendar, a browser history
    file; for
    "browser", None means every profile found). Raises ImportFailed, ImportCancelled."""
    if kind == "chat":
        from app.importers.chats import detect, parser

        assert path is not None
        fmt = detect(path)
        summary = import_items(
            store, fmt, path, parser(path, fmt), progress=False, on_progress=on_progress,
            cancel=cancel,
        )  # fmt: skip
        summary.extra["format"] = fmt
        return [summary]
    if kind == "files":
        from app.importers.documents import import_files

        assert path is not None
        return [import_files(store, path, progress=False, on_progress=on_progress, cancel=cancel)]
    if kind == "calendar":
        from app.importers.calendar import import_calendar

        assert path is not None
        return [import_calendar(store, path)]
    from app.importers.base import ImportFailed
    from app.importers.browser import find_histories, import_history

    paths = [path] if path is not None else find_histories()
    if not paths:
        raise ImportFailed(Path.home(), "no Firefox or Chromium history found")
    return [
        import_history(store, p, progress=False, on_progress=on_progress, cancel=cancel)
        for p in paths
    ]
