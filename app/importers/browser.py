"""`engram import-browser`: the pages visited in Firefox (places.sqlite) and Chromium-based
browsers (History), one event per page and day, through `import_items`.

The live file is never opened: a running browser holds it (Firefox locks it exclusively) and
SQLite must not write beside it. It is copied, with its write-ahead log, into a private temp
folder, checked, and read there; the copy is removed afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.importers.base import ImportFailed, Item, Parsed, Rejected, Summary, import_items
from storage.dates import parse_when
from storage.store import MemoryStore

#: Seconds between 1601-01-01 (Chromium's epoch) and 1970-01-01.
_CHROMIUM_EPOCH = 11_644_473_600

_FIREFOX = """
SELECT p.url AS url, COALESCE(p.title, '') AS title, MIN(v.visit_date) / 1000000.0 AS first,
       COUNT(*) AS visits
FROM moz_historyvisits v JOIN moz_places p ON p.id = v.place_id
GROUP BY p.url, CAST(v.visit_date / 86400000000 AS INTEGER) ORDER BY first
"""
_CHROMIUM = f"""
SELECT u.url AS url, COALESCE(u.title, '') AS title,
       MIN(v.visit_time) / 1000000.0 - {_CHROMIUM_EPOCH} AS first, COUNT(*) AS visits
FROM visits v JOIN urls u ON u.id = v.url
GROUP BY u.url, CAST(v.visit_time / 86400000000 AS INTEGER) ORDER BY first
"""


def kind_of(path: Path) -> str:
    return "firefox" if path.name == "places.sqlite" else "chromium"


def find_histories(home: Path | None = None) -> list[Path]:
    """The history databases of the usual browser profiles of this user."""
    home = home or Path.home()
    patterns = [
        ".mozilla/firefox/*/places.sqlite",
        "snap/firefox/common/.mozilla/firefox/*/places.sqlite",
        ".config/chromium/*/History",
        ".config/google-chrome/*/History",
        ".config/BraveSoftware/Brave-Browser/*/History",
        ".config/microsoft-edge/*/History",
        "Library/Application Support/Firefox/Profiles/*/places.sqlite",
        "Library/Application Support/Google/Chrome/*/History",
    ]
    return sorted({p for pattern in patterns for p in home.glob(pattern) if p.is_file()})


@contextlib.contextmanager
def private_copy(path: Path) -> Iterator[Path]:
    """A checked copy of the database at `path` (and its -wal), in a folder only we read."""
    with tempfile.TemporaryDirectory(prefix="engram-browser-") as folder:
        copy = Path(folder) / path.name
        try:
            shutil.copyfile(path, copy)
            for suffix in ("-wal", "-journal"):
                side = path.with_name(path.name + suffix)
                if side.exists():
                    shutil.copyfile(side, copy.with_name(copy.name + suffix))
        except OSError as exc:
            raise ImportFailed(path, f"cannot be copied ({exc.strerror or exc})") from None
        try:
            conn = sqlite3.connect(copy)
            try:
                ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise ImportFailed(
                path, f"is not a readable browser database ({exc}); if the browser is open, "
                "close it and try again",
            ) from None  # fmt: skip
        if ok != "ok":
            raise ImportFailed(path, "was copied while the browser wrote it; try again")
        yield copy


def visits(copy: Path, original: Path) -> Iterator[Parsed]:
    kind = kind_of(original)
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        try:
            rows = conn.execute(_FIREFOX if kind == "firefox" else _CHROMIUM)
        except sqlite3.DatabaseError as exc:
            raise ImportFailed(original, f"is not {kind} history ({exc})") from None
        for url, title, first, count in rows:
            parts = urlsplit(str(url))
            if parts.scheme not in ("http", "https"):
                yield Rejected("not a web page")
                continue
            at = parse_when(f"{float(first):.6f}", tz=UTC)
            seen = f" (visited {count} times that day)" if count > 1 else ""
            text = f"{title or parts.netloc}\n{url}{seen}"
            yield Item(
                key=f"{url}\x00{at.date().isoformat()}",
                at=at,
                text=text,
                title=str(title or parts.netloc),
            )
    finally:
        conn.close()


def import_history(store: MemoryStore, path: Path, *, progress: bool = True, **kw: Any) -> Summary:
    """The history at `path`, from a private copy; `kw`: `import_items`' on_progress, cancel."""
    kind = kind_of(path)
    with private_copy(path) as copy:
        summary = import_items(
            store,
            kind,
            path,
            lambda: visits(copy, path),
            file_key=str(path.resolve()),
            progress=progress,
            **kw,
        )
    return summary
